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
#include "sink/forward.hpp"
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
  LinkConfig ca, cb;
  ca.name = "a";
  ca.sink = "to-b";
  ca.type = cb.type = LinkType::unix_socket;
  ca.dispatch = mode;
  cb.name = "b";
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
  LinkConfig ca, cb;
  ca.name = "a";
  ca.sink = "to-b";
  ca.type = LinkType::tap;
  ca.vnet_hdr = true;
  ca.rx_batch = 16;
  cb.name = "b";
  cb.type = LinkType::unix_socket;
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

TEST_CASE("forwarding with readv allocates nothing per frame") {
  check_no_allocation(DispatchMode::readv, 1);
}

TEST_CASE("forwarding with recvmmsg allocates nothing per frame") {
  check_no_allocation(DispatchMode::recvmmsg, 1);
}

TEST_CASE("forwarding spread over two fds by flow hash allocates nothing per frame") {
  check_no_allocation(DispatchMode::recvmmsg, 2);
}
