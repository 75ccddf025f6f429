// Metrics: the Prometheus endpoint ([daemon] metrics = "127.0.0.1:9469").
//
// An HTTP/1.1 server (Boost.Beast) on the control thread: GET /metrics answers with the text
// exposition format 0.0.4, rendered by `render` from the counters the workers keep (read, never
// locked); anything else is 404, a method other than GET/HEAD 405. One request per connection
// at a time, 10 s to send it, at most 16 connections; nothing here touches a worker.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json/object.hpp>
#include <functional>
#include <memory>
#include <string>

namespace fdlinkd {

class MetricsServer {
 public:
  using Render = std::function<std::string()>;
  /// Listens on `address` ("host:port", "[v6]:port"); throws std::runtime_error.
  MetricsServer(boost::asio::io_context& io, const std::string& address, Render render);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  /// The address it listens on (the port filled in when 0 was asked for).
  std::string address() const;

 private:
  void accept();

  boost::asio::ip::tcp::acceptor acceptor_;
  Render render_;
  std::shared_ptr<int> open_connections_;
};

/// The exposition text for a `stats` snapshot (the object `fdlinkctl stats --json` prints,
/// see runtime/) and the daemon's own facts in `info` (version, start time, reload outcome).
std::string render_metrics(const boost::json::object& stats, const boost::json::object& info);

}  // namespace fdlinkd
