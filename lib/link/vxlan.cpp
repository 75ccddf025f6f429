#include "link/vxlan.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>

#include "config/link_keys.hpp"
#include "core/log.hpp"
#include "link/rx.hpp"
#include "offload/checksum.hpp"
#include "writer/flow_hash.hpp"
#include "writer/writer.hpp"

namespace fdlinkd {

namespace {

constexpr std::int64_t kAgeSeconds = 300;    // as the kernel's VXLAN (ageing 300)
constexpr std::size_t kMaxDatagrams = 1024;  // messages per sendmmsg
constexpr std::size_t kMaxFrames = 2048;     // frames of a batch (rx_batch <= 1024, spill 256)
constexpr std::size_t kGsoSegments = 64;     // UDP_MAX_SEGMENTS (Linux 6.1)
constexpr std::size_t kGsoBytes = 65000;     // a GSO send's payload: under 64 KiB
constexpr std::size_t kProbes = 16;          // MAC table: slots looked at from the hash

std::int64_t now_s() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return ts.tv_sec;
}

std::uint64_t mac_key(const std::uint8_t* m) {
  std::uint64_t k = 0;
  for (int i = 0; i < 6; ++i)
    k = k << 8 | m[i];
  return k + 1;
}

std::size_t mac_hash(std::uint64_t key) {
  return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> 52);  // 12 bits: 4096 slots
}

sockaddr_storage address(const std::string& ip, std::uint16_t port) {
  sockaddr_storage s{};
  if (ip.find(':') == std::string::npos) {
    auto* a = reinterpret_cast<sockaddr_in*>(&s);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    ::inet_pton(AF_INET, ip.c_str(), &a->sin_addr);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&s);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    ::inet_pton(AF_INET6, ip.c_str(), &a->sin6_addr);
  }
  return s;
}

bool same_host(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family) return false;
  if (a.ss_family == AF_INET)
    return reinterpret_cast<const sockaddr_in&>(a).sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in&>(b).sin_addr.s_addr;
  return std::memcmp(&reinterpret_cast<const sockaddr_in6&>(a).sin6_addr,
                     &reinterpret_cast<const sockaddr_in6&>(b).sin6_addr, 16) == 0;
}

std::string host_text(const sockaddr_storage& a) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (a.ss_family == AF_INET)
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(a).sin_addr, buf, sizeof buf);
  else
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(a).sin6_addr, buf, sizeof buf);
  return buf;
}

// An 802.1Q or 802.1ad tag right after the MACs.
bool tagged(const std::uint8_t* f, std::size_t len) {
  return len >= 18 && ((f[12] == 0x81 && f[13] == 0x00) || (f[12] == 0x88 && f[13] == 0xa8));
}

// What vxlan links that share one receiving socket have in common (namespace, address, port,
// interface): links with the same key share it and are told apart by VNI.
std::string make_socket_key(const LinkConfig& c, const VxlanOptions& o) {
  // The address in its canonical text ("fd88:0::1" and "fd88::1" are one address).
  in6_addr a{};
  char text[INET6_ADDRSTRLEN] = "";
  const int family = o.ipv6() ? AF_INET6 : AF_INET;
  if (::inet_pton(family, o.local.c_str(), &a) == 1) ::inet_ntop(family, &a, text, sizeof text);
  return c.netns + "|" + text + "|" + std::to_string(o.port) + "|" + o.interface;
}

// --- keys ------------------------------------------------------------------------------------

// An IPv4 or IPv6 address (no host names: nothing is resolved); its family, or 0.
int address_family(const std::string& s) {
  in6_addr a6{};
  if (::inet_pton(AF_INET, s.c_str(), &a6) == 1) return AF_INET;
  if (::inet_pton(AF_INET6, s.c_str(), &a6) == 1) return AF_INET6;
  return 0;
}

// The keys of a vxlan link.
void read_keys(TableReader& lr, const std::string& label, LinkConfig& c, VxlanOptions& l,
               ConfigErrors& errors) {
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
  if (!lr.has("mtu")) c.mtu = family == AF_INET6 ? 1430 : 1450;
}

