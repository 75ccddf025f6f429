#include "link/rx.hpp"

#include <linux/if_packet.h>
#include <sys/uio.h>

#include <cerrno>
#include <ctime>

#include "core/errno_text.hpp"
#include "core/log.hpp"
#include "link/link.hpp"
#include "offload/vlan.hpp"

namespace fdlinkd {

namespace {

// PACKET_AUXDATA (the VLAN tag the kernel took out) and SCM_TIMESTAMPNS (when it received it).
constexpr std::size_t kAuxSpace =
    CMSG_SPACE(sizeof(tpacket_auxdata)) + CMSG_SPACE(sizeof(timespec));

}  // namespace

RxLimits rx_limits(const Link& link, std::size_t slot) {
  const LinkConfig& c = link.config();
  return {slot, c.wire_capacity(), c.layer == Layer::ethernet ? 14u : 1u, c.vnet_fd()};
}

void stamp_now(Batch& batch, std::size_t from) {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  const std::int64_t ns = std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
  for (std::size_t i = from; i < batch.size(); ++i)
    batch[i].rx_ns = ns;
}

RxEnd rx_error(int err, CounterValues& tally, const Link& link, std::size_t port, int& last_error) {
  if (err == EAGAIN) return RxEnd::drained;
  ++tally.rx_errors;
  if (err != last_error)
    log::warn("link_rx_error", "read failed",
              {{"link", link.name()}, {"queue", port}, {"error", errno_text(err)}});
  last_error = err;
  // The device or the connection is gone for good; anything else (ENETDOWN while an interface
  // is down, a reset peer of a datagram socket) is reported and the fd is read again.
  if (err == EBADFD || err == EBADF || err == ENODEV || err == ENXIO || err == ECONNRESET ||
      err == ENOTCONN)
    return RxEnd::closed;
  return RxEnd::drained;
}

RxEnd pending_error(int fd, CounterValues& tally, const Link& link, std::size_t port,
                    int& last_error) {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err == 0) return RxEnd::drained;
  return rx_error(err, tally, link, port, last_error);
}

FdRxQueue::FdRxQueue(Link& link, std::size_t port, Batch& batch, bool auxdata)
    : link_(link),
      port_(port),
      limits_(rx_limits(link, batch.slot_capacity())),
      vnet_(link.config().vnet_fd()),
      socket_(link.config().socket),
      recvmmsg_(link.config().dispatch == DispatchMode::recvmmsg),
      overflow_(new std::uint8_t[kOverflowBytes]) {
  if (auxdata) aux_ = std::make_unique<std::uint8_t[]>(kAuxSpace * batch.capacity());
}

RxEnd FdRxQueue::receive(Batch& batch, CounterValues& tally) {
  const RxEnd end = recvmmsg_ ? read_recvmmsg(batch, tally) : read_readv(batch, tally);
  if (!aux_) stamp_now(batch);  // (af_packet: each frame has the kernel's receive time)
  return end;
}

std::uint8_t* FdRxQueue::read_aux(std::size_t i, std::uint8_t* data, std::size_t& len,
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

RxEnd FdRxQueue::read_readv(Batch& batch, CounterValues& tally) {
  while (batch.size() < batch.capacity()) {
    std::uint8_t* slot = batch.slot(batch.size());
    // With virtio-net headers the header lands in the slot's headroom, just before the frame.
    const std::size_t hdr = vnet_ ? sizeof(VirtioNetHdr) : 0;
    iovec iov[3] = {
        {slot - hdr, hdr}, {slot, batch.slot_capacity()}, {overflow_.get(), kOverflowBytes}};
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
      truncated = n >= 0 && static_cast<std::size_t>(n) > hdr + batch.slot_capacity();
    } else {  // a TAP/TUN fd: the overflow area catches what the slot cannot hold
      n = vnet_ ? ::readv(fd_, iov, 3) : ::readv(fd_, iov + 1, 2);
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      return rx_error(errno, tally, link_, port_, last_error_);
    }
    if (n == 0 && link_.zero_read_is_eof(fd_)) return RxEnd::closed;
    last_error_ = 0;
    if (static_cast<std::size_t>(n) < hdr) {
      ++tally.rx_packets;
      ++tally.drop(DropReason::runt);
      continue;
    }
    std::size_t len = static_cast<std::size_t>(n) - hdr;
    std::int64_t rx_ns = 0;
    std::uint8_t* data = aux_ ? read_aux(0, slot, len, m.msg_controllen, rx_ns) : slot;
    if (accept_frame(batch, limits_, data, len, truncated, tally, vnet_))
      batch[batch.size() - 1].rx_ns = rx_ns;
  }
  return RxEnd::full;
}

RxEnd FdRxQueue::read_recvmmsg(Batch& batch, CounterValues& tally) {
  iovec* iov = batch.iov();
  mmsghdr* msgs = batch.msgs();
  const std::size_t cap = batch.capacity();
  const std::size_t hdr = vnet_ ? sizeof(VirtioNetHdr) : 0;
  for (std::size_t i = 0; i < cap; ++i) {
    iov[2 * i] = {batch.slot(i) - hdr, hdr};
    iov[2 * i + 1] = {batch.slot(i), batch.slot_capacity()};
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
  if (n < 0) return rx_error(errno, tally, link_, port_, last_error_);
  if (n == 0) return link_.zero_read_is_eof(fd_) ? RxEnd::closed : RxEnd::drained;
  last_error_ = 0;
  for (int i = 0; i < n; ++i) {
    if (msgs[i].msg_len == 0 && link_.zero_read_is_eof(fd_)) return RxEnd::closed;
    if (msgs[i].msg_len < hdr) {
      ++tally.rx_packets;
      ++tally.drop(DropReason::runt);
      continue;
    }
    const auto k = static_cast<std::size_t>(i);
    std::size_t len = msgs[i].msg_len - hdr;
    std::uint8_t* data = batch.slot(k);
    std::int64_t rx_ns = 0;
    if (aux_) data = read_aux(k, data, len, msgs[i].msg_hdr.msg_controllen, rx_ns);
    if (accept_frame(batch, limits_, data, len, (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0, tally,
                     vnet_))
      batch[batch.size() - 1].rx_ns = rx_ns;
  }
  return static_cast<std::size_t>(n) == cap ? RxEnd::full : RxEnd::drained;
}

}  // namespace fdlinkd
