#!/usr/bin/env bash
# vxlan_tcp.sh [ROUNDS] [SECS]: TCP through a VXLAN tunnel (VNI 42, IPv4 underlay over a veth),
# with fdlinkd at one end against the kernel's VXLAN at that end; the other end is the kernel's
# VXLAN in both. Interleaved rounds, both directions; prints Gbit/s per round and the medians.
# iperf3 on CPU0, fdlinkd on CPU1. PERF=1: a perf profile of fdlinkd during each direction of
# the first round ($OUT/vxlan-DIR.perf; `perf report -i` it).
#
#   kernel   tv-a: vx0 in br0 (10.97.0.1)  <-underlay->  tv-b: vx0 in br0 <-> veth <-> tv-h (10.97.0.2)
#   fdlinkd  tv-a: the same                <-underlay->  tv-b: fdlinkd: vxlan link <-> af_packet <-> tv-h
# Checksum offload is off on the underlay veths in both (a veth would hand the kernel VTEP's
# inner TCP checksums on unfinished; see docs/multi-host.md), so both pay for checksums in
# software on the underlay, as without a NIC.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
FDLINKD=${FDLINKD:-$HERE/../build/daemon/fdlinkd}
ROUNDS=${1:-3} SECS=${2:-5}
OUT=${OUT:-$HERE/out}
mkdir -p "$OUT"
NS=(tv-a tv-b tv-h)
PID=
down() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  PID=
  for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
}
trap down EXIT
up() {  # up kernel|fdlinkd
  down
  for n in "${NS[@]}"; do ip netns add "$n"; ip -n "$n" link set lo up; done
  ip link add ua netns tv-a type veth peer name ub netns tv-b
  ip -n tv-a addr add 10.96.0.1/24 dev ua
  ip -n tv-b addr add 10.96.0.2/24 dev ub
  for x in a b; do
    ip -n tv-$x link set u$x up
  done
  ip -n tv-a link add vx0 type vxlan id 42 dstport 4789 local 10.96.0.1 remote 10.96.0.2 dev ua
  ip -n tv-a link add br0 type bridge
  ip -n tv-a link set vx0 master br0
  ip -n tv-a link set vx0 up
  ip -n tv-a link set br0 up
  ip -n tv-a addr add 10.97.0.1/24 dev br0
  ip link add hv netns tv-h type veth peer name pv netns tv-b
  ip -n tv-h link set hv mtu 1450
  ip -n tv-h addr add 10.97.0.2/24 dev hv
  ip -n tv-h link set hv up
  ip -n tv-b link set pv up
  if [ "$1" = kernel ]; then
    ip -n tv-b link add vx0 type vxlan id 42 dstport 4789 local 10.96.0.2 remote 10.96.0.1 dev ub
    ip -n tv-b link add br0 type bridge
    ip -n tv-b link set vx0 master br0
    ip -n tv-b link set pv master br0
    for d in vx0 br0; do ip -n tv-b link set $d up; done
  else
    cat > "$OUT/vxlan.toml" <<EOT
[daemon]
stats_interval = "0s"
control_socket = ""
[[link]]
name = "tun"
type = "vxlan"
vni = 42
local = "10.96.0.2"
remotes = ["10.96.0.1"]
sink = "to-lan"
[[link]]
name = "lan"
type = "af_packet"
interface = "pv"
sink = "to-tun"
gro = ${GRO:-true}
[[sink]]
name = "to-lan"
type = "forward"
to = "lan"
[[sink]]
name = "to-tun"
type = "forward"
to = "tun"
EOT
    ip netns exec tv-b taskset -c 1 "$FDLINKD" -c "$OUT/vxlan.toml" 2>"$OUT/vxlan.log" &
    PID=$!
    sleep 0.5
  fi
  ip netns exec tv-h ping -q -c 3 -i 0.1 10.97.0.1 >/dev/null || { echo "no path ($1)" >&2; exit 1; }
}
iperf() {  # iperf DIR: Gbit/s, h -> a ("up") or a -> h ("down")
  ip netns exec tv-a taskset -c 0 iperf3 -s -1 -B 10.97.0.1 </dev/null >/dev/null 2>&1 &
  local s=$!
  sleep 0.3
  local r=""
  [ "$1" = down ] && r=-R
  ip netns exec tv-h taskset -c 0 iperf3 -c 10.97.0.1 $r -t "$SECS" -J 2>/dev/null |
    python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))'
  wait $s 2>/dev/null || true
}
declare -A R
for round in $(seq "$ROUNDS"); do
  for mode in kernel fdlinkd; do
    up $mode
    for dir in up down; do
      if [ -n "${PERF:-}" ] && [ "$mode" = fdlinkd ] && [ "$round" = 1 ]; then
        perf record -q -g -p "$PID" -o "$OUT/vxlan-$dir.perf" -- sleep $((SECS - 1)) >/dev/null 2>&1 &
      fi
      g=$(iperf $dir)
      R[$mode-$dir]+="$g "
      echo "round $round $mode $dir: $g Gbit/s"
    done
  done
done
down
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for dir in up down; do
  k=$(median <<< "${R[kernel-$dir]}") f=$(median <<< "${R[fdlinkd-$dir]}")
  echo "median $dir: kernel $k, fdlinkd $f Gbit/s, ratio $(python3 -c "print('%.2f' % ($f / $k))")"
done
