#include "core/worker.hpp"

#include <algorithm>
#include <cstring>

namespace fdlinkd {

CopyArea::CopyArea(std::size_t small, std::size_t small_capacity, std::size_t large,
                   std::size_t large_capacity)
    : small_(small, small_capacity),
      large_(large, std::max(large_capacity, small_capacity)),
      owners_(new Frame[small + large]) {}

bool CopyArea::copy(Frame& f) {
  std::uint8_t* dst;
  Frame* owner;
  if (f.len <= small_.slot_capacity() && small_used_ < small_.capacity()) {
    owner = &owners_[small_used_];
    dst = small_.slot(small_used_++);
  } else if (f.len <= large_.slot_capacity() && large_used_ < large_.capacity()) {
    owner = &owners_[small_.capacity() + large_used_];
    dst = large_.slot(large_used_++);
  } else {
    return false;
  }
  const std::size_t hdr = f.vnet ? sizeof(VirtioNetHdr) : 0;
  std::memcpy(dst - hdr, f.data - hdr, f.len + hdr);
  *owner = f;
  owner->data = dst;
  owner->origin = nullptr;
  owner->holders = 1;
  f.data = dst;
  f.origin = owner;
  return true;
}

bool make_writable(Frame& f, CopyArea& copies) {
  Frame* owner = f.owner();
  if (owner->holders <= 1) return true;
  if (owner == &f) return false;  // (an owner is never handed to a stage; see Frame)
  if (!copies.copy(f)) return false;
  --owner->holders;  // this holder now has bytes of its own
  return true;
}

Worker::Worker(boost::asio::io_context& io_, std::size_t id_, std::size_t wire_capacity,
               std::size_t rx_capacity)
    : io(io_),
      id(id_),
      // 1518: an Ethernet frame of MTU 1500, whatever smaller MTUs the links have.
      spill(kSpillFrames, std::max<std::size_t>(wire_capacity, 1518), id_),
      copies(kSmallCopies, std::max<std::size_t>(wire_capacity, 1518), kLargeCopies, rx_capacity) {
  wire = wire_capacity;
  rx = rx_capacity;
}

void Worker::grow(std::size_t wire_capacity, std::size_t rx_capacity) {
  if (wire_capacity <= wire && rx_capacity <= rx) return;
  wire = std::max(wire, wire_capacity);
  rx = std::max(rx, rx_capacity);
  spill = Batch(kSpillFrames, std::max<std::size_t>(wire, 1518), id);
  copies = CopyArea(kSmallCopies, std::max<std::size_t>(wire, 1518), kLargeCopies, rx);
}

HoldWaiter::~HoldWaiter() {
  leave();
}

void HoldWaiter::leave() {
  if (!hold_) return;
  if (prev_)
    prev_->next_ = next_;
  else
    hold_->head_ = next_;
  if (next_) next_->prev_ = prev_;
  hold_ = nullptr;
  next_ = prev_ = nullptr;
}

void Hold::wait(HoldWaiter& w) {
  if (w.hold_ == this) return;
  w.leave();
  w.hold_ = this;
  w.prev_ = nullptr;
  w.next_ = head_;
  if (head_) head_->prev_ = &w;
  head_ = &w;
}

void Hold::release() {
  while (head_) {
    HoldWaiter* w = head_;
    w->leave();
    w->resume();
  }
}

}  // namespace fdlinkd
