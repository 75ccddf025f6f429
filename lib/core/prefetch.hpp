// Cache prefetch hints for the data path.
//
// Inline asm rather than __builtin_prefetch: GCC counts a function whose only effects are
// __builtin_prefetch calls as pure, and then deletes every call to it whose (void) result is
// unused. VirtQueue::prefetch was compiled to nothing that way, in every caller, until
// objdump showed no prefetch instruction in take_frames or put_frame. An asm volatile is
// never deleted.
#pragma once

namespace fdlinkd {

/// Asks for the line holding `p` in the cache, to be read (prefetcht0). Never faults.
inline void prefetch_read(const void* p) {
  asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(p)));
}

/// Asks for the line holding `p` in the cache, owned, to be written (prefetchw: no second
/// miss to take ownership at the store; a no-op on x86-64 CPUs that predate it). Never faults.
inline void prefetch_write(const void* p) {
  asm volatile("prefetchw %0" : : "m"(*static_cast<const char*>(p)));
}

}  // namespace fdlinkd
