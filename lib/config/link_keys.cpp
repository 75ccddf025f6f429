#include "config/link_keys.hpp"

#include <cctype>

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

}  // namespace fdlinkd
