#include "link/af_packet.hpp"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "config/link_keys.hpp"
#include "core/log.hpp"
#include "link/netdev.hpp"
#include "link/rx.hpp"
#include "offload/vlan.hpp"

// Linux 6.x; Debian 12's headers (6.1) do not have it yet.
#ifndef PACKET_FANOUT_FLAG_IGNORE_OUTGOING
#define PACKET_FANOUT_FLAG_IGNORE_OUTGOING 0x4000
#endif

namespace fdlinkd {

namespace {

constexpr int kSocketBuffer = 4 << 20;  // room for bursts while a worker is busy

void set_buffer(int fd, int force_opt, int opt) {
  // SO_*BUFFORCE needs CAP_NET_ADMIN and ignores the sysctl ceiling; fall back to the plain one.
  if (::setsockopt(fd, SOL_SOCKET, force_opt, &kSocketBuffer, sizeof kSocketBuffer) != 0)
    ::setsockopt(fd, SOL_SOCKET, opt, &kSocketBuffer, sizeof kSocketBuffer);
}

int fanout_mode(Fanout f) {
  switch (f) {
    case Fanout::hash: return PACKET_FANOUT_HASH;
    case Fanout::lb: return PACKET_FANOUT_LB;
    case Fanout::cpu: return PACKET_FANOUT_CPU;
    case Fanout::rollover: return PACKET_FANOUT_ROLLOVER;
    case Fanout::rnd: return PACKET_FANOUT_RND;
    case Fanout::qm: return PACKET_FANOUT_QM;
  }
  return PACKET_FANOUT_HASH;
}

void bind_to(int fd, unsigned ifindex, std::uint16_t protocol, const std::string& ifname) {
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(protocol);
  sll.sll_ifindex = static_cast<int>(ifindex);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0)
    throw LinkError("cannot bind AF_PACKET socket to " + ifname + ": " + errno_text(errno));
}

void set_qdisc_bypass(int fd) {
  const int one = 1;
  if (::setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) != 0)
    throw LinkError("PACKET_QDISC_BYPASS: " + errno_text(errno));
}

constexpr std::string_view kFanoutNames[] = {"hash", "lb", "cpu", "rollover", "rnd", "qm"};

std::string_view fanout_name(Fanout f) {
  return kFanoutNames[static_cast<std::size_t>(f)];
}

// --- keys ------------------------------------------------------------------------------------

// [link.ring]: the PACKET_MMAP ring sizes of an af_packet link.
void read_ring(TableReader& lr, const LinkConfig& l, AfPacketOptions& o) {
  const std::string label = lr.what();
  ConfigErrors& errors = lr.errors();
  const toml::table* t = lr.subtable("ring");
  if (!t) return;
  TableReader r(*t, "[" + label + ".ring]", errors);
  RingConfig& ring = o.ring;
  const bool rx = l.dispatch == DispatchMode::packet_mmap;
  for (auto key : {"version", "block_size", "block_count", "frame_size", "block_timeout"})
    if (!rx) r.reject(key, "it sizes the receive ring of dispatch = \"packet_mmap\"");
  if (auto v = r.integer("version", 2, 3)) ring.version = static_cast<unsigned>(*v);
  if (ring.version == 2)
    r.reject("block_timeout", "a TPACKET_V2 ring hands over each frame as it lands");
  if (!o.tx_ring) r.reject("tx_frame_count", "it sizes the ring of tx_ring = true");
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
  if (rx && ring.version == 2 && ring.frame_size < l.wire_capacity() + 128)
    errors.add(r.where(), "frame_size (" + std::to_string(ring.frame_size) + ") in " + r.what() +
                              " cannot hold one frame of the link's MTU and its ring headers "
                              "with version = 2 (at least " +
                              std::to_string(l.wire_capacity() + 128) + ")");
  if (rx && ring.block_size < l.wire_capacity() + 128)
    errors.add(r.where(), "block_size (" + std::to_string(ring.block_size) + ") in " + r.what() +
                              " cannot hold one frame of the link's MTU");
  r.finish();
}

