// The stream framing of QEMU's `-netdev stream` and passt: the framer on its own (bytes cut at
// every boundary), the dispatcher reading a real SOCK_STREAM socketpair (frames split across
// reads, a zero or huge length, a peer hanging up mid-frame), and the writer (short writes
// finished before anything else, never interleaved).
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "config/config.hpp"
#include "dispatch/dispatcher.hpp"
#include "frames.hpp"
#include "link/stream_framer.hpp"
#include "link/unix.hpp"
#include "test_worker.hpp"
#include "writer/backlog.hpp"
#include "writer/stream.hpp"

using namespace fdlinkd;
using namespace fdlinkd::test;

namespace {

Bytes eth_frame(std::size_t len, std::uint8_t tag) {
  Bytes f(len);
  for (std::size_t i = 0; i < len; ++i)
    f[i] = static_cast<std::uint8_t>(tag * 7 + i);
  return f;
}

// Frames with their 32-bit big-endian lengths, back to back.
Bytes framed(const std::vector<Bytes>& frames) {
  Bytes out;
  for (const auto& f : frames) {
    const auto n = f.size();
    out.insert(out.end(), {static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
                           static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)});
    out.insert(out.end(), f.begin(), f.end());
  }
  return out;
}

// Feeds `bytes` to a framer in pieces of `step` (the last piece shorter), collecting frames.
std::vector<Bytes> cut(const Bytes& bytes, std::size_t step) {
  StreamFramer fr(1518, 4096);
  std::vector<Bytes> got;
  for (std::size_t at = 0; at < bytes.size();) {
    fr.compact();
    const std::size_t n = std::min({step, bytes.size() - at, fr.space_left()});
    std::memcpy(fr.space(), bytes.data() + at, n);
    fr.commit(n);
    at += n;
    std::uint8_t* data;
    std::size_t len;
    while (fr.next(data, len) == StreamFramer::Next::frame)
      got.emplace_back(data, data + len);
  }
  return got;
}

}  // namespace

TEST_CASE("stream framer: frames split at every byte boundary come out whole") {
  const std::vector<Bytes> frames = {eth_frame(60, 1), eth_frame(1518, 2), eth_frame(14, 3),
                                     eth_frame(700, 4)};
  const Bytes bytes = framed(frames);
  for (std::size_t step = 1; step <= bytes.size(); ++step) {
    INFO("read size " << step);
    REQUIRE(cut(bytes, step) == frames);
  }
}

TEST_CASE("stream framer: many frames in one read - a zero length and a huge one are errors") {
  std::vector<Bytes> many;
  for (int i = 0; i < 50; ++i)
    many.push_back(eth_frame(60 + i, static_cast<std::uint8_t>(i)));
  CHECK(cut(framed(many), 1 << 20) == many);

  for (std::uint32_t bad : {0u, 1519u, 0xFFFFFFFFu}) {
    StreamFramer fr(1518);
    const std::uint8_t b[4] = {static_cast<std::uint8_t>(bad >> 24),
                               static_cast<std::uint8_t>(bad >> 16),
                               static_cast<std::uint8_t>(bad >> 8), static_cast<std::uint8_t>(bad)};
    std::memcpy(fr.space(), b, 4);
    fr.commit(4);
    std::uint8_t* data;
    std::size_t len = 0;
    CHECK(fr.next(data, len) == StreamFramer::Next::bad_length);
    CHECK(len == bad);
  }
}