std::shared_ptr<const LinkOptions> read(TableReader& lr, LinkConfig& c) {
  auto o = std::make_shared<VxlanOptions>();
  c.socket = true;
  c.gso_rx = true;  // (a kernel VTEP's tunnel GSO datagrams come whole)
  read_keys(lr, lr.what(), c, *o, lr.errors());
  o->interface = read_interface(lr, c, false, false);  // (the underlay: not followed)
  for (auto k : {"vnet_hdr", "gso_max_size", "dispatch", "fds"})
    lr.reject(k, "a vxlan link is one UDP socket read with recvmmsg");
  reject_backpressure(lr, "a vxlan link sends onto a network");
  return o;
}

constexpr ConfigKey kKeys[] = {
    {"vni", "VXLAN network identifier, 0-16777215 (required)"},
    {"local", "underlay address the UDP socket binds (required)"},
    {"port", "UDP port at both ends (4789)"},
    {"remotes", "VTEPs that get broadcast, multicast and unknown unicast ([])"},
    {"learning", "learn inner source MACs behind the VTEP that sent them (true)"},
    {"ttl", "of the outer IP header (64)"},
    {"udp_checksum", "on or zero (on)"},
    {"inner_vlan", "drop or keep inner VLAN tags (drop)"},
    {"source_ports", "[min, max] UDP source ports ([49152, 65535])"},
    {"interface", "the underlay device to send through"},
};

std::unique_ptr<Link> make(const LinkConfig& c) {
  return std::make_unique<VxlanLink>(c);
}

// --- receiving ---------------------------------------------------------------------------------

// The link's UDP socket: recvmmsg, each datagram's VXLAN header into the slot's headroom and
// the inner frame where a frame starts, checked by the link whose VNI it carries (check_rx).
// vxlan links on one address and port share the socket: whichever reads a datagram hands it
// to the member with its VNI (member 0 is the reading link itself).
class VxlanRxQueue : public RxQueue {
 public:
  VxlanRxQueue(VxlanLink& link, Worker& w, Batch& batch)
      : link_(link),
        worker_(w.id),
        limits_(rx_limits(link, batch.slot_capacity())),
        senders_(std::make_unique<sockaddr_storage[]>(batch.capacity())),
        member_of_(std::make_unique<std::uint16_t[]>(batch.capacity())) {
    members_.push_back({&link, {}});
  }
  void attach(int fd) override { fd_ = fd; }
  RxEnd receive(Batch& batch, CounterValues& tally) override;

  std::size_t member_count() const override { return members_.size(); }
  Link* member(std::size_t m) override { return members_[m].link; }
  std::size_t member_of(std::size_t frame) const override { return member_of_[frame]; }
  CounterValues* member_tally(std::size_t m) override { return &members_[m].tally; }
  bool mixed() const override { return mixed_; }
  void refresh_members(bool (*admit)(Link&, void*), void* arg) override {
    members_.resize(1);
    if (!link_.socket()) return;
    for (VxlanLink* l : link_.socket()->members())
      if (l != &link_ && admit(*l, arg)) members_.push_back({l, {}});
  }

 private:
  struct Member {
    VxlanLink* link;
    CounterValues tally;  ///< what a pass received for it (another link than link_)
  };

  VxlanLink& link_;
  std::size_t worker_;
  RxLimits limits_;
  int fd_ = -1;
  int last_error_ = 0;
  std::vector<Member> members_;
  std::unique_ptr<sockaddr_storage[]> senders_;  ///< who sent each datagram
  std::unique_ptr<std::uint16_t[]> member_of_;   ///< per frame of the batch: its member
  bool mixed_ = false;                           ///< the batch holds other links' frames
};

