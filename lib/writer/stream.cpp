#include "writer/stream.hpp"

#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "writer/backlog.hpp"
#include "writer/writer.hpp"

namespace fdlinkd {

namespace {

constexpr std::size_t kMaxIov = IOV_MAX;  // 1024 on Linux: 512 frames per writev

}  // namespace

StreamWriter::StreamWriter(std::size_t max_frame)
    : max_frame_(max_frame), rest_(new std::uint8_t[max_frame + 4]) {}

void StreamWriter::keep_rest(const std::uint8_t* len4, const std::uint8_t* data,
                             std::size_t data_len, std::size_t written) {
  const std::size_t whole = 4 + data_len;
  rest_len_ = whole - written;
  rest_off_ = 0;
  std::uint8_t* out = rest_.get();
  if (written < 4) {
    std::memcpy(out, len4 + written, 4 - written);
    out += 4 - written;
    std::memcpy(out, data, data_len);
  } else {
    std::memcpy(out, data + (written - 4), whole - written);
  }
}

bool StreamWriter::flush(int fd, int& err, TxBacklog* backlog, CounterValues& tally,
                         std::size_t& progress) {
  err = 0;
  while (rest_off_ < rest_len_) {
    const ssize_t n = ::write(fd, rest_.get() + rest_off_, rest_len_ - rest_off_);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      if (err != EAGAIN) {
        reset();
        if (backlog) drop_backlog(*backlog, tx_drop_reason(err), tally);
        return true;
      }
      return false;
    }
    rest_off_ += static_cast<std::size_t>(n);
  }
  if (rest_len_ != 0) ++progress;
  reset();
  while (backlog && !backlog->empty()) {
    // Entries are a 4-byte length and the frame, contiguous: one iovec each.
    const std::size_t count = std::min(backlog->size(), kMaxIov);
    iovec* iov = backlog->iov();
    for (std::size_t k = 0; k < count; ++k) {
      const TxBacklog::Entry e = backlog->at(k);
      iov[k] = {e.data, e.len};
    }
    ssize_t w;
    do {
      w = ::writev(fd, iov, static_cast<int>(count));
    } while (w < 0 && errno == EINTR);
    if (w < 0) {
      err = errno;
      if (err == EAGAIN) return false;
      drop_backlog(*backlog, tx_drop_reason(err), tally);
      return true;
    }
    auto left = static_cast<std::size_t>(w);
    std::size_t done = 0;
    for (; done < count; ++done) {
      const TxBacklog::Entry e = backlog->at(done);
      if (left < e.len) break;
      left -= e.len;
      ++tally.tx_packets;
      tally.tx_bytes += e.len - 4;
    }
    if (done < count && left > 0) {  // cut short: its rest goes first from now on
      const TxBacklog::Entry e = backlog->at(done);
      keep_rest(e.data, e.data + 4, e.len - 4, left);
      ++tally.tx_packets;
      tally.tx_bytes += e.len - 4;
      ++done;
    }
    backlog->pop(done);
    progress += done;
    if (pending() || done < count) {
      err = EAGAIN;
      return false;
    }
  }
  return true;
}

void StreamWriter::send(int fd, Batch& batch, CounterValues& tally, TxBacklog* backlog) {
  int err = 0;
  std::size_t i = 0;
  const std::size_t n = batch.size();
  // Frames i.. not written: each counted as too_big if it is, else kept in the backlog (with
  // its length in front) or dropped under `why`.
  auto drop_rest = [&](DropReason why) {
    for (; i < n; ++i) {
      const Frame& f = batch[i];
      if (f.len > max_frame_) {
        ++tally.drop(DropReason::too_big);
        continue;
      }
      if (!backlog || why != DropReason::tx_queue_full) {
        ++tally.drop(why);
        continue;
      }
      const std::uint8_t len[4] = {
          static_cast<std::uint8_t>(f.len >> 24), static_cast<std::uint8_t>(f.len >> 16),
          static_cast<std::uint8_t>(f.len >> 8), static_cast<std::uint8_t>(f.len)};
      if (!backlog->push(len, 4, f.data, f.len)) ++tally.drop(DropReason::tx_backlog_full);
    }
  };
  if (pending() || (backlog && !backlog->empty())) {
    std::size_t progress = 0;
    if (!flush(fd, err, backlog, tally, progress)) {
      drop_rest(DropReason::tx_queue_full);  // (waits behind what is there)
      return;
    }
    if (err != 0) {
      drop_rest(tx_drop_reason(err));
      return;
    }
  }
  iovec* iov = batch.iov();  // 2 per frame: what a batch has for sendmmsg
  while (i < n) {
    // Up to kMaxIov / 2 frames: each as its length (in the frame's tx_header space) + bytes.
    const std::size_t first = i;
    std::size_t count = 0;
    for (; i < n && 2 * count < kMaxIov; ++i) {
      const Frame& f = batch[i];
      if (f.len > max_frame_) continue;  // (counted below, in order)
      auto* len = reinterpret_cast<std::uint8_t*>(&batch.tx_header(i));
      len[0] = static_cast<std::uint8_t>(f.len >> 24);
      len[1] = static_cast<std::uint8_t>(f.len >> 16);
      len[2] = static_cast<std::uint8_t>(f.len >> 8);
      len[3] = static_cast<std::uint8_t>(f.len);
      iov[2 * count] = {len, 4};
      iov[2 * count + 1] = {f.data, f.len};
      ++count;
    }
    if (count == 0) {  // only frames too big
      tally.drop(DropReason::too_big) += i - first;
      continue;
    }
    ssize_t w;
    do {
      w = ::writev(fd, iov, static_cast<int>(2 * count));
    } while (w < 0 && errno == EINTR);
    if (w < 0) {
      i = first;  // none of these went
      drop_rest(tx_drop_reason(errno));
      return;
    }
    auto left = static_cast<std::size_t>(w);
    i = first;
    for (std::size_t k = 0; k < count; ++i) {
      if (batch[i].len > max_frame_) {
        ++tally.drop(DropReason::too_big);
        continue;
      }
      const std::size_t whole = 4 + iov[2 * k + 1].iov_len;
      ++k;
      if (left >= whole) {
        left -= whole;
        ++tally.tx_packets;
        tally.tx_bytes += whole - 4;
        continue;
      }
      if (left > 0) {  // cut short: keep the rest of this frame, sent before anything else
        keep_rest(static_cast<const std::uint8_t*>(iov[2 * k - 2].iov_base),
                  static_cast<const std::uint8_t*>(iov[2 * k - 1].iov_base), whole - 4, left);
        ++tally.tx_packets;
        tally.tx_bytes += whole - 4;
        ++i;
      }
      // The socket is full: the rest waits (or is dropped), never interleaved with a rest.
      drop_rest(DropReason::tx_queue_full);
      return;
    }
  }
}

}  // namespace fdlinkd
