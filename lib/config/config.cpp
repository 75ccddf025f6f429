#include "config/config.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>

namespace fdlinkd {

std::string default_control_socket() {
  // systemd's RuntimeDirectory=fdlinkd sets RUNTIME_DIRECTORY=/run/fdlinkd (several paths are
  // separated by ':'); without it, the same place.
  const char* dir = std::getenv("RUNTIME_DIRECTORY");
  std::string d = dir && *dir == '/' ? std::string(dir) : std::string("/run/fdlinkd");
  d = d.substr(0, d.find(':'));
  return d + "/control.sock";
}

std::string LinkConfig::vxlan_socket_key() const {
  // The address in its canonical text ("fd88:0::1" and "fd88::1" are one address).
  in6_addr a{};
  char text[INET6_ADDRSTRLEN] = "";
  const int family = ipv6() ? AF_INET6 : AF_INET;
  if (::inet_pton(family, local.c_str(), &a) == 1) ::inet_ntop(family, &a, text, sizeof text);
  return netns + "|" + text + "|" + std::to_string(port) + "|" + interface;
}

std::size_t Config::max_frame_capacity() const {
  std::size_t n = 0;
  for (const auto& l : links)
    n = std::max(n, l.frame_capacity());
  return n;
}

std::size_t Config::max_rx_capacity() const {
  std::size_t n = 0;
  for (const auto& l : links)
    n = std::max(n, l.rx_capacity());
  return n;
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

std::string_view link_type_name(LinkType t) {
  switch (t) {
    case LinkType::af_packet: return "af_packet";
    case LinkType::af_xdp: return "af_xdp";
    case LinkType::tap: return "tap";
    case LinkType::tun: return "tun";
    case LinkType::unix_socket: return "unix";
    case LinkType::vxlan: return "vxlan";
  }
  return "?";
}

std::string_view dispatch_mode_name(DispatchMode m) {
  switch (m) {
    case DispatchMode::readv: return "readv";
    case DispatchMode::recvmmsg: return "recvmmsg";
    case DispatchMode::packet_mmap: return "packet_mmap";
  }
  return "?";
}

std::string_view fanout_name(Fanout f) {
  switch (f) {
    case Fanout::hash: return "hash";
    case Fanout::lb: return "lb";
    case Fanout::cpu: return "cpu";
    case Fanout::rollover: return "rollover";
    case Fanout::rnd: return "rnd";
    case Fanout::qm: return "qm";
  }
  return "?";
}

Layer link_layer(LinkType t) {
  // A unix link carries whole Ethernet frames, as a TAP does (qemu's and passt's convention).
  return t == LinkType::tun ? Layer::ip : Layer::ethernet;
}

bool is_socket(LinkType t) {
  return t == LinkType::af_packet || t == LinkType::unix_socket || t == LinkType::vxlan;
}

// (An empty name is a missing one, already reported: it names nothing.)
const LinkConfig* Config::find_link(std::string_view name) const {
  if (name.empty()) return nullptr;
  for (const auto& l : links)
    if (l.name == name) return &l;
  return nullptr;
}

const SinkConfig* Config::find_sink(std::string_view name) const {
  if (name.empty()) return nullptr;
  for (const auto& s : sinks)
    if (s.name == name) return &s;
  return nullptr;
}

namespace {

constexpr std::size_t kMaxNameLength = 64;
constexpr std::uint64_t kMaxConfigBytes = 16 << 20;
constexpr std::size_t kMaxKeyParts = 32;  // dots in one key (a.b.c has 2)
constexpr std::size_t kMaxNesting = 32;   // arrays and inline tables inside each other
constexpr std::size_t kIfNameMax = 15;    // IFNAMSIZ - 1
constexpr std::size_t kSunPathMax = 107;  // sizeof(sockaddr_un::sun_path) - 1
// Frames a unix link keeps per worker for a full peer: 4 batches of 64.
constexpr unsigned kDefaultUnixBacklog = 256;

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > kMaxNameLength) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      return false;
  return true;
}

bool valid_ifname(std::string_view s) {
  if (s.empty() || s.size() > kIfNameMax || s == "." || s == ".." || has_control_char(s))
    return false;
  for (char c : s)
    if (c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c))) return false;
  return true;
}

// Where `key` itself is written in `t` (the table when it is absent).
toml::source_region key_where(const toml::table& t, std::string_view key) {
  for (const auto& [k, v] : t)
    if (k.str() == key) return k.source();
  return t.source();
}

// Reads `name` and checks its form; returns the label to use in later messages.
std::string read_name(const toml::table& t, std::string_view kind, std::size_t index,
                      ConfigErrors& errors, std::string& out) {
  const std::string label = "[[" + std::string(kind) + "]] #" + std::to_string(index + 1);
  TableReader r(t, label, errors);
  auto n = r.string("name", true);
  if (!n) return label;
  if (!valid_name(*n)) {
    errors.add(r.where("name"), std::string(kind) + " name \"" + shown(*n) +
                                    "\" must be 1-64 characters of letters, digits, '-', '_' "
                                    "or '.'");
    return label;
  }
  out = *n;
  return std::string(kind) + " \"" + *n + "\"";
}

