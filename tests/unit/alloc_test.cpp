// No heap allocation per frame: after a warm-up, forwarding bursts of frames through the real
// dispatcher, forward sink and writer must not call operator new at all. This binary replaces
// the global operator new with a counting one, so it is built on its own.
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <new>
#include <vector>

#include "dispatch/dispatcher.hpp"
#include "link/link.hpp"
#include "sink/bridge.hpp"
#include "sink/filter.hpp"
#include "sink/forward.hpp"
#include "sink/tee.hpp"
#include "test_worker.hpp"

namespace {
std::atomic<std::size_t> g_allocations{0};
}

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  return operator new(n);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}

using namespace fdlinkd;
using namespace fdlinkd::test;

namespace {

// Frames of 64 different UDP flows, so a 2-fd egress link spreads them over both fds.
std::vector<std::vector<std::uint8_t>> udp_frames(int n) {
  std::vector<std::vector<std::uint8_t>> out;
  for (int i = 0; i < n; ++i) {
    std::vector<std::uint8_t> f(100, 0);
    f[12] = 0x08;  // IPv4
    f[14] = 0x45;
    f[23] = 17;                                 // UDP
    f[34] = static_cast<std::uint8_t>(i % 64);  // source port varies by flow
    out.push_back(std::move(f));
  }
  return out;
}

// Sends `frames` into `in`, runs the dispatcher until all are forwarded, drains the outputs.
void burst(boost::asio::io_context& io, int in, const std::vector<int>& outs, Link& from,
           const std::vector<std::vector<std::uint8_t>>& frames) {
  const std::uint64_t before = from.totals().rx_packets;
  for (const auto& f : frames)
    REQUIRE(::send(in, f.data(), f.size(), 0) == 100);
  while (from.totals().rx_packets < before + frames.size()) {
    io.run_one_for(std::chrono::milliseconds(100));
  }
  std::uint8_t buf[2048];
  for (int o : outs)
    while (::recv(o, buf, sizeof buf, MSG_DONTWAIT) > 0) {
    }
}

void check_no_allocation(DispatchMode mode, unsigned egress_fds) {
  Pair a(SOCK_SEQPACKET, 4 << 20);
  std::vector<Pair> b;
  for (unsigned i = 0; i < egress_fds; ++i)
    b.emplace_back(SOCK_SEQPACKET, 4 << 20);
  LinkConfig ca = config_of("a", "unix", "to-b", "tx_backlog = 0"),
             cb = config_of("b", "unix", "to-a", "tx_backlog = 0");
  ca.dispatch = mode;
  cb.fds = egress_fds;
  std::vector<int> b_inside, b_outside;
  for (auto& p : b) {
    b_inside.push_back(p.inside);
    b_outside.push_back(p.outside);
  }
  PairLink la(ca, {a.inside}), lb(cb, b_inside);
  test::ForwardPath path(lb);
  auto& io = path.io;
  Dispatcher d(path.worker, la, 0, path.graph);
  d.attach(a.inside);
  const auto frames = udp_frames(500);

  burst(io, a.outside, b_outside, la, frames);  // warm-up: Asio's handler memory, caches
  const std::size_t start = g_allocations.load();
  for (int round = 0; round < 10; ++round)
    burst(io, a.outside, b_outside, la, frames);
  const std::size_t allocations = g_allocations.load() - start;

  const CounterValues vb = lb.totals();
  CHECK(vb.tx_packets == 11 * frames.size());
  if (egress_fds > 1) {
    CHECK(lb.port_totals(0).tx_packets > 0);
    CHECK(lb.port_totals(1).tx_packets > 0);
  }
  INFO("operator new calls while forwarding 5000 frames: " << allocations);
  CHECK(allocations == 0);
}

}  // namespace

