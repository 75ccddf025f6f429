// The XDP fast path (lib/link/fastpath.bpf.c), run by the kernel on test frames
// (BPF_PROG_TEST_RUN) with the rows fdlinkd would write: what it redirects, what it leaves to
// fdlinkd, the tags it pushes and pops and the checksums it finishes; then the `offload` key
// and the sinks' plans. Loading a program needs root (CAP_BPF and CAP_NET_ADMIN), as CI has.
#include <bpf/bpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "config/config.hpp"
#include "frames.hpp"
#include "link/fastpath.hpp"
#include "link/netdev.hpp"
#include "link/watch.hpp"
#include "offload/checksum.hpp"
#include "runtime/kinds.hpp"
#include "sink/bridge.hpp"
#include "sink/forward.hpp"

using namespace fdlinkd;
using namespace fdlinkd::test;

namespace {

bool root() {
  if (::geteuid() == 0) return true;
  WARN("not root: the kernel will not load an XDP program, so this test cannot run here");
  return false;
}

struct Run {
  std::uint32_t verdict = 0;
  Bytes frame;  ///< the frame as the program left it
};

// Runs the loaded program (slot 0) on `frame`.
Run run(const XdpFastPath& fp, const Bytes& frame) {
  Bytes out(frame.size() + 64);
  bpf_test_run_opts o{};
  o.sz = sizeof o;
  o.data_in = frame.data();
  o.data_size_in = static_cast<__u32>(frame.size());
  o.data_out = out.data();
  o.data_size_out = static_cast<__u32>(out.size());
  o.repeat = 1;
  REQUIRE(bpf_prog_test_run_opts(fp.program_fd(), &o) == 0);
  out.resize(o.data_size_out);
  return {o.retval, out};
}

// 02:00:00:00:00:dst <- 02:00:00:00:00:src, tagged with `vlan` if non-zero, IPv4 UDP.
Bytes eth_udp(std::uint8_t dst, std::uint8_t src, std::uint16_t vlan = 0) {
  Bytes f = udp_frame(4, 18);
  const std::uint8_t d[6] = {0x02, 0, 0, 0, 0, dst}, s[6] = {0x02, 0, 0, 0, 0, src};
  std::memcpy(f.data(), d, 6);
  std::memcpy(f.data() + 6, s, 6);
  if (vlan) {
    const std::uint8_t tag[4] = {0x81, 0x00, static_cast<std::uint8_t>(0x20 | vlan >> 8),
                                 static_cast<std::uint8_t>(vlan)};
    f.insert(f.begin() + 12, tag, tag + 4);
  }
  return f;
}

std::uint8_t mac(std::uint8_t last, std::uint8_t* m) {
  const std::uint8_t v[6] = {0x02, 0, 0, 0, 0, last};
  std::memcpy(m, v, 6);
  return last;
}

// A network namespace of the test's own, for this thread, with a veth pair whose peer has GRO
// on (a way out that takes redirected frames); the thread goes back to its namespace after.
struct TestNetns {
  TestNetns() {
    home = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    REQUIRE(home >= 0);
    REQUIRE(::unshare(CLONE_NEWNET) == 0);
    REQUIRE(std::system("ip link add fpt0 type veth peer name fpt1 && ip link set fpt0 up && "
                        "ip link set fpt1 up && ethtool -K fpt1 gro on >/dev/null") == 0);
    out = ::if_nametoindex("fpt0");
    REQUIRE(out != 0);
  }
  ~TestNetns() {
    ::setns(home, CLONE_NEWNET);  // (the namespace and its veths go with the last reference)
    ::close(home);
  }
  int home = -1;
  unsigned out = 0;
};

// A fast path with slot 0 as the port under test and slot 1 a way out (the veth: with
// BPF_PROG_TEST_RUN the program only says "redirect").
struct Rig {
  Rig() {
    REQUIRE(fp.open().empty());
    REQUIRE(fp.set_tx(1, ns.out, "").empty());
  }
  ~Rig() {
    for (std::size_t s = 0; s < 4; ++s) {
      fp.clear_port(s);
      fp.clear_tx(s);
      fp.reset_stats(s);
    }
    fp.fdb_clear(7);
  }
  // Slot 0 forwards to slot 1, which takes frames of up to `max_len` bytes.
  void forward(std::uint32_t max_len) {
    fdlinkd_fp_port in{};
    in.mode = FDLINKD_FP_FORWARD;
    in.out = 1;
    in.flags = FDLINKD_FP_PARTIALS;
    in.max_len = 1518;
    REQUIRE(fp.set_port(0, in));
    fdlinkd_fp_port out{};
    out.max_len = max_len;
    REQUIRE(fp.set_port(1, out));
  }
  void learn(std::uint8_t host, std::uint16_t vlan, std::size_t slot) {
    std::uint8_t m[6];
    mac(host, m);
    REQUIRE(fp.fdb_set(7, vlan, m, slot));
  }
  TestNetns ns;
  XdpFastPath fp;
};

fdlinkd_fp_port bridge_port(std::uint16_t pvid, bool trunk = false, std::uint16_t native = 0) {
  fdlinkd_fp_port p{};
  p.mode = FDLINKD_FP_BRIDGE;
  p.bridge = 7;
  p.flags = FDLINKD_FP_VLAN_AWARE | FDLINKD_FP_PARTIALS | (trunk ? FDLINKD_FP_TRUNK : 0);
  p.pvid = pvid;
  p.native = native;
  p.max_len = 1518;
  return p;
}

}  // namespace