// Keys that only some link types take; a type that does not take one rejects it by name.
constexpr std::string_view kTypeKeys[] = {
    "interface",    "path",    "socket",   "peer",     "socket_mode",  "socket_group",
    "promisc",      "connect", "listen",   "persist",  "fanout",       "tx_ring",
    "qdisc_bypass", "ring",    "offloads", "gro",      "vni",          "local",
    "port",         "remotes", "learning", "ttl",      "udp_checksum", "inner_vlan",
    "source_ports", "queues",  "mode",     "zero_copy"};
constexpr std::string_view kXdpKeys[] = {"queues", "mode", "zero_copy"};
constexpr std::string_view kVxlanKeys[] = {"vni",          "local",      "port",
                                           "remotes",      "learning",   "ttl",
                                           "udp_checksum", "inner_vlan", "source_ports"};

// An IPv4 or IPv6 address (no host names: nothing is resolved); its family, or 0.
int address_family(const std::string& s) {
  in6_addr a6{};
  if (::inet_pton(AF_INET, s.c_str(), &a6) == 1) return AF_INET;
  if (::inet_pton(AF_INET6, s.c_str(), &a6) == 1) return AF_INET6;
  return 0;
}

// The keys of a vxlan link.
void read_vxlan(TableReader& lr, const std::string& label, LinkConfig& l, ConfigErrors& errors) {
  if (auto v = lr.integer("vni", 0, 16777215)) l.vni = static_cast<std::uint32_t>(*v);
  if (!lr.has("vni")) errors.add(lr.where(), label + " is missing required key vni (0..16777215)");
  l.vni_where = lr.has("vni") ? lr.where("vni") : lr.where();
  int family = 0;
  if (auto v = lr.string("local", true)) {
    family = address_family(*v);
    if (family == 0)
      errors.add(lr.where("local"),
                 "local = \"" + shown(*v) + "\" in " + label + " is not an IPv4 or IPv6 address");
    else
      l.local = *v;
  }
  if (auto v = lr.integer("port", 1, 65535)) l.port = static_cast<std::uint16_t>(*v);
  if (lr.has("remotes")) {
    const toml::array* a = lr.table().get("remotes")->as_array();
    if (!a) {
      errors.add(lr.where("remotes"),
                 "remotes in " + label + " must be an array of addresses such as [\"192.0.2.2\"]");
    } else {
      for (const toml::node& e : *a) {
        const auto* str = e.as_string();
        const std::string v = str ? str->get() : "";
        const int f = address_family(v);
        if (f == 0)
          errors.add(e.source(), "remotes in " + label + ": \"" + shown(v) +
                                     "\" is not an IPv4 or IPv6 address");
        else if (family != 0 && f != family)
          errors.add(e.source(), "remotes in " + label + ": \"" + v + "\" is IPv" +
                                     (f == AF_INET ? "4" : "6") + " but local is IPv" +
                                     (family == AF_INET ? "4" : "6"));
        else
          l.remotes.push_back(v);
      }
    }
    lr.skip("remotes");
  }
  if (auto v = lr.boolean("learning")) l.learning = *v;
  if (lr.has("source_ports")) {
    // [min, max], as the kernel's `srcport MIN MAX`.
    const toml::array* a = lr.table().get("source_ports")->as_array();
    const bool ok = a && a->size() == 2 && (*a)[0].is_integer() && (*a)[1].is_integer();
    const std::int64_t lo = ok ? (*a)[0].as_integer()->get() : 0;
    const std::int64_t hi = ok ? (*a)[1].as_integer()->get() : 0;
    if (!ok || lo < 1 || hi > 65535 || lo > hi)
      errors.add(lr.where("source_ports"),
                 "source_ports in " + label +
                     " must be [min, max] with 1 <= min <= max <= 65535, such as [49152, 65535]");
    else {
      l.source_port_min = static_cast<std::uint16_t>(lo);
      l.source_port_max = static_cast<std::uint16_t>(hi);
    }
    lr.skip("source_ports");
  }
  if (auto v = lr.integer("ttl", 1, 255)) l.ttl = static_cast<unsigned>(*v);
  if (auto v = lr.choice("inner_vlan", {"drop", "keep"})) l.inner_vlan_keep = *v == "keep";
  if (auto v = lr.choice("udp_checksum", {"on", "zero"})) {
    // IPv6: RFC 8200 wants checksums; RFC 6935 and 6936 let tunnels omit them when both ends
    // agree (Linux: udp6zerocsumtx and udp6zerocsumrx). "zero" does both.
    l.udp_zero_checksum = *v == "zero";
    l.udp_checksum_where = lr.where("udp_checksum");
  }
  // The inner MTU: what fits in a 1500-byte underlay after the outer headers (50 bytes over
  // IPv4, 70 over IPv6), as the kernel's VXLAN device sets it.
  if (!lr.has("mtu")) l.mtu = family == AF_INET6 ? 1430 : 1450;
  for (auto k : {"vnet_hdr", "gso_max_size", "dispatch", "fds"})
    lr.reject(k, "a vxlan link is one UDP socket read with recvmmsg");
}

