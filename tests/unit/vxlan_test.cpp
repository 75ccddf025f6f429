// The vxlan link on loopback: what it sends (the 8-byte header with the I flag and the VNI,
// then the inner frame), head-end replication to each static remote, and learning: a MAC seen
// behind one VTEP gets unicast there. The kernel-interop checks are in tests/e2e/vxlan_link.sh.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "dispatch/dispatcher.hpp"
#include "frames.hpp"
#include "link/vxlan.hpp"
#include "test_worker.hpp"

using namespace fdlinkd;
using namespace fdlinkd::test;

namespace {

std::uint16_t test_port() {
  return static_cast<std::uint16_t>(40000 + ::getpid() % 20000);
}

// A UDP socket bound to ip:port, standing in for a remote VTEP.
struct Vtep {
  Vtep(const char* ip, std::uint16_t port) {
    fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    ::inet_pton(AF_INET, ip, &addr.sin_addr);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~Vtep() { ::close(fd); }
  /// The source ports of what arrived.
  std::vector<std::uint16_t> source_ports() {
    std::vector<std::uint16_t> out;
    std::uint8_t buf[2048];
    sockaddr_in from{};
    socklen_t len = sizeof from;
    while (::recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &len) >
           0) {
      out.push_back(ntohs(from.sin_port));
      len = sizeof from;
    }
    return out;
  }
  std::vector<Bytes> received() {
    std::vector<Bytes> out;
    std::uint8_t buf[2048];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0;)
      out.emplace_back(buf, buf + n);
    return out;
  }
  int fd;
  sockaddr_in addr{};
};

Bytes eth(std::uint8_t dst_last, bool broadcast = false) {
  Bytes f(60, 0);
  for (int i = 0; i < 6; ++i)
    f[i] = broadcast ? 0xff : (i == 5 ? dst_last : 0x02);
  f[6] = 0x02;
  f[11] = 0x01;
  f[12] = 0x88;
  f[13] = 0xb5;
  return f;
}

// A vxlan link on 127.0.0.1 (not yet opened).
// `keys`: more lines of its [[link]] table; `local`: its address.
LinkConfig loopback_vxlan(std::uint32_t vni, std::uint16_t port, std::vector<std::string> remotes,
                          const std::string& keys = "", const std::string& name = "tun",
                          const std::string& sink = "to-b",
                          const std::string& local = "127.0.0.1") {
  std::string list;
  for (const auto& r : remotes)
    list += (list.empty() ? "\"" : ", \"") + r + "\"";
  return config_of(name, "vxlan", sink,
                   "vni = " + std::to_string(vni) + "\nlocal = \"" + local + "\"\nport = " +
                       std::to_string(port) + "\nremotes = [" + list + "]\nmtu = 1450\n" + keys);
}

void send_one(Link& link, Bytes f) {
  Batch b(4, 2048);
  std::memcpy(b.slot(0), f.data(), f.size());
  b.push(b.slot(0), static_cast<std::uint32_t>(f.size()));
  link.transmit(worker(), b);
}

}  // namespace

TEST_CASE("vxlan link: floods to each remote once and unicasts to a learned VTEP") {
  const std::uint16_t port = test_port();
  Vtep r2("127.0.0.2", port), r3("127.0.0.3", port);
  VxlanLink link(loopback_vxlan(0x123456, port, {"127.0.0.2", "127.0.0.3"}));
  link.open(1);

  // A broadcast: one datagram to each remote, the header then the frame unchanged.
  const Bytes bcast = eth(0, true);
  send_one(link, bcast);
  Bytes want(8 + bcast.size(), 0);
  want[0] = 0x08;  // I flag
  want[4] = 0x12;  // VNI
  want[5] = 0x34;
  want[6] = 0x56;
  std::copy(bcast.begin(), bcast.end(), want.begin() + 8);
  auto got2 = r2.received(), got3 = r3.received();
  REQUIRE(got2.size() == 1);
  REQUIRE(got3.size() == 1);
  CHECK(got2[0] == want);
  CHECK(got3[0] == want);
  CHECK(link.totals().tx_packets == 1);  // one frame, however many copies

  // 02:02:02:02:02:07 speaks from behind r3: frames to it go to r3 only.
  Bytes from_r3 = eth(0, true);
  from_r3[11] = 0x07;
  for (int i = 6; i < 11; ++i)
    from_r3[i] = 0x02;
  sockaddr_storage src{};
  std::memcpy(&src, &r3.addr, sizeof r3.addr);
  reinterpret_cast<sockaddr_in&>(src).sin_port = htons(51234);  // (any source port)
  CHECK_FALSE(link.check_rx(want.data(), src, from_r3.data(), from_r3.size()).has_value());
  CHECK(link.remote_of(from_r3.data() + 6) == "127.0.0.3");
  send_one(link, eth(0x07));
  CHECK(r2.received().empty());
  got3 = r3.received();
  REQUIRE(got3.size() == 1);
  CHECK(got3[0][8 + 5] == 0x07);
  // An unknown unicast floods.
  send_one(link, eth(0x09));
  CHECK(r2.received().size() == 1);
  CHECK(r3.received().size() == 1);
}

