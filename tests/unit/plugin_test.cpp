// Sink plugins: the example plugin loaded through the config and run on real fds; plugins the
// config must refuse.
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <memory>

#include "config/config.hpp"
#include "dispatch/dispatcher.hpp"
#include "frames.hpp"
#include "sink/graph.hpp"
#include "test_worker.hpp"

using namespace fdlinkd;
using namespace fdlinkd::test;

namespace {

std::string config_with(const std::string& sink) {
  return R"([[link]]
name = "a"
type = "af_packet"
interface = "veth-a"
sink = "rw"
[[link]]
name = "b"
type = "af_packet"
interface = "veth-b"
sink = "rw"
)" + sink;
}

std::vector<ConfigError> errors_of(const std::string& text) {
  auto r = parse_config(text, "p.toml");
  REQUIRE_FALSE(r.config.has_value());
  return r.errors;
}

}  // namespace

TEST_CASE("plugin: mac_rewrite rewrites the destination MAC and sends to its output") {
  auto r = parse_config(config_with(std::string(R"([[sink]]
name = "rw"
type = "plugin"
path = ")") + MAC_REWRITE_PLUGIN + R"("
to = ["b"]
config = { dst = "02:aa:bb:cc:dd:ee" }
)"),
                        "p.toml");
  INFO((r.errors.empty() ? "" : r.errors[0].to_string()));
  REQUIRE(r.config.has_value());
  const SinkConfig& sc = r.config->sinks[0];

  Pair a, b;
  PairLink la(r.config->links[0], a.inside), lb(r.config->links[1], b.inside);
  lb.set_index(1);
  boost::asio::io_context io;
  Worker w(io, 0, 2048, 2048);
  Graph g(1, 64);
  g.add("rw", sink_type_of(sc).create(sc, SinkSetup{*r.config, 1}), {{&lb}});
  // (these af_packet links are socketpairs: every read and write has a virtio header)
  Dispatcher d(w, la, 0, g);
  d.attach(a.inside);
  const Bytes f = tcp4_frame(100, 0x10);
  Bytes msg(10, 0);
  msg.insert(msg.end(), f.begin(), f.end());
  REQUIRE(::send(a.outside, msg.data(), msg.size(), 0) > 0);
  run_until(io, [&] { return lb.totals().tx_packets == 1; });
  Bytes got(4096);
  const ssize_t n = ::recv(b.outside, got.data(), got.size(), MSG_DONTWAIT);
  REQUIRE(n == static_cast<ssize_t>(msg.size()));
  got.resize(static_cast<std::size_t>(n));
  CHECK(Bytes(got.begin() + 10, got.begin() + 16) == Bytes{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee});
  CHECK(Bytes(got.begin() + 16, got.end()) == Bytes(f.begin() + 6, f.end()));
  const auto names = g.sink(0).counter_names();
  REQUIRE(names.size() == 5);
  CHECK(names[0] == "rewritten");
  CHECK(g.counters(0)[0] == 1);
}

TEST_CASE("plugin: a plugin of another ABI version is refused with line and column") {
  const auto errs = errors_of(config_with(std::string(R"([[sink]]
name = "rw"
type = "plugin"
path = ")") + BAD_ABI_PLUGIN + R"("
)"));
  REQUIRE(errs.size() == 1);
  CHECK(errs[0].line == 14);
  CHECK(errs[0].column == 8);
  CHECK_THAT(errs[0].message, Catch::Contains("speaks sink plugin ABI version 999"));
  CHECK_THAT(errs[0].message, Catch::Contains("this fdlinkd speaks version 1"));
}

TEST_CASE("plugin: a path that is not a shared object - or not a plugin - is refused") {
  const auto errs = errors_of(config_with(R"([[sink]]
name = "rw"
type = "plugin"
path = "/etc/hostname"
)"));
  REQUIRE(errs.size() == 1);
  CHECK_THAT(errs[0].message,
             Catch::StartsWith("cannot load plugin /etc/hostname for sink \"rw\""));
  const auto errs2 = errors_of(config_with(R"([[sink]]
name = "rw"
type = "plugin"
path = "/lib/x86_64-linux-gnu/libc.so.6"
)"));
  REQUIRE(errs2.size() == 1);
  CHECK_THAT(errs2[0].message, Catch::Contains("is not an fdlinkd sink plugin"));
}

TEST_CASE("plugin: keys the plugin rejects are a config error with its message") {
  const auto errs = errors_of(config_with(std::string(R"([[sink]]
name = "rw"
type = "plugin"
path = ")") + MAC_REWRITE_PLUGIN + R"("
to = ["b"]
config = { dst = "nope", colour = 3 }
)"));
  REQUIRE(errs.size() == 1);
  CHECK(errs[0].line == 16);
  CHECK_THAT(errs[0].message,
             Catch::Contains("plugin mac_rewrite rejects the config of sink \"rw\""));
}
