// Config: every bad input is reported with its line, column and a message that says what to fix.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "config/config.hpp"
#include "link/af_packet.hpp"
#include "link/af_xdp.hpp"
#include "link/tap.hpp"
#include "link/unix.hpp"
#include "link/vhost_user.hpp"
#include "link/vxlan.hpp"
#include "runtime/kinds.hpp"

using fdlinkd::ConfigError;
using fdlinkd::LinkConfig;
using fdlinkd::parse_config;
using fdlinkd::ZeroCopy;

// A link's own options, as its type read them.
template <class T>
const T& opts(const LinkConfig& l) {
  return l.options_as<T>();
}
using fdlinkd::AfPacketOptions;
using fdlinkd::AfXdpOptions;
using fdlinkd::TapOptions;
using fdlinkd::UnixOptions;
using fdlinkd::VxlanOptions;

namespace {

// Two af_packet links forwarding to each other: the smallest valid config.
const std::string kLinks = R"(
[[link]]
name = "a"
type = "af_packet"
interface = "veth-a"
sink = "to-b"

[[link]]
name = "b"
type = "af_packet"
interface = "veth-b"
sink = "to-a"

[[sink]]
name = "to-b"
type = "forward"
to = "b"

[[sink]]
name = "to-a"
type = "forward"
to = "a"
)";

std::vector<ConfigError> errors_of(const std::string& text) {
  auto r = parse_config(text, "t.toml");
  REQUIRE_FALSE(r.config.has_value());
  REQUIRE_FALSE(r.errors.empty());
  return r.errors;
}

// Exactly one error, at line:col, whose message contains `needle`.
void expect_one(const std::string& text, std::uint32_t line, std::uint32_t col,
                const std::string& needle) {
  const auto errs = errors_of(text);
  INFO("errors: " << [&] {
    std::string s;
    for (auto& e : errs)
      s += e.to_string() + "\n";
    return s;
  }());
  REQUIRE(errs.size() == 1);
  CHECK(errs[0].file == "t.toml");
  CHECK(errs[0].line == line);
  CHECK(errs[0].column == col);
  CHECK_THAT(errs[0].message, Catch::Contains(needle));
}

// `links` (whose sink is "s") and a drop sink "s".
std::string with_drop_sink(const std::string& links) {
  return links + "[[sink]]\nname = \"s\"\ntype = \"drop\"\n";
}

}  // namespace

TEST_CASE("valid config parses into typed values") {
  auto r = parse_config(
      "[daemon]\nworkers = 2\nstats_interval = \"250ms\"\nlog_level = "
      "\"debug\"\nlog_format = \"json\"\n" +
          kLinks,
      "t.toml");
  REQUIRE(r.config.has_value());
  const auto& c = *r.config;
  CHECK(c.daemon.workers == 2);
  CHECK(c.daemon.stats_interval == std::chrono::milliseconds(250));
  CHECK(c.daemon.log_level == fdlinkd::log::Level::debug);
  CHECK(c.daemon.log_format == fdlinkd::log::Format::json);
  REQUIRE(c.links.size() == 2);
  CHECK(c.links[0].interface == "veth-a");
  CHECK(c.links[0].mtu == 1500);
  CHECK(c.links[0].wire_capacity() == 1518);
  CHECK(c.links[0].dispatch == fdlinkd::DispatchMode::readv);
  CHECK(c.find_sink("to-b")->type->name == "forward");
}

TEST_CASE("unix and tun links parse with their own keys") {
  auto r = parse_config(R"(
[[link]]
name = "u"
type = "unix"
path = "/run/fdlinkd/u.sock"
socket = "dgram"
peer = "/run/vm.sock"
dispatch = "recvmmsg"
sink = "to-u2"
[[link]]
name = "u2"
type = "unix"
path = "/run/fdlinkd/u2.sock"
sink = "to-u"
[[link]]
name = "t"
type = "tun"
interface = "tun0"
mtu = 9000
persist = true
netns = "blue"
sink = "to-t"
[[sink]]
name = "to-u"
type = "forward"
to = "u"
[[sink]]
name = "to-u2"
type = "forward"
to = "u2"
[[sink]]
name = "to-t"
type = "forward"
to = "t"
)",
                        "t.toml");
  REQUIRE(r.config.has_value());
  const auto& u = r.config->links[0];
  CHECK(opts<UnixOptions>(u).socket == fdlinkd::UnixSocket::dgram);
  CHECK(opts<UnixOptions>(u).peer == "/run/vm.sock");
  CHECK(opts<UnixOptions>(r.config->links[1]).socket == fdlinkd::UnixSocket::seqpacket);
  const auto& t = r.config->links[2];
  CHECK(t.layer == fdlinkd::Layer::ip);
  CHECK(t.wire_capacity() == 9000);
  CHECK(opts<TapOptions>(t).persist);
  CHECK(t.netns == "blue");
}

TEST_CASE("unix stream links listen by default or connect - and refuse what does not fit") {
  const std::string sinks = R"(
[[sink]]
name = "s"
type = "forward"
to = "a"
)";
  auto link = [&](const std::string& keys) {
    return parse_config(
        "[[link]]\nname = \"a\"\ntype = \"unix\"\npath = \"/run/q.sock\"\n"
        "sink = \"s\"\nsocket = \"stream\"\n" +
            keys + sinks,
        "t.toml");
  };
  auto r = link("");
  REQUIRE(r.config.has_value());
  CHECK(opts<UnixOptions>(r.config->links[0]).socket == fdlinkd::UnixSocket::stream);
  CHECK_FALSE(opts<UnixOptions>(r.config->links[0]).connect);
  r = link("connect = true\n");
  REQUIRE(r.config.has_value());
  CHECK(opts<UnixOptions>(r.config->links[0]).connect);
  r = link("listen = false\n");
  REQUIRE(r.config.has_value());
  CHECK(opts<UnixOptions>(r.config->links[0]).connect);
  auto error = [&](const std::string& keys) {
    auto e = link(keys);
    REQUIRE_FALSE(e.config.has_value());
    return e.errors[0].message;
  };
  CHECK_THAT(error("listen = true\nconnect = true\n"), Catch::Contains("say the same thing twice"));
  CHECK_THAT(error("connect = true\nsocket_mode = \"0660\"\n"),
             Catch::Contains("does not make the socket it connects to"));
  CHECK_THAT(error("dispatch = \"recvmmsg\"\n"), Catch::Contains("a stream link reads bytes"));
  auto seq = parse_config(R"([[link]]
name = "a"
type = "unix"
path = "/run/q.sock"
connect = true
sink = "s"
)" + sinks,
                          "t.toml");
  REQUIRE_FALSE(seq.config.has_value());
  CHECK_THAT(seq.errors[0].message, Catch::Contains("needs socket = \"stream\""));
}

