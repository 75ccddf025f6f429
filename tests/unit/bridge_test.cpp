// bridge: the MAC table on its own, then the sink on real fds (socketpairs as member links).
#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <memory>
#include <vector>

#include "config/config.hpp"
#include "dispatch/dispatcher.hpp"
#include "frames.hpp"
#include "sink/bridge.hpp"
#include "sink/graph.hpp"
#include "test_worker.hpp"

using namespace fdlinkd;
using namespace fdlinkd::test;

namespace {

std::uint64_t k(std::uint8_t last, std::uint16_t vlan = 0) {
  const std::uint8_t mac[6] = {0x02, 0, 0, 0, 0, last};
  return MacTable::key(mac, vlan);
}

// An Ethernet frame from MAC 02::src to dst (0xFF: broadcast; 0x00..: 02::dst), tagged with
// `vlan` when non-zero (802.1Q, PCP 5), then IPv4 type and `payload` bytes.
Bytes eth(std::uint8_t dst, std::uint8_t src, std::uint16_t vlan = 0, std::size_t payload = 46) {
  Bytes f;
  for (int i = 0; i < 6; ++i)
    f.push_back(dst == 0xFF ? 0xFF : (i == 0 ? 0x02 : (i == 5 ? dst : 0)));
  for (int i = 0; i < 6; ++i)
    f.push_back(i == 0 ? 0x02 : (i == 5 ? src : 0));
  if (vlan) {
    f.insert(f.end(), {0x81, 0x00, static_cast<std::uint8_t>(0xA0 | vlan >> 8),
                       static_cast<std::uint8_t>(vlan)});
  }
  f.insert(f.end(), {0x08, 0x00});
  for (std::size_t i = 0; i < payload; ++i)
    f.push_back(static_cast<std::uint8_t>(i));
  return f;
}

// N member links over socketpairs, a bridge over them, one worker.
struct Rig {
  Rig(std::size_t n, BridgeSettings s, unsigned workers = 1) : graph(workers, 64) {
    std::vector<Graph::Target> outs;
    std::vector<std::uint16_t> link_port;
    for (std::size_t i = 0; i < n; ++i) {
      pairs.emplace_back();
      LinkConfig c = config_of("p" + std::to_string(i), "unix", "sw", "tx_backlog = 0");
      links.push_back(std::make_unique<PairLink>(c, pairs.back().inside));
      links.back()->set_index(i);
      links.back()->set_workers(workers);
      outs.push_back({links.back().get()});
      link_port.push_back(static_cast<std::uint16_t>(i));
      s.ports.push_back(c.name);
    }
    auto b = std::make_unique<BridgeSink>(s, link_port, workers);
    bridge = b.get();
    graph.add("sw", std::move(b), outs);
    for (unsigned w = 0; w < workers; ++w)
      worker_list.push_back(std::make_unique<Worker>(io, w, 2048, 2048));
    std::vector<Worker*> list;
    for (auto& w : worker_list)
      list.push_back(w.get());
    graph.set_workers(list);
    for (std::size_t i = 0; i < n; ++i) {
      // Link i is read by worker i % workers.
      dispatchers.push_back(
          std::make_unique<Dispatcher>(*worker_list[i % workers], *links[i], 0, graph));
      dispatchers.back()->attach(pairs[i].inside);
    }
  }
  // Sends `f` into port `p` and runs until the bridge has handled it.
  void send(std::size_t p, const Bytes& f) {
    const auto before = links[p]->totals().rx_packets;
    REQUIRE(::send(pairs[p].outside, f.data(), f.size(), 0) == static_cast<ssize_t>(f.size()));
    run_until(io, [&] { return links[p]->totals().rx_packets > before; });
    io.poll();  // (posted table updates)
    io.restart();
  }
  // Every frame waiting on port p's outside.
  std::vector<Bytes> got(std::size_t p) {
    std::vector<Bytes> out;
    Bytes b(4096);
    ssize_t n;
    while ((n = ::recv(pairs[p].outside, b.data(), b.size(), MSG_DONTWAIT)) > 0)
      out.emplace_back(b.begin(), b.begin() + n);
    return out;
  }
  std::uint64_t counter(std::string_view name) {
    const auto names = bridge->counter_names();
    const auto values = graph.counters(0);
    for (std::size_t i = 0; i < names.size(); ++i)
      if (names[i] == name) return values[i];
    FAIL("no counter " << name);
    return 0;
  }

