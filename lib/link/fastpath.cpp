#include "link/fastpath.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string_view>

#include "core/errno_text.hpp"
#include "core/log.hpp"
#include "link/link.hpp"
#include "link/netdev.hpp"
#include "link/netns.hpp"

namespace fdlinkd {

// The program of fastpath.bpf.c, compiled at build time (cmake/embed.cmake).
extern const unsigned char kFastPathProgram[];
extern const std::size_t kFastPathProgram_size;
// fastpath_trace.bpf.c: counts the frames the kernel drops after a redirect.
extern const unsigned char kFastPathTraceProgram[];
extern const std::size_t kFastPathTraceProgram_size;

namespace {

constexpr const char* kProgramName = "fdlinkd_fastpath";
// The maps every instance shares (its .rodata, the slot, is its own).
constexpr const char* kSharedMaps[] = {"fdlinkd_fp_ports", "fdlinkd_fp_tx",
                                       "fdlinkd_fp_vlans", "fdlinkd_fp_fdb",
                                       "fdlinkd_fp_stats", "fdlinkd_fp_scratch"};

int libbpf_to_log(libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char text[512];
  std::vsnprintf(text, sizeof text, format, args);
  std::string_view t(text);
  while (!t.empty() && t.back() == '\n')
    t.remove_suffix(1);
  log::debug("libbpf", t);
  return 0;
}

// Opens (not loads) an instance of the program for `slot`.
bpf_object* open_program(std::uint32_t slot) {
  bpf_object_open_opts oo{};
  oo.sz = sizeof oo;
  oo.object_name = "fdlinkd_fp";
  bpf_object* obj = bpf_object__open_mem(kFastPathProgram, kFastPathProgram_size, &oo);
  if (!obj) throw LinkError("cannot open fdlinkd's XDP fast path program: " + errno_text(errno));
  if (!bpf_object__find_program_by_name(obj, kProgramName) ||
      !set_read_only_globals(obj, &slot, sizeof slot)) {
    bpf_object__close(obj);
    throw LinkError("fdlinkd's XDP fast path program is not the one it was built with");
  }
  return obj;
}

int map_fd(bpf_object* obj, const char* name) {
  bpf_map* m = bpf_object__find_map_by_name(obj, name);
  return m ? bpf_map__fd(m) : -1;
}

}  // namespace

bool set_read_only_globals(bpf_object* obj, const void* value, std::size_t size) {
  bpf_map* ro = nullptr;
  for (bpf_map* m = bpf_object__next_map(obj, nullptr); m; m = bpf_object__next_map(obj, m))
    if (bpf_map__is_internal(m) && std::string_view(bpf_map__name(m)).ends_with(".rodata")) ro = m;
  return ro && bpf_map__set_initial_value(ro, value, size) == 0;
}

void send_libbpf_messages_to_log() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(libbpf_to_log); });
}

struct XdpFastPath::Instance {
  ~Instance() {
    if (link_fd >= 0) ::close(link_fd);  // the program leaves the interface
    if (obj) bpf_object__close(obj);
  }
  bpf_object* obj = nullptr;
  int link_fd = -1;
  bool generic = false;
  unsigned ifindex = 0;  ///< where it is attached
  std::string netns;
};

XdpFastPath::XdpFastPath() = default;

XdpFastPath::~XdpFastPath() {
  instances_.clear();  // (detached before the maps go)
  for (bpf_link* l : trace_links_)
    bpf_link__destroy(l);
  if (trace_) bpf_object__close(trace_);
  if (template_) bpf_object__close(template_);
}

namespace {

// The cookie of the calling thread's network namespace (SO_NETNS_COOKIE, Linux 5.14+), 0 if
// the kernel cannot say.
std::uint64_t netns_cookie() {
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  std::uint64_t cookie = 0;
  socklen_t len = sizeof cookie;
  if (::getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) != 0) cookie = 0;
  ::close(fd);
  return cookie;
}

}  // namespace

