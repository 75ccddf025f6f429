#include "ops/metrics.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <charconv>
#include <map>
#include <stdexcept>
#include <vector>

#include "core/counters.hpp"

namespace fdlinkd {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;

namespace {

constexpr int kMaxConnections = 16;

tcp::endpoint parse_endpoint(const std::string& address) {
  const auto colon = address.rfind(':');
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  const auto port = static_cast<unsigned short>(std::stoul(address.substr(colon + 1)));
  return {asio::ip::make_address(host), port};
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket s, const MetricsServer::Render& render, std::shared_ptr<int> open)
      : stream_(std::move(s)), render_(render), open_(std::move(open)) {
    ++*open_;
  }
  ~Session() { --*open_; }

  void read() {
    req_ = {};
    stream_.expires_after(std::chrono::seconds(10));
    http::async_read(stream_, buf_, req_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       if (!ec) self->answer();
                     });
  }

 private:
  void answer() {
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(req_.version());
    res->keep_alive(req_.keep_alive());
    res->set(http::field::server, "fdlinkd");
    const auto target = req_.target();
    if (req_.method() != http::verb::get && req_.method() != http::verb::head) {
      res->result(http::status::method_not_allowed);
      res->set(http::field::allow, "GET, HEAD");
      res->body() = "only GET\n";
    } else if (target == "/metrics" || target.starts_with("/metrics?")) {
      res->result(http::status::ok);
      res->set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      res->body() = render_();
    } else if (target == "/") {
      res->result(http::status::ok);
      res->set(http::field::content_type, "text/html; charset=utf-8");
      res->body() = "<html><body><a href=\"/metrics\">fdlinkd metrics</a></body></html>\n";
    } else {
      res->result(http::status::not_found);
      res->body() = "not found: try /metrics\n";
    }
    res->prepare_payload();
    if (req_.method() == http::verb::head) res->body().clear();
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
                        if (ec || !res->keep_alive()) {
                          beast::error_code ignored;
                          self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                          return;
                        }
                        self->read();
                      });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buf_{8192};
  http::request<http::string_body> req_;
  const MetricsServer::Render& render_;
  std::shared_ptr<int> open_;
};

// --- rendering --------------------------------------------------------------------------------

std::uint64_t u64(const json::value& v) {
  if (v.is_uint64()) return v.as_uint64();
  if (v.is_int64()) return static_cast<std::uint64_t>(v.as_int64());
  return 0;
}

