#!/usr/bin/env bash
# The example sink plugin (mac_rewrite) end to end: h1 knows h2's address under a MAC that
# does not exist; only the plugin, rewriting the destination to h2's real MAC, makes pings
# arrive. A plugin of another ABI version and a file that is no shared object exit 2 with a
# clear message.
source "$(dirname "$0")/lib.sh"
: "${MAC_REWRITE_PLUGIN:?}" "${BAD_ABI_PLUGIN:?}"

mkns h1; mkns h2; mkns fw
veth "$ID-h1" h1 "$ID-fw" pa
veth "$ID-h2" h2 "$ID-fw" pb
ip -n "$ID-h1" addr add 10.77.22.1/24 dev h1
ip -n "$ID-h2" addr add 10.77.22.2/24 dev h2
mac2=$(ip -n "$ID-h2" -o link show h2 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
ip -n "$ID-h1" neigh replace 10.77.22.2 lladdr 02:de:ad:00:00:02 dev h1 nud permanent

config() {  # config PATH
  cat <<EOT
[daemon]
stats_interval = "0s"
$(afp_link a pa rw)
$(afp_link b pb to-a)
[[sink]]
name = "rw"
type = "plugin"
path = "$1"
to = ["b"]
config = { dst = "$mac2" }
[[sink]]
name = "to-a"
type = "forward"
to = "a"
EOT
}

config "$MAC_REWRITE_PLUGIN" > "$TMP/ok.toml"
start_daemon "$TMP/ok.toml" "$ID-fw"
ping_ok "$ID-h1" 10.77.22.2 20
stop_daemon
grep -q '"event":"stats".*"sink":"rw".*"rewritten":[1-9]' "$LOG" || fail "no rewritten frames counted"
pass "mac_rewrite: $(grep '"event":"stats".*"sink":"rw"' "$LOG" | tail -1 | grep -o '"rewritten":[0-9]*') frames sent to h2's MAC $mac2"

for bad in "$BAD_ABI_PLUGIN" "$TMP/ok.toml"; do
  config "$bad" > "$TMP/bad.toml"
  rc=0
  "$FDLINKD" -c "$TMP/bad.toml" 2>"$TMP/err" || rc=$?
  [ $rc -eq 2 ] || fail "plugin $bad: exit $rc, expected 2"
  grep -qE "bad.toml:16:8: (plugin .* speaks sink plugin ABI version 999|cannot load plugin .*ok.toml)" "$TMP/err" || fail "plugin $bad: $(cat "$TMP/err")"
  pass "refused with exit 2: $(head -1 "$TMP/err" | sed "s|$TMP/||g" | cut -c1-150)"
done