TEST_CASE("segmenting TCP super-frames from a vnet link allocates nothing per segment") {
  // A TAP-like link with virtio-net headers hands 5000-byte TCP super-frames (GSO, MSS 1448)
  // to a plain link: each becomes 4 segments built in the dispatcher's spill batch.
  Pair a(SOCK_SEQPACKET, 4 << 20), b(SOCK_SEQPACKET, 4 << 20);
  LinkConfig ca = config_of("a", "tap", "to-b", "vnet_hdr = true\nrx_batch = 16"),
             cb = config_of("b", "unix", "to-a", "tx_backlog = 0");
  PairLink la(ca, {a.inside}), lb(cb, {b.inside});
  test::ForwardPath path(lb);
  auto& io = path.io;
  Dispatcher d(path.worker, la, 0, path.graph);
  d.attach(a.inside);

  std::vector<std::uint8_t> msg(10 + 54 + 5000, 0);
  std::uint8_t* f = msg.data() + 10;
  msg[1] = 1;  // gso_type TCPv4
  msg[4] = 1448 & 0xFF;
  msg[5] = 1448 >> 8;  // gso_size, little-endian
  f[12] = 0x08;
  f[14] = 0x45;
  f[16] = (40 + 5000) >> 8;
  f[17] = (40 + 5000) & 0xFF;
  f[23] = 6;
  f[46] = 0x50;  // TCP data offset
  auto round = [&] {
    const std::uint64_t before = la.totals().rx_packets;
    for (int i = 0; i < 50; ++i)
      REQUIRE(::send(a.outside, msg.data(), msg.size(), 0) > 0);
    while (la.totals().rx_packets < before + 50)
      io.run_one_for(std::chrono::milliseconds(100));
    std::uint8_t buf[2048];
    while (::recv(b.outside, buf, sizeof buf, MSG_DONTWAIT) > 0) {
    }
  };
  round();  // warm-up
  const std::size_t start = g_allocations.load();
  for (int i = 0; i < 10; ++i)
    round();
  const std::size_t allocations = g_allocations.load() - start;
  CHECK(lb.totals().tx_packets == 11 * 50 * 4);
  CHECK(lb.totals().gso_segments == 11 * 50 * 3);
  INFO("operator new calls while segmenting 500 super-frames: " << allocations);
  CHECK(allocations == 0);
}

TEST_CASE("waiting for a slow peer (back-pressure) allocates nothing per frame") {
  // b's socket holds a few frames; the rest wait in b's backlog while a's dispatcher is held
  // back, and go when the peer reads.
  Pair a(SOCK_SEQPACKET, 4 << 20), b(SOCK_SEQPACKET, 8192);
  LinkConfig ca = config_of("a", "unix", "to-b", "tx_backlog = 0"),
             cb = config_of("b", "unix", "to-a", "tx_backlog = 64");
  PairLink la(ca, {a.inside}), lb(cb, {b.inside});
  test::ForwardPath path(lb);
  auto& io = path.io;
  Dispatcher d(path.worker, la, 0, path.graph);
  d.attach(a.inside);
  const auto frames = udp_frames(500);
  std::uint64_t received = 0;
  auto round = [&] {
    for (const auto& f : frames)
      REQUIRE(::send(a.outside, f.data(), f.size(), 0) == 100);
    const std::uint64_t want = received + frames.size();
    std::uint8_t buf[2048];
    for (int i = 0; i < 100000 && received < want; ++i) {
      io.poll();
      io.restart();
      while (::recv(b.outside, buf, sizeof buf, MSG_DONTWAIT) > 0)
        ++received;
    }
  };
  round();  // warm-up: the backlog is made here, Asio's handler memory
  const std::size_t start = g_allocations.load();
  for (int i = 0; i < 10; ++i)
    round();
  const std::size_t allocations = g_allocations.load() - start;
  CHECK(received == 11 * frames.size());
  CHECK(lb.totals().total_drops() == 0);
  INFO("operator new calls while 5000 frames waited for a slow peer: " << allocations);
  CHECK(allocations == 0);
  d.detach();
  lb.close_tx();  // (before path's io_context goes)
}

TEST_CASE("forwarding with readv allocates nothing per frame") {
  check_no_allocation(DispatchMode::readv, 1);
}

TEST_CASE("forwarding with recvmmsg allocates nothing per frame") {
  check_no_allocation(DispatchMode::recvmmsg, 1);
}

TEST_CASE("forwarding spread over two fds by flow hash allocates nothing per frame") {
  check_no_allocation(DispatchMode::recvmmsg, 2);
}

