// gro = true (writer/coalesce.hpp): TCP segments of one flow, back to back in a batch, leave
// as one GSO super-frame, checked byte by byte on a socketpair that stands in for the
// AF_PACKET socket (the kernel's acceptance is checked end to end in vxlan_link.sh).
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "core/virtio_net.hpp"
#include "frames.hpp"
#include "offload/checksum.hpp"
#include "writer/writer.hpp"

using namespace fdlinkd;
using namespace fdlinkd::test;

namespace {

// Ethernet + IPv4 (no options) or IPv6 + TCP with 12 bytes of options (timestamps) + payload,
// every checksum right. `flow` changes the source port.
Bytes segment(int version, std::uint32_t seq, std::size_t payload, std::uint8_t flags,
              std::uint16_t flow = 0) {
  const std::size_t l3 = 14, l4 = version == 4 ? 34 : 54, hdrs = l4 + 32;
  Bytes f(hdrs + payload);
  for (int i = 0; i < 6; ++i) {
    f[static_cast<std::size_t>(i)] = 0x02;
    f[static_cast<std::size_t>(6 + i)] = 0x04;
  }
  if (version == 4) {
    put16(f, 12, 0x0800);
    f[l3] = 0x45;
    put16(f, l3 + 2, hdrs - l3 + payload);
    put16(f, l3 + 4, seq & 0xFFFF);  // (the ID differs per segment)
    f[l3 + 6] = 0x40;                // DF
    f[l3 + 8] = 64;
    f[l3 + 9] = 6;
    put32(f, l3 + 12, 0x0A000001);
    put32(f, l3 + 16, 0x0A000002);
    put16(f, l3 + 10, ref_checksum(Bytes(f.begin() + l3, f.begin() + l3 + 20)));
  } else {
    put16(f, 12, 0x86DD);
    f[l3] = 0x60;
    put16(f, l3 + 4, hdrs - l4 + payload);
    f[l3 + 6] = 6;
    f[l3 + 7] = 64;
    f[l3 + 8] = 0xfd;
    f[l3 + 23] = 1;
    f[l3 + 24] = 0xfd;
    f[l3 + 39] = 2;
  }
  put16(f, l4, 40000 + flow);
  put16(f, l4 + 2, 5201);
  put32(f, l4 + 4, seq);
  put32(f, l4 + 8, 1000);
  f[l4 + 12] = 0x80;  // 8 words
  f[l4 + 13] = flags;
  put16(f, l4 + 14, 501);
  f[l4 + 20] = 1;  // NOP NOP timestamps
  f[l4 + 21] = 1;
  f[l4 + 22] = 8;
  f[l4 + 23] = 10;
  put32(f, l4 + 24, 123456);
  for (std::size_t i = 0; i < payload; ++i)
    f[hdrs + i] = static_cast<std::uint8_t>(seq + i);
  put16(f, l4 + 16, verify_l4(f, version, l3, l4, 6));
  return f;
}

struct Sent {
  VirtioNetHdr h;
  Bytes frame;
};

// Sends `frames` with gro to a datagram socketpair; returns what came out, message by message.
std::vector<Sent> send_gro(const std::vector<Bytes>& frames, CounterValues& tally) {
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv) == 0);
  const int big = 4 << 20;
  ::setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  ::setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  Batch b(64, 2048);
  for (const Bytes& f : frames) {
    std::memcpy(b.slot(b.size()), f.data(), f.size());
    b.push(b.slot(b.size()), static_cast<std::uint32_t>(f.size()));
    b.tx_header(b.size() - 1) = VirtioNetHdr{};
  }
  TxTarget t;
  t.fd = sv[0];
  t.max_frame = 1514;
  t.vnet = true;
  t.gro = true;
  write_batch(t, b, -1, tally);
  std::vector<Sent> out;
  std::vector<std::uint8_t> buf(1 << 17);
  for (ssize_t n; (n = ::recv(sv[1], buf.data(), buf.size(), 0)) > 0;) {
    Sent s;
    std::memcpy(&s.h, buf.data(), sizeof s.h);
    s.frame.assign(buf.begin() + sizeof s.h, buf.begin() + n);
    out.push_back(s);
  }
  ::close(sv[0]);
  ::close(sv[1]);
  return out;
}

}  // namespace

