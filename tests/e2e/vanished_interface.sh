#!/usr/bin/env bash
# Two forwarding pairs in one daemon. The interface of one pair's af_packet link goes down and
# is deleted, and the TAP of the other link is deleted, while fdlinkd runs: both are reported
# (link_down, once), the TAP fdlinkd made is made again, the daemon does not spin, and the
# first pair keeps forwarding. (link_recovery.sh tests links coming back.) $1: the af_packet links' dispatch mode (default readv);
# packet_mmap reads no error from a system call, so it must collect it from the socket.
source "$(dirname "$0")/lib.sh"
MODE=${1:-readv}

mkns h1; mkns h2; mkns h3; mkns fw
veth "$ID-h1" h1 "$ID-fw" pa
veth "$ID-h2" h2 "$ID-fw" pb
veth "$ID-h3" h3 "$ID-fw" pc
ip -n "$ID-h1" addr add 10.77.5.1/24 dev h1
ip -n "$ID-h2" addr add 10.77.5.2/24 dev h2

cat > "$TMP/fdlinkd.toml" <<EOT
[daemon]
stats_interval = "0s"
$(afp_link a pa to-b "dispatch = \"$MODE\"")
$(afp_link b pb to-a "dispatch = \"$MODE\"")
$(afp_link c pc to-d "dispatch = \"$MODE\"")
[[link]]
name = "d"
type = "tap"
interface = "tapd"
sink = "to-c"
$(forward_sinks a b)
$(forward_sinks c d)
EOT
start_daemon "$TMP/fdlinkd.toml" "$ID-fw"
ping_ok "$ID-h1" 10.77.5.2 10

# An interface that goes down first: reported, and no busy loop while it stays down.
ip -n "$ID-fw" link set pc down
sleep 0.3
t0=$(awk '{print $14 + $15}' "/proc/$DAEMON_PID/stat")
sleep 1
t1=$(awk '{print $14 + $15}' "/proc/$DAEMON_PID/stat")
[ $(( t1 - t0 )) -lt 10 ] || fail "fdlinkd used $(( t1 - t0 )) ticks of CPU in 1 s with an interface down"
pass "idle with an interface down ($(( t1 - t0 )) CPU ticks in 1 s)"

ip -n "$ID-fw" link del pc
ip -n "$ID-fw" link del tapd
for _ in $(seq 40); do
  grep -q '"event":"link_up".*"link":"d"' "$LOG" && break
  sleep 0.05
done
grep -q '"event":"link_down".*"link":"c".*"reason":"interface down"' "$LOG" || fail "the interface of link c going down was not reported"
grep -q '"event":"link_down".*"link":"d".*"reason":"interface deleted"' "$LOG" || fail "the deleted TAP of link d was not reported"
grep -q '"event":"link_up","msg":"link up again: its device was made again".*"link":"d"' "$LOG" || fail "fdlinkd did not make its TAP again"
ip -n "$ID-fw" link show tapd >/dev/null || fail "TAP tapd is not there again"
pass "deleted interface and TAP reported; the TAP fdlinkd made is made again"

# No busy loop on the dead fds: the daemon stays idle.
t0=$(awk '{print $14 + $15}' "/proc/$DAEMON_PID/stat")
sleep 1
t1=$(awk '{print $14 + $15}' "/proc/$DAEMON_PID/stat")
[ $(( t1 - t0 )) -lt 10 ] || fail "fdlinkd used $(( t1 - t0 )) ticks of CPU in 1 s while idle"
pass "idle after the loss ($(( t1 - t0 )) CPU ticks in 1 s)"

ping_ok "$ID-h1" 10.77.5.2 100
stop_daemon
[ "$(logq count link_rx_error)" -le 3 ] || fail "link_rx_error logged $(logq count link_rx_error) times; once per fd is enough"
[ "$(grep -c '"event":"link_down".*"link":"c"' "$LOG")" -eq 1 ] || fail "link_down of c logged $(grep -c '"event":"link_down".*"link":"c"' "$LOG") times"
