#!/usr/bin/env bash
# latency.sh [-r ROUNDS] [-n PINGS] [-o CSV] [FORWARDER...]: a lone ping's round trip through
# each forwarder, measured as a new user would meet it: two hosts in namespaces, plain veths
# at their default settings (offloads on, no NAPI, nothing pinned, no RPS), the forwarder in a
# third namespace, one ping every 50 ms. Interleaved: each round runs every forwarder once, in
# turn, on a fresh topology. Prints the median and p90 round trip per forwarder (over the
# rounds' medians) and the difference to the bridge.
#
# Forwarders: bridge (a Linux bridge over the two veths), then fdlinkd in each receive mode
# with the documented low-latency settings:
#   readv, recvmmsg, v2 ([link.ring] version = 2), v2-txring (and tx_ring = true), af_xdp:
#     [daemon] busy_poll = "200us"
#   NAME-spin: the same with busy_poll = "always" (the worker never sleeps: a CPU spins)
#   NAME-idle: without busy_poll (the default)
#   offload: af_packet links with forward sinks, offload = "xdp" (frames forwarded in XDP); the
#     hosts' veth ends get GRO on, which a frame redirected into a veth needs at its peer;
#     bridge-gro: the bridge with the same GRO setting, to compare
# Default: bridge readv-idle readv recvmmsg v2 v2-txring af_xdp readv-spin v2-spin af_xdp-spin
#
# This is the figure the README's "Choosing a mode" quotes. (bench/run.sh's `-L` measures
# latency on its own topology, where the bridge's veths are in NAPI mode with their receive
# work on another CPU, as a throughput benchmark wants: that costs the bridge a wake-up, and
# its 0.30 ms there is not what a user sees.)
# Run as root, from the build tree's parent: FDLINKD defaults to ../build/daemon/fdlinkd.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
FDLINKD=${FDLINKD:-$HERE/../build/daemon/fdlinkd}
ROUNDS=3 PINGS=100 CSV=""
while getopts "r:n:o:" o; do
  case $o in
    r) ROUNDS=$OPTARG ;;
    n) PINGS=$OPTARG ;;
    o) CSV=$OPTARG ;;
    *) echo "usage: $0 [-r ROUNDS] [-n PINGS] [-o CSV] [FORWARDER...]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
