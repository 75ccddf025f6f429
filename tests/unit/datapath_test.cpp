// The data path on real fds: socketpairs stand in for two links; the real dispatcher, forward
// sink and writer move the frames, and the counters must say what happened to each one.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <vector>

#include "core/virtio_net.hpp"
#include "dispatch/dispatcher.hpp"
#include "link/link.hpp"
#include "link/link_types.hpp"
#include "offload/vlan.hpp"
#include "sink/forward.hpp"
#include "test_worker.hpp"
#include "writer/writer.hpp"

using namespace fdlinkd;
using namespace fdlinkd::test;

namespace {

LinkConfig link_config(const std::string& name, const std::string& type = "unix") {
  return config_of(name, type, "to-b",
                   type == "unix" ? "rx_batch = 8\ntx_backlog = 0" : "rx_batch = 8");
}

std::vector<std::uint8_t> frame(std::size_t len, std::uint8_t tag) {
  std::vector<std::uint8_t> f(len);
  for (std::size_t i = 0; i < len; ++i)
    f[i] = static_cast<std::uint8_t>(tag + i);
  return f;
}

}  // namespace

namespace {

// Link a (read in `mode`) forwarding to link b, each over a socketpair; a is being read.
struct OneWay {
  explicit OneWay(DispatchMode mode)
      : la(config_a(mode), a.inside), lb(link_config("b"), b.inside) {
    d.attach(a.inside);
  }
  static LinkConfig config_a(DispatchMode mode) {
    auto c = link_config("a");
    c.dispatch = mode;
    return c;
  }
  Pair a, b;
  PairLink la, lb;
  test::ForwardPath path{lb};
  Dispatcher d{path.worker, la, 0, path.graph};
};

}  // namespace

TEST_CASE("forwarded frames arrive whole and in order and bad ones are counted") {
  Pair a, b;
  PairLink la(link_config("a"), a.inside), lb(link_config("b"), b.inside);
  test::ForwardPath path(lb);
  auto& io = path.io;
  Dispatcher d(path.worker, la, 0, path.graph);

  std::vector<std::vector<std::uint8_t>> good;
  for (int i = 0; i < 20; ++i)
    good.push_back(frame(60 + static_cast<std::size_t>(i), static_cast<std::uint8_t>(i)));
  // Interleave a runt (shorter than an Ethernet header) and an oversize frame.
  for (int i = 0; i < 20; ++i) {
    REQUIRE(::send(a.outside, good[i].data(), good[i].size(), 0) ==
            static_cast<ssize_t>(good[i].size()));
    if (i == 5) REQUIRE(::send(a.outside, "tiny", 4, 0) == 4);
    if (i == 9) {
      auto big = frame(3000, 7);
      REQUIRE(::send(a.outside, big.data(), big.size(), 0) == 3000);
    }
  }
  d.attach(a.inside);
  run_until(io, [&] { return la.totals().rx_packets == 22; });

  std::vector<std::uint8_t> buf(4096);
  for (int i = 0; i < 20; ++i) {
    const ssize_t n = ::recv(b.outside, buf.data(), buf.size(), 0);
    REQUIRE(n == static_cast<ssize_t>(good[i].size()));
    CHECK(std::memcmp(buf.data(), good[i].data(), good[i].size()) == 0);
  }
  CHECK(::recv(b.outside, buf.data(), buf.size(), 0) < 0);  // nothing else came out

  const CounterValues ra = la.totals(), rb = lb.totals();
  CHECK(ra.rx_packets == 22);
  CHECK(ra.drop(DropReason::runt) == 1);
  CHECK(ra.drop(DropReason::oversize) == 1);
  CHECK(rb.tx_packets == 20);
  CHECK(ra.rx_packets == rb.tx_packets + ra.total_drops() + rb.total_drops());
}

