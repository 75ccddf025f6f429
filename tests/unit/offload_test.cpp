// Offload helpers, checked field by field against frames and checksums built here by separate,
// deliberately simple code (a byte-at-a-time RFC 1071 sum), not by the code under test.
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/batch.hpp"
#include "frames.hpp"
#include "offload/checksum.hpp"
#include "offload/gso.hpp"
#include "offload/vnet.hpp"
#include "test_worker.hpp"
#include "writer/egress.hpp"

using namespace fdlinkd;
using namespace fdlinkd::offload;
using namespace fdlinkd::test;

namespace {

// `inner` (an Ethernet frame) in UDP over IPv4 or IPv6, behind a VXLAN header, or a Geneve
// header with `geneve_opts` 4-byte words of options. Lengths are those of a super-frame.
Bytes udp_tunnel(const Bytes& inner, int version, bool geneve, std::size_t geneve_opts = 0) {
  const std::size_t ip = version == 4 ? 20 : 40;
  const std::size_t tun = 8 + (geneve ? 4 * geneve_opts : 0);
  Bytes f = udp_frame(version, tun + inner.size());  // payload filled below
  const std::size_t l4 = 14 + ip;
  put16(f, l4 + 2, geneve ? 6081 : 4789);
  std::fill(f.begin() + static_cast<long>(l4 + 8), f.end(), 0);
  if (geneve) {
    f[l4 + 8] = static_cast<std::uint8_t>(geneve_opts);
    put16(f, l4 + 10, 0x6558);  // Ethernet inside
  } else {
    f[l4 + 8] = 0x08;  // VNI present
  }
  std::copy(inner.begin(), inner.end(), f.begin() + static_cast<long>(l4 + 8 + tun));
  return f;
}

// Runs one frame with header `h` through prepare_egress to a plain 1500-MTU Ethernet link (or a
// vnet_hdr one) and returns what was sent.
std::vector<Bytes> egress_one(const Bytes& f, const VirtioNetHdr& h, CounterValues& tally,
                              bool vnet_egress = false, std::size_t capacity = 1514) {
  Batch in(1, 70000);
  std::copy(f.begin(), f.end(), in.slot(0));
  std::memcpy(in.slot(0) - sizeof h, &h, sizeof h);
  in.push(in.slot(0), static_cast<std::uint32_t>(f.size()), true);
  EgressCaps caps;
  caps.vnet_fd = caps.passthrough = vnet_egress;
  caps.wire_capacity = capacity;
  std::vector<Bytes> sent;
  prepare_egress(in, caps, test::worker(), tally, [&](Batch& b) {
    for (std::size_t i = 0; i < b.size(); ++i)
      sent.emplace_back(b[i].data, b[i].data + b[i].len);
  });
  return sent;
}

Bytes frame_of(Batch& b, std::size_t i) {
  return Bytes(b[i].data, b[i].data + b[i].len);
}

}  // namespace

TEST_CASE("IPv4 TCP super-frame is cut into MSS segments with every field right") {
  const std::size_t payload = 5000, mss = 1448;
  Bytes in = tcp4_frame(payload, kAck | kPsh | kFin | kCwr);
  PacketInfo info;
  REQUIRE(parse_headers(in.data(), in.size(), true, info));
  CHECK(info.l3 == 14);
  CHECK(info.l4 == 38);
  CHECK(info.headers == 70);

  Batch out(64, 1600);
  REQUIRE(segment(in.data(), in.size(), info, mss, out));
  REQUIRE(out.size() == 4);
  Bytes joined;
  for (std::size_t i = 0; i < 4; ++i) {
    Bytes s = frame_of(out, i);
    const std::size_t seg = i < 3 ? mss : payload - 3 * mss;
    INFO("segment " << i);
    REQUIRE(s.size() == 70 + seg);
    CHECK(get16(s, 16) == 24 + 32 + seg);                             // IPv4 total length
    CHECK(get16(s, 18) == 0x1234 + i);                                // IPv4 id, +1 per segment
    CHECK(ref_checksum(Bytes(s.begin() + 14, s.begin() + 38)) == 0);  // header checksum
    CHECK(get32(s, 42) == 0xFFFFF000u + static_cast<std::uint32_t>(i * mss));  // wraps
    const std::uint8_t flags = s[51];
    CHECK((flags & kAck) != 0);
    CHECK(((flags & kFin) != 0) == (i == 3));
    CHECK(((flags & kPsh) != 0) == (i == 3));
    CHECK(((flags & kCwr) != 0) == (i == 0));
    CHECK(verify_l4(s, 4, 14, 38, 6) == 0);  // full TCP checksum
    CHECK(s[34] == 1);                       // IP options copied
    joined.insert(joined.end(), s.begin() + 70, s.end());
  }
  CHECK(joined == Bytes(in.begin() + 70, in.end()));
}

