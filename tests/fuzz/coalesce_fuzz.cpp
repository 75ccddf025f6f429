// libFuzzer target: gro = true (writer/coalesce.hpp), the writer merging TCP segments of one
// flow into GSO super-frames. Input: a flags byte, then frames, each a 16-bit big-endian
// length and its bytes (at most 32 frames of 2048 bytes). Flag 1: fdlinkd fixes the IPv4 and
// TCP checksums of every frame that parses as TCP first (so mutations reach the merging rules
// rather than stop at a bad checksum); flag 2: the frames' virtio headers say DATA_VALID.
// They are written with gro to a datagram socketpair standing in for the AF_PACKET socket.
//   - every frame is sent (tx_packets), none is lost or made up;
//   - a message without GSO is exactly the next frame;
//   - a GSO message is the next 2 to 64 frames: the first one's headers (IP length and
//     checksum set for the whole), then each frame's TCP payload in order, all of one size but
//     the last.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "check.hpp"
#include "core/virtio_net.hpp"
#include "offload/checksum.hpp"
#include "offload/headers.hpp"
#include "writer/writer.hpp"

using namespace fdlinkd;

namespace {

using Bytes = std::vector<std::uint8_t>;

void fix_checksums(Bytes& f) {
  offload::PacketInfo info;
  if (!offload::parse_headers(f.data(), f.size(), true, info) ||
      info.l4_proto != offload::kProtoTcp)
    return;
  if (info.ip_version == 4) offload::write_ipv4_checksum(f.data(), info);
  const std::size_t end = offload::ip_packet_end(f.data(), f.size(), info);
  offload::write_l4_checksum(f.data(), info, end - info.l4);
}

int pair_fd[2] = {-1, -1};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  if (pair_fd[0] < 0) {
    FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, pair_fd) == 0);
    const int big = 8 << 20;
    ::setsockopt(pair_fd[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    ::setsockopt(pair_fd[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  }
  const std::uint8_t flags = data[0];
  std::vector<Bytes> frames;
  for (std::size_t at = 1; at + 2 <= size && frames.size() < 32;) {
    std::size_t len = std::size_t{data[at]} << 8 | data[at + 1];
    at += 2;
    if (len > size - at) len = size - at;
    if (len > 2048) len = 2048;
    frames.emplace_back(data + at, data + at + len);
    at += len;
    if (flags & 1) fix_checksums(frames.back());
  }
  Batch b(32, 2048);
  for (const Bytes& f : frames) {
    if (!f.empty()) std::memcpy(b.slot(b.size()), f.data(), f.size());
    b.push(b.slot(b.size()), static_cast<std::uint32_t>(f.size()));
    VirtioNetHdr h;
    if (flags & 2) h.flags = VirtioNetHdr::kDataValid;
    h.hdr_len = static_cast<std::uint16_t>(f.size());
    b.tx_header(b.size() - 1) = h;
  }
  TxTarget t;
  t.fd = pair_fd[0];
  t.max_frame = 2048;
  t.vnet = true;
  t.gro = true;
  CounterValues tally;
  write_batch(t, b, -1, tally);
  FUZZ_CHECK(tally.tx_packets == frames.size());

  std::size_t j = 0;  // the next frame a message must start with
  static std::uint8_t buf[1 << 17];
  for (ssize_t n; (n = ::recv(pair_fd[1], buf, sizeof buf, 0)) >= 0;) {
    FUZZ_CHECK(static_cast<std::size_t>(n) >= sizeof(VirtioNetHdr));
    VirtioNetHdr h;
    std::memcpy(&h, buf, sizeof h);
    const std::uint8_t* m = buf + sizeof h;
    const std::size_t len = static_cast<std::size_t>(n) - sizeof h;
    FUZZ_CHECK(j < frames.size());
    if (h.gso_type == VirtioNetHdr::kGsoNone) {
      FUZZ_CHECK(len == frames[j].size() &&
                 (len == 0 || std::memcmp(m, frames[j].data(), len) == 0));
      ++j;
      continue;
    }
    const std::size_t hdrs = h.hdr_len;
    FUZZ_CHECK(h.flags == VirtioNetHdr::kNeedsCsum && h.gso_size > 0 && hdrs < len);
    offload::PacketInfo info;
    FUZZ_CHECK(offload::parse_headers(m, len, true, info) && info.headers == hdrs);
    FUZZ_CHECK(std::memcmp(m, frames[j].data(), info.l3) == 0);
    if (info.ip_version == 4) {
      FUZZ_CHECK((std::size_t{m[info.l3 + 2]} << 8 | m[info.l3 + 3]) == len - info.l3);
      FUZZ_CHECK(offload::fold(offload::sum_words(m + info.l3, 20)) == 0xFFFF);
    } else {
      FUZZ_CHECK((std::size_t{m[info.l3 + 4]} << 8 | m[info.l3 + 5]) == len - info.l4);
    }
    std::size_t at = hdrs, segments = 0;
    while (at < len) {
      FUZZ_CHECK(j < frames.size());
      const Bytes& f = frames[j++];
      offload::PacketInfo fi;
      FUZZ_CHECK(offload::parse_headers(f.data(), f.size(), true, fi) && fi.headers == hdrs);
      const std::size_t p = offload::ip_packet_end(f.data(), f.size(), fi) - hdrs;
      FUZZ_CHECK(p > 0 && at + p <= len && std::memcmp(m + at, f.data() + hdrs, p) == 0);
      FUZZ_CHECK(at + p == len ? p <= h.gso_size : p == h.gso_size);
      at += p;
      ++segments;
    }
    FUZZ_CHECK(segments >= 2 && segments <= 64);
  }
  FUZZ_CHECK(j == frames.size());
  return 0;
}
