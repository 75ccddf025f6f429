#!/usr/bin/env bash
# xdp_offload.sh MODE: offload = "xdp", frames forwarded in the kernel by fdlinkd's XDP program.
#   MODE = forward: h1 -- a [fdlinkd: forward a<->b, offload = "xdp"] b -- h2.
#   MODE = bridge:  a bridge sink with offload = "xdp" over three ports with VLANs: a (h1) and
#          b (h2) access VLAN 10, c (h3) a trunk of VLANs 10 and 20, native 1. h3 speaks
#          untagged (VLAN 1) and must not reach h1; tagged VLAN 10 frames made with scapy on h3
#          reach h1 untagged, through XDP (this kernel has no 8021q module).
# Both check what a user would:
#   - `fdlinkctl status` says which links are offloaded;
#   - 100 pings with 0% loss; TCP both ways with equal SHA-256; sequence-numbered UDP flows
#     arrive in order;
#   - the frames went through XDP: the links' xdp_rx/xdp_tx counters grew and fdlinkd read
#     only the frames the fast path left to it;
#   - counters are exact: after 10^6 UDP frames, every frame h1 sent is counted on a either as
#     offloaded or as read by fdlinkd, and h2 received exactly what a's and b's counters say;
#   - a tee added by a reload moves that path back to userspace, and its pcap holds exactly
#     the frames sent after the reload;
#   - after SIGTERM, and after a failed start, `bpftool net` shows no program of ours.
#   MODE = bridge_aging: the bridge above with aging = "3s" and two workers (a and c on worker
#          0, b on worker 1). Pings between h1 and h2 go through XDP for 4 times `aging`, while
#          h3 and h2 send a broadcast every half second (each comes up to fdlinkd and makes its
#          worker sweep its table): the MACs that talk only through the kernel are not aged out
#          or learned again. Once h1 and h2 are silent, they are aged out within aging + 2 s.
# A frame redirected into a veth reaches its peer only when the peer has NAPI (GRO on, or an XDP
# program of its own): the forward test starts with GRO off on h2 and checks that fdlinkd keeps
# the path into pb in userspace and says why, then turns it on and sees the path offloaded.
source "$(dirname "$0")/lib.sh"
MODE=${1:?mode}
FDLINKCTL=${FDLINKCTL:?set FDLINKCTL}
ctl() { "$FDLINKCTL" -s "$CTL" "$@"; }

mkns h1; mkns h2; mkns fw
veth "$ID-h1" h1 "$ID-fw" pa
veth "$ID-h2" h2 "$ID-fw" pb
for i in 1 2; do ip -n "$ID-h$i" addr add "10.77.50.$i/24" dev "h$i"; done
ip netns exec "$ID-h1" ethtool -K h1 gro on >/dev/null
# h2's GRO stays off (a veth's default) until the forward test has seen fdlinkd refuse to
# redirect into pb for that reason.
[ "$MODE" = forward ] || ip netns exec "$ID-h2" ethtool -K h2 gro on >/dev/null

# XDP programs on the interfaces of fdlinkd's namespace, as `bpftool net` lists them
# ("pa(5) driver id 812"): only fdlinkd attaches any there.
ours() { ip netns exec "$ID-fw" bpftool net show 2>/dev/null | grep -cE '^p[abc]\([0-9]+\) (driver|generic) id' || true; }

if [ "$MODE" = forward ]; then
  sinks='[[sink]]
name = "to-b"
type = "forward"
to = "b"
offload = "xdp"
[[sink]]
name = "to-a"
type = "forward"
to = "a"
offload = "xdp"'
  cat > "$TMP/fdlinkd.toml" <<EOT
[daemon]
stats_interval = "0s"
$(afp_link a pa to-b 'dispatch = "packet_mmap"')
$(afp_link b pb to-a 'dispatch = "packet_mmap"')
$sinks
EOT
else
  mkns h3
  veth "$ID-h3" h3 "$ID-fw" pc
  ip -n "$ID-h3" addr add 10.77.50.3/24 dev h3
  ip netns exec "$ID-h3" ethtool -K h3 gro on >/dev/null
  sinks='[[sink]]
