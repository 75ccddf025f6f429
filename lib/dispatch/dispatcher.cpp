#include "dispatch/dispatcher.hpp"

#include <linux/if_packet.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <utility>

#include "core/log.hpp"
#include "core/virtio_net.hpp"
#include "core/worker.hpp"
#include "dispatch/classify.hpp"
#include "dispatch/rx_ring.hpp"
#include "dispatch/stream_framer.hpp"
#include "link/af_xdp.hpp"
#include "link/link.hpp"
#include "link/vxlan.hpp"
#include "offload/checksum.hpp"
#include "offload/vlan.hpp"
#include "sink/graph.hpp"

namespace fdlinkd {

namespace asio = boost::asio;

namespace {

// PACKET_AUXDATA (the VLAN tag the kernel took out) and SCM_TIMESTAMPNS (when it received it).
constexpr std::size_t kAuxSpace =
    CMSG_SPACE(sizeof(tpacket_auxdata)) + CMSG_SPACE(sizeof(timespec));

}  // namespace

Dispatcher::Dispatcher(Worker& worker, Link& link, std::size_t port, Graph& graph)
    : io_(worker.io),
      worker_(worker),
      link_(link),
      port_(port),
      graph_(&graph),
      root_(graph.find(link.config().sink)),
      ingress_(link.index()),
      desc_(worker.io),
      mode_(link.config().dispatch),
      min_frame_(link.config().layer() == Layer::ethernet ? 14 : 1),
      socket_(is_socket(link.config().type)),
      wire_capacity_(link.config().frame_capacity()),
      vnet_(link.config().vnet_fd()),
      batch_(link.config().rx_batch, link.config().rx_capacity(), worker.id),
      overflow_(new std::uint8_t[kOverflowBytes]),
      ring_(link.port(port).rx_ring.get()) {
  if (link.config().type == LinkType::af_packet && ring_ == nullptr)
    aux_ = std::make_unique<std::uint8_t[]>(kAuxSpace * batch_.capacity());
  if (link.config().type == LinkType::unix_socket && link.config().socket == UnixSocket::stream)
    framer_ = std::make_unique<StreamFramer>(link.config().rx_capacity());
  if (link.config().type == LinkType::vxlan) {
    vxlan_ = static_cast<VxlanLink*>(&link);
    senders_ = std::make_unique<sockaddr_storage[]>(batch_.capacity());
    member_of_ = std::make_unique<std::uint16_t[]>(batch_.capacity());
    demux_ = std::make_unique<Batch>(batch_.capacity(), 0, worker.id);
    refresh_members();
  }
}

void Dispatcher::set_graph(Graph& graph, std::size_t root, std::size_t ingress) {
  graph_ = &graph;
  root_ = root;
  ingress_ = ingress;
  if (vxlan_) refresh_members();
}

void Dispatcher::refresh_members() {
  members_.clear();
  members_.push_back({vxlan_->vni(), vxlan_, ingress_, root_, {}});
  if (!vxlan_->socket()) return;
  for (VxlanLink* l : vxlan_->socket()->members()) {
    if (l == vxlan_) continue;
    // (a link opened by a reload in progress joins once the graph that has it is in place)
    const std::size_t root = graph_->find(l->config().sink);
    if (root == Graph::npos) continue;
    members_.push_back({l->vni(), l, l->index(), root, {}});
  }
}

void Dispatcher::run_batch() {
  if (!mixed_) {
    graph_->run(worker_, ingress_, root_, batch_);
    return;
  }
  mixed_ = false;
  for (std::size_t m = 0; m < members_.size(); ++m) {
    demux_->clear();
    for (std::size_t i = 0; i < batch_.size(); ++i)
      if (member_of_[i] == m) demux_->push(batch_[i]);
    if (!demux_->empty()) graph_->run(worker_, members_[m].ingress, members_[m].root, *demux_);
  }
}

std::uint8_t* Dispatcher::read_aux(std::size_t i, std::uint8_t* data, std::size_t& len,
                                   std::size_t msg_controllen, std::int64_t& rx_ns) const {
  msghdr m{};
  m.msg_control = aux_.get() + i * kAuxSpace;
  m.msg_controllen = msg_controllen;
  std::uint8_t* out = data;
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
      timespec ts;
      std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
      rx_ns = std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
      continue;
    }
    if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA) continue;
    tpacket_auxdata aux;
    std::memcpy(&aux, CMSG_DATA(c), sizeof aux);
    if (!(aux.tp_status & TP_STATUS_VLAN_VALID)) continue;
    const std::uint16_t tpid =
        (aux.tp_status & TP_STATUS_VLAN_TPID_VALID) ? aux.tp_vlan_tpid : 0x8100;
    out = put_vlan_tag_back(data, len, tpid, aux.tp_vlan_tci, vnet_);
  }
  return out;
}

