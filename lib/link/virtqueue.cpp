#include "link/virtqueue.hpp"

#include <unistd.h>

#include <atomic>

namespace fdlinkd {

std::string_view vq_fault_name(VqFault f) {
  switch (f) {
    case VqFault::none: return "none";
#define FDLINKD_X(name, desc) \
  case VqFault::name: return #name;
      FDLINKD_VQ_FAULTS(FDLINKD_X)
#undef FDLINKD_X
  }
  return "?";
}

bool VirtQueue::map() {
  unmap();
  if (!mem || !addr_set || size == 0 || size > kMaxSize) return false;
  const std::uint64_t n = size;
  if (packed) {  // (any size; the base inside the ring)
    std::uint8_t* d = mem->uva_to_host(desc_uva, 16 * n);
    std::uint8_t* a = mem->uva_to_host(avail_uva, 4);
    std::uint8_t* u = mem->uva_to_host(used_uva, 4);
    if (!d || !a || !u || last_avail >= size || used_idx >= size) return false;
    if (reinterpret_cast<std::uintptr_t>(d) % 16 != 0 ||
        reinterpret_cast<std::uintptr_t>(a) % 4 != 0 ||
        reinterpret_cast<std::uintptr_t>(u) % 4 != 0)
      return false;
    desc_ = d;
    avail_ = a;
    used_ = u;
    return true;
  }
  if ((size & (size - 1)) != 0) return false;
  std::uint8_t* d = mem->uva_to_host(desc_uva, 16 * n);
  std::uint8_t* a = mem->uva_to_host(avail_uva, 4 + 2 * n + 2);
  std::uint8_t* u = mem->uva_to_host(used_uva, 4 + 8 * n + 2);
  if (!d || !a || !u) return false;
  if (reinterpret_cast<std::uintptr_t>(d) % 16 != 0 ||
      reinterpret_cast<std::uintptr_t>(a) % 2 != 0 || reinterpret_cast<std::uintptr_t>(u) % 4 != 0)
    return false;
  desc_ = d;
  avail_seen_ = last_avail;  // (read the driver's index afresh)
  avail_ = a;
  used_ = u;
  return true;
}

bool VirtQueue::should_call() {
  if (packed) return should_call_packed();
  if (signalled_valid_ && signalled_used_ == used_idx) return false;  // nothing new
  // The used index is published before the driver's wish is read (the driver writes its wish,
  // then reads the index: one of the two sees the other).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (event_idx) {
    const std::uint16_t event = __atomic_load_n(used_event_ptr(), __ATOMIC_RELAXED);
    const std::uint16_t old = signalled_used_;
    const bool valid = signalled_valid_;
    signalled_used_ = used_idx;
    signalled_valid_ = true;
    return !valid || virtio::need_event(event, used_idx, old);
  }
  signalled_used_ = used_idx;
  signalled_valid_ = true;
  return !(__atomic_load_n(reinterpret_cast<std::uint16_t*>(avail_), __ATOMIC_RELAXED) &
           virtio::kAvailNoInterrupt);
}

void VirtQueue::call_if_needed() {
  if (call_fd < 0 || !should_call()) return;
  const std::uint64_t one = 1;
  // (EAGAIN: the counter is full, the driver has a call pending anyway)
  [[maybe_unused]] const ssize_t n = ::write(call_fd, &one, sizeof one);
}

bool VirtQueue::enable_kicks() {
  if (packed)  // (enable, never a position: the driver kicks for whatever it offers next)
    __atomic_store_n(device_flags_ptr(), virtio::kEventEnable, __ATOMIC_RELAXED);
  else if (event_idx)
    __atomic_store_n(avail_event_ptr(), last_avail, __ATOMIC_RELAXED);
  else
    __atomic_store_n(used_flags_ptr(), std::uint16_t{0}, __ATOMIC_RELAXED);
  // The wish is written before the index is read again (the driver writes the index, then
  // reads the wish).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return available() != 0;
}