TEST_CASE("IPv6 TCP super-frame is cut into MSS segments with every field right") {
  const std::size_t payload = 3000, mss = 1220;
  Bytes in = tcp6_frame(payload, kAck | kPsh);
  PacketInfo info;
  REQUIRE(parse_headers(in.data(), in.size(), true, info));
  Batch out(8, 1400);
  REQUIRE(segment(in.data(), in.size(), info, mss, out));
  REQUIRE(out.size() == 3);
  Bytes joined;
  for (std::size_t i = 0; i < 3; ++i) {
    Bytes s = frame_of(out, i);
    const std::size_t seg = i < 2 ? mss : payload - 2 * mss;
    INFO("segment " << i);
    CHECK(get16(s, 18) == 20 + seg);  // payload length
    CHECK(get32(s, 58) == 1000 + i * mss);
    CHECK(((s[67] & kPsh) != 0) == (i == 2));
    CHECK(verify_l4(s, 6, 14, 54, 6) == 0);
    joined.insert(joined.end(), s.begin() + 74, s.end());
  }
  CHECK(joined == Bytes(in.begin() + 74, in.end()));
}

TEST_CASE("UDP GSO super-frame to a plain link becomes datagrams of the segment size") {
  // What a UDP_SEGMENT sender hands a veth: one frame, NEEDS_CSUM, GSO UDP_L4, gso_size 1200.
  const std::size_t payload = 5000, gso = 1200;
  Bytes f = udp_frame(4, payload);
  VirtioNetHdr h;
  h.flags = VirtioNetHdr::kNeedsCsum;
  h.gso_type = VirtioNetHdr::kGsoUdpL4;
  h.gso_size = gso;
  h.hdr_len = 42;
  h.csum_start = 34;
  h.csum_offset = 6;
  PacketInfo info;
  REQUIRE_FALSE(check_vnet(h, f.data(), f.size(), true, info));  // a valid header
  CounterValues tally;
  const auto sent = egress_one(f, h, tally);  // a plain egress: no virtio header, 1500 MTU
  CHECK(tally.total_drops() == 0);
  CHECK(tally.gso_segments == 4);
  REQUIRE(sent.size() == 5);
  Bytes joined;
  for (std::size_t i = 0; i < sent.size(); ++i) {
    const Bytes& d = sent[i];
    const std::size_t seg = i < 4 ? gso : payload - 4 * gso;
    INFO("datagram " << i);
    REQUIRE(d.size() == 42 + seg);
    CHECK(get16(d, 16) == 28 + seg);                                  // IPv4 total length
    CHECK(get16(d, 18) == ((0xFFFE + i) & 0xFFFF));                   // IPv4 id, wraps
    CHECK(ref_checksum(Bytes(d.begin() + 14, d.begin() + 34)) == 0);  // header checksum
    CHECK(get16(d, 38) == 8 + seg);                                   // UDP length
    CHECK(get16(d, 40) != 0);                                         // a checksum is set
    CHECK(verify_l4(d, 4, 14, 34, 17) == 0);                          // and it is right
    joined.insert(joined.end(), d.begin() + 42, d.end());
  }
  CHECK(joined == Bytes(f.begin() + 42, f.end()));
}

TEST_CASE("IPv6 UDP super-frame is cut into datagrams with lengths and checksums right") {
  const std::size_t payload = 2500, gso = 1000;
  Bytes in = udp_frame(6, payload);
  PacketInfo info;
  REQUIRE(parse_headers(in.data(), in.size(), true, info));
  Batch out(8, 1518);
  REQUIRE(segment(in.data(), in.size(), info, gso, out));
  REQUIRE(out.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    Bytes d = frame_of(out, i);
    const std::size_t seg = i < 2 ? gso : payload - 2 * gso;
    INFO("datagram " << i);
    CHECK(get16(d, 18) == 8 + seg);  // IPv6 payload length
    CHECK(get16(d, 58) == 8 + seg);  // UDP length
    CHECK(verify_l4(d, 6, 14, 54, 17) == 0);
  }
}

TEST_CASE("a UDP datagram over the MTU is too big unless it is a UDP GSO frame that fits") {
  Bytes f = udp_frame(4, 3000);
  auto egress = [&](VirtioNetHdr h) {
    CounterValues tally;
    const std::size_t sent = egress_one(f, h, tally).size();
    return std::pair{sent, tally.drop(DropReason::too_big)};
  };
  // A datagram is never cut into several (that would change what the receiver reads).
  CHECK(egress(VirtioNetHdr{}) == std::pair<std::size_t, std::uint64_t>{0, 1});
  VirtioNetHdr h;
  h.gso_type = VirtioNetHdr::kGsoUdpL4;
  h.gso_size = 1600;  // one datagram would not fit the 1500 MTU
  CHECK(egress(h) == std::pair<std::size_t, std::uint64_t>{0, 1});
  h.gso_size = 1472;  // the largest that fits
  CHECK(egress(h) == std::pair<std::size_t, std::uint64_t>{3, 0});
}