Dispatcher::~Dispatcher() {
  detach();
}

void Dispatcher::attach(int fd) {
  detach();
  fd_ = fd;
  ring_ = link_.port(port_).rx_ring.get();  // (a reopened link has a new ring)
  if (link_.config().type == LinkType::af_xdp) {
    xsk_ = static_cast<AfXdpLink&>(link_).xsk(port_);
    xsk_partial_ = static_cast<AfXdpLink&>(link_).sees_unmarked_partials();
  }
  if (framer_) framer_->reset();  // (a new connection starts at a frame)
  desc_.assign(fd);
  // Asio registers the fd edge-triggered and async_wait is not speculative: frames already
  // queued would wait for the next arrival. Drain once first.
  asio::post(io_, [this, gen = generation_] {
    if (gen == generation_) on_ready();
  });
}

void Dispatcher::detach() {
  ++generation_;
  leave();
  if (desc_.is_open()) {
    boost::system::error_code ec;
    desc_.cancel(ec);
    desc_.release();  // the link owns the fd
  }
  fd_ = -1;
}

void Dispatcher::resume() {
  asio::post(io_, [this, gen = generation_] {
    if (gen == generation_) on_ready();
  });
}

void Dispatcher::wait() {
  desc_.async_wait(asio::posix::stream_descriptor::wait_read,
                   [this, gen = generation_](const boost::system::error_code& ec) {
                     if (ec || gen != generation_) return;  // cancelled or detached
                     on_ready();
                   });
}

void Dispatcher::on_ready() {
  const std::uint64_t gen = generation_;
  for (int round = 0; round < kMaxBatchesPerWake; ++round) {
    CounterValues tally;
    batch_.clear();
    const ReadEnd end = read(tally);
    worker_.held = nullptr;
    if (!batch_.empty()) {
      if (mode_ != DispatchMode::packet_mmap) stamp_time();
      run_batch();
    }
    if (ring_) ring_->release();  // the batch is sent: its blocks can go back to the kernel
    if (xsk_) xsk_->release();    // (its frames, to the fill ring)
    link_.counters(worker_.id, port_).add(tally);
    for (std::size_t m = 1; m < members_.size(); ++m) {  // (vxlan: other VNIs on the socket)
      members_[m].link->counters(worker_.id, 0).add(members_[m].tally);
      members_[m].tally = {};
    }
    if (end == ReadEnd::closed) {
      worker_.held = nullptr;
      detach();
      link_.port_closed(port_, *this);
      return;
    }
    if (Hold* h = std::exchange(worker_.held, nullptr)) {  // an output is full: wait for it
      h->wait(*this);
      return;
    }
    if (end == ReadEnd::drained) {
      wait();
      return;
    }
  }
  // Still more to read: let the worker's other fds run first.
  asio::post(io_, [this, gen] {
    if (gen == generation_) on_ready();
  });
}

void Dispatcher::stamp_time() {
  // AF_PACKET sockets report each frame's receive time (SO_TIMESTAMPNS, or the ring); TAP/TUN
  // fds and unix sockets give none: the time the batch was read stands in for those (its
  // frames were read within microseconds of each other).
  if (aux_) return;
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  const std::int64_t ns = std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
  for (std::size_t i = 0; i < batch_.size(); ++i)
    batch_[i].rx_ns = ns;
}

bool Dispatcher::accept_frame(std::uint8_t* data, std::size_t len, bool truncated,
                              CounterValues& tally, bool vnet) {
  ++tally.rx_packets;
  tally.rx_bytes += len;
  const RxLimits limits{batch_.frame_capacity(), wire_capacity_, min_frame_, vnet};
  if (auto why = classify_rx(data, len, truncated, limits)) {
    ++tally.drop(*why);
    return false;
  }
  batch_.push(data, static_cast<std::uint32_t>(len), vnet);
  return true;
}