name = "sw"
type = "bridge"
ports = ["a", "b", "c"]
offload = "xdp"
'"$([ "$MODE" != bridge_aging ] || echo 'aging = "3s"')"'
[sink.vlans]
a = { access = 10 }
b = { access = 10 }
c = { trunk = [10, 20], native = 1 }'
  cat > "$TMP/fdlinkd.toml" <<EOT
[daemon]
stats_interval = "0s"
$([ "$MODE" != bridge_aging ] || echo 'workers = 2')
$(afp_link a pa sw 'dispatch = "packet_mmap"')
$(afp_link b pb sw)
$(afp_link c pc sw)
$sinks
EOT
fi
start_daemon "$TMP/fdlinkd.toml" "$ID-fw"

if [ "$MODE" = forward ]; then
  # pb's peer h2 has no GRO: frames redirected into pb would be lost, so a stays in userspace
  # (and says why) while b is offloaded; traffic flows both ways all the same.
  ctl status | grep -Eq '^a +to-b +no +its way out, link "b": .*GRO' ||
    { ctl status >&2; fail "status does not say that a cannot be offloaded while h2 has no GRO"; }
  ctl status | grep -Eq '^b +to-a +native' || fail "b is not offloaded"
  ping_ok "$ID-h1" 10.77.50.2 20
  pass "with GRO off on pb's peer: a refused (status says why), b offloaded, pings pass"
  ip netns exec "$ID-h2" ethtool -K h2 gro on >/dev/null
  for _ in $(seq 30); do ctl status | grep -Eq '^a +to-b +native' && break; sleep 0.1; done
fi
status=$(ctl status)
echo "$status" | grep -E "^(OFFLOAD|a |b )" >&2
for l in a b; do
  echo "$status" | grep -Eq "^$l +(to-[ab]|sw) +native" || fail "fdlinkctl status does not show link $l offloaded (native XDP)"
done
pass "fdlinkctl status: a and b offloaded in native XDP"
[ "$(ours)" -ge 2 ] || fail "bpftool net shows no fdlinkd program on pa and pb"

stat() {  # stat LINK KEY: one counter of one link, from fdlinkctl's JSON
  ctl stats --json | "$PY" -c "import json,sys; r=json.load(sys.stdin)
print(next(l for l in r['links'] if l['name']=='$1')['$2'])"
}

hmac() { ip -n "$ID-$1" -j link show "$1" | "$PY" -c "import json,sys; print(json.load(sys.stdin)[0]['address'])"; }
H1MAC=$(hmac h1); H2MAC=$(hmac h2)

if [ "$MODE" = bridge_aging ]; then
  sw() {  # sw COUNTER: the bridge's counter, summed over the workers
    ctl sinks --json | "$PY" -c "import json,sys; print([s for s in json.load(sys.stdin)['sinks'] if s['name']=='sw'][0]['counters']['$1'])"
  }
  macs() {  # the MACs in the bridge's table (worker 0's), on one line
    ctl fdb --json | "$PY" -c "import json,sys
print(' '.join(sorted(e['mac'] for e in json.load(sys.stdin)['bridges'][0]['entries'])))"
  }
  ping_ok "$ID-h1" 10.77.50.2 5
  broadcasts() {  # broadcasts NS SECONDS: a UDP broadcast every half second
    ip netns exec "$1" "$PY" -c "import socket,time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
for _ in range(int($2 * 2)):
    s.sendto(b'sweep', ('10.77.50.255', 9)); time.sleep(0.5)" > /dev/null 2>&1
  }
  broadcasts "$ID-h3" 0.5  # (h3 learned now, not during the count)
  aged0=$(sw aged); learned0=$(sw learned); x0=$(stat a xdp_rx_packets)
  broadcasts "$ID-h3" 12 & b3=$!; BACKGROUND+=($b3)
  broadcasts "$ID-h2" 12 & b2=$!; BACKGROUND+=($b2)
  ip netns exec "$ID-h1" ping -q -c 240 -i 0.05 -W 1 10.77.50.2 > "$TMP/ping.out" 2>&1 & p=$!
  # Meanwhile fdlinkctl fdb gives h1's age from the last frame the kernel forwarded from it:
  # fdlinkd itself sees none of them (h1 sends no broadcast), and asks the kernel only once a
  # MAC reaches `aging` (3 s), so without that its own age would climb to 2 within 4 s of looks.
  sleep 4
  : > "$TMP/ages"
  for _ in $(seq 8); do
    ctl fdb --json | "$PY" -c "import json,sys
