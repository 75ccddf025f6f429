#!/usr/bin/env bash
# run.sh [options] [FORWARDER ...]
#
# Interleaved side-by-side benchmark of L2 forwarders between in0 and out0
# (namespace fb-fwd).  For round in 1..ROUNDS, for each forwarder in order:
# set the CPU placement, start the forwarder, measure 64B pps, 1514B pps and
# (for TCP_FWDS) iperf3 TCP throughput, stop it.  Then print medians, min-max
# and ratios to `bridge`.
#
# Forwarders: bridge tc testpmd testpmd-xdp (DPDK's af_xdp driver) ovs afp-min, and fdlinkd in each of its modes:
#   fdlinkd-readv (readv + sendmmsg), fdlinkd-mmsg (recvmmsg + sendmmsg),
#   fdlinkd-mmap (packet_mmap + sendmmsg), fdlinkd-ring (packet_mmap + TX ring),
#   fdlinkd-mmap2, fdlinkd-ring2 (the same with a TPACKET_V2 receive ring, ring.version = 2),
#   fdlinkd-mmsgring (recvmmsg + TX ring), fdlinkd-xdp (af_xdp links: native XDP, copy mode),
#   fdlinkd-xdp-alt (the same from the binary FDLINKD_ALT and with the link lines FDLINKD_ALT_LINK:
#   an A/B of two builds or settings), fdlinkd-xdp-alt2 (from FDLINKD_ALT2, a third build),
#   fdlinkd-ring-alt (fdlinkd-ring from the binary FDLINKD_ALT: an A/B of two builds),
#   fdlinkd-offload-bridge-alt (likewise for fdlinkd-offload-bridge),
#   fdlinkd-xdp-bp, fdlinkd-readv-bp, fdlinkd-ring2-bp (with [daemon] busy_poll = "200us"), fdlinkd-gro (recvmmsg + sendmmsg, vnet_hdr, in the
#   bridge's placement: veth GRO and NAPI on the forwarder's CPU; GSO passed through)
#   Append "-rps" to any name (fdlinkd-ring-rps) to run it in `topo.sh place rps`: the
#   forwarder's receive delivery steered to its own CPU, as the bridge's is (meant for TCP;
#   under pps overload the softirq crowds the forwarder out).
#   Other stages, all in the ring mode: fdlinkd-bridge (a bridge sink over the two ports),
#   fdlinkd-bridge4 (four ports, two idle), fdlinkd-teepcap (forward, plus a tee that writes
#   every frame received on in0 to a pcap file); next to them: bridge4 (a Linux bridge with
#   the same four ports) and ovs-normal (Open vSwitch as a learning switch, NORMAL action).
#   (default: bridge testpmd afp-min fdlinkd-mmsg fdlinkd-mmap fdlinkd-ring)
# Options (env or flags):
#   -r ROUNDS      (ROUNDS=5)       rounds
#   -t SECS        (SECS=3)         measured window per pps sample (after WARM=0.5 s warm-up)
#   -T TCP_SECS    (TCP_SECS=10)    iperf3 duration; 0 disables TCP
#   -s "SIZES"     (SIZES="60 1514") frame sizes without FCS (60 = 64B on the wire)
#   -c "TCP_FWDS"  (TCP_FWDS="bridge testpmd fdlinkd-mmsg fdlinkd-ring") forwarders that also get iperf3
#   -L PINGS       (LAT_PINGS=0)    also measure latency at low load: PINGS pings gen->sink, one
#                                   every 50 ms, median rtt in ms (metric "lat"); 0 disables
#   KEEP=1         leave the topology up at the end
#   PERF=SECS      in round 1, after the measurements, profile each userspace forwarder for SECS
#                  seconds of 64-byte load (PERF_SIZE=1514: full frames; perf record -g on its
#                  process, PERF_KEEP=1 keeps out/perf-FWD.data; out/perf-FWD.txt:
#                  user/kernel split by binary, then the top symbols)
#   FDLINKD_RING   TOML lines for each fdlinkd link's [link.ring] (e.g. 'block_size = "1MiB"')
#   CAP=PCT        cap each userspace forwarder at PCT% of one CPU (cgroup v1 cpu quota,
#                  10 ms period), so the forwarder, not the generator, is the bottleneck:
#                  then pps measures its efficiency (pps per core = pps * 100 / PCT)
# Output: a table on stdout (markdown), raw samples in out/raw-<stamp>.csv,
# forwarder logs in out/.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE"
BIN=${BIN:-$HERE/build}
OUT=${OUT:-$HERE/out}
GEN_CPU=${GEN_CPU:-0}
FWD_CPU=${FWD_CPU:-1}
ROUNDS=${ROUNDS:-5}
SECS=${SECS:-3}
TCP_SECS=${TCP_SECS:-10}
SIZES=${SIZES:-60 1514}
WARM=${WARM:-0.5}
TCP_FWDS=${TCP_FWDS:-bridge testpmd fdlinkd-mmsg fdlinkd-ring}
LAT_PINGS=${LAT_PINGS:-0}
export GEN_CPU FWD_CPU BIN OUT
while getopts "r:t:T:s:c:L:h" o; do
  case $o in
    r) ROUNDS=$OPTARG;; t) SECS=$OPTARG;; T) TCP_SECS=$OPTARG;; L) LAT_PINGS=$OPTARG;;
    s) SIZES=$OPTARG;; c) TCP_FWDS=$OPTARG;;
    *) sed -n '2,22p' "$0"; exit 2;;
  esac
