#!/usr/bin/env bash
# The package, as a distribution would check it: CPack builds the .deb; lintian finds no error;
# it installs into a fresh root with dpkg --root (the conffile registered); the installed unit
# passes `systemd-analyze verify`, its exposure (`systemd-analyze security --offline`) is at
# most 2.5; the binaries are stripped and hardened (PIE, full RELRO, BIND_NOW, stack protector,
# fortify); the man pages render without warnings; `cmake --install --prefix X` writes only
# under X.
set -euo pipefail
BUILD=${BUILD_DIR:?set BUILD_DIR to the build directory}
[ "$(id -u)" -eq 0 ] || { echo "needs root (dpkg --root)" >&2; exit 77; }
for t in cpack lintian dpkg systemd-analyze readelf man; do
  command -v "$t" >/dev/null || { echo "skip: $t missing" >&2; exit 77; }
done
TMP=$(mktemp -d /tmp/fdlinkd-pkg.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

(cd "$TMP" && cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$TMP/out" > "$TMP/cpack.log" 2>&1) ||
  { tail -20 "$TMP/cpack.log"; fail "cpack failed"; }
DEB=$(ls "$TMP"/out/fdlinkd_*.deb)
pass "cpack built $(basename "$DEB") ($(stat -c %s "$DEB") bytes)"

lintian --tag-display-limit 0 "$DEB" > "$TMP/lintian.txt" 2>&1 || true
grep -v "running with root privileges" "$TMP/lintian.txt" || true
if grep -q "^E: " "$TMP/lintian.txt"; then fail "lintian reports errors"; fi
pass "lintian: $(grep -c '^E: ' "$TMP/lintian.txt" || true) errors, $(grep -c '^W: ' "$TMP/lintian.txt" || true) warnings"

R="$TMP/root"
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates"
touch "$R/var/lib/dpkg/status"
# (the root has no libc: the dependencies are the host's, hence --force-depends)
dpkg --root="$R" --force-depends --force-not-root -i "$DEB" > "$TMP/dpkg.log" 2>&1 ||
  { cat "$TMP/dpkg.log"; fail "dpkg --root -i failed"; }
for f in /usr/sbin/fdlinkd /usr/sbin/fdlinkctl /lib/systemd/system/fdlinkd.service \
         /lib/systemd/system/fdlinkd@.service /etc/fdlinkd.toml \
         /usr/share/man/man8/fdlinkd.8.gz /usr/share/man/man8/fdlinkctl.8.gz \
         /usr/share/man/man5/fdlinkd.toml.5.gz /usr/share/man/man8/fdlinkd-cni.8.gz \
         /usr/share/bash-completion/completions/fdlinkctl \
         /usr/share/doc/fdlinkd/copyright /usr/lib/cni/fdlinkd-cni; do
  [ -e "$R$f" ] || fail "$f not installed"
done
dpkg --root="$R" -s fdlinkd | grep -A1 '^Conffiles:' | grep -q ' /etc/fdlinkd.toml ' ||
  fail "/etc/fdlinkd.toml is not a conffile"
grep -q "^ExecStart=/usr/sbin/fdlinkd -c /etc/fdlinkd.toml$" "$R/lib/systemd/system/fdlinkd.service" ||
  fail "the unit does not start /usr/sbin/fdlinkd -c /etc/fdlinkd.toml"
grep -q "^ExecReload=/usr/sbin/fdlinkctl reload$" "$R/lib/systemd/system/fdlinkd.service" || fail "no ExecReload"
T="$R/lib/systemd/system/fdlinkd@.service"
grep -q "^ExecStart=/usr/sbin/fdlinkd --instance %i -c /etc/fdlinkd/%i.toml$" "$T" &&
  grep -q "^ExecReload=/usr/sbin/fdlinkctl -i %i reload$" "$T" && grep -q "^RuntimeDirectory=fdlinkd-%i$" "$T" ||
  fail "fdlinkd@.service does not run instance %i from /etc/fdlinkd/%i.toml in /run/fdlinkd-%i"
"$R/usr/sbin/fdlinkd" --check-config -c "$R/etc/fdlinkd.toml" > /dev/null || fail "the installed config does not pass --check-config"
pass "installed into a fresh root: binaries in /usr/sbin, unit in /lib/systemd/system, /etc/fdlinkd.toml a conffile"

# A root with systemd has its targets; this one gets the host's.
cp -a /lib/systemd/system/*.target /lib/systemd/system/*.slice "$R/lib/systemd/system/" 2>/dev/null || true
for unit in fdlinkd.service fdlinkd@tenant1.service; do
  MANPATH="$R/usr/share/man" systemd-analyze verify --root="$R" "/lib/systemd/system/$unit" ||
    fail "systemd-analyze verify $unit failed"
  score=$(systemd-analyze security --offline=true --root="$R" "$unit" 2>&1 |
          sed -n "s/.*Overall exposure level for $unit: \([0-9.]*\).*/\1/p")
  echo "exposure of $unit (systemd-analyze security --offline=true): $score"
  awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 2.5) }' || fail "exposure of $unit $score, want at most 2.5"
done
pass "systemd-analyze verify passes for fdlinkd.service and fdlinkd@tenant1.service; exposure $score <= 2.5"

for b in usr/sbin/fdlinkd usr/sbin/fdlinkctl; do
  f="$R/$b"
  # (outputs are read whole: grep -q in a pipe would cut them short under pipefail)
  sections=$(readelf -S "$f"); header=$(readelf -h "$f"); segments=$(readelf -l "$f")
  dynamic=$(readelf -d "$f"); syms=$(nm -D "$f")
  grep -q '\.symtab' <<< "$sections" && fail "$b is not stripped"
  grep -q 'Type:.*DYN' <<< "$header" || fail "$b is not PIE"
  grep -q GNU_RELRO <<< "$segments" || fail "$b has no RELRO"
  grep -q 'BIND_NOW\|FLAGS.*NOW' <<< "$dynamic" || fail "$b is not linked with -z now"
  grep -q __stack_chk_fail <<< "$syms" || fail "$b has no stack protector"
  grep -q "__[a-z]*_chk@" <<< "$syms" || fail "$b uses no fortified libc call"
done
pass "binaries stripped, PIE, full RELRO and BIND_NOW, stack protector, fortified"

for p in man8/fdlinkd.8 man8/fdlinkctl.8 man8/fdlinkd-cni.8 man5/fdlinkd.toml.5; do
  w=$(MANWIDTH=80 man --warnings -l "$R/usr/share/man/$p.gz" 2>&1 >/dev/null)
  [ -z "$w" ] || fail "man $p: $w"
done
pass "man pages render without warnings"

# cmake --install --prefix X writes only under X.
X="$TMP/prefix"
touch "$TMP/stamp"
cmake --install "$BUILD" --prefix "$X" > "$TMP/install.log" 2>&1 || { cat "$TMP/install.log"; fail "cmake --install"; }
grep -- '-- Installing: \|-- Up-to-date: ' "$TMP/install.log" | grep -v -- " $X/" && fail "cmake --install --prefix wrote outside the prefix"
grep -q "^ExecStart=$X/sbin/fdlinkd -c $X/etc/fdlinkd.toml$" "$X/lib/systemd/system/fdlinkd.service" ||
  fail "the unit installed with --prefix does not point into the prefix"
pass "cmake --install --prefix X: $(find "$X" -type f | wc -l) files, all under X, the unit points into X"