FWDS=("$@")
[ ${#FWDS[@]} -gt 0 ] || FWDS=(bridge readv-idle readv recvmmsg v2 v2-txring af_xdp readv-spin v2-spin af_xdp-spin)
[ "$(id -u)" -eq 0 ] || { echo "latency: run as root" >&2; exit 1; }
[ -x "$FDLINKD" ] || { echo "latency: no fdlinkd at $FDLINKD" >&2; exit 1; }

H1=lt-h1 H2=lt-h2 FW=lt-fw
WORK=$(mktemp -d /tmp/fdlinkd-latency.XXXXXX)
DAEMON=""
down() {
  [ -z "$DAEMON" ] || { kill "$DAEMON" 2>/dev/null; wait "$DAEMON" 2>/dev/null || true; DAEMON=""; }
  for ns in $H1 $H2 $FW; do ip netns del $ns 2>/dev/null || true; done
}
trap 'down; rm -rf "$WORK"' EXIT

up() {
  down
  for ns in $H1 $H2 $FW; do ip netns add $ns; ip -n $ns link set lo up; done
  ip link add h1 netns $H1 type veth peer name pa netns $FW
  ip link add h2 netns $H2 type veth peer name pb netns $FW
  ip -n $H1 addr add 10.98.0.1/24 dev h1
  ip -n $H2 addr add 10.98.0.2/24 dev h2
  for x in "$H1 h1" "$H2 h2" "$FW pa" "$FW pb"; do set -- $x; ip -n "$1" link set "$2" up; done
}

start() {  # start FORWARDER
  local f=$1 base=${1%-spin} poll='busy_poll = "200us"'
  base=${base%-idle}
  [[ $f == *-spin ]] && poll='busy_poll = "always"'
  [[ $f == *-idle ]] && poll=''
  if [ "$f" = offload ] || [ "$f" = bridge-gro ]; then
    ip netns exec $H1 ethtool -K h1 gro on >/dev/null
    ip netns exec $H2 ethtool -K h2 gro on >/dev/null
  fi
  if [ "$f" = bridge ] || [ "$f" = bridge-gro ]; then
    ip -n $FW link add br0 type bridge
    ip -n $FW link set pa master br0
    ip -n $FW link set pb master br0
    ip -n $FW link set br0 up
    return
  fi
  local type=af_packet extra=()
  case $base in
    readv) extra=('dispatch = "readv"') ;;
    recvmmsg) extra=('dispatch = "recvmmsg"') ;;
    v2) extra=('dispatch = "packet_mmap"' '[link.ring]' 'version = 2') ;;
    v2-txring) extra=('dispatch = "packet_mmap"' 'tx_ring = true' '[link.ring]' 'version = 2') ;;
    af_xdp) type=af_xdp ;;
    offload) extra=('dispatch = "packet_mmap"' 'tx_ring = true') ;;
    *) echo "latency: unknown forwarder $f" >&2; exit 2 ;;
  esac
  {
    printf '[daemon]\nstats_interval = "0s"\ncontrol_socket = ""\n%s\n' "$poll"
    for l in "a b" "b a"; do
      set -- $l
      printf '[[link]]\nname = "%s"\ntype = "%s"\ninterface = "p%s"\nsink = "to-%s"\n' "$1" "$type" "$1" "$2"
      printf '%s\n' "${extra[@]}"
    done
    local off=''
    [ "$base" != offload ] || off='offload = "xdp"'
    printf '[[sink]]\nname = "to-a"\ntype = "forward"\nto = "a"\n%s\n[[sink]]\nname = "to-b"\ntype = "forward"\nto = "b"\n%s\n' "$off" "$off"
  } > "$WORK/fdlinkd.toml"
  ip netns exec $FW "$FDLINKD" -c "$WORK/fdlinkd.toml" 2> "$WORK/fdlinkd.log" &
  DAEMON=$!
  for _ in $(seq 100); do grep -q " ready: " "$WORK/fdlinkd.log" && return; sleep 0.05; done
  cat "$WORK/fdlinkd.log" >&2
  echo "latency: fdlinkd ($f) not ready" >&2
  exit 1
}

measure() {  # measure FORWARDER ROUND: prints "median p90 replies" in ms
  ip netns exec $H1 ping -c 3 -i 0.05 -W 1 10.98.0.2 > /dev/null 2>&1 || true  # (ARP, warm)
  ip netns exec $H1 ping -c "$PINGS" -i 0.05 -W 1 10.98.0.2 2>/dev/null |
    sed -n 's/.*time=\([0-9.]*\) ms/\1/p' | sort -g |
    awk '{v[NR] = $1} END { if (NR == 0) { print "- - 0"; exit }
         p = int(NR * 0.9 + 0.5); if (p < 1) p = 1
         printf "%.3f %.3f %d\n", v[int((NR + 1) / 2)], v[p], NR }'
}

declare -A results
[ -z "$CSV" ] || echo "round,forwarder,median_ms,p90_ms,replies" > "$CSV"
for r in $(seq "$ROUNDS"); do
  for f in "${FWDS[@]}"; do
    up
    start "$f"
    set -- $(measure)
    echo "round $r $f: median $1 ms, p90 $2 ms ($3 replies)"
    [ -z "$CSV" ] || echo "$r,$f,$1,$2,$3" >> "$CSV"
    results[$f]+="$1 "
    down
  done
done

echo
printf '%-14s %10s %10s\n' forwarder "median ms" "vs bridge"
bridge=""
for f in "${FWDS[@]}"; do
  med=$(printf '%s\n' ${results[$f]} | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
  [ "$f" = bridge ] && bridge=$med
  if [ -n "$bridge" ] && [ "$f" != bridge ]; then
    printf '%-14s %10s %+9.0f us\n' "$f" "$med" "$(awk -v a="$med" -v b="$bridge" 'BEGIN {print (a - b) * 1000}')"
  else
    printf '%-14s %10s\n' "$f" "$med"
  fi
done