TEST_CASE("vxlan link: a run of equal frames goes as one GSO send and arrives as datagrams") {
  const std::uint16_t port = static_cast<std::uint16_t>(test_port() + 1);
  Vtep r2("127.0.0.2", port);
  VxlanLink link(loopback_vxlan(7, port, {"127.0.0.2"}));
  link.open(1);
  // 40 segments of a super-frame (1464 bytes), the last one shorter, then a frame of another
  // size: 41 datagrams, in order, each the header and one frame.
  Batch b(64, 2048);
  std::vector<Bytes> frames;
  for (int i = 0; i < 41; ++i) {
    Bytes f = eth(0, true);
    f.resize(i < 39 ? 1464 : i == 39 ? 700 : 100, static_cast<std::uint8_t>(i));
    f[20] = static_cast<std::uint8_t>(i);
    frames.push_back(f);
    std::memcpy(b.slot(b.size()), f.data(), f.size());
    b.push(b.slot(b.size()), static_cast<std::uint32_t>(f.size()));
  }
  link.transmit(worker(), b);
  const auto got = r2.received();
  REQUIRE(got.size() == 41);
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("datagram " << i);
    REQUIRE(got[i].size() == 8 + frames[i].size());
    CHECK(got[i][0] == 0x08);
    CHECK(got[i][6] == 7);
    CHECK((Bytes(got[i].begin() + 8, got[i].end()) == frames[i]));
  }
  CHECK(link.totals().tx_packets == 41);
  CHECK(link.totals().total_drops() == 0);

  // 32 flows (frames between 32 pairs of MACs): several source ports, one per flow.
  for (int round = 0; round < 2; ++round) {
    Batch flows(64, 2048);
    for (int i = 0; i < 32; ++i) {
      Bytes f = eth(static_cast<std::uint8_t>(i));
      f[11] = static_cast<std::uint8_t>(i);
      std::memcpy(flows.slot(flows.size()), f.data(), f.size());
      flows.push(flows.slot(flows.size()), static_cast<std::uint32_t>(f.size()));
    }
    link.transmit(worker(), flows);
  }
  const auto ports = r2.source_ports();
  REQUIRE(ports.size() == 64);
  std::set<std::uint16_t> distinct(ports.begin(), ports.end());
  CHECK(distinct.size() > 4);
  CHECK(distinct.count(port) == 0);  // (the bound port only receives)
  for (int i = 0; i < 32; ++i)
    CHECK(ports[static_cast<std::size_t>(i)] == ports[static_cast<std::size_t>(32 + i)]);
}

TEST_CASE("vxlan link: a wrong VNI and bad flags are refused by name") {
  VxlanLink link(loopback_vxlan(42, 4789, {}));
  const Bytes f = eth(1);
  sockaddr_storage src{};
  const std::uint8_t ok[8] = {0x08, 0, 0, 0, 0, 0, 42, 0};
  const std::uint8_t vni43[8] = {0x08, 0, 0, 0, 0, 0, 43, 0};
  const std::uint8_t no_i[8] = {0x00, 0, 0, 0, 0, 0, 42, 0};
  const std::uint8_t gbp[8] = {0x88, 0, 0, 0, 0, 0, 42, 0};
  const std::uint8_t reserved[8] = {0x08, 0, 0, 0, 0, 0, 42, 1};
  CHECK_FALSE(link.check_rx(ok, src, f.data(), f.size()).has_value());
  CHECK(link.check_rx(vni43, src, f.data(), f.size()) == DropReason::vxlan_unknown_vni);
  CHECK(link.check_rx(no_i, src, f.data(), f.size()) == DropReason::vxlan_bad_header);
  CHECK(link.check_rx(gbp, src, f.data(), f.size()) == DropReason::vxlan_bad_header);
  CHECK(link.check_rx(reserved, src, f.data(), f.size()) == DropReason::vxlan_bad_header);
  CHECK(link.check_rx(ok, src, f.data(), 10) == DropReason::runt);
}

