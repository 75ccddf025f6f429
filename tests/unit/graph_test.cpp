// The stage graph on real fds: socketpairs stand in for links; frames go through the real
// dispatcher, graph, sinks, egress and writer.
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <functional>
#include <vector>

#include "config/config.hpp"
#include "core/virtio_net.hpp"
#include "dispatch/dispatcher.hpp"
#include "frames.hpp"
#include "link/link.hpp"
#include "sink/drop.hpp"
#include "sink/filter.hpp"
#include "sink/forward.hpp"
#include "sink/graph.hpp"
#include "sink/reflect.hpp"
#include "sink/tee.hpp"
#include "test_worker.hpp"

using namespace fdlinkd;
using namespace fdlinkd::test;

namespace {

LinkConfig link_config(const std::string& name, const std::string& sink,
                       const std::string& type = "unix", bool vnet = false) {
  return config_of(name, type, sink,
                   std::string("tx_backlog = 0\n") + (vnet ? "vnet_hdr = true\n" : ""));
}

Bytes recv_bytes(int fd) {
  Bytes b(70000);
  const ssize_t n = ::recv(fd, b.data(), b.size(), MSG_DONTWAIT);
  b.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return b;
}

// A TCP/IPv4 frame whose checksum field holds only the pseudo-header sum, as a sender with
// checksum offload leaves it (NEEDS_CSUM, csum_start 38, csum_offset 16).
Bytes partial_tcp_frame() {
  Bytes f = tcp4_frame(300, 0x18);
  std::uint32_t pseudo = get16(f, 26) + get16(f, 28) + get16(f, 30) + get16(f, 32) + 6 +
                         static_cast<std::uint32_t>(f.size() - 38);
  while (pseudo >> 16)
    pseudo = (pseudo & 0xFFFF) + (pseudo >> 16);
  put16(f, 38 + 16, pseudo);
  return f;
}

VirtioNetHdr needs_csum_header() {
  VirtioNetHdr h;
  h.flags = VirtioNetHdr::kNeedsCsum;
  h.csum_start = 38;
  h.csum_offset = 16;
  h.hdr_len = 70;
  return h;
}

}  // namespace

// The bug this graph was built to fix: egress used to finish the checksum in place for the
// plain link, so the vnet link behind it got a finished checksum with NEEDS_CSUM still set
// (the kernel then adds the data a second time: a wrong checksum on the wire).
TEST_CASE("a tee sends a NEEDS_CSUM frame to a plain and a vnet link - in both orders - intact") {
  for (bool plain_first : {true, false}) {
    Pair in, plain, vnet;
    PairLink lin(link_config("in", "tee", "tap", true), in.inside);
    PairLink lplain(link_config("plain", "x"), plain.inside);
    PairLink lvnet(link_config("vnet", "x", "tap", true), vnet.inside);
    boost::asio::io_context io;
    Worker w(io, 0, 2048, 65600);
    Graph g(1, 64);
    std::vector<Graph::Target> outs = {{&lplain}, {&lvnet}};
    if (!plain_first) std::swap(outs[0], outs[1]);
    g.add("tee", std::make_unique<TeeSink>(2), outs);
    Dispatcher d(w, lin, 0, g);
    d.attach(in.inside);

    const Bytes f = partial_tcp_frame();
    const VirtioNetHdr h = needs_csum_header();
    Bytes msg(sizeof h);
    std::memcpy(msg.data(), &h, sizeof h);
    msg.insert(msg.end(), f.begin(), f.end());
    REQUIRE(::send(in.outside, msg.data(), msg.size(), 0) == static_cast<ssize_t>(msg.size()));
    run_until(io, [&] { return lplain.totals().tx_packets + lvnet.totals().tx_packets == 2; });

    INFO("plain link first: " << plain_first);
    const Bytes got_plain = recv_bytes(plain.outside);
    REQUIRE(got_plain.size() == f.size());
    CHECK(verify_l4(got_plain, 4, 14, 38, 6) == 0);  // finished: a receiver accepts it
    Bytes rest_plain = got_plain, rest_in = f;
    put16(rest_plain, 54, 0);
    put16(rest_in, 54, 0);
    CHECK(rest_plain == rest_in);  // nothing but the checksum changed

    const Bytes got_vnet = recv_bytes(vnet.outside);
    REQUIRE(got_vnet.size() == sizeof h + f.size());
    VirtioNetHdr hv;
    std::memcpy(&hv, got_vnet.data(), sizeof hv);
    CHECK(hv.flags == VirtioNetHdr::kNeedsCsum);  // still left to the kernel...
    CHECK(hv.csum_start == 38);
    CHECK(hv.csum_offset == 16);
    CHECK(Bytes(got_vnet.begin() + sizeof h, got_vnet.end()) == f);  // ...on the bytes as sent
  }
}