TEST_CASE("segmentation ignores Ethernet padding and refuses when the batch is full") {
  Bytes small = tcp4_frame(0, kAck);
  small.resize(small.size() + 10);  // padding past the IP length
  PacketInfo info;
  REQUIRE(parse_headers(small.data(), small.size(), true, info));
  Batch out(2, 1600);
  REQUIRE(segment(small.data(), small.size(), info, 1448, out));
  REQUIRE(out.size() == 1);
  CHECK(out[0].len == 70);

  Bytes big = tcp4_frame(5000, kAck);
  REQUIRE(parse_headers(big.data(), big.size(), true, info));
  CHECK_FALSE(segment(big.data(), big.size(), info, 1448, out));  // 1 free slot, 4 needed
  CHECK(out.size() == 1);
  Batch tiny(8, 500);
  CHECK_FALSE(segment(big.data(), big.size(), info, 1448, tiny));  // slots too small
}

TEST_CASE("the checksum sum matches a byte-at-a-time reference at every length and offset") {
  Bytes data(600);
  std::uint32_t x = 12345;
  for (auto& b : data) {
    x = x * 1103515245u + 12345u;
    b = static_cast<std::uint8_t>(x >> 16);
  }
  for (std::size_t off = 0; off < 4; ++off) {
    for (std::size_t len = 0; len <= 300; ++len) {
      const Bytes part(data.begin() + static_cast<long>(off),
                       data.begin() + static_cast<long>(off + len));
      INFO("offset " << off << " length " << len);
      REQUIRE(static_cast<std::uint16_t>(~fold(sum_words(part.data(), part.size()))) ==
              ref_checksum(part));
    }
  }
  // Chained: a sum carried in (a pseudo-header, say) adds up as if it were more words.
  const Bytes head(data.begin(), data.begin() + 12), tail(data.begin() + 12, data.begin() + 501);
  CHECK(fold(sum_words(tail.data(), tail.size(), sum_words(head.data(), head.size()))) ==
        fold(sum_words(data.data(), 501)));
  CHECK(fold(sum_words(tail.data(), tail.size(), 0xFFFFFFFFu)) ==
        fold(sum_words(tail.data(), tail.size(), 0xFFFF)));  // carries out of 32 bits fold in
}

TEST_CASE("an inner checksum left to finish (VXLAN) is accepted and finished for a plain link") {
  // Ethernet/IPv4/UDP 4789/VXLAN carrying Ethernet/IPv4/TCP: the sender's stack leaves the
  // inner TCP checksum partial, the outer UDP checksum is 0 (none), as Linux's vxlan does.
  Bytes inner = tcp4_frame(300, kAck | kPsh);
  Bytes f(14 + 20 + 8 + 8);
  f[12] = 0x08;
  f[14] = 0x45;
  put16(f, 16, 20 + 8 + 8 + inner.size());
  f[22] = 64;
  f[23] = 17;
  put32(f, 26, 0xC0A80001);
  put32(f, 30, 0xC0A80002);
  put16(f, 36, 4789);
  put16(f, 38, 8 + 8 + inner.size());
  f[42] = 0x08;  // VXLAN: VNI present
  f.insert(f.end(), inner.begin(), inner.end());
  const std::size_t tcp = 50 + 38;  // the inner TCP header
  std::uint32_t pseudo = get16(f, 50 + 26) + get16(f, 50 + 28) + get16(f, 50 + 30) +
                         get16(f, 50 + 32) + 6 + static_cast<std::uint32_t>(f.size() - tcp);
  while (pseudo >> 16)
    pseudo = (pseudo & 0xFFFF) + (pseudo >> 16);
  put16(f, tcp + 16, pseudo);

  VirtioNetHdr h;
  h.flags = VirtioNetHdr::kNeedsCsum;
  h.csum_start = static_cast<std::uint16_t>(tcp);
  h.csum_offset = 16;
  PacketInfo info;
  REQUIRE_FALSE(check_vnet(h, f.data(), f.size(), true, info));
  Batch in(1, 2048);
  std::copy(f.begin(), f.end(), in.slot(0));
  std::memcpy(in.slot(0) - sizeof h, &h, sizeof h);
  in.push(in.slot(0), static_cast<std::uint32_t>(f.size()), true);
  EgressCaps caps;
  caps.wire_capacity = 1514;
  CounterValues tally;
  Bytes out;
  prepare_egress(in, caps, test::worker(), tally, [&](Batch& b) { out = frame_of(b, 0); });
  CHECK(tally.total_drops() == 0);
  REQUIRE(out.size() == f.size());
  CHECK(verify_l4(Bytes(out.begin() + 50, out.end()), 4, 14, 38, 6) == 0);  // inner TCP
  CHECK(get16(out, 40) == 0);  // the outer UDP checksum stays "none"
}