void XdpFastPath::open_trace() {
  // The tracepoints' programs share the fast path's counters, and know its DEVMAP by id.
  bpf_map_info info{};
  __u32 info_len = sizeof info;
  if (bpf_obj_get_info_by_fd(tx_fd_, &info, &info_len) != 0) {
    trace_error_ = "cannot read the id of the fast path's DEVMAP: " + errno_text(errno);
    return;
  }
  bpf_object_open_opts oo{};
  oo.sz = sizeof oo;
  oo.object_name = "fdlinkd_fp_trace";
  tx_map_id_ = info.id;
  bpf_object* obj = bpf_object__open_mem(kFastPathTraceProgram, kFastPathTraceProgram_size, &oo);
  bpf_map* stats = obj ? bpf_object__find_map_by_name(obj, "fdlinkd_fp_stats") : nullptr;
  const __u32 id = info.id;
  if (!stats || !set_read_only_globals(obj, &id, sizeof id) ||
      bpf_map__reuse_fd(stats, stats_fd_) != 0) {
    if (obj) bpf_object__close(obj);
    trace_error_ = "fdlinkd's tracepoint program is not the one it was built with";
    return;
  }
  if (bpf_object__load(obj) != 0) {
    const int err = errno;
    bpf_object__close(obj);
    trace_error_ = "cannot load the program that counts them: " +
                   errno_text(err, "CAP_PERFMON besides CAP_BPF (or CAP_SYS_ADMIN)");
    return;
  }
  bpf_program* prog = nullptr;
  while ((prog = bpf_object__next_program(obj, prog)) != nullptr) {
    bpf_link* l = bpf_program__attach(prog);
    if (!l) {
      const int err = errno;
      for (bpf_link* t : trace_links_)
        bpf_link__destroy(t);
      trace_links_.clear();
      bpf_object__close(obj);
      trace_error_ = std::string("cannot attach to the kernel's tracepoint ") +
                     bpf_program__section_name(prog) + ": " + errno_text(err);
      return;
    }
    trace_links_.push_back(l);
  }
  trace_ = obj;
  egress_fd_ = map_fd(obj, "fdlinkd_fp_egress");
}

const std::string& XdpFastPath::open() {
  if (opened_) return error_;
  opened_ = true;
  send_libbpf_messages_to_log();
  bpf_object* obj = nullptr;
  try {
    obj = open_program(0);
  } catch (const LinkError& e) {
    error_ = e.what();
    return error_;
  }
  if (bpf_object__load(obj) != 0) {
    const int err = errno;
    bpf_object__close(obj);
    error_ = "cannot load fdlinkd's XDP fast path program: " +
             errno_text(err, "CAP_BPF and CAP_NET_ADMIN (or CAP_SYS_ADMIN)") +
             (err == EINVAL || err == 524 /* ENOTSUPP */ || err == EOPNOTSUPP
                  ? " (the kernel may be too old: it needs multi-buffer XDP, Linux 5.18+)"
                  : "");
    return error_;
  }
  template_ = obj;
  ports_fd_ = map_fd(obj, "fdlinkd_fp_ports");
  tx_fd_ = map_fd(obj, "fdlinkd_fp_tx");
  vlans_fd_ = map_fd(obj, "fdlinkd_fp_vlans");
  fdb_fd_ = map_fd(obj, "fdlinkd_fp_fdb");
  stats_fd_ = map_fd(obj, "fdlinkd_fp_stats");
  open_trace();
  return error_;
}

int XdpFastPath::program_fd() const {
  return template_ ? bpf_program__fd(bpf_object__find_program_by_name(template_, kProgramName))
                   : -1;
}

std::string XdpFastPath::attach(std::size_t slot, const Link& link) {
  if (!ready()) return open();
  if (slot >= FDLINKD_FP_SLOTS) return "fdlinkd offloads links of the first 4096 slots only";
  const LinkConfig& c = link.config();
  if (attached(slot)) {
    const Instance& now = *instances_[slot];
    if (now.ifindex == link.ifindex() && now.netns == c.netns) return "";
    instances_[slot].reset();  // (a link reopened on another interface)
  }
  const std::string on = c.interface + (c.netns.empty() ? "" : " (netns " + c.netns + ")");
  auto inst = std::make_unique<Instance>();
  try {
    inst->obj = open_program(static_cast<std::uint32_t>(slot));
  } catch (const LinkError& e) {
    return e.what();
  }
  for (const char* name : kSharedMaps)
    if (bpf_map__reuse_fd(bpf_object__find_map_by_name(inst->obj, name), map_fd(template_, name)))
      return std::string("cannot share map ") + name + ": " + errno_text(errno);
  if (bpf_object__load(inst->obj) != 0)
    return "cannot load fdlinkd's XDP fast path program for " + on + ": " + errno_text(errno);
  const int prog = bpf_program__fd(bpf_object__find_program_by_name(inst->obj, kProgramName));
  const int ifindex = static_cast<int>(link.ifindex());
  try {
    NetnsGuard ns(c.netns);
    __u32 id = 0;
    if (bpf_xdp_query_id(ifindex, 0, &id) == 0 && id != 0)
      return "interface " + on + " already has an XDP program (id " + std::to_string(id) +
             "), and fdlinkd does not replace another program (see `bpftool net`)";
    bpf_link_create_opts lo{};
    lo.sz = sizeof lo;
    lo.flags = XDP_FLAGS_DRV_MODE;
    int fd = bpf_link_create(prog, ifindex, BPF_XDP, &lo);
    if (fd < 0 && errno == EOPNOTSUPP) {  // no native XDP in this driver: generic
      lo.flags = XDP_FLAGS_SKB_MODE;
      fd = bpf_link_create(prog, ifindex, BPF_XDP, &lo);
      inst->generic = true;
    }
    if (fd < 0) {
      const int err = errno;
      return "cannot attach XDP to " + on + ": " + errno_text(err, "CAP_NET_ADMIN and CAP_BPF") +
             (err == EBUSY || err == EEXIST ? " (another XDP program is attached)" : "");
    }
    inst->link_fd = fd;
    inst->ifindex = link.ifindex();
    inst->netns = c.netns;
  } catch (const std::exception& e) {
    return e.what();
  }
  if (instances_.size() <= slot) instances_.resize(slot + 1);
  instances_[slot] = std::move(inst);
  return "";
}