  std::vector<Pair> pairs;
  std::vector<std::unique_ptr<PairLink>> links;
  boost::asio::io_context io;
  std::vector<std::unique_ptr<Worker>> worker_list;
  Graph graph;
  std::vector<std::unique_ptr<Dispatcher>> dispatchers;
  BridgeSink* bridge = nullptr;
};

}  // namespace

TEST_CASE("MAC table: learn - refresh - move - lookup") {
  MacTable t(16, 3);
  CHECK(t.learn(k(1), 0, 100) == MacTable::Learned::added);
  CHECK(t.learn(k(1), 0, 101) == MacTable::Learned::refreshed);
  CHECK(t.lookup(k(1)) == 0);
  CHECK(t.lookup(k(1, 10)) == MacTable::kNoPort);  // another VLAN: another entry
  CHECK(t.learn(k(1), 2, 102) == MacTable::Learned::moved);
  CHECK(t.lookup(k(1)) == 2);
  CHECK(t.macs_on(0) == 0);
  CHECK(t.macs_on(2) == 1);
  CHECK(t.size() == 1);
}

TEST_CASE("MAC table: aging forgets what was not seen - keeps the rest and static entries") {
  MacTable t(1000, 2);
  for (std::uint8_t i = 1; i <= 200; ++i)
    t.learn(k(i), i % 2, i <= 100 ? 10 : 50);
  t.add_static(k(250), 1);
  CHECK(t.age(300, 260) == 100);  // seen at 10: 290 s ago; at 50: 250 s ago
  CHECK(t.size() == 101);
  for (std::uint8_t i = 1; i <= 200; ++i)
    CHECK(t.lookup(k(i)) == (i <= 100 ? MacTable::kNoPort : i % 2));
  CHECK(t.age(100000, 1) == 100);
  CHECK(t.lookup(k(250)) == 1);
}

TEST_CASE("MAC table: aging keeps a MAC seen elsewhere within aging - as seen then") {
  MacTable t(64, 2);
  for (std::uint8_t i = 1; i <= 6; ++i)
    t.learn(k(i), 0, 10);
  // The kernel forwarded frames from MACs 1 and 2 (at 250 and 280), from 3 too long ago (100),
  // never from the others.
  std::vector<std::uint64_t> gone;
  const auto elsewhere = [](const MacTable::Entry& e) -> std::uint32_t {
    return e.key == k(1) ? 250 : e.key == k(2) ? 280 : e.key == k(3) ? 100 : 0;
  };
  CHECK(t.age(300, 60, &gone, elsewhere) == 4);
  CHECK(t.lookup(k(1)) == 0);
  CHECK(t.lookup(k(2)) == 0);
  std::sort(gone.begin(), gone.end());
  CHECK(gone == std::vector<std::uint64_t>{k(3), k(4), k(5), k(6)});
  // Kept as seen then: 1 (seen at 250) goes at 310, 2 (seen at 280) stays until 340.
  CHECK(t.age(310, 60) == 1);
  CHECK(t.lookup(k(1)) == MacTable::kNoPort);
  CHECK(t.lookup(k(2)) == 0);
}

TEST_CASE("MAC table: when full - the port with the most MACs loses its least recent one") {
  MacTable t(16, 2);
  for (std::uint8_t i = 1; i <= 4; ++i)
    t.learn(k(i), 0, i);  // port 0: 4 MACs, seen at 1..4
  for (std::uint8_t i = 11; i <= 22; ++i)
    t.learn(k(i), 1, 100 + i);  // port 1: 12 MACs, the oldest is 11 (seen at 111)
  REQUIRE(t.size() == 16);
  CHECK(t.learn(k(30), 0, 200) == MacTable::Learned::added_evicting);
  CHECK(t.size() == 16);
  CHECK(t.lookup(k(11)) == MacTable::kNoPort);  // port 1's oldest went
  CHECK(t.lookup(k(1)) == 0);                   // port 0's older entries stayed
  CHECK(t.lookup(k(30)) == 0);
  CHECK(t.macs_on(1) == 11);
}

