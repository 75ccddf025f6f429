#!/usr/bin/env bash
# ns1 (h1, 10.77.4.1) --veth-- [af_packet] fdlinkd [unix seqpacket] -- peer process (10.77.4.2)
# The peer answers ARP and ping over the unix socket: 100 pings must all come back, both ways
# through the unix link. The peer then leaves and a new one connects: pings work again.
source "$(dirname "$0")/lib.sh"

mkns h1; mkns fw
veth "$ID-h1" h1 "$ID-fw" pa
ip -n "$ID-h1" addr add 10.77.4.1/24 dev h1
SOCK="$TMP/peer.sock"

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
socket = "seqpacket"
dispatch = "recvmmsg"
sink = "to-wire"
$(forward_sinks wire peer)
EOT
start_daemon "$TMP/fdlinkd.toml" "$ID-fw"
[ -S "$SOCK" ] || fail "fdlinkd did not create $SOCK"

start_peer() {
  "$PY" "$HERE/unix_peer.py" "$SOCK" 10.77.4.2 02:fd:00:00:04:02 "$TMP/peer.count" > "$TMP/peer.out" &
  PEER=$!
  BACKGROUND+=("$PEER")
  for _ in $(seq 50); do grep -q connected "$TMP/peer.out" && break; sleep 0.05; done
  for _ in $(seq 50); do [ "$(logq count unix_peer_connected)" -ge "$1" ] && return; sleep 0.05; done
  fail "fdlinkd did not log the peer's connection"
}

start_peer 1
ping_ok "$ID-h1" 10.77.4.2 100
kill -TERM "$PEER"; wait "$PEER" || true
read -r peer_rx peer_tx < "$TMP/peer.count"
[ "$peer_tx" -ge 100 ] || fail "the peer sent only $peer_tx replies"
pass "peer received $peer_rx frames and sent $peer_tx over the unix link"

for _ in $(seq 50); do logq has unix_peer_disconnected && break; sleep 0.05; done
logq has unix_peer_disconnected || fail "fdlinkd did not notice the peer leaving"
ip -n "$ID-h1" neigh flush dev h1
start_peer 2
ping_ok "$ID-h1" 10.77.4.2 20
stop_daemon

[ ! -e "$SOCK" ] || fail "socket file $SOCK left behind"
peer_rx_total=$(logq final peer rx_packets)
[ "$peer_rx_total" -ge 120 ] || fail "unix link counted only $peer_rx_total frames from the peers"
pass "a second peer works after the first left; socket file removed on exit"