// The keys of an af_xdp link (besides interface and promisc).
void read_af_xdp(TableReader& lr, const std::string& label, LinkConfig& l) {
  if (auto v = lr.boolean("promisc")) l.promisc = *v;
  if (auto v = lr.integer("queues", 1, 64)) l.queues = l.fds = static_cast<unsigned>(*v);
  if (auto v = lr.choice("mode", {"native", "skb"})) l.xdp_skb = *v == "skb";
  if (auto v = lr.choice("zero_copy", {"auto", "on", "off"}))
    l.zero_copy = *v == "on" ? ZeroCopy::on : *v == "off" ? ZeroCopy::off : ZeroCopy::automatic;
  if (l.xdp_skb && l.zero_copy == ZeroCopy::on)
    lr.reject("zero_copy", "zero_copy = \"on\" needs mode = \"native\" (generic XDP copies)");
  const std::string why = "an af_xdp link reads its frames from AF_XDP rings, one socket per queue";
  lr.reject("fds", why + ": give queues instead");
  lr.reject("dispatch", why);
  lr.reject("vnet_hdr", why + ", and they carry no virtio-net header");
  lr.reject("gso_max_size", why + ": XDP sees no GSO super-frames");
  (void)label;
}

// socket_mode: 0o600 (a TOML octal integer) or "0600" (a string of octal digits); at most 0777.
void read_socket_mode(TableReader& lr, const std::string& label, LinkConfig& l,
                      ConfigErrors& errors) {
  const toml::node* n = lr.table().get("socket_mode");
  lr.skip("socket_mode");
  if (!n) return;
  std::int64_t mode = -1;
  if (n->is_integer()) {
    mode = n->as_integer()->get();
  } else if (n->is_string()) {
    const std::string& v = n->as_string()->get();
    if (!v.empty() && v.size() <= 4 && v.find_first_not_of("01234567") == std::string::npos)
      mode = std::stoll(v, nullptr, 8);
  }
  if (mode < 0 || mode > 0777) {
    errors.add(n->source(), "socket_mode in " + label +
                                " must be a file mode such as 0o600 or \"0660\" (at most 0777)");
    return;
  }
  l.socket_mode = static_cast<unsigned>(mode);
}

// A group name or number that exists on this host (socket_group, control_group): its gid.
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

// socket_group: a group name or number that exists on this host.
void read_socket_group(TableReader& lr, LinkConfig& l) {
  if (auto gid = read_group(lr, "socket_group", l.socket_group)) l.socket_gid = *gid;
}

// The settings of a [[link]] or [[sink]] table as one string (toml++ writes keys sorted), less
// the keys in `except`.
std::string settings_of(const toml::table& t, std::initializer_list<std::string_view> except) {
  toml::table copy = t;
  for (auto k : except)
    copy.erase(k);
  std::ostringstream out;
  out << toml::toml_formatter(copy);
  return out.str();
}

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
  r.finish();
}

// [link.ring]: the PACKET_MMAP ring sizes of an af_packet link.
void read_ring(TableReader& lr, const std::string& label, LinkConfig& l, ConfigErrors& errors) {
  const toml::table* t = lr.subtable("ring");
  if (!t) return;
  TableReader r(*t, "[" + label + ".ring]", errors);
  RingConfig& ring = l.ring;
  const bool rx = l.dispatch == DispatchMode::packet_mmap;
  for (auto key : {"version", "block_size", "block_count", "frame_size", "block_timeout"})
    if (!rx) r.reject(key, "it sizes the receive ring of dispatch = \"packet_mmap\"");
  if (auto v = r.integer("version", 2, 3)) ring.version = static_cast<unsigned>(*v);
  if (ring.version == 2)
    r.reject("block_timeout", "a TPACKET_V2 ring hands over each frame as it lands");
  if (!l.tx_ring) r.reject("tx_frame_count", "it sizes the ring of tx_ring = true");
  if (auto v = r.size("block_size", 4096, 1u << 30)) {
    if (*v % 4096 != 0)
      errors.add(r.where("block_size"),
                 "block_size in " + r.what() + " must be a multiple of the page size (4096)");
    else
      ring.block_size = static_cast<std::uint32_t>(*v);
  }
  if (auto v = r.integer("block_count", 1, 1 << 16))
    ring.block_count = static_cast<std::uint32_t>(*v);
  if (auto v = r.size("frame_size", 64, 1u << 30)) {
    if (*v % 16 != 0)
      errors.add(r.where("frame_size"), "frame_size in " + r.what() + " must be a multiple of 16");
    else
      ring.frame_size = static_cast<std::uint32_t>(*v);
  }
  if (auto v = r.duration("block_timeout")) {
    if (v->count() % 1000 != 0 || *v < std::chrono::milliseconds(1) || *v > std::chrono::seconds(1))
      errors.add(r.where("block_timeout"),
                 "block_timeout in " + r.what() +
                     " must be a whole number of milliseconds from 1ms to 1s (the kernel counts "
                     "in ms)");
    else
      ring.block_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*v);
  }
  if (auto v = r.integer("tx_frame_count", 16, 1 << 20))
    ring.tx_frame_count = static_cast<std::uint32_t>(*v);
  if (rx && ring.frame_size > ring.block_size)
    errors.add(r.where(), "frame_size (" + std::to_string(ring.frame_size) +
                              ") is larger than block_size (" + std::to_string(ring.block_size) +
                              ") in " + r.what());
  if (rx && ring.version == 2 && ring.block_size % ring.frame_size != 0)
    errors.add(r.where(), "block_size (" + std::to_string(ring.block_size) + ") in " + r.what() +
                              " must be a multiple of frame_size (" +
                              std::to_string(ring.frame_size) + ") with version = 2");
  if (rx && ring.version == 2 && ring.frame_size < l.frame_capacity() + 128)
    errors.add(r.where(), "frame_size (" + std::to_string(ring.frame_size) + ") in " + r.what() +
                              " cannot hold one frame of the link's MTU and its ring headers "
                              "with version = 2 (at least " +
                              std::to_string(l.frame_capacity() + 128) + ")");
  if (rx && ring.block_size < l.frame_capacity() + 128)
    errors.add(r.where(), "block_size (" + std::to_string(ring.block_size) + ") in " + r.what() +
                              " cannot hold one frame of the link's MTU");
  r.finish();
}

