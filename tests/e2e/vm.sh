#!/usr/bin/env bash
# vm.sh MODE: a real QEMU guest (the host's Debian kernel, a busybox initramfs, TCG) plugged
# into fdlinkd. MODE:
#   stream_listen:  a unix link with socket = "stream"; fdlinkd listens, QEMU connects
#                   (-netdev stream,server=off);
#   stream_connect: the same, QEMU listens (server=on), fdlinkd connects;
#   dgram:          a unix link with socket = "dgram" (-netdev dgram), with the default
#                   net.unix.max_dgram_qlen of 10: QEMU's socket queues 10 datagrams, and
#                   the 5 MiB toward the guest must still lose none in fdlinkd (back-pressure:
#                   it waits for the guest instead of dropping);
#   tap:            QEMU makes a TAP (-netdev tap,vnet_hdr=on), fdlinkd reads its host side
#                   with an af_packet link. When the VM goes, the TAP goes; the next VM makes
#                   it again (a new ifindex) and fdlinkd follows.
#   vhost_user:     a vhost_user link; fdlinkd listens, QEMU connects (-netdev vhost-user),
#                   the guest's RAM in a shared memfd that fdlinkd maps; the packed ring
#                   (virtio-net-pci's packed=on: RING_PACKED must be negotiated);
#   vhost_user_client: the same with client = true and the split ring: QEMU listens
#                   (server=on). A third guest
#                   then stays up: QEMU must refuse to migrate it (no dirty logging), 10 DIMMs
#                   are hot-added (more than vhost-user's first 8 memory regions: fdlinkd must
#                   map them all, and the guest must still answer), and fdlinkd is restarted
#                   under it: the new daemon connects to the running QEMU and the guest answers.
# h1 (10.77.6.1) --veth-- [af_packet] fdlinkd [the link of MODE] -- guest (10.77.6.2)
# First boot: 20 pings 0% loss, 5 MiB host -> guest and 5 MiB guest -> host over TCP with equal
# SHA-256 on both ends. The guest powers off; a second guest boots on the same socket or TAP
# name and pings again, without fdlinkd restarting. Skipped (77) without qemu-system-x86, a
# kernel in /boot or busybox-static. VM_LINK_EXTRA adds keys to the guest's link (to measure
# without back-pressure: VM_LINK_EXTRA="tx_backlog = 0"; the last check then fails). VM_PACKED=1
# or VM_PACKED= picks the ring of a vhost_user mode. (The client mode's restart under a running
# guest needs the split ring: QEMU 7.2 keeps no packed ring's position for a backend that went
# away, and gives the new one the position it had at start; README, Connecting a VM.)
source "$(dirname "$0")/lib.sh"
MODE=${1:?stream_listen, stream_connect, dgram, tap, vhost_user or vhost_user_client}
KERNEL=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1 || true)
command -v qemu-system-x86_64 >/dev/null && [ -n "$KERNEL" ] && [ -x /bin/busybox ] ||
  { echo "vm: needs qemu-system-x86, linux-image-amd64 and busybox-static; skipped" >&2; exit 77; }

mkns h1; mkns fw
veth "$ID-h1" h1 "$ID-fw" pa
ip -n "$ID-h1" addr add 10.77.6.1/24 dev h1
SOCK="$TMP/vm.sock"
TAP="${ID}v"
server=off
PACKED=""
case $MODE in
  stream_listen) vm_link=$(printf 'type = "unix"\nsocket = "stream"\npath = "%s"\nlisten = true' "$SOCK"); server=off ;;
  stream_connect) vm_link=$(printf 'type = "unix"\nsocket = "stream"\npath = "%s"\nconnect = true' "$SOCK"); server=on ;;
  dgram) vm_link=$(printf 'type = "unix"\nsocket = "dgram"\npath = "%s"\npeer = "%s"' "$TMP/fd.sock" "$SOCK") ;;
  tap) vm_link=$(printf 'type = "af_packet"\ninterface = "%s"' "$TAP") ;;
  vhost_user) vm_link=$(printf 'type = "vhost_user"\npath = "%s"' "$SOCK"); PACKED=${VM_PACKED-1} ;;
  vhost_user_client) vm_link=$(printf 'type = "vhost_user"\npath = "%s"\nclient = true' "$SOCK"); server=on; PACKED=${VM_PACKED-} ;;
  *) fail "unknown mode $MODE" ;;