Dispatcher::ReadEnd Dispatcher::read_error(int err, CounterValues& tally) {
  if (err == EAGAIN) return ReadEnd::drained;
  ++tally.rx_errors;
  if (err != last_error_)
    log::warn("link_rx_error", "read failed",
              {{"link", link_.name()}, {"queue", port_}, {"error", errno_text(err)}});
  last_error_ = err;
  // The device or the connection is gone for good; anything else (ENETDOWN while an interface
  // is down, a reset peer of a datagram socket) is reported and the fd is read again.
  if (err == EBADFD || err == EBADF || err == ENODEV || err == ENXIO || err == ECONNRESET ||
      err == ENOTCONN)
    return ReadEnd::closed;
  return ReadEnd::drained;
}

Dispatcher::ReadEnd Dispatcher::read_readv(CounterValues& tally) {
  while (batch_.size() < batch_.capacity()) {
    std::uint8_t* slot = batch_.slot(batch_.size());
    // With virtio-net headers the header lands in the slot's headroom, just before the frame.
    const std::size_t hdr = vnet_ ? sizeof(VirtioNetHdr) : 0;
    iovec iov[3] = {
        {slot - hdr, hdr}, {slot, batch_.frame_capacity()}, {overflow_.get(), kOverflowBytes}};
    ssize_t n;
    msghdr m{};
    bool truncated = false;
    if (socket_) {
      // recvmsg with MSG_TRUNC returns a message's whole length even when it did not fit, so
      // an oversize frame is counted with its real size, as recvmmsg counts it. af_packet
      // also gets the VLAN tag and the receive time in the control buffer.
      m.msg_iov = vnet_ ? iov : iov + 1;
      m.msg_iovlen = vnet_ ? 2 : 1;
      if (aux_) {
        m.msg_control = aux_.get();
        m.msg_controllen = kAuxSpace;
      }
      n = ::recvmsg(fd_, &m, MSG_TRUNC);
      truncated = n >= 0 && static_cast<std::size_t>(n) > hdr + batch_.frame_capacity();
    } else {  // a TAP/TUN fd: the overflow area catches what the slot cannot hold
      n = vnet_ ? ::readv(fd_, iov, 3) : ::readv(fd_, iov + 1, 2);
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      return read_error(errno, tally);
    }
    if (n == 0 && link_.zero_read_is_eof(fd_)) return ReadEnd::closed;
    last_error_ = 0;
    if (static_cast<std::size_t>(n) < hdr) {
      ++tally.rx_packets;
      ++tally.drop(DropReason::runt);
      continue;
    }
    std::size_t len = static_cast<std::size_t>(n) - hdr;
    std::int64_t rx_ns = 0;
    std::uint8_t* data = aux_ ? read_aux(0, slot, len, m.msg_controllen, rx_ns) : slot;
    if (accept_frame(data, len, truncated, tally)) batch_[batch_.size() - 1].rx_ns = rx_ns;
  }
  return ReadEnd::full;
}

Dispatcher::ReadEnd Dispatcher::read(CounterValues& tally) {
  if (framer_) return read_stream(tally);
  if (vxlan_) return read_vxlan(tally);
  if (xsk_) return read_xsk(tally);
  switch (mode_) {
    case DispatchMode::recvmmsg: return read_recvmmsg(tally);
    case DispatchMode::packet_mmap: return read_ring(tally);
    case DispatchMode::readv: break;
  }
  return read_readv(tally);
}

Dispatcher::ReadEnd Dispatcher::read_ring(CounterValues& tally) {
  RxRing::Frame f;
  while (batch_.size() < batch_.capacity()) {
    if (!ring_->next(f)) return batch_.empty() ? ring_woke_empty(tally) : ReadEnd::drained;
    last_error_ = 0;
    std::size_t len = f.caplen;
    std::uint8_t* data = f.data;
    if (f.copied) {  // (V2: too big for its slot; the socket has it whole, next in its queue)
      if (!read_copied(f, data, len, tally)) continue;
    } else if ((f.status & TP_STATUS_VLAN_VALID) &&
               f.room >= (vnet_ ? sizeof(VirtioNetHdr) : 0) + 4) {
      data = put_vlan_tag_back(f.data, len, f.vlan_tpid, f.vlan_tci, vnet_);
    }
    const bool truncated = f.copied ? len > batch_.frame_capacity() : f.caplen < f.len;
    if (accept_frame(data, len, truncated, tally)) batch_[batch_.size() - 1].rx_ns = f.rx_ns;
  }
  return ReadEnd::full;
}