TEST_CASE("XDP fast path: a forward redirects every frame that fits and counts it") {
  if (!root()) return;
  Rig r;
  r.forward(100);

  const Bytes f = eth_udp(2, 1);
  const Run a = run(r.fp, f);
  CHECK(a.verdict == XDP_REDIRECT);
  CHECK(a.frame == f);
  const Bytes big = udp_frame(4, 200);  // 242 bytes: more than slot 1 takes
  CHECK(run(r.fp, big).verdict == XDP_PASS);
  const fdlinkd_fp_stats in_s = r.fp.stats(0), out_s = r.fp.stats(1);
  CHECK(in_s.rx_packets == 1);
  CHECK(in_s.rx_bytes == f.size());
  CHECK(in_s.to_slow_path == 1);
  CHECK(out_s.tx_packets == 1);

  // A device that does not take redirected frames now is refused as a way out: lo, and a veth
  // whose peer has neither GRO nor XDP.
  CHECK_THAT(r.fp.set_tx(2, 1, ""), Catch::Contains("does not take redirected frames"));
  REQUIRE(std::system("ethtool -K fpt1 gro off >/dev/null") == 0);
  CHECK_THAT(r.fp.set_tx(1, r.ns.out, ""), Catch::Contains("GRO on"));

  r.fp.clear_tx(1);  // no way out: fdlinkd takes the frame
  CHECK(run(r.fp, f).verdict == XDP_PASS);
  r.fp.clear_port(0);  // off: everything goes up, uncounted
  CHECK(run(r.fp, f).verdict == XDP_PASS);
  CHECK(r.fp.stats(0).to_slow_path == 2);
}

// Runs the loaded program (slot 0) on `n` copies of `frame` as the kernel runs it on received
// frames: a redirect really goes out (BPF_F_TEST_XDP_LIVE_FRAMES).
void run_live(const XdpFastPath& fp, const Bytes& frame, std::uint32_t n) {
  bpf_test_run_opts o{};
  o.sz = sizeof o;
  o.data_in = frame.data();
  o.data_size_in = static_cast<__u32>(frame.size());
  o.repeat = n;
  o.flags = BPF_F_TEST_XDP_LIVE_FRAMES;
  REQUIRE(bpf_prog_test_run_opts(fp.program_fd(), &o) == 0);
}