TEST_CASE("the shipped example config is valid") {
  auto r = fdlinkd::load_config(FDLINKD_SOURCE_DIR "/config/fdlinkd.toml");
  for (auto& e : r.errors)
    UNSCOPED_INFO(e.to_string());
  REQUIRE(r.config.has_value());
  CHECK(r.config->links.size() >= 2);
}

TEST_CASE("bad config: TOML syntax error") {
  expect_one("[daemon]\nworkers = = 1\n", 2, 11, "");
}

TEST_CASE("bad config: unknown key in daemon") {
  expect_one("[daemon]\nworkers = 1\ncolour = \"blue\"\n" + kLinks, 3, 1,
             "unknown key colour in [daemon]");
}

TEST_CASE("bad config: misspelled key in a link") {
  expect_one(R"([[link]]
name = "a"
type = "af_packet"
interface = "x"
intreface = "y"
sink = "s"
[[sink]]
name = "s"
type = "forward"
to = "a"
)",
             5, 1, "unknown key intreface in link \"a\"");
}

TEST_CASE("bad config: unknown top-level table") {
  expect_one("[deamon]\nworkers = 1\n" + kLinks, 1, 2, "unknown key deamon at the top level");
}

TEST_CASE("bad config: wrong type for workers") {
  expect_one("[daemon]\nworkers = \"two\"\n" + kLinks, 2, 11,
             "workers in [daemon] must be an integer, not string");
}

TEST_CASE("bad config: workers out of range") {
  expect_one("[daemon]\nworkers = 0\n" + kLinks, 2, 11, "out of range (1..64)");
}

TEST_CASE("bad config: mtu out of range") {
  auto text = kLinks;
  text.replace(text.find("sink = \"to-b\""), 0, "mtu = 20\n");
  expect_one(text, 6, 7, "mtu = 20 in link \"a\" is out of range (68..65535)");
}

TEST_CASE("bad config: duration without a unit") {
  expect_one("[daemon]\nstats_interval = \"10\"\n" + kLinks, 2, 18, "is not a duration");
}

TEST_CASE("bad config: unknown log level") {
  expect_one("[daemon]\nlog_level = \"loud\"\n" + kLinks, 2, 13,
             "log_level = \"loud\" in [daemon] is not one of: trace, debug, info, warn, error");
}

TEST_CASE("bad config: unknown link type") {
  expect_one(
      R"([[link]]
name = "a"
type = "token_ring"
interface = "x"
sink = "s"
[[sink]]
name = "s"
type = "forward"
to = "a"
)",
      3, 8, "type = \"token_ring\" in link \"a\" is not one of: af_packet, af_xdp, tap, tun, unix");
}

TEST_CASE("bad config: unknown sink type") {
  auto text = kLinks + "\n[[sink]]\nname = \"x\"\ntype = \"teleport\"\n";
  expect_one(text, 26, 8, "unknown sink type \"teleport\" in sink \"x\" (known: forward");
}

TEST_CASE("bad config: link without a name") {
  expect_one(R"([[link]]
name = "a"
type = "af_packet"
interface = "x"
sink = "s"
[[link]]
type = "af_packet"
interface = "y"
sink = "s"
[[sink]]
name = "s"
type = "forward"
to = "a"
)",
             6, 1, "[[link]] #2 is missing required key name");
}

TEST_CASE("bad config: a link without a sink and a sink without a name are not matched up") {
  // (fuzz_config found this: both names are empty, and an empty name matched an empty one,
  // giving an error with no line about a sink "")
  const auto errs = errors_of(R"([[link]]
name = "t"
type = "tun"
interface = "tun0"
[[link]]
name = "e"
type = "af_packet"
interface = "eth0"
sink = "to-t"
[[sink]]
type = "forward"
to = "e"
[[sink]]
name = "to-t"
type = "forward"
to = "t"
)");
  for (const auto& e : errs) {
    INFO(e.to_string());
    CHECK(e.line > 0);
    CHECK(e.message.find("sink \"\"") == std::string::npos);
  }
  REQUIRE(errs.size() == 3);
  CHECK(errs[0].message.find("missing required key sink") != std::string::npos);
  CHECK(errs[1].message.find("cannot use sink \"to-t\"") != std::string::npos);
  CHECK(errs[2].message.find("missing required key name") != std::string::npos);
}

TEST_CASE("bad config: af_packet link without an interface") {
  expect_one(R"([[link]]
name = "a"
type = "af_packet"
sink = "s"
[[sink]]
name = "s"
type = "forward"
to = "a"
)",
             1, 1, "link \"a\" is missing required key interface");
}

TEST_CASE("bad config: duplicate link names") {
  auto text = kLinks;
  text.replace(text.find("name = \"b\""), 10, "name = \"a\"");
  // The second "a" is reported; the sink that names "b" now points nowhere as well.
  const auto errs = errors_of(text);
  REQUIRE(errs.size() == 2);
  CHECK(errs[0].line == 9);  // the repeated name key, not the [[link]] header
  CHECK(errs[0].column == 1);
  CHECK_THAT(errs[0].message,
             Catch::Contains("duplicate link name \"a\" (first defined at line 3)"));
  CHECK_THAT(errs[1].message,
             Catch::Contains("sends to \"b\", which is neither a link nor a sink"));
}

TEST_CASE("bad config: duplicate sink names") {
  auto text = kLinks;
  text.replace(text.find("name = \"to-a\""), 13, "name = \"to-b\"");
  const auto errs = errors_of(text);
  REQUIRE(errs.size() == 2);
  CHECK(errs[0].line == 12);  // link b's sink = "to-a" now names nothing
  CHECK_THAT(errs[0].message, Catch::Contains("sends to sink \"to-a\", which is not defined"));
  CHECK(errs[1].line == 20);
  CHECK_THAT(errs[1].message,
             Catch::Contains("duplicate sink name \"to-b\" (first defined at line 15)"));
}