TEST_CASE("MAC table: static entries are never moved or evicted") {
  MacTable t(16, 2);
  t.add_static(k(1), 0);
  CHECK(t.learn(k(1), 1, 5) == MacTable::Learned::kept_static);
  CHECK(t.lookup(k(1)) == 0);
  for (std::uint8_t i = 2; i <= 40; ++i)
    t.learn(k(i), 0, i);
  CHECK(t.lookup(k(1)) == 0);
  CHECK(t.size() == 16);
}

TEST_CASE("bridge: unknown unicast floods - a learned MAC is forwarded to its port only") {
  Rig r(4, BridgeSettings{});
  r.send(0, eth(2, 1));     // 1 -> 2: 2 is unknown
  CHECK(r.got(0).empty());  // never back out of the ingress port
  CHECK(r.got(1).size() == 1);
  CHECK(r.got(2).size() == 1);
  CHECK(r.got(3).size() == 1);
  r.send(2, eth(1, 2));  // 2 answers from port 2: 1 is known on port 0
  CHECK(r.got(0).size() == 1);
  CHECK(r.got(1).empty());
  CHECK(r.got(3).empty());
  r.send(0, eth(2, 1));  // now 2 is known on port 2
  CHECK(r.got(2).size() == 1);
  CHECK(r.got(1).empty());
  CHECK(r.got(3).empty());
  CHECK(r.counter("learned") == 2);
  CHECK(r.counter("flooded") == 1);
  CHECK(r.counter("forwarded") == 2);
}

TEST_CASE("bridge: broadcast reaches every other port once and reserved MACs go nowhere") {
  Rig r(4, BridgeSettings{});
  const Bytes b = eth(0xFF, 1);
  r.send(1, b);
  for (std::size_t p : {0, 2, 3}) {
    const auto got = r.got(p);
    REQUIRE(got.size() == 1);
    CHECK(got[0] == b);
  }
  CHECK(r.got(1).empty());
  Bytes stp = eth(0, 1);
  const std::uint8_t reserved[6] = {0x01, 0x80, 0xC2, 0, 0, 0x0E};  // LLDP
  std::copy(reserved, reserved + 6, stp.begin());
  r.send(1, stp);
  for (std::size_t p = 0; p < 4; ++p)
    CHECK(r.got(p).empty());
  CHECK(r.counter("reserved") == 1);
}

TEST_CASE("bridge: a MAC that moves is reached on its new port at once and no hairpin") {
  Rig r(3, BridgeSettings{});
  r.send(0, eth(0xFF, 5));  // 5 lives on port 0
  r.got(1);
  r.got(2);
  r.send(1, eth(5, 6));  // to 5: port 0 only
  CHECK(r.got(0).size() == 1);
  CHECK(r.got(2).empty());
  r.send(2, eth(0xFF, 5));  // 5 moved to port 2
  r.got(0);
  r.got(1);
  CHECK(r.counter("moved") == 1);
  r.send(1, eth(5, 6));
  CHECK(r.got(2).size() == 1);
  CHECK(r.got(0).empty());
  r.send(2, eth(5, 7));  // to 5, from 5's own port: dropped, not sent back
  for (std::size_t p = 0; p < 3; ++p)
    CHECK(r.got(p).empty());
  CHECK(r.counter("hairpin") == 1);
}

TEST_CASE("bridge: static entries forward without learning and stay put") {
  BridgeSettings s;
  s.statics.push_back({{0x02, 0, 0, 0, 0, 9}, 0, 2});
  Rig r(3, s);
  r.send(0, eth(9, 1));
  CHECK(r.got(2).size() == 1);
  CHECK(r.got(1).empty());
  r.send(1, eth(0xFF, 9));  // 9 seen on port 1: a static entry does not move
  r.got(0);
  r.got(2);
  r.send(0, eth(9, 1));
  CHECK(r.got(2).size() == 1);
  CHECK(r.counter("moved") == 0);
}

