#!/usr/bin/env bash
# A bad config: exit 2, every error on stderr as path:line:col, nothing opened or created.
# A good config whose second link cannot open: exit 1, and the TAP the first link created is
# removed again.
source "$(dirname "$0")/lib.sh"

mkns fw
TAPNAME="${ID}t"
SOCK="$TMP/never.sock"
cat > "$TMP/bad.toml" <<EOT
[daemon]
workers = 0
[[link]]
name = "t"
type = "tap"
interface = "$TAPNAME"
sink = "to-u"
[[link]]
name = "u"
type = "unix"
path = "$SOCK"
dispatch = "recvmmsg"
sink = "to-t"
colour = "red"
[[sink]]
name = "to-u"
type = "forward"
to = "u"
[[sink]]
name = "to-t"
type = "forward"
to = "nowhere"
EOT

rc=0
ip netns exec "$ID-fw" "$FDLINKD" -c "$TMP/bad.toml" >"$TMP/out" 2>"$TMP/err" || rc=$?
[ $rc -eq 2 ] || fail "bad config: exit status $rc, expected 2"
grep -qF "$TMP/bad.toml:2:11: workers = 0 in [daemon] is out of range" "$TMP/err" || fail "no workers error: $(cat "$TMP/err")"
grep -qF "$TMP/bad.toml:14:1: unknown key colour in link \"u\"" "$TMP/err" || fail "no colour error: $(cat "$TMP/err")"
grep -qF "$TMP/bad.toml:22:6: sink \"to-t\" sends to \"nowhere\", which is neither a link nor a sink" "$TMP/err" || fail "no sink error: $(cat "$TMP/err")"
grep -qF "3 errors in $TMP/bad.toml" "$TMP/err" || fail "no summary line: $(cat "$TMP/err")"
! ip -n "$ID-fw" link show "$TAPNAME" >/dev/null 2>&1 || fail "TAP created despite the bad config"
[ ! -e "$SOCK" ] || fail "socket created despite the bad config"
pass "bad config: exit 2, 3 errors with line:col, no TAP, no socket"

rc=0
ip netns exec "$ID-fw" "$FDLINKD" --check-config -c "$TMP/bad.toml" >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "--check-config of a bad config: exit $rc, expected 2"
pass "--check-config: exit 2"

# Valid, but link "gone" names an interface that does not exist.
cat > "$TMP/missing.toml" <<EOT
[[link]]
name = "t"
type = "tap"
interface = "$TAPNAME"
sink = "to-gone"
[[link]]
name = "gone"
type = "af_packet"
interface = "${ID}nope"
sink = "to-t"
[[sink]]
name = "to-gone"
type = "forward"
to = "gone"
[[sink]]
name = "to-t"
type = "forward"
to = "t"
EOT
ip netns exec "$ID-fw" "$FDLINKD" --check-config -c "$TMP/missing.toml" >/dev/null || fail "valid config rejected by --check-config"
rc=0
ip netns exec "$ID-fw" "$FDLINKD" -c "$TMP/missing.toml" --log-format json 2>"$LOG" || rc=$?
[ $rc -eq 1 ] || fail "missing interface: exit status $rc, expected 1"
logq has link_open_failed || fail "no link_open_failed event"
grep -q "interface ${ID}nope does not exist" "$LOG" || fail "the error does not name the interface"
! ip -n "$ID-fw" link show "$TAPNAME" >/dev/null 2>&1 || fail "TAP $TAPNAME left behind after a failed start"
pass "missing interface: exit 1, reported by name, the TAP created before it removed"

rc=0
"$FDLINKD" -c "$TMP/does-not-exist.toml" 2>"$TMP/err" || rc=$?
[ $rc -eq 2 ] && grep -q "cannot read config" "$TMP/err" || fail "missing config file: exit $rc"
rc=0
"$FDLINKD" --no-such-flag 2>/dev/null || rc=$?
[ $rc -eq 2 ] || fail "unknown flag: exit $rc, expected 2"
pass "missing config file and unknown flag: exit 2"

# In JSON mode (from the file, or --log-format json) every line is JSON, config errors too,
# and a path that is not UTF-8 stays valid JSON.
bad="$TMP/bad-$(printf '\xff').toml"
printf '[daemon]\nlog_format = "json"\nworkers = 0\n[[link]]\nname = "a"\nintreface = "x"\n' > "$bad"
rc=0; "$FDLINKD" -c "$bad" 2>"$TMP/json.err" || rc=$?
[ $rc -eq 2 ] || fail "invalid config in JSON mode: exit $rc"
"$PY" - "$TMP/json.err" <<'PYEOF' || { cat "$TMP/json.err" >&2; fail "config errors in JSON mode are not JSON lines"; }
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
errs = [l for l in lines if l["event"] == "config_error"]
assert len(errs) >= 2 and all({"file", "line", "column", "msg"} <= set(e) for e in errs), lines
assert any(e["line"] == 3 and "workers" in e["msg"] for e in errs), errs
assert "\\xff" in errs[0]["file"], errs[0]["file"]
assert lines[-1]["event"] == "config_invalid"
print("ok: JSON mode: %d config errors as JSON lines (file, line, column), a non-UTF-8 path escaped" % len(errs))
PYEOF