namespace {

LinkConfig stream_config(const std::string& name) {
  return config_of(name, "unix", "to-b", "socket = \"stream\"\nrx_batch = 8\ntx_backlog = 0");
}

// A unix stream link (not opened: the test hands its dispatcher the fd) that says when its
// fd ended.
struct StreamLink : UnixLink {
  using UnixLink::UnixLink;
  bool eof = false;
  void port_closed(std::size_t, PortReader&) override { eof = true; }
};

// Link a, a stream read by a dispatcher, forwarding to link b (a seqpacket pair: one frame per
// message, so what arrives is easy to check).
struct StreamIn {
  Pair a{SOCK_STREAM}, b;
  StreamLink la{stream_config("a")};
  PairLink lb{config_of("b", "unix", "x", "tx_backlog = 0"), b.inside};
  ForwardPath path{lb};
  Dispatcher d{path.worker, la, 0, path.graph};
  StreamIn() { d.attach(a.inside); }
  std::vector<Bytes> received() {
    std::vector<Bytes> out;
    Bytes buf(70000);
    ssize_t n;
    while ((n = ::recv(b.outside, buf.data(), buf.size(), MSG_DONTWAIT)) > 0)
      out.emplace_back(buf.begin(), buf.begin() + n);
    return out;
  }
};

}  // namespace

TEST_CASE("stream link: frames split across writes and many in one write arrive whole") {
  StreamIn t;
  std::vector<Bytes> frames;
  for (int i = 0; i < 30; ++i)
    frames.push_back(
        eth_frame(60 + 37 * static_cast<std::size_t>(i), static_cast<std::uint8_t>(i)));
  const Bytes bytes = framed(frames);
  // In pieces of 1, 3, 1000 and then the rest, each run by the dispatcher before the next.
  std::size_t at = 0;
  for (std::size_t piece : {std::size_t{1}, std::size_t{3}, std::size_t{1000}, bytes.size()}) {
    const std::size_t n = std::min(piece, bytes.size() - at);
    REQUIRE(::send(t.a.outside, bytes.data() + at, n, 0) == static_cast<ssize_t>(n));
    at += n;
    t.path.io.run_for(std::chrono::milliseconds(20));
    t.path.io.restart();
  }
  run_until(t.path.io, [&] { return t.lb.totals().tx_packets == frames.size(); });
  CHECK(t.received() == frames);
  CHECK(t.la.totals().rx_packets == frames.size());
  CHECK_FALSE(t.la.eof);
}

TEST_CASE(
    "stream link: a zero or too large length and a peer hanging up mid-frame end the connection") {
  for (std::uint32_t bad : {0u, 100000u}) {
    StreamIn t;
    Bytes bytes = framed({eth_frame(60, 1)});
    bytes.insert(bytes.end(),
                 {static_cast<std::uint8_t>(bad >> 24), static_cast<std::uint8_t>(bad >> 16),
                  static_cast<std::uint8_t>(bad >> 8), static_cast<std::uint8_t>(bad)});
    REQUIRE(::send(t.a.outside, bytes.data(), bytes.size(), 0) ==
            static_cast<ssize_t>(bytes.size()));
    run_until(t.path.io, [&] { return t.la.eof; });
    INFO("length " << bad);
    CHECK(t.la.eof);
    CHECK(t.la.totals().rx_errors == 1);
    CHECK(t.received().size() == 1);  // the good frame before it went on
  }
  StreamIn t;
  Bytes half = framed({eth_frame(60, 1), eth_frame(200, 2)});
  half.resize(half.size() - 50);
  REQUIRE(::send(t.a.outside, half.data(), half.size(), 0) == static_cast<ssize_t>(half.size()));
  ::shutdown(t.a.outside, SHUT_WR);
  run_until(t.path.io, [&] { return t.la.eof; });
  CHECK(t.la.eof);
  CHECK(t.la.totals().rx_errors == 1);
  CHECK(t.received().size() == 1);
}

// A stream socketpair whose buffers hold about 4 KiB: writes are cut short often.
static void small_stream_pair(int fds[2]) {
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0);
  const int small = 4096;
  ::setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  ::setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
}

