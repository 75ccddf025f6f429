#include "config/daemon.hpp"

#include <arpa/inet.h>
#include <grp.h>

#include <cstdlib>

namespace fdlinkd {

std::string default_control_socket() {
  // systemd's RuntimeDirectory=fdlinkd sets RUNTIME_DIRECTORY=/run/fdlinkd (several paths are
  // separated by ':'); without it, the same place.
  const char* dir = std::getenv("RUNTIME_DIRECTORY");
  std::string d = dir && *dir == '/' ? std::string(dir) : std::string("/run/fdlinkd");
  d = d.substr(0, d.find(':'));
  return d + "/control.sock";
}

std::string DaemonConfig::restart_needed(const DaemonConfig& o) const {
  if (workers != o.workers) return "workers = " + std::to_string(o.workers);
  if (cpu_affinity != o.cpu_affinity) return "cpu_affinity";
  if (busy_poll != o.busy_poll || busy_poll_always != o.busy_poll_always) return "busy_poll";
  if (control_socket != o.control_socket) return "control_socket = \"" + o.control_socket + "\"";
  if (control_group != o.control_group) return "control_group = \"" + o.control_group + "\"";
  if (metrics != o.metrics) return "metrics = \"" + o.metrics + "\"";
  return "";
}

std::optional<int> read_group(TableReader& r, std::string_view key, std::string& name) {
  auto g = r.string(key);
  if (!g) return std::nullopt;
  group grp{};
  group* found = nullptr;
  std::vector<char> buf(16384);
  int gid = -1;
  if (!g->empty() && !has_control_char(*g) &&
      ::getgrnam_r(g->c_str(), &grp, buf.data(), buf.size(), &found) == 0 && found) {
    gid = static_cast<int>(found->gr_gid);
  } else if (!g->empty() && g->find_first_not_of("0123456789") == std::string::npos &&
             g->size() < 10) {
    gid = std::stoi(*g);
  } else {
    r.errors().add(r.where(key), std::string(key) + " \"" + shown(*g) + "\" in " + r.what() +
                                     " is not a group on this host");
    return std::nullopt;
  }
  name = *g;
  return gid;
}

namespace {

// metrics = "host:port" or true (127.0.0.1:9469); the address must parse.
void read_metrics(TableReader& r, DaemonConfig& d) {
  if (!r.has("metrics")) return;
  if (r.table().get("metrics")->is_boolean()) {
    if (*r.boolean("metrics")) d.metrics = "127.0.0.1:9469";
    return;
  }
  auto v = r.string("metrics");
  if (!v) return;
  const auto colon = v->rfind(':');
  const std::string host = colon == std::string::npos ? "" : v->substr(0, colon);
  const std::string port = colon == std::string::npos ? "" : v->substr(colon + 1);
  in6_addr a6{};
  in_addr a4{};
  const std::string bare = host.size() > 2 && host.front() == '[' && host.back() == ']'
                               ? host.substr(1, host.size() - 2)
                               : host;
  const bool addr_ok = ::inet_pton(AF_INET, bare.c_str(), &a4) == 1 ||
                       (host.front() == '[' && ::inet_pton(AF_INET6, bare.c_str(), &a6) == 1);
  const bool port_ok = !port.empty() && port.size() <= 5 &&
                       port.find_first_not_of("0123456789") == std::string::npos &&
                       std::stoi(port) > 0 && std::stoi(port) < 65536;
  if (host.empty() || !addr_ok || !port_ok) {
    r.errors().add(r.where("metrics"),
                   "metrics \"" + shown(*v) +
                       "\" must be an IP address and port, such as \"127.0.0.1:9469\" or "
                       "\"[::1]:9469\" (or true for 127.0.0.1:9469)");
    return;
  }
  d.metrics = *v;
}

}  // namespace

void read_daemon(const toml::table& t, DaemonConfig& d, ConfigErrors& errors) {
  TableReader r(t, "[daemon]", errors);
  if (auto v = r.integer("workers", 1, 64)) d.workers = static_cast<unsigned>(*v);
  if (auto v = r.duration("stats_interval")) d.stats_interval = *v;
  const toml::node* bp = r.table().get("busy_poll");
  if (bp && bp->is_string() && bp->as_string()->get() == "always") {
    d.busy_poll_always = true;
    r.skip("busy_poll");
  } else if (auto v = r.duration("busy_poll")) {
    if (*v > std::chrono::milliseconds(10))
      r.errors().add(r.where("busy_poll"),
                     "busy_poll in [daemon] must be from 0us to 10ms, or \"always\"");
    else
      d.busy_poll = *v;
  }
  if (auto v = r.choice("log_level", {"trace", "debug", "info", "warn", "error"}))
    d.log_level = *log::parse_level(*v);
  if (auto v = r.choice("log_format", {"text", "json"})) d.log_format = *log::parse_format(*v);
  if (auto v = r.integers("cpu_affinity", 0, 4095))
    for (auto c : *v)
      d.cpu_affinity.push_back(static_cast<unsigned>(c));
  d.control_socket = default_control_socket();
  if (auto v = r.string("control_socket")) {
    if (!v->empty() && ((*v)[0] != '/' || has_control_char(*v) || v->size() > 107))
      r.errors().add(r.where("control_socket"),
                     "control_socket \"" + shown(*v) +
                         "\" must be an absolute path of at most 107 bytes (or \"\" for none)");
    else
      d.control_socket = *v;
  }
  if (auto gid = read_group(r, "control_group", d.control_group)) d.control_gid = *gid;
  read_metrics(r, d);
  if (const toml::node* n = r.table().get("include")) {
    d.include_where = n->source();
    std::vector<std::string> patterns;
    if (n->is_string()) {  // (one pattern may be written without the brackets)
      r.skip("include");
      patterns.push_back(n->as_string()->get());
    } else if (auto v = r.strings("include")) {
      patterns = *v;
    }
    for (const auto& p : patterns) {
      if (p.empty() || p.size() > 4096 || has_control_char(p))
        r.errors().add(r.where("include"), "include in [daemon]: \"" + shown(p) +
                                               "\" must be a path or a glob pattern such as "
                                               "\"/run/fdlinkd/ports.d/*.toml\"");
      else
        d.include.push_back(p);
    }
    if (d.include.size() > 64)
      r.errors().add(r.where("include"), "include in [daemon] has at most 64 patterns");
  }
  r.finish();
}

}  // namespace fdlinkd