TEST_CASE("bad config: link names a sink that does not exist") {
  auto text = kLinks;
  text.replace(text.find("sink = \"to-b\""), 13, "sink = \"nope\"");
  expect_one(text, 6, 8, "link \"a\" sends to sink \"nope\", which is not defined");
}

TEST_CASE("bad config: forward to a link that does not exist") {
  auto text = kLinks;
  text.replace(text.find("to = \"b\""), 8, "to = \"zz\"");
  expect_one(text, 17, 6, "sink \"to-b\" sends to \"zz\", which is neither a link nor a sink");
}

TEST_CASE("bad config: recvmmsg on a tap link") {
  expect_one(R"([[link]]
name = "t"
type = "tap"
interface = "tap0"
dispatch = "recvmmsg"
sink = "s"
[[sink]]
name = "s"
type = "forward"
to = "t"
)",
             5, 12, "dispatch = \"recvmmsg\" in link \"t\" needs a socket");
}

TEST_CASE("bad config: forward between a tun and an ethernet link") {
  const auto errs = errors_of(R"([[link]]
name = "t"
type = "tun"
interface = "tun0"
sink = "to-e"
[[link]]
name = "e"
type = "af_packet"
interface = "eth0"
sink = "to-t"
[[sink]]
name = "to-e"
type = "forward"
to = "e"
[[sink]]
name = "to-t"
type = "forward"
to = "t"
)");
  REQUIRE(errs.size() == 2);  // both directions are wrong
  CHECK(errs[0].to_string() ==
        "t.toml:5:8: link \"t\" (tun, IP packets) cannot use sink \"to-e\": it sends to link "
        "\"e\" (af_packet, Ethernet frames)");
  CHECK(errs[1].line == 10);
  CHECK(errs[1].column == 8);
}

TEST_CASE("bad config: key of another link type") {
  expect_one(R"([[link]]
name = "u"
type = "unix"
path = "/run/u.sock"
interface = "eth0"
sink = "s"
[[sink]]
name = "s"
type = "forward"
to = "u"
)",
             5, 13, "interface is not allowed in link \"u\": a unix link does not take it");
}

TEST_CASE("bad config: peer on a seqpacket unix link") {
  expect_one(R"([[link]]
name = "u"
type = "unix"
path = "/run/u.sock"
peer = "/run/p.sock"
sink = "s"
[[sink]]
name = "s"
type = "forward"
to = "u"
)",
             5, 8, "peer in link \"u\" needs socket = \"dgram\"");
}

TEST_CASE("bad config: relative unix path") {
  expect_one(R"([[link]]
name = "u"
type = "unix"
path = "u.sock"
sink = "s"
[[sink]]
name = "s"
type = "forward"
to = "u"
)",
             4, 8, "must be an absolute path");
}

TEST_CASE("bad config: interface name too long") {
  auto text = kLinks;
  text.replace(text.find("\"veth-a\""), 8, "\"a-very-long-interface\"");
  expect_one(text, 5, 13, "is not a valid interface name (1-15 bytes");
}

TEST_CASE("bad config: link written as a table instead of an array of tables") {
  expect_one("[link]\nname = \"a\"\n", 1, 1, "link must be an array of tables: write [[link]]");
}

TEST_CASE("bad config: several fds on a unix link") {
  expect_one(R"([[link]]
name = "u"
type = "unix"
path = "/run/u.sock"
fds = 2
sink = "s"
[[sink]]
name = "s"
type = "forward"
to = "u"
)",
             5, 7, "a unix link has one socket");
}

TEST_CASE("bad config: packet_mmap on a tap link") {
  expect_one(R"([[link]]
name = "t"
type = "tap"
interface = "tap0"
dispatch = "packet_mmap"
sink = "s"
[[sink]]
name = "s"
type = "forward"
to = "t"
)",
             5, 12, "dispatch = \"packet_mmap\" in link \"t\" needs an af_packet link");
}

TEST_CASE("bad config: fanout on a tap link") {
  expect_one(R"([[link]]
name = "t"
type = "tap"
interface = "tap0"
fds = 2
fanout = "lb"
sink = "s"
[[sink]]
name = "s"
type = "forward"
to = "t"
)",
             6, 10, "fanout is not allowed in link \"t\": only af_packet links take it");
}

TEST_CASE("bad config: unknown fanout mode") {
  auto text = kLinks;
  text.replace(text.find("sink = \"to-b\""), 0, "fds = 2\nfanout = \"hashish\"\n");
  expect_one(text, 7, 10, "fanout = \"hashish\" in link \"a\" is not one of: hash, lb, cpu");
}

TEST_CASE("bad config: ring sizes without packet_mmap") {
  auto text = kLinks;
  text.replace(text.find("\n[[link]]\nname = \"b\""), 0, "\n[link.ring]\nblock_size = \"1MiB\"");
  expect_one(text, 9, 14,
             "block_size is not allowed in [link \"a\".ring]: it sizes the receive ring");
}

TEST_CASE("bad config: ring block size not a multiple of the page size") {
  auto text = kLinks;
  text.replace(text.find("sink = \"to-b\""), 0, "dispatch = \"packet_mmap\"\n");
  text.replace(text.find("\n[[link]]\nname = \"b\""), 0,
               "\n[link.ring]\nblock_size = \"5000\"\nblock_timeout = \"500us\"");
  const auto errs = errors_of(text);
  REQUIRE(errs.size() == 2);
  CHECK(errs[0].to_string() ==
        "t.toml:10:14: block_size in [link \"a\".ring] must be a multiple of the page size (4096)");
  CHECK(errs[1].line == 11);
  CHECK_THAT(errs[1].message, Catch::Contains("whole number of milliseconds from 1ms to 1s"));
}

TEST_CASE("bad config: cpu_affinity holds a string") {
  expect_one("[daemon]\ncpu_affinity = [0, \"one\"]\n" + kLinks, 2, 20,
             "cpu_affinity in [daemon] must hold integers, not string");
}

