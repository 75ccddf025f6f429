// gso: software segmentation of a super-frame (what a NIC's TSO or USO would do), for an
// egress link that cannot take the virtio header and GSO frames.
//
// Each segment is a complete frame in a slot of the output batch: the original headers with
// the IP length (and IPv4 id, +1 per segment, and header checksum) fixed, and a full TCP or
// UDP checksum. TCP: the sequence number advances, FIN and PSH only on the last segment, CWR
// only on the first. UDP (a UDP_L4 GSO frame, as UDP_SEGMENT senders make): each segment is a
// datagram of its own, with its UDP length. No allocation: the caller owns the output batch.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/batch.hpp"
#include "offload/headers.hpp"

namespace fdlinkd::offload {

/// How many segments of at most `mss` bytes `payload` bytes of L4 payload make (at least 1).
std::size_t segment_count(std::size_t payload, std::size_t mss);

/// Appends the segments of the TCP or UDP frame `frame` (headers described by `info`), each
/// with at most `mss` bytes of payload, to `out`. Returns false, appending nothing, when the
/// frame is neither, or `out` lacks free slots or its slots are too small.
bool segment(const std::uint8_t* frame, std::size_t len, const PacketInfo& info, std::size_t mss,
             Batch& out);

/// The same for a TCP frame inside a UDP tunnel (parse_udp_tunnel): the inner IP and TCP
/// headers are fixed as segment() does, then each segment's outer IP header, UDP length and,
/// unless it was 0 over IPv4 ("none", Linux's vxlan default), UDP checksum.
bool segment_tunnel(const std::uint8_t* frame, std::size_t len, const PacketInfo& outer,
                    const PacketInfo& inner, std::size_t mss, Batch& out);

}  // namespace fdlinkd::offload