done
shift $((OPTIND - 1))
FWDS=("$@")
[ ${#FWDS[@]} -gt 0 ] || FWDS=(bridge testpmd afp-min fdlinkd-mmsg fdlinkd-mmap fdlinkd-ring)
mkdir -p "$OUT"
STAMP=$(date +%Y%m%d-%H%M%S)
RAW="$OUT/raw-$STAMP.csv"
echo "round,fwd,metric,value,offered,cpu_gen,cpu_fwd,note" > "$RAW"
[ -x "$BIN/gen" ] && [ -x "$BIN/afp-min" ] || ./build.sh >/dev/null

FPID=""          # pid of the running userspace forwarder (ours)
CAP=${CAP:-}
CAPCG=/sys/fs/cgroup/cpu/fb-cap
# cap_pid PID...: put processes under the CPU quota when CAP is set
cap_pid() {
  [ -n "$CAP" ] || return 0
  mkdir -p "$CAPCG"
  echo 10000 > "$CAPCG/cpu.cfs_period_us"
  echo $((CAP * 100)) > "$CAPCG/cpu.cfs_quota_us"
  local p; for p in "$@"; do echo "$p" > "$CAPCG/cgroup.procs"; done
}
OVS_DIR="$OUT/ovs"

log() { echo "[$(date +%T)] $*" >&2; }

# ---------------------------------------------------------------- forwarders
# Each start_X returns 0 when the forwarder is forwarding; stop_X undoes it.
# fdlinkd-gro takes the bridge's placement: its ports in veth NAPI mode with GRO, their receive
# work on the forwarder's CPU; it then gets GRO super-frames and passes them on (vnet_hdr).
# Any forwarder name with "-rps" appended (testpmd-rps, fdlinkd-ring-rps) runs that forwarder in
# `place rps`: user placement, but in0/out0 steered by RPS to the forwarder's CPU, so the
# forwarder's receive delivery runs on its own CPU as the bridge's does (for TCP; see topo.sh).
class_of() { case $1 in bridge|bridge4|tc|fdlinkd-gro) echo kernel;; fdlinkd-offload*) echo xdp;; *-rps) echo rps;; *) echo user;; esac; }
# fdlinkd-offload (forward sinks with offload = "xdp") and fdlinkd-offload-bridge (a bridge sink
# with it): frames redirected in XDP from in0 to out0. They take the kernel's placement (in0's
# NAPI, where the program runs, on the forwarder's CPU), and sink0 in NAPI mode on the same CPU:
# a frame redirected into a veth reaches its peer only when the peer has NAPI (GRO on).

