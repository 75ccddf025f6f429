// TxBacklog: frames a local peer could not take yet, waiting for it in order.
//
// A unix socket peer (a VM, a container) that is full is not a congested wire: its frames wait
// instead of being dropped. They are copied out of the batch (whose slots the dispatcher reuses
// as soon as the pass ends) into this backlog, each with the bytes the fd wants in front of it
// (a virtio-net header, a stream length), and sent from here, in order, before anything newer.
// It is bounded in frames (`tx_backlog`) and in bytes (that many wire-sized frames); a frame
// that does not fit is dropped as tx_backlog_full. Its memory is made once; pushing and
// sending never allocate.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/counters.hpp"

namespace fdlinkd {

struct TxTarget;

class TxBacklog {
 public:
  /// Up to `frames` frames taking up to `bytes` bytes, headers included.
  TxBacklog(std::size_t frames, std::size_t bytes);

  std::size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  std::size_t frame_limit() const { return cap_; }

  /// Copies `hdr_len` header bytes and the frame to the tail; false (nothing copied) when the
  /// bound is reached.
  bool push(const void* hdr, std::size_t hdr_len, const std::uint8_t* data, std::size_t len);
  /// Entry i from the head: its header and frame, contiguous.
  struct Entry {
    std::uint8_t* data;
    std::uint32_t len;      ///< header + frame
    std::uint16_t hdr_len;  ///< of which header
  };
  Entry at(std::size_t i) const;
  /// Removes the n oldest frames.
  void pop(std::size_t n);
  void clear() { pop(count_); }

  /// Scratch arrays to send up to frame_limit() entries in one call.
  iovec* iov() { return iov_.get(); }
  mmsghdr* msgs() { return msgs_.get(); }

 private:
  struct Slot {
    std::uint32_t off, len;
    std::uint16_t hdr_len;
  };
  std::size_t cap_;
  std::unique_ptr<Slot[]> slots_;
  std::size_t head_ = 0, count_ = 0;
  // The bytes: a ring where a frame never wraps (it starts again at 0 when it would).
  std::size_t bytes_cap_;
  std::unique_ptr<std::uint8_t[]> bytes_;
  std::size_t wpos_ = 0;  ///< where the next frame goes
  std::unique_ptr<iovec[]> iov_;
  std::unique_ptr<mmsghdr[]> msgs_;
};

/// Sends what it can of `backlog` to `target` (sendmmsg on a socket, one write per frame on a
/// character device), oldest first, removing what was sent and counting it in `tally`. Stops
/// at EAGAIN (err = EAGAIN, the rest kept); after any other error the rest is dropped under its
/// reason (err set). Returns how many frames were sent.
std::size_t send_backlog(const TxTarget& target, TxBacklog& backlog, CounterValues& tally,
                         int& err);

/// Drops every frame of `backlog` under `why`.
void drop_backlog(TxBacklog& backlog, DropReason why, CounterValues& tally);

}  // namespace fdlinkd
