#!/usr/bin/env bash
# vm.sh stream_listen|stream_connect|dgram|tap: a real QEMU guest (the host's Debian kernel, a
# busybox initramfs, TCG) plugged into fdlinkd:
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
# h1 (10.77.6.1) --veth-- [af_packet] fdlinkd [stream | af_packet on the TAP] -- guest (10.77.6.2)
# First boot: 20 pings 0% loss, 5 MiB host -> guest and 5 MiB guest -> host over TCP with equal
# SHA-256 on both ends. The guest powers off; a second guest boots on the same socket or TAP
# name and pings again, without fdlinkd restarting. Skipped (77) without qemu-system-x86, a
# kernel in /boot or busybox-static. VM_LINK_EXTRA adds keys to the guest's link (to measure
# without back-pressure: VM_LINK_EXTRA="tx_backlog = 0"; the last check then fails).
source "$(dirname "$0")/lib.sh"
MODE=${1:?stream_listen, stream_connect, dgram or tap}
KERNEL=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1 || true)
command -v qemu-system-x86_64 >/dev/null && [ -n "$KERNEL" ] && [ -x /bin/busybox ] ||
  { echo "vm: needs qemu-system-x86, linux-image-amd64 and busybox-static; skipped" >&2; exit 77; }

mkns h1; mkns fw
veth "$ID-h1" h1 "$ID-fw" pa
ip -n "$ID-h1" addr add 10.77.6.1/24 dev h1
SOCK="$TMP/vm.sock"
TAP="${ID}v"
server=off
case $MODE in
  stream_listen) vm_link=$(printf 'type = "unix"\nsocket = "stream"\npath = "%s"\nlisten = true' "$SOCK"); server=off ;;
  stream_connect) vm_link=$(printf 'type = "unix"\nsocket = "stream"\npath = "%s"\nconnect = true' "$SOCK"); server=on ;;
  dgram) vm_link=$(printf 'type = "unix"\nsocket = "dgram"\npath = "%s"\npeer = "%s"' "$TMP/fd.sock" "$SOCK") ;;
  tap) vm_link=$(printf 'type = "af_packet"\ninterface = "%s"' "$TAP") ;;
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
"$HERE/vm/initramfs.sh" "$TMP/full.gz" "$TMP/full.sh"
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
  ip netns exec "$ID-fw" qemu-system-x86_64 -accel tcg -m 256 -nographic -no-reboot -kernel "$KERNEL" \
    -initrd "$2" -append "console=ttyS0 quiet loglevel=1 fdl.ip=10.77.6.2/24 panic=-1" \
    -netdev "$netdev" -device virtio-net-pci,netdev=n0,mac=02:fd:00:00:06:02 > "$TMP/$1.out" 2>&1 &
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
boot vm1 "$TMP/full.gz"
# (a TAP must exist before an af_packet link opens on it; a socket may come later)
start_daemon "$TMP/fdlinkd.toml" "$ID-fw"
console vm1 "packets transmitted" 120
grep -q " 0% packet loss" "$TMP/vm1.out" || fail "guest pings lost: $(grep 'packets transmitted' "$TMP/vm1.out")"
pass "guest booted in $(( $(date +%s) - t0 )) s; 20 pings guest -> h1 through fdlinkd, 0% loss"
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
wait "$rx" || true
got_out=$(cut -d' ' -f1 < "$TMP/got")
[ "$got_out" = "$sent_out" ] || fail "5 MiB from the guest: received $got_out, guest sent $sent_out"
pass "5 MiB guest -> h1: SHA-256 equal"
console vm1 "reboot: Power down" 60
wait "$VM" || true
gone=unix_peer_disconnected
[ "$MODE" = tap ] && gone=link_down
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