TEST_CASE("vxlan link: inner VLAN tags are left out unless inner_vlan is keep") {
  const std::uint16_t port = static_cast<std::uint16_t>(test_port() + 2);
  Vtep r2("127.0.0.2", port);
  Bytes tagged = eth(0, true);
  const Bytes untagged = tagged;
  tagged.insert(tagged.begin() + 12, {0x81, 0x00, 0x00, 0x05});  // VLAN 5
  for (const bool keep : {false, true}) {
    INFO("inner_vlan = " << (keep ? "keep" : "drop"));
    LinkConfig c = loopback_vxlan(9, port, {"127.0.0.2"}, keep ? "inner_vlan = \"keep\"" : "");
    VxlanLink link(c);
    link.open(1);
    // Into the tunnel: the tag goes, or stays.
    send_one(link, tagged);
    const auto got = r2.received();
    REQUIRE(got.size() == 1);
    CHECK((Bytes(got[0].begin() + 8, got[0].end()) == (keep ? tagged : untagged)));
    // Out of it: a tagged frame is dropped by name, or passes.
    const std::uint8_t hdr[8] = {0x08, 0, 0, 0, 0, 0, 9, 0};
    sockaddr_storage src{};
    const auto why = link.check_rx(hdr, src, tagged.data(), tagged.size());
    if (keep)
      CHECK_FALSE(why.has_value());
    else
      CHECK(why == DropReason::vxlan_inner_vlan);
  }
}

namespace {

// A datagram for VNI `vni` carrying frame `f`.
Bytes datagram(std::uint32_t vni, const Bytes& f) {
  Bytes d(8 + f.size(), 0);
  d[0] = 0x08;
  d[4] = static_cast<std::uint8_t>(vni >> 16);
  d[5] = static_cast<std::uint8_t>(vni >> 8);
  d[6] = static_cast<std::uint8_t>(vni);
  for (std::size_t i = 0; i < f.size(); ++i)
    d[8 + i] = f[i];
  return d;
}

// Frames that arrived at a pair's outside end: their byte 20 (a sequence number).
std::vector<int> sequence(const Pair& p) {
  std::vector<int> out;
  std::uint8_t buf[2048];
  for (ssize_t n; (n = ::recv(p.outside, buf, sizeof buf, MSG_DONTWAIT)) > 0;) {
    out.push_back(buf[20]);
  }
  return out;
}

}  // namespace

TEST_CASE("vxlan links with different VNIs on one port share its socket and each gets its own") {
  const std::uint16_t port = static_cast<std::uint16_t>(test_port() + 3);
  Vtep r2("127.0.0.2", port);
  LinkConfig c10 = loopback_vxlan(10, port, {"127.0.0.2"}, "", "tun", "to-a");
  LinkConfig c20 = loopback_vxlan(20, port, {"127.0.0.2"}, "", "tun20", "to-b");
  auto tun10 = std::make_unique<VxlanLink>(c10);
  VxlanLink tun20(c20);
  tun10->set_index(0);
  tun20.set_index(1);
  tun10->open(1);
  tun20.open(1);  // (the same address and port: no EADDRINUSE)
  REQUIRE(tun10->socket() == tun20.socket());
  // A third link with a VNI already there is refused by name.
  LinkConfig c10b = loopback_vxlan(10, port, {}, "", "again");
  VxlanLink again(c10b);
  CHECK_THROWS_WITH(again.open(1), Catch::Contains("already link \"tun\"'s"));

  Pair a(SOCK_DGRAM), b(SOCK_DGRAM);
  LinkConfig ca = config_of("a", "unix", "x", "tx_backlog = 0"),
             cb = config_of("b", "unix", "y", "tx_backlog = 0");
  PairLink la(ca, a.inside), lb(cb, b.inside);
  TestWorker tw;
  Graph graph(1, 1024);
  graph.add("to-a", std::make_unique<ForwardSink>(), {Graph::Target{&la}});
  graph.add("to-b", std::make_unique<ForwardSink>(), {Graph::Target{&lb}});
  // Only tun10's dispatcher reads: it hands tun20's frames to tun20's sink.
  auto d = std::make_unique<Dispatcher>(tw.worker, *tun10, 0, graph);
  d->attach(tun10->port(0).fd.load());
  auto send = [&](std::uint32_t vni, int seq) {
    Bytes f = eth(0, true);
    f[20] = static_cast<std::uint8_t>(seq);
    const Bytes dg = datagram(vni, f);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    ::inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    REQUIRE(::sendto(r2.fd, dg.data(), dg.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) ==
            static_cast<ssize_t>(dg.size()));
  };
  std::vector<int> want10, want20;
  for (int i = 0; i < 60; ++i) {  // interleaved, and one VNI nobody has
    const std::uint32_t vni = i % 3 == 0 ? 10 : i % 3 == 1 ? 20 : 30;
    send(vni, i);
    if (vni == 10) want10.push_back(i);
    if (vni == 20) want20.push_back(i);
  }
  std::vector<int> got10, got20;
  run_until(tw.io, [&] {
    for (int s : sequence(a))
      got10.push_back(s);
    for (int s : sequence(b))
      got20.push_back(s);
    return got10.size() + got20.size() >= 40;
  });
  CHECK(got10 == want10);
  CHECK(got20 == want20);
  // Each link counts what was its own; the VNI nobody has is counted where it was read.
  CHECK(tun10->totals().rx_packets == 20 + 20);
  CHECK(tun10->totals().drop(DropReason::vxlan_unknown_vni) == 20);
  CHECK(tun20.totals().rx_packets == 20);
  CHECK(tun20.totals().total_drops() == 0);

  // tun10 goes: tun20's dup of the socket keeps it open, and its own dispatcher reads on.
  d->detach();
  d.reset();
  tun10.reset();
  Dispatcher d20(tw.worker, tun20, 0, graph);
  d20.attach(tun20.port(0).fd.load());
  send(20, 99);
  send(10, 98);
  std::vector<int> late;
  run_until(tw.io, [&] {
    for (int s : sequence(b))
      late.push_back(s);
    return !late.empty() && tun20.totals().drop(DropReason::vxlan_unknown_vni) == 1;
  });
  CHECK(late == std::vector<int>{99});
  CHECK(tun20.totals().drop(DropReason::vxlan_unknown_vni) == 1);
  CHECK(sequence(a).empty());
  d20.detach();
}

