#include "offload/vnet.hpp"

namespace fdlinkd::offload {

std::optional<DropReason> check_vnet(const VirtioNetHdr& h, const std::uint8_t* frame,
                                     std::size_t len, bool l2, PacketInfo& info) {
  const std::uint8_t gso = h.gso_kind();
  if (gso != VirtioNetHdr::kGsoNone && gso != VirtioNetHdr::kGsoTcpV4 &&
      gso != VirtioNetHdr::kGsoTcpV6 && gso != VirtioNetHdr::kGsoUdp &&
      gso != VirtioNetHdr::kGsoUdpL4)
    return DropReason::vnet_bad_gso;
  if (gso != VirtioNetHdr::kGsoNone && h.gso_size == 0) return DropReason::vnet_gso_size_zero;
  if (h.hdr_len > len) return DropReason::vnet_bad_hdr_len;

  const bool parsed = parse_headers(frame, len, l2, info);
  if (gso != VirtioNetHdr::kGsoNone) {
    const bool tcp = gso == VirtioNetHdr::kGsoTcpV4 || gso == VirtioNetHdr::kGsoTcpV6;
    const int version = gso == VirtioNetHdr::kGsoTcpV4 ? 4 : 6;
    auto tcp_of_type = [&](const PacketInfo& p) {
      return p.l4_proto == kProtoTcp && p.ip_version == version;
    };
    // TCP in a UDP tunnel: the kernel's header says TCP and csum_start finds the inner TCP.
    PacketInfo inner;
    const bool matches =
        parsed && !info.fragment &&
        (tcp ? tcp_of_type(info) ||
                   ((h.flags & VirtioNetHdr::kNeedsCsum) &&
                    parse_udp_tunnel(frame, len, info, h.csum_start, inner) && tcp_of_type(inner))
             : info.l4_proto == kProtoUdp);
    if (!matches) return DropReason::vnet_bad_headers;
  }
  // The checksum to finish need not be the outer TCP/UDP one: in a VXLAN or GRE packet it is
  // the inner header's, behind an IPv6 extension header it is past what parse_headers reads.
  // What must hold is what the kernel checks too: the field lies within the frame.
  if ((h.flags & VirtioNetHdr::kNeedsCsum) &&
      std::size_t{h.csum_start} + std::size_t{h.csum_offset} + 2 > len)
    return DropReason::vnet_bad_csum;
  // An SCTP CRC32c left to finish (offset 8: the SCTP checksum field) covers the SCTP packet,
  // which ends where the IP packet does: its 12-byte common header must lie within that.
  // (Egress would fail to finish it; counted here, on the receiving link, as the README says.
  // Found by fuzz_offload.)
  if ((h.flags & VirtioNetHdr::kNeedsCsum) && h.csum_offset == 8 && parsed &&
      info.l4_proto == kProtoSctp && info.l4 == h.csum_start &&
      ip_packet_end(frame, len, info) < std::size_t{h.csum_start} + 12)
    return DropReason::vnet_bad_csum;
  return std::nullopt;
}

}  // namespace fdlinkd::offload
