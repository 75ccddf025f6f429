#!/usr/bin/env bash
# vxlan_link.sh v4|v6: fdlinkd as a VXLAN tunnel endpoint talking to the Linux kernel's VXLAN.
#   namespace a: a kernel VXLAN device (VNI 42, dstport 4789) in a Linux bridge br0, which
#                holds the inner addresses 10.99.0.1 and fd99::1
#   namespace b: fdlinkd with a `bridge` sink over a `vxlan` link (VNI 42, remotes = [a],
#                interface = "ub") and
#                an af_packet link on a veth to namespace hb (10.99.0.2, fd99::2)
#   underlay a <-> b: IPv4 (v4) or IPv6 (v6)
# Checks: inner IPv4 and IPv6 pings 0% loss; `fdlinkctl fdb` shows br0's MAC on the vxlan port
# with a's address as its remote; 5 MiB of TCP each way at every veth's default offloads (the
# kernel VTEP's unfinished inner checksums and its tunnel GSO datagrams), SHA-256 equal; with
# gro = true on the lan link hb0 receives TCP super-frames made of wire segments; tshark on the
# underlay decodes fdlinkd's datagrams as VXLAN VNI 42 with correct outer UDP checksums; a wrong
# VNI, bad flags and a datagram shorter than the VXLAN header are each counted under their
# reason, and fdlinkd goes on; a frame larger than the tunnel's MTU is too_big.
source "$(dirname "$0")/lib.sh"
MODE=${1:?v4 or v6}

mkns a; mkns b; mkns hb
veth "$ID-a" ua "$ID-b" ub
veth "$ID-b" pb "$ID-hb" hb0
for n in a hb; do  # inner IPv6
  ip netns exec "$ID-$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0
done
if [ "$MODE" = v6 ]; then
  A=fd88::1 B=fd88::2 MTU=1430
  for n in a b; do ip netns exec "$ID-$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 "net.ipv6.conf.u$n.disable_ipv6=0"; done
  ip -n "$ID-a" addr add $A/64 dev ua nodad
  ip -n "$ID-b" addr add $B/64 dev ub nodad
else
  A=10.88.0.1 B=10.88.0.2 MTU=1450
  ip -n "$ID-a" addr add $A/24 dev ua
  ip -n "$ID-b" addr add $B/24 dev ub
fi
ip -n "$ID-a" link add vx0 type vxlan id 42 dstport 4789 local $A remote $B dev ua
ip -n "$ID-a" link add br0 type bridge
ip -n "$ID-a" link set vx0 master br0
ip -n "$ID-a" link set vx0 up
ip -n "$ID-a" link set br0 up
ip -n "$ID-a" addr add 10.99.0.1/24 dev br0
ip -n "$ID-a" addr add fd99::1/64 dev br0 nodad
ip -n "$ID-hb" link set hb0 mtu $MTU
ip -n "$ID-b" link set pb mtu 3000  # (frames larger than the tunnel's reach fdlinkd)
ip -n "$ID-hb" addr add 10.99.0.2/24 dev hb0
ip -n "$ID-hb" addr add fd99::2/64 dev hb0 nodad
kmtu=$(ip netns exec "$ID-a" cat /sys/class/net/vx0/mtu)
[ "$kmtu" = $MTU ] || fail "the kernel's VXLAN device has MTU $kmtu, the test assumes $MTU"

cat > "$TMP/fdlinkd.toml" <<EOT
[daemon]
stats_interval = "0s"
[[link]]
name = "tun"
type = "vxlan"
vni = 42
local = "$B"
remotes = ["$A"]
interface = "ub"
sink = "br"
$(afp_link lan pb br 'mtu = 3000' 'gro = true')
[[sink]]
name = "br"
type = "bridge"
ports = ["tun", "lan"]
EOT
start_daemon "$TMP/fdlinkd.toml" "$ID-b"
grep -q "vxlan vni 42 $B port 4789" "$LOG" || fail "the link is not described in the log as vxlan vni 42 $B port 4789"
# interface = "ub": every socket of the link is bound to the underlay device.
socks=$(ip netns exec "$ID-b" ss -uanH | awk '{print $4}')
echo "$socks" | head -3
grep -qE "%ub:4789$" <<< "$socks" || fail "the receiving socket is not bound to ub: $socks"
! grep -vqE "%ub:[0-9]+$" <<< "$socks" || fail "a UDP socket not bound to ub: $socks"
pass "interface = ub: all $(wc -l <<< "$socks") UDP sockets bound to ub"

