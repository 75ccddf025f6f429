// Test frames built byte by byte, and an independent reference for Internet checksums.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace fdlinkd::test {

using Bytes = std::vector<std::uint8_t>;

// --- an independent reference -------------------------------------------------------------
inline std::uint16_t ref_checksum(const Bytes& b) {  // complemented RFC 1071 sum
  std::uint32_t s = 0;
  for (std::size_t i = 0; i < b.size(); i += 2) {
    std::uint32_t hi = b[i], lo = i + 1 < b.size() ? b[i + 1] : 0;
    s += (hi << 8) | lo;
    s = (s & 0xFFFF) + (s >> 16);
  }
  return static_cast<std::uint16_t>(~s & 0xFFFF);
}
inline std::uint16_t get16(const Bytes& b, std::size_t o) {
  return static_cast<std::uint16_t>(b[o] << 8 | b[o + 1]);
}
inline std::uint32_t get32(const Bytes& b, std::size_t o) {
  return std::uint32_t{get16(b, o)} << 16 | get16(b, o + 2);
}
inline void put16(Bytes& b, std::size_t o, std::size_t v) {
  b[o] = static_cast<std::uint8_t>(v >> 8);
  b[o + 1] = static_cast<std::uint8_t>(v);
}
inline void put32(Bytes& b, std::size_t o, std::size_t v) {
  put16(b, o, v >> 16);
  put16(b, o + 2, v & 0xFFFF);
}

// Pseudo-header + L4 bytes, as a receiver would verify them (result 0 when correct).
inline std::uint16_t verify_l4(const Bytes& f, int version, std::size_t l3, std::size_t l4,
                               std::uint8_t proto) {
  Bytes p;
  if (version == 4) {
    p.insert(p.end(), f.begin() + static_cast<long>(l3 + 12),
             f.begin() + static_cast<long>(l3 + 20));
  } else {
    p.insert(p.end(), f.begin() + static_cast<long>(l3 + 8),
             f.begin() + static_cast<long>(l3 + 40));
  }
  const std::size_t l4_len = f.size() - l4;
  p.push_back(0);
  p.push_back(proto);
  p.push_back(static_cast<std::uint8_t>(l4_len >> 8));
  p.push_back(static_cast<std::uint8_t>(l4_len));
  p.insert(p.end(), f.begin() + static_cast<long>(l4), f.end());
  return ref_checksum(p);
}

constexpr std::uint8_t kFin = 0x01, kPsh = 0x08, kAck = 0x10, kCwr = 0x80;

// Ethernet + IPv4 (with 4 bytes of options) + TCP (with 12 bytes of options) + payload.
inline Bytes tcp4_frame(std::size_t payload, std::uint8_t flags) {
  Bytes f(14 + 24 + 32 + payload);
  f[12] = 0x08;
  f[14] = 0x46;  // version 4, IHL 6
  put16(f, 16, 24 + 32 + payload);
  put16(f, 18, 0x1234);  // id
  f[22] = 64;
  f[23] = 6;
  put32(f, 26, 0x0A000001);
  put32(f, 30, 0x0A000002);
  f[34] = 1;  // an option byte (NOP-ish), kept as is
  put16(f, 38, 40000);
  put16(f, 40, 5201);
  put32(f, 42, 0xFFFFF000);  // sequence number close to wrapping
  put32(f, 46, 77);
  f[50] = 0x80;  // data offset 8 words
  f[51] = flags;
  put16(f, 52, 512);
  for (std::size_t i = 0; i < payload; ++i)
    f[70 + i] = static_cast<std::uint8_t>(i * 7 + 3);
  return f;
}

// Ethernet type IPv6 and an IPv6 header (fd00::1 -> fd00::2) carrying `l4_len` bytes of `proto`.
inline void put_ipv6(Bytes& f, std::size_t l4_len, std::uint8_t proto) {
  f[12] = 0x86;
  f[13] = 0xDD;
  f[14] = 0x60;
  put16(f, 18, l4_len);
  f[20] = proto;
  f[21] = 64;
  f[22] = 0xFD;
  f[37] = 1;
  f[38] = 0xFD;
  f[53] = 2;
}

inline Bytes tcp6_frame(std::size_t payload, std::uint8_t flags) {
  Bytes f(14 + 40 + 20 + payload);
  put_ipv6(f, 20 + payload, 6);
  put16(f, 54, 40000);
  put16(f, 56, 5201);
  put32(f, 58, 1000);
  f[66] = 0x50;
  f[67] = flags;
  for (std::size_t i = 0; i < payload; ++i)
    f[74 + i] = static_cast<std::uint8_t>(i * 13 + 1);
  return f;
}

// Ethernet + IPv4 (no options) or IPv6 + UDP + payload.
inline Bytes udp_frame(int version, std::size_t payload) {
  const std::size_t ip = version == 4 ? 20 : 40;
  Bytes f(14 + ip + 8 + payload);
  if (version == 4) {
    f[12] = 0x08;
    f[14] = 0x45;
    put16(f, 16, 20 + 8 + payload);
    put16(f, 18, 0xFFFE);  // id close to wrapping
    f[22] = 64;
    f[23] = 17;
    put32(f, 26, 0x0A000001);
    put32(f, 30, 0x0A000002);
  } else {
    put_ipv6(f, 8 + payload, 17);
  }
  const std::size_t l4 = 14 + ip;
  put16(f, l4, 40000);
  put16(f, l4 + 2, 443);
  put16(f, l4 + 4, 8 + payload);
  for (std::size_t i = 0; i < payload; ++i)
    f[l4 + 8 + i] = static_cast<std::uint8_t>(i * 11 + 5);
  return f;
}

// The folded pseudo-header sum a stack leaves in the field of a frame whose checksum it
// offloaded (CHECKSUM_PARTIAL), computed here word by word.
inline std::uint16_t partial_field(const Bytes& f, int version, std::size_t l3, std::size_t l4,
                                   std::uint8_t proto) {
  std::uint32_t sum = proto + static_cast<std::uint32_t>(f.size() - l4);
  const std::size_t from = version == 4 ? l3 + 12 : l3 + 8, to = version == 4 ? l3 + 20 : l3 + 40;
  for (std::size_t o = from; o < to; o += 2)
    sum += get16(f, o);
  while (sum >> 16)
    sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<std::uint16_t>(sum);
}

}  // namespace fdlinkd::test
