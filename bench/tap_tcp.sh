#!/usr/bin/env bash
# tap_tcp.sh [ROUNDS] [SECS]: TCP from a namespace behind a TAP with virtio-net headers and TSO,
# through fdlinkd, to a namespace behind a veth (offloads at their defaults), beside the Linux
# bridge doing the same job (veth <-> bridge <-> veth, offloads on). Interleaved rounds;
# prints Gbit/s per round and the medians. iperf3 client and server on CPU0, fdlinkd on CPU1.
#
#   bridge        tb-h1 (veth) <-> br0 in tb-br <-> (veth) tb-h2
#   fdlinkd-vnet  tb-h1 (TAP t0, vnet_hdr) <-> fdlinkd <-> af_packet vnet_hdr = true <-> tb-h2
#   fdlinkd-soft  the same, af_packet without vnet_hdr: fdlinkd segments in software
#   fdlinkd-default  the af_packet link at its defaults (no vnet_hdr, no qdisc_bypass key):
#                 super-frames go to the kernel's qdisc path whole
#   fdlinkd-vnet-poll  fdlinkd-vnet with busy_poll = "200us" (the worker polls instead of
#                 being woken by the sender's CPU for each super-frame)
#   fdlinkd-base-vnet, fdlinkd-base-default  the same two with $FDLINKD_BASE (another build),
#                 for an A/B run of two builds in the same interleaved rounds
# FWDS="bridge fdlinkd-vnet ..." picks the paths (default: bridge and the three fdlinkd ones);
# FDLINKD_DAEMON adds lines to fdlinkd's [daemon] table (e.g. 'busy_poll = "200us"').
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
FDLINKD=${FDLINKD:-$HERE/../build/daemon/fdlinkd}
FWDS=${FWDS:-bridge fdlinkd-vnet fdlinkd-soft fdlinkd-default}
ROUNDS=${1:-3} SECS=${2:-8}
OUT=${OUT:-$HERE/out}
mkdir -p "$OUT"
NS=(tb-h1 tb-h2 tb-br tb-fw)
down() {
  for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
}
trap down EXIT
up_hosts() {
  down
  for n in "${NS[@]}"; do ip netns add "$n"; ip -n "$n" link set lo up; done
}
iperf() {  # prints Gbit/s
  ip netns exec tb-h2 taskset -c 0 iperf3 -s -1 -B 10.98.0.2 </dev/null >/dev/null 2>&1 &
  local s=$!
  sleep 0.3
  ip netns exec tb-h1 taskset -c 0 iperf3 -c 10.98.0.2 -t "$SECS" -J 2>/dev/null |
    python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))'
  wait $s 2>/dev/null || true
}
run_bridge() {
  up_hosts
  ip link add h1 netns tb-h1 type veth peer name p1 netns tb-br
  ip link add h2 netns tb-h2 type veth peer name p2 netns tb-br
  ip -n tb-br link add br0 type bridge stp_state 0 forward_delay 0
  for p in p1 p2; do ip -n tb-br link set $p master br0; ip -n tb-br link set $p up; done
  ip -n tb-br link set br0 up
  ip -n tb-h1 addr add 10.98.0.1/24 dev h1 && ip -n tb-h1 link set h1 up
  ip -n tb-h2 addr add 10.98.0.2/24 dev h2 && ip -n tb-h2 link set h2 up
  sleep 0.5
  iperf
}
run_fdlinkd() {  # BINARY VNET(true|false|default) [LINES for [daemon]]
  local bin=$1 vnet=$2 extra=${3:-}
  up_hosts
  ip link add h2 netns tb-h2 type veth peer name pb netns tb-fw
  ip -n tb-fw link set pb up
  ip -n tb-h2 addr add 10.98.0.2/24 dev h2 && ip -n tb-h2 link set h2 up
  cat > "$OUT/tap_tcp.toml" <<EOT
[daemon]
stats_interval = "0s"
${FDLINKD_DAEMON:-}
$extra
[[link]]
name = "tap"
type = "tap"
interface = "t0"
netns = "tb-h1"
vnet_hdr = true
sink = "to-wire"
[[link]]
name = "wire"
type = "af_packet"
interface = "pb"
$([ "$vnet" = default ] || printf 'vnet_hdr = %s\nqdisc_bypass = true' "$vnet")
sink = "to-tap"
[[sink]]
name = "to-wire"
type = "forward"
to = "wire"
[[sink]]
name = "to-tap"
type = "forward"
to = "tap"
EOT
  # Runs inside $(...): the daemon must not hold that pipe, and must be stopped here.
  ip netns exec tb-fw taskset -c 1 "$bin" -c "$OUT/tap_tcp.toml" >/dev/null 2> "$OUT/tap_tcp.log" &
  local pid=$!
  for _ in $(seq 50); do grep -q ' ready: ' "$OUT/tap_tcp.log" 2>/dev/null && break; sleep 0.1; done
  ip -n tb-h1 addr add 10.98.0.1/24 dev t0
  sleep 0.5
  iperf
  kill -INT "$pid"
  wait "$pid" || true
}
declare -A res
for r in $(seq "$ROUNDS"); do
  for f in $FWDS; do
    case $f in
      bridge) v=$(run_bridge) ;;
      fdlinkd-vnet) v=$(run_fdlinkd "$FDLINKD" true) ;;
      fdlinkd-vnet-poll) v=$(run_fdlinkd "$FDLINKD" true 'busy_poll = "200us"') ;;
      fdlinkd-soft) v=$(run_fdlinkd "$FDLINKD" false) ;;
      fdlinkd-default) v=$(run_fdlinkd "$FDLINKD" default) ;;
      fdlinkd-base-vnet) v=$(run_fdlinkd "${FDLINKD_BASE:?FDLINKD_BASE names the other build}" true) ;;
      fdlinkd-base-default) v=$(run_fdlinkd "${FDLINKD_BASE:?FDLINKD_BASE names the other build}" default) ;;
      *) echo "unknown path $f" >&2; exit 2 ;;
    esac
    down
    echo "round $r $f: $v Gbit/s" >&2
    res[$f]="${res[$f]:-} $v"
  done
done
args=()
for f in $FWDS; do args+=("$f" "${res[$f]}"); done
python3 - "${args[@]}" <<'EOF'
import statistics, sys
what = {"bridge": "bridge",
        "fdlinkd-vnet": "fdlinkd-vnet (GSO pass-through)",
        "fdlinkd-vnet-poll": "fdlinkd-vnet-poll (GSO pass-through, busy_poll = 200us)",
        "fdlinkd-soft": "fdlinkd-soft (software GSO)",
        "fdlinkd-default": "fdlinkd-default (af_packet defaults: pass-through, qdisc path)",
        "fdlinkd-base-vnet": "fdlinkd-base-vnet (FDLINKD_BASE, GSO pass-through)",
        "fdlinkd-base-default": "fdlinkd-base-default (FDLINKD_BASE, af_packet defaults)"}
a = sys.argv[1:]
runs = {a[i]: [float(x) for x in a[i + 1].split()] for i in range(0, len(a), 2)}
b = runs.get("bridge")
print("| path | median Gbit/s | min-max | ratio to bridge | per-round ratio |")
print("|---|---:|---:|---:|---:|")
for n, v in runs.items():
    if b:
        pr = [x / y for x, y in zip(v, b)]
        rel = "%.2f | %.2f-%.2f" % (statistics.median(v) / statistics.median(b), min(pr), max(pr))
    else:
        rel = "- | -"
    print("| %s | %.2f | %.2f-%.2f | %s |" % (what[n], statistics.median(v), min(v), max(v), rel))
EOF
