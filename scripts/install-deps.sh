#!/usr/bin/env bash
# Installs what fdlinkd needs to build, test and run its demo on Debian 12.
# Idempotent and quiet: packages already present are left alone.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config clang-format clang-14 libclang-rt-14-dev
  libboost1.81-dev libspdlog-dev libcli11-dev libtomlplusplus-dev catch2
  libsystemd-dev libpcap-dev libmnl-dev libxdp-dev libbpf-dev clang-14
  # end-to-end tests and the demo
  iproute2 iputils-ping ethtool socat iperf3 tcpdump tshark python3 python3-scapy procps kmod
  curl util-linux prometheus lintian man-db bpftool
  # the unit under a real systemd (tests/system/systemd.sh): a Debian root, systemd-nspawn
  mmdebstrap systemd-container
  # a real QEMU guest (tests/e2e/vm.sh): the emulator, a kernel, a busybox initramfs
  qemu-system-x86 linux-image-amd64 busybox-static cpio
  # DPDK's testpmd as a vhost-user frontend (virtio-user: tests/e2e/vhost_user.sh)
  dpdk-dev librte-net-virtio23
  # the README's libvirt XML against libvirt's schema (tests/docs/libvirt_xml.sh)
  libvirt-clients
  # fdlinkd-cni (tests/e2e/cni.sh): the reference IPAM plugins, and podman with runc
  containernetworking-plugins podman runc
)
# The manifests' check (tests/kubernetes.sh) uses any kubectl; Debian's only if there is none.
command -v kubectl >/dev/null 2>&1 || packages+=(kubernetes-client)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]} (run as root to install them)" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
