// coalesce: what the kernel's GRO does behind a NIC, done by the writer for an fd that takes
// virtio-net headers (an af_packet link with vnet_hdr = true and gro = true): TCP segments of
// one flow that lie back to back in a batch leave as one GSO super-frame, in one message, so
// that the kernel builds one skb for them and the stack that receives it (a veth's peer, a
// bridge, a local socket) handles one large packet instead of dozens. A kernel that forwards
// it onto a wire cuts it again (GSO), as it does with its own GRO packets.
//
// Nothing is copied but the first segment's headers (about 66 bytes, set up for the whole: IP
// length and checksum, the TCP checksum seeded for the kernel to finish per segment): the
// message is a gather list of the virtio header, those headers and each segment's payload
// where it lies in its frame.
//
// Segments merge as Linux's tcp_gro_receive merges them: the same L2 header, the same IP
// header but for the ID, length and checksum (IPv4 without options or fragments; IPv6 without
// extension headers), the same ports, ack, window and options, consecutive sequence numbers,
// ACK set and none of SYN, FIN, RST, URG, CWR; every payload the size of the first but the
// last, which may be shorter or carry PSH and ends the run; at most 64 KiB of IP packet and
// 64 segments. Each segment's IPv4 header checksum and TCP checksum must be right (checked
// here, unless its virtio header says DATA_VALID): the super-frame tells the kernel its
// checksums are to be finished, so a bad one would otherwise pass unnoticed.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/batch.hpp"
#include "offload/headers.hpp"

namespace fdlinkd {

struct TcpSegment {
  offload::PacketInfo info;
  std::uint32_t seq = 0;
  std::uint32_t payload = 0;  ///< TCP payload bytes (Ethernet padding excluded)
  std::uint8_t flags = 0;     ///< TCP flags
};

constexpr std::uint8_t kTcpPsh = 0x08;
constexpr std::size_t kCoalesceMaxSegments = 64;
constexpr std::size_t kCoalesceMaxHeaders = 128;  ///< larger headers are not coalesced

/// Whether frame `f` (with `tx_header`, the virtio header it would be sent with) is a TCP
/// segment that may start or join a super-frame; fills `s`.
bool coalescible(const Frame& f, const VirtioNetHdr& tx_header, TcpSegment& s);
/// Whether `b` (frame fb) continues `a` (frame fa, whose payloads so far are `total` bytes, of
/// which the first was `mss`) in one super-frame.
bool continues(const Frame& fa, const TcpSegment& a, const Frame& fb, const TcpSegment& b,
               std::size_t mss, std::size_t total);
/// The super-frame's headers, from the first segment's (`first`, `s`), for `payload` bytes of
/// TCP payload in segments of `mss`, into `out` (s.info.headers bytes), and its virtio header
/// into `h`. `psh`: the last segment had PSH.
void super_headers(const Frame& first, const TcpSegment& s, std::size_t payload, std::size_t mss,
                   bool psh, std::uint8_t* out, VirtioNetHdr& h);

}  // namespace fdlinkd