esac
cat > "$TMP/fdlinkd.toml" <<EOT
[daemon]
stats_interval = "0s"
[[link]]
name = "wire"
type = "af_packet"
interface = "pa"
sink = "to-vm"
[[link]]
name = "vm"
$vm_link
${VM_LINK_EXTRA:-}
sink = "to-wire"
$(forward_sinks wire vm)
EOT

# The guest's script: pings (once the path is there), then 5 MiB in (printed SHA-256), then
# 5 MiB out.
cat > "$TMP/full.sh" <<'EOT'
for i in $(seq 100); do ping -c 1 -W 1 10.77.6.1 >/dev/null && break; done
ping -q -c 20 -i 0.05 10.77.6.1 | grep -E "packets transmitted|round-trip"
echo "guest: listening"
nc -l -p 5001 > /tmp/in
echo "guest: sha-in $(sha256sum /tmp/in | cut -d' ' -f1) $(wc -c < /tmp/in)"
dd if=/dev/urandom of=/tmp/out bs=1M count=5 2>/dev/null
echo "guest: sha-out $(sha256sum /tmp/out | cut -d' ' -f1)"
nc 10.77.6.1 5002 < /tmp/out
EOT
cat > "$TMP/ping.sh" <<'EOT'
for i in $(seq 100); do ping -c 1 -W 1 10.77.6.1 >/dev/null && break; done
ping -q -c 20 -i 0.05 10.77.6.1 | grep -E "packets transmitted|round-trip"
EOT
cat > "$TMP/stay.sh" <<'EOT'
for i in $(seq 100); do ping -c 1 -W 1 10.77.6.1 >/dev/null && break; done
echo "guest: up"
sleep 1000
EOT
"$HERE/vm/initramfs.sh" "$TMP/full.gz" "$TMP/full.sh"
"$HERE/vm/initramfs.sh" "$TMP/stay.gz" "$TMP/stay.sh"
"$HERE/vm/initramfs.sh" "$TMP/ping.gz" "$TMP/ping.sh"

# boot NAME INITRD: starts a guest in the background (in the daemon's namespace: a TAP it
# makes is there); its console goes to $TMP/NAME.out.
boot() {
  local netdev="stream,id=n0,server=$server,addr.type=unix,addr.path=$SOCK"
  [ "$MODE" = stream_connect ] && rm -f "$SOCK"
  if [ "$MODE" = dgram ]; then
    rm -f "$SOCK"
    netdev="dgram,id=n0,local.type=unix,local.path=$SOCK,remote.type=unix,remote.path=$TMP/fd.sock"
  fi
  [ "$MODE" = tap ] && netdev="tap,id=n0,ifname=$TAP,script=no,downscript=no,vnet_hdr=on"
  local extra=() dev=""
  if [ "${MODE%_client}" = vhost_user ]; then
    # vhost-user: the guest's RAM in a shared memfd that fdlinkd maps. In client mode QEMU
    # listens (server=on) and waits for fdlinkd to connect.
    local chardev="socket,id=c0,path=$SOCK"
    [ "$server" = on ] && { rm -f "$SOCK"; chardev+=",server=on,wait=off"; }
    extra=(-m 256,slots=16,maxmem=1G
           -object memory-backend-memfd,id=mem,size=256M,share=on -numa node,memdev=mem
           -chardev "$chardev"
           -qmp "unix:$TMP/$1.qmp,server=on,wait=off")
    netdev="vhost-user,id=n0,chardev=c0"
    # QEMU 7.2 under TCG crashes in vhost_net_start's MSI-X set-up with any vhost-user
    # backend (DPDK's vhost PMD too): the device gets legacy interrupts. The guests here always
    # run under TCG (-accel tcg), whether or not the machine has a /dev/kvm (a machine that had
    # one made QEMU segfault while the guest booted, when this was keyed on /dev/kvm).
    dev=",vectors=0"
    [ -n "$PACKED" ] && dev+=",packed=on"
  fi
  ip netns exec "$ID-fw" qemu-system-x86_64 -accel tcg -m 256 -nographic -no-reboot -kernel "$KERNEL" \
    -initrd "$2" -append "console=ttyS0 quiet loglevel=1 fdl.ip=10.77.6.2/24 panic=-1" \
    "${extra[@]}" \
    -netdev "$netdev" -device "virtio-net-pci,netdev=n0,mac=02:fd:00:00:06:02$dev" > "$TMP/$1.out" 2>&1 &
  VM=$!
  BACKGROUND+=("$VM")
  if [ "$MODE" = tap ]; then  # QEMU makes the TAP; without an ifup script it stays down
    for _ in $(seq 100); do ip -n "$ID-fw" link set "$TAP" up 2>/dev/null && return; sleep 0.05; done
    fail "QEMU made no TAP $TAP"
  fi
}
# console NAME PATTERN SECONDS: waits for PATTERN on the guest's console.
console() {
  for _ in $(seq $(( $3 * 10 ))); do grep -q "$2" "$TMP/$1.out" && return 0; sleep 0.1; done
  tail -20 "$TMP/$1.out" >&2
  fail "guest $1: no \"$2\" within $3 s"
}

