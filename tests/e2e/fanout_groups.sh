#!/usr/bin/env bash
# Fanout ids are per network namespace. Two links with 2 fds each on different interfaces in
# one daemon, and a second daemon doing the same beside it in the same namespace, must all
# start (no EINVAL from a colliding group id) and all forward.
source "$(dirname "$0")/lib.sh"

mkns fw
for i in 1 2 3 4; do
  mkns h$i
  veth "$ID-h$i" h$i "$ID-fw" p$i
  ip -n "$ID-h$i" addr add 10.77.7.$i/24 dev h$i
done
link() { afp_link "$1" "$2" "$3" 'fds = 2' 'dispatch = "packet_mmap"'; }
cat > "$TMP/one.toml" <<EOT
[daemon]
stats_interval = "0s"
$(link a p1 to-b)
$(link b p2 to-a)
$(forward_sinks a b)
EOT
cat > "$TMP/two.toml" <<EOT
[daemon]
stats_interval = "0s"
control_socket = "$TMP/two.sock"   # (a second daemon needs a control socket of its own)
$(link c p3 to-d)
$(link d p4 to-c)
$(forward_sinks c d)
EOT
start_daemon "$TMP/one.toml" "$ID-fw"
FIRST=$DAEMON_PID FIRST_LOG=$LOG
LOG="$TMP/daemon2.log"
start_daemon "$TMP/two.toml" "$ID-fw"
SECOND=$DAEMON_PID
pass "two daemons, four links of two fds each, all open"
grep -q EINVAL "$FIRST_LOG" "$LOG" && fail "EINVAL in a daemon log"

ping_ok "$ID-h1" 10.77.7.2 20
ping_ok "$ID-h3" 10.77.7.4 20
stop_daemon
DAEMON_PID=$FIRST LOG=$FIRST_LOG
stop_daemon