TEST_CASE("af_packet fast-path keys parse") {
  auto text = kLinks;
  text.replace(text.find("sink = \"to-b\""), 0,
               "fds = 2\nfanout = \"lb\"\ndispatch = \"packet_mmap\"\ntx_ring = true\n"
               "qdisc_bypass = true\n");
  text.replace(text.find("\n[[link]]\nname = \"b\""), 0,
               "\n[link.ring]\nblock_size = \"1MiB\"\nblock_count = 8\nframe_size = 4096\n"
               "block_timeout = \"2ms\"\ntx_frame_count = 256");
  auto r = parse_config("[daemon]\nworkers = 2\ncpu_affinity = [1]\n" + text, "t.toml");
  for (auto& e : r.errors)
    UNSCOPED_INFO(e.to_string());
  REQUIRE(r.config.has_value());
  const auto& a = r.config->links[0];
  CHECK(a.fds == 2);
  const auto& ao = opts<AfPacketOptions>(a);
  CHECK(ao.fanout == fdlinkd::Fanout::lb);
  CHECK(a.dispatch == fdlinkd::DispatchMode::packet_mmap);
  CHECK(ao.tx_ring);
  CHECK(ao.qdisc_bypass);
  CHECK(ao.ring.block_size == 1u << 20);
  CHECK(ao.ring.block_count == 8);
  CHECK(ao.ring.frame_size == 4096);
  CHECK(ao.ring.block_timeout == std::chrono::milliseconds(2));
  CHECK(ao.ring.tx_frame_count == 256);
  CHECK(r.config->daemon.cpu_affinity == std::vector<unsigned>{1});
}

TEST_CASE("af_packet passes offloads to the kernel unless the bypass or a TX ring cannot") {
  // a: only the key under test; b stays at the defaults.
  auto a_with = [](const std::string& lines) {
    auto text = kLinks;
    text.replace(text.find("sink = \"to-b\""), 0, lines);
    auto r = parse_config(text, "t.toml");
    REQUIRE(r.config.has_value());
    return r.config->links[0].vnet_hdr;
  };
  CHECK(a_with(""));                             // default: the qdisc path segments
  CHECK_FALSE(a_with("qdisc_bypass = true\n"));  // the direct path cannot
  CHECK_FALSE(a_with("tx_ring = true\n"));       // a slot holds one wire frame
  CHECK_FALSE(a_with("vnet_hdr = false\n"));
  CHECK(a_with("qdisc_bypass = true\nvnet_hdr = true\n"));  // asked for: the user's call
  expect_one(R"([[link]]
name = "a"
type = "af_packet"
interface = "veth-a"
tx_ring = true
vnet_hdr = true
sink = "s"
[[sink]]
name = "s"
type = "forward"
to = "a"
)",
             6, 12, "vnet_hdr = true in link \"a\" cannot go with tx_ring = true");
}

TEST_CASE("vnet keys parse on a tap link") {
  auto r = parse_config(R"([[link]]
name = "t"
type = "tap"
interface = "tap0"
vnet_hdr = true
offloads = ["csum", "tso4", "uso"]
gso_max_size = "32KiB"
sink = "s"
[[sink]]
name = "s"
type = "forward"
to = "t"
)",
                        "t.toml");
  for (auto& e : r.errors)
    UNSCOPED_INFO(e.to_string());
  REQUIRE(r.config.has_value());
  const auto& t = r.config->links[0];
  CHECK(t.vnet_hdr);
  CHECK(opts<TapOptions>(t).offload_csum);
  CHECK(opts<TapOptions>(t).offload_tso4);
  CHECK_FALSE(opts<TapOptions>(t).offload_tso6);
  CHECK(opts<TapOptions>(t).offload_uso);
  CHECK(t.gso_max_size == 32768);
  CHECK(t.rx_capacity() == 32768);
  CHECK(t.wire_capacity() == 1518);
}

namespace {
// A vnet_hdr TAP whose `offloads` line (line 6, value at column 12) is `list`.
std::string tap_with_offloads(const std::string& list) {
  return R"([[link]]
name = "t"
type = "tap"
interface = "tap0"
vnet_hdr = true
offloads = )" +
         list + R"(
sink = "s"
[[sink]]
name = "s"
type = "forward"
to = "t"
)";
}
}  // namespace

TEST_CASE("bad config: segmentation offloads without checksum offload") {
  expect_one(tap_with_offloads(R"(["tso4"])"), 6, 12, "tso4, tso6 and uso need csum");
  expect_one(tap_with_offloads(R"(["uso"])"), 6, 12, "tso4, tso6 and uso need csum");
}

TEST_CASE("bad config: an unknown offload is named with the ones there are") {
  expect_one(tap_with_offloads(R"(["csum", "ufo"])"), 6, 21,
             "\"ufo\" is not one of csum, tso4, tso6, uso");
}

TEST_CASE("bad config: offloads without vnet_hdr") {
  expect_one(R"([[link]]
name = "t"
type = "tap"
interface = "tap0"
offloads = ["csum"]
sink = "s"
[[sink]]
name = "s"
type = "forward"
to = "t"
)",
             5, 12, "offloads is not allowed in link \"t\": it needs vnet_hdr = true");
}

TEST_CASE("sizes parse with units") {
  using fdlinkd::parse_size;
  CHECK(parse_size("4096") == 4096u);
  CHECK(parse_size("64KiB") == 65536u);
  CHECK(parse_size("1MiB") == 1048576u);
  CHECK(parse_size("2GiB") == 2147483648u);
  CHECK(parse_size("10KB") == 10000u);
  CHECK_FALSE(parse_size("1 MiB"));
  CHECK_FALSE(parse_size("MiB"));
  CHECK_FALSE(parse_size("1.5MiB"));
}

TEST_CASE("bad config: no links at all") {
  expect_one("[daemon]\nworkers = 1\n", 1, 1, "no [[link]] defined");
}

TEST_CASE("bad config: every error is reported at once in file order") {
  const auto errs = errors_of("[daemon]\nworkers = 0\nlog_level = \"x\"\nfoo = 1\n" + kLinks);
  REQUIRE(errs.size() == 3);
  CHECK(errs[0].line == 2);
  CHECK(errs[1].line == 3);
  CHECK(errs[2].line == 4);
  CHECK(errs[2].to_string() == "t.toml:4:1: unknown key foo in [daemon]");
}