TEST_CASE("recvmmsg dispatch reads the same frames as readv") {
  Pair a, b;
  auto ca = link_config("a");
  ca.dispatch = DispatchMode::recvmmsg;
  PairLink la(ca, a.inside), lb(link_config("b"), b.inside);
  test::ForwardPath path(lb);
  auto& io = path.io;
  Dispatcher d(path.worker, la, 0, path.graph);
  for (int i = 0; i < 30; ++i) {  // more than one batch of 8
    auto f = frame(100, static_cast<std::uint8_t>(i));
    REQUIRE(::send(a.outside, f.data(), f.size(), 0) == 100);
  }
  auto big = frame(1519, 1);  // one byte over 1500 + 18
  REQUIRE(::send(a.outside, big.data(), big.size(), 0) == 1519);
  d.attach(a.inside);
  run_until(io, [&] { return la.totals().rx_packets == 31; });
  CHECK(lb.totals().tx_packets == 30);
  CHECK(la.totals().drop(DropReason::oversize) == 1);
  std::vector<std::uint8_t> buf(2048);
  for (int i = 0; i < 30; ++i) {
    REQUIRE(::recv(b.outside, buf.data(), buf.size(), 0) == 100);
    CHECK(buf[0] == static_cast<std::uint8_t>(i));
  }
}

TEST_CASE("a peer hanging up ends the dispatcher and tells the link") {
  Pair a, b;
  PairLink la(link_config("a"), a.inside), lb(link_config("b"), b.inside);
  test::ForwardPath path(lb);
  auto& io = path.io;
  Dispatcher d(path.worker, la, 0, path.graph);
  d.attach(a.inside);
  ::shutdown(a.outside, SHUT_WR);
  run_until(io, [&] { return la.eof; });
  CHECK(la.eof);
}

TEST_CASE("an oversize message counts its whole length in rx_bytes - in both receive modes") {
  for (auto mode : {DispatchMode::readv, DispatchMode::recvmmsg}) {
    OneWay t(mode);
    auto& la = t.la;
    auto& lb = t.lb;
    for (std::size_t size : {100, 1519, 70000, 60}) {  // 70000: past the old overflow area too
      const auto f = frame(size, 3);
      REQUIRE(::send(t.a.outside, f.data(), f.size(), 0) == static_cast<ssize_t>(size));
    }
    run_until(t.path.io, [&] { return la.totals().rx_packets == 4; });
    INFO("mode " << static_cast<int>(mode));
    CHECK(la.totals().rx_bytes == 100 + 1519 + 70000 + 60);
    CHECK(la.totals().drop(DropReason::oversize) == 2);
    CHECK(lb.totals().tx_packets == 2);
  }
}

TEST_CASE("a zero-length message is a runt and the connection goes on") {
  for (auto mode : {DispatchMode::readv, DispatchMode::recvmmsg}) {
    OneWay t(mode);
    auto& la = t.la;
    auto& lb = t.lb;
    const auto f = frame(60, 1);
    REQUIRE(::send(t.a.outside, f.data(), 0, 0) == 0);
    REQUIRE(::send(t.a.outside, f.data(), f.size(), 0) == 60);
    run_until(t.path.io, [&] { return la.totals().rx_packets == 2; });
    CHECK(la.totals().drop(DropReason::runt) == 1);
    CHECK(lb.totals().tx_packets == 1);
    CHECK_FALSE(la.eof);
  }
}