std::shared_ptr<const LinkOptions> read(TableReader& r, LinkConfig& l) {
  auto o = std::make_shared<AfPacketOptions>();
  l.socket = true;
  l.vnet_always = true;  // (PACKET_VNET_HDR on every socket)
  read_interface(r, l, true, true);
  if (auto v = r.boolean("promisc")) o->promisc = *v;
  if (auto v = r.choice("fanout", kFanoutNames))
    for (std::size_t i = 0; i < std::size(kFanoutNames); ++i)
      if (kFanoutNames[i] == *v) o->fanout = static_cast<Fanout>(i);
  if (auto v = r.boolean("tx_ring")) o->tx_ring = *v;
  if (auto v = r.boolean("qdisc_bypass")) o->qdisc_bypass = *v;
  r.reject("persist",
           "an af_packet link does not take it (fdlinkd does not create AF_PACKET "
           "interfaces)");
  if (auto v = r.boolean("vnet_hdr")) {
    l.vnet_hdr = *v;
    if (*v && o->tx_ring)
      r.errors().add(r.where("vnet_hdr"),
                     "vnet_hdr = true in " + r.what() +
                         " cannot go with tx_ring = true: a TX ring slot holds one wire frame, so "
                         "GSO super-frames could not be passed on (use one or the other)");
  } else {
    // Unset: hand super-frames and unfinished checksums to the kernel when it can take them
    // (the qdisc path segments for devices without TSO; the bypass path and TX ring slots
    // cannot), else finish them in fdlinkd.
    l.vnet_hdr = !o->qdisc_bypass && !o->tx_ring;
  }
  if (auto v = r.boolean("gro")) {
    o->gro = *v;
    if (*v && !l.vnet_hdr)
      r.errors().add(r.where("gro"),
                     "gro = true in " + r.what() +
                         " needs vnet_hdr = true: a super-frame goes to the kernel with a "
                         "virtio-net header (and tx_ring or qdisc_bypass rule that out)");
  }
  read_gso_max_size(r, l);
  read_fds(r, l);
  read_dispatch(r, l, true);
  reject_backpressure(r, "an af_packet link is a wire");
  read_ring(r, l, *o);
  return o;
}

constexpr ConfigKey kKeys[] = {
    {"interface", "the interface (required)"},
    {"promisc", "promiscuous mode while fdlinkd runs (true)"},
    {"fanout", "with fds > 1: hash, lb, cpu, rollover, rnd, qm (hash)"},
    {"tx_ring", "transmit through a TPACKET_V2 TX ring per worker (false)"},
    {"qdisc_bypass", "PACKET_QDISC_BYPASS on transmit (false)"},
    {"ring",
     "[link.ring]: version, block_size, block_count, frame_size, block_timeout, "
     "tx_frame_count"},
    {"vnet_hdr",
     "pass offloads to the kernel with a virtio-net header (true unless "
     "qdisc_bypass or tx_ring)"},
    {"gro", "merge a flow's TCP segments into super-frames on the way out (false)"},
    {"gso_max_size", "largest super-frame received (64KiB)"},
    {"fds", "sockets in a fanout group (1)"},
    {"dispatch", "readv, recvmmsg or packet_mmap (readv)"},
};

std::unique_ptr<Link> make(const LinkConfig& c) {
  return std::make_unique<AfPacketLink>(c);
}

// --- receiving: a PACKET_MMAP ring ------------------------------------------------------------

// The frames of the port's ring, where they lie (TPACKET_V3 blocks or TPACKET_V2 slots); their
// blocks or slots go back to the kernel once the batch has been sent.
class RingRxQueue : public RxQueue {
 public:
  RingRxQueue(AfPacketLink& link, std::size_t port, Batch& batch)
      : link_(link),
        port_(port),
        limits_(rx_limits(link, batch.slot_capacity())),
        vnet_(link.config().vnet_fd()) {}
  void attach(int fd) override {
    fd_ = fd;
    ring_ = link_.ring(port_);  // (a reopened link has a new ring)
  }
  RxEnd receive(Batch& batch, CounterValues& tally) override;
  void release() override {
    if (ring_) ring_->release();
  }

