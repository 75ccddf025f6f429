#include "offload/checksum.hpp"

namespace fdlinkd::offload {

std::uint32_t sum_words(const std::uint8_t* p, std::size_t len, std::uint32_t sum) {
  // 64-bit accumulator over 16-bit words: no carry handling inside the loop.
  std::uint64_t acc = sum;
  std::size_t i = 0;
  for (; i + 1 < len; i += 2)
    acc += load16(p + i);
  if (i < len) acc += std::uint32_t{p[i]} << 8;
  while (acc >> 32)
    acc = (acc & 0xFFFFFFFF) + (acc >> 32);
  return static_cast<std::uint32_t>(acc);
}

std::uint16_t fold(std::uint32_t sum) {
  while (sum >> 16)
    sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<std::uint16_t>(sum);
}

bool finish_partial(std::uint8_t* frame, std::size_t len, std::size_t csum_start,
                    std::size_t csum_offset) {
  if (csum_start >= len || csum_offset + 2 > len - csum_start) return false;
  // The field already holds the pseudo-header sum: summing it in with the rest is the point.
  const std::uint16_t c =
      static_cast<std::uint16_t>(~fold(sum_words(frame + csum_start, len - csum_start)));
  store16(frame + csum_start + csum_offset, c);
  return true;
}

void write_l4_checksum(std::uint8_t* f, const PacketInfo& info, std::size_t l4_len) {
  std::uint32_t sum;
  if (info.ip_version == 4)
    sum = sum_words(f + info.l3 + 12, 8);  // source and destination address
  else
    sum = sum_words(f + info.l3 + 8, 32);
  sum += info.l4_proto;
  sum += static_cast<std::uint32_t>(l4_len & 0xFFFF) + static_cast<std::uint32_t>(l4_len >> 16);
  const std::size_t field = info.l4 + (info.l4_proto == kProtoTcp ? 16 : 6);
  store16(f + field, 0);
  std::uint16_t c = static_cast<std::uint16_t>(~fold(sum_words(f + info.l4, l4_len, sum)));
  if (info.l4_proto == kProtoUdp && c == 0) c = 0xFFFF;  // 0 means "no checksum" for UDP
  store16(f + field, c);
}

void seed_partial(std::uint8_t* f, const PacketInfo& info, std::size_t l4_len) {
  std::uint32_t sum =
      info.ip_version == 4 ? sum_words(f + info.l3 + 12, 8) : sum_words(f + info.l3 + 8, 32);
  sum += info.l4_proto;
  sum += static_cast<std::uint32_t>(l4_len & 0xFFFF) + static_cast<std::uint32_t>(l4_len >> 16);
  store16(f + info.l4 + (info.l4_proto == kProtoTcp ? 16 : 6), fold(sum));
}

void write_ipv4_checksum(std::uint8_t* f, const PacketInfo& info) {
  const std::size_t ihl = (f[info.l3] & 0x0F) * 4u;
  store16(f + info.l3 + 10, 0);
  store16(f + info.l3 + 10, static_cast<std::uint16_t>(~fold(sum_words(f + info.l3, ihl))));
}

}  // namespace fdlinkd::offload
