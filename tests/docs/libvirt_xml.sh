#!/usr/bin/env bash
# libvirt_xml.sh: the libvirt XML that the README's "Connecting a VM" gives for a vhost_user
# link is what libvirt takes. Each ```xml block of that section is put in a minimal domain
# and checked against libvirt's own schema (virt-xml-validate), once as written and once in
# the other mode its comment names (mode='server', for client = true in fdlinkd). A mangled
# copy must be refused, so that the check is seen to check. No libvirt daemon is run here
# (a run by hand with libvirtd 9.0 is in the README and the note of issue 26).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
command -v virt-xml-validate >/dev/null || { echo "virt-xml-validate is not installed (libvirt-clients)" >&2; exit 77; }
TMP=$(mktemp -d /tmp/fdlinkd-libvirt.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# The section's ```xml blocks, in order.
awk '/^## Connecting a VM/ { in_s = 1; next } /^## / { in_s = 0 }
     in_s && /^```xml/ { in_x = 1; next } in_x && /^```/ { in_x = 0; print "<!-- block end -->"; next }
     in_s && in_x' "$ROOT/README.md" > "$TMP/blocks"
grep -q "<interface type='vhostuser'>" "$TMP/blocks" ||
  { echo "FAIL: no <interface type='vhostuser'> in an xml block of README's \"Connecting a VM\"" >&2; exit 1; }

# domain FILE: a domain of the README's xml lines, <memoryBacking> at the domain's level and
# the rest in <devices>, as `virsh edit` would hold them.
domain() {
  local xml
  xml=$(grep -v 'block end' "$TMP/blocks")
  {
    echo "<domain type='qemu'><name>fdlinkd-readme</name><memory unit='MiB'>256</memory>"
    grep '<memoryBacking>' <<< "$xml" || true
    echo "<os><type arch='x86_64'>hvm</type></os><devices>"
    grep -v '<memoryBacking>' <<< "$xml"
    echo "</devices></domain>"
  } > "$1"
}
domain "$TMP/client.xml"
grep -q "<memoryBacking>" "$TMP/client.xml" ||
  { echo "FAIL: the README's libvirt XML does not share the guest's memory (<memoryBacking>)" >&2; exit 1; }
grep -q "<access mode='shared'/>" "$TMP/client.xml" ||
  { echo "FAIL: the README's <memoryBacking> is not shared" >&2; exit 1; }
virt-xml-validate "$TMP/client.xml" domain >&2 ||
  { echo "FAIL: libvirt's schema refuses the README's XML:" >&2; cat "$TMP/client.xml" >&2; exit 1; }
echo "ok: the README's libvirt XML (QEMU connects, fdlinkd listens) is a valid domain"

sed "s/mode='client'/mode='server'/" "$TMP/client.xml" > "$TMP/server.xml"
grep -q "mode='server'" "$TMP/server.xml" || { echo "FAIL: no mode='client' to turn into 'server'" >&2; exit 1; }
virt-xml-validate "$TMP/server.xml" domain >&2 ||
  { echo "FAIL: libvirt's schema refuses mode='server' (client = true in fdlinkd)" >&2; exit 1; }
echo "ok: with mode='server' (fdlinkd's client = true) it is valid too"

sed "s/type='vhostuser'/type='vhost-user'/" "$TMP/client.xml" > "$TMP/bad.xml"
if virt-xml-validate "$TMP/bad.xml" domain > /dev/null 2>&1; then
  echo "FAIL: virt-xml-validate took <interface type='vhost-user'> (not a libvirt type): it checks nothing" >&2
  exit 1
fi
echo "ok: a mangled copy (type='vhost-user') is refused"