TEST_CASE("a GSO frame passes to a vnet egress only if its segments fit that egress") {
  const Bytes f = tcp4_frame(5000, kAck);  // 70 bytes of headers
  VirtioNetHdr h;
  h.flags = VirtioNetHdr::kNeedsCsum;
  h.gso_type = VirtioNetHdr::kGsoTcpV4;
  h.gso_size = 1400;
  h.csum_start = 38;
  h.csum_offset = 16;
  auto send = [&](std::size_t capacity) {
    CounterValues tally;
    std::vector<std::size_t> sizes;
    for (const Bytes& d : egress_one(f, h, tally, true, capacity))
      sizes.push_back(d.size());
    CHECK(tally.total_drops() == 0);
    return sizes;
  };
  CHECK(send(1514) == std::vector<std::size_t>{f.size()});  // 70 + 1400 fit: passed whole
  // An egress of MTU 1400 (1414-byte frames): the kernel would drop 1470-byte segments, so
  // fdlinkd cuts them to fit, 1344 bytes of payload each.
  CHECK(send(1414) == std::vector<std::size_t>{1414, 1414, 1414, 70 + 5000 - 3 * 1344});
}

TEST_CASE("TCP GSO in VXLAN is cut along the inner TCP header with both layers fixed") {
  // What Linux's vxlan hands a veth with TSO: the kernel's virtio header says TCPv4 GSO with
  // csum_start at the inner TCP header; the outer UDP checksum is 0 ("none").
  const std::size_t payload = 4000;
  const Bytes inner = tcp4_frame(payload, kAck | kPsh);
  const Bytes f = udp_tunnel(inner, 4, false);
  const std::size_t in0 = 50, tcp = in0 + 38, hdrs = in0 + 70;  // inner Ethernet, TCP, payload
  VirtioNetHdr h;
  h.flags = VirtioNetHdr::kNeedsCsum;
  h.gso_type = VirtioNetHdr::kGsoTcpV4;
  h.gso_size = 1200;
  h.hdr_len = static_cast<std::uint16_t>(hdrs);
  h.csum_start = static_cast<std::uint16_t>(tcp);
  h.csum_offset = 16;
  PacketInfo info;
  REQUIRE_FALSE(check_vnet(h, f.data(), f.size(), true, info));

  for (const bool vnet_egress : {false, true}) {  // no fd can take it back whole: always cut
    INFO("vnet egress " << vnet_egress);
    CounterValues tally;
    const auto sent = egress_one(f, h, tally, vnet_egress);
    CHECK(tally.total_drops() == 0);
    REQUIRE(sent.size() == 4);  // 3 x 1200 + 400
    CHECK(tally.gso_segments == 3);
    Bytes joined;
    for (std::size_t i = 0; i < sent.size(); ++i) {
      const Bytes& d = sent[i];
      const std::size_t seg = i < 3 ? 1200 : payload - 3 * 1200;
      INFO("segment " << i);
      REQUIRE(d.size() == hdrs + seg);
      CHECK(get16(d, 16) == d.size() - 14);                             // outer IPv4 length
      CHECK(get16(d, 18) == ((0xFFFE + i) & 0xFFFF));                   // outer id, +1
      CHECK(ref_checksum(Bytes(d.begin() + 14, d.begin() + 34)) == 0);  // outer header csum
      CHECK(get16(d, 38) == d.size() - 34);                             // outer UDP length
      CHECK(get16(d, 40) == 0);                                         // still "none"
      CHECK(get16(d, in0 + 16) == d.size() - in0 - 14);                 // inner IPv4 length
      CHECK(get16(d, in0 + 18) == 0x1234 + i);                          // inner id, +1
      CHECK(get32(d, tcp + 4) == 0xFFFFF000u + static_cast<std::uint32_t>(i * 1200));
      CHECK(((d[tcp + 13] & kPsh) != 0) == (i == 3));
      CHECK(verify_l4(Bytes(d.begin() + static_cast<long>(in0), d.end()), 4, 14, 38, 6) == 0);
      joined.insert(joined.end(), d.begin() + static_cast<long>(hdrs), d.end());
    }
    CHECK(joined == Bytes(inner.begin() + 70, inner.end()));
  }
}

