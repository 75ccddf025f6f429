// libFuzzer target: the descriptor walker, as a hostile driver drives it. The input is the
// guest's memory (GuestRig: 64 KiB in two regions, rings at fixed addresses): descriptor
// table, available ring and buffers are whatever the fuzzer writes. Byte 0 picks the ring size
// and the features, byte 1 a frame length for the receive direction; then 4096 bytes of
// descriptor table (gpa 0), 1024 of available ring (gpa 0x1000), and the rest from gpa 0x3000
// on (the buffers), so that an input of a few KiB reaches every part. Checked against a plain
// reference walk of the same memory:
//   - each chain taken from the send ring is one the reference finds whole, and its bytes are
//     counted as the reference counts them; a fault stops at a chain the reference refuses too;
//   - a frame put into the receive ring takes one chain (or, mergeable, as many as it needs),
//     and one that does not fit takes none;
//   - nothing is read or written outside the memory (ASan, and the walker's own checks).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>

#include "check.hpp"
#include "guest_rig.hpp"

using namespace fdlinkd;
using namespace fdlinkd::test;

namespace {

// The bytes of chain `head`, or nullopt when a driver could not have meant it.
std::optional<std::uint64_t> reference(const std::uint8_t* mem, std::uint32_t size,
                                       bool indirect_ok, std::uint16_t head, bool writable) {
  std::uint64_t table = GuestRig::kDesc, table_size = size, idx = head, seen = 0, total = 0;
  bool in_indirect = false;
  for (;;) {
    if (idx >= table_size || ++seen > table_size) return std::nullopt;
    VringDesc d;
    std::memcpy(&d, mem + table + 16 * idx, sizeof d);
    if (d.flags & virtio::kDescIndirect) {
      if (!indirect_ok || in_indirect || (d.flags & virtio::kDescNext) || d.len == 0 ||
          d.len % 16 != 0 || d.len / 16 > VirtQueue::kMaxIndirect)
        return std::nullopt;
      // (a table lies in one region: [0, kHalf) or [kHalf, kSize))
      const std::uint64_t half = d.addr < GuestRig::kHalf ? GuestRig::kHalf : GuestRig::kSize;
      if (d.addr >= GuestRig::kSize || d.len > half - d.addr) return std::nullopt;
      table = d.addr;
      table_size = d.len / 16;
      idx = 0;
      seen = 0;
      in_indirect = true;
      continue;
    }
    if (((d.flags & virtio::kDescWrite) != 0) != writable) return std::nullopt;
    if (d.len != 0 && (d.addr >= GuestRig::kSize || d.len > GuestRig::kSize - d.addr))
      return std::nullopt;
    total += d.len;
    if (!(d.flags & virtio::kDescNext)) return total;
    idx = d.next;
  }
}

std::uint16_t avail_entry(const std::uint8_t* mem, std::uint32_t size, std::uint16_t i) {
  std::uint16_t v;
  std::memcpy(&v, mem + GuestRig::kAvail + 4 + 2 * (i & (size - 1)), 2);
  return v;
}

// What the device writes while it takes chains from the send ring (an indirect table or a
// buffer may lie in the used ring: the reference must see it as the walker did): the
// NO_NOTIFY flag first, then each used entry {head, 0} after its chain.
void device_writes_flags(std::uint8_t* mem, bool event_idx) {
  if (!event_idx) {
    const std::uint16_t one = 1;
    std::memcpy(mem + GuestRig::kUsed, &one, 2);
  }
}
void device_writes_used(std::uint8_t* mem, std::uint32_t size, std::uint16_t i,
                        std::uint16_t head) {
  const std::uint32_t entry[2] = {head, 0};
  std::memcpy(mem + GuestRig::kUsed + 4 + 8 * (i & (size - 1)), entry, 8);
}

// Copies the input into guest memory: table, available ring, buffers.
void load(GuestRig& g, const std::uint8_t* p, std::size_t n) {
  g.load(p, n,
         {{GuestRig::kDesc, 4096},
          {GuestRig::kAvail, 1024},
          {GuestRig::kBuffers, GuestRig::kSize - GuestRig::kBuffers}});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  GuestRig& g = GuestRig::shared();
  const std::uint32_t qsize = 1u << (data[0] % 9);  // 1 .. 256
  const bool event_idx = data[0] & 0x10, indirect = data[0] & 0x20, mergeable = data[0] & 0x40;
  const std::size_t hdr_len = data[0] & 0x80 ? 12 : 10;
  const std::size_t frame_len = std::size_t{data[1]} * 8;

  // --- send: the driver's frames into a batch ------------------------------------------------
  VirtQueue q;
  g.setup(q, qsize, event_idx, indirect);
  std::memset(g.view + GuestRig::kBuffers, 0, GuestRig::kSize - GuestRig::kBuffers);
  load(g, data + 2, size - 2);
  q.set_base(0);
  static std::uint8_t sim[GuestRig::kSize];  // the memory as the walker saw it, chain by chain
  std::memcpy(sim, g.view, GuestRig::kSize);
  device_writes_flags(sim, event_idx);
  Batch batch(32, 512);
  const RxLimits lim = guest_limits(batch);
  CounterValues tally;
  VqFault fault = VqFault::none;
  std::uint16_t avail_before;
  std::memcpy(&avail_before, g.view + GuestRig::kAvail + 2, 2);
  {
    std::lock_guard lock(q.mutex);
    take_frames(q, batch, lim, hdr_len, false, tally, fault);
  }
  const std::uint16_t taken = q.last_avail;
  FUZZ_CHECK(q.used_idx == taken);
  FUZZ_CHECK(tally.rx_packets == taken);
  FUZZ_CHECK(batch.size() <= taken);
  std::uint64_t bytes = 0;
  for (std::uint16_t i = 0; i < taken; ++i) {
    const std::uint16_t head = avail_entry(sim, qsize, i);
    const auto len = reference(sim, qsize, indirect, head, false);
    FUZZ_CHECK(len.has_value());
    bytes += *len < hdr_len ? *len : std::min<std::uint64_t>(*len - hdr_len, lim.slot);
    device_writes_used(sim, qsize, i, head);
  }
  FUZZ_CHECK(tally.rx_bytes == bytes);
  for (std::size_t i = 0; i < batch.size(); ++i)
    FUZZ_CHECK(batch[i].len <= lim.slot);
  if (fault == VqFault::bad_avail_index) {
    FUZZ_CHECK(static_cast<std::uint16_t>(avail_before - taken) > qsize || taken > 0);
  } else if (fault != VqFault::none) {
    const std::uint16_t head = avail_entry(sim, qsize, taken);
    FUZZ_CHECK(head >= qsize || !reference(sim, qsize, indirect, head, false));
  }

  // --- receive: a frame for the driver -------------------------------------------------------
  g.setup(q, qsize, event_idx, indirect);
  load(g, data + 2, size - 2);
  q.set_base(0);
  static std::uint8_t frame[2048];
  std::uint8_t hdr[12] = {};
  const std::size_t total = hdr_len + frame_len;
  std::lock_guard lock(q.mutex);
  for (int round = 0; round < 4; ++round) {
    const std::uint16_t avail0 = q.last_avail, used0 = q.used_idx;
    fault = VqFault::none;
    const PutResult r = put_frame(q, hdr, hdr_len, mergeable, frame, frame_len, fault);
    if (r == PutResult::fault) break;
    if (r != PutResult::sent) {
      FUZZ_CHECK(q.last_avail == avail0 && q.used_idx == used0);
      break;
    }
    // (what the buffers hold is not checked here: a buffer may overlap the rings, and the
    // frame's bytes then land on them, as that driver asked)
    const std::uint16_t used = static_cast<std::uint16_t>(q.used_idx - used0);
    FUZZ_CHECK(used >= 1 && (mergeable || used == 1));
    FUZZ_CHECK(static_cast<std::uint16_t>(q.last_avail - avail0) == used);
    FUZZ_CHECK(used <= total);
  }
  return 0;
}
