#!/usr/bin/env bash
# systemd.sh: fdlinkd as an operator runs it, under a real systemd as PID 1.
#
# A Debian 12 root (mmdebstrap, cached in the build tree) boots in systemd-nspawn; the .deb
# CPack makes is installed in it with apt-get, and then, each asserted:
#   1. `systemctl start fdlinkd` with the shipped unit and /etc/fdlinkd.toml: 20 pings between
#      two namespaces of this test go through it; it runs as a dynamic user, not root;
#   2. `systemctl reload` adds a TAP link (DynamicUser, CAP_NET_ADMIN, /dev/net/tun): the
#      device exists and fdlinkctl shows the link up;
#   3. a bad edit and `systemctl reload`: the reload fails, the service stays active and keeps
#      forwarding, and the journal names file:line:col;
#   4. the watchdog: with a drop-in of WatchdogSec=2s, a stopped daemon (SIGSTOP) is killed and
#      started again by systemd;
#   5. an af_xdp link under the shipped drop-in af_xdp.conf (CAP_BPF, CAP_IPC_LOCK; the
#      locked-memory limit stays the kernel's 8 MiB): pings go through it;
#   6. two instances fdlinkd@t1 and fdlinkd@t2 beside the plain unit: each active, each
#      answering `fdlinkctl -i NAME`, t1 forwarding;
#   7. `systemctl stop`: the final counters are in the journal and the units end inactive, not
#      failed.
# The container sees only the test's veths (private network); the hosts are namespaces of
# this test. Exits 77 (skipped) without root, mmdebstrap or systemd-nspawn.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD_DIR:?set BUILD_DIR to the build directory}
export FDLINKD=/bin/true  # (lib.sh wants one; the daemon here is the packaged one)
[ "$(id -u)" -eq 0 ] || { echo "system test: needs root" >&2; exit 77; }
for t in mmdebstrap systemd-nspawn cpack nsenter; do
  command -v "$t" >/dev/null || { echo "system test: $t missing; skipped" >&2; exit 77; }
done
source "$HERE/../e2e/lib.sh"

ROOTFS="$TMP/root"
NSPAWN=""
MOUNTED=""
system_cleanup() {
  if [ -n "$NSPAWN" ] && kill -0 "$NSPAWN" 2>/dev/null; then
    kill -TERM "$NSPAWN" 2>/dev/null || true  # (an orderly shutdown of the container)
    for _ in $(seq 100); do kill -0 "$NSPAWN" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$NSPAWN" 2>/dev/null || true
  fi
  [ -z "$MOUNTED" ] || umount "$MOUNTED" 2>/dev/null || true
}
trap 'rc=$?; system_cleanup || true; set +e; (exit $rc); cleanup' EXIT