TEST_CASE("TCP GSO in Geneve over IPv6 gets the outer UDP checksum too") {
  const Bytes inner = tcp4_frame(2500, kAck);
  const Bytes f = udp_tunnel(inner, 6, true, 2);  // 8 bytes of Geneve options
  const std::size_t in0 = 14 + 40 + 8 + 16, tcp = in0 + 38;
  VirtioNetHdr h;
  h.flags = VirtioNetHdr::kNeedsCsum;
  h.gso_type = VirtioNetHdr::kGsoTcpV4;  // the inner packet's family
  h.gso_size = 1000;
  h.csum_start = static_cast<std::uint16_t>(tcp);
  h.csum_offset = 16;
  PacketInfo info;
  REQUIRE_FALSE(check_vnet(h, f.data(), f.size(), true, info));
  CounterValues tally;
  const auto sent = egress_one(f, h, tally);
  CHECK(tally.total_drops() == 0);
  REQUIRE(sent.size() == 3);
  for (const Bytes& d : sent) {
    CHECK(get16(d, 18) == d.size() - 54);     // outer IPv6 payload length
    CHECK(get16(d, 58) == d.size() - 54);     // outer UDP length
    CHECK(verify_l4(d, 6, 14, 54, 17) == 0);  // outer UDP checksum, over the finished inner
    CHECK(verify_l4(Bytes(d.begin() + static_cast<long>(in0), d.end()), 4, 14, 38, 6) == 0);
  }
}

TEST_CASE("a TCP GSO header on UDP that carries no tunnel is refused") {
  Bytes f = udp_tunnel(tcp4_frame(2000, kAck), 4, false);
  VirtioNetHdr h;
  h.flags = VirtioNetHdr::kNeedsCsum;
  h.gso_type = VirtioNetHdr::kGsoTcpV4;
  h.gso_size = 1200;
  h.csum_start = 50 + 38;
  h.csum_offset = 16;
  PacketInfo info;
  REQUIRE_FALSE(check_vnet(h, f.data(), f.size(), true, info));
  VirtioNetHdr off = h;
  off.csum_start = 50 + 30;  // not where the inner TCP header is
  CHECK(check_vnet(off, f.data(), f.size(), true, info) == DropReason::vnet_bad_headers);
  VirtioNetHdr v6 = h;
  v6.gso_type = VirtioNetHdr::kGsoTcpV6;  // the inner packet is IPv4
  CHECK(check_vnet(v6, f.data(), f.size(), true, info) == DropReason::vnet_bad_headers);
  VirtioNetHdr partial = h;
  partial.flags = 0;  // a tunnel frame must say where the inner checksum is
  CHECK(check_vnet(partial, f.data(), f.size(), true, info) == DropReason::vnet_bad_headers);
}

// Bit at a time, straight from the definition (reflected polynomial 0x82F63B78).
std::uint32_t ref_crc32c(const Bytes& b) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::uint8_t byte : b) {
    c ^= byte;
    for (int k = 0; k < 8; ++k)
      c = (c >> 1) ^ ((c & 1) ? 0x82F63B78u : 0u);
  }
  return ~c;
}

TEST_CASE("CRC32c matches the RFC 3720 test vectors") {
  Bytes zeros(32, 0), ones(32, 0xFF), up(32), down(32);
  for (std::size_t i = 0; i < 32; ++i) {
    up[i] = static_cast<std::uint8_t>(i);
    down[i] = static_cast<std::uint8_t>(31 - i);
  }
  CHECK(crc32c(zeros.data(), 32) == 0x8A9136AAu);
  CHECK(crc32c(ones.data(), 32) == 0x62A8AB43u);
  CHECK(crc32c(up.data(), 32) == 0x46DD794Eu);
  CHECK(crc32c(down.data(), 32) == 0x113FDB5Cu);
}

TEST_CASE("an SCTP CRC to finish past the end of its IP packet is vnet_bad_csum on receive") {
  // (fuzz_offload found it counted on the sending link instead: the IP length ends the packet
  // inside the SCTP common header, which the frame itself still holds)
  Bytes f(14 + 20 + 12 + 16);
  f[12] = 0x08;
  f[14] = 0x45;
  put16(f, 16, 25);  // the IP packet ends 5 bytes into the SCTP header
  f[22] = 64;
  f[23] = 132;
  VirtioNetHdr h;
  h.flags = VirtioNetHdr::kNeedsCsum;
  h.csum_start = 34;
  h.csum_offset = 8;
  PacketInfo info;
  CHECK(check_vnet(h, f.data(), f.size(), true, info) == DropReason::vnet_bad_csum);
  put16(f, 16, 20 + 12 + 16);  // the whole SCTP packet: fine
  CHECK_FALSE(check_vnet(h, f.data(), f.size(), true, info));
}

