#include "offload/gso.hpp"

#include <cstring>

#include "offload/checksum.hpp"

namespace fdlinkd::offload {

namespace {
constexpr std::uint8_t kFin = 0x01, kPsh = 0x08, kCwr = 0x80;
}  // namespace

std::size_t segment_count(std::size_t payload, std::size_t mss) {
  return payload == 0 ? 1 : (payload + mss - 1) / mss;
}

bool segment(const std::uint8_t* frame, std::size_t len, const PacketInfo& info, std::size_t mss,
             Batch& out) {
  const bool tcp = info.l4_proto == kProtoTcp;
  if ((!tcp && info.l4_proto != kProtoUdp) || mss == 0) return false;
  const std::size_t hdrs = info.headers;
  const std::size_t end = ip_packet_end(frame, len, info);
  const std::size_t payload = end > hdrs ? end - hdrs : 0;
  const std::size_t n = segment_count(payload, mss);
  if (out.size() + n > out.capacity() || hdrs + mss > out.slot_capacity()) return false;

  const std::uint32_t seq = tcp ? load32(frame + info.l4 + 4) : 0;
  const std::uint8_t flags = tcp ? frame[info.l4 + 13] : 0;
  const std::uint16_t ip_id = info.ip_version == 4 ? load16(frame + info.l3 + 4) : 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t off = i * mss;
    const std::size_t seg = payload - off < mss ? payload - off : mss;
    std::uint8_t* s = out.slot(out.size());
    std::memcpy(s, frame, hdrs);
    std::memcpy(s + hdrs, frame + hdrs + off, seg);

    const std::size_t l4_len = hdrs - info.l4 + seg;
    if (info.ip_version == 4) {
      store16(s + info.l3 + 2, static_cast<std::uint16_t>(hdrs - info.l3 + seg));
      store16(s + info.l3 + 4, static_cast<std::uint16_t>(ip_id + i));
      write_ipv4_checksum(s, info);
    } else {
      store16(s + info.l3 + 4, static_cast<std::uint16_t>(l4_len));
    }
    if (tcp) {
      store32(s + info.l4 + 4, seq + static_cast<std::uint32_t>(off));
      std::uint8_t f = flags;
      if (i + 1 < n) f = static_cast<std::uint8_t>(f & ~(kFin | kPsh));
      if (i > 0) f = static_cast<std::uint8_t>(f & ~kCwr);
      s[info.l4 + 13] = f;
    } else {
      store16(s + info.l4 + 4, static_cast<std::uint16_t>(l4_len));
    }
    write_l4_checksum(s, info, l4_len);
    out.push(s, static_cast<std::uint32_t>(hdrs + seg));
  }
  return true;
}

bool segment_tunnel(const std::uint8_t* frame, std::size_t len, const PacketInfo& outer,
                    const PacketInfo& inner, std::size_t mss, Batch& out) {
  const std::size_t first = out.size();
  if (!segment(frame, len, inner, mss, out)) return false;
  const std::uint16_t ip_id = outer.ip_version == 4 ? load16(frame + outer.l3 + 4) : 0;
  const bool udp_csum = outer.ip_version == 6 || load16(frame + outer.l4 + 6) != 0;
  for (std::size_t i = first; i < out.size(); ++i) {
    std::uint8_t* s = out[i].data;
    const std::size_t l4_len = out[i].len - outer.l4;
    if (outer.ip_version == 4) {
      store16(s + outer.l3 + 2, static_cast<std::uint16_t>(out[i].len - outer.l3));
      store16(s + outer.l3 + 4, static_cast<std::uint16_t>(ip_id + (i - first)));
      write_ipv4_checksum(s, outer);
    } else {
      store16(s + outer.l3 + 4, static_cast<std::uint16_t>(l4_len));
    }
    store16(s + outer.l4 + 4, static_cast<std::uint16_t>(l4_len));
    if (udp_csum) write_l4_checksum(s, outer, l4_len);  // over the finished inner packet
  }
  return true;
}

}  // namespace fdlinkd::offload