TEST_CASE("gro: a run of TCP segments of one flow leaves as one GSO super-frame") {
  for (const int version : {4, 6}) {
    INFO("IPv" << version);
    const std::size_t l4 = version == 4 ? 34 : 54, hdrs = l4 + 32;
    std::vector<Bytes> frames;
    Bytes payload;
    std::uint32_t seq = 0xFFFFF000;  // (wraps inside the run)
    for (int i = 0; i < 10; ++i) {
      const std::size_t len = i < 9 ? 1400 : 600;
      frames.push_back(segment(version, seq, len, i < 9 ? kAck : kAck | kPsh));
      payload.insert(payload.end(), frames.back().begin() + static_cast<long>(hdrs),
                     frames.back().end());
      seq += static_cast<std::uint32_t>(len);
    }
    CounterValues tally;
    auto sent = send_gro(frames, tally);
    REQUIRE(sent.size() == 1);
    CHECK(tally.tx_packets == 10);
    const VirtioNetHdr& h = sent[0].h;
    CHECK(h.flags == VirtioNetHdr::kNeedsCsum);
    CHECK(h.gso_type == (version == 4 ? VirtioNetHdr::kGsoTcpV4 : VirtioNetHdr::kGsoTcpV6));
    CHECK(h.gso_size == 1400);
    CHECK(h.hdr_len == hdrs);
    CHECK(h.csum_start == l4);
    CHECK(h.csum_offset == 16);
    Bytes f = sent[0].frame;
    REQUIRE(f.size() == hdrs + 9 * 1400 + 600);
    // The first segment's headers, made for the whole; then every payload in order.
    CHECK(Bytes(f.begin(), f.begin() + 14) == Bytes(frames[0].begin(), frames[0].begin() + 14));
    CHECK(Bytes(f.begin() + static_cast<long>(hdrs), f.end()) == payload);
    CHECK(get32(f, l4 + 4) == 0xFFFFF000);
    CHECK((f[l4 + 13] & kPsh) != 0);  // (from the last segment)
    if (version == 4) {
      CHECK(get16(f, 16) == f.size() - 14);
      CHECK(ref_checksum(Bytes(f.begin() + 14, f.begin() + 34)) == 0);
    } else {
      CHECK(get16(f, 18) == f.size() - l4);
    }
    // The TCP checksum holds the pseudo-header sum: finished as the kernel would, it is right.
    REQUIRE(offload::finish_partial(f.data(), f.size(), l4, 16));
    CHECK(verify_l4(f, version, 14, l4, 6) == 0);
  }
}

TEST_CASE("gro: what Linux's GRO would not merge is sent as it came") {
  const std::size_t hdrs = 66;
  auto count_sent = [](const std::vector<Bytes>& frames) {
    CounterValues tally;
    auto sent = send_gro(frames, tally);
    CHECK(tally.tx_packets == frames.size());
    std::vector<std::size_t> sizes;
    for (const auto& s : sent)
      sizes.push_back(s.frame.size());
    return sizes;
  };
  using V = std::vector<std::size_t>;
  SECTION("a gap in the sequence numbers") {
    CHECK(count_sent({segment(4, 0, 1000, kAck), segment(4, 1000, 1000, kAck),
                      segment(4, 3000, 1000, kAck)}) == V{hdrs + 2000, hdrs + 1000});
  }
  SECTION("two flows interleaved") {
    CHECK(count_sent({segment(4, 0, 1000, kAck), segment(4, 0, 1000, kAck, 1),
                      segment(4, 1000, 1000, kAck), segment(4, 1000, 1000, kAck, 1)}) ==
          V{hdrs + 1000, hdrs + 1000, hdrs + 1000, hdrs + 1000});
  }
  SECTION("a shorter segment or PSH ends the run") {
    CHECK(count_sent({segment(4, 0, 1000, kAck), segment(4, 1000, 500, kAck),
                      segment(4, 1500, 1000, kAck | kPsh), segment(4, 2500, 1000, kAck)}) ==
          V{hdrs + 1500, hdrs + 1000, hdrs + 1000});
  }
  SECTION("FIN, a pure ACK and a bad TCP checksum are not merged") {
    Bytes bad = segment(4, 2000, 1000, kAck);
    bad[hdrs + 5] ^= 0xFF;
    auto sizes = count_sent({segment(4, 0, 1000, kAck), segment(4, 1000, 1000, kAck | kFin), bad,
                             segment(4, 3000, 0, kAck), segment(4, 3000, 1000, kAck)});
    CHECK(sizes == V{hdrs + 1000, hdrs + 1000, hdrs + 1000, hdrs, hdrs + 1000});
  }
  SECTION("a different window") {
    Bytes w = segment(4, 1000, 1000, kAck);
    put16(w, 34 + 14, 999);
    put16(w, 34 + 16, 0);
    put16(w, 34 + 16, verify_l4(w, 4, 14, 34, 6));
    CHECK(count_sent({segment(4, 0, 1000, kAck), w}) == V{hdrs + 1000, hdrs + 1000});
  }
}
