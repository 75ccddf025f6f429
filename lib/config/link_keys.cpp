#include "config/link_keys.hpp"

#include <cctype>

#include "config/daemon.hpp"

namespace fdlinkd {

namespace {
constexpr std::size_t kIfNameMax = 15;  // IFNAMSIZ - 1
}  // namespace

bool valid_ifname(std::string_view s) {
  if (s.empty() || s.size() > kIfNameMax || s == "." || s == ".." || has_control_char(s))
    return false;
  for (char c : s)
    if (c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c))) return false;
  return true;
}

std::string read_interface(TableReader& r, LinkConfig& l, bool required, bool follow) {
  auto i = r.string("interface", required);
  if (!i) return "";
  if (!valid_ifname(*i)) {
    r.errors().add(r.where("interface"),
                   "interface \"" + shown(*i) + "\" in " + r.what() +
                       (required ? " is not a valid interface name (1-15 bytes, no '/', ':', "
                                   "spaces or control characters)"
                                 : " is not a valid interface name"));
    return "";
  }
  if (follow) l.interface = *i;
  return *i;
}

void read_dispatch(TableReader& r, LinkConfig& l, bool rings) {
  auto v = r.choice("dispatch", {"readv", "recvmmsg", "packet_mmap"});
  if (!v) return;
  l.dispatch = *v == "recvmmsg"      ? DispatchMode::recvmmsg
               : *v == "packet_mmap" ? DispatchMode::packet_mmap
                                     : DispatchMode::readv;
  const std::string type(l.type_name());
  if (l.dispatch == DispatchMode::recvmmsg && !l.socket)
    r.errors().add(r.where("dispatch"),
                   "dispatch = \"recvmmsg\" in " + r.what() + " needs a socket; a " + type +
                       " fd is a character device and supports only \"readv\"");
  if (l.dispatch == DispatchMode::packet_mmap && !rings)
    r.errors().add(r.where("dispatch"),
                   "dispatch = \"packet_mmap\" in " + r.what() +
                       " needs an af_packet link (a PACKET_MMAP ring); a " + type +
                       " link supports " +
                       (l.socket ? "\"readv\" and \"recvmmsg\"" : "only \"readv\""));
}

void read_fds(TableReader& r, LinkConfig& l) {
  if (auto v = r.integer("fds", 1, 64)) l.fds = static_cast<unsigned>(*v);
}

void read_gso_max_size(TableReader& r, LinkConfig& l) {
  if (auto v = r.size("gso_max_size", 1518, 65536)) l.gso_max_size = static_cast<std::uint32_t>(*v);
}

void read_backpressure(TableReader& r, LinkConfig& l, unsigned backlog) {
  l.tx_backlog = backlog;
  if (auto v = r.integer("tx_backlog", 0, 65536)) l.tx_backlog = static_cast<unsigned>(*v);
  if (auto v = r.duration("tx_stall_timeout")) {
    if (*v < std::chrono::milliseconds(1) || *v > std::chrono::seconds(60))
      r.errors().add(r.where("tx_stall_timeout"),
                     "tx_stall_timeout in " + r.what() + " must be from 1ms to 60s");
    else
      l.tx_stall_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*v);
  }
}

void reject_backpressure(TableReader& r, std::string_view what) {
  for (auto k : {"tx_backlog", "tx_stall_timeout"})
    r.reject(k, std::string(what) + ": a wire does not wait, it drops and counts (tx_queue_full)");
}

std::string read_socket_path(TableReader& r, std::string_view key, bool required) {
  constexpr std::size_t kSunPathMax = 107;  // sizeof(sockaddr_un::sun_path) - 1
  auto p = r.string(key, required);
  if (!p) return "";
  if (p->empty() || (*p)[0] != '/' || p->size() > kSunPathMax || has_control_char(*p)) {
    r.errors().add(r.where(key), std::string(key) + " \"" + shown(*p) + "\" in " + r.what() +
                                     " must be an absolute path of at most 107 bytes, "
                                     "without control characters");
    return "";
  }
  return *p;
}

void read_socket_file(TableReader& r, SocketFile& f) {
  // socket_mode: 0o600 (a TOML octal integer) or "0600" (a string of octal digits).
  const toml::node* n = r.table().get("socket_mode");
  r.skip("socket_mode");
  if (n) {
    std::int64_t mode = -1;
    if (n->is_integer()) {
      mode = n->as_integer()->get();
    } else if (n->is_string()) {
      const std::string& v = n->as_string()->get();
      if (!v.empty() && v.size() <= 4 && v.find_first_not_of("01234567") == std::string::npos)
        mode = std::stoll(v, nullptr, 8);
    }
    if (mode < 0 || mode > 0777)
      r.errors().add(n->source(), "socket_mode in " + r.what() +
                                      " must be a file mode such as 0o600 or \"0660\" (at most "
                                      "0777)");
    else
      f.mode = static_cast<unsigned>(mode);
  }
  if (auto gid = read_group(r, "socket_group", f.group)) f.gid = *gid;
}

}  // namespace fdlinkd
