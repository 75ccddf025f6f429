#include "link/guest_memory.hpp"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "core/errno_text.hpp"

namespace fdlinkd {

namespace {

bool overlaps(std::uint64_t a, std::uint64_t alen, std::uint64_t b, std::uint64_t blen) {
  return a < b + blen && b < a + alen;  // (no sum overflows: add() checked each range)
}

}  // namespace

std::string GuestMemory::add(const GuestRegionDesc& d, int fd) {
  if (count_ == kMaxRegions) return "more than " + std::to_string(kMaxRegions) + " memory regions";
  const std::uint64_t top = UINT64_MAX;
  if (d.size == 0) return "a memory region of size 0";
  if (d.gpa > top - d.size || d.uva > top - d.size || d.mmap_offset > top - d.size)
    return "a memory region whose end overflows";
  for (std::size_t i = 0; i < count_; ++i) {
    const GuestRegionDesc& o = regions_[i].desc;
    if (overlaps(d.gpa, d.size, o.gpa, o.size) || overlaps(d.uva, d.size, o.uva, o.size))
      return "a memory region overlaps another";
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) return "memory fd: " + errno_text(errno);
  // A regular file (a memfd, a hugetlbfs file) must hold the whole region: a page past its end
  // would fault on the first touch. (Devices and the like cannot be checked; the fault guard
  // covers them.)
  if (S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) < d.mmap_offset + d.size)
    return "a memory region reaches past the end of its file (" + std::to_string(st.st_size) +
           " bytes)";
  // Map from a boundary the file allows (a huge page on hugetlbfs, whose st_blksize says so).
  const std::uint64_t page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  std::uint64_t align = st.st_blksize > 0 ? static_cast<std::uint64_t>(st.st_blksize) : page;
  if (align < page || (align & (align - 1)) != 0) align = page;
  const std::uint64_t start = d.mmap_offset & ~(align - 1);
  const std::uint64_t len = d.mmap_offset + d.size - start;
  if (len > SIZE_MAX) return "a memory region too large to map";
  void* m = ::mmap(nullptr, static_cast<std::size_t>(len), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_NORESERVE, fd, static_cast<off_t>(start));
  if (m == MAP_FAILED) return "cannot map a memory region: " + errno_text(errno);
  Region& r = regions_[count_++];
  r.desc = d;
  r.map = m;
  r.map_len = static_cast<std::size_t>(len);
  r.host = static_cast<std::uint8_t*>(m) + (d.mmap_offset - start);
  return "";
}

bool GuestMemory::remove(const GuestRegionDesc& d) {
  for (std::size_t i = 0; i < count_; ++i) {
    const GuestRegionDesc& o = regions_[i].desc;
    if (o.gpa != d.gpa || o.size != d.size || o.uva != d.uva) continue;
    removed_[removed_count_++] = regions_[i];
    regions_[i] = regions_[--count_];
    regions_[count_] = Region{};
    return true;
  }
  return false;
}

void GuestMemory::unmap_removed() {
  for (std::size_t i = 0; i < removed_count_; ++i) {
    ::munmap(removed_[i].map, removed_[i].map_len);
    removed_[i] = Region{};
  }
  removed_count_ = 0;
}

void GuestMemory::clear() {
  for (std::size_t i = 0; i < count_; ++i) {
    ::munmap(regions_[i].map, regions_[i].map_len);
    regions_[i] = Region{};
  }
  count_ = 0;
  unmap_removed();
}

std::uint8_t* GuestMemory::uva_to_host(std::uint64_t uva, std::uint64_t len) const {
  for (std::size_t i = 0; i < count_; ++i) {
    const Region& r = regions_[i];
    const std::uint64_t off = uva - r.desc.uva;
    if (off < r.desc.size && len <= r.desc.size - off) return r.host + off;
  }
  return nullptr;
}

// --- the fault guard -------------------------------------------------------------------------

namespace {

thread_local GuestAccess t_access;

void on_sigbus(int sig, siginfo_t*, void*) {
  if (t_access.armed) {
    t_access.armed = 0;
    siglongjmp(t_access.env, 1);
  }
  // Not a guest access: what SIGBUS would have done without fdlinkd's handler (the faulting
  // instruction runs again and the default action ends the process with a core).
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(sig, &dfl, nullptr);
}

}  // namespace

GuestAccess& guest_access() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = on_sigbus;
    // SA_NODEFER: SIGBUS stays unblocked after the jump (sigsetjmp(env, 0) saves no mask,
    // which keeps each access free of system calls).
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGBUS, &sa, nullptr);
  });
  return t_access;
}

}  // namespace fdlinkd
