#!/usr/bin/env bash
# vxlan_vnis.sh: two VNIs on one UDP port, as the kernel does it.
#   namespace a: two kernel VXLAN devices on port 4789, VNI 42 (bridge br42, 10.42.0.1) and
#                VNI 43 (bridge br43, 10.43.0.1): the kernel shares one UDP socket for both
#   namespace b: fdlinkd, two workers, with two vxlan links on 10.88.0.2 port 4789 (t42, t43),
#                each forwarding to its own af_packet link toward h42 (10.42.0.2) and h43
#                (10.43.0.2); source_ports = [50000, 50015]
# Checks: one UDP socket on port 4789 in b; both segments ping with 0% loss at once, and a
# broadcast on one never reaches the other; each link counts its own frames; the outer source
# ports are within [50000, 50015]; after a reload removes t42, t43 still forwards (the socket
# stays), and a datagram for VNI 42 is then vxlan_unknown_vni on t43.
source "$(dirname "$0")/lib.sh"

mkns a; mkns b; mkns h42; mkns h43
veth "$ID-a" ua "$ID-b" ub
veth "$ID-b" p42 "$ID-h42" e42
veth "$ID-b" p43 "$ID-h43" e43
A=10.88.0.1 B=10.88.0.2
ip -n "$ID-a" addr add $A/24 dev ua
ip -n "$ID-b" addr add $B/24 dev ub
for v in 42 43; do
  ip -n "$ID-a" link add vx$v type vxlan id $v dstport 4789 local $A remote $B dev ua
  ip -n "$ID-a" link add br$v type bridge
  ip -n "$ID-a" link set vx$v master br$v
  ip -n "$ID-a" link set vx$v up
  ip -n "$ID-a" link set br$v up
  ip -n "$ID-a" addr add 10.$v.0.1/24 dev br$v
  ip -n "$ID-h$v" link set e$v mtu 1450
  ip -n "$ID-h$v" addr add 10.$v.0.2/24 dev e$v
done

config() {  # config [42] : the links (t42 only when asked)
  printf '[daemon]\nworkers = 2\nstats_interval = "0s"\n'
  local v
  for v in "$@" 43; do
    cat <<EOT
[[link]]
name = "t$v"
type = "vxlan"
vni = $v
local = "$B"
remotes = ["$A"]
source_ports = [50000, 50015]
sink = "to-p$v"
$(afp_link p$v p$v to-t$v)
$(forward_sinks t$v p$v)
EOT
  done
}
config 42 > "$TMP/fdlinkd.toml"
start_daemon "$TMP/fdlinkd.toml" "$ID-b"

socks=$(ip netns exec "$ID-b" ss -uanH "sport = :4789" | wc -l)
[ "$socks" -eq 1 ] || fail "$socks UDP sockets on port 4789 in b, want 1 (shared by t42 and t43)"
pass "t42 and t43 share one UDP socket on port 4789"

ip netns exec "$ID-a" timeout 20 tshark -i ua -n -f "udp dst port 4789 and src host $B" -c 30 \
  -w "$TMP/under.pcap" 2>/dev/null &
TS=$!
BACKGROUND+=("$TS")
sleep 1
ping_ok "$ID-h42" 10.42.0.1 20 &
P1=$!
ping_ok "$ID-h43" 10.43.0.1 20 || fail "VNI 43"
wait $P1 || fail "VNI 42 (while 43 ran)"
wait "$TS" || true
ports=$(tshark -r "$TMP/under.pcap" -n -T fields -e udp.srcport -e vxlan.vni 2>/dev/null | sort -u)
echo "$ports" | head -20
[ -n "$ports" ] || fail "no datagram from fdlinkd captured"
while read -r p vni; do
  [ "$p" -ge 50000 ] && [ "$p" -le 50015 ] || fail "a datagram from source port $p (VNI $vni), outside [50000, 50015]"
done <<< "$ports"
pass "outer UDP source ports within source_ports [50000, 50015]"

# A broadcast in segment 42 (3 broadcast pings, which nobody answers) stays in VNI 42.
stats() { ip netns exec "$ID-b" "$FDLINKCTL" -s "$CTL" stats --json; }
count() {  # count LINK FIELD
  stats | "$PY" -c 'import json,sys; l={x["name"]: x for x in json.load(sys.stdin)["links"]}[sys.argv[1]]; print(l[sys.argv[2]])' "$1" "$2"
}
before43=$(count p43 tx_packets)
before42=$(count p42 rx_packets)
ip netns exec "$ID-a" ping -b -q -c 3 -i 0.05 -W 1 10.42.0.255 >/dev/null 2>&1 || true
sleep 0.3
[ "$(count p43 tx_packets)" -eq "$before43" ] || fail "a broadcast in VNI 42 went out of p43"
rx42=$(count t42 rx_packets)
rx43=$(count t43 rx_packets)
[ "$rx42" -ge 23 ] && [ "$rx43" -ge 20 ] || fail "rx_packets: t42 $rx42 (want >= 23), t43 $rx43 (want >= 20)"
pass "each link counts its own: t42 rx $rx42 (3 broadcasts more), t43 rx $rx43; p43 sent none of 42's"

# A reload removes t42: t43 keeps the socket and forwards on.
config > "$TMP/fdlinkd.toml"
ip netns exec "$ID-b" "$FDLINKCTL" -s "$CTL" reload > /dev/null || fail "reload without t42 failed"
ping_ok "$ID-h43" 10.43.0.1 10
before=$(stats | "$PY" -c 'import json,sys; print({x["name"]: x for x in json.load(sys.stdin)["links"]}["t43"]["drops"]["vxlan_unknown_vni"])')
ip netns exec "$ID-a" ping -q -c 2 -i 0.1 -W 1 10.42.0.2 > /dev/null 2>&1 || true
after=$(stats | "$PY" -c 'import json,sys; print({x["name"]: x for x in json.load(sys.stdin)["links"]}["t43"]["drops"]["vxlan_unknown_vni"])')
[ "$after" -gt "$before" ] || fail "VNI 42 after t42 left: vxlan_unknown_vni on t43 stayed $before"
pass "after t42 left: t43 forwards, and VNI 42 is vxlan_unknown_vni on t43 (+$((after - before)))"
stop_daemon
