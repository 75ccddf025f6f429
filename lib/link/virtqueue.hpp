// VirtQueue: one split virtqueue (virtio 1.1, 2.6) in a vhost-user frontend's memory, as the
// device side (fdlinkd) walks it.
//
// The driver (the guest, or DPDK's virtio-user) offers buffers in the available ring: each an
// index into the descriptor table, the head of a chain of descriptors (guest address, length,
// flags), or of an indirect table of them. The device reads what a chain holds (a frame the
// driver sends) or writes into it (a frame for the driver), then returns the head in the used
// ring with the bytes it wrote. Notifications go both ways through eventfds: the driver kicks
// the device when it offers buffers, the device calls (interrupts) the driver when it returns
// them; with EVENT_IDX each side says from which index on it wants to hear.
//
// Everything in these rings is written by the other side, at any time, and is checked as it
// is read: each field is read once into a local (the driver cannot change it between the check
// and the use), indexes against the ring size, chains against the table (a chain longer than
// the table loops), every buffer against the guest memory map (GuestMemory), and the direction
// of each descriptor against the queue's. A fault is named (VqFault) and the caller resets the
// frontend: the device never reads or writes outside what the frontend mapped.
//
// Threads: the vhost_user link's control thread configures a queue and its data path uses it,
// each under `mutex` (one batch at a time); data-path calls run inside a guest access
// (guest_memory.hpp) so that a page the frontend took away faults back to the caller.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string_view>

#include "core/batch.hpp"
#include "core/counters.hpp"
#include "core/prefetch.hpp"
#include "link/guest_memory.hpp"
#include "link/rx.hpp"

namespace fdlinkd {

namespace virtio {
// Feature bits (virtio 1.1, 5.1.3 and 6); VHOST_USER_F_PROTOCOL_FEATURES (30) is vhost-user's.
inline constexpr unsigned kNetCsum = 0, kNetGuestCsum = 1, kNetGuestTso4 = 7, kNetGuestTso6 = 8,
                          kNetGuestEcn = 9, kNetHostTso4 = 11, kNetHostTso6 = 12, kNetHostEcn = 13,
                          kNetMrgRxbuf = 15, kNetCtrlVq = 17, kNetMq = 22, kAnyLayout = 27,
                          kRingIndirectDesc = 28, kRingEventIdx = 29, kProtocolFeatures = 30,
                          kVersion1 = 32, kInOrder = 35, kLogAll = 26;
constexpr std::uint64_t bit(unsigned b) {
  return std::uint64_t{1} << b;
}
// Descriptor flags, and the ring flags that turn notifications off.
inline constexpr std::uint16_t kDescNext = 1, kDescWrite = 2, kDescIndirect = 4;
inline constexpr std::uint16_t kUsedNoNotify = 1, kAvailNoInterrupt = 1;
/// Whether an event index `event` asks for a notification when the index moves from `old` to
/// `now` (vring_need_event).
constexpr bool need_event(std::uint16_t event, std::uint16_t now, std::uint16_t old) {
  return static_cast<std::uint16_t>(now - event - 1) < static_cast<std::uint16_t>(now - old);
}
}  // namespace virtio

struct VringDesc {
  std::uint64_t addr;
  std::uint32_t len;
  std::uint16_t flags;
  std::uint16_t next;
};
static_assert(sizeof(VringDesc) == 16);

// X(name, what the frontend did)
#define FDLINKD_VQ_FAULTS(X)                                                                  \
  X(bad_avail_index, "the available index moved further than the ring has entries")           \
  X(bad_head, "an available entry names a descriptor outside the table")                      \
  X(bad_descriptor, "a descriptor's next index lies outside its table")                       \
  X(bad_address, "a buffer or table lies outside the memory the frontend mapped")             \
  X(chain_loop, "a descriptor chain longer than its table (it loops)")                        \
  X(bad_indirect, "an indirect table that is empty, misaligned, nested, chained or too long") \
  X(wrong_direction, "a descriptor the device may write in a send chain, or the reverse")     \
  X(memory_fault, "the frontend's memory faulted (a page of its file is gone)")

enum class VqFault : std::uint8_t {
  none,
#define FDLINKD_X(name, desc) name,
  FDLINKD_VQ_FAULTS(FDLINKD_X)
#undef FDLINKD_X
};
std::string_view vq_fault_name(VqFault f);

class VirtQueue {
 public:
  static constexpr std::uint32_t kMaxSize = 32768;     ///< the split ring's limit
  static constexpr std::uint32_t kMaxIndirect = 4096;  ///< descriptors in an indirect table

