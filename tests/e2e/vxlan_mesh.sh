#!/usr/bin/env bash
# vxlan_mesh.sh: three fdlinkd hosts (namespaces h1-h3 on one underlay, 10.88.1.1-3) in a
# VXLAN mesh, each joining an inner host iN (10.99.1.N) to VNI 7.
#   h1: remotes = [h2]   (no static entry for h3: it must be learned)
#   h2: remotes = [h1, h3]
#   h3: remotes = [h1, h2]
# Checks: every inner host reaches every other (pings 0% loss), h1 <-> h3 included, which only
# works if h1 learned where i3 is; a broadcast from i2 reaches h1 and h3 exactly once each;
# once learned, a ping i2 -> i1 sends h3 nothing (no more flooding).
source "$(dirname "$0")/lib.sh"

mkns ul
ip -n "$ID-ul" link add br0 type bridge
ip -n "$ID-ul" link set br0 up
for n in 1 2 3; do
  mkns "h$n"; mkns "i$n"
  veth "$ID-h$n" u "$ID-ul" "u$n"
  ip -n "$ID-ul" link set "u$n" master br0
  ip -n "$ID-h$n" addr add "10.88.1.$n/24" dev u
  veth "$ID-h$n" p "$ID-i$n" i
  ip -n "$ID-i$n" link set i mtu 1450
  ip -n "$ID-i$n" addr add "10.99.1.$n/24" dev i
done
remotes=([1]='"10.88.1.2"' [2]='"10.88.1.1", "10.88.1.3"' [3]='"10.88.1.1", "10.88.1.2"')
PIDS=()
for n in 1 2 3; do
  cat > "$TMP/h$n.toml" <<EOT
[daemon]
stats_interval = "0s"
control_socket = "$TMP/ctl$n.sock"
[[link]]
name = "tun"
type = "vxlan"
vni = 7
local = "10.88.1.$n"
remotes = [${remotes[$n]}]
sink = "to-lan"
$(afp_link lan p to-tun)
$(forward_sinks lan tun)
EOT
  ip netns exec "$ID-h$n" "$FDLINKD" -c "$TMP/h$n.toml" --log-format json 2> "$TMP/h$n.log" &
  PIDS+=($!)
  BACKGROUND+=($!)
done
for n in 1 2 3; do
  for _ in $(seq 100); do grep -q '"event":"ready"' "$TMP/h$n.log" && break; sleep 0.05; done
  grep -q '"event":"ready"' "$TMP/h$n.log" || { cat "$TMP/h$n.log" >&2; fail "fdlinkd on h$n not ready"; }
done
pass "three fdlinkd hosts up"

# i3 speaks first: its ARP broadcast reaches h1 through h3's flood, and h1 learns where it is.
ping_ok "$ID-i3" 10.99.1.1 5
grep -q '"event":"vxlan_vtep_learned".*10.88.1.3' "$TMP/h1.log" || fail "h1 did not log learning VTEP 10.88.1.3"
pass "h1 learned VTEP 10.88.1.3 (not in its remotes) from i3's traffic"
for a in 1 2 3; do
  for b in 1 2 3; do
    [ $a = $b ] || ping_ok "$ID-i$a" "10.99.1.$b" 3
  done
done

# count NS FILTER SECONDS CMD...: datagrams matching FILTER on NS's underlay while CMD runs.
count() {
  local ns=$1 filter=$2
  shift 2
  ip netns exec "$ns" timeout 4 tcpdump -i u -n -l "$filter" > "$TMP/cap.$ns" 2>"$TMP/cap.$ns.err" &
  local tp=$!
  capturing "$TMP/cap.$ns.err"
  "$@" >/dev/null 2>&1 || true
  sleep 0.5
  kill "$tp" 2>/dev/null; wait "$tp" 2>/dev/null || true
  grep -cE '^[0-9]{2}:[0-9]{2}:' "$TMP/cap.$ns" || true  # (one line per packet; VXLAN adds decoded lines)
}
# A broadcast with an experimental EtherType from i2: once to each of h1 and h3.
bcast() {
  ip netns exec "$ID-i2" "$PY" -c '
import socket
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("i", 0))
s.send(b"\xff" * 6 + b"\x02\xfd\x00\x00\x00\x02" + b"\x88\xb5" + b"mesh-broadcast" + bytes(32))'
}
# (UDP header 8 + VXLAN header 8 + the inner EtherType at 12: udp[28:2])
f_bcast="udp port 4789 and src 10.88.1.2 and udp[28:2] = 0x88b5"
c1=$(count "$ID-h1" "$f_bcast" bcast) && c3=$(count "$ID-h3" "$f_bcast" bcast)
[ "$c1" = 1 ] && [ "$c3" = 1 ] || { cat "$TMP/cap.$ID-h1" >&2; fail "a broadcast from i2 reached h1 $c1 times and h3 $c3 times, want once each"; }
pass "a broadcast from i2: once to h1, once to h3"

# Learned: i2 -> i1 unicast goes to h1 only. (ICMP inside: the inner IPv4 protocol at udp[39])
f_icmp="udp port 4789 and src 10.88.1.2 and udp[28:2] = 0x0800 and udp[39] = 1"
c3=$(count "$ID-h3" "$f_icmp" ip netns exec "$ID-i2" ping -c 5 -i 0.05 10.99.1.1)
c1=$(count "$ID-h1" "$f_icmp" ip netns exec "$ID-i2" ping -c 5 -i 0.05 10.99.1.1)
[ "$c3" = 0 ] || fail "pings i2 -> i1 reached h3 $c3 times: still flooding"
[ "$c1" = 5 ] || fail "pings i2 -> i1 reached h1 $c1 times, want 5"
pass "5 pings i2 -> i1 after learning: 5 datagrams to h1, none to h3"
# Per-remote counters: h1 sent to and heard from both VTEPs, the learned one included.
ip netns exec "$ID-h1" "$FDLINKCTL" -s "$TMP/ctl1.sock" stats --json | "$PY" -c '
import json, sys
tun = {l["name"]: l for l in json.load(sys.stdin)["links"]}["tun"]
r = {x["remote"]: x for x in tun["remotes"]}
assert set(r) == {"10.88.1.2", "10.88.1.3"}, f"remotes {sorted(r)}"
for v in r.values():
    assert v["tx_packets"] > 0 and v["rx_packets"] > 0 and v["tx_bytes"] > 0, v
print("ok: h1 per remote:", ", ".join("%s tx %d rx %d" % (k, v["tx_packets"], v["rx_packets"]) for k, v in sorted(r.items())))
' || fail "per-remote counters on h1"
for p in "${PIDS[@]}"; do kill -TERM "$p"; done
for p in "${PIDS[@]}"; do wait "$p" || fail "an fdlinkd exited with status $? after SIGTERM"; done
pass "the three fdlinkd hosts exit 0 on SIGTERM"
