// Batch: the unit that moves through the data path.
//
// A dispatcher reads up to `capacity()` frames from one fd into a Batch that owns one
// contiguous buffer of fixed-size slots (a "storage" batch). The stages then pass frames on
// by descriptor: each output of a stage has a "view" batch (no storage of its own) whose
// Frames point into the storage batch, so a frame is never copied to go somewhere, and is
// copied at most once to be changed when someone else still needs it unchanged (see
// Frame::holders). Every array a batch needs (descriptors, the iovec/mmsghdr arrays of
// readv, recvmmsg and sendmmsg, the virtio headers the writer sends) is allocated once when
// it is built and reused for every wake-up: nothing on the per-frame path allocates.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/virtio_net.hpp"

namespace fdlinkd {

/// One frame: where its bytes are, and what is known of it.
struct Frame {
  std::uint8_t* data = nullptr;
  std::uint32_t len = 0;
  /// A virtio-net header (VirtioNetHdr) lies in the 10 bytes just before `data`.
  bool vnet = false;
  /// On the frame that owns the bytes (owner()): how many stages and outputs still hold them.
  /// Whoever changes the bytes must be the only holder, or change a copy (make_writable).
  std::uint16_t holders = 0;
  /// The frame that owns the bytes this one points at; nullptr: this one does.
  Frame* origin = nullptr;
  /// When the kernel received it, in ns since the epoch (CLOCK_REALTIME); 0 when unknown.
  std::int64_t rx_ns = 0;

  Frame* owner() { return origin ? origin : this; }
};

class Batch {
 public:
  /// Bytes kept free in front of every frame, so later stages (virtio-net header, tunnel
  /// encapsulation, a VLAN tag) can prepend without a copy.
  static constexpr std::size_t kHeadroom = 128;

  /// `capacity` frames of up to `slot_capacity` bytes each, used on worker thread `worker`.
  /// slot_capacity 0 makes a view batch: descriptors only, no slots.
  Batch(std::size_t capacity, std::size_t slot_capacity, std::size_t worker = 0);
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;
  Batch(Batch&&) = default;
  Batch& operator=(Batch&&) = default;

  std::size_t capacity() const { return capacity_; }
  /// The bytes a slot holds (a frame, after the headroom).
  std::size_t slot_capacity() const { return slot_capacity_; }
  std::size_t size() const { return size_; }
  /// The worker thread this batch belongs to; selects per-worker TX state.
  std::size_t worker() const { return worker_; }
  bool empty() const { return size_ == 0; }
  void clear() { size_ = 0; }

  Frame& operator[](std::size_t i) { return frames_[i]; }
  const Frame& operator[](std::size_t i) const { return frames_[i]; }

  /// The start of slot `i`'s frame area (headroom already skipped). Storage batches only.
  std::uint8_t* slot(std::size_t i) { return storage_.get() + i * stride() + kHeadroom; }

  /// Appends a frame whose bytes are already in place in one of this batch's slots. A reader
  /// that skips a bad frame simply does not push it (its slot is reused or left empty).
  void push(std::uint8_t* data, std::uint32_t len, bool vnet = false) {
    Frame& f = frames_[size_++];
    f.data = data;
    f.len = len;
    f.vnet = vnet;
    f.holders = 0;
    f.origin = nullptr;
    f.rx_ns = 0;
  }
  /// Appends a descriptor as it is (a view of a frame held elsewhere, or a frame this batch
  /// built).
  void push(const Frame& f) { frames_[size_++] = f; }
  bool full() const { return size_ == capacity_; }

  /// The egress fd chosen for frame i (by flow hash) when a link has several.
  std::uint8_t& out_port(std::size_t i) { return out_port_[i]; }
  /// Whether frame i is among those for `port` (every frame when port < 0).
  bool goes_to(std::size_t i, int port) const { return port < 0 || out_port_[i] == port; }

  /// The virtio-net header the writer sends in front of frame i on an fd that takes one
  /// (egress.cpp fills it; the frame's own header in its headroom is never overwritten).
  VirtioNetHdr& tx_header(std::size_t i) { return tx_hdr_[i]; }

  /// Scratch arrays for the system calls: one mmsghdr and two iovecs per slot.
  iovec* iov() { return iov_.get(); }
  mmsghdr* msgs() { return msgs_.get(); }

 private:
  std::size_t stride() const { return kHeadroom + slot_capacity_; }

  std::size_t capacity_;
  std::size_t slot_capacity_;
  std::size_t size_ = 0;
  std::size_t worker_;
  std::unique_ptr<std::uint8_t[]> storage_;
  std::unique_ptr<Frame[]> frames_;
  std::unique_ptr<iovec[]> iov_;
  std::unique_ptr<mmsghdr[]> msgs_;
  std::unique_ptr<std::uint8_t[]> out_port_;
  std::unique_ptr<VirtioNetHdr[]> tx_hdr_;
};

}  // namespace fdlinkd