t0=$(date +%s)
if [ "$MODE" = vhost_user ]; then  # (QEMU connects once, at start: the socket must be there)
  start_daemon "$TMP/fdlinkd.toml" "$ID-fw"
  boot vm1 "$TMP/full.gz"
else  # (a TAP must exist before an af_packet link opens on it; a socket may come later)
  boot vm1 "$TMP/full.gz"
  start_daemon "$TMP/fdlinkd.toml" "$ID-fw"
fi
console vm1 "packets transmitted" 120
grep -q " 0% packet loss" "$TMP/vm1.out" || fail "guest pings lost: $(grep 'packets transmitted' "$TMP/vm1.out")"
pass "guest booted in $(( $(date +%s) - t0 )) s; 20 pings guest -> h1 through fdlinkd, 0% loss"
if [ "${MODE%_client}" = vhost_user ]; then
  features=$(grep '"event":"vhost_user_features"' "$LOG" | tail -1 | sed 's/.*"features":"\([^"]*\)".*/\1/')
  if [ -n "$PACKED" ]; then
    [[ " $features " == *" RING_PACKED "* ]] || fail "packed=on, but the guest took: $features"
    pass "the guest's driver took the packed ring: $features"
  else
    [[ " $features " != *" RING_PACKED "* ]] || fail "packed=off, but the guest took RING_PACKED"
  fi
fi
ping_ok "$ID-h1" 10.77.6.2 20

console vm1 "guest: listening" 30
head -c 5M /dev/urandom > "$TMP/blob"
want=$(sha256sum < "$TMP/blob" | cut -d' ' -f1)
ip netns exec "$ID-h1" socat -u TCP-LISTEN:5002,reuseaddr - 2>/dev/null | sha256sum > "$TMP/got" &
rx=$!
sleep 0.3
t1=$(date +%s%N)
ip netns exec "$ID-h1" timeout 120 socat -u "FILE:$TMP/blob" TCP:10.77.6.2:5001 || fail "TCP to the guest failed"
console vm1 "guest: sha-in" 60
read -r _ _ got_in size_in < <(grep "guest: sha-in" "$TMP/vm1.out" | tr -d "\r")
[ "$got_in" = "$want" ] || fail "5 MiB to the guest: guest's sha256 $got_in ($size_in bytes), sent $want"
pass "5 MiB h1 -> guest: SHA-256 equal ($(( ($(date +%s%N) - t1) / 1000000 )) ms)"
console vm1 "guest: sha-out" 30
sent_out=$(grep "guest: sha-out" "$TMP/vm1.out" | tr -d '\r' | awk '{print $3}')
# (bounded: a transfer that stalls fails here with what each side saw, instead of hanging
# until ctest's timeout kills the test with nothing said; one CI run saw that once)
for _ in $(seq 300); do kill -0 "$rx" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$rx" 2>/dev/null; then
  ip netns exec "$ID-h1" ss -tin >&2 || true
  "${FDLINKCTL:-$(dirname "$FDLINKD")/../ctl/fdlinkctl}" -s "$CTL" stats >&2 || true
  grep -vE '"event":"(stats|vhost_user_features)"' "$LOG" | tail -20 >&2
  fail "5 MiB guest -> h1: h1 still receiving 30 s after the guest sent it all"
fi
wait "$rx" || true
got_out=$(cut -d' ' -f1 < "$TMP/got")
[ "$got_out" = "$sent_out" ] || fail "5 MiB from the guest: received $got_out, guest sent $sent_out"
pass "5 MiB guest -> h1: SHA-256 equal"
console vm1 "reboot: Power down" 60
wait "$VM" || true
gone=unix_peer_disconnected
[ "$MODE" = tap ] && gone=link_down
[ "${MODE%_client}" = vhost_user ] && gone=vhost_user_disconnected
if [ "$MODE" != dgram ]; then  # (a datagram peer does not connect: nothing to see going)
  for _ in $(seq 50); do logq has "$gone" && break; sleep 0.1; done
  logq has "$gone" || fail "fdlinkd did not log the guest going away ($gone)"
