#include "offload/checksum.hpp"

#include <array>
#include <bit>
#include <cstring>

namespace fdlinkd::offload {

std::uint32_t sum_words(const std::uint8_t* p, std::size_t len, std::uint32_t sum) {
  // The ones' complement sum does not depend on byte order (RFC 1071, 2.B): add the bytes as
  // native 32-bit words into 64 bits, 32 bytes per step, fold, and swap the 16-bit result to
  // network order once at the end. (The 16-bit word loop this replaced was 10% of fdlinkd's
  // CPU when it segmented TCP in software.)
  static_assert(std::endian::native == std::endian::little);
  std::uint64_t acc = 0;
  std::size_t i = 0;
  for (; i + 32 <= len; i += 32) {
    std::uint32_t w[8];
    std::memcpy(w, p + i, sizeof w);
    acc += std::uint64_t{w[0]} + w[1] + w[2] + w[3] + w[4] + w[5] + w[6] + w[7];
  }
  for (; i + 4 <= len; i += 4) {
    std::uint32_t w;
    std::memcpy(&w, p + i, sizeof w);
    acc += w;
  }
  if (i + 2 <= len) {
    std::uint16_t w;
    std::memcpy(&w, p + i, sizeof w);
    acc += w;
    i += 2;
  }
  if (i < len) acc += p[i];  // the odd last byte is the high byte of a network-order word
  while (acc >> 16)
    acc = (acc & 0xFFFF) + (acc >> 16);
  std::uint64_t total = std::uint64_t{sum} + __builtin_bswap16(static_cast<std::uint16_t>(acc));
  while (total >> 32)
    total = (total & 0xFFFFFFFF) + (total >> 32);
  return static_cast<std::uint32_t>(total);
}

std::uint16_t fold(std::uint32_t sum) {
  while (sum >> 16)
    sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<std::uint16_t>(sum);
}

namespace {

// The TCP/UDP pseudo-header of a parsed frame whose L4 part is `l4_len` bytes, summed
// (addresses, protocol, length), not folded.
std::uint32_t pseudo_sum(const std::uint8_t* f, const PacketInfo& info, std::size_t l4_len) {
  std::uint32_t sum =
      info.ip_version == 4 ? sum_words(f + info.l3 + 12, 8) : sum_words(f + info.l3 + 8, 32);
  sum += info.l4_proto;
  sum += static_cast<std::uint32_t>(l4_len & 0xFFFF) + static_cast<std::uint32_t>(l4_len >> 16);
  return sum;
}

// Where the checksum field of a TCP or UDP header is.
std::size_t l4_checksum_at(const PacketInfo& info) {
  return info.l4 + (info.l4_proto == kProtoTcp ? 16 : 6);
}

}  // namespace

bool finish_partial(std::uint8_t* frame, std::size_t len, std::size_t csum_start,
                    std::size_t csum_offset) {
  if (csum_start >= len || csum_offset + 2 > len - csum_start) return false;
  // The field already holds the pseudo-header sum: summing it in with the rest is the point.
  const std::uint16_t c =
      static_cast<std::uint16_t>(~fold(sum_words(frame + csum_start, len - csum_start)));
  store16(frame + csum_start + csum_offset, c);
  return true;
}

namespace {

constexpr std::array<std::uint32_t, 256> kCrc32cTable = [] {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k)
      c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;  // the reflected Castagnoli polynomial
    t[i] = c;
  }
  return t;
}();

}  // namespace

std::uint32_t crc32c(const std::uint8_t* p, std::size_t len) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < len; ++i)
    c = kCrc32cTable[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return ~c;
}

bool finish_sctp(std::uint8_t* frame, std::size_t len, std::size_t sctp) {
  if (sctp >= len || len - sctp < 12) return false;
  std::uint8_t* field = frame + sctp + 8;
  std::memset(field, 0, 4);
  const std::uint32_t c = crc32c(frame + sctp, len - sctp);
  for (int i = 0; i < 4; ++i)  // stored least significant byte first, as Linux does
    field[i] = static_cast<std::uint8_t>(c >> (8 * i));
  return true;
}

