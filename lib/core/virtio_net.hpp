// The virtio-net header (struct virtio_net_hdr of linux/virtio_net.h, which is not valid C++):
// 10 bytes in front of a frame on TAP (IFF_VNET_HDR) and AF_PACKET (PACKET_VNET_HDR) fds,
// little-endian on the hosts fdlinkd supports.
#pragma once

#include <cstdint>

namespace fdlinkd {

struct VirtioNetHdr {
  static constexpr std::uint8_t kNeedsCsum = 1;  ///< VIRTIO_NET_HDR_F_NEEDS_CSUM
  static constexpr std::uint8_t kDataValid = 2;  ///< VIRTIO_NET_HDR_F_DATA_VALID
  static constexpr std::uint8_t kGsoNone = 0, kGsoTcpV4 = 1, kGsoUdp = 3, kGsoTcpV6 = 4,
                                kGsoUdpL4 = 5, kGsoEcn = 0x80;

  std::uint8_t flags = 0;
  std::uint8_t gso_type = kGsoNone;
  std::uint16_t hdr_len = 0;  ///< bytes of headers (the kernel copies these linearly)
  std::uint16_t gso_size = 0;
  std::uint16_t csum_start = 0;
  std::uint16_t csum_offset = 0;

  /// The GSO type without the ECN bit.
  std::uint8_t gso_kind() const { return static_cast<std::uint8_t>(gso_type & ~kGsoEcn); }
};
static_assert(sizeof(VirtioNetHdr) == 10);

}  // namespace fdlinkd
