// VirtQueue: one virtqueue in a vhost-user frontend's memory, split (virtio 1.1, 2.6) or packed
// (2.7, VIRTIO_F_RING_PACKED), as the device side (fdlinkd) walks it.
//
// The driver (the guest, or DPDK's virtio-user) offers buffers in the available ring: each an
// index into the descriptor table, the head of a chain of descriptors (guest address, length,
// flags), or of an indirect table of them. The device reads what a chain holds (a frame the
// driver sends) or writes into it (a frame for the driver), then returns the head in the used
// ring with the bytes it wrote. Notifications go both ways through eventfds: the driver kicks
// the device when it offers buffers, the device calls (interrupts) the driver when it returns
// them; with EVENT_IDX each side says from which index on it wants to hear.
//
// The packed ring folds the three into one ring of descriptors: the driver marks a descriptor
// available with its AVAIL and USED flags set unlike each other (AVAIL matching the driver's
// wrap counter, which flips each time it wraps), a chain is a run of consecutive descriptors,
// and the device returns a chain by writing one used descriptor (buffer id, length, both flags
// equal to the device's wrap counter) where the chain began, then skipping the rest of it. The
// notification wishes live in two small areas (the driver's and the device's: enable, disable,
// or with EVENT_IDX a position and wrap counter). Here last_avail and used_idx are positions in
// the ring with a wrap counter each, and used descriptors wait in a shadow list until
// publish_used() writes them: a used descriptor overwrites one the driver offered, so nothing
// may be written before a frame is known to fit (put_frame gives buffers back otherwise).
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
                          kVersion1 = 32, kRingPacked = 34, kInOrder = 35, kLogAll = 26;
