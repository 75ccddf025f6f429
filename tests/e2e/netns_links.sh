#!/usr/bin/env bash
# fdlinkd runs in a namespace of its own and opens both links inside the hosts' namespaces
# with `netns` (one by name, one by path), wiring two "containers" without running in them.
source "$(dirname "$0")/lib.sh"

mkns h1; mkns h2; mkns fw
# Each host has a veth pair of its own; fdlinkd attaches to the inner end (p1, p2).
veth "$ID-h1" h1 "$ID-h1" p1
veth "$ID-h2" h2 "$ID-h2" p2
ip -n "$ID-h1" addr add 10.77.3.1/24 dev h1
ip -n "$ID-h2" addr add 10.77.3.2/24 dev h2

cat > "$TMP/fdlinkd.toml" <<EOT
[daemon]
stats_interval = "0s"
[[link]]
name = "c1"
type = "af_packet"
interface = "p1"
netns = "$ID-h1"
sink = "to-c2"
[[link]]
name = "c2"
type = "af_packet"
interface = "p2"
netns = "/run/netns/$ID-h2"
dispatch = "recvmmsg"
sink = "to-c1"
$(forward_sinks c1 c2)
EOT
start_daemon "$TMP/fdlinkd.toml" "$ID-fw"
# The daemon's own namespace has no such interfaces: the links really are in h1 and h2.
! ip -n "$ID-fw" link show p1 >/dev/null 2>&1 || fail "p1 unexpectedly in the daemon's namespace"

ping_ok "$ID-h1" 10.77.3.2 100
tcp_ok "$ID-h1" "$ID-h2" 10.77.3.2 50
tcp_ok "$ID-h2" "$ID-h1" 10.77.3.1 50
stop_daemon
[ "$(logq final c1 drops)" -eq 0 ] && [ "$(logq final c2 drops)" -eq 0 ] || fail "unexpected drops"
pass "final counters: c1 rx=$(logq final c1 rx_packets) c2 rx=$(logq final c2 rx_packets), no drops"
