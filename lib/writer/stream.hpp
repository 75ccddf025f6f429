// StreamWriter: sends frames on a stream socket with the QEMU/passt framing (each frame after
// its length, 32-bit big-endian), a batch per writev() of many length+frame pairs.
//
// A stream has no message boundaries, so a write the socket cuts short must be finished before
// anything else is written: the rest of that frame is kept (in a buffer made once, never per
// frame) and sent first, by the next batch or when the socket is writable again (the link
// waits for that). Frames after a short write, or while a rest is pending, are not written now,
// never interleaved: they wait in the link's backlog (backlog.hpp) when it has one, else they
// are dropped and counted (tx_queue_full).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/batch.hpp"
#include "core/counters.hpp"

namespace fdlinkd {

class TxBacklog;

class StreamWriter {
 public:
  explicit StreamWriter(std::size_t max_frame);

  /// Writes the frames of `batch` to `fd` (frames over `max_frame` are too_big), first the
  /// pending rest of an earlier one and what waits in `backlog`. Counts sent and dropped
  /// frames in `tally`; a frame cut short is counted as sent (its rest follows). What the
  /// socket cannot take waits in `backlog` (nullptr: dropped).
  void send(int fd, Batch& batch, CounterValues& tally, TxBacklog* backlog = nullptr);
  /// Writes the pending rest, then what waits in `backlog`; true when nothing is left. `err` is
  /// the errno of a failed write (EAGAIN: try again when writable; after another error the
  /// backlog is dropped under its reason and true returned). `progress`: frames finished.
  bool flush(int fd, int& err, TxBacklog* backlog, CounterValues& tally, std::size_t& progress);
  bool flush(int fd, int& err) {
    CounterValues t;
    std::size_t p = 0;
    return flush(fd, err, nullptr, t, p);
  }
  bool pending() const { return rest_len_ != 0; }
  /// Forgets a pending rest (the connection is gone).
  void reset() { rest_len_ = rest_off_ = 0; }

 private:
  /// Keeps the rest of entry or frame bytes [from, from + n) after `written` of them went.
  void keep_rest(const std::uint8_t* len4, const std::uint8_t* data, std::size_t data_len,
                 std::size_t written);
  std::size_t max_frame_;
  std::unique_ptr<std::uint8_t[]> rest_;  ///< the unsent end of a frame (length included)
  std::size_t rest_len_ = 0, rest_off_ = 0;
};

}  // namespace fdlinkd
