#!/usr/bin/env bash
# The README's first quick-start command ends in scripts/demo.sh: run it as a user would and
# check what it promises: pings go through fdlinkd, its final counters show them, it exits 0,
# and the namespaces it made are gone.
source "$(dirname "$0")/lib.sh"

ROOT=$(cd "$HERE/../.." && pwd)
"$ROOT/scripts/demo.sh" "$FDLINKD" > "$TMP/demo.out" 2>&1 || { cat "$TMP/demo.out" >&2; fail "demo.sh exited non-zero"; }
out=$(cat "$TMP/demo.out")
grep -q "no answer (as expected)" <<< "$out" || fail "demo did not show the hosts apart: $out"
grep -q "5 packets transmitted, 5 received, 0% packet loss" <<< "$out" || fail "demo pings lost: $out"
grep -q "fdlinkd exited with status 0" <<< "$out" || fail "demo: fdlinkd did not exit 0: $out"
# Final counters: link a received the 5 echo requests (and ARP), b sent them on.
a_rx=$(echo "$out" | grep "final counters link=a " | sed -n 's/.* rx_packets=\([0-9]*\).*/\1/p')
b_tx=$(echo "$out" | grep "final counters link=b " | sed -n 's/.* tx_packets=\([0-9]*\).*/\1/p')
[ -n "$a_rx" ] && [ "$a_rx" -ge 5 ] || fail "final counters of a: rx_packets=${a_rx:-none}"
[ "$b_tx" = "$a_rx" ] || fail "b tx_packets=$b_tx, a rx_packets=$a_rx (no drops expected)"
left=$(ip netns list | grep -c '^fdl-demo-' || true)
[ "$left" -eq 0 ] || fail "demo left $left namespaces behind"
pass "demo: 5/5 pings through fdlinkd, a rx $a_rx = b tx $b_tx, exit 0, nothing left behind"
