#!/usr/bin/env bash
# packet_mmap hands a ring block to fdlinkd when it is full or when block_timeout (default
# 1 ms) expires. On an idle link a single ping must not wait for blocks to fill: each of 20
# pings, 200 ms apart, must return in well under 10 ms.
source "$(dirname "$0")/lib.sh"

mkns h1; mkns h2; mkns fw
veth "$ID-h1" h1 "$ID-fw" pa
veth "$ID-h2" h2 "$ID-fw" pb
ip -n "$ID-h1" addr add 10.77.8.1/24 dev h1
ip -n "$ID-h2" addr add 10.77.8.2/24 dev h2
cat > "$TMP/fdlinkd.toml" <<EOT
[daemon]
stats_interval = "0s"
$(afp_link a pa to-b 'dispatch = "packet_mmap"')
$(afp_link b pb to-a 'dispatch = "packet_mmap"')
$(forward_sinks a b)
EOT
start_daemon "$TMP/fdlinkd.toml" "$ID-fw"
out=$(ip netns exec "$ID-h1" ping -c 20 -i 0.2 -W 1 10.77.8.2)
grep -q " 0% packet loss" <<< "$out" || fail "pings lost: $out"
max=$(echo "$out" | tail -1 | cut -d/ -f6)
"$PY" -c "import sys; sys.exit(0 if float('$max') < 5.0 else 1)" || fail "slowest ping took $max ms (limit 5 ms)"
pass "20 single pings through packet_mmap: $(echo "$out" | tail -1)"
stop_daemon