LinkConfig read_link(const toml::table& t, std::size_t index, ConfigErrors& errors) {
  LinkConfig l;
  l.where = t.source();
  l.name_where = key_where(t, "name");
  const std::string label = read_name(t, "link", index, errors, l.name);
  TableReader lr(t, label, errors);  // messages name the link from here on
  lr.skip("name");

  std::optional<LinkType> type;
  if (!lr.has("type")) {
    errors.add(
        lr.where(),
        label + " is missing required key type (af_packet, af_xdp, tap, tun, unix or vxlan)");
  } else if (auto v = lr.choice("type", {"af_packet", "af_xdp", "tap", "tun", "unix", "vxlan"})) {
    if (*v == "af_packet") type = LinkType::af_packet;
    if (*v == "af_xdp") type = LinkType::af_xdp;
    if (*v == "tap") type = LinkType::tap;
    if (*v == "tun") type = LinkType::tun;
    if (*v == "unix") type = LinkType::unix_socket;
    if (*v == "vxlan") type = LinkType::vxlan;
  }

  if (!type) {
    for (auto k : kTypeKeys)
      lr.skip(k);  // marks them known: the type error is enough
  }
  if (type) {
    l.type = *type;
    const std::string tname(link_type_name(*type));
    const std::string no = "a " + tname + " link does not take it";
    if (*type == LinkType::unix_socket) {
      if (auto p = lr.string("path", true)) {
        if (p->empty() || (*p)[0] != '/' || p->size() > kSunPathMax || has_control_char(*p))
          errors.add(lr.where("path"), "path \"" + shown(*p) + "\" in " + label +
                                           " must be an absolute path of at most 107 bytes, "
                                           "without control characters");
        else
          l.path = *p;
      }
      if (auto s = lr.choice("socket", {"seqpacket", "dgram", "stream"}))
        l.socket = *s == "dgram"    ? UnixSocket::dgram
                   : *s == "stream" ? UnixSocket::stream
                                    : UnixSocket::seqpacket;
      // stream: `listen = true` (the default) or `connect = true`, not both.
      const auto listen = lr.boolean("listen");
      const auto connect = lr.boolean("connect");
      if ((listen || connect) && l.socket != UnixSocket::stream) {
        errors.add(lr.where(listen ? "listen" : "connect"),
                   std::string(listen ? "listen" : "connect") + " in " + label +
                       " needs socket = \"stream\" (a seqpacket link listens, a dgram link binds)");
      } else if (listen && connect && *listen == *connect) {
        errors.add(lr.where("connect"), "listen and connect in " + label +
                                            " say the same thing twice: give one of them");
      } else {
        l.connect = connect ? *connect : (listen && !*listen);
      }
      if (auto p = lr.string("peer")) {
        if (l.socket != UnixSocket::dgram)
          errors.add(lr.where("peer"), "peer in " + label +
                                           " needs socket = \"dgram\" (a seqpacket link sends "
                                           "to whoever connected)");
        else if (p->empty() || (*p)[0] != '/' || p->size() > kSunPathMax || has_control_char(*p))
          errors.add(lr.where("peer"), "peer \"" + shown(*p) + "\" in " + label +
                                           " must be an absolute path of at most 107 bytes, "
                                           "without control characters");
        else
          l.peer = *p;
      }
      if (l.connect) {
        for (auto k : {"socket_mode", "socket_group"})
          lr.reject(k, "fdlinkd does not make the socket it connects to");
      } else {
        read_socket_mode(lr, label, l, errors);
        read_socket_group(lr, l);
      }
      lr.reject("interface", no + " (unix links use path)");
      lr.reject("promisc", no);
      lr.reject("persist", no);
    } else if (*type == LinkType::vxlan) {
      read_vxlan(lr, label, l, errors);
      if (auto i = lr.string("interface")) {  // optional: the underlay device to send through
        if (!valid_ifname(*i))
          errors.add(lr.where("interface"), "interface \"" + shown(*i) + "\" in " + label +
                                                " is not a valid interface name");
        else
          l.interface = *i;
      }
      for (auto k : {"path", "socket", "peer", "socket_mode", "socket_group", "connect", "listen",
                     "promisc", "persist"})
        lr.reject(k, no);
    } else {
      if (auto i = lr.string("interface", true)) {
        if (!valid_ifname(*i))
          errors.add(
              lr.where("interface"),
              "interface \"" + shown(*i) + "\" in " + label +
                  " is not a valid interface name (1-15 bytes, no '/', ':', spaces or control "
                  "characters)");
        else
          l.interface = *i;
      }
      for (auto k : {"path", "socket", "peer", "socket_mode", "socket_group", "connect", "listen"})
        lr.reject(k, no);
      if (*type == LinkType::af_packet) {
        if (auto v = lr.boolean("promisc")) l.promisc = *v;
        if (auto v = lr.choice("fanout", {"hash", "lb", "cpu", "rollover", "rnd", "qm"})) {
          constexpr Fanout kModes[] = {Fanout::hash,     Fanout::lb,  Fanout::cpu,
                                       Fanout::rollover, Fanout::rnd, Fanout::qm};
          for (Fanout f : kModes)
            if (fanout_name(f) == *v) l.fanout = f;
        }
        if (auto v = lr.boolean("tx_ring")) l.tx_ring = *v;
        if (auto v = lr.boolean("qdisc_bypass")) l.qdisc_bypass = *v;
        lr.reject("persist", no + " (fdlinkd does not create AF_PACKET interfaces)");
      } else if (*type == LinkType::af_xdp) {
        read_af_xdp(lr, label, l);
        lr.reject("persist", no + " (fdlinkd does not create the interfaces it attaches XDP to)");
      } else {
        if (auto v = lr.boolean("persist")) l.persist = *v;
        lr.reject("promisc", no);
      }
    }
  }

  if (type && *type != LinkType::af_packet)
    for (auto k : {"fanout", "tx_ring", "qdisc_bypass", "ring", "gro"})
      lr.reject(k, "only af_packet links take it");
  if (type && *type != LinkType::af_xdp)
    for (auto k : kXdpKeys)
      lr.reject(k, "only af_xdp links take it");
  if (type && *type != LinkType::vxlan)
    for (auto k : kVxlanKeys)
      lr.reject(k, "only vxlan links take it");
  if (type == LinkType::unix_socket) {
    lr.reject("vnet_hdr", "virtio-net headers belong to TAP/TUN devices and AF_PACKET sockets");
    lr.reject("gso_max_size", "a unix link never receives GSO super-frames");
  }
  if (auto v = lr.boolean("vnet_hdr")) {
    l.vnet_hdr = *v;
    if (*v && type == LinkType::af_packet && l.tx_ring)
      errors.add(lr.where("vnet_hdr"),
                 "vnet_hdr = true in " + label +
                     " cannot go with tx_ring = true: a TX ring slot holds one wire frame, so "
                     "GSO super-frames could not be passed on (use one or the other)");
  } else if (type == LinkType::af_packet) {
    // Unset: hand super-frames and unfinished checksums to the kernel when it can take them
    // (the qdisc path segments for devices without TSO; the bypass path and TX ring slots
    // cannot), else finish them in fdlinkd.
    l.vnet_hdr = !l.qdisc_bypass && !l.tx_ring;
  }
  if (type == LinkType::af_packet) {
    if (auto v = lr.boolean("gro")) {
      l.gro = *v;
      if (*v && !l.vnet_hdr)
        errors.add(lr.where("gro"),
                   "gro = true in " + label +
                       " needs vnet_hdr = true: a super-frame goes to the kernel with a "
                       "virtio-net header (and tx_ring or qdisc_bypass rule that out)");
    }
  }
  if (type != LinkType::tap && type != LinkType::tun) {
    lr.reject("offloads", "it sets what a TAP/TUN device may hand fdlinkd");
  } else if (lr.has("offloads")) {
    if (!l.vnet_hdr) lr.reject("offloads", "it needs vnet_hdr = true");
    const toml::array* a = lr.table().get("offloads")->as_array();
    lr.skip("offloads");
    if (l.vnet_hdr && !a) {
      errors.add(lr.where("offloads"),
                 "offloads in " + label + " must be an array such as [\"csum\", \"tso4\"]");
    } else if (l.vnet_hdr) {
      l.offload_csum = l.offload_tso4 = l.offload_tso6 = l.offload_uso = false;
      for (const toml::node& e : *a) {
        const auto* str = e.as_string();
        const std::string v = str ? str->get() : "";
        if (v == "csum")
          l.offload_csum = true;
        else if (v == "tso4")
          l.offload_tso4 = true;
        else if (v == "tso6")
          l.offload_tso6 = true;
        else if (v == "uso")
          l.offload_uso = true;
        else
          errors.add(e.source(), "offloads in " + label + ": \"" + v +
                                     "\" is not one of csum, tso4, tso6, uso");
      }
      if ((l.offload_tso4 || l.offload_tso6 || l.offload_uso) && !l.offload_csum)
        errors.add(lr.where("offloads"), "offloads in " + label +
                                             ": tso4, tso6 and uso need csum (the kernel refuses "
                                             "segmentation offload without checksum offload)");
    }
  }
  if (auto v = lr.size("gso_max_size", 1518, 65536))
    l.gso_max_size = static_cast<std::uint32_t>(*v);
  if (auto v = lr.integer("fds", 1, 64)) {
    if (*v != 1 && type == LinkType::unix_socket)
      errors.add(lr.where("fds"), "fds = " + std::to_string(*v) + " in " + label +
                                      ": a unix link has one socket (for its one peer); use 1");
    else
      l.fds = static_cast<unsigned>(*v);
  }
  if (type == LinkType::af_xdp) {
    // (rejected above: it reads AF_XDP rings)
  } else if (auto v = lr.choice("dispatch", {"readv", "recvmmsg", "packet_mmap"})) {
    l.dispatch = *v == "recvmmsg"      ? DispatchMode::recvmmsg
                 : *v == "packet_mmap" ? DispatchMode::packet_mmap
                                       : DispatchMode::readv;
    if (type == LinkType::unix_socket && l.socket == UnixSocket::stream &&
        l.dispatch == DispatchMode::recvmmsg)
      errors.add(lr.where("dispatch"),
                 "dispatch = \"recvmmsg\" in " + label +
                     " reads messages; a stream link reads bytes and cuts them into frames: use "
                     "\"readv\"");
    if (type && l.dispatch == DispatchMode::recvmmsg && !is_socket(*type))
      errors.add(lr.where("dispatch"), "dispatch = \"recvmmsg\" in " + label +
                                           " needs a socket; a " +
                                           std::string(link_type_name(*type)) +
                                           " fd is a character device and supports only \"readv\"");
    if (type && l.dispatch == DispatchMode::packet_mmap && *type != LinkType::af_packet)
      errors.add(lr.where("dispatch"),
                 "dispatch = \"packet_mmap\" in " + label +
                     " needs an af_packet link (a PACKET_MMAP ring); a " +
                     std::string(link_type_name(*type)) + " link supports " +
                     (is_socket(*type) ? "\"readv\" and \"recvmmsg\"" : "only \"readv\""));
  }
  if (auto v = lr.integer("rx_batch", 1, 1024)) l.rx_batch = static_cast<unsigned>(*v);
  if (type == LinkType::af_packet || type == LinkType::af_xdp || type == LinkType::vxlan) {
    for (auto k : {"tx_backlog", "tx_stall_timeout"})
      lr.reject(k,
                std::string(type == LinkType::vxlan
                                ? "a vxlan link sends onto a network"
                                : "an " + std::string(link_type_name(*type)) + " link is a wire") +
                    ": a wire does not wait, it drops and counts (tx_queue_full)");
  } else {
    if (type == LinkType::unix_socket) l.tx_backlog = kDefaultUnixBacklog;
    if (auto v = lr.integer("tx_backlog", 0, 65536)) l.tx_backlog = static_cast<unsigned>(*v);
    if (auto v = lr.duration("tx_stall_timeout")) {
      if (*v < std::chrono::milliseconds(1) || *v > std::chrono::seconds(60))
        errors.add(lr.where("tx_stall_timeout"),
                   "tx_stall_timeout in " + label + " must be from 1ms to 60s");
      else
        l.tx_stall_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*v);
    }
  }
  if (auto v = lr.integer("mtu", 68, 65535)) l.mtu = static_cast<unsigned>(*v);
  if (type == LinkType::af_packet) read_ring(lr, label, l, errors);
  if (auto v = lr.string("netns")) {
    if (v->empty() || v->size() > 4096 || has_control_char(*v))
      errors.add(lr.where("netns"), "netns \"" + shown(*v) + "\" in " + label +
                                        " must name a namespace under /run/netns or be a path, "
                                        "without control characters");
    else
      l.netns = *v;
  }
  if (auto v = lr.string("sink", true)) {
    l.sink = *v;
    l.sink_where = lr.where("sink");
  }
  lr.finish();
  l.settings = settings_of(t, {"sink"});
  return l;
}