# Every veth at its default offloads (TX checksum offload on): a's kernel VTEP then sends the
# inner TCP checksum unfinished (its skb says "the next hop finishes it"; the datagram
# fdlinkd's UDP socket reads does not), and fdlinkd finishes it. TCP both ways must arrive
# whole; before fdlinkd did that, TCP from hb to a moved nothing.
ping_ok "$ID-hb" 10.99.0.1 20
ping_ok "$ID-hb" fd99::1 20
# The bridge learned br0's MAC on the vxlan port, behind VTEP $A.
brmac=$(ip -n "$ID-a" -j link show br0 | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')
fdb=$("$FDLINKCTL" -s "$CTL" fdb)

grep -qE "^ +$brmac +0 +tun +[0-9]+ +no +$A\$" <<< "$fdb" || fail "fdlinkctl fdb does not show $brmac on tun behind $A"
pass "fdlinkctl fdb: $brmac on port tun, remote $A"

tcp_ok "$ID-hb" "$ID-a" 10.99.0.1 5
# The other way, a's kernel VTEP hands the veth whole TCP super-frames in one UDP datagram
# each (tunnel GSO): fdlinkd gives each the virtio-net header the kernel would have, and lan
# (vnet_hdr) passes it on whole.
tcp_ok "$ID-a" "$ID-hb" 10.99.0.2 5
# Out of the tunnel, lan has gro = true: with a's offloads off its VTEP sends wire-sized
# segments, which fdlinkd merges, so hb's stack gets TCP super-frames (as behind the kernel's
# GRO), and every byte still arrives (SHA-256).
ip netns exec "$ID-a" ethtool -K ua tx off >/dev/null
ip netns exec "$ID-hb" timeout 20 tshark -i hb0 -n -s 96 -f "tcp port 5001" -w "$TMP/hb.pcap" 2>"$TMP/hb.err" &
TD=$!
BACKGROUND+=("$TD")
capturing "$TMP/hb.err"
tcp_ok "$ID-a" "$ID-hb" 10.99.0.2 5
sleep 0.2
kill -INT "$TD" 2>/dev/null || true
wait "$TD" 2>/dev/null || true
big=$(tshark -r "$TMP/hb.pcap" -n -Y "frame.len > $((MTU + 14))" 2>/dev/null | wc -l)
[ "$big" -gt 0 ] || fail "gro = true: no frame larger than the MTU reached hb0"
pass "gro = true: $big TCP super-frames larger than $((MTU + 14)) bytes reached hb0"

# The outer UDP checksums fdlinkd's sockets send: with ub's TX checksum offload on, the kernel
# leaves them for the device to finish (a veth never does, its peer trusts the note), so
# tshark on the far side checks them with offload off, as a NIC would have finished them.
ip netns exec "$ID-b" ethtool -K ub tx off >/dev/null
# tshark on the underlay while the pings run.
ip netns exec "$ID-a" timeout 20 tshark -i ua -n -f "udp port 4789" -c 40 -w "$TMP/under.pcap" 2>"$TMP/under.err" &
TS=$!
BACKGROUND+=("$TS")
capturing "$TMP/under.err"
ping_ok "$ID-hb" 10.99.0.1 20
wait "$TS" || true
src_field=ip.src; [ "$MODE" = v6 ] && src_field=ipv6.src
fields=$(tshark -r "$TMP/under.pcap" -n -o udp.check_checksum:TRUE -Y "$src_field == $B" \
  -T fields -e vxlan.vni -e udp.checksum.status 2>/dev/null | sort | uniq -c)
echo "$fields"
grep -qE "^ +[0-9]+ 42	1$" <<< "$fields" || fail "no VXLAN VNI 42 datagram from fdlinkd with a good UDP checksum: $fields"
! grep -qvE "^ +[0-9]+ 42	1$" <<< "$fields" || fail "datagrams from fdlinkd that are not VNI 42 with a good UDP checksum: $fields"
pass "tshark decodes fdlinkd's datagrams as VXLAN VNI 42, outer UDP checksums good"

# Hostile datagrams from a's side: each counted under its reason, and the tunnel goes on.
ip netns exec "$ID-a" "$PY" - "$FDLINKCTL" "$CTL" "$B" <<'PYEOF' || fail "bad VXLAN datagrams"
import json, socket, subprocess, sys, time
ctl, control, b = sys.argv[1:4]
def drops():
    out = subprocess.check_output([ctl, "-s", control, "stats", "--json"])
    return {l["name"]: l for l in json.loads(out)["links"]}["tun"]["drops"]
fam = socket.AF_INET6 if ":" in b else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
inner = bytes.fromhex("ffffffffffff02fd000000010800") + bytes(46)
cases = [("vxlan_unknown_vni", bytes.fromhex("0800000000002b00") + inner),  # VNI 43
         ("vxlan_bad_header", bytes.fromhex("0000000000002a00") + inner),   # no I flag
         ("runt", bytes.fromhex("08000000"))]                              # 4 bytes
for reason, msg in cases:
    before = drops()[reason]
    s.sendto(msg, (b, 4789))
    for _ in range(40):
        if drops()[reason] == before + 1:
            break
        time.sleep(0.05)
    assert drops()[reason] == before + 1, f"{reason}: {before} -> {drops()[reason]}"
    print(f"ok: {reason} +1 on tun for {len(msg)}-byte datagram", flush=True)
PYEOF
ping_ok "$ID-hb" 10.99.0.1 5

# Too big for the tunnel: hb sends 2000-byte pings (its MTU raised; the lan link takes 3000),
# the tunnel's MTU is $MTU.
before=$(ip netns exec "$ID-b" "$FDLINKCTL" -s "$CTL" stats --json | "$PY" -c 'import json,sys; print({l["name"]: l for l in json.load(sys.stdin)["links"]}["tun"]["drops"]["too_big"])')
ip -n "$ID-hb" link set hb0 mtu 3000
ip netns exec "$ID-hb" ping -q -c 3 -i 0.1 -W 1 -s 2000 -M do 10.99.0.1 >/dev/null 2>&1 || true
after=$(ip netns exec "$ID-b" "$FDLINKCTL" -s "$CTL" stats --json | "$PY" -c 'import json,sys; print({l["name"]: l for l in json.load(sys.stdin)["links"]}["tun"]["drops"]["too_big"])')
[ $(( after - before )) -eq 3 ] || fail "too_big on tun grew by $(( after - before )), want 3"
pass "3 frames of 2042 bytes toward a tunnel of MTU $MTU: too_big +3"
stop_daemon