print([e['age_s'] for e in json.load(sys.stdin)['bridges'][0]['entries'] if e['mac'] == '$H1MAC'][0])" >> "$TMP/ages"
    sleep 0.5
  done
  wait $p || { cat "$TMP/ping.out" >&2; fail "pings during 4 aging times lost packets"; }
  wait $b3 $b2
  aged=$(( $(sw aged) - aged0 )); learned=$(( $(sw learned) - learned0 )); x=$(( $(stat a xdp_rx_packets) - x0 ))
  echo "12 s of pings (aging 3 s): aged $aged, learned $learned, a's frames through XDP $x" >&2
  macs >&2
  [ "$x" -ge 230 ] || fail "only $x of h1's 240 pings went through XDP"
  [ "$aged" -eq 0 ] && [ "$learned" -eq 0 ] ||
    fail "MACs that talk through the kernel were aged out ($aged) and learned again ($learned) within 12 s of aging = 3s"
  macs | grep "$H1MAC" | grep -q "$H2MAC" || fail "the table lacks h1's or h2's MAC after 12 s of pings"
  ages=$(tr "\n" " " < "$TMP/ages")
  for a in $ages; do
    [ "$a" -le 1 ] || fail "fdlinkctl fdb said h1's MAC was $a s old while it sent pings (ages: $ages)"
  done
  pass "fdlinkctl fdb, 8 looks during the pings: h1's age $ages (from the kernel's last forward)"
  # Worker 1 (b's) heard of the refreshes: a frame from a new source on h2 to h1 comes up there
  # and is forwarded to h1's port, not flooded.
  f0=$(sw flooded); fw0=$(sw forwarded)
  ip netns exec "$ID-h2" "$PY" - "$H1MAC" <<'PYEOF'
import sys
from scapy.all import Ether, IP, UDP, sendp, conf
conf.verb = 0
sendp(Ether(src="02:00:00:00:99:01", dst=sys.argv[1]) / IP(src="10.77.50.9", dst="10.77.50.99") / UDP(dport=9), iface="h2")  # (h1 drops it: no reply, no ARP)
PYEOF
  for _ in $(seq 20); do [ "$(sw forwarded)" -gt "$fw0" ] && break; sleep 0.1; done
  [ "$(sw forwarded)" -gt "$fw0" ] && [ "$(sw flooded)" -eq "$f0" ] ||
    fail "a frame to h1 that came up on worker 1 was flooded (flooded +$(( $(sw flooded) - f0 ))): worker 1 forgot h1"
  pass "12 s of pings through XDP with aging = 3s and sweeps every half second: 0 aged, 0 learned again; both workers still know h1"
  # Silent now (h3 still sweeps worker 0): both go from worker 0's table, and from the kernel's.
  broadcasts "$ID-h3" 7
  aged=$(( $(sw aged) - aged0 ))
  macs >&2
  [ "$aged" -ge 2 ] && ! macs | grep -q "$H1MAC\|$H2MAC" ||
    fail "h1 and h2, silent for 7 s, were not aged out of worker 0's table (aged $aged)"
  ping_ok "$ID-h1" 10.77.50.2 5
  pass "silent for 7 s, h1 and h2 are aged out (aged $aged); pings then pass again"
  stop_daemon
  [ "$(ours)" -eq 0 ] || fail "a program of ours is still attached after SIGTERM"
  exit 0
fi

ping_ok "$ID-h1" 10.77.50.2 100
ping_ok "$ID-h2" 10.77.50.1 100
[ "$(stat a xdp_rx_packets)" -ge 100 ] || fail "the pings did not go through XDP (xdp_rx_packets on a: $(stat a xdp_rx_packets))"
pass "the pings went through XDP: a xdp_rx_packets $(stat a xdp_rx_packets), b xdp_tx_packets $(stat b xdp_tx_packets)"

tcp_ok "$ID-h1" "$ID-h2" 10.77.50.2 20
tcp_ok "$ID-h2" "$ID-h1" 10.77.50.1 20
udp_flows_ok "$ID-h1" "$ID-h2" 10.77.50.2 4 2000 20000