TEST_CASE("bad config: unreadable file") {
  auto r = fdlinkd::load_config("/nonexistent/fdlinkd.toml");
  REQUIRE_FALSE(r.config.has_value());
  REQUIRE(r.errors.size() == 1);
  CHECK_THAT(r.errors[0].to_string(),
             Catch::StartsWith("/nonexistent/fdlinkd.toml: cannot read config"));
}

TEST_CASE("durations parse with units") {
  using fdlinkd::parse_duration;
  CHECK(parse_duration("10s") == std::chrono::seconds(10));
  CHECK(parse_duration("250ms") == std::chrono::milliseconds(250));
  CHECK(parse_duration("500us") == std::chrono::microseconds(500));
  CHECK(parse_duration("2m") == std::chrono::minutes(2));
  CHECK(parse_duration("1h") == std::chrono::hours(1));
  CHECK(parse_duration("0s") == std::chrono::seconds(0));
  CHECK_FALSE(parse_duration("10"));
  CHECK_FALSE(parse_duration("s"));
  CHECK_FALSE(parse_duration("-1s"));
  CHECK_FALSE(parse_duration("1.5s"));
  CHECK_FALSE(parse_duration("10 s"));
}

TEST_CASE("hostile config: a key of 100000 dotted parts is refused before the parser recurses") {
  std::string text = "a";
  for (int i = 0; i < 100000; ++i)
    text += ".a";
  text += " = 1\n";
  const auto errs = errors_of(text);
  REQUIRE(errs.size() == 1);
  CHECK(errs[0].line == 1);
  CHECK_THAT(errs[0].message, Catch::Contains("more than 32 dotted parts"));
}

TEST_CASE("hostile config: arrays nested 100000 deep are refused") {
  const std::string text = "a = " + std::string(100000, '[') + "\n";
  const auto errs = errors_of(text);
  REQUIRE(errs.size() == 1);
  CHECK_THAT(errs[0].message, Catch::Contains("nested more than 32 deep"));
}

TEST_CASE("hostile config: dots and brackets inside strings and comments do not count") {
  auto text = kLinks;
  text += "# " + std::string(100, '[') + std::string(100, '.') + "\n";
  text.replace(text.find("interface = \"veth-b\""), 20,
               "interface = \"veth-b\" # ..........................................");
  const auto r = parse_config(text, "t.toml");
  CHECK(r.config.has_value());
}

TEST_CASE("hostile config: only the first 100 of a million errors are kept") {
  std::string text = kLinks;
  for (int i = 0; i < 1000000; ++i)
    text += "k" + std::to_string(i) + " = 1\n";
  // (the keys land in the last [[sink]] table)
  const auto r = parse_config(text, "t.toml");
  REQUIRE_FALSE(r.config.has_value());
  CHECK(r.errors.size() == 100);
  CHECK(r.error_count == 1000000);
}

TEST_CASE("hostile config: a long value is cut in the message") {
  auto text = kLinks;
  text.replace(text.find("veth-a"), 6, std::string(1000000, 'x'));
  const auto errs = errors_of(text);
  REQUIRE(errs.size() == 1);
  CHECK(errs[0].message.size() < 300);
  CHECK_THAT(errs[0].message, Catch::Contains("(1000000 bytes)"));
}

TEST_CASE("hostile config: NUL and control characters in names are refused") {
  for (const char* bad : {"ve\\u0000th", "ve\\u0001th", "veth\\n", "ve\\u007fth"}) {
    auto text = kLinks;
    text.replace(text.find("veth-a"), 6, bad);
    const auto errs = errors_of(text);
    REQUIRE(errs.size() == 1);
    CHECK(errs[0].line == 5);
    CHECK_THAT(errs[0].message, Catch::Contains("is not a valid interface name"));
    CHECK_THAT(errs[0].message, Catch::Contains("\\x"));
  }
  const std::string unix_link = kLinks + R"(
[[link]]
name = "u"
type = "unix"
path = "/tmp/a\u0000b"
sink = "to-b"
)";
  auto netns = kLinks;
  netns.replace(netns.find("interface = \"veth-a\""), 20,
                "interface = \"veth-a\"\nnetns = \"x\\u0001y\"");
  for (const std::string& text : {unix_link, netns}) {
    const auto errs = errors_of(text);
    REQUIRE(errs.size() == 1);
    CHECK_THAT(errs[0].message, Catch::Contains("without control characters"));
  }
}

TEST_CASE(
    "back-pressure keys: unix links wait by default and tap/tun when asked but af_packet never") {
  auto r = parse_config(with_drop_sink(R"([[link]]
name = "u"
type = "unix"
path = "/run/u.sock"
sink = "s"
[[link]]
name = "v"
type = "unix"
socket = "dgram"
path = "/run/v.sock"
tx_backlog = 0
sink = "s"
[[link]]
name = "t"
type = "tap"
interface = "tap0"
tx_backlog = 512
tx_stall_timeout = "250ms"
sink = "s"
)"),
                        "t.toml");
  REQUIRE(r.config.has_value());
  CHECK(r.config->links[0].tx_backlog == 4096);
  CHECK(r.config->links[0].tx_stall_timeout == std::chrono::seconds(1));
  CHECK(r.config->links[1].tx_backlog == 0);
  CHECK(r.config->links[2].tx_backlog == 512);
  CHECK(r.config->links[2].tx_stall_timeout == std::chrono::milliseconds(250));
}

TEST_CASE("bad config: tx_backlog on an af_packet link") {
  auto text = kLinks;
  text.replace(text.find("sink = \"to-b\""), 0, "tx_backlog = 64\n");
  expect_one(text, 6, 14, "tx_backlog is not allowed in link \"a\": an af_packet link is a wire");
}

TEST_CASE("bad config: tx_stall_timeout out of range") {
  expect_one(with_drop_sink(R"([[link]]
name = "u"
type = "unix"
path = "/run/u.sock"
tx_stall_timeout = "90s"
sink = "s"
)"),
             5, 20, "tx_stall_timeout in link \"u\" must be from 1ms to 60s");
}

