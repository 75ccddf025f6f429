// vnet: checks a received virtio-net header against the frame it came with.
//
// A header is accepted when its GSO type is known (TCPv4, TCPv6, UDP, UDP_L4, optionally with
// the ECN bit) and has a gso_size, hdr_len lies within the frame, the checksum field NEEDS_CSUM
// names lies within the frame (it may be an inner header's, as in VXLAN), and a GSO frame's
// headers are of the kind its type says. Anything else is a named drop reason: a malformed header
// never reaches a writer (the kernel would refuse the write with EINVAL, or worse, accept it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "core/counters.hpp"
#include "core/virtio_net.hpp"
#include "offload/headers.hpp"

namespace fdlinkd::offload {

/// nullopt when `h` is valid for `frame`; `info` is filled whenever the headers parse.
std::optional<DropReason> check_vnet(const VirtioNetHdr& h, const std::uint8_t* frame,
                                     std::size_t len, bool l2, PacketInfo& info);

}  // namespace fdlinkd::offload
