#include "offload/headers.hpp"

#include <initializer_list>

namespace fdlinkd::offload {

bool skip_l2(const std::uint8_t* f, std::size_t len, std::uint16_t& type, std::size_t& l3) {
  if (len < 14) return false;
  std::size_t off = 12;
  type = load16(f + off);
  for (int tags = 0; tags < 2 && (type == 0x8100 || type == 0x88A8); ++tags) {
    if (len < off + 6) return false;
    off += 4;
    type = load16(f + off);
  }
  l3 = off + 2;
  return true;
}

bool parse_headers(const std::uint8_t* f, std::size_t len, bool l2, PacketInfo& info) {
  std::size_t off = 0;
  std::uint16_t type = 0;
  if (l2 && (!skip_l2(f, len, type, off) || (type != kEthIPv4 && type != kEthIPv6))) return false;
  if (len < off + 1) return false;
  info.l3 = static_cast<std::uint16_t>(off);
  info.ip_version = f[off] >> 4;
  std::size_t l4;
  if (info.ip_version == 4) {
    if (l2 && type != kEthIPv4) return false;
    if (len < off + 20) return false;
    const std::size_t ihl = (f[off] & 0x0F) * 4u;
    if (ihl < 20 || len < off + ihl) return false;
    if (load16(f + off + 2) < ihl) return false;  // total length shorter than its header
    info.l4_proto = f[off + 9];
    info.fragment = (load16(f + off + 6) & 0x3FFF) != 0;
    l4 = off + ihl;
  } else if (info.ip_version == 6) {
    if (l2 && type != kEthIPv6) return false;
    if (len < off + 40) return false;
    info.l4_proto = f[off + 6];
    info.fragment = false;
    l4 = off + 40;
  } else {
    return false;
  }
  info.l4 = static_cast<std::uint16_t>(l4);
  if (info.l4_proto == kProtoTcp) {
    if (len < l4 + 20) return false;
    const std::size_t doff = (f[l4 + 12] >> 4) * 4u;
    if (doff < 20 || len < l4 + doff) return false;
    info.headers = static_cast<std::uint16_t>(l4 + doff);
    return true;
  }
  if (info.l4_proto == kProtoUdp || info.l4_proto == kProtoSctp) {
    const std::size_t hl = info.l4_proto == kProtoUdp ? 8 : 12;
    if (len < l4 + hl) return false;
    info.headers = static_cast<std::uint16_t>(l4 + hl);
    return true;
  }
  return false;
}

std::size_t ip_packet_end(const std::uint8_t* frame, std::size_t len, const PacketInfo& info) {
  std::size_t end = info.ip_version == 4 ? info.l3 + std::size_t{load16(frame + info.l3 + 2)}
                                         : info.l4 + std::size_t{load16(frame + info.l3 + 4)};
  if (info.ip_version == 6 && end == info.l4) end = len;
  return end < len ? end : len;
}

bool parse_udp_tunnel(const std::uint8_t* f, std::size_t len, const PacketInfo& outer,
                      std::size_t inner_l4, PacketInfo& inner) {
  if (outer.l4_proto != kProtoUdp || outer.fragment || len < outer.headers + 8u) return false;
  // VXLAN: 8 bytes, then Ethernet. Geneve: 8 bytes plus 4 x the option length in byte 0.
  const std::size_t vxlan = outer.headers + 8u;
  const std::size_t geneve = vxlan + 4u * (f[outer.headers] & 0x3F);
  for (const std::size_t off : {vxlan, geneve}) {
    PacketInfo in;
    if (off >= len || !parse_headers(f + off, len - off, true, in)) continue;
    if (in.l4_proto != kProtoTcp || in.fragment || off + in.l4 != inner_l4) continue;
    inner = in;
    inner.l3 = static_cast<std::uint16_t>(inner.l3 + off);
    inner.l4 = static_cast<std::uint16_t>(inner.l4 + off);
    inner.headers = static_cast<std::uint16_t>(inner.headers + off);
    return true;
  }
  return false;
}

}  // namespace fdlinkd::offload