void write_l4_checksum(std::uint8_t* f, const PacketInfo& info, std::size_t l4_len) {
  const std::size_t field = l4_checksum_at(info);
  store16(f + field, 0);
  std::uint16_t c = static_cast<std::uint16_t>(
      ~fold(sum_words(f + info.l4, l4_len, pseudo_sum(f, info, l4_len))));
  if (info.l4_proto == kProtoUdp && c == 0) c = 0xFFFF;  // 0 means "no checksum" for UDP
  store16(f + field, c);
}

void seed_partial(std::uint8_t* f, const PacketInfo& info, std::size_t l4_len) {
  store16(f + l4_checksum_at(info), fold(pseudo_sum(f, info, l4_len)));
}

bool complete_unmarked_partial(std::uint8_t* f, std::size_t len, bool l2) {
  PacketInfo info;
  if (!parse_headers(f, len, l2, info) || info.fragment ||
      (info.l4_proto != kProtoTcp && info.l4_proto != kProtoUdp))
    return false;
  const std::size_t l4_len = ip_packet_end(f, len, info) - info.l4;
  const std::uint32_t pseudo = pseudo_sum(f, info, l4_len);
  const std::size_t field = l4_checksum_at(info);
  const std::uint16_t seen = static_cast<std::uint16_t>(f[field] << 8 | f[field + 1]);
  if (info.l4_proto == kProtoUdp && seen == 0 && info.ip_version == 4) return false;  // none
  if (seen != fold(pseudo)) return false;  // (the cheap test first: almost every frame)
  if (fold(sum_words(f + info.l4, l4_len, pseudo)) == 0xFFFF) return false;  // valid as it is
  // The field holds the pseudo-header sum: the sum over the segment with it in is the answer.
  std::uint16_t c = static_cast<std::uint16_t>(~fold(sum_words(f + info.l4, l4_len)));
  if (info.l4_proto == kProtoUdp && c == 0) c = 0xFFFF;
  store16(f + field, c);
  return true;
}

bool gso_header_for_unmarked(const std::uint8_t* f, std::size_t len, unsigned mtu,
                             VirtioNetHdr& h) {
  PacketInfo info;
  if (!parse_headers(f, len, true, info) || info.fragment || info.l4_proto != kProtoTcp)
    return false;
  if (ip_packet_end(f, len, info) != len) return false;  // (its IP length covers it all)
  const std::size_t l4_len = len - info.l4;
  const std::size_t field = l4_checksum_at(info);
  if (load16(f + field) != fold(pseudo_sum(f, info, l4_len))) return false;
  const std::size_t l3_headers = info.headers - info.l3;  // IP and TCP headers
  if (mtu <= l3_headers) return false;
  const std::size_t mss = mtu - l3_headers;
  if (len - info.headers <= mss || mss > 0xFFFF) return false;  // (not larger than one segment)
  h = {};
  h.flags = VirtioNetHdr::kNeedsCsum;
  h.gso_type = info.ip_version == 4 ? VirtioNetHdr::kGsoTcpV4 : VirtioNetHdr::kGsoTcpV6;
  h.hdr_len = info.headers;
  h.gso_size = static_cast<std::uint16_t>(mss);
  h.csum_start = info.l4;
  h.csum_offset = 16;
  return true;
}

void write_ipv4_checksum(std::uint8_t* f, const PacketInfo& info) {
  const std::size_t ihl = (f[info.l3] & 0x0F) * 4u;
  store16(f + info.l3 + 10, 0);
  store16(f + info.l3 + 10, static_cast<std::uint16_t>(~fold(sum_words(f + info.l3, ihl))));
}

}  // namespace fdlinkd::offload