constexpr std::uint64_t bit(unsigned b) {
  return std::uint64_t{1} << b;
}
// Descriptor flags, and the ring flags that turn notifications off.
inline constexpr std::uint16_t kDescNext = 1, kDescWrite = 2, kDescIndirect = 4;
inline constexpr std::uint16_t kUsedNoNotify = 1, kAvailNoInterrupt = 1;
// The packed ring's descriptor flags, and its event suppression flags (virtio 1.1, 2.7.14).
inline constexpr std::uint16_t kDescAvail = 1 << 7, kDescUsed = 1 << 15;
inline constexpr std::uint16_t kEventEnable = 0, kEventDisable = 1, kEventDesc = 2;
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
/// A packed ring's descriptor (and an entry of its indirect tables).
struct PackedDesc {
  std::uint64_t addr;
  std::uint32_t len;
  std::uint16_t id;
  std::uint16_t flags;
};
static_assert(sizeof(PackedDesc) == 16);

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
  static constexpr std::uint32_t kMaxSize = 32768;     ///< both rings' limit
  static constexpr std::uint32_t kMaxIndirect = 4096;  ///< descriptors in an indirect table

  /// Guards everything below between the control thread and the data path.
  mutable std::mutex mutex;

  // --- configuration (control thread, under mutex) ------------------------------------------
  std::uint32_t size = 0;  ///< SET_VRING_NUM
  std::uint64_t desc_uva = 0, avail_uva = 0, used_uva = 0;
  bool addr_set = false;
  bool event_idx = false;  ///< VIRTIO_RING_F_EVENT_IDX negotiated
  bool indirect = false;   ///< VIRTIO_RING_F_INDIRECT_DESC negotiated
  bool packed = false;     ///< VIRTIO_F_RING_PACKED negotiated (desc_uva: the ring; avail_uva
                           ///< and used_uva: the driver's and the device's event areas)
  bool started = false;    ///< kicked into life (SET_VRING_KICK) and not stopped since
  bool enabled = false;    ///< SET_VRING_ENABLE (or started, without protocol features)
  bool broken = false;     ///< a fault was found: nothing more is done until the reset
  int call_fd = -1;        ///< eventfd to interrupt the driver; -1: it polls
  const GuestMemory* mem = nullptr;

  /// Translates the ring addresses with `mem` (user addresses); false when a ring does not
  /// lie wholly in one region, or is misaligned (desc 16, used 4, avail 2; packed: the event
  /// areas 4), or the size is not a power of two up to kMaxSize (packed: any size up to it,
  /// with the base inside the ring).
  bool map();
  void unmap() { desc_ = nullptr, avail_ = used_ = nullptr; }
  bool mapped() const { return desc_ != nullptr; }
  /// Whether the data path may use the queue for frames.
  bool ready() const { return started && enabled && !broken && desc_; }
  /// ready(), as the last change under the mutex left it, for readers without the mutex
  /// (which queues a frame may be spread over).
  std::atomic<bool> live{false};
  void update_live() { live.store(ready(), std::memory_order_relaxed); }
  /// SET_VRING_BASE: the next available entry to take (and the used index it matches); for a
  /// packed ring (`packed` set first), the position in bits 0-14 and the wrap counter in 15.
  void set_base(std::uint16_t base) {
    if (packed) {
      last_avail = used_idx = base & 0x7fff;
      avail_wrap = used_wrap = (base >> 15) != 0;
    } else {
      last_avail = used_idx = base;
    }
    avail_seen_ = last_avail;
    signalled_valid_ = false;
    shadow_n_ = 0;
  }
  /// GET_VRING_BASE: the next available entry; for a packed ring the position and wrap counter
  /// of the next available descriptor in bits 0-15 and of the next used one in bits 16-31.
  std::uint32_t base() const {
    if (!packed) return last_avail;
    return (last_avail | std::uint32_t{avail_wrap} << 15) |
           (used_idx | std::uint32_t{used_wrap} << 15) << 16;
  }

  // --- the data path (under mutex, inside a guest access) -----------------------------------
  std::uint16_t last_avail = 0;  ///< next available entry to take (packed: ring position)
  std::uint16_t used_idx = 0;    ///< next used entry to fill (published by publish_used)
  bool avail_wrap = true, used_wrap = true;  ///< packed: the wrap counters of the two

  /// How many chains wait in the available ring, or -1 when the driver's index says more than
  /// the ring holds (a fault: bad_avail_index). Packed: 1 when the descriptor at last_avail is
  /// available, else 0 (the ring has no index saying how many).
  int available() const {
    if (packed) {
      const std::uint16_t f = __atomic_load_n(packed_flags_ptr(last_avail), __ATOMIC_ACQUIRE);
      return ((f & virtio::kDescAvail) != 0) == avail_wrap &&
             ((f & virtio::kDescUsed) != 0) != avail_wrap;
    }
    const std::uint16_t idx = __atomic_load_n(avail_idx_ptr(), __ATOMIC_ACQUIRE);
    avail_seen_ = idx;
    const std::uint16_t n = static_cast<std::uint16_t>(idx - last_avail);
    return n > size ? -1 : n;
  }
  /// available(), but without reading the driver's index again while chains it showed last
  /// time are left: that index sits on a cache line the driver keeps writing, and a read per
  /// frame costs a miss per frame.
  int available_cached() const {
    if (packed) return available();
    const std::uint16_t n = static_cast<std::uint16_t>(avail_seen_ - last_avail);
    return n != 0 && n <= size ? n : available();
  }
  /// The head of the next available chain (last_avail), checked against the table (split).
  VqFault next_head(std::uint16_t& head) const {
    head = __atomic_load_n(avail_ring() + (last_avail & (size - 1)), __ATOMIC_RELAXED);
    return head < size ? VqFault::none : VqFault::bad_head;
  }

  /// One chain as the data path takes it: split, its head; packed, where it begins, and (once
  /// walked) its buffer id and how many descriptors of the ring it takes.
  struct Chain {
    std::uint16_t head = 0, id = 0, descs = 1;
  };
  /// The next available chain (available() said there is one).
  VqFault next_chain(Chain& c) const {
    if (packed) {
      c.head = last_avail;
      c.descs = 0;
      return VqFault::none;
    }
    c.descs = 1;
    const VqFault f = next_head(c.head);
    c.id = c.head;
    return f;
  }
  /// Walks chain `c` as walk_chain() does (packed: to its end even once seg has had enough,
  /// counting its descriptors).
  template <class Seg>
  VqFault walk(Chain& c, bool writable, Seg&& seg) const {
    return packed ? walk_packed(c, writable, seg) : walk_chain(c.head, writable, seg);
  }
  /// Returns chain `c`, walked, with `len` bytes written into it, and moves past it (not yet
  /// visible to the driver: publish_used).
  void consume(const Chain& c, std::uint32_t len) {
    if (!packed) {
      put_used(c.head, len);
      ++last_avail;
      return;
    }
    if (shadow_n_ == kShadow) publish_used();  // (never within a frame: see room_for)
    shadow_[shadow_n_++] = {c.id, c.descs, len};
    advance(last_avail, avail_wrap, c.descs);
  }
  /// Packed: whether `buffers` more chains can be returned before publish_used() must run
  /// (put_frame gives a frame's buffers back until the frame fits, so publishes before it).
  bool room_for(std::size_t buffers) const { return !packed || shadow_n_ + buffers <= kShadow; }
  static constexpr std::size_t kShadow = 512;  ///< used descriptors held back (packed)
  /// Where the data path stands, to go back to (a frame that did not fit gives back what it
  /// took: nothing of it was published).
  struct Mark {
    std::uint16_t avail, used;
    bool avail_wrap;
    std::size_t shadow;
  };
  Mark mark() const { return {last_avail, used_idx, avail_wrap, shadow_n_}; }
  void back_to(const Mark& m) {
    last_avail = m.avail, used_idx = m.used, avail_wrap = m.avail_wrap, shadow_n_ = m.shadow;
  }
  /// Prefetches the first two lines of the first buffer of the chain `ahead` entries after
  /// last_avail, if the driver has offered it (and its descriptor `ahead` + 8 on): frames come
  /// from, and go to, memory the other side's CPU wrote last, and a miss per frame is what a
  /// copy costs most. Two lines: a header and a small frame straddle one (DPDK's mbufs put the
  /// 12-byte header in the last 12 bytes of a line, the frame in the next). Only a hint: an
  /// address outside memory is simply not prefetched.
  void prefetch(std::uint16_t ahead, bool write) const {
    if (packed) {
      prefetch_packed(ahead, write);
      return;
    }
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
    prefetch_buffer(addr, write);
  }
  /// Returns chain `head` with `len` bytes written into it (not yet visible to the driver;
  /// split).
  void put_used(std::uint16_t head, std::uint32_t len) {
    std::uint8_t* e = used_ + 4 + std::size_t{8} * (used_idx & (size - 1));
    const std::uint32_t id = head;
    std::memcpy(e, &id, 4);
    std::memcpy(e + 4, &len, 4);
    ++used_idx;
  }
  /// Makes what put_used() or consume() returned visible to the driver.
  void publish_used() {
    if (packed)
      publish_packed();
    else
      __atomic_store_n(used_idx_ptr(), used_idx, __ATOMIC_RELEASE);
  }
  /// Whether the driver asked to be interrupted for what was published since the last call
  /// (its used_event, or its NO_INTERRUPT flag). Records the call when it says yes.
  bool should_call();
  /// Interrupts the driver (an 8-byte write to call_fd) if should_call().
  void call_if_needed();
  /// The device is busy with the queue: the driver need not kick for now (without EVENT_IDX,
  /// the NO_NOTIFY flag; with it, the driver only kicks past the last avail_event anyway).
  void suppress_kicks() {
    if (packed) {  // (written only when it changes: the driver reads this line)
      if (__atomic_load_n(device_flags_ptr(), __ATOMIC_RELAXED) != virtio::kEventDisable)
        __atomic_store_n(device_flags_ptr(), virtio::kEventDisable, __ATOMIC_RELAXED);
    } else if (!event_idx) {
      __atomic_store_n(used_flags_ptr(), kNoNotify, __ATOMIC_RELAXED);
    }
  }
  /// Before the device waits: asks the driver to kick for the next buffer it offers. True when
  /// buffers arrived meanwhile (look again instead of waiting).
  bool enable_kicks();

  /// Walks split chain `head`: calls seg(host pointer, length) for each piece of its buffers in
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
  // packed: the flags of descriptor `i`; the event areas {off_wrap, flags}: the driver's
  // (avail_uva) and the device's (used_uva).
  std::uint16_t* packed_flags_ptr(std::uint16_t i) const {
    return reinterpret_cast<std::uint16_t*>(desc_ + std::size_t{16} * i + 14);
  }
  std::uint16_t* driver_off_wrap_ptr() const { return reinterpret_cast<std::uint16_t*>(avail_); }
  std::uint16_t* driver_flags_ptr() const { return reinterpret_cast<std::uint16_t*>(avail_ + 2); }
  std::uint16_t* device_flags_ptr() const { return reinterpret_cast<std::uint16_t*>(used_ + 2); }
  /// Moves a packed position `n` descriptors on, flipping its wrap counter past the end.
  void advance(std::uint16_t& pos, bool& wrap, std::uint16_t n) const {
    std::uint32_t p = std::uint32_t{pos} + n;
    if (p >= size) {
      p -= size;
      wrap = !wrap;
    }
    pos = static_cast<std::uint16_t>(p);
  }
  void prefetch_buffer(std::uint64_t addr, bool write) const {
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
  void prefetch_packed(std::uint16_t ahead, bool write) const;
  void publish_packed();
  bool should_call_packed();
  /// Feeds seg the pieces of the buffer [addr, addr + len) until it has had enough (`more`
  /// turns false).
  template <class Seg>
  VqFault buffer(std::uint64_t addr, std::uint64_t len, Seg& seg, bool& more) const;
  template <class Seg>
  VqFault walk_packed(Chain& c, bool writable, Seg& seg) const;

  std::uint8_t* desc_ = nullptr;
  std::uint8_t* avail_ = nullptr;
  std::uint8_t* used_ = nullptr;
  std::uint16_t signalled_used_ = 0;      ///< used_idx at the last call
  mutable std::uint16_t avail_seen_ = 0;  ///< the driver's available index, as read last
  bool signalled_valid_ = false;
  bool signalled_wrap_ = true;  ///< packed: used_wrap at the last call
  struct Shadow {
    std::uint16_t id, descs;
    std::uint32_t len;
  };
  Shadow shadow_[kShadow];
  std::size_t shadow_n_ = 0;
};

