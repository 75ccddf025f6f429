#!/usr/bin/env bash
# ns1: fdlinkd creates TAP "t0", and ns1's stack talks through it; fdlinkd forwards it to an
# af_packet link on a veth into ns2. Pings and TCP both ways; after SIGTERM the TAP is gone.
source "$(dirname "$0")/lib.sh"

mkns h1; mkns h2
veth "$ID-h1" pb "$ID-h2" h2
ip -n "$ID-h2" addr add 10.77.2.2/24 dev h2

cat > "$TMP/fdlinkd.toml" <<EOT
[daemon]
stats_interval = "0s"
[[link]]
name = "tap"
type = "tap"
interface = "t0"
sink = "to-wire"
[[link]]
name = "wire"
type = "af_packet"
interface = "pb"
dispatch = "recvmmsg"
sink = "to-tap"
$(forward_sinks tap wire)
EOT
start_daemon "$TMP/fdlinkd.toml" "$ID-h1"
ip -n "$ID-h1" link show t0 | grep -q "UP" || fail "fdlinkd did not bring t0 up"
ip -n "$ID-h1" addr add 10.77.2.1/24 dev t0

ping_ok "$ID-h1" 10.77.2.2 100
tcp_ok "$ID-h1" "$ID-h2" 10.77.2.2 50
tcp_ok "$ID-h2" "$ID-h1" 10.77.2.1 50
stop_daemon

! ip -n "$ID-h1" link show t0 >/dev/null 2>&1 || fail "TAP t0 still exists after fdlinkd exited"
pass "TAP t0 removed on exit"
[ "$(logq final tap drops)" -eq 0 ] && [ "$(logq final wire drops)" -eq 0 ] || fail "unexpected drops"
pass "final counters: tap rx=$(logq final tap rx_packets) wire rx=$(logq final wire rx_packets), no drops"
