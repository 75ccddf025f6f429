#include "link/af_packet.hpp"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "core/log.hpp"
#include "dispatch/rx_ring.hpp"
#include "link/netdev.hpp"

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

}  // namespace

AfPacketLink::~AfPacketLink() {
  close_retired();
}

void AfPacketLink::close_retired() {
  Link::close_retired();
  // The TX sockets go with the link's other fds; reopen() makes new ones. (No worker touches
  // tx_ while the link is down: transmit stops at is_down().)
  for (auto& t : tx_) {
    t.ring.reset();
    if (t.fd >= 0) ::close(t.fd);
  }
  tx_.clear();
}

void AfPacketLink::open_fds() {
  const std::string& ifname = config_.interface;
  const unsigned ifindex = existing_ifindex();
  ifindex_ = ifindex;

  for (std::size_t q = 0; q < ports_.size(); ++q) {
    const int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw LinkError("AF_PACKET socket: " + errno_text(errno, "CAP_NET_RAW"));
    ports_[q]->fd = fd;

    const int one = 1;
    if (::setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) != 0)
      throw LinkError("PACKET_IGNORE_OUTGOING (needs Linux 4.20): " + errno_text(errno));
    set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF);
    set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF);
    if (config_.qdisc_bypass && !config_.tx_ring) set_qdisc_bypass(fd);
    // Every frame read or written carries a virtio-net header: on receive it is how the kernel
    // tells a frame with an unfinished checksum or a GSO super-frame (and its MSS) from others.
    if (::setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) != 0)
      throw LinkError("PACKET_VNET_HDR: " + errno_text(errno));
    // The kernel takes the outermost VLAN tag out of every frame before a packet socket sees
    // it; the ring says which tag it was, recvmsg says it in PACKET_AUXDATA. fdlinkd puts it
    // back (dispatcher.cpp).
    if (config_.dispatch == DispatchMode::packet_mmap)
      ports_[q]->rx_ring = std::make_unique<RxRing>(fd, config_.ring);
    else if (::setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof one) != 0)
      throw LinkError("PACKET_AUXDATA: " + errno_text(errno));
    // Each frame's receive time, for stages that record it (pcap); the ring has its own.
    if (config_.dispatch != DispatchMode::packet_mmap &&
        ::setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) != 0)
      throw LinkError("SO_TIMESTAMPNS: " + errno_text(errno));

    bind_to(fd, ifindex, ETH_P_ALL, ifname);

    if (config_.promisc) {
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
  if (config_.tx_ring) open_tx_rings(ifindex, if_mtu);

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
    fanout_flags_ = fanout_mode(config_.fanout) | PACKET_FANOUT_FLAG_IGNORE_OUTGOING;
    int arg = (fanout_flags_ | PACKET_FANOUT_FLAG_UNIQUEID) << 16;
    if (::setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof arg) != 0) {
      if (errno != EINVAL) throw LinkError("PACKET_FANOUT with a unique id: " + errno_text(errno));
      // An older kernel: no such flag.
      if (config_.tx_ring && !config_.qdisc_bypass)
        throw LinkError(
            "this kernel lacks PACKET_FANOUT_FLAG_IGNORE_OUTGOING: with fds > 1 and tx_ring, "
            "set qdisc_bypass = true, or the frames fdlinkd sends would be read back");
      log::warn("fanout_sees_outgoing",
                "kernel without PACKET_FANOUT_FLAG_IGNORE_OUTGOING: this link's fds also read "
                "frames other programs send on the interface",
                {{"link", name()}});
      fanout_flags_ = fanout_mode(config_.fanout);
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
               {{"link", name()}, {"id", fanout_id_}, {"mode", fanout_name(config_.fanout)}});
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
    if (config_.qdisc_bypass) set_qdisc_bypass(t.fd);
    t.ring = std::make_unique<TxRing>(t.fd, config_.frame_capacity(), config_.ring.tx_frame_count);
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

}  // namespace fdlinkd