namespace {

// Counts operator new calls while `frames` go 10 times through the graph `g` from link `in`
// (fed through `a`), after one warm-up round. Outputs are drained from `outs`.
std::size_t allocations_through(Graph& g, Worker& w, PairLink& in, Pair& a,
                                const std::vector<int>& outs,
                                const std::vector<std::vector<std::uint8_t>>& frames) {
  Dispatcher d(w, in, 0, g);
  d.attach(a.inside);
  burst(w.io, a.outside, outs, in, frames);
  const std::size_t start = g_allocations.load();
  for (int round = 0; round < 10; ++round)
    burst(w.io, a.outside, outs, in, frames);
  return g_allocations.load() - start;
}

LinkConfig unix_link(const std::string& name, const std::string& sink) {
  return config_of(name, "unix", sink, "tx_backlog = 0");
}

}  // namespace

TEST_CASE("a bridge flooding and forwarding allocates nothing per frame") {
  Pair p0(SOCK_SEQPACKET, 4 << 20), p1(SOCK_SEQPACKET, 4 << 20), p2(SOCK_SEQPACKET, 4 << 20);
  PairLink l0(unix_link("p0", "sw"), p0.inside), l1(unix_link("p1", "sw"), p1.inside),
      l2(unix_link("p2", "sw"), p2.inside);
  l1.set_index(1);
  l2.set_index(2);
  BridgeSettings s;
  s.ports = {"p0", "p1", "p2"};
  boost::asio::io_context io;
  Worker w(io, 0, 2048, 2048);
  Graph g(1, 64);
  auto bridge = std::make_unique<BridgeSink>(s, std::vector<std::uint16_t>{0, 1, 2}, 1);
  g.add("sw", std::move(bridge), {{&l0}, {&l1}, {&l2}});
  // 64 sources; half the frames are broadcast (flooded to two ports), half go to a MAC that
  // lives on port 2 (learned in the warm-up from a frame sent there).
  auto frames = udp_frames(500);
  for (std::size_t i = 0; i < frames.size(); ++i) {
    auto& f = frames[i];
    const std::uint8_t dst[6] = {0x02, 0, 0, 0, 0, 0x99};
    for (int b = 0; b < 6; ++b)
      f[b] = (i % 2) ? 0xFF : dst[b];
    f[6] = 0x02;
    f[11] = static_cast<std::uint8_t>(i % 64);
  }
  Dispatcher d2(w, l2, 0, g);
  d2.attach(p2.inside);
  std::vector<std::uint8_t> hello(60, 0);
  hello[0] = 0xFF;
  for (int b = 1; b < 6; ++b)
    hello[b] = 0xFF;
  hello[6] = 0x02;
  hello[11] = 0x99;
  REQUIRE(::send(p2.outside, hello.data(), hello.size(), 0) == 60);
  run_until(io, [&] { return l2.totals().rx_packets == 1; });
  const std::size_t n = allocations_through(g, w, l0, p0, {p1.outside, p2.outside}, frames);
  CHECK(l1.totals().tx_packets >= 11 * 250);
  CHECK(l2.totals().tx_packets >= 11 * 500);
  INFO("operator new calls while bridging 5000 frames: " << n);
  CHECK(n == 0);
}

TEST_CASE("a tee to a filter and a link allocates nothing per frame") {
  Pair a(SOCK_SEQPACKET, 4 << 20), b(SOCK_SEQPACKET, 4 << 20), c(SOCK_SEQPACKET, 4 << 20);
  PairLink la(unix_link("a", "tee"), a.inside), lb(unix_link("b", "x"), b.inside),
      lc(unix_link("c", "x"), c.inside);
  boost::asio::io_context io;
  Worker w(io, 0, 2048, 2048);
  Graph g(1, 64);
  g.add("tee", std::make_unique<TeeSink>(2), {{nullptr, 1}, {&lc}});
  auto prog = std::make_shared<BpfProgram>("udp and src port 768");
  REQUIRE(prog->ok());
  g.add("f", std::make_unique<FilterSink>(prog, 0, FilterSink::kNone), {{&lb}});
  const auto frames = udp_frames(500);
  const std::size_t n = allocations_through(g, w, la, a, {b.outside, c.outside}, frames);
  CHECK(lc.totals().tx_packets == 11 * 500);
  CHECK(lb.totals().tx_packets > 0);
  CHECK(lb.totals().tx_packets < 11 * 500);
  INFO("operator new calls while teeing and filtering 5000 frames: " << n);
  CHECK(n == 0);
}
