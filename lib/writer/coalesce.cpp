#include "writer/coalesce.hpp"

#include <cstring>

#include "offload/checksum.hpp"

namespace fdlinkd {

namespace {

constexpr std::uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = kTcpPsh, kAck = 0x10,
                       kUrg = 0x20, kCwr = 0x80;

std::uint32_t load32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}

void store16(std::uint8_t* p, std::size_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}

// The TCP checksum of the segment (pseudo-header included) is right.
bool tcp_checksum_ok(const std::uint8_t* f, const offload::PacketInfo& info, std::size_t l4_len) {
  std::uint32_t sum = info.ip_version == 4 ? offload::sum_words(f + info.l3 + 12, 8)
                                           : offload::sum_words(f + info.l3 + 8, 32);
  sum += offload::kProtoTcp;
  sum += static_cast<std::uint32_t>(l4_len);
  sum = offload::sum_words(f + info.l4, l4_len, sum);
  return offload::fold(sum) == 0xFFFF;
}

}  // namespace

bool coalescible(const Frame& f, const VirtioNetHdr& h, TcpSegment& s) {
  if (h.gso_type != VirtioNetHdr::kGsoNone || (h.flags & VirtioNetHdr::kNeedsCsum)) return false;
  if (!offload::parse_headers(f.data, f.len, true, s.info) ||
      s.info.l4_proto != offload::kProtoTcp || s.info.fragment ||
      s.info.headers > kCoalesceMaxHeaders)
    return false;
  const std::uint8_t* d = f.data;
  const offload::PacketInfo& in = s.info;
  if (in.ip_version == 4 ? in.l4 != in.l3 + 20 : in.l4 != in.l3 + 40) return false;
  const std::size_t end = offload::ip_packet_end(d, f.len, in);
  if (end <= in.headers) return false;  // (no payload: a pure ACK is sent as it is)
  s.payload = static_cast<std::uint32_t>(end - in.headers);
  s.flags = d[in.l4 + 13];
  if (!(s.flags & kAck) || (s.flags & (kSyn | kFin | kRst | kUrg | kCwr))) return false;
  s.seq = load32(d + in.l4 + 4);
  if (h.flags & VirtioNetHdr::kDataValid) return true;
  if (in.ip_version == 4 && offload::fold(offload::sum_words(d + in.l3, 20)) != 0xFFFF)
    return false;
  return tcp_checksum_ok(d, in, end - in.l4);
}

bool continues(const Frame& fa, const TcpSegment& a, const Frame& fb, const TcpSegment& b,
               std::size_t mss, std::size_t total) {
  const offload::PacketInfo& i = a.info;
  if (b.info.headers != i.headers || b.info.l4 != i.l4 || b.info.ip_version != i.ip_version)
    return false;
  if (a.payload != mss || (a.flags & kPsh)) return false;  // (a shorter one or PSH ended it)
  if (b.payload > mss || b.seq != a.seq + a.payload) return false;
  if ((b.flags & ~kPsh) != (a.flags & ~kPsh)) return false;
  if (kCoalesceMaxSegments * mss < total + b.payload) return false;
  if (i.headers - i.l3 + total + b.payload > 0xFFFF) return false;
  const std::uint8_t* p = fa.data;
  const std::uint8_t* q = fb.data;
  if (std::memcmp(p, q, i.l3) != 0) return false;  // MACs, tags, EtherType
  if (i.ip_version == 4) {
    // version, IHL, TOS; flags and fragment offset, TTL, protocol; addresses
    if (std::memcmp(p + i.l3, q + i.l3, 2) != 0 || std::memcmp(p + i.l3 + 6, q + i.l3 + 6, 4) ||
        std::memcmp(p + i.l3 + 12, q + i.l3 + 12, 8) != 0)
      return false;
  } else if (std::memcmp(p + i.l3, q + i.l3, 4) != 0 ||
             std::memcmp(p + i.l3 + 6, q + i.l3 + 6, 34) != 0) {
    return false;  // version, class, flow label; next header, hop limit, addresses
  }
  // ports; ack, data offset; window; urgent pointer and options
  return std::memcmp(p + i.l4, q + i.l4, 4) == 0 &&
         std::memcmp(p + i.l4 + 8, q + i.l4 + 8, 5) == 0 &&
         std::memcmp(p + i.l4 + 14, q + i.l4 + 14, 2) == 0 &&
         std::memcmp(p + i.l4 + 18, q + i.l4 + 18, i.headers - i.l4 - 18) == 0;
}

void super_headers(const Frame& first, const TcpSegment& s, std::size_t payload, std::size_t mss,
                   bool psh, std::uint8_t* out, VirtioNetHdr& h) {
  const offload::PacketInfo& i = s.info;
  std::memcpy(out, first.data, i.headers);
  const std::size_t l4_len = i.headers - i.l4 + payload;
  if (i.ip_version == 4) {
    store16(out + i.l3 + 2, i.headers - i.l3 + payload);
    offload::write_ipv4_checksum(out, i);
  } else {
    store16(out + i.l3 + 4, l4_len);
  }
  if (psh) out[i.l4 + 13] |= kPsh;
  offload::seed_partial(out, i, l4_len);
  h = VirtioNetHdr{};
  h.flags = VirtioNetHdr::kNeedsCsum;
  h.gso_type = i.ip_version == 4 ? VirtioNetHdr::kGsoTcpV4 : VirtioNetHdr::kGsoTcpV6;
  h.hdr_len = i.headers;
  h.gso_size = static_cast<std::uint16_t>(mss);
  h.csum_start = i.l4;
  h.csum_offset = 16;
}

}  // namespace fdlinkd
