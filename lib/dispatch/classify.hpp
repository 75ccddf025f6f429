// classify: whether a frame a dispatcher read may enter the graph, or the reason it is
// dropped. The same checks in every receive mode (readv, recvmmsg, packet_mmap), so each drop
// reason means the same whichever mode counted it; a fuzz target drives it directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>

#include "core/counters.hpp"
#include "core/virtio_net.hpp"
#include "offload/vnet.hpp"

namespace fdlinkd {

/// What a receiving fd allows.
struct RxLimits {
  std::size_t slot = 0;       ///< a receive slot's capacity (a larger frame was cut short)
  std::size_t wire = 0;       ///< the largest frame the link's MTU allows, GSO aside
  std::size_t min_frame = 0;  ///< the link header's length (14 on Ethernet, 1 for bare IP)
  bool vnet = false;          ///< a virtio-net header sits just before the frame
};

/// nullopt: the frame goes on. `truncated`: the fd said the frame was longer than it gave.
inline std::optional<DropReason> classify_rx(const std::uint8_t* data, std::size_t len,
                                             bool truncated, const RxLimits& lim) {
  if (truncated || len > lim.slot) return DropReason::oversize;
  if (len < lim.min_frame) return DropReason::runt;
  VirtioNetHdr h;
  if (lim.vnet) std::memcpy(&h, data - sizeof h, sizeof h);
  // Only a GSO super-frame may be larger than the link's MTU allows (the receive slots are
  // sized for super-frames where the fd can deliver them).
  if (len > lim.wire && h.gso_type == VirtioNetHdr::kGsoNone) return DropReason::oversize;
  // Only a header that claims something needs checking (most small frames carry zeros).
  if (lim.vnet && ((h.flags & VirtioNetHdr::kNeedsCsum) || h.gso_type != VirtioNetHdr::kGsoNone ||
                   h.hdr_len > len)) {
    offload::PacketInfo info;
    return offload::check_vnet(h, data, len, lim.min_frame == 14, info);
  }
  return std::nullopt;
}

}  // namespace fdlinkd
