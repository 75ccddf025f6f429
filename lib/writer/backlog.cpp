#include "writer/backlog.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "writer/writer.hpp"

namespace fdlinkd {

TxBacklog::TxBacklog(std::size_t frames, std::size_t bytes)
    : cap_(frames),
      slots_(new Slot[frames]),
      bytes_cap_(bytes),
      bytes_(new std::uint8_t[bytes]),
      iov_(new iovec[frames]),
      msgs_(new mmsghdr[frames]) {}

bool TxBacklog::push(const void* hdr, std::size_t hdr_len, const std::uint8_t* data,
                     std::size_t len) {
  const std::size_t n = hdr_len + len;
  if (count_ == cap_ || n > bytes_cap_) return false;
  std::size_t at;
  if (count_ == 0) {
    at = 0;
  } else {
    const std::size_t rpos = slots_[head_].off;
    if (wpos_ > rpos) {  // in use: [rpos, wpos); free: the end, then [0, rpos)
      if (wpos_ + n <= bytes_cap_)
        at = wpos_;
      else if (n < rpos)
        at = 0;
      else
        return false;
    } else {  // wrapped: in use [rpos, end) and [0, wpos)
      if (wpos_ + n < rpos)
        at = wpos_;
      else
        return false;
    }
  }
  std::memcpy(bytes_.get() + at, hdr, hdr_len);
  std::memcpy(bytes_.get() + at + hdr_len, data, len);
  slots_[(head_ + count_) % cap_] = {static_cast<std::uint32_t>(at), static_cast<std::uint32_t>(n),
                                     static_cast<std::uint16_t>(hdr_len)};
  ++count_;
  wpos_ = at + n;
  return true;
}

TxBacklog::Entry TxBacklog::at(std::size_t i) const {
  const Slot& s = slots_[(head_ + i) % cap_];
  return {bytes_.get() + s.off, s.len, s.hdr_len};
}

void TxBacklog::pop(std::size_t n) {
  head_ = (head_ + n) % cap_;
  count_ -= n;
  if (count_ == 0) head_ = wpos_ = 0;
}

void drop_backlog(TxBacklog& backlog, DropReason why, CounterValues& tally) {
  tally.drop(why) += backlog.size();
  backlog.clear();
}

std::size_t send_backlog(const TxTarget& t, TxBacklog& b, CounterValues& tally, int& err) {
  err = 0;
  std::size_t sent = 0;
  auto count_sent = [&](std::size_t k) {
    const TxBacklog::Entry e = b.at(k);
    ++tally.tx_packets;
    tally.tx_bytes += e.len - e.hdr_len;
  };
  if (!t.is_socket) {  // a TAP/TUN fd: one write per frame
    while (!b.empty()) {
      const TxBacklog::Entry e = b.at(0);
      const ssize_t r = ::write(t.fd, e.data, e.len);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        err = errno;
        if (err == EAGAIN) return sent;
        ++tally.drop(tx_drop_reason(err));  // this frame; the next may go
        b.pop(1);
        continue;
      }
      count_sent(0);
      b.pop(1);
      ++sent;
    }
    return sent;
  }
  while (!b.empty()) {
    // (at most 256 a call: a peer that takes a few at a time does not cost a rebuild of the
    // whole backlog's messages per call)
    const std::size_t n = std::min<std::size_t>(b.size(), 256);
    iovec* iov = b.iov();
    mmsghdr* msgs = b.msgs();
    for (std::size_t k = 0; k < n; ++k) {
      const TxBacklog::Entry e = b.at(k);
      iov[k] = {e.data, e.len};
      msghdr& h = msgs[k].msg_hdr;
      h = {};
      h.msg_name = const_cast<sockaddr*>(t.address);
      h.msg_namelen = t.address_len;
      h.msg_iov = &iov[k];
      h.msg_iovlen = 1;
    }
    const int r = ::sendmmsg(t.fd, msgs, static_cast<unsigned>(n), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r > 0) {
      for (int k = 0; k < r; ++k)
        count_sent(static_cast<std::size_t>(k));
      b.pop(static_cast<std::size_t>(r));
      sent += static_cast<std::size_t>(r);
      continue;
    }
    err = r < 0 ? errno : EAGAIN;
    if (err == EINTR) continue;
    if (err == EAGAIN) return sent;
    if (tx_error_ends_batch(err)) {
      drop_backlog(b, tx_drop_reason(err), tally);
      return sent;
    }
    ++tally.drop(tx_drop_reason(err));
    b.pop(1);
  }
  return sent;
}

}  // namespace fdlinkd