void VirtQueue::prefetch_packed(std::uint16_t ahead, bool write) const {
  // Descriptors are not checked for being available: a stale one's buffer is prefetched for
  // nothing, one outside memory not at all.
  std::uint32_t at = std::uint32_t{last_avail} + ahead + 8;
  if (at >= size) at %= size;
  prefetch_read(desc_ + std::size_t{16} * at);
  at = std::uint32_t{last_avail} + ahead;
  if (at >= size) at %= size;
  std::uint64_t addr;
  std::memcpy(&addr, desc_ + std::size_t{16} * at, 8);
  prefetch_buffer(addr, write);
}

void VirtQueue::publish_packed() {
  // Each used descriptor where its chain began: id and length first, the flags (both set to
  // the device's wrap counter) last, so that the driver sees it whole.
  for (std::size_t i = 0; i < shadow_n_; ++i) {
    const Shadow& e = shadow_[i];
    std::uint8_t* d = desc_ + std::size_t{16} * used_idx;
    std::memcpy(d + 8, &e.len, 4);
    std::memcpy(d + 12, &e.id, 2);
    std::uint16_t flags = used_wrap ? virtio::kDescAvail | virtio::kDescUsed : 0;
    if (e.len != 0) flags |= virtio::kDescWrite;
    __atomic_store_n(packed_flags_ptr(used_idx), flags, __ATOMIC_RELEASE);
    advance(used_idx, used_wrap, e.descs);
  }
  shadow_n_ = 0;
}

bool VirtQueue::should_call_packed() {
  // Nothing new since the last call: no call. Else, as should_call, the used descriptors are
  // published before the driver's wish is read.
  if (signalled_valid_ && signalled_used_ == used_idx && signalled_wrap_ == used_wrap) return false;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const std::uint16_t flags = __atomic_load_n(driver_flags_ptr(), __ATOMIC_ACQUIRE);
  const std::uint16_t off_wrap = __atomic_load_n(driver_off_wrap_ptr(), __ATOMIC_RELAXED);
  const bool valid = signalled_valid_;
  // A position and its wrap counter name a place modulo two laps of the ring: the last call's,
  // now's and the driver's wish, counted that way.
  const std::uint32_t laps = 2 * size;
  const auto place = [&](std::uint32_t pos, bool wrap) { return pos + (wrap ? size : 0); };
  const std::uint32_t old = place(signalled_used_, signalled_wrap_);
  const std::uint32_t now = place(used_idx, used_wrap);
  signalled_used_ = used_idx;
  signalled_wrap_ = used_wrap;
  signalled_valid_ = true;
  if (flags == virtio::kEventDisable) return false;
  if (flags != virtio::kEventDesc || !event_idx || !valid) return true;
  // (vring_need_event in that count: the wish lies in [old, now))
  const std::uint32_t event = place(off_wrap & 0x7fffu, (off_wrap >> 15) != 0) % laps;
  return (now + laps - event - 1) % laps < (now + laps - old) % laps;
}

}  // namespace fdlinkd