// A label value as the format wants it: backslash, quote and newline escaped.
std::string label(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// One metric family: HELP and TYPE once, then its samples.
struct Family {
  std::string help, type;
  std::vector<std::string> samples;
};

class Exposition {
 public:
  /// `common`: labels every sample carries (an instance's name), or "".
  explicit Exposition(std::string common) : common_(std::move(common)) {}

  void add(const std::string& name, std::string_view type, std::string_view help,
           const std::string& labels, std::string value) {
    auto [it, fresh] = families_.try_emplace(name);
    if (fresh) {
      order_.push_back(name);
      it->second.help = help;
      it->second.type = type;
    }
    const std::string all = common_.empty()  ? labels
                            : labels.empty() ? common_
                                             : common_ + "," + labels;
    it->second.samples.push_back(name + (all.empty() ? "" : "{" + all + "}") + " " + value);
  }
  void add(const std::string& name, std::string_view type, std::string_view help,
           const std::string& labels, std::uint64_t value) {
    add(name, type, help, labels, std::to_string(value));
  }
  std::string text() const {
    std::string out;
    for (const auto& name : order_) {
      const Family& f = families_.at(name);
      out += "# HELP " + name + " " + f.help + "\n# TYPE " + name + " " + f.type + "\n";
      for (const auto& s : f.samples)
        out += s + "\n";
    }
    return out;
  }

 private:
  std::string common_;
  std::map<std::string, Family> families_;
  std::vector<std::string> order_;
};

std::string number(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

// The per-fd counters and what they become.
struct PortMetric {
  const char* key;
  const char* name;
  const char* help;
};
constexpr PortMetric kPortMetrics[] = {
    {"rx_packets", "fdlinkd_link_receive_packets_total", "Frames read from the link's fd."},
    {"rx_bytes", "fdlinkd_link_receive_bytes_total", "Bytes of the frames read from the fd."},
    {"tx_packets", "fdlinkd_link_transmit_packets_total", "Frames written to the link's fd."},
    {"tx_bytes", "fdlinkd_link_transmit_bytes_total", "Bytes of the frames written to the fd."},
    {"rx_errors", "fdlinkd_link_receive_errors_total", "Reads that failed (not EAGAIN)."},
    {"gso_segments", "fdlinkd_link_gso_segments_total",
     "Frames added by cutting GSO super-frames in software."},
};

// A link's XDP fast-path counters (offload = "xdp"): frames fdlinkd never read.
constexpr PortMetric kFastPathMetrics[] = {
    {"xdp_rx_packets", "fdlinkd_link_xdp_receive_packets_total",
     "Frames received on the link's interface and forwarded in the kernel (XDP)."},
    {"xdp_rx_bytes", "fdlinkd_link_xdp_receive_bytes_total",
     "Bytes of the frames forwarded in the kernel from the link."},
    {"xdp_tx_packets", "fdlinkd_link_xdp_transmit_packets_total",
     "Frames the kernel's fast path redirected to the link's interface (xdp_tx_failed of them "
     "the kernel could not send)."},
    {"xdp_tx_bytes", "fdlinkd_link_xdp_transmit_bytes_total",
     "Bytes of the frames the fast path redirected to the link's interface."},
    {"xdp_to_slow_path", "fdlinkd_link_xdp_slow_path_packets_total",
     "Frames of an offloaded link the fast path left to fdlinkd."},
    {"xdp_dropped", "fdlinkd_link_xdp_dropped_packets_total",
     "Frames the fast path dropped (a VLAN tag it could not push or pop)."},
    {"xdp_tx_failed", "fdlinkd_link_xdp_transmit_failed_packets_total",
     "Frames redirected to the link's interface that the kernel then dropped (it stopped taking "
     "redirected frames, was full or down)."},
};

}  // namespace

std::string render_metrics(const json::object& stats, const json::object& info) {
  // An instance (fdlinkd@NAME) labels everything it reports, so that the instances of one
  // host stay apart wherever their samples meet (a Prometheus target's labels, a federation).
  const json::value* instance = info.if_contains("instance");
  const bool named = instance && instance->is_string() && !instance->as_string().empty();
  Exposition e(named ? "instance_name=\"" + label(instance->as_string()) + "\"" : "");
  e.add("fdlinkd_build_info", "gauge", "The fdlinkd version; always 1.",
        "version=\"" + label(info.at("version").as_string()) + "\"", 1);
  e.add("fdlinkd_up", "gauge", "1 while fdlinkd runs and forwards.", "", 1);
  e.add("fdlinkd_start_time_seconds", "gauge", "When fdlinkd started, in Unix seconds.", "",
        number(info.at("start_time_seconds").to_number<double>()));
  e.add("fdlinkd_workers", "gauge", "Worker threads.", "", u64(info.at("workers")));
  e.add("fdlinkd_config_last_reload_successful", "gauge",
        "Whether the last config reload (or the start) succeeded.", "",
        info.at("reload_successful").as_bool() ? 1 : 0);
  e.add("fdlinkd_config_last_reload_success_timestamp_seconds", "gauge",
        "When the running config was loaded, in Unix seconds.", "",
        number(info.at("reload_timestamp_seconds").to_number<double>()));
  e.add("fdlinkd_config_reloads_total", "counter", "Reloads tried, successful or not.", "",
        u64(info.at("reloads")));

  for (const auto& lv : stats.at("links").as_array()) {
    const json::object& l = lv.as_object();
    const std::string link = "link=\"" + label(l.at("name").as_string()) + "\"";
    e.add("fdlinkd_link_up", "gauge", "1 when the link is up, 0 while it is down.", link,
          l.at("state").as_string() == "up" ? 1 : 0);
    e.add("fdlinkd_link_down_events_total", "counter", "Times the link went down.", link,
          u64(l.at("down_count")));
    for (const auto& m : kFastPathMetrics)
      if (const json::value* v = l.if_contains(m.key))
        e.add(m.name, "counter", m.help, link, u64(*v));
    for (const auto& fv : l.at("fds").as_array()) {
      const json::object& f = fv.as_object();
      const std::string labels = link + ",queue=\"" + std::to_string(u64(f.at("queue"))) + "\"";
      for (const PortMetric& m : kPortMetrics)
        e.add(m.name, "counter", m.help, labels, u64(f.at(m.key)));
    }
    if (const json::value* ev = l.if_contains("events"))  // what happened to the link's peer
      for (const auto& [k, v] : ev->as_object())
        e.add("fdlinkd_link_peer_events_total", "counter",
              "Events of the link's peer (vhost_user: connects, and resets by reason).",
              link + ",event=\"" + label(k) + "\"", u64(v));
    if (const json::value* pv = l.if_contains("peer")) {  // what the link knows of its peer
      std::string labels = link;
      for (const auto& [k, v] : pv->as_object())
        labels += "," + std::string(k) + "=\"" + label(v.as_string()) + "\"";
      e.add("fdlinkd_link_peer_info", "gauge",
            "What the link knows of its peer (vhost_user: the frontend's state, the features "
            "its driver took); always 1.",
            labels, 1);
    }
    if (const json::value* qv = l.if_contains("queues"))
      for (const auto& q : qv->as_array()) {
        std::string labels = link;
        for (const auto& [k, v] : q.as_object())
          labels += "," + std::string(k) + "=\"" +
                    (v.is_string() ? label(v.as_string()) : std::to_string(u64(v))) + "\"";
        e.add("fdlinkd_link_queue_info", "gauge",
              "The state of each queue of the link (vhost_user: rx is the guest's receive queue, "
              "tx its transmit queue: stopped, disabled, enabled or broken); always 1.",
              labels, 1);
      }
    if (const json::value* rv = l.if_contains("remotes")) {
      // A tunnel's remote endpoints (a vxlan link's VTEPs), named after the link's type.
      const std::string type(l.at("type").as_string());
      const std::string m = "fdlinkd_" + type + "_remote_";
      for (const auto& r : rv->as_array()) {
        const json::object& o = r.as_object();
        const std::string labels = link + ",remote=\"" + label(o.at("remote").as_string()) + "\"";
        e.add(m + "transmit_packets_total", "counter",
              "Datagrams sent to a remote endpoint of the tunnel (" + type + ").", labels,
              u64(o.at("tx_packets")));
        e.add(m + "transmit_bytes_total", "counter",
              "Bytes of the inner frames sent to a remote endpoint.", labels,
              u64(o.at("tx_bytes")));
        e.add(m + "receive_packets_total", "counter",
              "Datagrams received from a remote endpoint of the tunnel (" + type + ").", labels,
              u64(o.at("rx_packets")));
        e.add(m + "receive_bytes_total", "counter",
              "Bytes of the inner frames received from a remote endpoint.", labels,
              u64(o.at("rx_bytes")));
      }
    }
    const json::object& drops = l.at("drops").as_object();
    for (std::size_t r = 0; r < kDropReasonCount; ++r) {
      const auto reason = drop_reason_name(static_cast<DropReason>(r));
      const json::value* v = drops.if_contains(reason);
      e.add("fdlinkd_link_drops_total", "counter",
            "Frames received on the link and dropped, or dropped on the way out of it, by "
            "reason.",
            link + ",reason=\"" + std::string(reason) + "\"", v ? u64(*v) : 0);
    }
  }
  for (const auto& sv : stats.at("sinks").as_array()) {
    const json::object& s = sv.as_object();
    const std::string labels = "sink=\"" + label(s.at("name").as_string()) + "\",type=\"" +
                               label(s.at("type").as_string()) + "\"";
    const json::array& gauges = s.at("gauges").as_array();
    for (const auto& [k, v] : s.at("counters").as_object()) {
      bool gauge = false;
      for (const auto& g : gauges)
        gauge = gauge || g.as_string() == k;
      if (gauge)
        e.add("fdlinkd_sink_" + std::string(k), "gauge",
              "A sink's gauge (see docs/sinks.md for each type).", labels, u64(v));
      else
        e.add("fdlinkd_sink_" + std::string(k) + "_total", "counter",
              "A sink's counter (see docs/sinks.md for each type).", labels, u64(v));
    }
  }
  return e.text();
}

MetricsServer::MetricsServer(asio::io_context& io, const std::string& address, Render render)
    : acceptor_(io), render_(std::move(render)), open_connections_(std::make_shared<int>(0)) {
  try {
    const tcp::endpoint ep = parse_endpoint(address);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen(16);
  } catch (const boost::system::system_error& e) {
    throw std::runtime_error("metrics " + address + ": " + e.code().message());
  }
  accept();
}

MetricsServer::~MetricsServer() {
  boost::system::error_code ec;
  acceptor_.close(ec);
}

std::string MetricsServer::address() const {
  const auto ep = acceptor_.local_endpoint();
  const auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

void MetricsServer::accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket s) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec && *open_connections_ < kMaxConnections)
      std::make_shared<Session>(std::move(s), render_, open_connections_)->read();
    accept();
  });
}

}  // namespace fdlinkd
