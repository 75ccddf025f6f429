// gso: software segmentation of a TCP super-frame (what a NIC's TSO would do), for an egress
// link that cannot take the virtio header and GSO frames.
//
// Each segment is a complete frame in a slot of the output batch: the original headers with
// the IP length (and IPv4 id, +1 per segment, and header checksum) and the TCP sequence number
// fixed, FIN and PSH only on the last segment, CWR only on the first, and a full TCP checksum.
// No allocation: the caller owns the output batch and reuses it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/batch.hpp"
#include "offload/headers.hpp"

namespace fdlinkd::offload {

/// How many segments of at most `mss` bytes `payload` bytes of TCP payload make (at least 1).
std::size_t segment_count(std::size_t payload, std::size_t mss);

/// Appends the segments of the TCP frame `frame` (headers described by `info`) to `out`.
/// Returns false, appending nothing, when `out` lacks free slots or its slots are too small.
bool segment_tcp(const std::uint8_t* frame, std::size_t len, const PacketInfo& info,
                 std::size_t mss, Batch& out);

}  // namespace fdlinkd::offload