template <class Seg>
VqFault VirtQueue::buffer(std::uint64_t addr, std::uint64_t len, Seg& seg, bool& more) const {
  while (len != 0 && more) {
    std::uint64_t avail = 0;
    std::uint8_t* p = mem->gpa_span(addr, avail);
    if (!p) return VqFault::bad_address;
    const std::uint64_t n = len < avail ? len : avail;
    more = seg(p, static_cast<std::uint32_t>(n));
    addr += n;
    len -= n;
  }
  return VqFault::none;
}

template <class Seg>
VqFault VirtQueue::walk_packed(Chain& c, bool writable, Seg& seg) const {
  std::uint32_t pos = c.head;
  bool more = true;
  for (std::uint32_t n = 1;; ++n) {
    if (n > size) return VqFault::chain_loop;  // (every descriptor of the ring says NEXT)
    // Read once: the driver may write the ring meanwhile.
    PackedDesc d;
    std::memcpy(&d, desc_ + std::size_t{16} * pos, sizeof d);
    if (++pos == size) pos = 0;
    c.id = d.id;  // (the chain's last descriptor has it)
    c.descs = static_cast<std::uint16_t>(n);
    if (d.flags & virtio::kDescIndirect) {  // a table of descriptors, the chain's only one
      if (!indirect || n != 1 || (d.flags & virtio::kDescNext) || d.len == 0 ||
          d.len % sizeof(PackedDesc) != 0 || d.len / sizeof(PackedDesc) > kMaxIndirect)
        return VqFault::bad_indirect;
      const std::uint8_t* table = mem->gpa_to_host(d.addr, d.len);
      if (!table) return VqFault::bad_address;
      for (std::uint32_t k = 0; k < d.len / sizeof(PackedDesc) && more; ++k) {
        PackedDesc e;
        std::memcpy(&e, table + std::size_t{16} * k, sizeof e);
        if (e.flags & virtio::kDescIndirect) return VqFault::bad_indirect;
        if (((e.flags & virtio::kDescWrite) != 0) != writable) return VqFault::wrong_direction;
        if (const VqFault f = buffer(e.addr, e.len, seg, more); f != VqFault::none) return f;
      }
      return VqFault::none;
    }
    if (more) {
      if (((d.flags & virtio::kDescWrite) != 0) != writable) return VqFault::wrong_direction;
      if (const VqFault f = buffer(d.addr, d.len, seg, more); f != VqFault::none) return f;
    }
    if (!(d.flags & virtio::kDescNext)) return VqFault::none;
  }
}

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
    bool more = true;
    if (const VqFault f = buffer(d.addr, d.len, seg, more); f != VqFault::none) return f;
    if (!more || !(d.flags & virtio::kDescNext)) return VqFault::none;
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

/// The most buffers one frame may take in put_frame (a 64 KiB frame in buffers of 1526 bytes,
/// the least a driver offers for mergeable buffers, takes 43); a frame that would need more
/// is too_big.
inline constexpr std::uint16_t kMaxFrameBuffers = 128;

/// What put_frame did with a frame.
enum class PutResult { sent, ring_full, too_big, fault };

/// Writes one frame for the driver into the buffers of `vq` (its receive queue): `hdr`
/// (hdr_len bytes) then `data`. With `mergeable` (MRG_RXBUF) a frame larger than a buffer fills
/// several, and num_buffers says how many; without, it must fit one chain. Nothing is visible to
/// the driver until publish_used(); a frame that does not fit (ring_full: no buffers left;
/// too_big: its chain is too short, or it would take more than kMaxFrameBuffers) takes no
/// buffer.
PutResult put_frame(VirtQueue& vq, const std::uint8_t* hdr, std::size_t hdr_len, bool mergeable,
                    const std::uint8_t* data, std::size_t len, VqFault& fault);

}  // namespace fdlinkd
