// GuestMemory: a vhost-user frontend's memory (a VM's RAM, a DPDK application's hugepages),
// mapped into fdlinkd, and the only way the vhost_user link reaches it.
//
// The frontend describes each region by its guest-physical address, size, its own (frontend
// user) address and an fd with an offset; fdlinkd maps the fd shared. Every address the
// frontend hands over later (ring addresses as user addresses, descriptor buffers as guest
// addresses) is translated here, with its length: an address range that is not wholly inside
// one region gives nullptr, and the caller treats that as the frontend's fault. Nothing here
// trusts the frontend: sizes are checked for overflow, regions may not overlap, and a region
// must lie within its file.
//
// A file can still shrink under a mapping (a frontend that truncates its memfd): touching the
// lost pages raises SIGBUS. Code that reads or writes guest memory runs inside a guest access
// (GuestAccess below): the fault unwinds to it instead of ending the daemon, and the link that
// met it resets its frontend.
#pragma once

#include <csetjmp>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <string>

namespace fdlinkd {

/// One region as the frontend describes it (VhostUserMemoryRegion).
struct GuestRegionDesc {
  std::uint64_t gpa = 0;          ///< guest-physical address
  std::uint64_t size = 0;         ///< bytes
  std::uint64_t uva = 0;          ///< the frontend's own address for it
  std::uint64_t mmap_offset = 0;  ///< where it starts in the fd
};

class GuestMemory {
 public:
  /// Regions fdlinkd takes (GET_MAX_MEM_SLOTS): QEMU's own limit for vhost-user is 509 with
  /// CONFIGURE_MEM_SLOTS; 64 covers memory hot-plug of many DIMMs and keeps lookups short.
  static constexpr std::size_t kMaxRegions = 64;

  GuestMemory() = default;
  ~GuestMemory() { clear(); }
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;

  /// Maps region `d` from `fd` (the caller keeps and closes the fd). "" on success, else why
  /// not: too many regions, a size of 0 or one that overflows, an overlap with a region
  /// already there, a range beyond the end of the file, or mmap's error.
  std::string add(const GuestRegionDesc& d, int fd);
  /// Removes the region with this guest address, size and user address (REM_MEM_REG); the
  /// mapping is kept until unmap_removed(). False: there is none.
  bool remove(const GuestRegionDesc& d);
  /// Unmaps what remove() took out (once no ring points into it any more).
  void unmap_removed();
  /// Unmaps everything.
  void clear();
  std::size_t size() const { return count_; }
  const GuestRegionDesc& region(std::size_t i) const { return regions_[i].desc; }

  /// Host address of guest-physical [gpa, gpa + len), when that lies wholly in one region.
  std::uint8_t* gpa_to_host(std::uint64_t gpa, std::uint64_t len) const {
    for (std::size_t i = 0; i < count_; ++i) {
      const Region& r = regions_[i];
      const std::uint64_t off = gpa - r.desc.gpa;  // (wraps when gpa < r.gpa: then >= size)
      if (off < r.desc.size && len <= r.desc.size - off) return r.host + off;
    }
    return nullptr;
  }
  /// Host address of guest-physical `gpa` and how many bytes follow it in its region (a
  /// buffer may span two adjacent regions); nullptr when no region holds it.
  std::uint8_t* gpa_span(std::uint64_t gpa, std::uint64_t& avail) const {
    for (std::size_t i = 0; i < count_; ++i) {
      const Region& r = regions_[i];
      const std::uint64_t off = gpa - r.desc.gpa;
      if (off < r.desc.size) {
        avail = r.desc.size - off;
        return r.host + off;
      }
    }
    return nullptr;
  }
  /// Host address of frontend user address range [uva, uva + len) (ring addresses).
  std::uint8_t* uva_to_host(std::uint64_t uva, std::uint64_t len) const;

 private:
  struct Region {
    GuestRegionDesc desc;
    std::uint8_t* host = nullptr;  ///< where desc.gpa is mapped
    void* map = nullptr;           ///< the mapping (from a page boundary of the fd)
    std::size_t map_len = 0;
  };
  Region regions_[kMaxRegions];
  std::size_t count_ = 0;
  Region removed_[kMaxRegions];
  std::size_t removed_count_ = 0;
};

/// A thread's guest access: while `armed`, a SIGBUS (a page of a mapped file that is no longer
/// there) jumps back to `env` instead of ending the process. Use as
///   GuestAccess& g = guest_access();
///   if (sigsetjmp(g.env, 0) == 0) { g.armed = 1; ...touch guest memory...; g.armed = 0; }
///   else { ...the frontend's memory faulted: reset it... }
/// with nothing that has a destructor created between the sigsetjmp and the end of the access
/// (locks are taken before it), and every variable that is changed inside it and read after
/// a fault kept in memory, not in a local.
struct GuestAccess {
  sigjmp_buf env;
  volatile std::sig_atomic_t armed = 0;
};
/// This thread's guest access (installs the SIGBUS handler on first use).
GuestAccess& guest_access();

/// Runs f() as a guest access: false when the frontend's memory faulted under it (f did not
/// finish). f creates nothing with a destructor that a fault would skip, and guarded() is never
/// nested.
template <class F>
bool guarded(F&& f) {
  GuestAccess& g = guest_access();
  if (sigsetjmp(g.env, 0) != 0) return false;
  g.armed = 1;
  f();
  g.armed = 0;
  return true;
}

}  // namespace fdlinkd