TEST_CASE("bridge: VLANs: access ports - a trunk with a native VLAN - tags right on egress") {
  // Ports 0, 1: access 10; 2: access 20; 3: trunk 10, 20, native 1.
  BridgeSettings vs;
  vs.vlan_aware = true;
  vs.vlans.resize(4);
  for (int p : {0, 1}) {
    vs.vlans[p].mode = BridgePortVlans::Mode::access;
    vs.vlans[p].pvid = 10;
  }
  vs.vlans[2].mode = BridgePortVlans::Mode::access;
  vs.vlans[2].pvid = 20;
  vs.vlans[3].mode = BridgePortVlans::Mode::trunk;
  vs.vlans[3].allowed.set(10);
  vs.vlans[3].allowed.set(20);
  vs.vlans[3].native = 1;
  Rig rv(4, vs);

  // Untagged broadcast on an access port of VLAN 10: the other VLAN 10 port gets it as it
  // was, the trunk gets it tagged 10, VLAN 20 gets nothing.
  const Bytes b = eth(0xFF, 1);
  rv.send(0, b);
  auto p1 = rv.got(1);
  REQUIRE(p1.size() == 1);
  CHECK(p1[0] == b);
  CHECK(rv.got(2).empty());
  auto t = rv.got(3);
  REQUIRE(t.size() == 1);
  CHECK(t[0].size() == b.size() + 4);
  CHECK(get16(t[0], 12) == 0x8100);
  CHECK((get16(t[0], 14) & 0xFFF) == 10);
  CHECK(Bytes(t[0].begin() + 16, t[0].end()) == Bytes(b.begin() + 12, b.end()));

  // Tagged 20 from the trunk: to the VLAN 20 access port untagged, nowhere else.
  const Bytes t20 = eth(0xFF, 7, 20);
  rv.send(3, t20);
  auto c = rv.got(2);
  REQUIRE(c.size() == 1);
  CHECK(c[0] == eth(0xFF, 7));
  CHECK(rv.got(0).empty());
  CHECK(rv.got(1).empty());

  // Untagged on the trunk is VLAN 1: no other port is in it. Tagged 30: not allowed. Tagged 10
  // on an access port: refused.
  rv.send(3, eth(0xFF, 8));
  rv.send(3, eth(0xFF, 8, 30));
  rv.send(0, eth(0xFF, 1, 10));
  for (std::size_t p = 0; p < 4; ++p)
    CHECK(rv.got(p).empty());
  CHECK(rv.counter("vlan_filtered") == 2);

  // A MAC learned in VLAN 10 is not known in VLAN 20: the same destination floods there.
  rv.send(1, eth(1, 2));  // 2 -> 1 in VLAN 10: 1 known on port 0
  CHECK(rv.got(0).size() == 1);
  CHECK(rv.got(3).empty());
  rv.send(3, eth(1, 9, 20));  // 9 -> 1 in VLAN 20: unknown there, floods to port 2 only
  CHECK(rv.got(2).size() == 1);
  CHECK(rv.got(0).empty());
}

TEST_CASE("bridge: with two workers - what one learns reaches the other's table") {
  Rig r(2, BridgeSettings{}, 2);  // port 0 on worker 0, port 1 on worker 1
  r.send(0, eth(0xFF, 1));        // learned by worker 0
  r.got(1);
  CHECK(r.bridge->table(0).lookup(k(1)) == 0);
  CHECK(r.bridge->table(1).lookup(k(1)) == 0);  // posted to worker 1 and applied
  r.send(1, eth(1, 2));                         // worker 1 forwards without flooding
  CHECK(r.got(0).size() == 1);
  CHECK(r.counter("flooded") == 1);
  CHECK(r.counter("forwarded") == 1);
}

namespace {
std::uint32_t g_now = 1000;  // the bridge's clock in the test below (seconds)
}  // namespace