  /// Guards everything below between the control thread and the data path.
  mutable std::mutex mutex;

  // --- configuration (control thread, under mutex) ------------------------------------------
  std::uint32_t size = 0;  ///< SET_VRING_NUM
  std::uint64_t desc_uva = 0, avail_uva = 0, used_uva = 0;
  bool addr_set = false;
  bool event_idx = false;  ///< VIRTIO_RING_F_EVENT_IDX negotiated
  bool indirect = false;   ///< VIRTIO_RING_F_INDIRECT_DESC negotiated
  bool started = false;    ///< kicked into life (SET_VRING_KICK) and not stopped since
  bool enabled = false;    ///< SET_VRING_ENABLE (or started, without protocol features)
  bool broken = false;     ///< a fault was found: nothing more is done until the reset
  int call_fd = -1;        ///< eventfd to interrupt the driver; -1: it polls
  const GuestMemory* mem = nullptr;

  /// Translates the ring addresses with `mem` (user addresses); false when a ring does not
  /// lie wholly in one region, or is misaligned (desc 16, used 4, avail 2), or the size is not
  /// a power of two up to kMaxSize.
  bool map();
  void unmap() { desc_ = nullptr, avail_ = used_ = nullptr; }
  bool mapped() const { return desc_ != nullptr; }
  /// Whether the data path may use the queue for frames.
  bool ready() const { return started && enabled && !broken && desc_; }
  /// ready(), as the last change under the mutex left it, for readers without the mutex
  /// (which queues a frame may be spread over).
  std::atomic<bool> live{false};
  void update_live() { live.store(ready(), std::memory_order_relaxed); }
  /// SET_VRING_BASE: the next available entry to take (and the used index it matches).
  void set_base(std::uint16_t base) {
    last_avail = used_idx = avail_seen_ = base;
    signalled_valid_ = false;
  }

  // --- the data path (under mutex, inside a guest access) -----------------------------------
  std::uint16_t last_avail = 0;  ///< next available entry to take
  std::uint16_t used_idx = 0;    ///< next used entry to fill (published by publish_used)

