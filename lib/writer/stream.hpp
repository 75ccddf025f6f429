// StreamWriter: sends frames on a stream socket with the QEMU/passt framing (each frame after
// its length, 32-bit big-endian), a batch per writev() of many length+frame pairs.
//
// A stream has no message boundaries, so a write the socket cuts short must be finished before
// anything else is written: the rest of that frame is kept (in a buffer made once, never per
// frame) and sent first, by the next batch or when the socket is writable again (the link
// waits for that). Frames after a short write, or while a rest is pending, are not written:
// they are dropped and counted (tx_queue_full), never interleaved.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/batch.hpp"
#include "core/counters.hpp"

namespace fdlinkd {

class StreamWriter {
 public:
  explicit StreamWriter(std::size_t max_frame);

  /// Writes the frames of `batch` to `fd` (frames over `max_frame` are too_big), first the
  /// pending rest of an earlier one. Counts sent and dropped frames in `tally`; a frame cut
  /// short is counted as sent (its rest follows).
  void send(int fd, Batch& batch, CounterValues& tally);
  /// Writes what is pending; true when nothing is left. `err` is the errno of a failed write
  /// (EAGAIN: try again when writable).
  bool flush(int fd, int& err);
  bool pending() const { return rest_len_ != 0; }
  /// Forgets a pending rest (the connection is gone).
  void reset() { rest_len_ = rest_off_ = 0; }

 private:
  std::size_t max_frame_;
  std::unique_ptr<std::uint8_t[]> rest_;  ///< the unsent end of a frame (length included)
  std::size_t rest_len_ = 0, rest_off_ = 0;
};

}  // namespace fdlinkd