void XdpFastPath::detach(std::size_t slot) {
  clear_port(slot);
  if (slot < instances_.size()) instances_[slot].reset();
}

bool XdpFastPath::attached(std::size_t slot) const {
  return slot < instances_.size() && instances_[slot] != nullptr;
}

std::string XdpFastPath::mode(std::size_t slot) const {
  if (!attached(slot)) return "";
  return instances_[slot]->generic ? "generic" : "native";
}

bool XdpFastPath::set_port(std::size_t slot, const fdlinkd_fp_port& port) {
  if (!ready() || slot >= FDLINKD_FP_SLOTS) return false;
  const auto key = static_cast<__u32>(slot);
  used_ = std::max(used_, slot + 1);
  return bpf_map_update_elem(ports_fd_, &key, &port, BPF_ANY) == 0;
}

void XdpFastPath::clear_port(std::size_t slot) {
  const fdlinkd_fp_port off{};
  set_port(slot, off);
}

std::string XdpFastPath::set_tx(std::size_t slot, unsigned ifindex, const std::string& netns) {
  if (!ready()) return error_;
  if (slot >= FDLINKD_FP_SLOTS) return "fdlinkd offloads links of the first 4096 slots only";
  const auto key = static_cast<__u32>(slot);
  const __u32 value = ifindex;
  used_ = std::max(used_, slot + 1);
  try {
    NetnsGuard ns(netns);  // (the ifindex is looked up in the caller's namespace)
    // A frame redirected to a device that does not take them now is dropped by the kernel,
    // unseen: a veth takes them only while its peer has GRO on or an XDP program.
    if (const auto f = netdev::xdp_features(ifindex); f && !(*f & netdev::kXdpNdoXmit)) {
      bpf_map_delete_elem(tx_fd_, &key);
      return "it does not take redirected frames now (a veth takes them only while its peer "
             "has GRO on or an XDP program: `ethtool -K PEER gro on` where the peer is)";
    }
    if (bpf_map_update_elem(tx_fd_, &key, &value, BPF_ANY) != 0)
      return "cannot enter ifindex " + std::to_string(ifindex) +
             " in the DEVMAP: " + errno_text(errno) +
             (errno == EINVAL ? " (the driver cannot take redirected frames)" : "");
    set_egress(slot, fdlinkd_fp_egress_key{netns_cookie(), ifindex, 0});
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

void XdpFastPath::clear_tx(std::size_t slot) {
  if (!ready() || slot >= FDLINKD_FP_SLOTS) return;
  const auto key = static_cast<__u32>(slot);
  bpf_map_delete_elem(tx_fd_, &key);
  set_egress(slot, std::nullopt);
}

int XdpFastPath::trace_program_fd(const char* name) const {
  bpf_program* p = trace_ ? bpf_object__find_program_by_name(trace_, name) : nullptr;
  return p ? bpf_program__fd(p) : -1;
}

void XdpFastPath::set_egress(std::size_t slot, std::optional<fdlinkd_fp_egress_key> key) {
  if (egress_fd_ < 0) return;
  if (egress_.size() <= slot) egress_.resize(slot + 1);
  auto& now = egress_[slot];
  if (now && key && std::memcmp(&*now, &*key, sizeof *key) == 0) return;
  if (now) bpf_map_delete_elem(egress_fd_, &*now);
  now = std::nullopt;
  if (!key || key->netns_cookie == 0) return;
  const auto value = static_cast<__u32>(slot);
  if (bpf_map_update_elem(egress_fd_, &*key, &value, BPF_ANY) == 0) now = key;
}

void XdpFastPath::set_vlans(std::size_t slot, const std::bitset<4096>& allowed) {
  if (!ready() || slot >= FDLINKD_FP_SLOTS) return;
  if (vlans_.size() <= slot) vlans_.resize(slot + 1);
  const __u8 one = 1;
  for (std::size_t v = 1; v < 4095; ++v) {
    if (allowed.test(v) == vlans_[slot].test(v)) continue;
    const fdlinkd_fp_vlan_key key{static_cast<__u32>(slot), static_cast<__u32>(v)};
    if (allowed.test(v))
      bpf_map_update_elem(vlans_fd_, &key, &one, BPF_ANY);
    else
      bpf_map_delete_elem(vlans_fd_, &key);
  }
  vlans_[slot] = allowed;
}

namespace {

fdlinkd_fp_fdb_key fdb_key(std::uint32_t bridge, std::uint16_t vlan, const std::uint8_t* mac) {
  fdlinkd_fp_fdb_key k{};
  k.bridge = bridge;
  k.vlan = vlan;
  std::memcpy(k.mac, mac, 6);
  return k;
}

}  // namespace

bool XdpFastPath::fdb_set(std::uint32_t bridge, std::uint16_t vlan, const std::uint8_t* mac,
                          std::size_t slot) {
  if (!ready()) return false;
  const fdlinkd_fp_fdb_key k = fdb_key(bridge, vlan, mac);
  fdlinkd_fp_fdb_entry value{};
  value.slot = static_cast<__u32>(slot);
  return bpf_map_update_elem(fdb_fd_, &k, &value, BPF_ANY) == 0;
}

std::uint32_t XdpFastPath::fdb_seen(std::uint32_t bridge, std::uint16_t vlan,
                                    const std::uint8_t* mac) const {
  if (!ready()) return 0;
  const fdlinkd_fp_fdb_key k = fdb_key(bridge, vlan, mac);
  fdlinkd_fp_fdb_entry value{};
  if (bpf_map_lookup_elem(fdb_fd_, &k, &value) != 0 || value.seen_ns == 0) return 0;
  return static_cast<std::uint32_t>(value.seen_ns / 1000000000u);
}

void XdpFastPath::fdb_del(std::uint32_t bridge, std::uint16_t vlan, const std::uint8_t* mac) {
  if (!ready()) return;
  const fdlinkd_fp_fdb_key k = fdb_key(bridge, vlan, mac);
  bpf_map_delete_elem(fdb_fd_, &k);
}

void XdpFastPath::fdb_clear(std::uint32_t bridge) {
  if (!ready()) return;
  std::vector<fdlinkd_fp_fdb_key> gone;
  fdlinkd_fp_fdb_key k{}, next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fdb_fd_, prev, &next) == 0) {
    if (next.bridge == bridge) gone.push_back(next);
    k = next;
    prev = &k;
  }
  for (const auto& g : gone)
    bpf_map_delete_elem(fdb_fd_, &g);
}