TEST_CASE("XDP fast path: frames the kernel drops after a redirect are counted as tx_failed") {
  if (!root()) return;
  Rig r;
  r.forward(1518);
  REQUIRE(r.fp.trace_error().empty());
  const Bytes f = eth_udp(2, 1);
  const auto sent_by_fpt0 = [] {
    unsigned long long n = 0;
    if (FILE* p = ::popen("ethtool -S fpt0 | awk '/tx_queue_0_xdp_xmit:/ {print $2}'", "r")) {
      if (std::fscanf(p, "%llu", &n) != 1) n = 0;
      ::pclose(p);
    }
    return n;
  };

  // fpt0's peer has GRO on: all 50 go out, none failed.
  run_live(r.fp, f, 50);
  CHECK(r.fp.stats(1).tx_packets == 50);
  CHECK(r.fp.stats(1).tx_failed == 0);
  CHECK(sent_by_fpt0() == 50);

  // The peer loses GRO while fdlinkd still has fpt0 as the way out: the redirect fails
  // (xdp_redirect_err).
  REQUIRE(std::system("ethtool -K fpt1 gro off >/dev/null") == 0);
  run_live(r.fp, f, 30);
  CHECK(r.fp.stats(1).tx_packets == 80);
  CHECK(r.fp.stats(1).tx_failed == 30);

  // GRO back, the peer down: the device takes the frames into its queue and drops them on
  // the flush (xdp_devmap_xmit).
  REQUIRE(std::system("ethtool -K fpt1 gro on >/dev/null && ip link set fpt1 down") == 0);
  run_live(r.fp, f, 20);
  CHECK(r.fp.stats(1).tx_packets == 100);
  CHECK(r.fp.stats(1).tx_failed == 50);
  CHECK(sent_by_fpt0() == 50);

  // What the tracepoint says of another DEVMAP, or of an index past the slots, is not ours.
  __u64 args[7] = {0, 0, 0, static_cast<__u64>(-6), BPF_MAP_TYPE_DEVMAP, r.fp.tx_map_id() + 1, 1};
  bpf_test_run_opts o{};
  o.sz = sizeof o;
  o.ctx_in = args;
  o.ctx_size_in = sizeof args;
  const int redirect_err = r.fp.trace_program_fd("fdlinkd_fp_redirect_err");
  REQUIRE(bpf_prog_test_run_opts(redirect_err, &o) == 0);
  args[5] = r.fp.tx_map_id();
  args[6] = FDLINKD_FP_SLOTS;
  REQUIRE(bpf_prog_test_run_opts(redirect_err, &o) == 0);
  CHECK(r.fp.stats(1).tx_failed == 50);
  args[6] = 1;  // (and of ours, it is)
  REQUIRE(bpf_prog_test_run_opts(redirect_err, &o) == 0);
  CHECK(r.fp.stats(1).tx_failed == 51);
}

TEST_CASE("interface watcher: a way out that stops or starts taking redirected frames is heard") {
  if (!root()) return;
  TestNetns ns;
  boost::asio::io_context io;
  int changes = 0;
  InterfaceWatcher w(
      io, "", [](const InterfaceEvent&) {}, [&] { ++changes; });
  const auto heard = [&] {
    for (int i = 0; i < 300 && changes == 0; ++i)
      io.run_for(std::chrono::milliseconds(10));
    const bool yes = changes > 0;
    changes = 0;
    return yes;
  };
  REQUIRE(std::system("ethtool -K fpt1 gro off >/dev/null") == 0);
  CHECK(heard());
  CHECK_FALSE(*netdev::xdp_features(ns.out) & netdev::kXdpNdoXmit);
  REQUIRE(std::system("ethtool -K fpt1 gro on >/dev/null") == 0);
  CHECK(heard());
  CHECK(*netdev::xdp_features(ns.out) & netdev::kXdpNdoXmit);
}

TEST_CASE("XDP fast path: an unfinished TCP or UDP checksum is finished as fdlinkd would") {
  if (!root()) return;
  Rig r;
  r.forward(9000);

  for (std::size_t payload : {0, 1, 3, 999, 1400, 1460}) {
    Bytes tcp = tcp4_frame(payload, kAck | kPsh);
    put16(tcp, 38 + 16, partial_field(tcp, 4, 14, 38, 6));
    Bytes want = tcp;
    REQUIRE(offload::complete_unmarked_partial(want.data(), want.size(), true));
    const Run a = run(r.fp, tcp);
    INFO("TCP payload " << payload);
    CHECK(a.verdict == XDP_REDIRECT);
    CHECK(a.frame == want);
  }
  Bytes tcp6 = tcp6_frame(1000, kAck);
  put16(tcp6, 54 + 16, partial_field(tcp6, 6, 14, 54, 6));
  Bytes want6 = tcp6;
  REQUIRE(offload::complete_unmarked_partial(want6.data(), want6.size(), true));
  CHECK(run(r.fp, tcp6).frame == want6);
  Bytes udp = udp_frame(4, 33);
  put16(udp, 34 + 6, partial_field(udp, 4, 14, 34, 17));
  Bytes wantu = udp;
  REQUIRE(offload::complete_unmarked_partial(wantu.data(), wantu.size(), true));
  CHECK(run(r.fp, udp).frame == wantu);
  // A finished checksum is left as it is.
  CHECK(run(r.fp, want6).frame == want6);
  // Too long to sum here (a jumbo frame): fdlinkd does it.
  Bytes jumbo = tcp4_frame(3000, kAck);
  put16(jumbo, 38 + 16, partial_field(jumbo, 4, 14, 38, 6));
  CHECK(run(r.fp, jumbo).verdict == XDP_PASS);
}

