#!/usr/bin/env bash
# unix_stream.sh listen|connect: a unix link with socket = "stream", the framing of QEMU's
# -netdev stream and passt (a 32-bit big-endian length before each frame).
# ns1 (h1, 10.77.5.1) --veth-- [af_packet] fdlinkd [unix stream] -- peer process (10.77.5.2)
#   listen: fdlinkd listens and the peer connects (QEMU with server=off);
#   connect: the peer listens and fdlinkd connects (QEMU with server=on, passt): started before
#            the peer exists, fdlinkd says so once and connects as soon as it is there.
# 100 pings through the stream, both ways; the peer goes away and a new one comes: pings work
# again without restarting fdlinkd.
source "$(dirname "$0")/lib.sh"
MODE=${1:?listen or connect}

mkns h1; mkns fw
veth "$ID-h1" h1 "$ID-fw" pa
ip -n "$ID-h1" addr add 10.77.5.1/24 dev h1
SOCK="$TMP/peer.sock"
role='listen = true'; peer_kind=stream
[ "$MODE" = connect ] && { role='connect = true'; peer_kind=stream-listen; }

cat > "$TMP/fdlinkd.toml" <<EOT
[daemon]
stats_interval = "0s"
[[link]]
name = "wire"
type = "af_packet"
interface = "pa"
sink = "to-peer"
[[link]]
name = "peer"
type = "unix"
path = "$SOCK"
socket = "stream"
$role
sink = "to-wire"
$(forward_sinks wire peer)
EOT
start_daemon "$TMP/fdlinkd.toml" "$ID-fw"
if [ "$MODE" = listen ]; then
  [ -S "$SOCK" ] || fail "fdlinkd did not create $SOCK"
else
  sleep 0.5  # a few attempts with no one there
  [ "$(logq count unix_connect_failed)" -eq 1 ] || fail "want one unix_connect_failed, got $(logq count unix_connect_failed)"
  pass "no peer yet: one unix_connect_failed logged, not one per attempt"
fi

start_peer() {
  rm -f "$SOCK.count"
  [ "$MODE" = connect ] && rm -f "$SOCK"
  "$PY" "$HERE/unix_peer.py" "$SOCK" 10.77.5.2 02:fd:00:00:05:02 "$TMP/peer.count" "$peer_kind" > "$TMP/peer.out" &
  PEER=$!
  BACKGROUND+=("$PEER")
  for _ in $(seq 100); do [ "$(logq count unix_peer_connected)" -ge "$1" ] && return; sleep 0.05; done
  fail "fdlinkd did not log the peer's connection"
}

start_peer 1
ping_ok "$ID-h1" 10.77.5.2 100
# Pings of 1400 bytes: frames of 1442 bytes, often split across reads.
out=$(ip netns exec "$ID-h1" ping -q -c 50 -i 0.01 -s 1400 -W 2 10.77.5.2) || fail "large pings lost: $out"
grep -q " 0% packet loss" <<< "$out" || fail "large pings lost: $out"
pass "50 pings of 1400 bytes through the stream, 0% loss"
kill -TERM "$PEER"; wait "$PEER" || true
read -r peer_rx peer_tx < "$TMP/peer.count"
[ "$peer_tx" -ge 150 ] || fail "the peer sent only $peer_tx replies"
pass "peer received $peer_rx frames and sent $peer_tx over the stream"

for _ in $(seq 50); do logq has unix_peer_disconnected && break; sleep 0.05; done
logq has unix_peer_disconnected || fail "fdlinkd did not notice the peer leaving"
ip -n "$ID-h1" neigh flush dev h1
start_peer 2
ping_ok "$ID-h1" 10.77.5.2 20
if [ "$MODE" = listen ]; then
  # A peer that does not read: fdlinkd's writes are cut short and finished when it reads again;
  # every frame it gets is whole, and what fdlinkd counted as sent is what it got.
  kill -TERM "$PEER"; wait "$PEER" || true
  "$PY" "$HERE/stream_slow_peer.py" "$SOCK" "$TMP/slow.count" > "$TMP/slow.out" &
  SLOW=$!
  BACKGROUND+=("$SLOW")
  for _ in $(seq 50); do grep -q connected "$TMP/slow.out" && break; sleep 0.05; done
  sleep 0.2
  tx0=$("$FDLINKCTL" -s "$CTL" stats --json | "$PY" -c 'import json,sys; print({l["name"]: l for l in json.load(sys.stdin)["links"]}["peer"]["tx_packets"])')
  ip netns exec "$ID-h1" "$PY" "$HERE/send_frames.py" h1 3000 1400 > /dev/null
  wait "$SLOW" || true
  read -r whole bad left < "$TMP/slow.count"
  kill -0 "$DAEMON_PID" || fail "fdlinkd died while a peer did not read"
  tx1=$("$FDLINKCTL" -s "$CTL" stats --json | "$PY" -c 'import json,sys; print({l["name"]: l for l in json.load(sys.stdin)["links"]}["peer"]["tx_packets"])')
  [ "$bad" -eq 0 ] && [ "$left" -eq 0 ] || fail "slow peer: $bad bad lengths, $left bytes of a cut frame"
  [ "$whole" -gt 0 ] && [ $((tx1 - tx0)) -eq "$whole" ] || fail "slow peer got $whole whole frames, fdlinkd counted $((tx1 - tx0)) sent"
  pass "a peer that stopped reading got $whole whole frames, as many as fdlinkd counted; no cut frame"
fi
stop_daemon
errors=$(logq final peer rx_errors)
[ "$errors" -eq 0 ] || fail "rx_errors=$errors on the stream link"
pass "a second peer works after the first left, with no framing error"