# Two more ports for the 4-port bridges: veth pairs inside fb-fwd whose far ends stay idle.
extra_ports() {
  local i
  for i in 1 2; do
    ip -n fb-fwd link add "x$i" type veth peer name "x${i}p" 2>/dev/null || true
    ip -n fb-fwd link set "x$i" up
    ip -n fb-fwd link set "x${i}p" up
  done
}
del_extra_ports() { ip -n fb-fwd link del x1 2>/dev/null || true; ip -n fb-fwd link del x2 2>/dev/null || true; }
start_bridge4() {
  extra_ports
  start_bridge
  ip -n fb-fwd link set x1 master br0
  ip -n fb-fwd link set x2 master br0
}
stop_bridge4() { stop_bridge; del_extra_ports; }
start_ovs-normal() {  # OVS as a learning switch (NORMAL action), like fdlinkd's bridge sink
  start_ovs
  ovs-ofctl del-flows ovsbr
  ovs-ofctl add-flow ovsbr actions=NORMAL
}
stop_ovs-normal() { stop_ovs; }

start_bridge() {
  ip -n fb-fwd link add br0 type bridge stp_state 0 forward_delay 0
  ip -n fb-fwd link set in0 master br0
  ip -n fb-fwd link set out0 master br0
  ip -n fb-fwd link set br0 up
  sleep 0.5
}
stop_bridge() { ip -n fb-fwd link del br0 2>/dev/null || true; }

start_tc() {
  local a b
  for a in in0 out0; do
    b=$([ $a = in0 ] && echo out0 || echo in0)
    ip netns exec fb-fwd tc qdisc add dev $a clsact
    # matchall is not built into this kernel; u32 "match u32 0 0" matches every frame
    ip netns exec fb-fwd tc filter add dev $a ingress protocol all prio 1 u32 match u32 0 0 \
      action mirred egress redirect dev $b
  done
}
stop_tc() { ip netns exec fb-fwd sh -c 'tc qdisc del dev in0 clsact; tc qdisc del dev out0 clsact' 2>/dev/null || true; }