  /// How many chains wait in the available ring, or -1 when the driver's index says more than
  /// the ring holds (a fault: bad_avail_index).
  int available() const {
    const std::uint16_t idx = __atomic_load_n(avail_idx_ptr(), __ATOMIC_ACQUIRE);
    avail_seen_ = idx;
    const std::uint16_t n = static_cast<std::uint16_t>(idx - last_avail);
    return n > size ? -1 : n;
  }
  /// available(), but without reading the driver's index again while chains it showed last
  /// time are left: that index sits on a cache line the driver keeps writing, and a read per
  /// frame costs a miss per frame.
  int available_cached() const {
    const std::uint16_t n = static_cast<std::uint16_t>(avail_seen_ - last_avail);
    return n != 0 && n <= size ? n : available();
  }
  /// The head of the next available chain (last_avail), checked against the table.
  VqFault next_head(std::uint16_t& head) const {
    head = __atomic_load_n(avail_ring() + (last_avail & (size - 1)), __ATOMIC_RELAXED);
    return head < size ? VqFault::none : VqFault::bad_head;
  }
  /// Prefetches the first two lines of the first buffer of the chain `ahead` entries after
  /// last_avail, if the driver has offered it (and its descriptor `ahead` + 8 on): frames come
  /// from, and go to, memory the other side's CPU wrote last, and a miss per frame is what a
  /// copy costs most. Two lines: a header and a small frame straddle one (DPDK's mbufs put the
  /// 12-byte header in the last 12 bytes of a line, the frame in the next). Only a hint: an
  /// address outside memory is simply not prefetched.
  void prefetch(std::uint16_t ahead, bool write) const {
    const std::uint16_t offered = static_cast<std::uint16_t>(avail_seen_ - last_avail);
    if (offered > size) return;
    const std::uint16_t* ring = avail_ring();
    if (static_cast<std::uint16_t>(ahead + 8) < offered) {
      const std::uint16_t h = ring[(last_avail + ahead + 8) & (size - 1)];
      if (h < size) prefetch_read(desc_ + std::size_t{16} * h);
    }
    if (ahead >= offered) return;
    const std::uint16_t h = ring[(last_avail + ahead) & (size - 1)];
    if (h >= size) return;
    std::uint64_t addr;
    std::memcpy(&addr, desc_ + std::size_t{16} * h, 8);
    std::uint64_t room = 0;
    const std::uint8_t* p = mem->gpa_span(addr, room);
    if (!p) return;
    if (write) {
      prefetch_write(p);
      if (room > 64) prefetch_write(p + 64);
    } else {
      prefetch_read(p);
      if (room > 64) prefetch_read(p + 64);
    }
  }
  /// Returns chain `head` with `len` bytes written into it (not yet visible to the driver).
  void put_used(std::uint16_t head, std::uint32_t len) {
    std::uint8_t* e = used_ + 4 + std::size_t{8} * (used_idx & (size - 1));
    const std::uint32_t id = head;
    std::memcpy(e, &id, 4);
    std::memcpy(e + 4, &len, 4);
    ++used_idx;
  }
  /// Makes what put_used() returned visible to the driver.
  void publish_used() { __atomic_store_n(used_idx_ptr(), used_idx, __ATOMIC_RELEASE); }
  /// Whether the driver asked to be interrupted for what was published since the last call
  /// (its used_event, or its NO_INTERRUPT flag). Records the call when it says yes.
  bool should_call();
  /// Interrupts the driver (an 8-byte write to call_fd) if should_call().
  void call_if_needed();
  /// The device is busy with the queue: the driver need not kick for now (without EVENT_IDX,
  /// the NO_NOTIFY flag; with it, the driver only kicks past the last avail_event anyway).
  void suppress_kicks() {
    if (!event_idx) __atomic_store_n(used_flags_ptr(), kNoNotify, __ATOMIC_RELAXED);
  }
  /// Before the device waits: asks the driver to kick for the next buffer it offers. True when
  /// buffers arrived meanwhile (look again instead of waiting).
  bool enable_kicks();

  /// Walks chain `head`: calls seg(host pointer, length) for each piece of its buffers in
  /// order (a buffer that spans two regions gives two pieces) until seg returns false or the
  /// chain ends. `writable`: a receive chain (every descriptor device-writable), else a send
  /// chain (every descriptor device-readable). Returns none, or the first fault met.
  template <class Seg>
  VqFault walk_chain(std::uint16_t head, bool writable, Seg&& seg) const;

 private:
  static constexpr std::uint16_t kNoNotify = virtio::kUsedNoNotify;
  // avail: flags, idx, ring[size], used_event; used: flags, idx, ring[size] {id, len},
  // avail_event.
  std::uint16_t* avail_idx_ptr() const { return reinterpret_cast<std::uint16_t*>(avail_ + 2); }
  std::uint16_t* avail_ring() const { return reinterpret_cast<std::uint16_t*>(avail_ + 4); }
  std::uint16_t* used_event_ptr() const {
    return reinterpret_cast<std::uint16_t*>(avail_ + 4 + std::size_t{2} * size);
  }
  std::uint16_t* used_flags_ptr() const { return reinterpret_cast<std::uint16_t*>(used_); }
  std::uint16_t* used_idx_ptr() const { return reinterpret_cast<std::uint16_t*>(used_ + 2); }
  std::uint16_t* avail_event_ptr() const {
    return reinterpret_cast<std::uint16_t*>(used_ + 4 + std::size_t{8} * size);
  }