if [ "$MODE" = bridge ]; then
  # h3 is on the trunk's native VLAN 1: it must reach neither h1 nor h2 (VLAN 10).
  ip netns exec "$ID-h3" ping -c 3 -i 0.1 -W 1 10.77.50.1 >/dev/null 2>&1 && fail "h3 (VLAN 1) reached h1 (VLAN 10)"
  pass "h3 on VLAN 1 cannot reach h1 on VLAN 10"
  # Tagged frames for VLAN 10 from the trunk side reach h1 untagged, in the kernel once known.
  H3MAC=$(hmac h3)
  ip netns exec "$ID-h1" tcpdump -i h1 -Q in -n -s 0 --immediate-mode -U -w "$TMP/h1.pcap" "ether src $H3MAC" 2>"$TMP/h1.cap.err" &
  DUMP=$!; BACKGROUND+=($DUMP)
  capturing "$TMP/h1.cap.err"
  before=$(stat c xdp_rx_packets)
  ip netns exec "$ID-h3" "$PY" - "$H3MAC" "$H1MAC" <<'PYEOF'
import sys
from scapy.all import Ether, Dot1Q, IP, UDP, sendp, conf
conf.verb = 0
src, dst = sys.argv[1], sys.argv[2]
# First a broadcast, so the bridge learns h3's MAC on VLAN 10; then 50 unicast frames.
sendp(Ether(src=src, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=10) / IP(src="10.77.50.3", dst="10.77.50.255") / UDP(dport=9), iface="h3")
import time; time.sleep(0.3)
sendp([Ether(src=src, dst=dst) / Dot1Q(vlan=10) / IP(src="10.77.50.3", dst="10.77.50.1") / UDP(sport=4000 + i, dport=9) for i in range(50)], iface="h3")
PYEOF
  sleep 0.5
  kill -INT $DUMP; wait $DUMP 2>/dev/null || true
  n=$("$PY" - "$TMP/h1.pcap" <<'PYEOF'
import sys
from scapy.all import rdpcap, Dot1Q
p = rdpcap(sys.argv[1])
assert not any(f.haslayer(Dot1Q) for f in p), "a frame reached the access port tagged"
print(len(p))
PYEOF
) || fail "frames from the trunk reached h1 tagged"
  [ "$n" = 51 ] || fail "h1 got $n frames of h3's VLAN 10, want 51"
  after=$(stat c xdp_rx_packets)
  [ $((after - before)) -ge 40 ] || fail "VLAN 10 unicast from the trunk did not go through XDP ($((after - before)) frames)"
  pass "tagged VLAN 10 frames from the trunk reach h1 untagged: 51 of 51, $((after - before)) in XDP"
  # And back: h1's frames to h3's MAC leave the trunk tagged 10 (the tag pushed in XDP).
  ip netns exec "$ID-h3" tcpdump -i h3 -Q in -n -s 0 --immediate-mode -U -w "$TMP/h3.pcap" "ether src $H1MAC" 2>"$TMP/h3.cap.err" &
  DUMP=$!; BACKGROUND+=($DUMP)
  capturing "$TMP/h3.cap.err"
  before=$(stat c xdp_tx_packets)
  ip netns exec "$ID-h1" "$PY" - "$H1MAC" "$H3MAC" <<'PYEOF'
import sys
from scapy.all import Ether, IP, UDP, sendp, conf
conf.verb = 0
sendp([Ether(src=sys.argv[1], dst=sys.argv[2]) / IP(src="10.77.50.1", dst="10.77.50.3") / UDP(sport=5000 + i, dport=9) for i in range(50)], iface="h1")
PYEOF
  sleep 0.5
  kill -INT $DUMP; wait $DUMP 2>/dev/null || true
  n=$("$PY" - "$TMP/h3.pcap" <<'PYEOF'
import sys
from scapy.all import rdpcap, Dot1Q, UDP
p = rdpcap(sys.argv[1])
assert all(f.haslayer(Dot1Q) and f[Dot1Q].vlan == 10 for f in p), "a frame left the trunk without tag 10"
print(sum(1 for f in p if f.haslayer(UDP) and 5000 <= f[UDP].sport < 5050))
PYEOF
) || fail "frames from h1 left the trunk without tag 10"
  after=$(stat c xdp_tx_packets)
  [ "$n" = 50 ] && [ $((after - before)) -eq 50 ] || fail "h3 got $n tagged frames, XDP sent $((after - before)) out of c; want 50 and 50"
  pass "h1's frames to h3 leave the trunk tagged 10: 50 of 50, all pushed in XDP"