Dispatcher::ReadEnd Dispatcher::read_xsk(CounterValues& tally) {
  std::uint8_t* data = nullptr;
  std::uint32_t len = 0;
  while (batch_.size() < batch_.capacity()) {
    if (!xsk_->next(data, len)) return batch_.empty() ? ring_woke_empty(tally) : ReadEnd::drained;
    last_error_ = 0;
    if (xsk_partial_ && len >= min_frame_ && XskSocket::may_hold_partial(data))
      offload::complete_unmarked_partial(data, len, true);
    accept_frame(data, len, false, tally);
  }
  return ReadEnd::full;
}

bool Dispatcher::read_copied(const RxRing::Frame& f, std::uint8_t*& data, std::size_t& len,
                             CounterValues& tally) {
  // Into this frame's batch slot (with its virtio header in front), as recvmmsg reads.
  std::uint8_t* slot = batch_.slot(batch_.size());
  const std::size_t hdr = vnet_ ? sizeof(VirtioNetHdr) : 0;
  iovec iov = {slot - hdr, hdr + batch_.frame_capacity()};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  ssize_t n;
  do {
    n = ::recvmsg(fd_, &m, MSG_DONTWAIT | MSG_TRUNC);
  } while (n < 0 && errno == EINTR);
  if (n < 0 || static_cast<std::size_t>(n) < hdr) {  // (gone: the kernel dropped it from the queue)
    ++tally.rx_packets;
    ++tally.drop(DropReason::oversize);
    return false;
  }
  len = static_cast<std::size_t>(n) - hdr;
  data = slot;
  if ((f.status & TP_STATUS_VLAN_VALID) && len <= batch_.frame_capacity())
    data = put_vlan_tag_back(slot, len, f.vlan_tpid, f.vlan_tci, vnet_);
  return true;
}

Dispatcher::ReadEnd Dispatcher::read_stream(CounterValues& tally) {
  framer_->compact();  // the last batch is sent: keep only a frame not yet complete
  for (;;) {
    std::uint8_t* data = nullptr;
    std::size_t len = 0;
    while (!batch_.full()) {
      const auto next = framer_->next(data, len);
      if (next == StreamFramer::Next::need_more) break;
      if (next == StreamFramer::Next::bad_length) {
        ++tally.rx_errors;
        log::warn("unix_protocol_error", "stream frame length out of range: closing the connection",
                  {{"link", link_.name()},
                   {"path", link_.config().path},
                   {"length", len},
                   {"max", link_.config().rx_capacity()}});
        return ReadEnd::closed;
      }
      accept_frame(data, len, false, tally);
    }
    // A full batch, or frames held in a buffer with no room left: send them first.
    if (batch_.full() || framer_->space_left() == 0) return ReadEnd::full;
    const ssize_t n = ::read(fd_, framer_->space(), framer_->space_left());
    if (n < 0) {
      if (errno == EINTR) continue;
      return read_error(errno, tally);
    }
    if (n == 0) {
      if (framer_->buffered()) {
        ++tally.rx_errors;
        log::warn("unix_protocol_error", "the peer hung up in the middle of a frame",
                  {{"link", link_.name()},
                   {"path", link_.config().path},
                   {"bytes", framer_->buffered()}});
      }
      return ReadEnd::closed;
    }
    last_error_ = 0;
    framer_->commit(static_cast<std::size_t>(n));
  }
}

