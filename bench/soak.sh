#!/usr/bin/env bash
# soak.sh [MINUTES]: fdlinkd under full-rate traffic for MINUTES (default 10), not in CI.
#
# The bench topology (topo.sh: fb-gen -> fb-fwd [fdlinkd] -> fb-sink): the generator sends
# 64-byte frames of 256 flows as fast as it can, through a tee (to the egress link and to a
# bridge-free drop sink that counts) and on to fb-sink; pings run the other way meanwhile.
# Every 60 s out0 flaps (down 2 s, up): the link must come back by itself. Every 30 s the
# config is reloaded (`fdlinkctl reload`), alternately adding and removing a sink, while a and
# b and their sinks stay as they are (and so keep their counters). At the end it reports RSS and open fds at start and end,
# checks every counter identity of the final stats, and lists any warning or error event
# other than the flaps' own link_down/link_up. Exit 1 if an identity fails, RSS grows by more
# than 10%, fds leak, or an unexpected event was logged.
set -euo pipefail
cd "$(dirname "$0")"
MINUTES=${1:-10}
OUT=${OUT:-$PWD/out}
FDLINKD=${FDLINKD:-$PWD/../build/daemon/fdlinkd}
FDLINKCTL=${FDLINKCTL:-$(dirname "$FDLINKD")/../ctl/fdlinkctl}
mkdir -p "$OUT"
[ -x build/gen ] || ./build.sh >/dev/null
[ -x "$FDLINKD" ] || { echo "soak: no fdlinkd at $FDLINKD" >&2; exit 1; }
LOG="$OUT/soak-fdlinkd.log"
cleanup() {
  [ -n "${GEN:-}" ] && kill "$GEN" 2>/dev/null || true
  [ -n "${FPID:-}" ] && kill "$FPID" 2>/dev/null || true
  wait 2>/dev/null || true
  ./topo.sh down >/dev/null 2>&1 || true
}
trap cleanup EXIT
./topo.sh up >/dev/null
./topo.sh place user >/dev/null
./topo.sh mode pps >/dev/null

cat > "$OUT/soak.toml" <<EOT
[daemon]
stats_interval = "10s"
log_format = "json"
control_socket = "$OUT/soak.sock"
[[link]]
name = "a"
type = "af_packet"
interface = "in0"
dispatch = "packet_mmap"
tx_ring = true
qdisc_bypass = true
sink = "split"
[[link]]
name = "b"
type = "af_packet"
interface = "out0"
dispatch = "recvmmsg"
sink = "to-a"
[[sink]]
name = "split"
type = "tee"
to = ["b", "count"]
[[sink]]
name = "count"
type = "drop"
[[sink]]
name = "to-a"
type = "forward"
to = "a"
EOT
ip netns exec fb-fwd taskset -c 1 "$FDLINKD" -c "$OUT/soak.toml" 2> "$LOG" &
FPID=$!
for _ in $(seq 50); do grep -q '"event":"ready"' "$LOG" && break; sleep 0.1; done
mem() { awk '/^VmRSS/ {print $2}' "/proc/$FPID/status"; }
fds() { ls "/proc/$FPID/fd" | wc -l; }
rss0=$(mem); fds0=$(fds)
echo "soak: $MINUTES min; fdlinkd pid $FPID, RSS ${rss0} KiB, ${fds0} fds at start"

end=$(( $(date +%s) + MINUTES * 60 ))
ip netns exec fb-gen taskset -c 0 build/gen -i gen0 -s 60 -n 256 -d 02:fb:00:00:00:02 \
  -t $(( MINUTES * 60 + 5 )) > "$OUT/soak-gen.log" 2>&1 &