TEST_CASE("a tee copies nothing when no output changes the frame") {
  Pair in, a, b;
  PairLink lin(link_config("in", "tee"), in.inside);
  PairLink la(link_config("a", "x"), a.inside), lb(link_config("b", "x"), b.inside);
  boost::asio::io_context io;
  Worker w(io, 0, 2048, 2048);
  Graph g(1, 64);
  g.add("tee", std::make_unique<TeeSink>(2), {{&la}, {&lb}});
  Dispatcher d(w, lin, 0, g);
  d.attach(in.inside);
  const Bytes f = tcp4_frame(100, 0x10);
  for (int i = 0; i < 10; ++i)
    REQUIRE(::send(in.outside, f.data(), f.size(), 0) > 0);
  run_until(io, [&] { return lb.totals().tx_packets == 10; });
  CHECK(la.totals().tx_packets == 10);
  for (int i = 0; i < 10; ++i) {
    CHECK(recv_bytes(a.outside) == f);
    CHECK(recv_bytes(b.outside) == f);
  }
  // Every copy slot is still free: a reflect behind the tee gets all of them.
  Frame probe;
  Bytes big(100);
  probe.data = big.data();
  probe.len = 100;
  std::size_t copies = 0;
  Frame owner;
  owner.holders = 2;
  probe.origin = &owner;
  while (copies < 10000 && w.copies.copy(probe))
    ++copies;
  CHECK(copies == Worker::kSmallCopies + Worker::kLargeCopies);
}

TEST_CASE("sinks chain: forward to a tee to two links and a drop that counts") {
  Pair in, a, b;
  PairLink lin(link_config("in", "first"), in.inside);
  PairLink la(link_config("a", "x"), a.inside), lb(link_config("b", "x"), b.inside);
  boost::asio::io_context io;
  Worker w(io, 0, 2048, 2048);
  Graph g(1, 64);
  g.add("first", std::make_unique<ForwardSink>(), {{nullptr, 1}});
  g.add("tee", std::make_unique<TeeSink>(3), {{&la}, {nullptr, 2}, {&lb}});
  g.add("count", std::make_unique<DropSink>(), {});
  Dispatcher d(w, lin, 0, g);
  d.attach(in.inside);
  for (int i = 0; i < 5; ++i) {
    const Bytes f = tcp4_frame(50 + static_cast<std::size_t>(i), 0x10);
    REQUIRE(::send(in.outside, f.data(), f.size(), 0) > 0);
  }
  run_until(io, [&] { return lb.totals().tx_packets == 5; });
  CHECK(la.totals().tx_packets == 5);
  const auto c = g.counters(2);
  REQUIRE(c.size() == 2);
  CHECK(c[0] == 5);
  CHECK(c[1] == 5 * (70 + 50) + 0 + 1 + 2 + 3 + 4);
  for (int i = 0; i < 5; ++i)
    CHECK(recv_bytes(a.outside).size() == 120 + static_cast<std::size_t>(i));
}