RxEnd VxlanRxQueue::receive(Batch& batch, CounterValues& tally) {
  mixed_ = false;
  iovec* iov = batch.iov();
  mmsghdr* msgs = batch.msgs();
  const std::size_t cap = batch.capacity();
  constexpr std::size_t hdr = VxlanLink::kHeaderLen;
  for (std::size_t i = 0; i < cap; ++i) {
    iov[2 * i] = {batch.slot(i) - hdr, hdr};  // (in the headroom)
    iov[2 * i + 1] = {batch.slot(i), batch.slot_capacity()};
    msgs[i].msg_hdr = {};
    msgs[i].msg_hdr.msg_iov = &iov[2 * i];
    msgs[i].msg_hdr.msg_iovlen = 2;
    msgs[i].msg_hdr.msg_name = &senders_[i];
    msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
  }
  int n;
  do {
    n = ::recvmmsg(fd_, msgs, static_cast<unsigned>(cap), MSG_DONTWAIT | MSG_TRUNC, nullptr);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return rx_error(errno, tally, link_, 0, last_error_);
  last_error_ = 0;
  for (int i = 0; i < n; ++i) {
    const auto k = static_cast<std::size_t>(i);
    const std::size_t got = msgs[i].msg_len;
    std::uint8_t* slot = batch.slot(k);
    const std::size_t len = got < hdr ? 0 : got - hdr;
    if (got < hdr) {
      ++tally.rx_packets;
      tally.rx_bytes += got;
      ++tally.drop(DropReason::runt);
      continue;
    }
    const bool truncated = (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
    const std::size_t seen = std::min(len, batch.slot_capacity());
    const std::uint8_t* vxh = slot - hdr;
    // Whose it is: the link with its VNI on this socket (usually link_ itself).
    std::size_t m = 0;
    if (VxlanLink::header_ok(vxh)) {
      const std::uint32_t vni = VxlanLink::vni_of(vxh);
      while (m < members_.size() && members_[m].link->vni() != vni)
        ++m;
    }
    if (m == members_.size()) m = 0;  // (no link has it: link_ counts it)
    CounterValues& t = m == 0 ? tally : members_[m].tally;
    if (auto why = members_[m].link->check_rx(vxh, senders_[k], slot, seen, worker_)) {
      ++t.rx_packets;
      t.rx_bytes += len;
      ++t.drop(*why);
      continue;
    }
    // A kernel VTEP on this host (across a veth, offloads on) leaves the inner TCP/UDP
    // checksum to "the next hop": its skb says so, but the datagram a UDP socket reads does
    // not. Such a frame would leave fdlinkd with a checksum nobody finishes (TCP stalls), so
    // it is finished here, as af_xdp does for a veth's frames (the field holds exactly the
    // pseudo-header sum and the checksum does not verify: nothing else is touched).
    // A kernel VTEP's TCP super-frame (tunnel GSO across a veth) comes whole, with its
    // checksum and segmentation left to the device: it gets the virtio-net header that says
    // so (over the VXLAN header, read already), and goes on as any GSO super-frame does.
    bool gso = false;
    if (!truncated && len > limits_.wire) {
      VirtioNetHdr vh;
      gso = offload::gso_header_for_unmarked(slot, len, members_[m].link->config().mtu, vh);
      if (gso) std::memcpy(slot - sizeof vh, &vh, sizeof vh);
    } else if (!truncated) {
      offload::complete_unmarked_partial(slot, seen, true);
    }
    if (accept_frame(batch, limits_, slot, len, truncated, t, gso)) {
      member_of_[batch.size() - 1] = static_cast<std::uint16_t>(m);
      mixed_ |= m != 0;
    }
  }
  stamp_now(batch);
  return static_cast<std::size_t>(n) == cap ? RxEnd::full : RxEnd::drained;
}

// vxlan links on one address and port share a socket and are told apart by VNI: two with the
// same VNI there could not be.
void check_vnis(const Config& c, ConfigErrors& errors) {
  std::map<std::pair<std::string, std::uint32_t>, const LinkConfig*> seen;
  std::map<std::string, const LinkConfig*> sockets;
  for (const auto& lc : c.links) {
    if (lc.type != &VxlanLink::kType || !lc.options) continue;
    const VxlanOptions& l = lc.options_as<VxlanOptions>();
    if (l.local.empty()) continue;
    const std::string key = make_socket_key(lc, l);
    auto [pos, fresh] = seen.emplace(std::pair{key, l.vni}, &lc);
    // (one socket: over IPv6 it accepts zero checksums for all of them, or for none)
    auto [first, alone] = sockets.emplace(key, &lc);
    const VxlanOptions& f = first->second->options_as<VxlanOptions>();
    if (!alone && l.ipv6() && f.udp_zero_checksum != l.udp_zero_checksum)
      errors.add(l.udp_checksum_where.begin.line ? l.udp_checksum_where : l.vni_where,
                 "udp_checksum in link \"" + lc.name + "\" differs from link \"" +
                     first->second->name + "\"'s on " + l.local + " port " +
                     std::to_string(l.port) +
                     ": over IPv6 the links of one socket accept zero checksums all or none");
    if (!fresh)
      errors.add(l.vni_where, "vni " + std::to_string(l.vni) + " in link \"" + lc.name +
                                  "\" is already link \"" + pos->second->name + "\"'s on " +
                                  l.local + " port " + std::to_string(l.port) +
                                  ": links on one address and port need different VNIs");
  }
}

}  // namespace

const LinkType VxlanLink::kType = {
    {"vxlan", "a VXLAN tunnel endpoint (RFC 7348): the inner frames of a UDP socket", kKeys, read,
     check_vnis},
    make};

std::unique_ptr<RxQueue> VxlanLink::make_rx_queue(std::size_t /*port*/, Worker& w, Batch& batch) {
  return std::make_unique<VxlanRxQueue>(*this, w, batch);
}

std::string VxlanLink::socket_key(const LinkConfig& config) {
  return make_socket_key(config, config.options_as<VxlanOptions>());
}

std::string VxlanLink::describe() const {
  return "vxlan vni " + std::to_string(o_.vni) + " " + o_.local + " port " +
         std::to_string(o_.port) + (config_.netns.empty() ? "" : " (netns " + config_.netns + ")");
}

VxlanLink::VxlanLink(const LinkConfig& config)
    : Link(config),
      o_(config_.options_as<VxlanOptions>()),
      family_(o_.ipv6() ? AF_INET6 : AF_INET),
      vteps_(new sockaddr_storage[kMaxVteps]),
      macs_(new MacSlot[kMacSlots]) {
  tx_fds_.fill(-1);
  header_[0] = kFlagI;
  header_[4] = static_cast<std::uint8_t>(o_.vni >> 16);
  header_[5] = static_cast<std::uint8_t>(o_.vni >> 8);
  header_[6] = static_cast<std::uint8_t>(o_.vni);
  for (const auto& r : o_.remotes) {
    if (static_count_ == kMaxVteps) break;
    vteps_[static_count_++] = address(r, o_.port);
  }
  vtep_count_ = static_count_;
}

VxlanLink::~VxlanLink() {
  close_tx_fds();
  leave_socket();
}

void VxlanLink::close_tx_fds() {
  for (int& fd : tx_fds_) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  tx_count_ = 0;
}

void VxlanLink::open_fds() {
  scratch_ = std::vector<Scratch>(workers_);
  remote_counters_.reset(new RemoteCounters[workers_ * kMaxVteps]);
  rx_last_.assign(workers_, 0);
  for (auto& s : scratch_) {
    s.msgs.resize(kMaxDatagrams);
    s.iov.resize(3 * kMaxDatagrams);
    s.control.resize(kMaxDatagrams);
    s.frame.resize(kMaxDatagrams);
    s.count.resize(kMaxDatagrams);
    s.vtep.resize(kMaxDatagrams);
    s.first.resize(kMaxDatagrams);
    s.dest.resize(kMaxFrames);
    s.via.resize(kMaxFrames);
    s.strip.resize(kMaxFrames);
    s.len.resize(kMaxFrames);
  }
  close_tx_fds();
  leave_socket();
  ports_[0]->fd = join_socket();
  // The sending sockets: up to 16 source ports spread over source_ports, from a point that
  // depends on the VNI (two links on one address start apart).
  const std::uint32_t span = source_span();
  const std::size_t want = std::min<std::size_t>(kSourcePorts, span);
  for (std::size_t i = 0; i < want; ++i) {
    std::uint16_t port = 0;
    const std::uint32_t from =
        static_cast<std::uint32_t>((o_.vni * 2654435761u + i * (span / want)) % span);
    const int fd = make_socket(port, true, from);
    if (fd < 0) break;  // (the range is full)
    tx_fds_[tx_count_++] = fd;
  }
  if (tx_count_ == 0)
    throw LinkError("vxlan: no free UDP source port in source_ports [" +
                    std::to_string(o_.source_port_min) + ", " + std::to_string(o_.source_port_max) +
                    "] on " + o_.local);
}

int VxlanLink::make_socket(std::uint16_t& port, bool source, std::uint32_t from) {
  const int fd = ::socket(family_, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw LinkError("vxlan: UDP socket: " + errno_text(errno));
  const int ttl = static_cast<int>(o_.ttl);
  if (family_ == AF_INET) {
    ::setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl);
    const int no_check = o_.udp_zero_checksum ? 1 : 0;
    ::setsockopt(fd, SOL_SOCKET, SO_NO_CHECK, &no_check, sizeof no_check);
  } else {
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof ttl);
    const int v6only = 1;
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    if (o_.udp_zero_checksum) {  // (RFC 6935/6936: tunnels may, when both ends agree)
      const int one = 1;
      ::setsockopt(fd, SOL_UDP, source ? UDP_NO_CHECK6_TX : UDP_NO_CHECK6_RX, &one, sizeof one);
    }
  }
  // Room for bursts: a tunnel carries what several links send.
  const int buf = 4 << 20;
  if (::setsockopt(fd, SOL_SOCKET, source ? SO_SNDBUFFORCE : SO_RCVBUFFORCE, &buf, sizeof buf) != 0)
    ::setsockopt(fd, SOL_SOCKET, source ? SO_SNDBUF : SO_RCVBUF, &buf, sizeof buf);
  if (source) {
    // Every vxlan link sends from the same range, as the kernel's devices do: sending sockets
    // share ports with each other (not with anyone else's socket), and never read.
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &one, sizeof one);
  }
  if (!o_.interface.empty() && ::setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, o_.interface.c_str(),
                                            static_cast<socklen_t>(o_.interface.size())) != 0) {
    const int err = errno;
    ::close(fd);
    throw LinkError("vxlan: cannot bind to interface " + o_.interface + ": " +
                    errno_text(err, "CAP_NET_RAW"));
  }
  const socklen_t len = family_ == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  const std::uint32_t span = source_span();
  // A source port: the first free one from `from` on, round the range.
  for (std::uint32_t tries = 0; tries < (source ? span : 1); ++tries) {
    if (source) port = static_cast<std::uint16_t>(o_.source_port_min + (from + tries) % span);
    const sockaddr_storage local = address(o_.local, port);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&local), len) == 0) return fd;
    const int err = errno;
    if (source && err == EADDRINUSE) continue;
    ::close(fd);
    std::string hint;
    if (err == EADDRINUSE)
      hint =
          " (another socket has this port: the kernel's own VXLAN device, or another "
          "program)";
    if (err == EADDRNOTAVAIL) hint = " (no interface in the namespace has this address)";
    throw LinkError("vxlan: cannot bind " + o_.local + " port " + std::to_string(port) + ": " +
                    errno_text(err) + hint);
  }
  ::close(fd);
  return -1;
}

