#include "writer/writer.hpp"

#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>

#include "core/virtio_net.hpp"
#include "writer/backlog.hpp"

namespace fdlinkd {

DropReason tx_drop_reason(int err) {
  switch (err) {
    case EAGAIN: return DropReason::tx_queue_full;
    case ENOBUFS: return DropReason::tx_nobufs;
    case ENETDOWN:
    case ENXIO:
    case ENODEV:
    case EIO:  // a TAP whose interface is not up
    case EBADFD: return DropReason::link_down;
    case EPIPE:
    case ECONNRESET:
    case ENOTCONN:
    case ECONNREFUSED:
    case ENOENT: return DropReason::no_peer;
    case EMSGSIZE: return DropReason::too_big;
    default: return DropReason::tx_error;
  }
}

bool tx_error_ends_batch(int err) {
  // ENOBUFS and EMSGSIZE concern one frame; the next may still fit.
  return err != ENOBUFS && err != EMSGSIZE && err != EINVAL;
}

namespace {

// Keeps frames from..n of a send (their iovecs, 2 per frame: header, bytes) in the backlog;
// what does not fit is tx_backlog_full.
void keep(const TxTarget& t, const iovec* iov, std::size_t from, std::size_t n,
          CounterValues& tally) {
  for (std::size_t k = from; k < n; ++k) {
    const iovec& h = iov[2 * k];
    const iovec& f = iov[2 * k + 1];
    if (!t.backlog->push(h.iov_base, t.vnet ? h.iov_len : 0,
                         static_cast<const std::uint8_t*>(f.iov_base), f.iov_len))
      ++tally.drop(DropReason::tx_backlog_full);
  }
}

// With a backlog that is not empty: sends it first; true when it is still not empty (then
// everything newer must wait behind it).
bool backlog_waits(const TxTarget& t, CounterValues& tally) {
  if (!t.backlog || t.backlog->empty()) return false;
  int err = 0;
  send_backlog(t, *t.backlog, tally, err);
  return !t.backlog->empty();
}

void send_mmsg(const TxTarget& t, Batch& b, int port, CounterValues& tally) {
  iovec* iov = b.iov();
  mmsghdr* msgs = b.msgs();
  std::size_t n = 0;
  for (std::size_t k = 0; k < b.size(); ++k) {
    if (!b.goes_to(k, port)) continue;
    const Frame& f = b[k];
    if (f.len > t.frame_capacity) {
      ++tally.drop(DropReason::too_big);
      continue;
    }
    iov[2 * n] = {&b.tx_header(k), sizeof(VirtioNetHdr)};
    iov[2 * n + 1] = {f.data, f.len};
    msghdr& h = msgs[n].msg_hdr;
    h.msg_name = const_cast<sockaddr*>(t.address);
    h.msg_namelen = t.address_len;
    h.msg_iov = t.vnet ? &iov[2 * n] : &iov[2 * n + 1];
    h.msg_iovlen = t.vnet ? 2 : 1;
    h.msg_control = nullptr;
    h.msg_controllen = 0;
    h.msg_flags = 0;
    ++n;
  }
  if (backlog_waits(t, tally)) {
    keep(t, iov, 0, n, tally);
    return;
  }
  std::size_t i = 0;
  while (i < n) {
    const int r =
        ::sendmmsg(t.fd, msgs + i, static_cast<unsigned>(n - i), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r > 0) {
      for (std::size_t k = i; k < i + static_cast<std::size_t>(r); ++k) {
        ++tally.tx_packets;
        tally.tx_bytes += iov[2 * k + 1].iov_len;
      }
      i += static_cast<std::size_t>(r);
      continue;
    }
    const int err = r < 0 ? errno : EAGAIN;
    if (err == EINTR) continue;
    if (err == EAGAIN && t.backlog) {
      keep(t, iov, i, n, tally);
      return;
    }
    if (tx_error_ends_batch(err)) {
      tally.drop(tx_drop_reason(err)) += n - i;
      return;
    }
    ++tally.drop(tx_drop_reason(err));
    ++i;
  }
}

void write_each(const TxTarget& t, Batch& b, int port, CounterValues& tally) {
  bool waiting = backlog_waits(t, tally);
  for (std::size_t k = 0; k < b.size(); ++k) {
    if (!b.goes_to(k, port)) continue;
    const Frame& f = b[k];
    if (f.len > t.frame_capacity) {
      ++tally.drop(DropReason::too_big);
      continue;
    }
    const iovec iov[2] = {{&b.tx_header(k), sizeof(VirtioNetHdr)}, {f.data, f.len}};
    if (waiting) {
      keep(t, iov, 0, 1, tally);
      continue;
    }
    ssize_t r;
    do {
      r = t.vnet ? ::writev(t.fd, iov, 2) : ::write(t.fd, f.data, f.len);
    } while (r < 0 && errno == EINTR);
    if (r >= 0) {
      ++tally.tx_packets;
      tally.tx_bytes += f.len;
    } else if (errno == EAGAIN && t.backlog) {
      keep(t, iov, 0, 1, tally);
      waiting = true;
    } else {
      ++tally.drop(tx_drop_reason(errno));
    }
  }
}

}  // namespace

void write_batch(const TxTarget& target, Batch& batch, int port, CounterValues& tally) {
  if (batch.empty()) return;
  if (target.is_socket)
    send_mmsg(target, batch, port, tally);
  else
    write_each(target, batch, port, tally);
}

}  // namespace fdlinkd