fi

# Counters exact after 10^6 frames: UDP from h1 to h2 at full speed with bench/gen.
GEN=$TMP/gen
gcc -O2 -o "$GEN" "$HERE/../../bench/gen.c"
snap() {  # what h1 sent, h2 received, and a's and b's counters
  echo "$(ip netns exec "$ID-h1" cat /sys/class/net/h1/statistics/tx_packets)" \
       "$(ip netns exec "$ID-h2" cat /sys/class/net/h2/statistics/rx_packets)" \
       "$(stat a xdp_rx_packets)" "$(stat a rx_packets)" "$(stat b xdp_tx_packets)" "$(stat b tx_packets)" \
       "$(stat a drops_total)" "$(stat b drops_total)" "$(stat a xdp_to_slow_path)"
}
read -r s0 r0 ax0 ar0 bx0 bt0 ad0 bd0 sl0 < <(snap)
# The generator sends to h2's MAC from h1's, so the bridge has learned both (the pings).
sent=0
while [ $sent -lt 1000000 ]; do
  ip netns exec "$ID-h1" "$GEN" -i h1 -s 60 -n 64 -d "$H2MAC" -S "$H1MAC" -t 1 > "$TMP/gen.out"
  sent=$(( $(ip netns exec "$ID-h1" cat /sys/class/net/h1/statistics/tx_packets) - s0 ))
done
sleep 1
read -r s1 r1 ax1 ar1 bx1 bt1 ad1 bd1 sl1 < <(snap)
tx=$((s1 - s0)); rx=$((r1 - r0)); xin=$((ax1 - ax0)); uin=$((ar1 - ar0))
xout=$((bx1 - bx0)); uout=$((bt1 - bt0)); drops=$((ad1 - ad0 + bd1 - bd0))
echo "h1 sent $tx, h2 got $rx; a: xdp $xin + fdlinkd $uin; b: xdp $xout + fdlinkd $uout; drops $drops" >&2
[ "$tx" -ge 1000000 ] || fail "the generator sent only $tx frames"
[ $((xin + uin)) -eq "$tx" ] || fail "a counted $((xin + uin)) frames (xdp $xin + fdlinkd $uin), h1 sent $tx"
[ $((xout + uout)) -eq "$rx" ] || fail "b counted $((xout + uout)) frames out (xdp $xout + fdlinkd $uout), h2 received $rx"
[ "$xin" -eq "$xout" ] || fail "XDP took $xin frames in on a and sent $xout out of b"
[ $((uin - uout - drops)) -eq 0 ] || fail "fdlinkd read $uin on a, sent $uout on b and dropped $drops"
[ $((xin * 10)) -ge $((tx * 9)) ] || fail "only $xin of $tx frames went through XDP"
pass "$tx frames: a counted every one (xdp $xin, fdlinkd $uin), h2 got $rx = b's xdp $xout + fdlinkd $uout"