namespace {

// The receiving sockets, by LinkConfig::vxlan_socket_key().
std::mutex g_sockets_mutex;
std::map<std::string, std::weak_ptr<VxlanSocket>> g_sockets;

}  // namespace

VxlanSocket::~VxlanSocket() {
  ::close(fd_);
  std::lock_guard lock(g_sockets_mutex);
  auto it = g_sockets.find(key_);
  if (it != g_sockets.end() && it->second.expired()) g_sockets.erase(it);
}

std::vector<VxlanLink*> VxlanSocket::members() const {
  std::lock_guard lock(mutex_);
  return members_;
}

VxlanLink* VxlanSocket::member(std::uint32_t vni) const {
  std::lock_guard lock(mutex_);
  for (VxlanLink* l : members_)
    if (l->vni() == vni) return l;
  return nullptr;
}

void VxlanSocket::join(VxlanLink* link) {
  std::lock_guard lock(mutex_);
  members_.push_back(link);
}

void VxlanSocket::leave(VxlanLink* link) {
  std::lock_guard lock(mutex_);
  std::erase(members_, link);
}

int VxlanLink::join_socket() {
  const std::string key = make_socket_key(config_, o_);
  std::shared_ptr<VxlanSocket> sock;
  {
    std::lock_guard lock(g_sockets_mutex);
    auto it = g_sockets.find(key);
    if (it != g_sockets.end()) sock = it->second.lock();
  }
  if (sock) {
    if (VxlanLink* other = sock->member(o_.vni))
      throw LinkError("vxlan: vni " + std::to_string(o_.vni) + " on " + o_.local + " port " +
                      std::to_string(o_.port) + " is already link \"" + other->name() + "\"'s");
  } else {
    std::uint16_t port = o_.port;
    sock = std::make_shared<VxlanSocket>(make_socket(port, false), key);
    std::lock_guard lock(g_sockets_mutex);
    g_sockets[key] = sock;
  }
  const int fd = ::fcntl(sock->fd(), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) throw LinkError("vxlan: dup: " + errno_text(errno));
  sock->join(this);
  rx_ = std::move(sock);
  return fd;
}