namespace fdlinkd {

RxEnd take_frames(VirtQueue& vq, Batch& batch, const RxLimits& limits, std::size_t hdr_len,
                  bool discard, CounterValues& tally, VqFault& fault) {
  RxEnd end = RxEnd::drained;
  const std::size_t cap = batch.slot_capacity();
  std::uint8_t hdr[12];
  vq.suppress_kicks();
  for (;;) {
    int n = vq.available();
    if (n < 0) {
      fault = VqFault::bad_avail_index;
      break;
    }
    if (n == 0) {
      if (vq.enable_kicks()) continue;  // (buffers came meanwhile)
      break;
    }
    for (; n > 0 && !batch.full(); --n) {
      vq.prefetch(8, false);
      VirtQueue::Chain chain;
      if ((fault = vq.next_chain(chain)) != VqFault::none) break;
      std::uint8_t* slot = batch.slot(batch.size());
      std::uint64_t got = 0;  // bytes of the chain so far
      fault = vq.walk(chain, false, [&](const std::uint8_t* p, std::uint32_t len) {
        std::uint64_t off = 0;
        if (got < hdr_len) {  // (the header may be split over several descriptors)
          off = std::min<std::uint64_t>(len, hdr_len - got);
          if (got == 0 && off == 12)  // (the usual case, copied inline)
            std::memcpy(hdr, p, 12);
          else
            std::memcpy(hdr + got, p, off);
        }
        const std::uint64_t at = got + off - hdr_len;  // where the rest goes in the frame
        if (!discard && off < len && at < cap)
          std::memcpy(slot + at, p + off, std::min<std::uint64_t>(len - off, cap - at));
        got += len;
        return true;  // (to the end: the frame's whole length decides whether it fits)
      });
      if (fault != VqFault::none) break;
      vq.consume(chain, 0);
      if (discard) {
        ++tally.rx_packets;
        tally.rx_bytes += got;
        ++tally.drop(DropReason::no_peer);
      } else if (got < hdr_len) {
        ++tally.rx_packets;
        tally.rx_bytes += got;
        ++tally.drop(DropReason::runt);
      } else {
        const std::uint64_t len = got - hdr_len;
        std::memcpy(slot - sizeof(VirtioNetHdr), hdr, sizeof(VirtioNetHdr));
        accept_frame(batch, limits, slot,
                     static_cast<std::size_t>(std::min<std::uint64_t>(len, cap)), len > cap, tally,
                     true);
      }
    }
    if (fault != VqFault::none) break;
    if (batch.full()) {
      end = RxEnd::full;
      break;
    }
  }
  vq.publish_used();
  vq.call_if_needed();
  return end;
}

PutResult put_frame(VirtQueue& vq, const std::uint8_t* hdr, std::size_t hdr_len, bool mergeable,
                    const std::uint8_t* data, std::size_t len, VqFault& fault) {
  if (!vq.room_for(kMaxFrameBuffers)) vq.publish_used();
  const VirtQueue::Mark first = vq.mark();
  const std::uint64_t total = hdr_len + len;
  std::uint64_t done = 0;
  std::uint16_t buffers = 0;
  std::uint8_t* count_at[2] = {nullptr, nullptr};  // num_buffers (header bytes 10 and 11)
  int left = vq.available_cached();
  vq.prefetch(2, true);
  while (done < total && buffers < kMaxFrameBuffers) {
    if (left <= 0) {
      if (left < 0 || (left = vq.available()) < 0) {
        fault = VqFault::bad_avail_index;
        return PutResult::fault;
      }
      if (left == 0) break;
    }
    VirtQueue::Chain chain;
    if ((fault = vq.next_chain(chain)) != VqFault::none) return PutResult::fault;
    std::uint64_t written = 0;
    fault = vq.walk(chain, true, [&](std::uint8_t* p, std::uint32_t room) {
      const std::uint64_t n = std::min<std::uint64_t>(room, total - done);
      for (std::uint64_t k = 0; k < n;) {  // header bytes, then frame bytes
        const std::uint64_t at = done + k;
        std::uint64_t piece;
        if (at < hdr_len) {
          piece = std::min<std::uint64_t>(n - k, hdr_len - at);
          std::memcpy(p + k, hdr + at, piece);
          if (buffers == 0 && hdr_len == 12)
            for (std::uint64_t b = at; b < at + piece; ++b)
              if (b >= 10) count_at[b - 10] = p + k + (b - at);
        } else {
          piece = n - k;
          std::memcpy(p + k, data + (at - hdr_len), piece);
        }
        k += piece;
      }
      done += n;
      written += n;
      return done < total;
    });
    if (fault != VqFault::none) return PutResult::fault;
    vq.consume(chain, static_cast<std::uint32_t>(written));
    ++buffers;
    --left;
    if (!mergeable) break;
  }
  if (done < total) {  // give the buffers back: the driver has not seen them used
    vq.back_to(first);
    return (buffers == 0 || mergeable) && buffers < kMaxFrameBuffers ? PutResult::ring_full
                                                                     : PutResult::too_big;
  }
  if (mergeable && count_at[0] && count_at[1]) {
    *count_at[0] = static_cast<std::uint8_t>(buffers & 0xff);
    *count_at[1] = static_cast<std::uint8_t>(buffers >> 8);
  }
  return PutResult::sent;
}

}  // namespace fdlinkd
