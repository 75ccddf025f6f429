#include "writer/stream.hpp"

#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "writer/writer.hpp"

namespace fdlinkd {

namespace {

constexpr std::size_t kMaxIov = IOV_MAX;  // 1024 on Linux: 512 frames per writev

}  // namespace

StreamWriter::StreamWriter(std::size_t max_frame)
    : max_frame_(max_frame), rest_(new std::uint8_t[max_frame + 4]) {}

bool StreamWriter::flush(int fd, int& err) {
  while (rest_off_ < rest_len_) {
    const ssize_t n = ::write(fd, rest_.get() + rest_off_, rest_len_ - rest_off_);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      return false;
    }
    rest_off_ += static_cast<std::size_t>(n);
  }
  reset();
  return true;
}

void StreamWriter::send(int fd, Batch& batch, CounterValues& tally) {
  int err = 0;
  std::size_t i = 0;
  const std::size_t n = batch.size();
  if (pending() && !flush(fd, err)) {
    tally.drop(tx_drop_reason(err)) += n;
    return;
  }
  iovec* iov = batch.iov();  // 2 per frame: what a batch has for sendmmsg
  // Frames i.. not written: each counted, as too_big if it is, else under `why`.
  auto drop_rest = [&](DropReason why) {
    for (; i < n; ++i)
      ++tally.drop(batch[i].len > max_frame_ ? DropReason::too_big : why);
  };
  while (i < n) {
    // Up to kMaxIov / 2 frames: each as its length (in the frame's tx_header space) + bytes.
    std::size_t count = 0;
    for (; i < n && 2 * count < kMaxIov; ++i) {
      const Frame& f = batch[i];
      if (f.len > max_frame_) {
        ++tally.drop(DropReason::too_big);
        continue;
      }
      auto* len = reinterpret_cast<std::uint8_t*>(&batch.tx_header(i));
      len[0] = static_cast<std::uint8_t>(f.len >> 24);
      len[1] = static_cast<std::uint8_t>(f.len >> 16);
      len[2] = static_cast<std::uint8_t>(f.len >> 8);
      len[3] = static_cast<std::uint8_t>(f.len);
      iov[2 * count] = {len, 4};
      iov[2 * count + 1] = {f.data, f.len};
      ++count;
    }
    if (count == 0) continue;
    ssize_t w;
    do {
      w = ::writev(fd, iov, static_cast<int>(2 * count));
    } while (w < 0 && errno == EINTR);
    if (w < 0) {
      const DropReason why = tx_drop_reason(errno);
      tally.drop(why) += count;
      drop_rest(why);  // the rest of the batch would fail the same way
      return;
    }
    auto left = static_cast<std::size_t>(w);
    for (std::size_t k = 0; k < count; ++k) {
      const std::size_t whole = 4 + iov[2 * k + 1].iov_len;
      if (left >= whole) {
        left -= whole;
        ++tally.tx_packets;
        tally.tx_bytes += iov[2 * k + 1].iov_len;
        continue;
      }
      if (left > 0) {  // cut short: keep the rest of this frame, sent before anything else
        rest_len_ = whole - left;
        rest_off_ = 0;
        std::uint8_t* out = rest_.get();
        if (left < 4) {
          std::memcpy(out, static_cast<std::uint8_t*>(iov[2 * k].iov_base) + left, 4 - left);
          out += 4 - left;
          std::memcpy(out, iov[2 * k + 1].iov_base, iov[2 * k + 1].iov_len);
        } else {
          std::memcpy(out, static_cast<std::uint8_t*>(iov[2 * k + 1].iov_base) + (left - 4),
                      whole - left);
        }
        left = 0;
        ++tally.tx_packets;
        tally.tx_bytes += iov[2 * k + 1].iov_len;
        ++k;
      }
      // The socket is full: what was not written is dropped (never interleaved with a rest).
      tally.drop(DropReason::tx_queue_full) += count - k;
      drop_rest(DropReason::tx_queue_full);
      return;
    }
  }
}

}  // namespace fdlinkd