TEST_CASE("vxlan link: datagrams leave from source ports inside source_ports") {
  const std::uint16_t port = static_cast<std::uint16_t>(test_port() + 4);
  Vtep r2("127.0.0.2", port);
  LinkConfig c = loopback_vxlan(5, port, {"127.0.0.2"}, "source_ports = [61000, 61003]");
  // One of the four is taken by someone else: the link uses the other three.
  Vtep squatter("127.0.0.1", 61001);
  VxlanLink link(c);
  link.open(1);
  const auto bound = link.source_ports();
  CHECK(std::set<std::uint16_t>(bound.begin(), bound.end()) ==
        std::set<std::uint16_t>{61000, 61002, 61003});
  for (int i = 0; i < 32; ++i) {
    Bytes f = eth(static_cast<std::uint8_t>(i));
    f[11] = static_cast<std::uint8_t>(i);
    send_one(link, f);
  }
  const auto ports = r2.source_ports();
  REQUIRE(ports.size() == 32);
  std::set<std::uint16_t> seen(ports.begin(), ports.end());
  CHECK(seen.size() > 1);
  for (auto p : seen)
    CHECK((p >= 61000 && p <= 61003 && p != 61001));
  // A range with no free port left is a clear error.
  VxlanLink none(loopback_vxlan(6, port, {"127.0.0.2"}, "source_ports = [61001, 61001]"));
  CHECK_THROWS_WITH(none.open(1), Catch::Contains("no free UDP source port"));
}

TEST_CASE("vxlan link over IPv6: zero UDP checksums only with udp_checksum zero") {
  const std::uint16_t port = static_cast<std::uint16_t>(test_port() + 5);
  // A sender that leaves the checksum out, as a peer with udp6zerocsumtx does.
  const int tx = ::socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  REQUIRE(tx >= 0);
  const int one = 1;
  REQUIRE(::setsockopt(tx, SOL_UDP, UDP_NO_CHECK6_TX, &one, sizeof one) == 0);
  for (const bool zero : {false, true}) {
    INFO("udp_checksum = " << (zero ? "zero" : "on"));
    LinkConfig c =
        loopback_vxlan(3, port, {}, zero ? "udp_checksum = \"zero\"" : "", "tun", "to-b", "::1");
    VxlanLink link(c);
    link.open(1);
    const Bytes dg = datagram(3, eth(1));
    sockaddr_in6 to{};
    to.sin6_family = AF_INET6;
    to.sin6_port = htons(port);
    to.sin6_addr = in6addr_loopback;
    REQUIRE(::sendto(tx, dg.data(), dg.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) ==
            static_cast<ssize_t>(dg.size()));
    ::usleep(20000);
    std::uint8_t buf[2048];
    const ssize_t n = ::recv(link.port(0).fd.load(), buf, sizeof buf, MSG_DONTWAIT);
    if (zero)
      CHECK(n == static_cast<ssize_t>(dg.size()));
    else
      CHECK(n < 0);  // (Linux drops it, as RFC 8200 says)
  }
  ::close(tx);
}