if [ "$MODE" = forward ]; then
  # Frames the kernel drops after the program redirected them are counted (xdp_tx_failed). With
  # fdlinkd stopped (it cannot see the way out change and take the path back), h2 loses GRO
  # (the redirect into pb fails), then gets it back and goes down (pb takes the frames and
  # drops them); h1 sends for a second in each state.
  read -r s0 r0 ax0 ar0 bx0 bt0 ad0 bd0 sl0 < <(snap)
  f0=$(stat b xdp_tx_failed)
  kill -STOP "$DAEMON_PID"
  ip netns exec "$ID-h2" ethtool -K h2 gro off >/dev/null
  ip netns exec "$ID-h1" "$GEN" -i h1 -s 60 -n 64 -d "$H2MAC" -S "$H1MAC" -t 1 > "$TMP/gen.out"
  ip netns exec "$ID-h2" ethtool -K h2 gro on >/dev/null
  ip -n "$ID-h2" link set h2 down
  ip netns exec "$ID-h1" "$GEN" -i h1 -s 60 -n 64 -d "$H2MAC" -S "$H1MAC" -t 1 > "$TMP/gen.out"
  ip -n "$ID-h2" link set h2 up
  kill -CONT "$DAEMON_PID"
  for _ in $(seq 30); do ctl status | grep -Eq '^a +to-b +native' && break; sleep 0.1; done
  sleep 1
  read -r s1 r1 ax1 ar1 bx1 bt1 ad1 bd1 sl1 < <(snap)
  failed=$(( $(stat b xdp_tx_failed) - f0 ))
  tx=$((s1 - s0)); rx=$((r1 - r0)); xin=$((ax1 - ax0)); uin=$((ar1 - ar0)); xout=$((bx1 - bx0)); uout=$((bt1 - bt0))
  echo "h1 sent $tx, h2 got $rx; a: xdp $xin + fdlinkd $uin; b: xdp $xout (failed $failed) + fdlinkd $uout" >&2
  [ "$tx" -ge 10000 ] || fail "the generator sent only $tx frames"
  [ "$failed" -ge $((tx - 100)) ] || fail "b's xdp_tx_failed grew by $failed, h1 sent $tx frames that could not reach h2"
  [ $((xin + uin)) -eq "$tx" ] || fail "a counted $((xin + uin)) frames (xdp $xin + fdlinkd $uin), h1 sent $tx"
  [ $((xout - failed + uout)) -eq "$rx" ] || fail "h2 received $rx, b counted xdp $xout - failed $failed + fdlinkd $uout"
  grep -q '"event":"xdp_tx_failed".*"link":"b"' "$LOG" || fail "the log does not report the frames the kernel dropped (xdp_tx_failed)"
  ping_ok "$ID-h1" 10.77.50.2 20
  pass "kernel drops after a redirect are counted: h1 sent $tx, b's xdp_tx_failed $failed, h2 got $rx = xdp $xout - $failed + fdlinkd $uout; in the log; pings pass again"
fi

# A tee added by a reload: a's frames go to userspace again and the pcap holds what passes.
sed -i '0,/^sink = "\(to-b\|sw\)"/s//sink = "cap"/' "$TMP/fdlinkd.toml"  # (a's: the first)
next=$([ "$MODE" = forward ] && echo to-b || echo sw)
cat >> "$TMP/fdlinkd.toml" <<EOT
[[sink]]
name = "cap"
type = "tee"
to = ["$next", "dump"]
[[sink]]
name = "dump"
type = "pcap"
path = "$TMP/a.pcap"
EOT
ctl reload >/dev/null || fail "reload with a tee failed"
ctl status | grep -Eq "^a +cap +no +its sink is a tee" || { ctl status >&2; fail "after the reload, status does not say a is back in userspace"; }
pass "after the reload, status says a's frames are in userspace (its sink is a tee)"
xa0=$(stat a xdp_rx_packets)
out=$(ip netns exec "$ID-h1" ping -q -c 100 -i 0.01 -W 2 10.77.50.2) || { echo "$out" >&2; fail "ping through the tee lost packets"; }
grep -q " 0% packet loss" <<< "$out" || fail "ping through the tee lost packets"
[ "$(stat a xdp_rx_packets)" -eq "$xa0" ] || fail "frames from a still went through XDP after the tee was added"
pass "100 pings through the tee added by reload, 0% loss; XDP took none of a's frames"

stop_daemon
[ "$(ours)" -eq 0 ] || { ip netns exec "$ID-fw" bpftool net show >&2; fail "a program of ours is still attached after SIGTERM"; }
pass "after SIGTERM, bpftool net shows nothing of ours"
echos=$("$PY" - "$TMP/a.pcap" <<'PYEOF'
import sys
from scapy.all import rdpcap, ICMP
print(sum(1 for f in rdpcap(sys.argv[1]) if f.haslayer(ICMP) and f[ICMP].type == 8))
PYEOF
)
[ "$echos" = 100 ] || fail "the tee's pcap holds $echos echo requests, want 100"
pass "the tee's pcap holds exactly the 100 echo requests sent after the reload"

# A failed start (a link whose interface does not exist, after the others opened).
cat > "$TMP/bad.toml" <<EOT
[daemon]
stats_interval = "0s"
$(afp_link a pa to-b)
$(afp_link b pb to-a)
$(afp_link z nosuch0 to-a)
$(forward_sinks a b | sed 's/^to = .*/&\noffload = "xdp"/')
EOT
ip netns exec "$ID-fw" "$FDLINKD" -c "$TMP/bad.toml" --log-format json 2>"$TMP/bad.log" && fail "fdlinkd started without interface nosuch0"
[ "$(ours)" -eq 0 ] || fail "a program of ours is attached after a failed start"
pass "after a failed start, bpftool net shows nothing of ours"

