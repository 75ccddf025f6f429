#!/usr/bin/env bash
# vhost.sh [-r ROUNDS] [-t SECONDS] [-s SIZE] [FORWARDER...]: vhost-user middle boxes side by side.
#
#   generator: dpdk-testpmd with two virtio-user ports (a.sock, b.sock), io forwarding, started
#              with "start tx_first BURSTS" (4: 128 frames a port): the frames circulate
#              gen -> a -> middle box -> b -> gen and back the other way, so the capped middle
#              box sets the rate. CPU0. (A flood with txonly and a separate sink was tried:
#              virtio-user's txonly then sends about 72k pps, far below what is measured.)
#   middle box, on CPU1 under a cgroup quota of CAP% (default 25) of one core, between the two
#   vhost-user sockets:
#     testpmd-vhost: dpdk-testpmd's own vhost PMD (net_vhost0/1), io forwarding;
#     fdlinkd-vhost: fdlinkd, two vhost_user links forwarding to each other, one worker;
#     fdlinkd-vhost-poll: the same with busy_poll = "always" (the worker never sleeps, as
#                    testpmd's does not: no kick, no wake-up).
# Each round runs every forwarder in turn (interleaved); a round's figure is the generator's
# received frames over both ports in the measured seconds (= frames the middle box forwarded),
# and the middle box's CPU time over the same seconds (the sum of its threads' run time in
# /proc/PID/task/*/schedstat), giving frames per CPU-second; the log adds the frames in flight
# at both readings. A round whose middle box used less than 90% of its quota is flagged (it
# did not set the rate) and left out of the medians. Output: CSV on stdout (round, forwarder,
# size, pps, cpu, pps_per_cpu_s, saturated, cpu_capped: the CPU of the capped threads alone) and
# medians on stderr. FDLINKD_LINK: lines added
# to both of fdlinkd's links (e.g. 'offloads = false'). PERF=1 records a profile of each
# forwarder's CPU in the last round (perf record -g -C 1) into $OUT/profile-NAME.txt. A
# forwarder named NAME-packed is NAME with the generator's ports asking for the packed ring
# (virtio-user's packed_vq=1); PACKED=1 does that for every forwarder.
# (The frames in flight are the generator's view: a frame the middle box dropped still counts.)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROUNDS=5 SECS=8 SIZE=64
while getopts r:t:s: o; do
  case $o in r) ROUNDS=$OPTARG ;; t) SECS=$OPTARG ;; s) SIZE=$OPTARG ;; *) exit 2 ;; esac
done
shift $((OPTIND - 1))
FORWARDERS=("$@")
[ ${#FORWARDERS[@]} -gt 0 ] || FORWARDERS=(testpmd-vhost fdlinkd-vhost)
FDLINKD=${FDLINKD:-$HERE/../build/daemon/fdlinkd}
CAP=${CAP:-25}
OUT=${OUT:-$(mktemp -d /tmp/fdlinkd-vhost-bench.XXXXXX)}
CG=/sys/fs/cgroup/cpu/fb-vhost
mkdir -p "$CG" "$OUT"
echo 10000 > "$CG/cpu.cfs_period_us"
echo $((CAP * 100)) > "$CG/cpu.cfs_quota_us"
A="$OUT/a.sock" B="$OUT/b.sock"
MID=""
log() { echo "[$(date +%T)] $*" >&2; }

# cap PID: PID's forwarding threads into the quota: testpmd's lcores (its main thread and
# rte-worker-N), fdlinkd's workers (fdlinkd-wN); every thread of a build that names none. The
# other threads (vhost-user messages, interrupts, telemetry, fdlinkd's control) sleep while a
# round is measured; their CPU time counts all the same. Not all of them: on this test kernel
# (6.18) a group holding testpmd's vhost-events thread as well stayed throttled for good in
# about half the rounds (every thread parked in the throttle's task_work at the return to user
# space, none run again, cpu.stat's throttled_time frozen while nr_throttled climbed): the
# stall that earlier runs saw as a middle box that took no more frames. With only the lcores
# capped, 12 of 12 probes ran (docs/benchmarks.md).
CAPPED=()  # the threads cap() put under the quota
cap() {
  local t n=0
  CAPPED=()
  for t in /proc/"$1"/task/*; do
    if grep -qxE 'dpdk-testpmd|rte-worker-[0-9]+|fdlinkd-w[0-9]+' "$t/comm"; then
      echo "${t##*/}" > "$CG/tasks"
      CAPPED+=("$t")
      n=$((n + 1))
    fi
  done
  [ "$n" -gt 0 ] || for t in /proc/"$1"/task/*; do echo "${t##*/}" > "$CG/tasks"; CAPPED+=("$t"); done
  log "capped $n named threads of $1 (0: all of them)"
}
# CPU time of every thread of PID in ns (schedstat: exact, where /proc/PID/stat's ticks are
# sampled and go wrong under a cgroup quota).
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f", s}'; }
# The same over the capped threads only (the forwarding threads, without the ones that handle
# messages and interrupts).
cpu_capped_ns() {
  local t
  for t in "${CAPPED[@]}"; do cat "$t/schedstat" 2>/dev/null; done | awk '{s += $1} END {printf "%.0f", s}'
}
wait_sockets() {
  local i
  for i in $(seq 100); do [ -S "$A" ] && [ -S "$B" ] && return 0; sleep 0.05; done
  return 1
}