TEST_CASE("an SCTP packet left with its CRC to finish gets CRC32c - not a 16-bit sum") {
  // Linux offloads SCTP's CRC32c as NEEDS_CSUM with csum_offset 8. A short frame: the
  // Ethernet padding after the IP packet must stay out of the CRC.
  const std::size_t chunk = 16;
  Bytes f(14 + 20 + 12 + chunk + 6);  // 6 bytes of padding
  f[12] = 0x08;
  f[14] = 0x45;
  put16(f, 16, 20 + 12 + chunk);
  f[22] = 64;
  f[23] = 132;
  put32(f, 26, 0x0A000001);
  put32(f, 30, 0x0A000002);
  put16(f, 34, 38412);  // ports, verification tag
  put16(f, 36, 36412);
  put32(f, 38, 0xDEADBEEF);
  for (std::size_t i = 0; i < chunk; ++i)
    f[46 + i] = static_cast<std::uint8_t>(i * 5 + 1);
  VirtioNetHdr h;
  h.flags = VirtioNetHdr::kNeedsCsum;
  h.csum_start = 34;
  h.csum_offset = 8;
  Bytes sctp(f.begin() + 34, f.begin() + 34 + 12 + static_cast<long>(chunk));
  const std::uint32_t want = ref_crc32c(sctp);    // checksum field still 0 here
  for (const bool vnet_egress : {false, true}) {  // a virtio header cannot carry it: always here
    INFO("vnet egress " << vnet_egress);
    CounterValues tally;
    const auto sent = egress_one(f, h, tally, vnet_egress);
    REQUIRE(sent.size() == 1);
    CHECK(tally.total_drops() == 0);
    const Bytes& d = sent[0];
    CHECK((d[42] | d[43] << 8 | d[44] << 16 | static_cast<std::uint32_t>(d[45]) << 24) == want);
    CHECK(Bytes(d.begin() + 46, d.end()) == Bytes(f.begin() + 46, f.end()));  // rest untouched
  }
}

TEST_CASE("a NEEDS_CSUM frame gets its checksum finished") {
  Bytes f = tcp4_frame(999, kAck | kPsh);  // odd length: the last byte is padded
  // The sender left only the folded pseudo-header sum in the field (CHECKSUM_PARTIAL).
  std::uint32_t pseudo = get16(f, 26) + get16(f, 28) + get16(f, 30) + get16(f, 32) + 6 +
                         static_cast<std::uint32_t>(f.size() - 38);
  while (pseudo >> 16)
    pseudo = (pseudo & 0xFFFF) + (pseudo >> 16);
  put16(f, 38 + 16, pseudo);
  CHECK(verify_l4(f, 4, 14, 38, 6) != 0);
  REQUIRE(finish_partial(f.data(), f.size(), 38, 16));
  CHECK(verify_l4(f, 4, 14, 38, 6) == 0);
  CHECK_FALSE(finish_partial(f.data(), f.size(), f.size() - 1, 16));  // field past the end
}

TEST_CASE("an offloaded checksum that XDP hands over unmarked is completed and nothing else") {
  // IPv4 TCP (with IP and TCP options), as a veth peer's stack sends it with tx offload on.
  Bytes f = tcp4_frame(999, kAck | kPsh);
  put16(f, 38 + 16, partial_field(f, 4, 14, 38, 6));
  CHECK(verify_l4(f, 4, 14, 38, 6) != 0);
  CHECK(complete_unmarked_partial(f.data(), f.size(), true));
  CHECK(verify_l4(f, 4, 14, 38, 6) == 0);
  // Done once: the same frame again is valid and left alone.
  const Bytes done = f;
  CHECK_FALSE(complete_unmarked_partial(f.data(), f.size(), true));
  CHECK(f == done);
  // Corrupt (a flipped payload byte): not a partial field, so it stays corrupt for the
  // receiver to drop, as a wire would deliver it.
  f[100] ^= 0x40;
  const Bytes corrupt = f;
  CHECK_FALSE(complete_unmarked_partial(f.data(), f.size(), true));
  CHECK(f == corrupt);

  // IPv6 UDP, and Ethernet padding after the IP packet that must not enter the sum.
  Bytes u = udp_frame(6, 30);
  put16(u, 54 + 6, partial_field(u, 6, 14, 54, 17));
  Bytes padded = u;
  padded.insert(padded.end(), {0xAA, 0xBB, 0xCC});
  CHECK(complete_unmarked_partial(padded.data(), padded.size(), true));
  padded.resize(u.size());
  CHECK(verify_l4(padded, 6, 14, 54, 17) == 0);

  // IPv4 UDP without a checksum (0) stays without one; a fragment is never touched.
  Bytes none = udp_frame(4, 30);
  CHECK_FALSE(complete_unmarked_partial(none.data(), none.size(), true));
  CHECK(get16(none, 34 + 6) == 0);
  Bytes frag = udp_frame(4, 30);
  put16(frag, 34 + 6, partial_field(frag, 4, 14, 34, 17));
  put16(frag, 20, 0x2000);  // more fragments
  const Bytes frag_before = frag;
  CHECK_FALSE(complete_unmarked_partial(frag.data(), frag.size(), true));
  CHECK(frag == frag_before);
}

