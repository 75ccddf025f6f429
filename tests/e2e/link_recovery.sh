#!/usr/bin/env bash
# link_recovery.sh MODE: a link whose interface goes down for about 1.5 s and comes back, then is
# deleted for about 1.5 s and made again under the same name, recovers by itself:
#   - while it is gone the daemon is idle (under 5% of a core, from /proc ticks) and reports
#     one link_down event per outage;
#   - another pair of hosts on the same daemon keeps pinging with 0% loss throughout;
#   - pings through the link succeed within 1 s of its interface coming back.
# MODE: readv | recvmmsg | packet_mmap | ring (packet_mmap + tx_ring) | fds2 (a fanout of two
# sockets, two workers) | tap (a TAP fdlinkd made: deleted, it is made again at once) | af_xdp
# (link b is an af_xdp link: its XDP program and sockets go with the interface and come back).
source "$(dirname "$0")/lib.sh"
MODE=${1:?mode}

mkns h1; mkns h2; mkns h3; mkns h4; mkns fw
veth "$ID-h1" h1 "$ID-fw" pa
veth "$ID-h3" h3 "$ID-fw" pc
veth "$ID-h4" h4 "$ID-fw" pd
ip -n "$ID-h1" addr add 10.77.31.1/24 dev h1
ip -n "$ID-h3" addr add 10.77.32.3/24 dev h3
ip -n "$ID-h4" addr add 10.77.32.4/24 dev h4

extra=() workers=1
case $MODE in
  readv) ;;
  recvmmsg) extra=('dispatch = "recvmmsg"') ;;
  packet_mmap) extra=('dispatch = "packet_mmap"') ;;
  ring) extra=('dispatch = "packet_mmap"' 'tx_ring = true' 'qdisc_bypass = true') ;;
  fds2) extra=('dispatch = "recvmmsg"' 'fds = 2'); workers=2 ;;
  tap|af_xdp) ;;
  *) fail "unknown mode $MODE" ;;
esac
# Host 2 is h2 behind veth pb, or (tap) the daemon's namespace behind the TAP tb.
if [ "$MODE" = tap ]; then
  link_b=$(printf '[[link]]\nname = "b"\ntype = "tap"\ninterface = "tb"\nsink = "to-a"\n')
  H2="$ID-fw"; IF2=tb; DEV=tb
else
  veth "$ID-h2" h2 "$ID-fw" pb
  ip -n "$ID-h2" addr add 10.77.31.2/24 dev h2
  link_b=$(afp_link b pb to-a "${extra[@]}")
  [ "$MODE" = af_xdp ] && link_b=${link_b/type = \"af_packet\"/type = \"af_xdp\"}
  H2="$ID-h2"; IF2=h2; DEV=pb
fi
cat > "$TMP/fdlinkd.toml" <<EOT
[daemon]
stats_interval = "0s"
workers = $workers
$(afp_link a pa to-b "${extra[@]}")
$link_b
$(afp_link c pc to-d)
$(afp_link d pd to-c)
$(forward_sinks a b)
$(forward_sinks c d)
EOT
start_daemon "$TMP/fdlinkd.toml" "$ID-fw"
[ "$MODE" = tap ] && ip -n "$ID-fw" addr add 10.77.31.2/24 dev tb
mac2=$(ip -n "$H2" -o link show "$IF2" | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
ping_ok "$ID-h1" 10.77.31.2 10

ticks() { awk '{print $14 + $15}' "/proc/$DAEMON_PID/stat"; }
downs() { grep -c '"event":"link_down".*"link":"b"' "$LOG" || true; }

# outage WHAT GONE_CMD BACK_CMD
outage() {
  local what=$1 before t0 t1 up_at ok_at
  before=$(downs)
  ip netns exec "$ID-h3" ping -q -c 40 -i 0.05 -W 1 10.77.32.4 > "$TMP/other.ping" 2>&1 &
  local other=$!
  sleep 0.2
  eval "$2"
  sleep 0.5
  t0=$(ticks)
  sleep 1  # (a dispatcher spinning on a dead fd would take about 100 ticks)
  t1=$(ticks)
  [ $((t1 - t0)) -lt 5 ] || fail "$what: fdlinkd used $((t1 - t0)) ticks in 1 s while the link was down"
  eval "$3"
  up_at=$(date +%s%N)
  for _ in $(seq 20); do
    ip netns exec "$ID-h1" ping -c 1 -W 0.1 10.77.31.2 >/dev/null 2>&1 && break
    sleep 0.05
  done
  ok_at=$(date +%s%N)
  ip netns exec "$ID-h1" ping -c 1 -W 0.1 10.77.31.2 >/dev/null 2>&1 || fail "$what: no ping through the link 1 s after it came back"
  wait $other || { cat "$TMP/other.ping"; fail "$what: the other pair lost pings"; }
  grep -q " 0% packet loss" "$TMP/other.ping" || { cat "$TMP/other.ping"; fail "$what: the other pair lost pings"; }
  [ $(( $(downs) - before )) -eq 1 ] || fail "$what: $(( $(downs) - before )) link_down events, expected 1"
  ping_ok "$ID-h1" 10.77.31.2 20
  pass "$MODE $what: idle while down ($((t1 - t0)) ticks in 1 s), one link_down, the other pair lost nothing, pings again $(( (ok_at - up_at) / 1000000 )) ms after it came back"
}

outage "down 1.5 s" "ip -n $ID-fw link set $DEV down" "ip -n $ID-fw link set $DEV up"
if [ "$MODE" = tap ]; then
  # fdlinkd made the TAP: deleted, it is made again at once; its owner then sets it up again.
  outage "deleted" "ip -n $ID-fw link del tb" \
    "ip -n $ID-fw link set tb address $mac2; ip -n $ID-fw addr add 10.77.31.2/24 dev tb"
  grep -q '"event":"link_up","msg":"link up again: its device was made again".*"link":"b"' "$LOG" || fail "no link_up saying the TAP was made again"
else
  outage "deleted and made again" "ip -n $ID-fw link del pb" \
    "ip link add pb netns $ID-fw type veth peer name h2 netns $ID-h2 address $mac2; ip -n $ID-h2 addr add 10.77.31.2/24 dev h2; ip -n $ID-h2 link set h2 up; ip -n $ID-fw link set pb up"
fi
grep '"event":"link_up".*"link":"b"' "$LOG" | grep -q '"downtime_ms":[0-9]' || fail "link_up without its downtime"
stop_daemon
[ "$(logq final b down_count)" = 2 ] || fail "final stats: down_count $(logq final b down_count), expected 2"
pass "final stats of b: state $(grep '"event":"stats".*"link":"b"' "$LOG" | tail -1 | grep -o '"state":"[a-z]*"'), down_count 2"
