#!/usr/bin/env bash
# worker_stall.sh MODE: a busy host takes fdlinkd's worker off the CPU now and then. While it
# is away, the frames of a moderate stream must wait in the kernel, not be dropped: a UDP
# stream at 20 kpps from h1 to h2 through fdlinkd, which is frozen (SIGSTOP) for 50 ms three
# times meanwhile: every datagram arrives, in order, and fdlinkd counts no drop.
#   MODE: the receive mode of link a (h1's side): readv | recvmmsg | packet_mmap (TPACKET_V3
#         ring, the defaults) | ring2 ([link.ring] version = 2) | af_xdp
# (The TPACKET_V3 ring used to hold only 16 block timeouts: 25-30 ms of a low-rate stream.)
source "$(dirname "$0")/lib.sh"
MODE=${1:?mode}
STALL_MS=50 FLOWS=4 COUNT=5000 PPS=20000

mkns h1; mkns h2; mkns fw
veth "$ID-h1" h1 "$ID-fw" pa
veth "$ID-h2" h2 "$ID-fw" pb
ip -n "$ID-h1" addr add 10.77.13.1/24 dev h1
ip -n "$ID-h2" addr add 10.77.13.2/24 dev h2
case "$MODE" in
  readv|recvmmsg|packet_mmap) A=$(afp_link a pa to-b "dispatch = \"$MODE\"") ;;
  ring2) A=$(afp_link a pa to-b 'dispatch = "packet_mmap"'; printf '[link.ring]\nversion = 2\n') ;;
  af_xdp) A=$(afp_link a pa to-b | sed 's/"af_packet"/"af_xdp"/') ;;
  *) fail "unknown mode $MODE" ;;
esac
cat > "$TMP/fdlinkd.toml" <<EOT
[daemon]
stats_interval = "0s"
$A
$(afp_link b pb to-a)
$(forward_sinks a b)
EOT
start_daemon "$TMP/fdlinkd.toml" "$ID-fw"
ping_ok "$ID-h1" 10.77.13.2 5

ip netns exec "$ID-h2" "$PY" "$HERE/udp_flows.py" recv 7000 $FLOWS $COUNT 3 > "$TMP/flows.json" 2>"$TMP/flows.err" &
RX=$!
said "$TMP/flows.err" ready "the UDP receiver"
ip netns exec "$ID-h1" "$PY" "$HERE/udp_flows.py" send 10.77.13.2 7000 $FLOWS $COUNT $PPS >/dev/null &
TX=$!
for i in 1 2 3; do
  sleep 0.2
  kill -STOP "$DAEMON_PID"
  sleep "0.0$STALL_MS"
  kill -CONT "$DAEMON_PID"
done
wait $TX
wait $RX
"$PY" - "$TMP/flows.json" <<'PYEOF' || { where_lost "$ID-h1" "$ID-h2"; exit 1; }
import json, sys
r = json.load(open(sys.argv[1]))
if r["lost"] or r["reordered"] or r["duplicates"]:
    sys.exit(f"FAIL: {r}")
print(f"ok: {r['received']} datagrams at 20 kpps across three 50 ms stalls: none lost, none reordered")
PYEOF
stop_daemon
drops=$(( $(logq final a drops) + $(logq final b drops) ))
[ "$drops" -eq 0 ] || fail "$drops frames dropped ($(grep '"event":"stats"' "$LOG" | tail -2))"
pass "$MODE: link a rx $(logq final a rx_packets), b tx $(logq final b tx_packets), no drops"