 private:
  /// A V2 ring slot too small for its frame (TP_STATUS_COPY): reads the frame whole from the
  /// socket's queue into the batch slot it would take; false when it is not there (counted).
  bool read_copied(Batch& batch, const RxRing::Frame& f, std::uint8_t*& data, std::size_t& len,
                   CounterValues& tally);
  /// A wake-up with no frame in the ring (pending_error()).
  RxEnd woke_empty(CounterValues& tally);

  AfPacketLink& link_;
  std::size_t port_;
  RxLimits limits_;
  bool vnet_;
  int fd_ = -1;
  RxRing* ring_ = nullptr;
  int last_error_ = 0;
};

RxEnd RingRxQueue::receive(Batch& batch, CounterValues& tally) {
  RxRing::Frame f;
  while (batch.size() < batch.capacity()) {
    if (!ring_->next(f)) return batch.empty() ? woke_empty(tally) : RxEnd::drained;
    last_error_ = 0;
    std::size_t len = f.caplen;
    std::uint8_t* data = f.data;
    if (f.copied) {  // (V2: too big for its slot; the socket has it whole, next in its queue)
      if (!read_copied(batch, f, data, len, tally)) continue;
    } else if ((f.status & TP_STATUS_VLAN_VALID) &&
               f.room >= (vnet_ ? sizeof(VirtioNetHdr) : 0) + 4) {
      data = put_vlan_tag_back(f.data, len, f.vlan_tpid, f.vlan_tci, vnet_);
    }
    const bool truncated = f.copied ? len > batch.slot_capacity() : f.caplen < f.len;
    if (accept_frame(batch, limits_, data, len, truncated, tally, vnet_))
      batch[batch.size() - 1].rx_ns = f.rx_ns;
  }
  return RxEnd::full;
}

bool RingRxQueue::read_copied(Batch& batch, const RxRing::Frame& f, std::uint8_t*& data,
                              std::size_t& len, CounterValues& tally) {
  // Into this frame's batch slot (with its virtio header in front), as recvmmsg reads.
  std::uint8_t* slot = batch.slot(batch.size());
  const std::size_t hdr = vnet_ ? sizeof(VirtioNetHdr) : 0;
  iovec iov = {slot - hdr, hdr + batch.slot_capacity()};
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
  if ((f.status & TP_STATUS_VLAN_VALID) && len <= batch.slot_capacity())
    data = put_vlan_tag_back(slot, len, f.vlan_tpid, f.vlan_tci, vnet_);
  return true;
}

RxEnd RingRxQueue::woke_empty(CounterValues& tally) {
  return pending_error(fd_, tally, link_, port_, last_error_);
}

}  // namespace

const LinkType AfPacketLink::kType = {
    {"af_packet", "an existing interface through AF_PACKET sockets (fanout, rings)", kKeys, read},
    make};

AfPacketLink::AfPacketLink(const LinkConfig& config)
    : Link(config), o_(config_.options_as<AfPacketOptions>()) {}

AfPacketLink::~AfPacketLink() {
  on_retire();
  close_retired();
}

void AfPacketLink::on_retire() {
  for (auto& r : rings_)
    if (r) retired_rings_.push_back(std::move(r));
  rings_.clear();
}

void AfPacketLink::close_retired() {
  retired_rings_.clear();  // (unmapped before their sockets close)
  Link::close_retired();
  // The TX sockets go with the link's other fds; reopen() makes new ones. (No worker touches
  // tx_ while the link is down: transmit stops at is_down().)
  for (auto& t : tx_) {
    t.ring.reset();
    if (t.fd >= 0) ::close(t.fd);
  }
  tx_.clear();
}