# The exact testpmd command (lcore 0 = main, lcore 1 = forwarding; both on FWD_CPU).
TESTPMD_CMD="dpdk-testpmd --no-huge --no-pci -m 1024 --lcores 0@$FWD_CPU,1@$FWD_CPU --file-prefix fb-testpmd \
--vdev=net_af_packet0,iface=in0 --vdev=net_af_packet1,iface=out0 -- --forward-mode=io --auto-start --stats-period 1"
start_testpmd() {
  # --stats-period keeps testpmd running without a terminal (otherwise it
  # exits at "Press enter to exit" when stdin is /dev/null).
  ip netns exec fb-fwd taskset -c "$FWD_CPU" $TESTPMD_CMD </dev/null > "$OUT/testpmd.log" 2>&1 &
  FPID=$!
  local i
  for i in $(seq 1 100); do
    grep -aq 'Port statistics' "$OUT/testpmd.log" 2>/dev/null && { cap_pid "$FPID"; return 0; }
    kill -0 "$FPID" 2>/dev/null || { FPID=""; return 1; }
    sleep 0.1
  done
  return 1
}
stop_testpmd() { stop_pid; rm -rf /var/run/dpdk/fb-testpmd; rmdir /var/run/dpdk 2>/dev/null || true; }
# testpmd on DPDK's AF_XDP driver (Debian package librte-net-af-xdp23), same lcores; copy mode
# on veth, as fdlinkd's af_xdp links.
start_testpmd-xdp() {
  local save=$TESTPMD_CMD
  TESTPMD_CMD=${TESTPMD_CMD//net_af_packet/net_af_xdp}
  local rc=0
  start_testpmd || rc=$?
  TESTPMD_CMD=$save
  return $rc
}
stop_testpmd-xdp() { stop_testpmd; }

ovs_env() { export OVS_RUNDIR=$OVS_DIR OVS_LOGDIR=$OVS_DIR OVS_DBDIR=$OVS_DIR OVS_SYSCONFDIR=$OVS_DIR; }
start_ovs() {
  # Open vSwitch userspace (netdev) datapath, started by hand, no systemd.
  # Ports in0/out0 are "system" netdevs (netdev-linux: AF_PACKET + recvmmsg),
  # polled by the main thread; two OpenFlow rules make it a port-to-port wire.
  ovs_env
  rm -rf "$OVS_DIR"; mkdir -p "$OVS_DIR"
  ovsdb-tool create "$OVS_DIR/conf.db" /usr/share/openvswitch/vswitch.ovsschema
  ip netns exec fb-fwd taskset -c "$FWD_CPU" ovsdb-server "$OVS_DIR/conf.db" --remote=punix:"$OVS_DIR/db.sock" \
    --pidfile="$OVS_DIR/ovsdb-server.pid" --detach --log-file="$OVS_DIR/ovsdb-server.log" --unixctl="$OVS_DIR/ovsdb-server.ctl"
  ovs-vsctl --db=unix:"$OVS_DIR/db.sock" --no-wait init
  ip netns exec fb-fwd taskset -c "$FWD_CPU" ovs-vswitchd unix:"$OVS_DIR/db.sock" --pidfile="$OVS_DIR/ovs-vswitchd.pid" \
    --detach --log-file="$OVS_DIR/ovs-vswitchd.log" --unixctl="$OVS_DIR/ovs-vswitchd.ctl"
  ovs-vsctl --db=unix:"$OVS_DIR/db.sock" --timeout=10 add-br ovsbr -- set bridge ovsbr datapath_type=netdev \
    -- add-port ovsbr in0 -- add-port ovsbr out0
  ovs-ofctl del-flows ovsbr
  ovs-ofctl add-flow ovsbr in_port=in0,actions=output:out0
  ovs-ofctl add-flow ovsbr in_port=out0,actions=output:in0
  cap_pid "$(cat "$OVS_DIR/ovs-vswitchd.pid")"
  sleep 0.5
}
stop_ovs() {
  ovs_env
  local f p
  [ -e "$OVS_DIR/ovs-vswitchd.ctl" ] && ovs-appctl -t "$OVS_DIR/ovs-vswitchd.ctl" exit --cleanup 2>/dev/null || true
  for f in ovs-vswitchd ovsdb-server; do
    p=$(cat "$OVS_DIR/$f.pid" 2>/dev/null || true)
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  sleep 0.3
  ip -n fb-fwd link del ovsbr 2>/dev/null || true   # the netdev datapath's tap, if left
}

start_afp-min() {
  ip netns exec fb-fwd taskset -c "$FWD_CPU" "$BIN/afp-min" in0 out0 2> "$OUT/afp-min.log" &
  FPID=$!
  sleep 0.3
  kill -0 "$FPID" 2>/dev/null && cap_pid "$FPID"
}
stop_afp-min() { stop_pid; }

# fdlinkd from this repository (build it first: cmake -S .. -B ../build && cmake --build ../build).
FDLINKD=${FDLINKD:-$HERE/../build/daemon/fdlinkd}
# FDLINKD_SINKS picks the stages between the links: forward (a <-> b), bridge (a bridge sink
# over a and b), bridge4 (over a, b and two idle ports), teepcap (forward, and a tee that also
# writes every frame a receives to a pcap file).
fdlinkd_config() {  # DISPATCH TX_RING [VNET_HDR] [QDISC_BYPASS]
  local links=("a in0 to-b" "b out0 to-a") sinks=${FDLINKD_SINKS:-forward} link n i k
  case $sinks in
    bridge|bridge-offload) links=("a in0 sw" "b out0 sw") ;;
    bridge4) links=("a in0 sw" "b out0 sw" "c x1 sw" "d x2 sw") ;;
    teepcap) links=("a in0 tee-a" "b out0 to-a") ;;
  esac
  for link in "${links[@]}"; do
    read -r n i k <<< "$link"
    if [ "$1" = af_xdp ]; then  # af_xdp links at their defaults (native XDP; copy mode on veth)
      printf '[[link]]\nname = "%s"\ntype = "af_xdp"\ninterface = "%s"\nsink = "%s"\n' "$n" "$i" "$k"
      [ -z "${FDLINKD_XDP_LINK:-}" ] || printf '%s\n' "$FDLINKD_XDP_LINK"
      continue
    fi
    printf '[[link]]\nname = "%s"\ntype = "af_packet"\ninterface = "%s"\nsink = "%s"\n' "$n" "$i" "$k"
    printf 'dispatch = "%s"\ntx_ring = %s\nqdisc_bypass = %s\nvnet_hdr = %s\n' "$1" "$2" "${4:-true}" "${3:-false}"
    [ -z "${FDLINKD_RING:-}" ] || printf '[link.ring]\n%s\n' "$FDLINKD_RING"
  done
  case $sinks in
    bridge) printf '[[sink]]\nname = "sw"\ntype = "bridge"\nports = ["a", "b"]\n' ;;
    bridge-offload)
      # (the generator's destination, 02:fb:00:00:00:99, is nobody's: a static entry on b)
      printf '[[sink]]\nname = "sw"\ntype = "bridge"\nports = ["a", "b"]\noffload = "xdp"\n'
      printf 'static = [{ mac = "02:fb:00:00:00:99", port = "b" }]\n' ;;
    offload)
      printf '[[sink]]\nname = "to-b"\ntype = "forward"\nto = "b"\noffload = "xdp"\n'
      printf '[[sink]]\nname = "to-a"\ntype = "forward"\nto = "a"\noffload = "xdp"\n' ;;
    bridge4) printf '[[sink]]\nname = "sw"\ntype = "bridge"\nports = ["a", "b", "c", "d"]\n' ;;
    teepcap)
      printf '[[sink]]\nname = "tee-a"\ntype = "tee"\nto = ["b", "cap"]\n'
      printf '[[sink]]\nname = "cap"\ntype = "pcap"\npath = "%s"\nsnaplen = 128\n' "$OUT/cap.pcap"
      printf 'rotate_size = "200MB"\nrotate_count = 2\n'
      printf '[[sink]]\nname = "to-a"\ntype = "forward"\nto = "a"\n' ;;
    *)
      printf '[[sink]]\nname = "to-b"\ntype = "forward"\nto = "b"\n'
      printf '[[sink]]\nname = "to-a"\ntype = "forward"\nto = "a"\n' ;;
  esac
  printf '[daemon]\nworkers = 1\nstats_interval = "0s"\n'
  [ -z "${FDLINKD_BUSY_POLL:-}" ] || printf 'busy_poll = "%s"\n' "$FDLINKD_BUSY_POLL"
}
start_fdlinkd() {  # DISPATCH TX_RING [VNET_HDR] [QDISC_BYPASS]
  [ -x "$FDLINKD" ] || { echo "no fdlinkd at $FDLINKD" >&2; return 1; }
  fdlinkd_config "$1" "$2" "${3:-false}" "${4:-true}" > "$OUT/fdlinkd.toml"
  ip netns exec fb-fwd taskset -c "$FWD_CPU" "$FDLINKD" -c "$OUT/fdlinkd.toml" 2> "$OUT/fdlinkd.log" &
  FPID=$!
  local i
  for i in $(seq 1 50); do
    grep -q ' ready: ' "$OUT/fdlinkd.log" 2>/dev/null && { cap_pid "$FPID"; return 0; }
    kill -0 "$FPID" 2>/dev/null || { FPID=""; return 1; }
    sleep 0.1
  done
  return 1
}
start_fdlinkd-readv() { start_fdlinkd readv false; }
start_fdlinkd-mmsg() { start_fdlinkd recvmmsg false; }
start_fdlinkd-mmap() { start_fdlinkd packet_mmap false; }
start_fdlinkd-ring() { start_fdlinkd packet_mmap true; }
start_fdlinkd-mmap2() { FDLINKD_RING="version = 2" start_fdlinkd packet_mmap false; }
start_fdlinkd-ring2() { FDLINKD_RING="version = 2" start_fdlinkd packet_mmap true; }
stop_fdlinkd-mmap2() { stop_fdlinkd; }
stop_fdlinkd-ring2() { stop_fdlinkd; }
start_fdlinkd-mmsgring() { start_fdlinkd recvmmsg true; }
start_fdlinkd-xdp() { start_fdlinkd af_xdp -; }
stop_fdlinkd-xdp() { stop_fdlinkd; }
# A/B: fdlinkd-xdp-alt is fdlinkd-xdp run from the binary FDLINKD_ALT (default: the same),
# with the TOML lines FDLINKD_ALT_LINK added to each link (e.g. 'rx_batch = 256').
start_fdlinkd-xdp-alt() {
  FDLINKD=${FDLINKD_ALT:-$FDLINKD} FDLINKD_XDP_LINK=${FDLINKD_ALT_LINK:-} start_fdlinkd af_xdp -
}
stop_fdlinkd-xdp-alt() { stop_fdlinkd; }
start_fdlinkd-ring-alt() { FDLINKD=${FDLINKD_ALT:?set FDLINKD_ALT to another build} start_fdlinkd packet_mmap true; }
stop_fdlinkd-ring-alt() { stop_fdlinkd; }
start_fdlinkd-xdp-alt2() { FDLINKD=${FDLINKD_ALT2:?set FDLINKD_ALT2 to a third build} start_fdlinkd af_xdp -; }
stop_fdlinkd-xdp-alt2() { stop_fdlinkd; }
# The same with [daemon] busy_poll = "200us": after work, the worker polls before it sleeps.
start_fdlinkd-xdp-bp() { FDLINKD_BUSY_POLL=200us start_fdlinkd af_xdp -; }
stop_fdlinkd-xdp-bp() { stop_fdlinkd; }
start_fdlinkd-readv-bp() { FDLINKD_BUSY_POLL=200us start_fdlinkd readv false; }
stop_fdlinkd-readv-bp() { stop_fdlinkd; }
start_fdlinkd-ring2-bp() { FDLINKD_RING="version = 2" FDLINKD_BUSY_POLL=200us start_fdlinkd packet_mmap true; }
stop_fdlinkd-ring2-bp() { stop_fdlinkd; }
# Without qdisc bypass: the direct transmit path does not segment GSO frames for a port
# without TSO (ENOBUFS), the qdisc path does.
start_fdlinkd-gro() { start_fdlinkd recvmmsg false true false; }
stop_fdlinkd() { stop_pid; cp "$OUT/fdlinkd.log" "$OUT/fdlinkd-last.log" 2>/dev/null || true; }
# The ring mode (packet_mmap + TX ring) with other stages: a 2-port bridge sink, a 4-port one
# (two idle ports), and forwarding with a capture of every frame beside it.
start_fdlinkd-bridge() { FDLINKD_SINKS=bridge start_fdlinkd packet_mmap true; }
stop_fdlinkd-bridge() { stop_fdlinkd; }
start_fdlinkd-bridge4() { extra_ports; FDLINKD_SINKS=bridge4 start_fdlinkd packet_mmap true; }
stop_fdlinkd-bridge4() { stop_fdlinkd; del_extra_ports; }
start_fdlinkd-offload() { FDLINKD_SINKS=offload start_fdlinkd packet_mmap true; }
stop_fdlinkd-offload() { stop_fdlinkd; }
start_fdlinkd-offload-bridge() {
  FDLINKD_SINKS=bridge-offload start_fdlinkd packet_mmap true || return 1
  # The bridge learns the generator's MAC from the slow path first: one ping.
  ip netns exec fb-gen ping -c 1 -W 1 10.99.0.2 > /dev/null 2>&1 || true
}
stop_fdlinkd-offload-bridge() { stop_fdlinkd; }
# fdlinkd-offload-bridge from the binary FDLINKD_ALT (an A/B of two builds' XDP programs).
start_fdlinkd-offload-bridge-alt() {
  FDLINKD=${FDLINKD_ALT:?set FDLINKD_ALT to another build} start_fdlinkd-offload-bridge
}
stop_fdlinkd-offload-bridge-alt() { stop_fdlinkd; }
start_fdlinkd-teepcap() { FDLINKD_SINKS=teepcap start_fdlinkd packet_mmap true; }
stop_fdlinkd-teepcap() { stop_fdlinkd; rm -f "$OUT"/cap.pcap*; }
stop_fdlinkd-readv() { stop_fdlinkd; }
stop_fdlinkd-mmsg() { stop_fdlinkd; }
stop_fdlinkd-mmap() { stop_fdlinkd; }
stop_fdlinkd-ring() { stop_fdlinkd; }
stop_fdlinkd-mmsgring() { stop_fdlinkd; }
stop_fdlinkd-gro() { stop_fdlinkd; }