SinkConfig read_sink(const toml::table& t, std::size_t index, ConfigErrors& errors) {
  SinkConfig s;
  s.where = t.source();
  s.name_where = key_where(t, "name");
  const std::string label = read_name(t, "sink", index, errors, s.name);
  TableReader sr(t, label, errors);
  sr.skip("name");
  auto type = sr.string("type");
  std::string known;
  for (const SinkType* st : sink_types())
    known += (known.empty() ? "" : ", ") + std::string(st->name);
  if (!sr.has("type")) {
    errors.add(sr.where(), label + " is missing required key type (one of: " + known + ")");
    return s;  // its other keys depend on the type: nothing more to check
  }
  if (!type) return s;
  s.type = find_sink_type(*type);
  if (!s.type) {
    errors.add(sr.where("type"), "unknown sink type \"" + shown(*type) + "\" in " + label +
                                     " (known: " + known + ")");
    return s;
  }
  s.options = s.type->configure(sr);
  sr.finish();
  s.settings = settings_of(t, {});
  return s;
}

// [[link]] written as [link], or link = 5: say how to write it.
const toml::array* array_of_tables(const toml::table& root, std::string_view key,
                                   ConfigErrors& errors) {
  const toml::node* n = root.get(key);
  if (!n) return nullptr;
  const toml::array* a = n->as_array();
  if (!a || !a->is_array_of_tables()) {
    errors.add(n->source(), std::string(key) + " must be an array of tables: write [[" +
                                std::string(key) + "]] above each one");
    return nullptr;
  }
  return a;
}

