#include "writer/writer.hpp"

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "core/virtio_net.hpp"
#include "writer/backlog.hpp"
#include "writer/coalesce.hpp"

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

// Whether frame `f` fits what `t` takes; else it is counted too_big.
bool fits(const TxTarget& t, const Frame& f, CounterValues& tally) {
  if (f.len <= t.max_frame) return true;
  ++tally.drop(DropReason::too_big);
  return false;
}

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

// Per worker thread: per message of a send, how many frames it carries and their bytes, and
// (gro) the headers of the super-frames. Grown once to the largest batch, then reused.
struct MessageScratch {
  std::vector<std::uint32_t> frames, bytes;
  std::vector<std::uint8_t> headers;  ///< kCoalesceMaxHeaders per message
  std::vector<TcpSegment> segments;   ///< gro: per frame of the batch
  std::vector<std::int8_t> state;     ///< gro: per frame: 0 not looked at, 1 coalescible, -1 not
  void fit(std::size_t n, bool gro) {
    if (frames.size() < n) {
      frames.resize(n);
      bytes.resize(n);
    }
    if (gro && segments.size() < n) {
      segments.resize(n);
      state.resize(n);
      headers.resize(n * kCoalesceMaxHeaders);
    }
    if (gro) std::fill_n(state.begin(), n, std::int8_t{0});
  }
  /// Whether frame k of `b` may be coalesced (looked at once per batch: a frame that ended one
  /// run starts the next, and its checksum is summed only once).
  bool coalescible_at(Batch& b, std::size_t k) {
    if (state[k] == 0) state[k] = coalescible(b[k], b.tx_header(k), segments[k]) ? 1 : -1;
    return state[k] > 0;
  }
};
thread_local MessageScratch scratch;

void send_mmsg(const TxTarget& t, Batch& b, int port, CounterValues& tally) {
  iovec* iov = b.iov();
  mmsghdr* msgs = b.msgs();
  const bool gro = t.gro && t.vnet && !t.backlog;
  scratch.fit(b.size(), gro);
  std::size_t n = 0, ni = 0;  // messages, iovecs
  for (std::size_t k = 0; k < b.size(); ++k) {
    if (!b.goes_to(k, port) || !fits(t, b[k], tally)) continue;
    const Frame& f = b[k];
    msghdr& h = msgs[n].msg_hdr;
    h.msg_name = const_cast<sockaddr*>(t.address);
    h.msg_namelen = t.address_len;
    h.msg_control = nullptr;
    h.msg_controllen = 0;
    h.msg_flags = 0;
    scratch.frames[n] = 1;
    scratch.bytes[n] = f.len;
    // A run of segments of one flow: one super-frame, its payloads gathered where they lie.
    std::size_t m = 1, total = 0;
    TcpSegment* seg = gro ? scratch.segments.data() : nullptr;
    if (gro && scratch.coalescible_at(b, k)) {
      const std::size_t mss = seg[k].payload;
      total = mss;
      std::size_t last = k;
      for (std::size_t j = k + 1; j < b.size(); ++j) {
        if (!b.goes_to(j, port)) continue;
        if (b[j].len > t.max_frame || !scratch.coalescible_at(b, j) ||
            !continues(b[last], seg[last], b[j], seg[j], mss, total))
          break;
        total += seg[j].payload;
        last = j;
        ++m;
      }
      if (m > 1) {
        VirtioNetHdr& vh = b.tx_header(k);
        std::uint8_t* hdr = &scratch.headers[n * kCoalesceMaxHeaders];
        super_headers(f, seg[k], total, mss, (seg[last].flags & kTcpPsh) != 0, hdr, vh);
        const std::size_t headers = seg[k].info.headers;
        iov[ni] = {&vh, sizeof(VirtioNetHdr)};
        iov[ni + 1] = {hdr, headers};
        std::size_t at = ni + 2;
        std::uint32_t bytes = 0;
        for (std::size_t j = k; j <= last; ++j) {
          if (!b.goes_to(j, port)) continue;
          iov[at++] = {b[j].data + headers, seg[j].payload};
          bytes += b[j].len;
        }
        h.msg_iov = &iov[ni];
        h.msg_iovlen = at - ni;
        ni = at;
        scratch.frames[n] = static_cast<std::uint32_t>(m);
        scratch.bytes[n] = bytes;
        ++n;
        k = last;
        continue;
      }
    }
    iov[ni] = {&b.tx_header(k), sizeof(VirtioNetHdr)};
    iov[ni + 1] = {f.data, f.len};
    h.msg_iov = t.vnet ? &iov[ni] : &iov[ni + 1];
    h.msg_iovlen = t.vnet ? 2 : 1;
    ni += 2;
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
        tally.tx_packets += scratch.frames[k];
        tally.tx_bytes += scratch.bytes[k];
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
      for (std::size_t k = i; k < n; ++k)
        tally.drop(tx_drop_reason(err)) += scratch.frames[k];
      return;
    }
    tally.drop(tx_drop_reason(err)) += scratch.frames[i];
    ++i;
  }
}

void write_each(const TxTarget& t, Batch& b, int port, CounterValues& tally) {
  bool waiting = backlog_waits(t, tally);
  for (std::size_t k = 0; k < b.size(); ++k) {
    if (!b.goes_to(k, port) || !fits(t, b[k], tally)) continue;
    const Frame& f = b[k];
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
