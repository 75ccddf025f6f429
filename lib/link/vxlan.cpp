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

#include "core/log.hpp"
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

}  // namespace

VxlanLink::VxlanLink(const LinkConfig& config)
    : Link(config),
      family_(config.ipv6() ? AF_INET6 : AF_INET),
      vteps_(new sockaddr_storage[kMaxVteps]),
      macs_(new MacSlot[kMacSlots]) {
  tx_fds_.fill(-1);
  header_[0] = kFlagI;
  header_[4] = static_cast<std::uint8_t>(config.vni >> 16);
  header_[5] = static_cast<std::uint8_t>(config.vni >> 8);
  header_[6] = static_cast<std::uint8_t>(config.vni);
  for (const auto& r : config.remotes) {
    if (static_count_ == kMaxVteps) break;
    vteps_[static_count_++] = address(r, config.port);
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
        static_cast<std::uint32_t>((config_.vni * 2654435761u + i * (span / want)) % span);
    const int fd = make_socket(port, true, from);
    if (fd < 0) break;  // (the range is full)
    tx_fds_[tx_count_++] = fd;
  }
  if (tx_count_ == 0)
    throw LinkError("vxlan: no free UDP source port in source_ports [" +
                    std::to_string(config_.source_port_min) + ", " +
                    std::to_string(config_.source_port_max) + "] on " + config_.local);
}

int VxlanLink::make_socket(std::uint16_t& port, bool source, std::uint32_t from) {
  const int fd = ::socket(family_, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw LinkError("vxlan: UDP socket: " + errno_text(errno));
  const int ttl = static_cast<int>(config_.ttl);
  if (family_ == AF_INET) {
    ::setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl);
    const int no_check = config_.udp_zero_checksum ? 1 : 0;
    ::setsockopt(fd, SOL_SOCKET, SO_NO_CHECK, &no_check, sizeof no_check);
  } else {
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof ttl);
    const int v6only = 1;
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    if (config_.udp_zero_checksum) {  // (RFC 6935/6936: tunnels may, when both ends agree)
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
  if (!config_.interface.empty() &&
      ::setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, config_.interface.c_str(),
                   static_cast<socklen_t>(config_.interface.size())) != 0) {
    const int err = errno;
    ::close(fd);
    throw LinkError("vxlan: cannot bind to interface " + config_.interface + ": " +
                    errno_text(err, "CAP_NET_RAW"));
  }
  const socklen_t len = family_ == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  const std::uint32_t span = source_span();
  // A source port: the first free one from `from` on, round the range.
  for (std::uint32_t tries = 0; tries < (source ? span : 1); ++tries) {
    if (source) port = static_cast<std::uint16_t>(config_.source_port_min + (from + tries) % span);
    const sockaddr_storage local = address(config_.local, port);
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
    throw LinkError("vxlan: cannot bind " + config_.local + " port " + std::to_string(port) + ": " +
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
  const std::string key = config_.vxlan_socket_key();
  std::shared_ptr<VxlanSocket> sock;
  {
    std::lock_guard lock(g_sockets_mutex);
    auto it = g_sockets.find(key);
    if (it != g_sockets.end()) sock = it->second.lock();
  }
  if (sock) {
    if (VxlanLink* other = sock->member(config_.vni))
      throw LinkError("vxlan: vni " + std::to_string(config_.vni) + " on " + config_.local +
                      " port " + std::to_string(config_.port) + " is already link \"" +
                      other->name() + "\"'s");
  } else {
    std::uint16_t port = config_.port;
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
  if (vni_of(vxh) != config_.vni) return DropReason::vxlan_unknown_vni;
  if (len < 14) return DropReason::runt;
  // RFC 7348 6.1: a decapsulated frame with an inner VLAN tag is discarded unless configured.
  if (!config_.inner_vlan_keep && tagged(frame, len)) return DropReason::vxlan_inner_vlan;
  if (config_.learning && !(frame[6] & 1)) learn(frame + 6, from);
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
    reinterpret_cast<sockaddr_in&>(vteps_[m]).sin_port = htons(config_.port);
  else
    reinterpret_cast<sockaddr_in6&>(vteps_[m]).sin6_port = htons(config_.port);
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

std::string VxlanLink::vtep_of(const std::uint8_t* mac) const {
  const int v = lookup(mac);
  return v < 0 ? "" : host_text(vteps_[static_cast<std::size_t>(v)]);
}

int VxlanLink::destination(const Frame& f) const {
  const int v = (f.data[0] & 1) == 0 && config_.learning ? lookup(f.data) : -1;
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
  const std::size_t capacity = config_.frame_capacity();
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
    s.strip[k] = !config_.inner_vlan_keep && tagged(f.data, f.len);
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