template <class T>
void check_unique(const std::vector<T>& items, std::string_view kind, ConfigErrors& errors) {
  std::map<std::string, const T*, std::less<>> seen;
  for (const auto& it : items) {
    if (it.name.empty()) continue;
    auto [pos, fresh] = seen.emplace(it.name, &it);
    if (!fresh)
      errors.add(it.name_where, "duplicate " + std::string(kind) + " name \"" + it.name +
                                    "\" (first defined at line " +
                                    std::to_string(pos->second->name_where.begin.line) + ")");
  }
}

// vxlan links on one address and port share a socket and are told apart by VNI: two with the
// same VNI there could not be.
void check_vnis(const std::vector<LinkConfig>& links, ConfigErrors& errors) {
  std::map<std::pair<std::string, std::uint32_t>, const LinkConfig*> seen;
  std::map<std::string, const LinkConfig*> sockets;
  for (const auto& l : links) {
    if (l.type != LinkType::vxlan || l.local.empty()) continue;
    const std::string key = l.vxlan_socket_key();
    auto [pos, fresh] = seen.emplace(std::pair{key, l.vni}, &l);
    // (one socket: over IPv6 it accepts zero checksums for all of them, or for none)
    auto [first, alone] = sockets.emplace(key, &l);
    if (!alone && l.ipv6() && first->second->udp_zero_checksum != l.udp_zero_checksum)
      errors.add(l.udp_checksum_where.begin.line ? l.udp_checksum_where : l.vni_where,
                 "udp_checksum in link \"" + l.name + "\" differs from link \"" +
                     first->second->name + "\"'s on " + l.local + " port " +
                     std::to_string(l.port) +
                     ": over IPv6 the links of one socket accept zero checksums all or none");
    if (!fresh)
      errors.add(l.vni_where, "vni " + std::to_string(l.vni) + " in link \"" + l.name +
                                  "\" is already link \"" + pos->second->name + "\"'s on " +
                                  l.local + " port " + std::to_string(l.port) +
                                  ": links on one address and port need different VNIs");
  }
}

