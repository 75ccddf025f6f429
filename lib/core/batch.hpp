// Batch: the unit that moves through the data path.
//
// A dispatcher reads up to `capacity()` frames from one fd into a Batch, hands it to the link's
// sink, and the sink's writer sends the frames out of the same buffers (no copy). A Batch owns
// one contiguous buffer of fixed-size slots and the iovec/mmsghdr arrays that readv, recvmmsg
// and sendmmsg need, all allocated once when the dispatcher is built and reused for every
// wake-up: nothing on the per-frame path allocates.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace fdlinkd {

/// One frame inside a Batch slot. `data` points into the slot, after its headroom.
struct Frame {
  std::uint8_t* data = nullptr;
  std::uint32_t len = 0;
  /// A virtio-net header (VirtioNetHdr) lies in the 10 bytes just before `data`.
  bool vnet = false;
};

class Batch {
 public:
  /// Bytes kept free in front of every frame, so later stages (virtio-net header, tunnel
  /// encapsulation) can prepend without a copy.
  static constexpr std::size_t kHeadroom = 128;

  /// `capacity` frames of up to `frame_capacity` bytes each, owned by worker thread `worker`.
  Batch(std::size_t capacity, std::size_t frame_capacity, std::size_t worker = 0);
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  std::size_t capacity() const { return capacity_; }
  std::size_t frame_capacity() const { return frame_capacity_; }
  std::size_t size() const { return size_; }
  /// The worker thread this batch belongs to (its dispatcher's); selects per-worker TX state.
  std::size_t worker() const { return worker_; }
  bool empty() const { return size_ == 0; }
  void clear() { size_ = 0; }

  Frame& operator[](std::size_t i) { return frames_[i]; }
  const Frame& operator[](std::size_t i) const { return frames_[i]; }

  /// The start of slot `i`'s frame area (headroom already skipped).
  std::uint8_t* slot(std::size_t i) { return storage_.get() + i * stride() + kHeadroom; }

  /// Appends a frame whose bytes are already in place in one of this batch's slots. A reader
  /// that skips a bad frame simply does not push it (its slot is reused or left empty).
  void push(std::uint8_t* data, std::uint32_t len, bool vnet = false) {
    frames_[size_].data = data;
    frames_[size_].len = len;
    frames_[size_].vnet = vnet;
    ++size_;
  }
  bool full() const { return size_ == capacity_; }

  /// Where a sender builds frames it makes itself (GSO segments): owned by the same dispatcher,
  /// so it is reused like this batch. nullptr when none was attached.
  Batch* spill() const { return spill_; }
  void set_spill(Batch* b) { spill_ = b; }

  /// The egress fd chosen for frame i (by flow hash) when a link has several.
  std::uint8_t& out_port(std::size_t i) { return out_port_[i]; }
  /// Whether frame i is among those for `port` (every frame when port < 0).
  bool goes_to(std::size_t i, int port) const { return port < 0 || out_port_[i] == port; }

  /// Scratch arrays for the system calls: one mmsghdr and two iovecs per slot.
  iovec* iov() { return iov_.get(); }
  mmsghdr* msgs() { return msgs_.get(); }

 private:
  std::size_t stride() const { return kHeadroom + frame_capacity_; }

  std::size_t capacity_;
  std::size_t frame_capacity_;
  std::size_t size_ = 0;
  std::size_t worker_;
  std::unique_ptr<std::uint8_t[]> storage_;
  std::unique_ptr<Frame[]> frames_;
  std::unique_ptr<iovec[]> iov_;
  std::unique_ptr<mmsghdr[]> msgs_;
  std::unique_ptr<std::uint8_t[]> out_port_;
  Batch* spill_ = nullptr;
};

}  // namespace fdlinkd