void VxlanLink::leave_socket() {
  if (!rx_) return;
  rx_->leave(this);
  rx_.reset();
}

void VxlanLink::close_retired() {
  Link::close_retired();
  leave_socket();
}

std::vector<std::uint16_t> VxlanLink::source_ports() const {
  std::vector<std::uint16_t> out;
  for (std::size_t i = 0; i < tx_count_; ++i) {
    sockaddr_storage a{};
    socklen_t len = sizeof a;
    if (::getsockname(tx_fds_[i], reinterpret_cast<sockaddr*>(&a), &len) != 0) continue;
    out.push_back(ntohs(a.ss_family == AF_INET ? reinterpret_cast<sockaddr_in&>(a).sin_port
                                               : reinterpret_cast<sockaddr_in6&>(a).sin6_port));
  }
  return out;
}

std::optional<DropReason> VxlanLink::check_rx(const std::uint8_t* vxh, const sockaddr_storage& from,
                                              const std::uint8_t* frame, std::size_t len,
                                              std::size_t worker) {
  if (remote_counters_ && worker < rx_last_.size()) {  // per remote: every datagram that came
    std::size_t& last = rx_last_[worker];
    const std::size_t n = vtep_count_.load(std::memory_order_acquire);
    if (last >= n || !same_host(vteps_[last], from))
      for (std::size_t i = 0; i < n; ++i)
        if (same_host(vteps_[i], from)) {
          last = i;
          break;
        }
    if (last < n && same_host(vteps_[last], from)) {
      RemoteCounters& c = remote_counters_[worker * kMaxVteps + last];
      bump(c.rx_packets, 1);
      bump(c.rx_bytes, len);
    }
  }
  // RFC 7348: the I flag set; the other flag bits and reserved fields are sent as zero. Like
  // the kernel, fdlinkd takes a header with other flags as one it does not understand.
  if (!header_ok(vxh)) return DropReason::vxlan_bad_header;
  if (vni_of(vxh) != o_.vni) return DropReason::vxlan_unknown_vni;
  if (len < 14) return DropReason::runt;
  // RFC 7348 6.1: a decapsulated frame with an inner VLAN tag is discarded unless configured.
  if (!o_.inner_vlan_keep && tagged(frame, len)) return DropReason::vxlan_inner_vlan;
  if (o_.learning && !(frame[6] & 1)) learn(frame + 6, from);
  return std::nullopt;
}