TEST_CASE("stream writer: a write cut short is finished first and frames never interleave") {
  int fds[2];
  small_stream_pair(fds);
  StreamWriter w(1518);
  Batch batch(64, 2048);
  std::vector<Bytes> sent_frames;
  CounterValues tally;
  Bytes got;
  std::uint8_t buf[65536];
  // Batches of 64 frames of 1000-1500 bytes into a small socket, reading a little in between:
  // many writes are cut short.
  for (int round = 0; round < 40; ++round) {
    batch.clear();
    std::vector<Bytes> frames;
    for (std::size_t i = 0; i < 64; ++i) {
      frames.push_back(
          eth_frame(1000 + (round * 64 + i) % 500, static_cast<std::uint8_t>(round + i)));
      std::memcpy(batch.slot(i), frames.back().data(), frames.back().size());
      batch.push(batch.slot(i), static_cast<std::uint32_t>(frames.back().size()));
    }
    const auto before = tally.tx_packets;
    w.send(fds[0], batch, tally);
    for (std::uint64_t k = 0; k < tally.tx_packets - before; ++k)
      sent_frames.push_back(frames[k]);  // frames go in order: the first n were sent
    ssize_t n = ::read(fds[1], buf, sizeof buf);
    if (n > 0) got.insert(got.end(), buf, buf + n);
  }
  int err = 0;
  for (int i = 0; i < 1000 && !w.flush(fds[0], err); ++i) {
    ssize_t n = ::read(fds[1], buf, sizeof buf);
    if (n > 0) got.insert(got.end(), buf, buf + n);
  }
  CHECK_FALSE(w.pending());
  for (ssize_t n; (n = ::read(fds[1], buf, sizeof buf)) > 0;)
    got.insert(got.end(), buf, buf + n);
  CHECK(tally.drop(DropReason::tx_queue_full) > 0);  // the socket was full at times
  CHECK(cut(got, 1 << 20) == sent_frames);           // and every frame sent is whole
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_CASE("stream writer with a backlog: what the socket cannot take waits and none is dropped") {
  int fds[2];
  small_stream_pair(fds);
  StreamWriter w(1518);
  TxBacklog backlog(256, 256 * (1518 + 16));
  Batch batch(64, 2048);
  std::vector<Bytes> all;
  CounterValues tally;
  Bytes got;
  std::uint8_t buf[65536];
  bool backlog_used = false;  // frames waited there at times
  auto read_some = [&] {
    const ssize_t n = ::read(fds[1], buf, sizeof buf);
    if (n > 0) got.insert(got.end(), buf, buf + n);
  };
  // Batches of 64 into a small socket, read a little in between, fewer frames than the
  // backlog holds in flight: every frame must arrive, whole and in order.
  for (int round = 0; round < 40; ++round) {
    batch.clear();
    for (std::size_t i = 0; i < 64; ++i) {
      all.push_back(eth_frame(1000 + (round * 64 + i) % 500, static_cast<std::uint8_t>(round + i)));
      std::memcpy(batch.slot(i), all.back().data(), all.back().size());
      batch.push(batch.slot(i), static_cast<std::uint32_t>(all.back().size()));
    }
    w.send(fds[0], batch, tally, &backlog);
    CHECK(backlog.size() <= 256);
    backlog_used = backlog_used || backlog.size() > 64;
    // The peer reads until the next batch fits in the backlog (what a waiting dispatcher
    // leaves it).
    for (int k = 0; k < 10000 && backlog.size() > 192; ++k) {
      read_some();
      int err = 0;
      std::size_t progress = 0;
      w.flush(fds[0], err, &backlog, tally, progress);
    }
  }
  int err = 0;
  std::size_t progress = 0;
  for (int i = 0; i < 10000 && !w.flush(fds[0], err, &backlog, tally, progress); ++i)
    read_some();
  CHECK_FALSE(w.pending());
  CHECK(backlog.empty());
  for (ssize_t n; (n = ::read(fds[1], buf, sizeof buf)) > 0;)
    got.insert(got.end(), buf, buf + n);
  CHECK(tally.total_drops() == 0);
  CHECK(tally.tx_packets == all.size());
  CHECK(backlog_used);
  const auto frames = cut(got, 1 << 20);
  REQUIRE(frames.size() == all.size());
  for (std::size_t i = 0; i < all.size(); ++i) {
    INFO("frame " << i);
    REQUIRE((frames[i] == all[i]));
  }
  ::close(fds[0]);
  ::close(fds[1]);
}
