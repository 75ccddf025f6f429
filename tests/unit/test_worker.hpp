// Links, worker contexts and graphs for tests that drive the data path by hand: a socketpair
// stands in for each link (one end is the link's fd, the other plays the outside world).
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include "core/worker.hpp"
#include "link/link.hpp"
#include "runtime/kinds.hpp"
#include "sink/forward.hpp"
#include "sink/graph.hpp"

namespace fdlinkd::test {

/// The config of link `name` of `type` whose frames go to sink `sink`, as the config reader
/// makes it: with the traits its type gives it (a unix link is a socket, a TAP a character
/// device, an af_packet link always reads virtio headers). `keys`: more lines of its [[link]]
/// table (before any sub-table); the type's required keys are made up unless given.
inline LinkConfig config_of(const std::string& name, const std::string& type = "unix",
                            const std::string& sink = "to-b", const std::string& keys = "") {
  std::string t =
      "[[link]]\nname = \"" + name + "\"\ntype = \"" + type + "\"\nsink = \"" + sink + "\"\n";
  const bool given = keys.find("path") != std::string::npos ||
                     keys.find("interface") != std::string::npos ||
                     keys.find("local") != std::string::npos;
  if (!given && type == "unix") t += "path = \"/tmp/fdlinkd-unit-" + name + ".sock\"\n";
  if (!given && type != "unix" && type != "vxlan") t += "interface = \"u-" + name + "\"\n";
  t += keys + "\n[[sink]]\nname = \"" + sink + "\"\ntype = \"drop\"\n";
  const auto r = parse_config(t, "unit.toml");
  for (const auto& e : r.errors)
    UNSCOPED_INFO(e.to_string());
  REQUIRE(r.config);
  return r.config->links[0];
}

/// A link over the inside ends of socketpairs, one per port.
class PairLink : public Link {
 public:
  PairLink(const LinkConfig& c, const std::vector<int>& fds) : Link(c) {
    for (std::size_t i = 0; i < fds.size(); ++i)
      ports_[i]->fd = fds[i];
  }
  PairLink(const LinkConfig& c, int fd) : PairLink(c, std::vector<int>{fd}) {}
  bool eof = false;  ///< a dispatcher saw the fd end
  bool zero_read_is_eof(int fd) const override { return peer_hung_up(fd); }
  void port_closed(std::size_t, PortReader&) override { eof = true; }

 protected:
  void open_fds() override {}
};

/// A socketpair: `inside` belongs to a PairLink, `outside` to the test.
struct Pair {
  int outside = -1, inside = -1;
  explicit Pair(int type = SOCK_SEQPACKET, int sndbuf = 0) {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, type | SOCK_NONBLOCK, 0, fds) == 0);
    outside = fds[0];
    inside = fds[1];
    if (sndbuf == 0) return;
    ::setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    ::setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  }
  Pair(Pair&& o) noexcept : outside(o.outside), inside(o.inside) { o.outside = -1; }
  ~Pair() {
    if (outside >= 0) ::close(outside);  // `inside` belongs to the link
  }
};

/// Runs `io` until `done` or 2 s.
inline void run_until(boost::asio::io_context& io, const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    io.run_for(std::chrono::milliseconds(5));
    io.restart();
  }
}

/// A worker context sized for Ethernet frames of MTU 1500 and GSO super-frames of 64 KiB.
struct TestWorker {
  boost::asio::io_context io;
  Worker worker{io, 0, 2048, 65536 + 64};
};

/// One worker for tests that only call Link::transmit or prepare_egress.
inline Worker& worker() {
  static TestWorker t;
  return t.worker;
}

/// A graph with one forward node "to-b" that sends everything to `to`, and the worker that
/// runs it. Links whose `sink` is "to-b" feed it.
struct ForwardPath {
  explicit ForwardPath(Link& to, unsigned workers = 1) : graph(workers, 1024) {
    graph.add("to-b", std::make_unique<ForwardSink>(), {Graph::Target{&to}});
  }
  boost::asio::io_context io;
  Worker worker{io, 0, 2048, 65536 + 64};
  Graph graph;
};

}  // namespace fdlinkd::test