start_testpmd-vhost() {
  taskset -c 1 dpdk-testpmd --lcores=0@1,1@1 --no-huge --no-pci -m 1024 --file-prefix fbmid \
    --vdev "net_vhost0,iface=$A" --vdev "net_vhost1,iface=$B" -- --total-num-mbufs=32768 \
    --stats-period 10 --forward-mode=io -a </dev/null > "$OUT/mid.log" 2>&1 &
  MID=$!
}
# (FDLINKD_BASE: another build of fdlinkd, for an A/B in one run)
start_fdlinkd-vhost-base() { FDLINKD=${FDLINKD_BASE:?set FDLINKD_BASE} start_fdlinkd-vhost; }
start_fdlinkd-vhost-poll() { FDLINKD_DAEMON='busy_poll = "always"' start_fdlinkd-vhost; }
start_fdlinkd-vhost() {
  cat > "$OUT/fdlinkd.toml" <<EOT
[daemon]
${FDLINKD_DAEMON:-}
workers = 1
stats_interval = "0s"
control_socket = "$OUT/control.sock"
[[link]]
name = "a"
type = "vhost_user"
path = "$A"
sink = "to-b"
${FDLINKD_LINK:-}
[[link]]
name = "b"
type = "vhost_user"
path = "$B"
sink = "to-a"
${FDLINKD_LINK:-}
[[sink]]
name = "to-b"
type = "forward"
to = "b"
[[sink]]
name = "to-a"
type = "forward"
to = "a"
EOT
  taskset -c 1 "$FDLINKD" -c "$OUT/fdlinkd.toml" 2> "$OUT/mid.log" &
  MID=$!
}