fdlinkd_fp_stats XdpFastPath::stats(std::size_t slot) const {
  fdlinkd_fp_stats sum{};
  if (!ready() || slot >= FDLINKD_FP_SLOTS) return sum;
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return sum;
  std::vector<fdlinkd_fp_stats> per_cpu(static_cast<std::size_t>(cpus));
  const auto key = static_cast<__u32>(slot);
  if (bpf_map_lookup_elem(stats_fd_, &key, per_cpu.data()) != 0) return sum;
  for (const auto& s : per_cpu) {
    sum.rx_packets += s.rx_packets;
    sum.rx_bytes += s.rx_bytes;
    sum.tx_packets += s.tx_packets;
    sum.tx_bytes += s.tx_bytes;
    sum.to_slow_path += s.to_slow_path;
    sum.dropped += s.dropped;
    sum.tx_failed += s.tx_failed;
  }
  return sum;
}

void XdpFastPath::reset_stats(std::size_t slot) {
  if (!ready() || slot >= FDLINKD_FP_SLOTS) return;
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return;
  std::vector<fdlinkd_fp_stats> zeros(static_cast<std::size_t>(cpus));
  const auto key = static_cast<__u32>(slot);
  bpf_map_update_elem(stats_fd_, &key, zeros.data(), BPF_ANY);
}

}  // namespace fdlinkd