std::unique_ptr<RxQueue> AfPacketLink::make_rx_queue(std::size_t port, Worker& w, Batch& batch) {
  if (config_.dispatch == DispatchMode::packet_mmap)
    return std::make_unique<RingRxQueue>(*this, port, batch);
  (void)w;
  return std::make_unique<FdRxQueue>(*this, port, batch, true);
}

void AfPacketLink::open_fds() {
  const std::string& ifname = config_.interface;
  const unsigned ifindex = existing_ifindex();
  ifindex_ = ifindex;
  rings_.clear();
  rings_.resize(ports_.size());

  for (std::size_t q = 0; q < ports_.size(); ++q) {
    const int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw LinkError("AF_PACKET socket: " + errno_text(errno, "CAP_NET_RAW"));
    ports_[q]->fd = fd;

    const int one = 1;
    if (::setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) != 0)
      throw LinkError("PACKET_IGNORE_OUTGOING (needs Linux 4.20): " + errno_text(errno));
    set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF);
    set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF);
    if (o_.qdisc_bypass && !o_.tx_ring) set_qdisc_bypass(fd);
    // Every frame read or written carries a virtio-net header: on receive it is how the kernel
    // tells a frame with an unfinished checksum or a GSO super-frame (and its MSS) from others.
    if (::setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) != 0)
      throw LinkError("PACKET_VNET_HDR: " + errno_text(errno));
    // The kernel takes the outermost VLAN tag out of every frame before a packet socket sees
    // it; the ring says which tag it was, recvmsg says it in PACKET_AUXDATA. fdlinkd puts it
    // back (RingRxQueue, link/rx.cpp).
    if (config_.dispatch == DispatchMode::packet_mmap)
      rings_[q] = std::make_unique<RxRing>(fd, o_.ring);
    else if (::setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof one) != 0)
      throw LinkError("PACKET_AUXDATA: " + errno_text(errno));
    // Each frame's receive time, for stages that record it (pcap); the ring has its own.
    if (config_.dispatch != DispatchMode::packet_mmap &&
        ::setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) != 0)
      throw LinkError("SO_TIMESTAMPNS: " + errno_text(errno));

    bind_to(fd, ifindex, ETH_P_ALL, ifname);

    if (o_.promisc) {
      packet_mreq mr{};
      mr.mr_ifindex = static_cast<int>(ifindex);
      mr.mr_type = PACKET_MR_PROMISC;
      if (::setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) != 0)
        throw LinkError("cannot put " + ifname +
                        " in promiscuous mode: " + errno_text(errno, "CAP_NET_ADMIN"));
    }
    if (ports_.size() > 1) join_fanout(q);
  }
  const unsigned if_mtu = netdev::mtu_of(ifname);
  if (o_.tx_ring) open_tx_rings(ifindex, if_mtu);

  if (if_mtu > config_.mtu)
    log::warn(
        "link_mtu", "interface MTU is larger than the link's mtu: bigger frames are dropped",
        {{"link", name()}, {"interface", ifname}, {"interface_mtu", if_mtu}, {"mtu", config_.mtu}});
  else if (if_mtu != 0 && if_mtu < config_.mtu)
    log::warn(
        "link_mtu",
        "interface MTU is smaller than the link's mtu: bigger frames are dropped (too_big)",
        {{"link", name()}, {"interface", ifname}, {"interface_mtu", if_mtu}, {"mtu", config_.mtu}});
}