TEST_CASE("vxlan keys parse with the kernel's defaults") {
  auto r = parse_config(with_drop_sink(R"([[link]]
name = "t4"
type = "vxlan"
vni = 42
local = "192.0.2.1"
remotes = ["192.0.2.2", "192.0.2.3"]
sink = "s"
[[link]]
name = "t6"
type = "vxlan"
vni = 16777215
local = "2001:db8::1"
port = 8472
learning = false
ttl = 8
inner_vlan = "keep"
sink = "s"
)"),
                        "t.toml");
  REQUIRE(r.config.has_value());
  const auto& t4 = r.config->links[0];
  CHECK(opts<VxlanOptions>(t4).vni == 42);
  CHECK(opts<VxlanOptions>(t4).port == 4789);
  CHECK(opts<VxlanOptions>(t4).remotes == std::vector<std::string>{"192.0.2.2", "192.0.2.3"});
  CHECK(opts<VxlanOptions>(t4).learning);
  CHECK(opts<VxlanOptions>(t4).ttl == 64);
  CHECK(t4.mtu == 1450);  // 1500 - 50
  const auto& t6 = r.config->links[1];
  CHECK(t6.mtu == 1430);  // 1500 - 70
  CHECK(opts<VxlanOptions>(t6).port == 8472);
  CHECK_FALSE(opts<VxlanOptions>(t6).learning);
  CHECK(opts<VxlanOptions>(t6).ttl == 8);
  CHECK(opts<VxlanOptions>(t6).inner_vlan_keep);
  CHECK_FALSE(opts<VxlanOptions>(t4).inner_vlan_keep);
  CHECK(opts<VxlanOptions>(t4).source_port_min ==
        49152);  // RFC 6335's dynamic range, as RFC 7348 5 suggests
  CHECK(opts<VxlanOptions>(t4).source_port_max == 65535);
}

TEST_CASE("vxlan links share an address and port with different VNIs but not the same one") {
  const std::string two = R"([[link]]
name = "blue"
type = "vxlan"
vni = 10
local = "2001:db8::1"
source_ports = [50000, 50099]
sink = "s"
[[link]]
name = "red"
type = "vxlan"
vni = 20
local = "2001:db8:0::1"
sink = "s"
)";
  auto r = parse_config(with_drop_sink(two), "t.toml");
  REQUIRE(r.config.has_value());
  CHECK(opts<VxlanOptions>(r.config->links[0]).source_port_min == 50000);
  CHECK(opts<VxlanOptions>(r.config->links[0]).source_port_max == 50099);
  CHECK(fdlinkd::VxlanLink::socket_key(r.config->links[0]) ==
        fdlinkd::VxlanLink::socket_key(r.config->links[1]));
  // The same VNI: refused at the second one's vni (one address, written two ways).
  std::string same = two;
  same.replace(same.find("vni = 20"), 8, "vni = 10");
  expect_one(with_drop_sink(same), 11, 7,
             "vni 10 in link \"red\" is already link \"blue\"'s on 2001:db8:0::1 port 4789");
  // On another port it is another socket.
  std::string other_port = same;
  other_port.replace(other_port.find("vni = 10\nlocal = \"2001:db8:0::1\""), 8,
                     "vni = 10\nport = 4790");
  CHECK(parse_config(with_drop_sink(other_port), "t.toml").config.has_value());
}

TEST_CASE("bad config: vxlan source_ports that are not a range") {
  for (const char* v : {"[60000, 50000]", "[0, 10]", "[1, 70000]", "[1]", "\"1-2\""}) {
    INFO(v);
    expect_one(with_drop_sink(std::string(R"([[link]]
name = "t"
type = "vxlan"
vni = 1
local = "192.0.2.1"
source_ports = )") + v + "\nsink = \"s\"\n"),
               6, 16, "source_ports in link \"t\" must be [min, max]");
  }
}

TEST_CASE("bad config: vxlan without a vni") {
  expect_one(with_drop_sink(R"([[link]]
name = "t"
type = "vxlan"
local = "192.0.2.1"
sink = "s"
)"),
             1, 1, "link \"t\" is missing required key vni");
}

TEST_CASE("bad config: a vxlan remote of the other address family") {
  expect_one(with_drop_sink(R"([[link]]
name = "t"
type = "vxlan"
vni = 1
local = "192.0.2.1"
remotes = ["192.0.2.2", "2001:db8::2"]
sink = "s"
)"),
             6, 25, "\"2001:db8::2\" is IPv6 but local is IPv4");
}

TEST_CASE("bad config: vxlan local that is not an address and a zero IPv6 checksum") {
  expect_one(with_drop_sink(R"([[link]]
name = "t"
type = "vxlan"
vni = 1
local = "host.example"
sink = "s"
)"),
             5, 9, "local = \"host.example\" in link \"t\" is not an IPv4 or IPv6 address");
  // Over IPv6 "zero" is allowed (RFC 6935/6936), but the links of one socket must agree.
  expect_one(with_drop_sink(R"([[link]]
name = "t"
type = "vxlan"
vni = 1
local = "2001:db8::1"
udp_checksum = "zero"
sink = "s"
[[link]]
name = "u"
type = "vxlan"
vni = 2
local = "2001:db8::1"
udp_checksum = "on"
sink = "s"
)"),
             13, 16, "udp_checksum in link \"u\" differs from link \"t\"'s");
}

TEST_CASE("bad config: a vxlan key on an af_packet link") {
  auto text = kLinks;
  text.replace(text.find("sink = \"to-b\""), 0, "vni = 42\n");
  expect_one(text, 6, 7, "vni is not allowed in link \"a\": only vxlan links take it");
}

TEST_CASE("gro is an af_packet key that needs vnet_hdr") {
  auto text = kLinks;
  text.replace(text.find("sink = \"to-b\""), 0, "gro = true\n");
  auto r = parse_config(text, "t.toml");
  REQUIRE(r.config.has_value());
  CHECK(opts<AfPacketOptions>(r.config->links[0]).gro);
  CHECK_FALSE(opts<AfPacketOptions>(r.config->links[1]).gro);
  // With tx_ring (no virtio-net headers there), or vnet_hdr = false: refused at gro.
  auto ring = kLinks;
  ring.replace(ring.find("sink = \"to-b\""), 0, "tx_ring = true\ngro = true\n");
  expect_one(ring, 7, 7, "gro = true in link \"a\" needs vnet_hdr = true");
  auto tap = kLinks;
  tap.replace(tap.find("type = \"af_packet\""), 18, "type = \"tap\"");
  tap.replace(tap.find("sink = \"to-b\""), 0, "gro = true\n");
  expect_one(tap, 6, 7, "gro is not allowed in link \"a\": only af_packet links take it");
}

