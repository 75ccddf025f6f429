#!/usr/bin/env bash
# initramfs.sh OUT: a tiny initramfs for a QEMU guest: busybox, the virtio-net driver of the
# host's Debian kernel (linux-image-amd64) and an /init that brings eth0 up with the address
# given as fdl.ip= on the kernel command line, then runs the command of fdl.run= (in
# /run.sh, which the test writes into the initramfs with -r), then powers off.
#   initramfs.sh OUT [RUN_SCRIPT]
set -euo pipefail
OUT=$1
RUN=${2:-}
KVER=$(ls /lib/modules | sort -V | tail -1)
M=/lib/modules/$KVER
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
mkdir -p "$D"/{bin,sbin,proc,sys,dev,tmp,mods,etc}
cp /bin/busybox "$D/bin/busybox"
for m in kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko \
         kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko \
         kernel/drivers/virtio/virtio_pci.ko kernel/net/core/failover.ko \
         kernel/drivers/net/net_failover.ko kernel/drivers/net/virtio_net.ko; do
  cp "$M/$m" "$D/mods/"
done
cat > "$D/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmp /tmp
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net; do
  insmod /mods/$m.ko
done
ip=$(sed -n 's/.*fdl\.ip=\([^ ]*\).*/\1/p' /proc/cmdline)
ip link set lo up
ip link set eth0 up
ip addr add "$ip" dev eth0
echo "guest: eth0 up with $ip"
[ -f /run.sh ] && sh /run.sh
echo "guest: done"
poweroff -f
INIT
chmod +x "$D/init"
[ -n "$RUN" ] && cp "$RUN" "$D/run.sh"
(cd "$D" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$OUT"
