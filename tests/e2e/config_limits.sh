#!/usr/bin/env bash
# Hostile config input: each case exits 2 with a clear message, within 10 s and 1 GiB of
# address space (a generous bound: a valid config needs a few MiB), and never crashes, blocks
# or opens anything.
source "$(dirname "$0")/lib.sh"

# expect_refused FILE PATTERN: fdlinkd --check-config -c FILE exits 2 and says PATTERN.
expect_refused() {
  local file=$1 pattern=$2 rc=0
  (ulimit -v 1048576; timeout 10 "$FDLINKD" --check-config -c "$file") >"$TMP/out" 2>"$TMP/err" || rc=$?
  [ $rc -eq 2 ] || fail "$file: exit status $rc, expected 2 ($(head -c 300 "$TMP/err"))"
  grep -qE "$pattern" "$TMP/err" || fail "$file: no message matching '$pattern': $(head -c 300 "$TMP/err")"
  [ "$(wc -l < "$TMP/err")" -le 102 ] || fail "$file: $(wc -l < "$TMP/err") lines of errors"
  [ "$(wc -c < "$TMP/err")" -le 65536 ] || fail "$file: $(wc -c < "$TMP/err") bytes of errors"
  pass "$(basename "$file"): exit 2, $(head -1 "$TMP/err" | cut -c1-140)"
}

"$PY" -c "print('a' + '.a' * 100000 + ' = 1')" > "$TMP/deep-key.toml"
expect_refused "$TMP/deep-key.toml" "deep-key.toml:1:[0-9]+: a key with more than 32 dotted parts"

"$PY" -c "print('a = ' + '[' * 100000)" > "$TMP/deep-array.toml"
expect_refused "$TMP/deep-array.toml" "nested more than 32 deep"

mkfifo "$TMP/fifo.toml"
expect_refused "$TMP/fifo.toml" "it is a FIFO, not a regular file"
expect_refused /dev/zero "it is a character device, not a regular file"
mkdir "$TMP/dir.toml"
expect_refused "$TMP/dir.toml" "it is a directory, not a regular file"

head -c 17M /dev/zero | tr '\0' '#' > "$TMP/huge.toml"
expect_refused "$TMP/huge.toml" "the limit is 16777216 \(16 MiB\)"

"$PY" -c "
import sys
for i in range(1000000): sys.stdout.write(f'k{i} = 1\n')" > "$TMP/million.toml"
expect_refused "$TMP/million.toml" "and 9999[0-9]{2} more errors not shown"
grep -qE "100000[01] errors in" "$TMP/err" || fail "the summary does not count every error"

"$PY" -c "print('[[link]]\nname = \"a\"\ntype = \"af_packet\"\ninterface = \"' + 'x' * 10000000 + '\"\nsink = \"s\"')" > "$TMP/long-value.toml"
expect_refused "$TMP/long-value.toml" 'interface "x{64}\.\.\. \(10000000 bytes\)"'

# Escaped NUL and control characters in every kind of name: refused, shown escaped.
for case in 'interface = "ve\u0000th"' 'interface = "veth\u001b"' 'netns = "blue\u0000x"'; do
  cat > "$TMP/ctl.toml" <<EOT
[[link]]
name = "a"
type = "af_packet"
interface = "veth0"
$case
sink = "s"
[[sink]]
name = "s"
type = "forward"
to = "a"
EOT
  # (a second interface line replaces the first: TOML refuses duplicate keys, so drop it)
  [[ $case == interface* ]] && sed -i '4d' "$TMP/ctl.toml"
  expect_refused "$TMP/ctl.toml" '\\x(00|1b)'
done
for key in path peer; do
  cat > "$TMP/ctl.toml" <<EOT
[[link]]
name = "u"
type = "unix"
socket = "dgram"
path = "/tmp/a.sock"
$key = "/tmp/x\u0000y"
sink = "s"
[[sink]]
name = "s"
type = "forward"
to = "u"
EOT
  [ $key = path ] && sed -i '5d' "$TMP/ctl.toml"
  expect_refused "$TMP/ctl.toml" "$key \"/tmp/x\\\\x00y\" in link \"u\" must be an absolute path"
done
cat > "$TMP/ctl.toml" <<EOT
[[link]]
name = "a\u0000b"
type = "af_packet"
interface = "veth0"
sink = "s"
EOT
expect_refused "$TMP/ctl.toml" 'link name "a\\x00b" must be'