std::string_view layer_name(Layer l) {
  return l == Layer::ethernet ? "Ethernet frames" : "IP packets";
}

std::string describe_link(const LinkConfig& l) {
  return "link \"" + l.name + "\" (" + std::string(link_type_name(l.type)) + ", " +
         std::string(layer_name(l.layer())) + ")";
}

// The stage graph: every output names a link or a sink; sinks never feed back into themselves;
// frames from a link reach only links of the same kind, and no Ethernet-only sink gets IP.
void check_graph(const Config& c, ConfigErrors& errors) {
  const std::size_t n = c.sinks.size();
  std::vector<std::vector<OutputRef>> outs(n);
  auto sink_index = [&](std::string_view name) {
    if (name.empty()) return n;  // a missing name, already reported, names nothing
    for (std::size_t i = 0; i < n; ++i)
      if (c.sinks[i].name == name) return i;
    return n;
  };
  for (std::size_t i = 0; i < n; ++i) {
    const SinkConfig& s = c.sinks[i];
    if (!s.type || !s.options) continue;
    outs[i] = s.type->outputs(s, c);
    for (const OutputRef& o : outs[i])
      if (!c.find_link(o.name) && sink_index(o.name) == n)
        errors.add(o.where, "sink \"" + s.name + "\" sends to \"" + shown(o.name) +
                                "\", which is neither a link nor a sink");
  }
  // Cycles: depth-first, reported at the output that closes one.
  std::vector<int> state(n, 0);  // 0 new, 1 on the path, 2 done
  bool cyclic = false;
  auto visit = [&](auto&& self, std::size_t i) -> void {
    state[i] = 1;
    for (const OutputRef& o : outs[i]) {
      const std::size_t j = sink_index(o.name);
      if (j == n || c.find_link(o.name)) continue;
      if (state[j] == 1) {
        errors.add(o.where, "sink \"" + c.sinks[i].name + "\" sends to sink \"" + o.name +
                                "\", which leads back to it: the sinks form a cycle");
        cyclic = true;
      } else if (state[j] == 0) {
        self(self, j);
      }
    }
    state[i] = 2;
  };
  for (std::size_t i = 0; i < n; ++i)
    if (state[i] == 0) visit(visit, i);
  if (cyclic) return;
  // What each link's frames reach.
  for (const auto& l : c.links) {
    const std::size_t root = sink_index(l.sink);
    if (l.name.empty() || root == n) continue;
    std::vector<bool> seen(n, false);
    std::vector<std::size_t> todo = {root};
    seen[root] = true;
    bool reported = false;
    while (!todo.empty() && !reported) {
      const std::size_t i = todo.back();
      todo.pop_back();
      const SinkConfig& s = c.sinks[i];
      const std::string who = i == root ? "it" : "sink \"" + s.name + "\", after it,";
      if (s.type && s.type->ethernet_only && l.layer() != Layer::ethernet) {
        errors.add(l.sink_where, describe_link(l) + " cannot use sink \"" + l.sink + "\": " + who +
                                     " takes only Ethernet frames (type " +
                                     std::string(s.type->name) + ")");
        break;
      }
      for (const OutputRef& o : outs[i]) {
        if (const LinkConfig* to = c.find_link(o.name)) {
          if (to->layer() == l.layer()) continue;
          errors.add(l.sink_where, describe_link(l) + " cannot use sink \"" + l.sink +
                                       "\": " + who + " sends to " + describe_link(*to));
          reported = true;
          break;
        }
        const std::size_t j = sink_index(o.name);
        if (j < n && !seen[j]) {
          seen[j] = true;
          todo.push_back(j);
        }
      }
    }
  }
}