TEST_CASE("a full egress queue drops frames as tx_queue_full and counts every one") {
  Pair b;
  const int small = 4096;
  REQUIRE(::setsockopt(b.inside, SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
  PairLink lb(link_config("b"), b.inside);
  Batch batch(64, 1518);
  std::uint64_t offered = 0;
  for (int round = 0; round < 20; ++round) {
    batch.clear();
    for (std::size_t i = 0; i < 64; ++i)
      batch.push(batch.slot(i), 1000);
    offered += 64;
    lb.transmit(test::worker(), batch);
  }
  const CounterValues v = lb.totals();
  CHECK(v.drop(DropReason::tx_queue_full) > 0);
  CHECK(v.tx_packets > 0);
  CHECK(v.tx_packets + v.total_drops() == offered);
}

TEST_CASE("frames over the egress MTU are dropped as too_big - the rest are sent") {
  Pair b;
  auto cb = link_config("b");
  cb.mtu = 500;  // frames up to 518 bytes
  PairLink lb(cb, b.inside);
  Batch batch(4, 2000);
  batch.push(batch.slot(0), 518);
  batch.push(batch.slot(1), 519);
  batch.push(batch.slot(2), 100);
  lb.transmit(test::worker(), batch);
  const CounterValues v = lb.totals();
  CHECK(v.tx_packets == 2);
  CHECK(v.drop(DropReason::too_big) == 1);
  std::vector<std::uint8_t> buf(2048);
  CHECK(::recv(b.outside, buf.data(), buf.size(), 0) == 518);
  CHECK(::recv(b.outside, buf.data(), buf.size(), 0) == 100);
}

TEST_CASE("an egress link without an fd drops under no_peer or link_down") {
  Batch batch(4, 1518);
  batch.push(batch.slot(0), 60);
  batch.push(batch.slot(1), 60);
  // (the real link types, not opened: no fd)
  auto unix_link = make_link(link_config("u"));
  unix_link->transmit(test::worker(), batch);
  CHECK(unix_link->totals().drop(DropReason::no_peer) == 2);
  auto afp = make_link(link_config("p", "af_packet"));
  afp->transmit(test::worker(), batch);
  CHECK(afp->totals().drop(DropReason::link_down) == 2);
}

TEST_CASE("a peer that went away counts as no_peer on transmit") {
  Pair b;
  PairLink lb(link_config("b"), b.inside);
  ::close(b.outside);
  b.outside = ::open("/dev/null", O_RDONLY);  // keep ~Pair's close harmless
  Batch batch(4, 1518);
  batch.push(batch.slot(0), 60);
  batch.push(batch.slot(1), 60);
  lb.transmit(test::worker(), batch);
  CHECK(lb.totals().drop(DropReason::no_peer) == 2);
}

TEST_CASE("every drop reason has a distinct name") {
  std::set<std::string_view> names;
  for (std::size_t r = 0; r < kDropReasonCount; ++r) {
    auto n = drop_reason_name(static_cast<DropReason>(r));
    CHECK_FALSE(n.empty());
    CHECK_FALSE(drop_reason_help(static_cast<DropReason>(r)).empty());
    names.insert(n);
  }
  CHECK(names.size() == kDropReasonCount);
}

TEST_CASE("a VLAN tag taken out by the kernel goes back between the MACs and the type") {
  std::vector<std::uint8_t> buf(128 + 64);
  std::uint8_t* data = buf.data() + 128;
  for (std::size_t i = 0; i < 64; ++i)
    data[i] = static_cast<std::uint8_t>(i + 1);
  VirtioNetHdr h;
  h.flags = VirtioNetHdr::kNeedsCsum;
  h.csum_start = 34;
  h.csum_offset = 16;
  h.hdr_len = 54;
  std::memcpy(data - sizeof h, &h, sizeof h);
  const std::vector<std::uint8_t> before(data, data + 64);

  std::size_t len = 64;
  std::uint8_t* out = put_vlan_tag_back(data, len, 0x88A8, 0xA064, true);
  REQUIRE(out == data - 4);
  REQUIRE(len == 68);
  CHECK(std::vector<std::uint8_t>(out, out + 12) ==
        std::vector<std::uint8_t>(before.begin(), before.begin() + 12));
  CHECK(std::vector<std::uint8_t>(out + 12, out + 16) ==
        std::vector<std::uint8_t>{0x88, 0xA8, 0xA0, 0x64});
  CHECK(std::vector<std::uint8_t>(out + 16, out + 68) ==
        std::vector<std::uint8_t>(before.begin() + 12, before.end()));
  VirtioNetHdr moved;
  std::memcpy(&moved, out - sizeof moved, sizeof moved);
  CHECK(moved.csum_start == 38);  // the kernel counted without the tag
  CHECK(moved.csum_offset == 16);
  CHECK(moved.hdr_len == 58);

  std::size_t runt = 10;  // shorter than two MAC addresses: left alone
  CHECK(put_vlan_tag_back(data, runt, 0x8100, 1, false) == data);
  CHECK(runt == 10);
}