# run NAME ROUND: one measurement; prints its CSV line.
run() {
  local name=$1 round=$2 ring=""
  [ -n "${PACKED:-}" ] || [ "${name%-packed}" != "$name" ] && ring=",packed_vq=1"
  rm -f "$A" "$B"
  "start_${name%-packed}"
  wait_sockets || { log "$name: no sockets"; cat "$OUT/mid.log" >&2; kill "$MID"; return 1; }
  # The generator is driven through its prompt: the first frames go only once both ports are
  # up on both sides (a frame the middle box cannot pass on is lost, and with it a share of
  # the circulation), then its counters are read before and after the measured seconds.
  local fifo="$OUT/gen.in"
  rm -f "$fifo"
  mkfifo "$fifo"
  taskset -c 0 dpdk-testpmd --lcores=0@0,1@0 --no-huge --no-pci -m 1024 --file-prefix fbgen \
    --vdev "net_virtio_user0,path=$A$ring" --vdev "net_virtio_user1,path=$B$ring" -- -i \
    --total-num-mbufs=32768 --forward-mode=io --txpkts="$SIZE" < "$fifo" > "$OUT/gen.log" 2>&1 &
  local gen=$!
  exec 7> "$fifo"
  sleep 2
  echo "start tx_first ${BURSTS:-4}" >&7
  sleep 1
  # Capped only once set up: a capped backend answers the set-up messages late, and virtio-user
  # gives up on a read interrupted meanwhile ("Failed to recv msg header").
  cap "$MID"
  sleep 2
  echo "show port stats all" >&7
  local c0 c1
  c0=$(cpu_ns "$MID")
  local k0
  k0=$(cpu_capped_ns)
  local t0
  t0=$(date +%s%N)
  if [ "${PERF:-}" = 1 ] && [ "$round" = "$ROUNDS" ]; then
    perf record -g -C 1 -o "$OUT/perf-$name.data" -- sleep "$SECS" >/dev/null 2>&1
    perf report -i "$OUT/perf-$name.data" --no-children --percent-limit 1 --stdio 2>/dev/null |
      grep -E "^ +[0-9]" > "$OUT/profile-$name.txt" || true
  else
    sleep "$SECS"
  fi
  c1=$(cpu_ns "$MID")
  local k1
  k1=$(cpu_capped_ns)
  echo "show port stats all" >&7
  local t1
  t1=$(date +%s%N)
  sleep 0.5
  echo "stop" >&7
  sleep 0.5
  echo "quit" >&7
  exec 7>&-
  wait "$gen" 2>/dev/null || true
  kill -TERM "$MID" 2>/dev/null || true
  wait "$MID" 2>/dev/null || true
  cp "$OUT/gen.log" "$OUT/gen-$name-$round.log"
  cp "$OUT/mid.log" "$OUT/mid-$name-$round.log"
  # RX-packets of both ports, in the two readings: what the middle box passed on meanwhile.
  local pps
  pps=$(grep "RX-packets:" "$OUT/gen.log" | awk '{print $2}' | head -4 | paste -sd' ' |
        awk -v ns="$((t1 - t0))" '{printf "%.0f", ($3 + $4 - $1 - $2) / (ns / 1e9)}')
  local cpu
  cpu=$(awk -v t="$((c1 - c0))" -v ns="$((t1 - t0))" 'BEGIN {printf "%.3f", t / ns}')
  # Frames in flight at each reading: sent by the generator and not yet back (the circulation
  # shrinks when the middle box or the generator drops one).
  local flight
  flight=$(awk '/RX-packets:/ {rx[++r] = $2} /TX-packets:/ {tx[++t] = $2}
                END {printf "%d->%d", tx[1] + tx[2] - rx[1] - rx[2], tx[3] + tx[4] - rx[3] - rx[4]}' "$OUT/gen.log")
  local per
  per=$(awk -v p="$pps" -v c="$cpu" 'BEGIN {printf "%.0f", (c > 0 ? p / c : 0)}')
  # A middle box that did not use (nearly) all of its quota was not what set the rate: frames
  # it dropped at the start are gone from the circulation (the generator still counts them in
  # flight), or the generator was slow. Its frames per CPU-second then measure idling, not the
  # cost of a frame: the round is kept in the CSV, flagged, and left out of the medians.
  local saturated
  saturated=$(awk -v c="$cpu" -v cap="$CAP" 'BEGIN {print (c >= 0.9 * cap / 100) ? 1 : 0}')
  local capped
  capped=$(awk -v t="$((k1 - k0))" -v ns="$((t1 - t0))" 'BEGIN {printf "%.3f", t / ns}')
  echo "$round,$name,$SIZE,$pps,$cpu,$per,$saturated,$capped"
  log "round $round $name: $pps pps, $cpu CPU ($capped in the capped threads), $per frames per CPU-second, in flight $flight$(
    [ "$saturated" = 1 ] || echo ", NOT SATURATED (left out of the medians)")"
}

echo "round,forwarder,size,pps,cpu,pps_per_cpu_s,saturated,cpu_capped" | tee "$OUT/results.csv"
for r in $(seq "$ROUNDS"); do
  for f in "${FORWARDERS[@]}"; do run "$f" "$r"; done
done | tee -a "$OUT/results.csv"
"$HERE/vhost_summary.py" "$OUT/results.csv" >&2