TEST_CASE("bridge: with two workers - a MAC talking through one stays in the other's table") {
  BridgeSettings s;
  s.aging_s = 3;
  Rig r(2, s, 2);  // port 0 on worker 0, port 1 on worker 1
  g_now = 1000;
  r.bridge->set_clock([] { return g_now; });
  r.send(0, eth(0xFF, 1));
  r.send(1, eth(0xFF, 2));
  r.got(0);
  r.got(1);
  // For 10 s (over 3 times aging) MAC 1 talks only on port 0 (worker 0), MAC 2 only on port 1,
  // a frame each every half second: each worker sweeps its table once a second, and hears of
  // the other's MAC only by the refreshes the other posts with its sweep.
  for (int half = 0; half < 20; ++half) {
    if (half % 2 == 0) ++g_now;
    r.send(0, eth(2, 1));
    r.send(1, eth(1, 2));
  }
  CHECK(r.bridge->table(0).lookup(k(2)) == 1);
  CHECK(r.bridge->table(1).lookup(k(1)) == 0);
  CHECK(r.counter("aged") == 0);
  CHECK(r.counter("flooded") == 2);  // the two broadcasts: every unicast was forwarded
  // Once MAC 1 is silent, both tables forget it (MAC 3 and 2 go on, so both workers sweep).
  for (int half = 0; half < 12; ++half) {
    if (half % 2 == 0) ++g_now;
    r.send(0, eth(0xFF, 3));
    r.send(1, eth(3, 2));
  }
  CHECK(r.bridge->table(0).lookup(k(1)) == MacTable::kNoPort);
  CHECK(r.bridge->table(1).lookup(k(1)) == MacTable::kNoPort);
  CHECK(r.bridge->table(1).lookup(k(2)) == 1);
}

namespace {

std::string four_links() {
  std::string s;
  for (const char* n : {"a", "b", "c", "t"})
    s += std::string("[[link]]\nname = \"") + n + "\"\ntype = \"af_packet\"\ninterface = \"v" + n +
         "\"\nsink = \"sw\"\n";
  return s;  // 20 lines
}

}  // namespace

TEST_CASE("bridge config: the issue's example is accepted") {
  const auto r = parse_config(four_links() + R"([[sink]]
name = "sw"
type = "bridge"
ports = ["a", "b", "c", "t"]
aging = "300s"
max_macs = 8192
static = [{ mac = "02:00:00:00:00:01", port = "a" }]
[sink.vlans]
a = { access = 10 }
b = { access = 10 }
c = { access = 20 }
t = { trunk = [10, 20], native = 1 }
)",
                              "b.toml");
  INFO((r.errors.empty() ? "" : r.errors[0].to_string()));
  CHECK(r.config.has_value());
}

TEST_CASE("bridge config: mistakes name their line and column") {
  const auto r = parse_config(four_links() + R"([[sink]]
name = "sw"
type = "bridge"
ports = ["a", "b", "c", "t"]
static = [{ mac = "01:00:00:00:00:01", port = "x" }]
[sink.vlans]
a = { access = 10, trunk = [20] }
zz = { access = 10 }
b = { access = 5000 }
)",
                              "b.toml");
  REQUIRE_FALSE(r.config.has_value());
  std::vector<std::string> got;
  for (const auto& e : r.errors)
    got.push_back(e.to_string());
  INFO(got.size());
  REQUIRE(got.size() == 5);
  CHECK_THAT(got[0], Catch::StartsWith("b.toml:25:19: mac \"01:00:00:00:00:01\""));
  CHECK_THAT(got[1], Catch::StartsWith("b.toml:25:47: port \"x\""));
  CHECK_THAT(got[2], Catch::StartsWith("b.toml:27:5: vlans.a in sink \"sw\" needs exactly one"));
  CHECK_THAT(got[3], Catch::StartsWith("b.toml:28:1: vlans.zz in sink \"sw\": \"zz\" is not one"));
  CHECK_THAT(got[4], Catch::StartsWith("b.toml:29:16: vlans.b in sink \"sw\": access must be"));
}

TEST_CASE("bridge: a flush empties the table and the macs gauge at once") {
  // (fuzz_bridge found the gauge still showing the flushed entries until the next frame)
  Rig r(3, BridgeSettings{});
  r.send(0, eth(0xFF, 1));
  r.send(1, eth(0xFF, 2));
  CHECK(r.counter("macs") == 2);
  CHECK(r.graph.flush_state(*r.worker_list[0], 0) == 2);
  CHECK(r.counter("macs") == 0);
  CHECK(r.bridge->state(*r.worker_list[0]).empty());
}