TEST_CASE("XDP fast path: a bridge port sends known unicast and leaves the rest to fdlinkd") {
  if (!root()) return;
  Rig r;
  REQUIRE(r.fp.set_port(0, bridge_port(10)));          // access VLAN 10
  REQUIRE(r.fp.set_port(1, bridge_port(0, true, 1)));  // trunk, native 1
  r.fp.set_vlans(1, std::bitset<4096>().set(10).set(20));
  r.learn(1, 10, 0);  // host 1 on slot 0, host 2 on slot 1, both VLAN 10
  r.learn(2, 10, 1);

  // Access -> trunk: tagged 10 on the way out.
  const Run a = run(r.fp, eth_udp(2, 1));
  Bytes tagged = eth_udp(2, 1, 10);
  tagged[14] = 0x00;  // (PCP 0 on a pushed tag)
  CHECK(a.verdict == XDP_REDIRECT);
  CHECK(a.frame == tagged);
  // A priority tag (VLAN 0) on an access port is VLAN 10 too: its tag rewritten.
  Bytes prio = eth_udp(2, 1, 10);
  prio[15] = 0;  // VLAN id 0, PCP 1 kept
  const Run b = run(r.fp, prio);
  CHECK(b.verdict == XDP_REDIRECT);
  CHECK(b.frame == eth_udp(2, 1, 10));

  // The source's entry says when the program last forwarded a frame from it (the bridge asks
  // before it ages the MAC out); the destination's does not.
  std::uint8_t m1[6], m2[6];
  mac(1, m1);
  mac(2, m2);
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  const auto now = static_cast<std::uint32_t>(ts.tv_sec);
  CHECK(r.fp.fdb_seen(7, 10, m1) >= now - 1);
  CHECK(r.fp.fdb_seen(7, 10, m1) <= now + 1);
  CHECK(r.fp.fdb_seen(7, 10, m2) == 0);
  r.learn(1, 10, 0);  // entered again (as a move would): not seen since
  CHECK(r.fp.fdb_seen(7, 10, m1) == 0);
  CHECK(run(r.fp, eth_udp(2, 1)).verdict == XDP_REDIRECT);
  CHECK(r.fp.fdb_seen(7, 10, m1) >= now - 1);

  // What fdlinkd decides: broadcast, an unknown destination, an unknown or moved source, a
  // frame to the port it came from, a tag the access port does not admit.
  CHECK(run(r.fp, eth_udp(0xFF, 1)).verdict == XDP_PASS);
  CHECK(run(r.fp, eth_udp(3, 1)).verdict == XDP_PASS);
  CHECK(run(r.fp, eth_udp(2, 4)).verdict == XDP_PASS);
  r.learn(5, 10, 1);
  CHECK(run(r.fp, eth_udp(2, 5)).verdict == XDP_PASS);  // (5 is learned on the other port)
  r.learn(6, 10, 0);
  CHECK(run(r.fp, eth_udp(6, 1)).verdict == XDP_PASS);
  CHECK(run(r.fp, eth_udp(2, 1, 20)).verdict == XDP_PASS);
  // An egress port that is not a port of this bridge (off) is not a way out.
  r.fp.clear_port(1);
  CHECK(run(r.fp, eth_udp(2, 1)).verdict == XDP_PASS);
}

TEST_CASE("XDP fast path: a trunk admits its VLANs and the native one - and pops to access") {
  if (!root()) return;
  Rig r;
  REQUIRE(r.fp.set_port(0, bridge_port(0, true, 1)));  // trunk 10, 20; native 1
  r.fp.set_vlans(0, std::bitset<4096>().set(10).set(20));
  REQUIRE(r.fp.set_port(1, bridge_port(10)));
  REQUIRE(r.fp.set_port(2, bridge_port(1)));
  REQUIRE(r.fp.set_tx(2, r.ns.out, "").empty());
  r.learn(1, 10, 0);
  r.learn(2, 10, 1);
  r.learn(1, 1, 0);
  r.learn(3, 1, 2);

  const Run a = run(r.fp, eth_udp(2, 1, 10));  // tagged 10 -> access 10: popped
  CHECK(a.verdict == XDP_REDIRECT);
  CHECK(a.frame == eth_udp(2, 1));
  const Run n = run(r.fp, eth_udp(3, 1));  // untagged = native 1 -> access 1
  CHECK(n.verdict == XDP_REDIRECT);
  CHECK(n.frame == eth_udp(3, 1));
  CHECK(run(r.fp, eth_udp(2, 1, 30)).verdict == XDP_PASS);  // not carried
  CHECK(run(r.fp, eth_udp(3, 1, 10)).verdict == XDP_PASS);  // 3 is not on VLAN 10
  CHECK(r.fp.stats(1).tx_packets == 1);
  CHECK(r.fp.stats(2).tx_packets == 1);
}

