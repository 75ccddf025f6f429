// checksum: the Internet checksum (RFC 1071) and the two jobs a forwarder has with it.
//
// finish_partial(): a frame marked NEEDS_CSUM (virtio flag, or TP_STATUS_CSUMNOTREADY on
// AF_PACKET) holds only the pseudo-header sum in its L4 checksum field; the sum over
// csum_start..end, folded and complemented, is the real checksum.
// l4_checksum(): the full TCP/UDP checksum of a segment fdlinkd built itself.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/virtio_net.hpp"
#include "offload/headers.hpp"

namespace fdlinkd::offload {

/// Adds `len` bytes (big-endian 16-bit words, an odd last byte padded) to a 32-bit sum.
std::uint32_t sum_words(const std::uint8_t* p, std::size_t len, std::uint32_t sum = 0);
/// Folds a 32-bit sum to 16 bits (not complemented).
std::uint16_t fold(std::uint32_t sum);

/// Completes a NEEDS_CSUM checksum in place. False when the offsets do not fit the frame.
bool finish_partial(std::uint8_t* frame, std::size_t len, std::size_t csum_start,
                    std::size_t csum_offset);

/// CRC32c (Castagnoli), as SCTP uses it: the final value, inverted.
std::uint32_t crc32c(const std::uint8_t* p, std::size_t len);
/// Completes the CRC32c of the SCTP packet starting at `sctp` (what a NEEDS_CSUM header with
/// csum_offset 8 on SCTP asks for: Linux offloads SCTP's CRC the same way, and a sum of 16-bit
/// words there would be wrong). False when the header does not fit the frame.
bool finish_sctp(std::uint8_t* frame, std::size_t len, std::size_t sctp);

/// Writes the full TCP or UDP checksum (pseudo-header included) of the L4 segment described by
/// `info`, whose L4 part (header + payload) is `l4_len` bytes.
void write_l4_checksum(std::uint8_t* frame, const PacketInfo& info, std::size_t l4_len);

/// Turns a GSO frame that arrived with a verified checksum (GRO sets DATA_VALID, not
/// NEEDS_CSUM) into what a GSO sender must hand the kernel: the L4 checksum field seeded with
/// the pseudo-header sum over the whole L4 length, so each segment's checksum can be finished.
void seed_partial(std::uint8_t* frame, const PacketInfo& info, std::size_t l4_len);

/// A TCP or UDP frame that left a local stack with its checksum offloaded but reached fdlinkd
/// without the note that says so (XDP on a veth or TUN sees the skb's bytes, not its
/// CHECKSUM_PARTIAL): its checksum field holds just the pseudo-header sum. When the checksum
/// does not verify and the field is exactly that sum, completes it in place and returns true.
/// Any other frame (a valid one, a corrupt one, not TCP/UDP, a fragment) is left as it is.
bool complete_unmarked_partial(std::uint8_t* frame, std::size_t len, bool l2);

/// A TCP super-frame that a local stack sent with its checksum and segmentation left to the
/// device, seen without the note that says so: a kernel VTEP's inner frame across a veth
/// (its UDP tunnel GSO datagram reaches a UDP socket whole). Its checksum field holds the
/// pseudo-header sum over the whole TCP length. When `frame` (Ethernet) is such a frame,
/// larger than L3 MTU `mtu` allows, fills `h` with what the device's note would have said
/// (NEEDS_CSUM; TCPv4 or TCPv6; gso_size the largest payload `mtu` leaves after this frame's
/// IP and TCP headers, which is the sender's MSS when its MTU is the tunnel's) and returns
/// true. False for any other frame.
bool gso_header_for_unmarked(const std::uint8_t* frame, std::size_t len, unsigned mtu,
                             VirtioNetHdr& h);

/// Writes the IPv4 header checksum.
void write_ipv4_checksum(std::uint8_t* frame, const PacketInfo& info);

}  // namespace fdlinkd::offload