  const std::uint8_t* desc_ = nullptr;
  std::uint8_t* avail_ = nullptr;
  std::uint8_t* used_ = nullptr;
  std::uint16_t signalled_used_ = 0;      ///< used_idx at the last call
  mutable std::uint16_t avail_seen_ = 0;  ///< the driver's available index, as read last
  bool signalled_valid_ = false;
};

template <class Seg>
VqFault VirtQueue::walk_chain(std::uint16_t head, bool writable, Seg&& seg) const {
  const std::uint8_t* table = desc_;
  std::uint32_t table_size = size;
  std::uint32_t idx = head;
  std::uint32_t seen = 0;
  bool in_indirect = false;
  for (;;) {
    if (idx >= table_size) return VqFault::bad_descriptor;
    if (++seen > table_size) return VqFault::chain_loop;
    VringDesc d;  // read once: the driver may write the table meanwhile
    std::memcpy(&d, table + std::size_t{16} * idx, sizeof d);
    if (d.flags & virtio::kDescIndirect) {
      if (!indirect || in_indirect || (d.flags & virtio::kDescNext) || d.len == 0 ||
          d.len % sizeof(VringDesc) != 0 || d.len / sizeof(VringDesc) > kMaxIndirect)
        return VqFault::bad_indirect;
      table = mem->gpa_to_host(d.addr, d.len);
      if (!table) return VqFault::bad_address;
      table_size = d.len / sizeof(VringDesc);
      idx = 0;
      seen = 0;
      in_indirect = true;
      continue;
    }
    if (((d.flags & virtio::kDescWrite) != 0) != writable) return VqFault::wrong_direction;
    std::uint64_t addr = d.addr;
    std::uint64_t left = d.len;
    while (left != 0) {
      std::uint64_t avail = 0;
      std::uint8_t* p = mem->gpa_span(addr, avail);
      if (!p) return VqFault::bad_address;
      const std::uint64_t n = left < avail ? left : avail;
      if (!seg(p, static_cast<std::uint32_t>(n))) return VqFault::none;
      addr += n;
      left -= n;
    }
    if (!(d.flags & virtio::kDescNext)) return VqFault::none;
    idx = d.next;
  }
}

// --- virtio-net over a virtqueue --------------------------------------------------------------
// Frames cross with a virtio-net header in front: 12 bytes with VERSION_1 or MRG_RXBUF
// (num_buffers last), else 10. Both calls below run under the queue's mutex, inside a guest
// access.

/// Takes the frames the driver sends on `vq` (its transmit queue) into `batch`: one copy each,
/// its header into the 10 bytes before the frame, checked as any received frame (accept_frame:
/// a frame larger than a slot counts as oversize, a chain shorter than the header as runt).
/// Every chain taken is returned used at once; the driver is called if it asked. `discard`: a
/// queue that is started but disabled: its frames are taken and dropped as no_peer. Returns
/// full (the batch is) or drained (the driver's ring is empty and kicks are on again); on a
/// fault, drained with `fault` set and the rest left alone.
RxEnd take_frames(VirtQueue& vq, Batch& batch, const RxLimits& limits, std::size_t hdr_len,
                  bool discard, CounterValues& tally, VqFault& fault);

/// What put_frame did with a frame.
enum class PutResult { sent, ring_full, too_big, fault };

/// Writes one frame for the driver into the buffers of `vq` (its receive queue): `hdr`
/// (hdr_len bytes) then `data`. With `mergeable` (MRG_RXBUF) a frame larger than a buffer fills
/// several, and num_buffers says how many; without, it must fit one chain. Nothing is visible to
/// the driver until publish_used(); a frame that does not fit (ring_full: no buffers left;
/// too_big: its chain is too short) takes no buffer.
PutResult put_frame(VirtQueue& vq, const std::uint8_t* hdr, std::size_t hdr_len, bool mergeable,
                    const std::uint8_t* data, std::size_t len, VqFault& fault);

}  // namespace fdlinkd