TEST_CASE("reflect swaps the MACs and sends the frame back where it came from") {
  Pair p0, p1;
  PairLink l0(link_config("l0", "echo"), p0.inside), l1(link_config("l1", "echo"), p1.inside);
  l1.set_index(1);
  boost::asio::io_context io;
  Worker w(io, 0, 2048, 2048);
  Graph g(1, 64);
  g.add("echo", std::make_unique<ReflectSink>(std::vector<std::size_t>{0, 1}), {{&l0}, {&l1}});
  Dispatcher d0(w, l0, 0, g), d1(w, l1, 0, g);
  d0.attach(p0.inside);
  d1.attach(p1.inside);
  Bytes f = tcp4_frame(20, 0x10);
  for (std::size_t i = 0; i < 12; ++i)
    f[i] = static_cast<std::uint8_t>(i + 1);
  REQUIRE(::send(p1.outside, f.data(), f.size(), 0) > 0);
  run_until(io, [&] { return l1.totals().tx_packets == 1; });
  const Bytes back = recv_bytes(p1.outside);
  REQUIRE(back.size() == f.size());
  CHECK(Bytes(back.begin(), back.begin() + 6) == Bytes(f.begin() + 6, f.begin() + 12));
  CHECK(Bytes(back.begin() + 6, back.begin() + 12) == Bytes(f.begin(), f.begin() + 6));
  CHECK(Bytes(back.begin() + 12, back.end()) == Bytes(f.begin() + 12, f.end()));
  CHECK(l0.totals().tx_packets == 0);
  CHECK(g.counters(0)[0] == 1);
}

namespace {

const char* kTwoLinks = R"(
[[link]]
name = "a"
type = "af_packet"
interface = "veth-a"
sink = "s1"

[[link]]
name = "b"
type = "af_packet"
interface = "veth-b"
sink = "s2"
)";

std::vector<ConfigError> graph_errors(const std::string& sinks) {
  auto r = parse_config(std::string(kTwoLinks) + sinks, "g.toml");
  REQUIRE_FALSE(r.config.has_value());
  return r.errors;
}

}  // namespace

TEST_CASE("graph config: sinks that form a cycle are refused at the output that closes it") {
  const auto errs = graph_errors(R"(
[[sink]]
name = "s1"
type = "forward"
to = "s2"
[[sink]]
name = "s2"
type = "tee"
to = ["b", "s1"]
)");
  REQUIRE(errs.size() == 1);
  CHECK(errs[0].line == 21);
  CHECK(errs[0].column == 12);
  CHECK_THAT(errs[0].message, Catch::Contains("sink \"s2\" sends to sink \"s1\", which leads back "
                                              "to it: the sinks form a cycle"));
}

TEST_CASE("graph config: a name that is neither a link nor a sink - and a name given twice") {
  const auto errs = graph_errors(R"(
[[sink]]
name = "s1"
type = "tee"
to = ["b", "nowhere", "b"]
[[sink]]
name = "s2"
type = "forward"
to = "a"
)");
  REQUIRE(errs.size() == 1);
  CHECK(errs[0].line == 17);
  CHECK(errs[0].column == 23);
  CHECK_THAT(errs[0].message, Catch::Contains("names \"b\" twice"));
  const auto errs2 = graph_errors(R"(
[[sink]]
name = "s1"
type = "tee"
to = ["b", "nowhere"]
[[sink]]
name = "s2"
type = "forward"
to = "a"
)");
  REQUIRE(errs2.size() == 1);
  CHECK(errs2[0].to_string() ==
        "g.toml:17:12: sink \"s1\" sends to \"nowhere\", which is neither a link nor a sink");
}

TEST_CASE("graph config: IP packets from a TUN never reach an Ethernet-only sink or link") {
  auto r = parse_config(R"([[link]]
name = "t"
type = "tun"
interface = "tun0"
sink = "first"
[[link]]
name = "e"
type = "af_packet"
interface = "eth0"
sink = "echo"
[[sink]]
name = "first"
type = "forward"
to = "echo"
[[sink]]
name = "echo"
type = "reflect"
)",
                        "g.toml");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].to_string() ==
        "g.toml:5:8: link \"t\" (tun, IP packets) cannot use sink \"first\": sink \"echo\", after "
        "it, takes only Ethernet frames (type reflect)");
}

TEST_CASE("graph config: a chain of sinks that ends at links is accepted") {
  auto r = parse_config(std::string(kTwoLinks) + R"(
[[sink]]
name = "s1"
type = "tee"
to = ["s2", "count"]
[[sink]]
name = "s2"
type = "forward"
to = "b"
[[sink]]
name = "count"
type = "drop"
)",
                        "g.toml");
  INFO((r.errors.empty() ? "" : r.errors[0].to_string()));
  CHECK(r.config.has_value());
}