void AfPacketLink::join_fanout(std::size_t q) {
  const int fd = ports_[q]->fd;
  if (q == 0) {
    // Once sockets share a fanout group, the kernel delivers through the group's hook and the
    // sockets' own PACKET_IGNORE_OUTGOING no longer applies: the group must ignore outgoing
    // frames itself, or frames sent from the TX-ring sockets (not group members) come straight
    // back in and loop. The kernel picks an id no one else in this namespace uses.
    fanout_flags_ = fanout_mode(o_.fanout) | PACKET_FANOUT_FLAG_IGNORE_OUTGOING;
    int arg = (fanout_flags_ | PACKET_FANOUT_FLAG_UNIQUEID) << 16;
    if (::setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof arg) != 0) {
      if (errno != EINVAL) throw LinkError("PACKET_FANOUT with a unique id: " + errno_text(errno));
      // An older kernel: no such flag.
      if (o_.tx_ring && !o_.qdisc_bypass)
        throw LinkError(
            "this kernel lacks PACKET_FANOUT_FLAG_IGNORE_OUTGOING: with fds > 1 and tx_ring, "
            "set qdisc_bypass = true, or the frames fdlinkd sends would be read back");
      log::warn("fanout_sees_outgoing",
                "kernel without PACKET_FANOUT_FLAG_IGNORE_OUTGOING: this link's fds also read "
                "frames other programs send on the interface",
                {{"link", name()}});
      fanout_flags_ = fanout_mode(o_.fanout);
      arg = (fanout_flags_ | PACKET_FANOUT_FLAG_UNIQUEID) << 16;
      if (::setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof arg) != 0)
        throw LinkError("PACKET_FANOUT with a unique id: " + errno_text(errno));
    }
    int val = 0;
    socklen_t len = sizeof val;
    if (::getsockopt(fd, SOL_PACKET, PACKET_FANOUT, &val, &len) != 0)
      throw LinkError("reading the PACKET_FANOUT id: " + errno_text(errno));
    fanout_id_ = static_cast<std::uint32_t>(val) & 0xFFFF;
    log::debug("fanout_group", "fanout group created",
               {{"link", name()}, {"id", fanout_id_}, {"mode", fanout_name(o_.fanout)}});
    return;
  }
  const int arg = static_cast<int>(fanout_id_) | (fanout_flags_ << 16);
  if (::setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof arg) != 0)
    throw LinkError("joining PACKET_FANOUT group " + std::to_string(fanout_id_) + ": " +
                    errno_text(errno));
}

void AfPacketLink::open_tx_rings(unsigned ifindex, unsigned if_mtu) {
  for (unsigned w = 0; w < workers_; ++w) {
    TxSocket& t = tx_.emplace_back();
    t.fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (t.fd < 0) throw LinkError("AF_PACKET socket: " + errno_text(errno, "CAP_NET_RAW"));
    set_buffer(t.fd, SO_SNDBUFFORCE, SO_SNDBUF);
    if (o_.qdisc_bypass) set_qdisc_bypass(t.fd);
    t.ring = std::make_unique<TxRing>(t.fd, config_.wire_capacity(), o_.ring.tx_frame_count);
    if (if_mtu != 0) t.ring->set_interface_mtu(if_mtu);
    bind_to(t.fd, ifindex, 0, config_.interface);  // protocol 0: this socket never receives
  }
}

void AfPacketLink::collect_kernel_counters() {
  for (auto& port : ports_) {
    const int fd = port->fd.load(std::memory_order_relaxed);
    if (fd < 0) continue;
    // The same struct prefix for TPACKET_V1-V3; reading resets the kernel's counters.
    tpacket_stats_v3 st{};
    socklen_t len = sizeof st;
    if (::getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) != 0 || st.tp_drops == 0)
      continue;
    CounterValues v;
    v.rx_packets = st.tp_drops;  // received by the kernel for this fd, then dropped
    v.drop(DropReason::rx_queue_full) = st.tp_drops;
    kernel_counters_[&port - ports_.data()].add(v);
  }
}

void AfPacketLink::send_batch(Worker& w, Batch& batch) {
  if (tx_.empty()) {
    Link::send_batch(w, batch);
    return;
  }
  // One ring per worker: this thread is the only writer. Frames of one flow come from one
  // receiving fd, hence one worker, hence one ring: they stay in order.
  CounterValues tally;
  tx_[batch.worker() % tx_.size()].ring->send(batch, tally);
  counters(batch.worker(), 0).add(tally);
}

TxTarget AfPacketLink::tx_target(int fd, TxBacklog* backlog) const {
  TxTarget t = Link::tx_target(fd, backlog);
  t.gro = o_.gro;
  return t;
}

}  // namespace fdlinkd
