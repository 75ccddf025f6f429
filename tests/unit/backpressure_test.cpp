// Back-pressure toward a local peer: the backlog itself, the hold between an output and the
// dispatchers feeding it, and the whole path on socketpairs: a slow peer gets every frame in
// order while the feeding dispatcher waits; a stalled one stops holding it back after
// tx_stall_timeout, and what exceeds tx_backlog is counted.
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <deque>
#include <random>
#include <vector>

#include "core/worker.hpp"
#include "dispatch/dispatcher.hpp"
#include "frames.hpp"
#include "test_worker.hpp"
#include "writer/backlog.hpp"

using namespace fdlinkd;
using namespace fdlinkd::test;

namespace {

Bytes numbered(std::uint32_t seq, std::size_t len) {
  Bytes f(len, 0);
  for (std::size_t i = 0; i < 6; ++i)
    f[i] = 0xff;
  f[6] = 0x02;
  f[12] = 0x88;
  f[13] = 0xb5;
  put32(f, 14, seq);
  for (std::size_t i = 18; i < len; ++i)
    f[i] = static_cast<std::uint8_t>(seq + i);
  return f;
}

}  // namespace

TEST_CASE("tx backlog: frames come out as they went in across wrap-arounds and within bounds") {
  TxBacklog b(8, 3000);
  std::deque<Bytes> ref;
  std::mt19937 rng(7);
  std::size_t refused = 0;
  for (int step = 0; step < 20000; ++step) {
    if (rng() % 3 != 0) {
      const std::size_t hdr = rng() % 2 ? 10 : 4;
      Bytes h(hdr, static_cast<std::uint8_t>(step));
      Bytes f = numbered(static_cast<std::uint32_t>(step), 18 + rng() % 700);
      std::size_t bytes = 0;
      for (const auto& r : ref)
        bytes += r.size();
      const bool ok = b.push(h.data(), hdr, f.data(), f.size());
      if (ok) {
        Bytes whole = h;
        whole.insert(whole.end(), f.begin(), f.end());
        ref.push_back(whole);
      } else {
        ++refused;
        // Refused only when full: 8 frames, or no contiguous room for it. A frame never
        // wraps, so room is lost at most at the end (less than the largest entry, 728
        // bytes) and, before a wrap, where the free space is split in two.
        const std::size_t n = hdr + f.size();
        CHECK((ref.size() == 8 || bytes + 2 * n + 728 > 3000));
      }
    } else if (!ref.empty()) {
      const std::size_t n = 1 + rng() % ref.size();
      for (std::size_t k = 0; k < n; ++k) {
        const TxBacklog::Entry e = b.at(k);
        REQUIRE(Bytes(e.data, e.data + e.len) == ref[k]);
        CHECK(e.hdr_len == (ref[k].size() - e.len + e.hdr_len));
      }
      b.pop(n);
      ref.erase(ref.begin(), ref.begin() + static_cast<std::ptrdiff_t>(n));
    }
    REQUIRE(b.size() == ref.size());
  }
  CHECK(refused > 0);
}

TEST_CASE("hold: each waiter resumes once on release and one that left is not resumed") {
  struct Waiter : HoldWaiter {
    int resumed = 0;
    void resume() override { ++resumed; }
  };
  Hold h1, h2;
  Waiter a, b, c;
  h1.wait(a);
  h1.wait(b);
  h1.wait(c);
  CHECK(a.waiting());
  b.leave();
  h2.wait(c);  // moves to the other hold
  h1.release();
  CHECK(a.resumed == 1);
  CHECK(b.resumed == 0);
  CHECK(c.resumed == 0);
  CHECK_FALSE(a.waiting());
  h1.release();
  CHECK(a.resumed == 1);
  h2.release();
  CHECK(c.resumed == 1);
  CHECK(h1.empty());
  CHECK(h2.empty());
}