GEN=$!
flaps=0 reloads=0 reload_failures=0
next_flap=$(( $(date +%s) + 60 ))
next_reload=$(( $(date +%s) + 30 ))
cp "$OUT/soak.toml" "$OUT/soak-base.toml"
while [ "$(date +%s)" -lt "$end" ]; do
  ip netns exec fb-sink ping -q -c 5 -i 0.2 -W 1 10.99.0.1 > /dev/null 2>&1 || true
  if [ "$(date +%s)" -ge "$next_flap" ]; then
    ip -n fb-fwd link set out0 down; sleep 2; ip -n fb-fwd link set out0 up
    flaps=$((flaps + 1)); next_flap=$(( $(date +%s) + 60 ))
  fi
  if [ "$(date +%s)" -ge "$next_reload" ]; then
    cp "$OUT/soak-base.toml" "$OUT/soak.toml"
    [ $((reloads % 2)) -eq 0 ] && printf '[[sink]]\nname = "spare"\ntype = "drop"\n' >> "$OUT/soak.toml"
    "$FDLINKCTL" -s "$OUT/soak.sock" reload > /dev/null || reload_failures=$((reload_failures + 1))
    reloads=$((reloads + 1)); next_reload=$(( $(date +%s) + 30 ))
  fi
  sleep 1
done
kill "$GEN" 2>/dev/null || true; GEN=""
sleep 1
rss1=$(mem); fds1=$(fds)
kill -TERM "$FPID"; wait "$FPID" || true; FPID=""

python3 - "$LOG" "$rss0" "$rss1" "$fds0" "$fds1" "$flaps" "$reloads" "$reload_failures" <<'PY'
import json, sys
log, rss0, rss1, fds0, fds1, flaps, reloads, reload_failures = sys.argv[1], *map(int, sys.argv[2:])
recs = [json.loads(l) for l in open(log) if l.strip()]
final = {r.get("link") or r.get("sink"): r for r in recs if r["event"] == "stats" and r.get("final")}
a, b, count = final["a"], final["b"], final["count"]
problems = []
RX_SIDE = ("rx_queue_full", "runt", "oversize", "vnet_bad_gso", "vnet_gso_size_zero",
           "vnet_bad_hdr_len", "vnet_bad_csum", "vnet_bad_headers")
def rx_drops(l): return sum(l.get("drop_" + r, 0) for r in RX_SIDE)
def tx_drops(l): return l["drops"] - rx_drops(l)
into_graph_a = a["rx_packets"] - rx_drops(a)
into_graph_b = b["rx_packets"] - rx_drops(b)
# Every frame a received went through the tee: once to the drop sink, once towards b.
if into_graph_a != count["dropped"]:
    problems.append(f"a: {into_graph_a} frames into the graph, the drop sink counted {count['dropped']}")
if into_graph_a + b["gso_segments"] != b["tx_packets"] + tx_drops(b):
    problems.append(f"a -> b: {into_graph_a} in (+{b['gso_segments']} segments), "
                    f"{b['tx_packets']} sent + {tx_drops(b)} dropped")
if into_graph_b + a["gso_segments"] != a["tx_packets"] + tx_drops(a):
    problems.append(f"b -> a: {into_graph_b} in, {a['tx_packets']} sent + {tx_drops(a)} dropped")
expected = {"link_down", "link_up", "link_rx_error"}
odd = [r for r in recs if r["level"] in ("warn", "error") and r["event"] not in expected]
downs = sum(1 for r in recs if r["event"] == "link_down")
ups = sum(1 for r in recs if r["event"] == "link_up")
if downs != flaps or ups != flaps:
    problems.append(f"{flaps} flaps but {downs} link_down and {ups} link_up events")
done = sum(1 for r in recs if r["event"] == "reload_done")
if reload_failures or done != reloads:
    problems.append(f"{reloads} reloads, {done} reload_done, {reload_failures} refused")
if rss1 > rss0 * 1.10 + 1024:
    problems.append(f"RSS grew from {rss0} to {rss1} KiB")
if fds1 != fds0:
    problems.append(f"open fds {fds0} -> {fds1}")
print(f"soak: RSS {rss0} -> {rss1} KiB, fds {fds0} -> {fds1}, {flaps} flaps "
      f"({downs} link_down, {ups} link_up), {reloads} reloads ({done} reload_done)")
print(f"soak: a rx {a['rx_packets']} drops {a['drops']}; b tx {b['tx_packets']} drops {b['drops']} "
      f"(link_down {b.get('drop_link_down', 0)}); drop sink counted {count['dropped']}")
for r in odd:
    print("soak: unexpected event:", json.dumps(r))
for p in problems:
    print("soak: FAIL:", p)
sys.exit(1 if problems or odd else 0)
PY
