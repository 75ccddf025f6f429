// GuestRig: a vhost-user frontend's side of the shared memory, for tests of the device side
// (unit tests and fuzz targets). The guest's memory is a memfd of kSize bytes that fdlinkd's
// GuestMemory maps as two adjacent regions (so a buffer may span both), and that the rig maps
// once more as the driver's view. Rings lie at fixed guest addresses: the descriptor table at
// kDesc, the available ring at kAvail, the used ring at kUsed; buffers from kBuffers on. A
// packed ring (PackedDriver) has its descriptors at kDesc, the driver's event area at kAvail
// and the device's at kUsed.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <map>
#include <utility>
#include <vector>

#include "link/guest_memory.hpp"
#include "link/virtqueue.hpp"

namespace fdlinkd::test {

/// What a vhost_user link takes from a guest into `batch`: an Ethernet frame of 14 to 1514
/// bytes, up to a slot.
inline RxLimits guest_limits(const Batch& batch) {
  RxLimits l;
  l.slot = batch.slot_capacity();
  l.wire = 1514;
  l.min_frame = 14;
  return l;
}

struct GuestRig {
  static constexpr std::uint64_t kSize = 64 * 1024, kHalf = kSize / 2;
  static constexpr std::uint64_t kUva = 0x7f0000000000;  ///< the frontend's address of gpa 0
  static constexpr std::uint64_t kDesc = 0, kAvail = 0x1000, kUsed = 0x2000, kBuffers = 0x3000;
  static constexpr std::uint32_t kMaxQueue = 256;  ///< the largest ring these addresses hold

  int fd = -1;
  std::uint8_t* view = nullptr;  ///< the driver's view of guest memory (gpa 0 on)
  GuestMemory mem;

  GuestRig() {
    fd = ::memfd_create("guest-rig", MFD_CLOEXEC);
    if (fd < 0 || ::ftruncate(fd, kSize) != 0) std::abort();
    void* v = ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (v == MAP_FAILED) std::abort();
    view = static_cast<std::uint8_t*>(v);
    if (!mem.add({0, kHalf, kUva, 0}, fd).empty() ||
        !mem.add({kHalf, kHalf, kUva + kHalf, kHalf}, fd).empty())
      std::abort();
  }
  ~GuestRig() {
    mem.clear();
    ::munmap(view, kSize);
    ::close(fd);
  }
  /// One rig for every input of a fuzz target (one memfd, never freed).
  static GuestRig& shared() {
    static GuestRig* g = new GuestRig;
    return *g;
  }
  GuestRig(const GuestRig&) = delete;
  GuestRig& operator=(const GuestRig&) = delete;

  /// Sets `q` up as a started, enabled ring of `size` at the rig's addresses, empty.
  void setup(VirtQueue& q, std::uint32_t size, bool event_idx = false, bool indirect = false,
             bool packed = false) {
    std::memset(view, 0, kBuffers);
    q.packed = packed;
    q.size = size;
    q.desc_uva = kUva + kDesc;
    q.avail_uva = kUva + kAvail;
    q.used_uva = kUva + kUsed;
    q.addr_set = true;
    q.mem = &mem;
    q.event_idx = event_idx;
    q.indirect = indirect;
    q.started = q.enabled = true;
    q.broken = false;
    if (!q.map()) std::abort();
    q.set_base(packed ? 0x8000 : 0);  // (packed: position 0, wrap counter 1)
    q.update_live();
    size_ = size;
  }
  /// Copies a fuzz input into guest memory, part by part: each {guest address, length} takes
  /// the next bytes of the input (while it lasts).
  void load(const std::uint8_t* p, std::size_t n,
            std::initializer_list<std::pair<std::uint64_t, std::size_t>> parts) {
    for (const auto& [at, len] : parts) {
      const std::size_t k = n < len ? n : len;
      std::memcpy(view + at, p, k);
      p += k;
      n -= k;
    }
  }
  /// Writes descriptor `i` of the table at guest address `table`.
  void desc(std::uint32_t i, std::uint64_t addr, std::uint32_t len, std::uint16_t flags = 0,
            std::uint16_t next = 0, std::uint64_t table = kDesc) {
    const VringDesc d{addr, len, flags, next};
    std::memcpy(view + table + 16 * std::uint64_t{i}, &d, sizeof d);
  }
  /// Offers chain `head` in the available ring (as a driver: the entry, then the index).
  void offer(std::uint16_t head) {
    const std::uint16_t idx = avail_idx();
    std::memcpy(view + kAvail + 4 + 2 * std::uint64_t{idx % size_}, &head, 2);
    set_avail_idx(static_cast<std::uint16_t>(idx + 1));
  }
  std::uint16_t avail_idx() const { return u16(kAvail + 2); }
  void set_avail_idx(std::uint16_t v) { std::memcpy(view + kAvail + 2, &v, 2); }
  /// The driver's wish for interrupts (EVENT_IDX): after this used index.
  void set_used_event(std::uint16_t v) { std::memcpy(view + kAvail + 4 + 2 * size_, &v, 2); }
  std::uint16_t used_idx() const { return u16(kUsed + 2); }
  std::uint16_t used_flags() const { return u16(kUsed); }
  /// Used entry `i`: the head returned and the bytes written into it.
  std::uint32_t used_id(std::uint16_t i) const { return u32(kUsed + 4 + 8 * (i % size_)); }
  std::uint32_t used_len(std::uint16_t i) const { return u32(kUsed + 8 + 8 * (i % size_)); }