TEST_CASE("filter: matching frames go to match - the rest to nomatch - and both are counted") {
  Pair in, m, n;
  PairLink lin(link_config("in", "f"), in.inside);
  PairLink lm(link_config("m", "x"), m.inside), ln(link_config("n", "x"), n.inside);
  boost::asio::io_context io;
  Worker w(io, 0, 2048, 2048);
  Graph g(1, 64);
  auto prog = std::make_shared<BpfProgram>("tcp dst port 5201");
  REQUIRE(prog->ok());
  g.add("f", std::make_unique<FilterSink>(prog, 0, 1), {{&lm}, {&ln}});
  Dispatcher d(w, lin, 0, g);
  d.attach(in.inside);
  const Bytes tcp = tcp4_frame(20, 0x10);  // to port 5201
  Bytes other = tcp;
  put16(other, 40, 80);
  for (const Bytes* f : std::initializer_list<const Bytes*>{&tcp, &other, &tcp})
    REQUIRE(::send(in.outside, f->data(), f->size(), 0) > 0);
  run_until(io, [&] { return lm.totals().tx_packets + ln.totals().tx_packets == 3; });
  CHECK(lm.totals().tx_packets == 2);
  CHECK(ln.totals().tx_packets == 1);
  CHECK(recv_bytes(n.outside) == other);
  const auto c = g.counters(0);
  CHECK(c[0] == 2);  // matched
  CHECK(c[1] == 1);  // unmatched
  CHECK(c[2] == 0);  // dropped: both sides have an output
}

TEST_CASE("filter: a bad expression carries libpcap's message") {
  BpfProgram p("tcp port");
  CHECK_FALSE(p.ok());
  CHECK_THAT(p.error(), Catch::Contains("syntax error"));
  BpfProgram q("vlan 10 and icmp");
  CHECK(q.ok());
}

// no_buffer: a tee of frames whose checksum each plain output must finish needs a private copy
// per output but the last; a batch of 400 such frames to three outputs needs 800, more than a
// worker's 512 copy slots. What does not get a slot is dropped as no_buffer on the sending
// link, and every frame is either sent (with a right checksum) or counted.
TEST_CASE("a tee that needs more copies than a worker has drops the rest as no_buffer") {
  Pair in(SOCK_SEQPACKET, 4 << 20);
  std::vector<Pair> outs(3);
  LinkConfig cin = link_config("in", "tee", "tap", true);
  cin.rx_batch = 1024;
  PairLink lin(cin, in.inside);
  std::vector<std::unique_ptr<PairLink>> links;
  std::vector<Graph::Target> targets;
  for (std::size_t i = 0; i < outs.size(); ++i) {
    int big = 4 << 20;
    ::setsockopt(outs[i].inside, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big);
    links.push_back(
        std::make_unique<PairLink>(link_config("out" + std::to_string(i), "x"), outs[i].inside));
    targets.push_back({links.back().get()});
  }
  boost::asio::io_context io;
  Worker w(io, 0, 2048, 65600);
  Graph g(1, 1024);
  g.add("tee", std::make_unique<TeeSink>(3), targets);
  const Bytes f = partial_tcp_frame();
  const VirtioNetHdr h = needs_csum_header();
  Bytes msg(sizeof h);
  std::memcpy(msg.data(), &h, sizeof h);
  msg.insert(msg.end(), f.begin(), f.end());
  constexpr int kFrames = 400;
  for (int i = 0; i < kFrames; ++i)  // queued before the dispatcher reads: one batch
    REQUIRE(::send(in.outside, msg.data(), msg.size(), 0) == static_cast<ssize_t>(msg.size()));
  Dispatcher d(w, lin, 0, g);
  d.attach(in.inside);
  std::uint64_t sent = 0, no_buffer = 0;
  run_until(io, [&] {
    sent = no_buffer = 0;
    for (auto& l : links) {
      sent += l->totals().tx_packets;
      no_buffer += l->totals().drop(DropReason::no_buffer);
    }
    return sent + no_buffer == 3 * kFrames;
  });
  CHECK(lin.totals().rx_packets == kFrames);
  CHECK(sent + no_buffer == 3 * kFrames);
  CHECK(no_buffer > 0);
  CHECK(lin.totals().drop(DropReason::no_buffer) == 0);  // on the sending links only
  for (auto& p : outs)
    for (Bytes got = recv_bytes(p.outside); !got.empty(); got = recv_bytes(p.outside))
      REQUIRE(verify_l4(got, 4, 14, 38, 6) == 0);
}