TEST_CASE("a kernel VTEP's unmarked TCP super-frame gets the virtio header it lost") {
  // IPv4: 20 + 4 bytes of IP header, 32 of TCP: at MTU 1450, 1394 bytes of payload a segment.
  Bytes f = tcp4_frame(5000, kAck | kPsh);
  put16(f, 38 + 16, partial_field(f, 4, 14, 38, 6));
  VirtioNetHdr h;
  REQUIRE(gso_header_for_unmarked(f.data(), f.size(), 1450, h));
  CHECK(h.flags == VirtioNetHdr::kNeedsCsum);
  CHECK(h.gso_type == VirtioNetHdr::kGsoTcpV4);
  CHECK(h.gso_size == 1450 - 24 - 32);
  CHECK(h.hdr_len == 70);
  CHECK(h.csum_start == 38);
  CHECK(h.csum_offset == 16);
  // What it says holds, and cutting it as it says gives valid wire segments.
  PacketInfo info;
  CHECK_FALSE(check_vnet(h, f.data(), f.size(), true, info));
  Batch out(8, 2048);
  REQUIRE(segment(f.data(), f.size(), info, h.gso_size, out));
  CHECK(out.size() == 4);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const Bytes seg(out[i].data, out[i].data + out[i].len);
    CHECK(seg.size() <= 1450 + 14);
    CHECK(verify_l4(seg, 4, 14, 38, 6) == 0);
  }

  // IPv6, MTU 1430 (the kernel's VXLAN over IPv6).
  Bytes g = tcp6_frame(4000, kAck);
  put16(g, 54 + 16, partial_field(g, 6, 14, 54, 6));
  REQUIRE(gso_header_for_unmarked(g.data(), g.size(), 1430, h));
  CHECK(h.gso_type == VirtioNetHdr::kGsoTcpV6);
  CHECK(h.gso_size == 1430 - 40 - (get16(g, 54 + 12) >> 12) * 4);

  // Not such a frame: one that fits a segment, a finished checksum, UDP, Ethernet padding.
  Bytes small = tcp4_frame(1000, kAck);
  put16(small, 38 + 16, partial_field(small, 4, 14, 38, 6));
  CHECK_FALSE(gso_header_for_unmarked(small.data(), small.size(), 1450, h));
  Bytes done = tcp4_frame(5000, kAck);
  put16(done, 38 + 16, 0);
  put16(done, 38 + 16, verify_l4(done, 4, 14, 38, 6));
  CHECK_FALSE(gso_header_for_unmarked(done.data(), done.size(), 1450, h));
  Bytes u = udp_frame(4, 5000);
  put16(u, 34 + 6, partial_field(u, 4, 14, 34, 17));
  CHECK_FALSE(gso_header_for_unmarked(u.data(), u.size(), 1450, h));
  Bytes padded = f;
  padded.push_back(0);
  CHECK_FALSE(gso_header_for_unmarked(padded.data(), padded.size(), 1450, h));
}