TEST_CASE("ring version 2: a TPACKET_V2 receive ring with slots that hold a frame") {
  auto with_ring = [](const std::string& ring) {
    auto text = kLinks;
    text.replace(text.find("sink = \"to-b\""), 0, "dispatch = \"packet_mmap\"\n");
    text.replace(text.find("\n[[link]]\nname = \"b\""), 0, "\n[link.ring]\n" + ring);
    return text;
  };
  auto r = parse_config(with_ring("version = 2"), "t.toml");
  REQUIRE(r.config.has_value());
  CHECK(opts<AfPacketOptions>(r.config->links[0]).ring.version == 2);
  CHECK(opts<AfPacketOptions>(r.config->links[1]).ring.version == 3);  // (the default)
  expect_one(with_ring("version = 2\nblock_timeout = \"2ms\""), 11, 17,
             "block_timeout is not allowed in [link \"a\".ring]: a TPACKET_V2 ring hands over each "
             "frame as it lands");
  expect_one(with_ring("version = 2\nframe_size = 1024"), 9, 1,
             "frame_size (1024) in [link \"a\".ring] cannot hold one frame of the link's MTU");
  expect_one(with_ring("version = 2\nframe_size = 3072"), 9, 1,
             "block_size (131072) in [link \"a\".ring] must be a multiple of frame_size (3072)");
  expect_one(with_ring("version = 1"), 10, 11,
             "version = 1 in [link \"a\".ring] is out of range (2..3)");
}

TEST_CASE("af_xdp links: queues mode and zero_copy and the keys they do not take") {
  auto xdp = [](const std::string& lines) {
    auto text = kLinks;
    text.replace(text.find("type = \"af_packet\""), 18, "type = \"af_xdp\"");
    text.replace(text.find("sink = \"to-b\""), 0, lines);
    return text;
  };
  auto r = parse_config(xdp(""), "t.toml");
  REQUIRE(r.config.has_value());
  const LinkConfig& a = r.config->links[0];
  CHECK(a.type == &fdlinkd::AfXdpLink::kType);
  CHECK(opts<AfXdpOptions>(a).queues == 0);  // all of the interface's, counted when it opens
  CHECK_FALSE(opts<AfXdpOptions>(a).xdp_skb);
  CHECK(opts<AfXdpOptions>(a).zero_copy == ZeroCopy::automatic);
  CHECK(opts<AfXdpOptions>(a).promisc);
  CHECK_FALSE(a.vnet_fd());  // frames from AF_XDP rings carry no virtio-net header

  r = parse_config(xdp("queues = 4\nmode = \"skb\"\nzero_copy = \"off\"\npromisc = false\n"),
                   "t.toml");
  REQUIRE(r.config.has_value());
  CHECK(opts<AfXdpOptions>(r.config->links[0]).queues == 4);
  CHECK(r.config->links[0].fds == 4);  // one socket (port) per queue
  CHECK(opts<AfXdpOptions>(r.config->links[0]).xdp_skb);
  CHECK(opts<AfXdpOptions>(r.config->links[0]).zero_copy == ZeroCopy::off);
  CHECK_FALSE(opts<AfXdpOptions>(r.config->links[0]).promisc);

  expect_one(xdp("mode = \"skb\"\nzero_copy = \"on\"\n"), 7, 13,
             "zero_copy is not allowed in link \"a\": zero_copy = \"on\" needs mode = \"native\"");
  expect_one(xdp("fds = 2\n"), 6, 7, "fds is not allowed in link \"a\"");
  expect_one(xdp("dispatch = \"packet_mmap\"\n"), 6, 12, "dispatch is not allowed in link \"a\"");
  expect_one(xdp("tx_backlog = 8\n"), 6, 14, "an af_xdp link is a wire");
  expect_one(xdp("queues = 65\n"), 6, 10, "queues = 65 in link \"a\" is out of range (1..64)");
  expect_one(xdp("mode = \"driver\"\n"), 6, 8, "mode");
  // ... and the af_xdp keys on another type.
  auto afp = kLinks;
  afp.replace(afp.find("sink = \"to-b\""), 0, "queues = 2\n");
  expect_one(afp, 6, 10,
             "queues is not allowed in link \"a\": only af_xdp and vhost_user links take it");
}

TEST_CASE("busy_poll: a worker polls for up to 10ms after work and a reload cannot change it") {
  auto with = [](const std::string& v) { return "[daemon]\nbusy_poll = " + v + "\n" + kLinks; };
  auto r = parse_config(with("\"200us\""), "t.toml");
  REQUIRE(r.config.has_value());
  CHECK(r.config->daemon.busy_poll == std::chrono::microseconds(200));
  auto off = parse_config(kLinks, "t.toml");
  REQUIRE(off.config.has_value());
  CHECK(off.config->daemon.busy_poll.count() == 0);
  CHECK(off.config->daemon.restart_needed(r.config->daemon) == "busy_poll");
  expect_one(with("\"11ms\""), 2, 13,
             "busy_poll in [daemon] must be from 0us to 10ms, or \"always\"");
  const auto always = parse_config(with("\"always\""), "x.toml");
  REQUIRE(always.config);
  CHECK(always.config->daemon.busy_poll_always);
  CHECK(always.config->daemon.restart_needed(r.config->daemon) == "busy_poll");
  CHECK_FALSE(r.config->daemon.busy_poll_always);
}