Dispatcher::ReadEnd Dispatcher::read_vxlan(CounterValues& tally) {
  iovec* iov = batch_.iov();
  mmsghdr* msgs = batch_.msgs();
  const std::size_t cap = batch_.capacity();
  constexpr std::size_t hdr = VxlanLink::kHeaderLen;
  for (std::size_t i = 0; i < cap; ++i) {
    iov[2 * i] = {batch_.slot(i) - hdr, hdr};  // (in the headroom)
    iov[2 * i + 1] = {batch_.slot(i), batch_.frame_capacity()};
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
  if (n < 0) return read_error(errno, tally);
  last_error_ = 0;
  for (int i = 0; i < n; ++i) {
    const auto k = static_cast<std::size_t>(i);
    const std::size_t got = msgs[i].msg_len;
    std::uint8_t* slot = batch_.slot(k);
    const std::size_t len = got < hdr ? 0 : got - hdr;
    if (got < hdr) {
      ++tally.rx_packets;
      tally.rx_bytes += got;
      ++tally.drop(DropReason::runt);
      continue;
    }
    const bool truncated = (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
    const std::size_t seen = std::min(len, batch_.frame_capacity());
    const std::uint8_t* vxh = slot - hdr;
    // Whose it is: the link with its VNI on this socket (usually link_ itself).
    std::size_t m = 0;
    if (VxlanLink::header_ok(vxh)) {
      const std::uint32_t vni = VxlanLink::vni_of(vxh);
      while (m < members_.size() && members_[m].vni != vni)
        ++m;
    }
    if (m == members_.size()) m = 0;  // (no link has it: link_ counts it)
    CounterValues& t = m == 0 ? tally : members_[m].tally;
    if (auto why = members_[m].link->check_rx(vxh, senders_[k], slot, seen, worker_.id)) {
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
    if (!truncated && len > wire_capacity_) {
      VirtioNetHdr vh;
      gso = offload::gso_header_for_unmarked(slot, len, members_[m].link->config().mtu, vh);
      if (gso) std::memcpy(slot - sizeof vh, &vh, sizeof vh);
    } else if (!truncated) {
      offload::complete_unmarked_partial(slot, seen, true);
    }
    if (accept_frame(slot, len, truncated, t, gso)) {
      member_of_[batch_.size() - 1] = static_cast<std::uint16_t>(m);
      mixed_ |= m != 0;
    }
  }
  return static_cast<std::size_t>(n) == cap ? ReadEnd::full : ReadEnd::drained;
}

Dispatcher::ReadEnd Dispatcher::ring_woke_empty(CounterValues& tally) {
  // A ring is never read with a system call, so nothing else collects an error the kernel
  // sets on the socket (ENETDOWN when the interface goes down or is deleted). Left pending, it
  // keeps the fd reporting EPOLLERR and the worker would spin on it: collect it here, where a
  // wake-up found no frame.
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err == 0) return ReadEnd::drained;
  return read_error(err, tally);
}

Dispatcher::ReadEnd Dispatcher::read_recvmmsg(CounterValues& tally) {
  iovec* iov = batch_.iov();
  mmsghdr* msgs = batch_.msgs();
  const std::size_t cap = batch_.capacity();
  const std::size_t hdr = vnet_ ? sizeof(VirtioNetHdr) : 0;
  for (std::size_t i = 0; i < cap; ++i) {
    iov[2 * i] = {batch_.slot(i) - hdr, hdr};
    iov[2 * i + 1] = {batch_.slot(i), batch_.frame_capacity()};
    msgs[i].msg_hdr = {};
    msgs[i].msg_hdr.msg_iov = vnet_ ? &iov[2 * i] : &iov[2 * i + 1];
    msgs[i].msg_hdr.msg_iovlen = vnet_ ? 2 : 1;
    if (aux_) {
      msgs[i].msg_hdr.msg_control = aux_.get() + i * kAuxSpace;
      msgs[i].msg_hdr.msg_controllen = kAuxSpace;
    }
  }
  int n;
  do {
    n = ::recvmmsg(fd_, msgs, static_cast<unsigned>(cap), MSG_DONTWAIT | MSG_TRUNC, nullptr);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return read_error(errno, tally);
  if (n == 0) return link_.zero_read_is_eof(fd_) ? ReadEnd::closed : ReadEnd::drained;
  last_error_ = 0;
  for (int i = 0; i < n; ++i) {
    if (msgs[i].msg_len == 0 && link_.zero_read_is_eof(fd_)) return ReadEnd::closed;
    if (msgs[i].msg_len < hdr) {
      ++tally.rx_packets;
      ++tally.drop(DropReason::runt);
      continue;
    }
    const auto k = static_cast<std::size_t>(i);
    std::size_t len = msgs[i].msg_len - hdr;
    std::uint8_t* data = batch_.slot(k);
    std::int64_t rx_ns = 0;
    if (aux_) data = read_aux(k, data, len, msgs[i].msg_hdr.msg_controllen, rx_ns);
    if (accept_frame(data, len, (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0, tally))
      batch_[batch_.size() - 1].rx_ns = rx_ns;
  }
  return static_cast<std::size_t>(n) == cap ? ReadEnd::full : ReadEnd::drained;
}

}  // namespace fdlinkd
