// Worker: what one worker thread owns, passed to every stage that runs on it.
//
// Each worker thread runs one io_context; the dispatchers of the fds it reads, and every stage
// and writer they call, run on it one batch at a time. So whatever the Worker holds is used by
// one thread only and needs no lock: the scratch batch where egress builds GSO segments, and
// the copy area where a frame is copied when it must be changed for one output while another
// output still needs it as it was (make_writable).
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <cstdint>

#include "core/batch.hpp"

namespace fdlinkd {

/// Slots for private copies of frames, reused for every pass of the graph (reset()).
class CopyArea {
 public:
  /// `small` slots of `small_capacity` bytes and `large` of `large_capacity`.
  CopyArea(std::size_t small, std::size_t small_capacity, std::size_t large,
           std::size_t large_capacity);

  /// Copies frame `f` (and the virtio header before it, if any) into a free slot and points
  /// `f` at the copy, whose owner record (f.origin) says `f` is its only holder. False when no
  /// slot is free.
  bool copy(Frame& f);
  /// Every copy is done with (the pass that made them has sent everything).
  void reset() { small_used_ = large_used_ = 0; }

 private:
  Batch small_, large_;
  std::size_t small_used_ = 0, large_used_ = 0;
  std::unique_ptr<Frame[]> owners_;  ///< one per slot: small ones first
};

/// Makes `f`, a descriptor that refers to bytes held elsewhere (f.origin set, as every frame a
/// stage or an output sees), safe to change: in place when nobody else holds the bytes, else
/// on a private copy (`f` then points at the copy and lets go of the original). False when no
/// copy slot is free; the caller drops the frame as no_buffer.
bool make_writable(Frame& f, CopyArea& copies);

/// Back-pressure between an output and the dispatchers that feed it, on one worker.
///
/// An output whose peer cannot take more keeps the rest in its backlog and sets Worker::held
/// during the pass; the dispatcher that ran the pass then waits on that Hold instead of reading
/// again, until the output has sent its backlog (or gives up waiting) and releases it. A
/// dispatcher waits on one Hold at a time; waiting, releasing and leaving all happen on the
/// worker's thread, so no lock.
class Hold;
class HoldWaiter {
 public:
  virtual ~HoldWaiter();
  /// The hold is released: read again (post it; do not run the pass from inside release()).
  virtual void resume() = 0;
  /// Stops waiting (a detached dispatcher); harmless when not waiting.
  void leave();
  bool waiting() const { return hold_ != nullptr; }

 private:
  friend class Hold;
  Hold* hold_ = nullptr;
  HoldWaiter* next_ = nullptr;
  HoldWaiter* prev_ = nullptr;
};

class Hold {
 public:
  Hold() = default;
  Hold(const Hold&) = delete;
  Hold& operator=(const Hold&) = delete;
  ~Hold() { release(); }
  /// `w` waits until release(); it leaves any other hold first.
  void wait(HoldWaiter& w);
  /// Resumes every waiter.
  void release();
  bool empty() const { return head_ == nullptr; }

 private:
  friend class HoldWaiter;
  HoldWaiter* head_ = nullptr;
};

struct Worker {
  static constexpr std::size_t kSpillFrames = 256;  ///< a 64 KiB frame at MSS 536: 123 segments
  static constexpr std::size_t kSmallCopies = 512;
  static constexpr std::size_t kLargeCopies = 16;

  /// `wire_capacity`: the largest frame any link puts on the wire; `rx_capacity`: the largest
  /// any link receives (GSO super-frames).
  Worker(boost::asio::io_context& io, std::size_t id, std::size_t wire_capacity,
         std::size_t rx_capacity);

  /// Reload: makes the buffers fit links with larger frames than any so far. Worker thread,
  /// between batches.
  void grow(std::size_t wire_capacity, std::size_t rx_capacity);

  boost::asio::io_context& io;
  std::size_t id;
  std::size_t wire = 0, rx = 0;  ///< the capacities the buffers were made for
  Batch spill;  ///< where egress builds frames it makes (GSO segments, finished copies)
  CopyArea copies;
  /// Set during a pass by an output that kept frames back for a full peer: the dispatcher that
  /// runs the pass waits on it before reading again (see Hold).
  Hold* held = nullptr;
};

}  // namespace fdlinkd
