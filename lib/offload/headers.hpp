// headers: where the L3 and L4 headers of a frame are, for checksum and segmentation work.
//
// Understands Ethernet with up to two VLAN tags (or no L2 header, for TUN), IPv4 with options,
// IPv6 without extension headers, and TCP/UDP. Anything else parses as "not TCP/UDP".
#pragma once

#include <cstddef>
#include <cstdint>

namespace fdlinkd::offload {

struct PacketInfo {
  std::uint16_t l3 = 0;         ///< offset of the IP header
  std::uint16_t l4 = 0;         ///< offset of the TCP/UDP header
  std::uint16_t headers = 0;    ///< offset of the L4 payload (L2 + L3 + L4 headers)
  std::uint8_t ip_version = 0;  ///< 4 or 6
  std::uint8_t l4_proto = 0;    ///< 6 (TCP) or 17 (UDP)
  bool fragment = false;        ///< an IPv4 fragment (MF set or offset non-zero)
};

constexpr std::uint8_t kProtoTcp = 6;
constexpr std::uint8_t kProtoUdp = 17;
constexpr std::uint8_t kProtoSctp = 132;

constexpr std::uint16_t kEthIPv4 = 0x0800, kEthIPv6 = 0x86DD;

/// Walks an Ethernet header and up to two VLAN tags (802.1Q or 802.1ad): the EtherType they
/// lead to and where the L3 header starts. False when the frame ends inside them.
bool skip_l2(const std::uint8_t* frame, std::size_t len, std::uint16_t& type, std::size_t& l3);

/// Fills `info` for an IPv4/IPv6 TCP, UDP or SCTP frame whose headers (SCTP: its 12-byte
/// common header) lie whole within `len` bytes; false for anything else (other protocols,
/// truncated or inconsistent headers).
bool parse_headers(const std::uint8_t* frame, std::size_t len, bool l2, PacketInfo& info);

/// Where the IP packet of a parsed frame ends: its own length field says (short frames carry
/// Ethernet padding), bounded by the frame. An IPv6 payload length of 0 means "to the end".
std::size_t ip_packet_end(const std::uint8_t* frame, std::size_t len, const PacketInfo& info);

/// For a frame whose outer headers (`outer`) are UDP: finds an Ethernet frame carried in a
/// VXLAN or Geneve header whose TCP header starts at `inner_l4` (where the kernel's virtio
/// header points csum_start for the GSO frames Linux's vxlan and geneve devices send). Fills
/// `inner` with offsets from the start of `frame`; false when there is none.
bool parse_udp_tunnel(const std::uint8_t* frame, std::size_t len, const PacketInfo& outer,
                      std::size_t inner_l4, PacketInfo& inner);

inline std::uint16_t load16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}
inline void store16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}
inline std::uint32_t load32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}
inline void store32(std::uint8_t* p, std::uint32_t v) {
  store16(p, static_cast<std::uint16_t>(v >> 16));
  store16(p + 2, static_cast<std::uint16_t>(v));
}

}  // namespace fdlinkd::offload