int VxlanLink::vtep_index(const sockaddr_storage& addr) {
  const std::size_t n = vtep_count_.load(std::memory_order_acquire);
  for (std::size_t i = 0; i < n; ++i)
    if (same_host(vteps_[i], addr)) return static_cast<int>(i);
  std::lock_guard lock(vtep_mutex_);
  const std::size_t m = vtep_count_.load(std::memory_order_relaxed);
  for (std::size_t i = n; i < m; ++i)
    if (same_host(vteps_[i], addr)) return static_cast<int>(i);
  if (m == kMaxVteps) return -1;
  vteps_[m] = addr;
  // Datagrams go to the link's port, whatever source port the VTEP sent from (the kernel
  // picks it from the flow hash).
  if (addr.ss_family == AF_INET)
    reinterpret_cast<sockaddr_in&>(vteps_[m]).sin_port = htons(o_.port);
  else
    reinterpret_cast<sockaddr_in6&>(vteps_[m]).sin6_port = htons(o_.port);
  vtep_count_.store(m + 1, std::memory_order_release);
  log::info("vxlan_vtep_learned", "learned a remote VTEP",
            {{"link", name()}, {"vtep", host_text(addr)}});
  return static_cast<int>(m);
}

void VxlanLink::learn(const std::uint8_t* mac, const sockaddr_storage& from) {
  const std::uint64_t key = mac_key(mac);
  const std::int64_t now = now_s();
  const std::size_t h = mac_hash(key);
  MacSlot* reuse = nullptr;
  for (std::size_t p = 0; p < kProbes; ++p) {
    MacSlot& s = macs_[(h + p) % kMacSlots];
    const std::uint64_t k = s.key.load(std::memory_order_acquire);
    if (k == key) {
      const std::uint32_t v = s.vtep.load(std::memory_order_relaxed);
      if (!same_host(vteps_[v], from)) {  // moved to another VTEP
        const int i = vtep_index(from);
        if (i >= 0) s.vtep.store(static_cast<std::uint32_t>(i), std::memory_order_relaxed);
      }
      if (s.seen.load(std::memory_order_relaxed) != now)  // (one store per second at most)
        s.seen.store(now, std::memory_order_relaxed);
      return;
    }
    if (!reuse && (k == 0 || now - s.seen.load(std::memory_order_relaxed) > kAgeSeconds))
      reuse = &s;
  }
  if (!reuse) return;  // (16 live neighbours: the table is crowded here; flood instead)
  const int i = vtep_index(from);
  if (i < 0) return;
  std::uint64_t old = reuse->key.load(std::memory_order_relaxed);
  reuse->seen.store(now, std::memory_order_relaxed);
  reuse->vtep.store(static_cast<std::uint32_t>(i), std::memory_order_relaxed);
  reuse->key.compare_exchange_strong(old, key, std::memory_order_release);
}