fi

ip -n "$ID-h1" neigh flush dev h1
boot vm2 "$TMP/ping.gz"
console vm2 "packets transmitted" 120
grep -q " 0% packet loss" "$TMP/vm2.out" || fail "second guest's pings lost: $(grep 'packets transmitted' "$TMP/vm2.out")"
pass "a second guest on the same socket or TAP name: 20 pings, 0% loss, fdlinkd not restarted"
console vm2 "reboot: Power down" 60
wait "$VM" || true

if [ "$MODE" = vhost_user_client ]; then
  # A guest that stays up: QEMU refuses to migrate it, takes 10 more DIMMs (more than vhost-user's
  # first 8 memory regions), and keeps its network across an fdlinkd restart.
  qmp() { "$PY" "$HERE/vm/qmp.py" "$TMP/vm3.qmp" "$@"; }
  vm_status() {  # vm_status KEY: a fact of the vm link's peer, or "rx/tx" of its first queue
    "$FDLINKCTL" -s "$CTL" status --json | "$PY" -c '
import json, sys
l = [l for l in json.load(sys.stdin)["links"] if l["name"] == "vm"][0]
q = l.get("queues", [{}])[0]
print(l["peer"][sys.argv[1]] if sys.argv[1] in l["peer"] else "%s/%s" % (q.get("rx"), q.get("tx")))' "$1"
  }
  boot vm3 "$TMP/stay.gz"
  console vm3 "guest: up" 120
  out=$(qmp migrate '{"uri": "exec:cat > /dev/null"}')
  grep -q "Migration disabled: vhost" <<<"$out" || fail "QEMU did not refuse to migrate for want of dirty logging: $out"
  pass "live migration refused: $(sed 's/.*"desc": "\([^"]*\)".*/\1/' <<<"$out")"
  for i in $(seq 10); do
    out=$(qmp object-add "{\"qom-type\": \"memory-backend-memfd\", \"id\": \"d$i\", \"size\": 16777216, \"share\": true}")
    grep -q '"return"' <<<"$out" || fail "object-add d$i: $out"
    out=$(qmp device_add "{\"driver\": \"pc-dimm\", \"id\": \"dimm$i\", \"memdev\": \"d$i\"}")
    grep -q '"return"' <<<"$out" || fail "device_add dimm$i: $out"
  done
  regions=$(vm_status memory_regions)
  [ "$regions" -gt 8 ] || fail "10 DIMMs added, but fdlinkd maps $regions memory regions"
  ping_ok "$ID-h1" 10.77.6.2 20
  pass "10 DIMMs hot-added: fdlinkd maps $regions memory regions, and the guest still answers"
  stop_daemon
  start_daemon "$TMP/fdlinkd.toml" "$ID-fw"
  for _ in $(seq 100); do [ "$(vm_status queues)" = enabled/enabled ] && break; sleep 0.1; done
  [ "$(vm_status queues)" = enabled/enabled ] ||
    fail "the new fdlinkd's queues to the running QEMU are $(vm_status queues), not enabled/enabled"
  ping_ok "$ID-h1" 10.77.6.2 20
  pass "fdlinkd restarted under a running guest: it connects again and the guest answers"
  qmp quit >/dev/null
  wait "$VM" || true
fi
stop_daemon
if [ "${MODE%_*}" = stream ]; then
  [ "$(logq final vm rx_errors)" -eq 0 ] || fail "framing errors on the stream: $(logq final vm rx_errors)"
  pass "no framing error on the stream link"
fi
if [ "$MODE" != tap ]; then
  # Toward the guest nothing was dropped for want of room: it was waited for.
  full=$(( $(logq final vm drop_tx_queue_full) + $(logq final vm drop_tx_backlog_full) ))
  [ "$full" -eq 0 ] || fail "frames toward the guest dropped ($(logq final vm tx_packets) sent): tx_queue_full $(logq final vm drop_tx_queue_full), tx_backlog_full $(logq final vm drop_tx_backlog_full)"
  pass "toward the guest: $(logq final vm tx_packets) frames sent, 0 dropped as tx_queue_full or tx_backlog_full (the wire's kernel queue dropped $(logq final wire drop_rx_queue_full))"
fi