 private:
  std::uint16_t u16(std::uint64_t at) const {
    std::uint16_t v;
    std::memcpy(&v, view + at, 2);
    return v;
  }
  std::uint32_t u32(std::uint64_t at) const {
    std::uint32_t v;
    std::memcpy(&v, view + at, 4);
    return v;
  }
  std::uint32_t size_ = 1;
};

/// The driver's side of a packed ring in a GuestRig (set up with packed = true).
struct PackedDriver {
  PackedDriver(GuestRig& rig, std::uint32_t ring_size) : g(rig), size(ring_size) {}
  GuestRig& g;
  std::uint32_t size;
  std::uint16_t next = 0, used_at = 0;  ///< where the driver offers next, and reads used next
  bool wrap = true, used_wrap = true;
  std::map<std::uint16_t, std::uint16_t> descs;  ///< descriptors of each id in flight

  /// Offers the buffers as one chain with buffer id `id` (each device-writable if `writable`):
  /// the descriptors after the first, then the first's flags, as a driver makes a chain
  /// available at once. `extra`: flags added to every descriptor (INDIRECT, or a stray NEXT).
  void offer(const std::vector<std::pair<std::uint64_t, std::uint32_t>>& bufs, std::uint16_t id,
             bool writable = false, std::uint16_t extra = 0) {
    const std::uint16_t first = next;
    std::uint16_t first_flags = 0;
    for (std::size_t i = 0; i < bufs.size(); ++i) {
      std::uint16_t f = extra | (writable ? virtio::kDescWrite : 0) |
                        (wrap ? virtio::kDescAvail : virtio::kDescUsed);
      if (i + 1 < bufs.size()) f |= virtio::kDescNext;
      write(next, {bufs[i].first, bufs[i].second, id, i == 0 ? std::uint16_t{0} : f});
      if (i == 0) first_flags = f;
      if (++next == size) next = 0, wrap = !wrap;
    }
    std::memcpy(g.view + GuestRig::kDesc + 16 * std::uint64_t{first} + 14, &first_flags, 2);
    descs[id] = static_cast<std::uint16_t>(bufs.size());
  }
  /// The next used descriptor, if the device wrote one: its id and length (and moves on past
  /// the chain it returns).
  bool used(std::uint16_t& id, std::uint32_t& len) {
    PackedDesc d;
    std::memcpy(&d, g.view + GuestRig::kDesc + 16 * std::uint64_t{used_at}, 16);
    const bool avail = d.flags & virtio::kDescAvail, usedf = d.flags & virtio::kDescUsed;
    if (avail != used_wrap || usedf != used_wrap) return false;
    id = d.id;
    len = d.len;
    const std::uint16_t n = descs.count(id) ? descs[id] : 1;
    descs.erase(id);
    used_at = static_cast<std::uint16_t>(used_at + n);
    if (used_at >= size)
      used_at = static_cast<std::uint16_t>(used_at - size), used_wrap = !used_wrap;
    return true;
  }
  /// The driver's event area: `flags` (enable 0, disable 1, desc 2) and the position and wrap
  /// counter of its wish.
  void want(std::uint16_t flags, std::uint16_t off = 0, bool off_wrap = false) {
    const std::uint16_t ow = off | (off_wrap ? 0x8000 : 0);
    std::memcpy(g.view + GuestRig::kAvail, &ow, 2);
    std::memcpy(g.view + GuestRig::kAvail + 2, &flags, 2);
  }
  /// The device's event area's flags.
  std::uint16_t device_flags() const {
    std::uint16_t v;
    std::memcpy(&v, g.view + GuestRig::kUsed + 2, 2);
    return v;
  }
  void write(std::uint16_t i, const PackedDesc& d) {
    std::memcpy(g.view + GuestRig::kDesc + 16 * std::uint64_t{i}, &d, 16);
  }
};

}  // namespace fdlinkd::test