TEST_CASE("vhost_user links listen by default or connect - and refuse what does not fit") {
  auto link = [&](const std::string& keys) {
    return parse_config(
        "[[link]]\nname = \"a\"\ntype = \"vhost_user\"\npath = \"/run/vm1.sock\"\n"
        "sink = \"s\"\n" +
            keys + "[[sink]]\nname = \"s\"\ntype = \"forward\"\nto = \"a\"\n",
        "t.toml");
  };
  auto r = link("");
  REQUIRE(r.config.has_value());
  const auto& o = opts<fdlinkd::VhostUserOptions>(r.config->links[0]);
  CHECK(o.path == "/run/vm1.sock");
  CHECK_FALSE(o.client);
  CHECK(o.queues == 1);
  CHECK(o.offloads);
  CHECK(o.file.mode == 0600);
  r = link("client = true\nqueues = 4\noffloads = false\n");
  REQUIRE(r.config.has_value());
  CHECK(opts<fdlinkd::VhostUserOptions>(r.config->links[0]).client);
  CHECK(opts<fdlinkd::VhostUserOptions>(r.config->links[0]).queues == 4);
  CHECK(r.config->links[0].fds == 4);
  auto error = [&](const std::string& keys) {
    auto e = link(keys);
    REQUIRE_FALSE(e.config.has_value());
    return e.errors[0].message;
  };
  CHECK_THAT(error("queues = 65\n"), Catch::Contains("queues"));
  CHECK_THAT(error("interface = \"eth0\"\n"), Catch::Contains("not an interface"));
  CHECK_THAT(error("fds = 2\n"), Catch::Contains("use queues"));
  CHECK_THAT(error("client = true\nsocket_mode = \"0660\"\n"),
             Catch::Contains("does not make the socket it connects to"));
  expect_one(
      "[[link]]\nname = \"a\"\ntype = \"vhost_user\"\npath = \"vm.sock\"\nsink = \"s\"\n"
      "[[sink]]\nname = \"s\"\ntype = \"forward\"\nto = \"a\"\n",
      4, 8, "must be an absolute path");
}

// --- [daemon] include: drop-in files ---------------------------------------------------------

namespace {

// A directory of files for one test, removed after it.
struct DropinDir {
  std::string dir;
  DropinDir() {
    char tmpl[] = "/tmp/fdlinkd-unit-XXXXXX";
    dir = ::mkdtemp(tmpl);
  }
  ~DropinDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    const std::string path = dir + "/" + name;
    FILE* f = std::fopen(path.c_str(), "w");
    std::fputs(text.c_str(), f);
    std::fclose(f);
    return path;
  }
};

const std::string kBridgeOnly = R"([daemon]
include = ["ports.d/*.toml"]

[[sink]]
name = "pods"
type = "bridge"
)";

std::string port(const std::string& name, const std::string& extra = "") {
  return "[[link]]\nname = \"" + name + "\"\ntype = \"af_packet\"\ninterface = \"v" + name +
         "\"\nsink = \"pods\"\n" + extra;
}

}  // namespace

TEST_CASE("A main file with only a bridge and an include is valid, with no links yet") {
  DropinDir d;
  ::mkdir((d.dir + "/ports.d").c_str(), 0755);
  auto r = fdlinkd::load_config(d.write("main.toml", kBridgeOnly));
  REQUIRE(r.config.has_value());
  CHECK(r.config->links.empty());
  CHECK(r.config->files.size() == 1);
  // Without an include, no links is still an error.
  expect_one("[[sink]]\nname = \"pods\"\ntype = \"bridge\"\n", 1, 1, "no [[link]] defined");
}

TEST_CASE("Drop-in links join the main file's bridge with their VLANs, in file order") {
  DropinDir d;
  ::mkdir((d.dir + "/ports.d").c_str(), 0755);
  d.write("ports.d/b.toml", port("pb", "vlans = { access = 20 }\n"));
  d.write("ports.d/a.toml", port("pa", "vlans = { access = 10 }\n"));
  d.write("ports.d/ignored.txt", "not toml");
  auto r = fdlinkd::load_config(d.write("main.toml", kBridgeOnly));
  INFO((r.errors.empty() ? "" : r.errors[0].to_string()));
  REQUIRE(r.config.has_value());
  REQUIRE(r.config->links.size() == 2);
  CHECK(r.config->links[0].name == "pa");  // a.toml before b.toml
  CHECK(r.config->links[0].file() == d.dir + "/ports.d/a.toml");
  CHECK(r.config->files.size() == 3);
  // The bridge lists the links as its ports now (its outputs).
  const auto* br = r.config->find_sink("pods");
  REQUIRE(br);
  const auto outs = br->type->outputs(*br, *r.config);
  REQUIRE(outs.size() == 2);
  CHECK(outs[0].name == "pa");
  CHECK(outs[1].name == "pb");
  // A port joining changes the bridge's settings (a reload rebuilds it with the new port).
  auto before = fdlinkd::load_config(d.dir + "/main.toml");
  d.write("ports.d/c.toml", port("pc"));
  auto after = fdlinkd::load_config(d.dir + "/main.toml");
  REQUIRE(after.config.has_value());
  CHECK(after.config->find_sink("pods")->settings != before.config->find_sink("pods")->settings);
}

TEST_CASE("Errors in drop-ins name the drop-in file at the offending key") {
  DropinDir d;
  ::mkdir((d.dir + "/ports.d").c_str(), 0755);
  const std::string a = d.write("ports.d/a.toml", port("pa", "vlans = { acess = 10 }\n"));
  const std::string b = d.write("ports.d/b.toml", "[daemon]\nworkers = 2\n" + port("pa"));
  auto r = fdlinkd::load_config(d.write("main.toml", kBridgeOnly));
  REQUIRE_FALSE(r.config.has_value());
  std::string all;
  for (const auto& e : r.errors)
    all += e.to_string() + "\n";
  INFO(all);
  CHECK_THAT(all, Catch::Contains(a + ":6:9: vlans in link \"pa\" needs exactly one of access"));
  CHECK_THAT(all, Catch::Contains(a + ":6:11: unknown key acess"));
  CHECK_THAT(all, Catch::Contains(b + ":1:2: [daemon] belongs in the main file"));
  CHECK_THAT(
      all, Catch::Contains(b + ":4:1: duplicate link name \"pa\" (first defined at " + a + ":2)"));
  // Sorted: the first drop-in's errors before the second's.
  CHECK(r.errors.front().file == a);
  CHECK(r.errors.back().file == b);
}

TEST_CASE("vlans on a link whose sink is not a bridge is refused at the key") {
  expect_one(kLinks +
                 "\n[[link]]\nname = \"c\"\ntype = \"af_packet\"\ninterface = \"v\"\n"
                 "sink = \"to-a\"\nvlans = { access = 10 }\n",
             29, 9, "only a link whose sink is a bridge takes it");
}
