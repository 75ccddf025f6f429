#!/usr/bin/env bash
# backpressure.sh: a unix link whose peer is slow, then stalled, on a daemon with one worker.
#   pair A: sender --dgram--> [in] fdlinkd [out] --dgram--> reader (max_dgram_qlen 10: the
#           default; out has tx_backlog = 64 and tx_stall_timeout = "500ms")
#   pair B: h2 --veth-- [wb] fdlinkd [wc] --veth-- h3, on the same worker
# 1. The reader reads one frame per 0.5 ms; the sender sends 4000 frames as fast as its
#    blocking socket lets it: all 4000 arrive, in order, and fdlinkd drops none (it waits for
#    the reader, stops reading `in` meanwhile, and the sender's socket blocks).
# 2. The reader stops reading: after 500 ms fdlinkd logs tx_peer_stalled, stops holding `in`
#    back, and counts what does not fit in the backlog as tx_backlog_full. When the reader
#    reads again it gets the frames that waited (a prefix of what was sent, in order), and
#    fdlinkd logs tx_peer_resumed.
# Meanwhile pings through pair B keep 0% loss.
source "$(dirname "$0")/lib.sh"

mkns h2; mkns h3; mkns fw
veth "$ID-h2" h2 "$ID-fw" pb
veth "$ID-h3" h3 "$ID-fw" pc
ip -n "$ID-h2" addr add 10.77.7.2/24 dev h2
ip -n "$ID-h3" addr add 10.77.7.3/24 dev h3
cat > "$TMP/fdlinkd.toml" <<EOT
[daemon]
workers = 1
stats_interval = "0s"
[[link]]
name = "in"
type = "unix"
socket = "dgram"
path = "$TMP/in.sock"
peer = "$TMP/sender.sock"
sink = "to-out"
[[link]]
name = "out"
type = "unix"
socket = "dgram"
path = "$TMP/out.sock"
peer = "$TMP/reader.sock"
tx_backlog = 64
tx_stall_timeout = "500ms"
sink = "to-in"
$(forward_sinks in out)
$(afp_link wb pb to-wc)
$(afp_link wc pc to-wb)
$(forward_sinks wb wc)
EOT
start_daemon "$TMP/fdlinkd.toml" "$ID-fw"

# Pings through pair B for the whole test (about 6 s).
ip netns exec "$ID-h2" ping -q -c 150 -i 0.04 -W 2 10.77.7.3 > "$TMP/ping.out" 2>&1 &
PING=$!
BACKGROUND+=("$PING")
"$PY" "$HERE/backpressure.py" "$FDLINKCTL" "$CTL" "$TMP" || fail "back-pressure"
for _ in $(seq 50); do logq has tx_peer_resumed && break; sleep 0.1; done
logq has tx_peer_stalled || fail "no tx_peer_stalled in the log"
logq has tx_peer_resumed || fail "no tx_peer_resumed in the log"
pass "fdlinkd logged tx_peer_stalled and tx_peer_resumed"
wait "$PING" || true
grep -q " 0% packet loss" "$TMP/ping.out" || { cat "$TMP/ping.out" >&2; fail "pings through pair B lost packets"; }
pass "150 pings through pair B meanwhile, same worker: 0% loss ($(tail -1 "$TMP/ping.out"))"
stop_daemon
