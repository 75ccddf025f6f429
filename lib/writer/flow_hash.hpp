// flow_hash: which of a link's fds a frame leaves on, so that one flow always uses one fd
// (and so stays in order) while many flows spread over all of them.
//
// TCP/UDP over IPv4 or IPv6: the 5-tuple. Fragments and other IP: the two addresses (a later
// fragment has no ports, so hashing ports would split a datagram). Anything else: the MACs.
// Up to two VLAN tags are skipped. Cost: a few loads and multiplies per frame; it is only
// computed when the egress link has more than one fd.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fdlinkd {

class Batch;

/// `l2` = the frame starts with an Ethernet header (false for TUN: it starts with IP).
std::uint32_t flow_hash(const std::uint8_t* frame, std::size_t len, bool l2);

/// Picks each frame's fd of `ports` (at most 64) by flow hash (Batch::out_port). Returns the
/// fds that get frames, as bit q for fd q.
std::uint64_t spread(Batch& batch, std::size_t ports, bool l2);

}  // namespace fdlinkd
