// GuestRig: a vhost-user frontend's side of the shared memory, for tests of the device side
// (unit tests and fuzz targets). The guest's memory is a memfd of kSize bytes that fdlinkd's
// GuestMemory maps as two adjacent regions (so a buffer may span both), and that the rig maps
// once more as the driver's view. Rings lie at fixed guest addresses: the descriptor table at
// kDesc, the available ring at kAvail, the used ring at kUsed; buffers from kBuffers on.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "link/guest_memory.hpp"
#include "link/virtqueue.hpp"

namespace fdlinkd::test {

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
  GuestRig(const GuestRig&) = delete;
  GuestRig& operator=(const GuestRig&) = delete;

  /// Sets `q` up as a started, enabled ring of `size` at the rig's addresses, empty.
  void setup(VirtQueue& q, std::uint32_t size, bool event_idx = false, bool indirect = false) {
    std::memset(view, 0, kBuffers);
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
    q.set_base(0);
    q.update_live();
    size_ = size;
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

}  // namespace fdlinkd::test