namespace {

// a (seqpacket) -> forward -> b (seqpacket with a small send buffer, tx_backlog, a peer that
// reads when the test says so).
struct SlowPeer {
  /// b_type tap: b's fd is written one frame at a time, as a TAP's (write(), not sendmmsg).
  explicit SlowPeer(unsigned backlog, std::chrono::milliseconds stall,
                    const std::string& b_type = "unix")
      : a(SOCK_SEQPACKET, 4 << 20),
        b(SOCK_SEQPACKET, 8192),
        ca(config_of("a", "unix", "to-b", "tx_backlog = 0")),
        cb(config_of("b", b_type, "to-a")) {
    cb.tx_backlog = backlog;
    cb.tx_stall_timeout = stall;
    la = std::make_unique<PairLink>(ca, a.inside);
    lb = std::make_unique<PairLink>(cb, b.inside);
    path = std::make_unique<ForwardPath>(*lb);
    d = std::make_unique<Dispatcher>(path->worker, *la, 0, path->graph);
    d->attach(a.inside);
  }
  ~SlowPeer() {
    d->detach();
    lb->close_tx();  // (before path's io_context goes)
  }
  void send(std::uint32_t from, std::uint32_t n) {
    for (std::uint32_t i = from; i < from + n; ++i) {
      const Bytes f = numbered(i, 200);
      REQUIRE(::send(a.outside, f.data(), f.size(), 0) == 200);
    }
  }
  // Reads what b's peer has; returns the sequence numbers.
  std::vector<std::uint32_t> read() {
    std::vector<std::uint32_t> out;
    std::uint8_t buf[2048];
    for (ssize_t n; (n = ::recv(b.outside, buf, sizeof buf, MSG_DONTWAIT)) > 0;)
      out.push_back(get32(Bytes(buf, buf + n), 14));
    return out;
  }
  void run_for(std::chrono::milliseconds t) {
    path->io.run_for(t);
    path->io.restart();
  }
  Pair a, b;
  LinkConfig ca, cb;
  std::unique_ptr<PairLink> la, lb;
  std::unique_ptr<ForwardPath> path;
  std::unique_ptr<Dispatcher> d;
};

}  // namespace

TEST_CASE("back-pressure: a slow peer gets every frame in order while the feeder waits") {
  const std::string type = GENERATE(std::string("unix"), std::string("tap"));
  INFO("b is written as a " << (type == "tap" ? "tap (write per frame)" : "socket"));
  SlowPeer t(64, std::chrono::seconds(5), type);
  t.send(0, 2000);
  t.run_for(std::chrono::milliseconds(100));
  // b's socket and its backlog are full: the dispatcher stopped reading a.
  const std::uint64_t read_while_full = t.la->totals().rx_packets;
  CHECK(read_while_full < 2000);
  t.run_for(std::chrono::milliseconds(100));
  CHECK(t.la->totals().rx_packets == read_while_full);
  // The peer reads; everything arrives.
  std::vector<std::uint32_t> got;
  for (int i = 0; i < 2000 && got.size() < 2000; ++i) {
    const auto more = t.read();
    got.insert(got.end(), more.begin(), more.end());
    t.run_for(std::chrono::milliseconds(1));
  }
  std::vector<std::uint32_t> want(2000);
  for (std::uint32_t i = 0; i < 2000; ++i)
    want[i] = i;
  CHECK(got == want);
  CHECK(t.lb->totals().total_drops() == 0);
  CHECK(t.lb->totals().tx_packets == 2000);
  INFO("frames a's dispatcher had read while b was full: " << read_while_full);
}

TEST_CASE(
    "back-pressure: a stalled peer stops holding the feeder and frames over tx_backlog count") {
  SlowPeer t(16, std::chrono::milliseconds(50));
  t.send(0, 1000);
  t.run_for(std::chrono::milliseconds(400));
  // After 50 ms without progress fdlinkd reads a again: all 1000 read, the backlog's 16 kept,
  // what b's socket holds sent, the rest counted.
  const CounterValues va = t.la->totals(), vb = t.lb->totals();
  CHECK(va.rx_packets == 1000);
  CHECK(vb.drop(DropReason::tx_backlog_full) > 0);
  CHECK(vb.drop(DropReason::tx_queue_full) == 0);
  CHECK(vb.tx_packets + vb.drop(DropReason::tx_backlog_full) + 16 == 1000);
  // The peer reads again: the frames that waited follow what it had, in order.
  std::vector<std::uint32_t> got;
  for (int i = 0; i < 200; ++i) {
    const auto more = t.read();
    got.insert(got.end(), more.begin(), more.end());
    t.run_for(std::chrono::milliseconds(1));
  }
  REQUIRE(got.size() == t.lb->totals().tx_packets);
  for (std::size_t i = 0; i < got.size(); ++i)
    REQUIRE(got[i] == i);
  CHECK(t.lb->totals().tx_packets == 1000 - t.lb->totals().drop(DropReason::tx_backlog_full));
}