# What systemd/af_xdp.conf grants (no CAP_PERFMON, no CAP_SYS_ADMIN) is enough: as an
# unprivileged user, fdlinkd loads the program and offloads both links (and says that it cannot
# count the frames the kernel drops after a redirect); with systemd/xdp_tx_failed.conf's
# CAP_PERFMON as well, it counts them.
if [ "$MODE" = forward ]; then
  caps=$(sed -n 's/^AmbientCapabilities=//p' "$HERE/../../systemd/af_xdp.conf" | tr 'A-Z' 'a-z' |
         sed 's/cap_/+/g; s/ /,/g')
  cat > "$TMP/user.toml" <<EOT
[daemon]
stats_interval = "0s"
control_socket = ""
$(afp_link a pa to-b)
$(afp_link b pb to-a)
$(forward_sinks a b | sed 's/^to = .*/&\noffload = "xdp"/')
EOT
  chmod 755 "$TMP"; chmod 644 "$TMP/user.toml"
  as_user() {  # as_user LOG: fdlinkd as nobody with $caps, until both links are offloaded
    ip netns exec "$ID-fw" setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps="$caps" \
      --ambient-caps="$caps" "$FDLINKD" -c "$TMP/user.toml" 2>"$1" &
    user_pid=$!
    BACKGROUND+=("$user_pid")
    for _ in $(seq 50); do [ "$(grep -c 'xdp_offload:.*xdp_mode=native' "$1")" -ge 2 ] && break; sleep 0.1; done
    [ "$(grep -c 'xdp_offload:.*xdp_mode=native' "$1")" -ge 2 ] ||
      { cat "$1" >&2; fail "as a user with $caps: a and b not offloaded"; }
  }
  as_user "$TMP/user.err"
  ping_ok "$ID-h1" 10.77.50.2 20
  grep -q 'xdp_tx_failed_uncounted:.*CAP_PERFMON' "$TMP/user.err" ||
    { cat "$TMP/user.err" >&2; fail "as a user without CAP_PERFMON: no warning that xdp_tx_failed is not counted"; }
  kill -TERM "$user_pid"; wait "$user_pid" || fail "as a user: exit status $? after SIGTERM"
  [ "$(ours)" -eq 0 ] || fail "as a user: a program was left attached"
  pass "unprivileged user with $caps (systemd/af_xdp.conf): both links offloaded, pings pass, nothing left; told that xdp_tx_failed needs CAP_PERFMON"
  # With systemd/xdp_tx_failed.conf's CAP_PERFMON added, the drops are counted.
  caps="$caps,$(sed -n 's/^AmbientCapabilities=//p' "$HERE/../../systemd/xdp_tx_failed.conf" | tr 'A-Z' 'a-z' | sed 's/cap_/+/g; s/ /,/g')"
  as_user "$TMP/user2.err"
  ip -n "$ID-h2" link set h2 down
  ip netns exec "$ID-h1" "$GEN" -i h1 -s 60 -n 64 -d "$H2MAC" -S "$H1MAC" -t 1 > "$TMP/gen.out"
  ip -n "$ID-h2" link set h2 up
  for _ in $(seq 30); do grep -q 'xdp_tx_failed:.*link=b' "$TMP/user2.err" && break; sleep 0.1; done
  grep -q 'xdp_tx_failed_uncounted' "$TMP/user2.err" && fail "as a user with $caps: still told xdp_tx_failed is not counted"
  grep -q 'xdp_tx_failed:.*link=b' "$TMP/user2.err" ||
    { cat "$TMP/user2.err" >&2; fail "as a user with $caps: frames sent to b while h2 was down were not counted as xdp_tx_failed"; }
  kill -TERM "$user_pid"; wait "$user_pid" || fail "as a user: exit status $? after SIGTERM"
  [ "$(ours)" -eq 0 ] || fail "as a user: a program was left attached"
  pass "unprivileged user with $caps (+ systemd/xdp_tx_failed.conf): frames dropped while h2 was down counted as xdp_tx_failed"
fi