int VxlanLink::lookup(const std::uint8_t* mac) const {
  const std::uint64_t key = mac_key(mac);
  const std::size_t h = mac_hash(key);
  for (std::size_t p = 0; p < kProbes; ++p) {
    const MacSlot& s = macs_[(h + p) % kMacSlots];
    if (s.key.load(std::memory_order_acquire) != key) continue;
    if (now_s() - s.seen.load(std::memory_order_relaxed) > kAgeSeconds) return -1;
    return static_cast<int>(s.vtep.load(std::memory_order_relaxed));
  }
  return -1;
}

std::string VxlanLink::remote_of(const std::uint8_t* mac) const {
  const int v = lookup(mac);
  return v < 0 ? "" : host_text(vteps_[static_cast<std::size_t>(v)]);
}

int VxlanLink::destination(const Frame& f) const {
  const int v = (f.data[0] & 1) == 0 && o_.learning ? lookup(f.data) : -1;
  if (v >= 0) return v;
  return static_count_ == 0 ? kNobody : kFlood;
}

void VxlanLink::send_batch(Worker& w, Batch& batch) {
  CounterValues tally;
  if (ports_[0]->fd.load(std::memory_order_relaxed) < 0) {
    tally.drop(DropReason::link_down) += batch.size();
    counters(w.id, 0).add(tally);
    return;
  }
  Scratch& s = scratch_[w.id];
  int fd = -1;  // the sending socket of the messages in s.msgs
  const socklen_t alen = family_ == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  const std::size_t capacity = config_.wire_capacity();
  const bool gso = gso_.load(std::memory_order_relaxed);
  std::size_t n = 0, ni = 0;  // messages and iovecs in use
  auto flush = [&] {
    std::size_t i = 0;
    while (i < n) {
      const int r = ::sendmmsg(fd, s.msgs.data() + i, static_cast<unsigned>(n - i),
                               MSG_DONTWAIT | MSG_NOSIGNAL);
      if (r > 0) {
        for (std::size_t k = i; k < i + static_cast<std::size_t>(r); ++k) {
          if (RemoteCounters* c = remote(w.id, s.vtep[k])) {
            std::uint64_t bytes = 0;
            for (std::uint32_t j = 0; j < s.count[k]; ++j)
              bytes += s.len[s.frame[k] + j];
            bump(c->tx_packets, s.count[k]);
            bump(c->tx_bytes, bytes);
          }
          if (!s.first[k]) continue;
          tally.tx_packets += s.count[k];
          for (std::uint32_t j = 0; j < s.count[k]; ++j)
            tally.tx_bytes += s.len[s.frame[k] + j];
        }
        i += static_cast<std::size_t>(r);
        continue;
      }
      const int err = r < 0 ? errno : EAGAIN;
      if (err == EINTR) continue;
      if ((err == EINVAL || err == EIO) && s.count[i] > 1 && gso_.exchange(false))
        log::warn("vxlan_gso_off",
                  "the kernel refused a UDP GSO send; sending datagrams one "
                  "by one from now on",
                  {{"link", name()}, {"error", errno_text(err)}});
      // (EAGAIN: the rest would fail the same way; anything else concerns this message's
      // destination, and the next may go)
      const std::size_t upto = err == EAGAIN ? n : i + 1;
      for (std::size_t k = i; k < upto; ++k)
        if (s.first[k]) tally.drop(tx_drop_reason(err)) += s.count[k];
      i = upto;
    }
    n = ni = 0;
  };
  const std::size_t total = std::min(batch.size(), kMaxFrames);
  for (std::size_t k = 0; k < total; ++k) {
    const Frame& f = batch[k];
    // Without inner_vlan = "keep", a tag is left out on the way into the tunnel (RFC 7348 6.1):
    // the frame goes as its MACs and what follows the tag, two iovecs, nothing moved.
    s.strip[k] = !o_.inner_vlan_keep && tagged(f.data, f.len);
    s.len[k] = f.len - (s.strip[k] ? 4 : 0);
    s.dest[k] = s.len[k] > capacity ? kNobody : destination(f);
    // The source port, by the inner flow.
    s.via[k] = static_cast<std::uint8_t>(flow_hash(f.data, f.len, true) % tx_count_);
  }
  for (std::size_t k = 0; k < total;) {
    const std::size_t len = s.len[k];
    if (len > capacity || s.dest[k] == kNobody) {
      ++tally.drop(len > capacity ? DropReason::too_big : DropReason::no_peer);
      ++k;
      continue;
    }
    // A run of frames of one flow for the same VTEPs, all of the first one's size but the last
    // (which may be shorter): one UDP GSO send.
    std::size_t m = 1, bytes = kHeaderLen + len, iovs = s.strip[k] ? 3 : 2;
    while (gso && k + m < total && m < kGsoSegments) {
      const std::size_t glen = s.len[k + m];
      if (s.dest[k + m] != s.dest[k] || s.via[k + m] != s.via[k] || glen > len ||
          bytes + kHeaderLen + glen > kGsoBytes)
        break;
      bytes += kHeaderLen + glen;
      iovs += s.strip[k + m] ? 3 : 2;
      ++m;
      if (glen < len) break;
    }
    const int d = s.dest[k];
    const std::size_t copies = d == kFlood ? static_count_ : 1;
    // One sendmmsg per socket (source port): a change flushes.
    const int via = tx_fds_[s.via[k]];
    if (via != fd || ni + iovs > s.iov.size() || n + copies > s.msgs.size()) {
      flush();
      fd = via;
    }
    for (std::size_t j = 0, at = ni; j < m; ++j) {
      const Frame& g = batch[k + j];
      s.iov[at++] = {header_.data(), kHeaderLen};
      if (s.strip[k + j]) {
        s.iov[at++] = {g.data, 12};
        s.iov[at++] = {g.data + 16, g.len - 16u};
      } else {
        s.iov[at++] = {g.data, g.len};
      }
    }
    for (std::size_t c = 0; c < copies; ++c) {
      const std::size_t vtep = d == kFlood ? c : static_cast<std::size_t>(d);
      msghdr& h = s.msgs[n].msg_hdr;
      h = {};
      h.msg_name = &vteps_[vtep];
      h.msg_namelen = alen;
      h.msg_iov = &s.iov[ni];
      h.msg_iovlen = iovs;
      if (m > 1) {
        h.msg_control = s.control[n].buf;
        h.msg_controllen = sizeof s.control[n].buf;
        cmsghdr* cm = CMSG_FIRSTHDR(&h);
        cm->cmsg_level = SOL_UDP;
        cm->cmsg_type = UDP_SEGMENT;
        cm->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
        const auto seg = static_cast<std::uint16_t>(kHeaderLen + len);
        std::memcpy(CMSG_DATA(cm), &seg, sizeof seg);
      }
      s.frame[n] = static_cast<std::uint32_t>(k);
      s.count[n] = static_cast<std::uint32_t>(m);
      s.vtep[n] = static_cast<std::uint16_t>(vtep);
      s.first[n] = c == 0;
      ++n;
    }
    ni += iovs;
    k += m;
  }
  flush();
  if (batch.size() > total) tally.drop(DropReason::tx_error) += batch.size() - total;
  counters(w.id, 0).add(tally);
}

std::vector<VxlanLink::RemoteStats> VxlanLink::remote_stats() const {
  const std::size_t n = vtep_count_.load(std::memory_order_acquire);
  std::vector<RemoteStats> out(n);
  for (std::size_t v = 0; v < n; ++v) {
    out[v].remote = host_text(vteps_[v]);
    if (!remote_counters_) continue;
    for (std::size_t w = 0; w < workers_; ++w) {
      const RemoteCounters& c = remote_counters_[w * kMaxVteps + v];
      out[v].tx_packets += c.tx_packets.load(std::memory_order_relaxed);
      out[v].tx_bytes += c.tx_bytes.load(std::memory_order_relaxed);
      out[v].rx_packets += c.rx_packets.load(std::memory_order_relaxed);
      out[v].rx_bytes += c.rx_bytes.load(std::memory_order_relaxed);
    }
  }
  return out;
}

}  // namespace fdlinkd