TEST_CASE("every malformed virtio header is named") {
  Bytes f = tcp4_frame(2000, kAck);
  PacketInfo info;
  VirtioNetHdr ok;
  ok.flags = VirtioNetHdr::kNeedsCsum;
  ok.gso_type = VirtioNetHdr::kGsoTcpV4;
  ok.gso_size = 1448;
  ok.hdr_len = 70;
  ok.csum_start = 38;
  ok.csum_offset = 16;
  CHECK_FALSE(check_vnet(ok, f.data(), f.size(), true, info));
  VirtioNetHdr ecn = ok;
  ecn.gso_type |= VirtioNetHdr::kGsoEcn;
  CHECK_FALSE(check_vnet(ecn, f.data(), f.size(), true, info));

  auto reason = [&](VirtioNetHdr h, const Bytes& frame) {
    return check_vnet(h, frame.data(), frame.size(), true, info);
  };
  VirtioNetHdr h = ok;
  h.gso_type = 7;
  CHECK(reason(h, f) == DropReason::vnet_bad_gso);
  h = ok;
  h.gso_size = 0;
  CHECK(reason(h, f) == DropReason::vnet_gso_size_zero);
  h = ok;
  h.hdr_len = static_cast<std::uint16_t>(f.size() + 1);
  CHECK(reason(h, f) == DropReason::vnet_bad_hdr_len);
  h = ok;
  h.csum_start = 60000;  // outside the frame
  CHECK(reason(h, f) == DropReason::vnet_bad_csum);
  h = ok;
  h.csum_start = static_cast<std::uint16_t>(f.size() - 17);  // the field's 2 bytes run past
  CHECK(reason(h, f) == DropReason::vnet_bad_csum);
  h = ok;
  h.csum_start = static_cast<std::uint16_t>(f.size() - 18);  // the field is the last 2 bytes
  CHECK_FALSE(reason(h, f));
  h = ok;
  h.gso_type = VirtioNetHdr::kGsoTcpV6;  // on an IPv4 frame
  CHECK(reason(h, f) == DropReason::vnet_bad_headers);
  Bytes arp(60, 0);
  arp[12] = 0x08;
  arp[13] = 0x06;
  h = ok;
  h.hdr_len = 14;
  CHECK(reason(h, arp) == DropReason::vnet_bad_headers);  // GSO on a frame that is not IP
  h = ok;
  h.gso_type = VirtioNetHdr::kGsoUdpL4;  // UDP segmentation on a TCP frame
  CHECK(reason(h, f) == DropReason::vnet_bad_headers);
  Bytes cut(f.begin(), f.begin() + 50);  // TCP header cut short
  h = ok;
  h.hdr_len = 0;
  CHECK(reason(h, cut) == DropReason::vnet_bad_headers);
}

TEST_CASE("headers parse through VLAN tags and reject what they cannot describe") {
  Bytes f = tcp4_frame(10, kAck);
  Bytes tagged(f.begin(), f.begin() + 12);
  tagged.insert(tagged.end(), {0x81, 0x00, 0x00, 0x05});
  tagged.insert(tagged.end(), f.begin() + 12, f.end());
  PacketInfo info;
  REQUIRE(parse_headers(tagged.data(), tagged.size(), true, info));
  CHECK(info.l3 == 18);
  CHECK(info.l4 == 42);
  // Without the Ethernet header (TUN): starts at IP.
  Bytes ip(f.begin() + 14, f.end());
  REQUIRE(parse_headers(ip.data(), ip.size(), false, info));
  CHECK(info.l3 == 0);
  CHECK(info.headers == 56);
  CHECK_FALSE(parse_headers(f.data(), 40, true, info));  // cut inside the TCP header
  Bytes icmp = f;
  icmp[23] = 1;
  CHECK_FALSE(parse_headers(icmp.data(), icmp.size(), true, info));
}

TEST_CASE("a GRO super-frame passed on as GSO gets the partial checksum GSO needs") {
  // GRO marks merged frames DATA_VALID; a GSO sender must give NEEDS_CSUM with the checksum
  // field seeded with the pseudo-header sum, or the kernel cannot segment it.
  Bytes f = tcp4_frame(5000, kAck);
  Batch in(1, 70000);
  std::uint8_t* slot = in.slot(0);
  std::copy(f.begin(), f.end(), slot);
  VirtioNetHdr h;
  h.flags = VirtioNetHdr::kDataValid;
  h.gso_type = VirtioNetHdr::kGsoTcpV4;
  h.gso_size = 1448;
  h.hdr_len = 70;
  std::memcpy(slot - sizeof h, &h, sizeof h);
  in.push(slot, static_cast<std::uint32_t>(f.size()), true);
  EgressCaps caps;
  caps.vnet_fd = caps.passthrough = true;
  caps.wire_capacity = 1518;
  CounterValues tally;
  std::size_t sent = 0;
  prepare_egress(in, caps, test::worker(), tally, [&](Batch& b) { sent += b.size(); });
  REQUIRE(sent == 1);  // passed on whole
  CHECK(tally.total_drops() == 0);
  VirtioNetHdr out;
  std::memcpy(&out, slot - sizeof out, sizeof out);
  CHECK((out.flags & VirtioNetHdr::kNeedsCsum) != 0);
  CHECK(out.csum_start == 38);
  CHECK(out.csum_offset == 16);
  CHECK(out.gso_size == 1448);
  // The seeded field must be what finishing it expects: completing it gives a valid checksum.
  Bytes done(slot, slot + f.size());
  REQUIRE(finish_partial(done.data(), done.size(), 38, 16));
  CHECK(verify_l4(done, 4, 14, 38, 6) == 0);
}