TEST_CASE("offload config: forward and bridge take offload = xdp - others are told") {
  const std::string links = R"([[link]]
name = "a"
type = "af_packet"
interface = "va"
sink = "s"
[[link]]
name = "b"
type = "af_packet"
interface = "vb"
sink = "s"
)";  // 10 lines
  auto ok = parse_config(links + "[[sink]]\nname = \"s\"\ntype = \"bridge\"\noffload = \"xdp\"\n",
                         "o.toml");
  INFO((ok.errors.empty() ? "" : ok.errors[0].to_string()));
  REQUIRE(ok.config);
  CHECK(ok.config->sinks[0].options->offload_xdp);
  auto fwd =
      parse_config(links + "[[sink]]\nname = \"s\"\ntype = \"forward\"\nto = \"b\"\n", "o.toml");
  REQUIRE(fwd.config);
  CHECK_FALSE(fwd.config->sinks[0].options->offload_xdp);  // (off by default)

  auto bad = parse_config(
      links + "[[sink]]\nname = \"s\"\ntype = \"forward\"\nto = \"b\"\noffload = \"kernel\"\n",
      "o.toml");
  REQUIRE_FALSE(bad.config);
  CHECK_THAT(bad.errors[0].to_string(), Catch::StartsWith("o.toml:15:11: ") &&
                                            Catch::Contains("off") && Catch::Contains("xdp"));
  auto tee = parse_config(
      links + "[[sink]]\nname = \"s\"\ntype = \"tee\"\nto = [\"b\"]\noffload = \"xdp\"\n",
      "o.toml");
  REQUIRE_FALSE(tee.config);
  CHECK_THAT(tee.errors[0].to_string(), Catch::StartsWith("o.toml:15:1: "));
}

TEST_CASE("offload plans: a forward to a link - to a sink - and a bridge's VLAN ports") {
  const ForwardSink to_link(true, 3), to_sink(true);
  const OffloadPlan p = to_link.offload_plan(0);
  CHECK(p.why_not.empty());
  CHECK(p.port.mode == FDLINKD_FP_FORWARD);
  CHECK(p.port.out == 3);
  CHECK(p.egress == std::vector<std::size_t>{3});
  CHECK_THAT(to_sink.offload_plan(0).why_not, Catch::Contains("sink"));

  BridgeSettings s;
  s.ports = {"a", "b", "t"};
  s.vlan_aware = true;
  s.offload = true;
  s.vlans.resize(3);
  s.vlans[0].mode = s.vlans[1].mode = BridgePortVlans::Mode::access;
  s.vlans[0].pvid = s.vlans[1].pvid = 10;
  s.vlans[2].mode = BridgePortVlans::Mode::trunk;
  s.vlans[2].native = 1;
  s.vlans[2].allowed.set(10).set(20);
  // Links 4, 5, 6 are ports a, b, t; link 0 is not a port.
  const BridgeSink b(
      s, {MacTable::kNoPort, MacTable::kNoPort, MacTable::kNoPort, MacTable::kNoPort, 0, 1, 2}, 1);
  const OffloadPlan a = b.offload_plan(4), t = b.offload_plan(6);
  CHECK(a.port.mode == FDLINKD_FP_BRIDGE);
  CHECK(a.port.pvid == 10);
  CHECK_FALSE(a.port.flags & FDLINKD_FP_TRUNK);
  CHECK(a.egress == std::vector<std::size_t>{5, 6});
  CHECK(t.port.flags & FDLINKD_FP_TRUNK);
  CHECK(t.port.native == 1);
  CHECK(t.trunk_vlans.test(20));
  CHECK(a.port.bridge == t.port.bridge);
  CHECK_FALSE(b.offload_plan(0).why_not.empty());
}