# --- the package and the root -------------------------------------------------------------
(cd "$TMP" && cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$TMP/deb" > "$TMP/cpack.log" 2>&1) ||
  { tail -20 "$TMP/cpack.log"; fail "cpack failed"; }
DEB=$(ls "$TMP"/deb/fdlinkd_*.deb)
# What it depends on goes into the root up front: apt-get then installs the .deb offline.
deps=$(dpkg-deb -f "$DEB" Depends | tr ',' '\n' | sed 's/(.*)//; s/|.*//; s/ //g' | grep -v '^$' | sort | tr '\n' ',')
pkgs="systemd,systemd-sysv,dbus,iproute2,iputils-ping,procps,${deps%,}"
CACHE="$BUILD/system-cache"
mkdir -p "$CACHE"
tarball="$CACHE/bookworm-$(echo "$pkgs" | sha256sum | cut -c1-16).tar"
if [ ! -s "$tarball" ]; then
  echo "system test: making a Debian 12 root with mmdebstrap (about a minute; cached in $CACHE)"
  rm -f "$CACHE"/bookworm-*.tar
  mmdebstrap --variant=minbase --format=tar --include="$pkgs" bookworm "$tarball.part" > "$TMP/mmdebstrap.log" 2>&1 ||
    { tail -20 "$TMP/mmdebstrap.log"; rm -f "$tarball.part"; fail "mmdebstrap failed"; }
  mv "$tarball.part" "$tarball"
fi
mkdir -p "$ROOTFS"
tar -C "$ROOTFS" -xf "$tarball"
cp "$DEB" "$ROOTFS/root/"  # (not /tmp: the container's /tmp is a fresh tmpfs)
pass "a Debian 12 root with $(basename "$DEB")"

# --- boot ---------------------------------------------------------------------------------
# nspawn refuses to clean up unless /run/systemd/nspawn is a tmpfs (it is not when /run is not).
if ! mountpoint -q /run/systemd/nspawn && [ "$(stat -f -c %T /run)" != tmpfs ]; then
  mkdir -p /run/systemd/nspawn
  mount -t tmpfs tmpfs /run/systemd/nspawn
  MOUNTED=/run/systemd/nspawn
fi
# No system bus here: --register=no, --keep-unit. af_xdp needs CAP_BPF and CAP_IPC_LOCK in the
# container's bounding set and bpf(2) through nspawn's system call filter.
systemd-nspawn --boot --register=no --keep-unit --private-network --machine="fdl-$ID" \
  --capability=CAP_BPF,CAP_IPC_LOCK --system-call-filter=bpf -D "$ROOTFS" \
  > "$TMP/console.log" 2>&1 < /dev/null &
NSPAWN=$!
PID1=""
for _ in $(seq 200); do
  PID1=$(ps -eo pid=,ppid=,args= | awk -v n="$NSPAWN" '$2 == n && $3 ~ /systemd$/ {print $1}')
  [ -n "$PID1" ] && break
  kill -0 "$NSPAWN" 2>/dev/null || { cat "$TMP/console.log" >&2; fail "systemd-nspawn exited"; }
  sleep 0.05
done
[ -n "$PID1" ] || { cat "$TMP/console.log" >&2; fail "no systemd in the container"; }
# (with the container's environment, not this test's: RUNTIME_DIRECTORY is the e2e harness's)
in_ct() { nsenter -t "$PID1" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
state=""
for _ in $(seq 300); do
  state=$(in_ct systemctl is-system-running 2>/dev/null || true)
  [ "$state" = running ] || [ "$state" = degraded ] && break
  sleep 0.1
done
[ "$state" = running ] || [ "$state" = degraded ] || fail "the container's systemd is '$state', not running"
pass "systemd $(in_ct systemctl --version | head -1 | cut -d' ' -f2) booted as PID 1 in the container ($state)"
in_ct sh -c 'cd /root && apt-get install -y -q ./fdlinkd_*.deb' > "$TMP/apt.log" 2>&1 ||
  { tail -20 "$TMP/apt.log"; fail "apt-get install ./fdlinkd_*.deb failed in the container"; }
in_ct test -f /lib/systemd/system/fdlinkd.service || fail "the package installed no unit"
pass "apt-get install ./$(basename "$DEB") in the container"

# Hosts: namespaces of this test, each joined by a veth to the container.
# hN (10.66.0.N) -- cN (in the container)
host() {  # host N
  mkns "h$1"
  ip link add "e$1" netns "$ID-h$1" type veth peer name "c$1" netns "$PID1"
  ip -n "$ID-h$1" addr add "10.66.0.$1/24" dev "e$1"
  ip -n "$ID-h$1" link set "e$1" up
  in_ct ip link set "c$1" up
}
for n in 1 2 3 4 5; do host $n; done

afp() { printf '[[link]]\nname = "%s"\ntype = "%s"\ninterface = "%s"\nsink = "to-%s"\n' "$@"; }
fwd() { printf '[[sink]]\nname = "to-%s"\ntype = "forward"\nto = "%s"\n' "$1" "$1"; }
CONFIG="$ROOTFS/etc/fdlinkd.toml"
{ printf '[daemon]\nstats_interval = "0s"\n'; afp a af_packet c1 b; afp b af_packet c2 a; fwd a; fwd b; } > "$CONFIG"
journal() { in_ct journalctl -u "$1" --no-pager -o cat; }
# has UNIT REGEX: the unit's journal has a line matching REGEX, read whole first (not
# `journal | grep -q`: see lib.sh; it failed one run in two with both CPUs busy).
has() { local out; out=$(journal "$1"); grep -qE "$2" <<< "$out"; }
# last_run UNIT: the unit's journal from its last "ready: forwarding" on (its last start), once
# journald has written what it was sent (the unit's last lines come just before it exits).
last_run() { in_ct journalctl --sync; journal "$1" | awk '/^ready: forwarding/ {out = ""} {out = out $0 "\n"} END {printf "%s", out}'; }

# --- 1. start, and traffic through it -----------------------------------------------------
in_ct systemctl start fdlinkd || { journal fdlinkd | tail -20; fail "systemctl start fdlinkd failed"; }
ping_ok "$ID-h1" 10.66.0.2 20
main=$(in_ct systemctl show -p MainPID --value fdlinkd)
user=$(in_ct ps -o user= -p "$main")
[ "$user" != root ] || fail "fdlinkd runs as root under its unit"
pass "1. systemctl start fdlinkd: active, forwarding, as the dynamic user $user"

# --- 2. reload adds a TAP link ------------------------------------------------------------
{ afp t tap tap-x t; printf '[[sink]]\nname = "to-t"\ntype = "drop"\n'; } >> "$CONFIG"
in_ct systemctl reload fdlinkd || { journal fdlinkd | tail -20; fail "systemctl reload (a TAP added) failed"; }
in_ct ip link show tap-x > /dev/null || fail "the TAP tap-x does not exist after the reload"
grep -qE "^t +tap +up" <<< "$(in_ct fdlinkctl status)" || fail "fdlinkctl status does not show the TAP link up"
[ "$(in_ct systemctl show -p MainPID --value fdlinkd)" = "$main" ] || fail "the reload restarted fdlinkd"
pass "2. systemctl reload: TAP tap-x made by the dynamic user (CAP_NET_ADMIN, /dev/net/tun), link t up, same pid"

# --- 3. a bad edit ------------------------------------------------------------------------
cp "$CONFIG" "$TMP/good.toml"
sed -i 's/^stats_interval = "0s"$/stats_interval = "0s"\nworkers = 0/' "$CONFIG"
if in_ct systemctl reload fdlinkd 2>/dev/null; then fail "systemctl reload of a bad config succeeded"; fi
[ "$(in_ct systemctl is-active fdlinkd)" = active ] || fail "fdlinkd is not active after a rejected reload"
has fdlinkd "/etc/fdlinkd.toml:3:11: workers = 0 in \[daemon\] is out of range" ||
  { journal fdlinkd | tail -10; fail "the journal does not name /etc/fdlinkd.toml:3:11"; }
ping_ok "$ID-h1" 10.66.0.2 5
cp "$TMP/good.toml" "$CONFIG"
pass "3. a bad edit: reload fails, fdlinkd stays active and forwarding, the journal says /etc/fdlinkd.toml:3:11"

# --- 4. the watchdog ----------------------------------------------------------------------
D="$ROOTFS/etc/systemd/system/fdlinkd.service.d"
mkdir -p "$D"
printf '[Service]\nWatchdogSec=2s\nTimeoutAbortSec=2s\nRestartSec=200ms\n' > "$D/watchdog.conf"
in_ct systemctl daemon-reload
in_ct systemctl restart fdlinkd
old=$(in_ct systemctl show -p MainPID --value fdlinkd)
in_ct kill -STOP "$old"
t0=$(date +%s%N)
new=$old
for _ in $(seq 200); do
  new=$(in_ct systemctl show -p MainPID --value fdlinkd)
  [ "$new" != "$old" ] && [ "$new" != 0 ] && [ "$(in_ct systemctl is-active fdlinkd)" = active ] && break
  sleep 0.05
done
[ "$new" != "$old" ] && [ "$new" != 0 ] || fail "a stopped fdlinkd was not restarted by the watchdog"
has fdlinkd "Watchdog timeout" || fail "the journal does not say the watchdog fired"
ping_ok "$ID-h1" 10.66.0.2 5
rm "$D/watchdog.conf"
in_ct systemctl daemon-reload
pass "4. watchdog: SIGSTOP'd pid $old killed and restarted as $new within $(( ($(date +%s%N) - t0) / 1000000 )) ms"

# --- 5. an af_xdp link under the shipped drop-in ------------------------------------------
in_ct cp /usr/share/doc/fdlinkd/examples/af_xdp.conf /etc/systemd/system/fdlinkd.service.d/
in_ct systemctl daemon-reload
memlock=$(in_ct systemctl show -p LimitMEMLOCK --value fdlinkd)
{ printf '[daemon]\nstats_interval = "0s"\n'; afp a af_packet c1 b; afp b af_xdp c3 a; fwd a; fwd b; } > "$CONFIG"
in_ct systemctl restart fdlinkd || { journal fdlinkd | tail -20; fail "fdlinkd with an af_xdp link did not start"; }
has fdlinkd "af_xdp_attached: XDP program attached" || fail "no af_xdp_attached in the journal"
ping_ok "$ID-h1" 10.66.0.3 20
pass "5. af_xdp link under af_xdp.conf (CAP_BPF, CAP_IPC_LOCK; LimitMEMLOCK=$memlock): attached, 20 pings through it"

# --- 6. two instances beside the plain unit -----------------------------------------------
mkdir -p "$ROOTFS/etc/fdlinkd"
{ printf '[daemon]\nstats_interval = "0s"\n'; afp a af_packet c4 b; afp b af_packet c5 a; fwd a; fwd b; } > "$ROOTFS/etc/fdlinkd/t1.toml"
{ afp x tap tap-t2 x; printf '[[sink]]\nname = "to-x"\ntype = "drop"\n'; } > "$ROOTFS/etc/fdlinkd/t2.toml"
in_ct systemctl start fdlinkd@t1 fdlinkd@t2 || { journal fdlinkd@t1 | tail; journal fdlinkd@t2 | tail; fail "systemctl start fdlinkd@t1 fdlinkd@t2 failed"; }
for i in t1 t2; do
  [ "$(in_ct systemctl is-active "fdlinkd@$i")" = active ] || fail "fdlinkd@$i is not active"
  grep -qF "(instance $i)" <<< "$(in_ct fdlinkctl -i "$i" status)" || fail "fdlinkctl -i $i does not reach instance $i"
  in_ct test -S "/run/fdlinkd-$i/control.sock" || fail "no /run/fdlinkd-$i/control.sock"
done
[ "$(in_ct systemctl is-active fdlinkd)" = active ] || fail "the plain fdlinkd stopped"
ping_ok "$ID-h4" 10.66.0.5 10
ping_ok "$ID-h1" 10.66.0.3 5
pass "6. fdlinkd@t1 and fdlinkd@t2 beside fdlinkd: all three active, fdlinkctl -i reaches each, t1 and the plain one forward"

# --- 7. stop ------------------------------------------------------------------------------
for u in fdlinkd fdlinkd@t1 fdlinkd@t2; do
  in_ct systemctl stop "$u"
  [ "$(in_ct systemctl show -p ActiveState --value "$u")" = inactive ] || fail "$u is not inactive after stop"
  [ "$(in_ct systemctl show -p Result --value "$u")" = success ] || fail "$u ended with result $(in_ct systemctl show -p Result --value "$u")"
done
# (of the last run: an earlier restart logged final counters of link a too)
grep -qE "^stats: final counters link=a rx_packets=[1-9]" <<< "$(last_run fdlinkd)" ||
  fail "no final counters of link a in the journal after the last start"
grep -qE "^stats: final counters link=a rx_packets=[1-9]" <<< "$(last_run fdlinkd@t1)" ||
  fail "no final counters of fdlinkd@t1 in the journal"
pass "7. systemctl stop: final counters in the journal ($(journal fdlinkd | grep -o 'final counters link=a rx_packets=[0-9]*' | tail -1)), units inactive with result success"