stop_pid() {
  if [ -n "$FPID" ]; then
    kill -INT "$FPID" 2>/dev/null || true
    local i
    for i in $(seq 1 30); do kill -0 "$FPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$FPID" 2>/dev/null || true
    wait "$FPID" 2>/dev/null || true
    FPID=""
  fi
}

CUR=""
cleanup() {
  [ -n "$CUR" ] && "stop_$CUR" || true
  [ "${KEEP:-0}" = 1 ] || ./topo.sh down >/dev/null 2>&1 || true
  [ -d "$CAPCG" ] && rmdir "$CAPCG" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ measuring
# pps mode for the endpoints; the offloaded forwarders keep sink0 in NAPI mode (see class_of).
mode_pps() {
  ./topo.sh mode pps
  if [ "$(class_of "${CURF:-}")" = xdp ]; then ./topo.sh place xdp; fi
}
rec() { echo "$1,$2,$3,$4,$5,$6,$7,$8" >> "$RAW"; }

measure_pps() {   # round fwd size
  local line
  if ! line=$(./meter.sh "$3" "$SECS" "$WARM"); then rec "$1" "$2" "pps$3" "" "" "" "" "meter-failed"; return; fi
  # offered=.. sink=.. back=.. gen_drop=.. window=.. cpu0=..% cpu1=..%
  local kv; declare -A kv=()
  for w in $line; do kv[${w%%=*}]=${w#*=}; done
  local cg=${kv[cpu$GEN_CPU]%%%*} cf=${kv[cpu$FWD_CPU]%%%*}
  rec "$1" "$2" "pps$3" "${kv[sink]}" "${kv[offered]}" "$cg" "$cf" "back=${kv[back]}"
  log "  $2 ${3}B: sink ${kv[sink]} pps, offered ${kv[offered]}, cpu gen/fwd ${cg}/${cf}%, back ${kv[back]}"
}

measure_tcp() {   # round fwd
  local j="$OUT/iperf3-$2.json" sp
  ./topo.sh mode tcp
  ip netns exec fb-sink taskset -c "$GEN_CPU" iperf3 -s -1 -B 10.99.0.2 > "$OUT/iperf3-server.log" 2>&1 &
  sp=$!
  sleep 0.3
  if ! ip netns exec fb-gen ping -c 2 -i 0.2 -W 1 10.99.0.2 > "$OUT/ping-$2.log" 2>&1; then
    log "  $2 tcp: ping gen->sink failed"; rec "$1" "$2" tcp "" "" "" "" "ping-failed"
    { kill "$sp" 2>/dev/null; wait "$sp" 2>/dev/null; } || true; mode_pps; return
  fi
  local c0 c1
  c0=$(grep -E '^cpu[0-9]+ ' /proc/stat | tr '\n' ' ')
  ip netns exec fb-gen taskset -c "$GEN_CPU" timeout $((TCP_SECS + 15)) \
    iperf3 -c 10.99.0.2 -t "$TCP_SECS" --connect-timeout 3000 -J > "$j" 2>&1 || true
  c1=$(grep -E '^cpu[0-9]+ ' /proc/stat | tr '\n' ' ')
  { kill "$sp" 2>/dev/null; wait "$sp" 2>/dev/null; } || true
  local res
  res=$(python3 - "$j" "$c0" "$c1" "$GEN_CPU" "$FWD_CPU" <<'EOF'
import json, sys
def cpus(s):
    f = s.split(); out = {}
    for i in range(0, len(f), 11):
        out[f[i]] = [int(x) for x in f[i + 1:i + 11]]
    return out
a, b = cpus(sys.argv[2]), cpus(sys.argv[3])
def busy(n):
    d = [y - x for x, y in zip(a["cpu" + n], b["cpu" + n])]
    t = sum(d[:8]) or 1
    return "%.0f" % (100.0 * (t - d[3] - d[4]) / t)
try:
    j = json.load(open(sys.argv[1]))
    if "error" in j:
        raise ValueError(j["error"])
    g = j["end"]["sum_received"]["bits_per_second"] / 1e9
    r = j["end"]["sum_sent"].get("retransmits", 0)
    print("%.3f %s %s retr=%d" % (g, busy(sys.argv[4]), busy(sys.argv[5]), r))
except Exception as e:
    print("ERR %s %s %s" % (busy(sys.argv[4]), busy(sys.argv[5]), str(e).replace(",", ";").replace(" ", "_")[:80]))
EOF
)
  set -- "$1" "$2" $res
  if [ "$3" = ERR ]; then rec "$1" "$2" tcp "" "" "$4" "$5" "iperf3-error:$6"; log "  $2 tcp: iperf3 failed ($6)";
  else rec "$1" "$2" tcp "$3" "" "$4" "$5" "$6"; log "  $2 tcp: $3 Gbit/s, cpu gen/fwd $4/$5%, $6"; fi
  mode_pps
}

# profile FWD: perf on the forwarder's process (its threads, and the kernel work done in their
# context: the softirqs a send runs on the way) under 64-byte load. The split by binary says
# how much is the forwarder's own code.
profile() {
  local data="$OUT/perf-$1.data" txt="$OUT/perf-$1.txt"
  ./meter.sh "${PERF_SIZE:-60}" "$((PERF + 1))" 0.5 > /dev/null &
  local m=$!
  sleep 1
  perf record -q -g -p "$FPID" -o "$data" -- sleep "$PERF" > /dev/null 2>&1 || true
  wait "$m" || true
  { echo "# $1: perf record -g -p (forwarder), ${PERF_SIZE:-60}+4 B frames, CAP=${CAP:-none}"
    echo "## by binary"; perf report -i "$data" --no-children --sort dso -q -g none 2>/dev/null | head -8 || true
    echo "## top symbols"; perf report -i "$data" --no-children --sort dso,sym -q -g none 2>/dev/null | head -40 || true
  } > "$txt"
  [ "${PERF_KEEP:-0}" = 1 ] || rm -f "$data"
  log "  $1: profile in $txt"
}

measure_lat() {   # round fwd: LAT_PINGS pings, 50 ms apart (a lightly loaded link)
  ./topo.sh mode tcp
  local out
  out=$(ip netns exec fb-gen ping -c "$LAT_PINGS" -i 0.05 -W 1 10.99.0.2 2>&1) || true
  local res
  res=$(grep -o "time=[0-9.]*" <<< "$out" | cut -d= -f2 | sort -n |
        awk '{a[NR]=$1} END {if (NR) printf "%.3f %.3f %d", a[int((NR+1)/2)], a[int(NR*0.99+0.5)], NR}')
  if [ -z "$res" ]; then rec "$1" "$2" lat "" "" "" "" "no-reply"; log "  $2 lat: no reply";
  else set -- "$1" "$2" $res; rec "$1" "$2" lat "$3" "" "" "" "p99=$4;n=$5"; log "  $2 lat: median $3 ms, p99 $4 ms ($5 replies)"; fi
  mode_pps
}

# ---------------------------------------------------------------------- main
log "topology up; forwarders: ${FWDS[*]}; rounds=$ROUNDS secs=$SECS sizes=($SIZES) tcp=${TCP_SECS}s for ($TCP_FWDS)"
./topo.sh up >/dev/null
T0=$(date +%s)
for r in $(seq 1 "$ROUNDS"); do
  log "round $r/$ROUNDS"
  for f in "${FWDS[@]}"; do
    b=${f%-rps}
    declare -F "start_$b" >/dev/null || { echo "unknown forwarder $f" >&2; exit 2; }
    CURF=$f
    ./topo.sh place "$(class_of "$f")"
    mode_pps
    if ! "start_$b" > "$OUT/start-$f.log" 2>&1; then
      log "  $f: failed to start (see $OUT/start-$f.log)"; rec "$r" "$f" start "" "" "" "" "start-failed"
      "stop_$b" || true; continue
    fi
    CUR=$b
    for s in $SIZES; do measure_pps "$r" "$f" "$s"; done
    if [ "$TCP_SECS" != 0 ] && [[ " $TCP_FWDS " == *" $f "* ]]; then measure_tcp "$r" "$f"; fi
    if [ "$LAT_PINGS" != 0 ]; then measure_lat "$r" "$f"; fi
    if [ -n "${PERF:-}" ] && [ "$r" = 1 ] && [ -n "$FPID" ]; then profile "$f"; fi
    "stop_$b"; CUR=""
  done
done
log "done in $(( $(date +%s) - T0 )) s; raw samples: $RAW"
# Capped runs compare userspace forwarders only: take ratios against testpmd there.
python3 "$HERE/summarize.py" "$RAW" "$([ -n "$CAP" ] && echo testpmd || echo bridge)"