Config build(const toml::table& root, const std::string& path, ConfigErrors& errors) {
  Config c;
  c.path = path;
  if (const toml::node* d = root.get("daemon")) {
    if (const toml::table* t = d->as_table())
      read_daemon(*t, c.daemon, errors);
    else
      errors.add(d->source(), "daemon must be a table: write [daemon]");
  }
  if (const toml::array* links = array_of_tables(root, "link", errors))
    for (std::size_t i = 0; i < links->size(); ++i)
      c.links.push_back(read_link(*links->get(i)->as_table(), i, errors));
  if (const toml::array* sinks = array_of_tables(root, "sink", errors))
    for (std::size_t i = 0; i < sinks->size(); ++i)
      c.sinks.push_back(read_sink(*sinks->get(i)->as_table(), i, errors));
  for (const auto& [k, v] : root)
    if (k != "daemon" && k != "link" && k != "sink")
      errors.add(k.source(), "unknown key " + shown(k.str()) +
                                 " at the top level (expected [daemon], [[link]] or [[sink]])");

  if (c.links.empty() && !root.contains("link"))
    errors.add(path, 1, 1, "no [[link]] defined: fdlinkd needs at least one link");

  check_unique(c.links, "link", errors);
  check_vnis(c.links, errors);
  check_unique(c.sinks, "sink", errors);

  for (const auto& l : c.links) {
    if (l.sink.empty() || l.name.empty()) continue;
    if (!c.find_sink(l.sink))
      errors.add(l.sink_where, "link \"" + l.name + "\" sends to sink \"" + shown(l.sink) +
                                   "\", which is not defined");
  }
  check_graph(c, errors);
  for (const auto& s : c.sinks)
    if (s.type && s.options && s.type->validate) s.type->validate(s, c, errors);
  return c;
}

ConfigResult finish(Config c, ConfigErrors& errors) {
  ConfigResult r;
  r.log_format = c.daemon.log_format;  // (as far as it was read: for reporting the errors)
  if (errors.empty())
    r.config = std::move(c);
  else
    r.errors = errors.sorted();
  r.error_count = errors.size();
  return r;
}

// toml++ parses dotted keys and nested arrays and inline tables by recursion, without a depth
// limit of its own for dotted keys: a key of 100,000 dots overflows the stack. This scan runs
// first and refuses what is deeper than any real config could be. It knows just enough TOML
// to skip strings and comments.
std::optional<ConfigError> too_deep(std::string_view text, const std::string& path) {
  std::uint32_t line = 1, col = 1;
  std::size_t depth = 0;  // open [ and { outside strings
  std::size_t dots = 0;   // dots in the current line's key, before its =
  bool in_value = false;  // after the = of a key/value line
  auto error = [&](std::string msg) { return ConfigError{path, line, col, std::move(msg)}; };
  for (std::size_t i = 0; i < text.size(); ++i, ++col) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      col = 0;
      dots = 0;
      if (depth == 0) in_value = false;
      continue;
    }
    if (c == '#') {
      while (i + 1 < text.size() && text[i + 1] != '\n')
        ++i;
      continue;
    }
    if (c == '"' || c == '\'') {
      const bool multi = text.substr(i, 3) == std::string(3, c);
      const std::string_view end = multi ? text.substr(i, 3) : text.substr(i, 1);
      std::size_t j = i + end.size();
      for (; j < text.size(); ++j) {
        if (c == '"' && text[j] == '\\') {
          ++j;
          continue;
        }
        if (text.substr(j, end.size()) == end) break;
        if (text[j] == '\n') {
          if (!multi) break;  // the parser reports the unterminated string
          ++line;
          col = 0;
        }
      }
      col += static_cast<std::uint32_t>(j - i);
      i = j + end.size() - 1;
      continue;
    }
    if (c == '=' && depth == 0) in_value = true;
    if (c == '.' && !in_value && ++dots > kMaxKeyParts)
      return error("a key with more than " + std::to_string(kMaxKeyParts) +
                   " dotted parts; fdlinkd's config is never that deep");
    if (c == '[' || c == '{') {
      if (c == '{' || in_value) in_value = true;
      if (++depth > kMaxNesting)
        return error("arrays or tables nested more than " + std::to_string(kMaxNesting) +
                     " deep; fdlinkd's config is never that deep");
    }
    if ((c == ']' || c == '}') && depth > 0) --depth;
  }
  return std::nullopt;
}

}  // namespace

ConfigResult parse_config(std::string_view text, const std::string& path) {
  ConfigErrors errors;
  if (auto e = too_deep(text, path)) {
    errors.add(e->file, e->line, e->column, e->message);
    return finish({}, errors);
  }
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    errors.add(e.source(), shown(e.description(), ConfigErrors::kMaxMessage));
    return finish({}, errors);
  }
  Config c = build(root, path, errors);
  return finish(std::move(c), errors);
}

ConfigResult load_config(const std::string& path) {
  ConfigErrors errors;
  auto fail = [&](std::string msg) {
    errors.add(path, 0, 0, std::move(msg));
    return finish({}, errors);
  };
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return fail(std::string("cannot read config: ") + std::strerror(errno));
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return fail(std::string("cannot read config: ") + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) {
    const char* kind = S_ISDIR(st.st_mode)    ? "a directory"
                       : S_ISFIFO(st.st_mode) ? "a FIFO"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a regular file";
    return fail(std::string("cannot read config: it is ") + kind + ", not a regular file");
  }
  if (static_cast<std::uint64_t>(st.st_size) > kMaxConfigBytes)
    return fail("cannot read config: it is " + std::to_string(st.st_size) +
                " bytes; the limit is " + std::to_string(kMaxConfigBytes) + " (16 MiB)");
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(std::string("cannot read config: ") + std::strerror(errno));
    if (n == 0) break;  // the file shrank while it was read
    got += static_cast<std::size_t>(n);
  }
  text.resize(got);
  return parse_config(text, path);
}

}  // namespace fdlinkd
