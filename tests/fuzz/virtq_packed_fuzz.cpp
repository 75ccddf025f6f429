// libFuzzer target: the packed ring's descriptor walker, as a hostile driver drives it. The
// input is the guest's memory (GuestRig: 64 KiB in two regions): byte 0 picks the ring size
// (1-256), byte 1 the features, the device's starting wrap counter and the frame length for
// the receive direction, byte 2 the starting position; then 4096 bytes of descriptor ring
// (gpa 0), 4 of the driver's event area (gpa 0x1000), and the rest from gpa 0x3000 on (the
// buffers and indirect tables). Checked against a plain reference walk of the same memory:
//   - the send direction takes exactly the chains the reference finds available and whole, in
//     order, counts their bytes as the reference does, ends at the reference's position and
//     wrap counter, and faults only where the reference refuses a chain (rings that offer
//     more than VirtQueue::kShadow chains at once, on several laps: the first kShadow);
//   - a frame put into the receive ring moves the device on by whole chains (one, or as many
//     as it needs when mergeable), and one that does not fit leaves it where it was;
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

PackedDesc desc_at(const std::uint8_t* mem, std::uint64_t at) {
  PackedDesc d;
  std::memcpy(&d, mem + at, sizeof d);
  return d;
}

bool in_memory(std::uint64_t addr, std::uint64_t len) {
  return len == 0 || (addr < GuestRig::kSize && len <= GuestRig::kSize - addr);
}

struct RefChain {
  std::uint32_t descs;
  std::uint64_t bytes;
};

// Chain at `pos` as a driver may mean it (a send chain), or nullopt.
std::optional<RefChain> reference(const std::uint8_t* mem, std::uint32_t size, bool indirect_ok,
                                  std::uint32_t pos) {
  std::uint64_t total = 0;
  for (std::uint32_t n = 1;; ++n) {
    if (n > size) return std::nullopt;
    const PackedDesc d = desc_at(mem, GuestRig::kDesc + 16 * std::uint64_t{pos});
    pos = (pos + 1) % size;
    if (d.flags & virtio::kDescIndirect) {
      if (!indirect_ok || n != 1 || (d.flags & virtio::kDescNext) || d.len == 0 ||
          d.len % 16 != 0 || d.len / 16 > VirtQueue::kMaxIndirect)
        return std::nullopt;
      // (a table lies in one region: [0, kHalf) or [kHalf, kSize))
      const std::uint64_t end = d.addr < GuestRig::kHalf ? GuestRig::kHalf : GuestRig::kSize;
      if (d.addr >= GuestRig::kSize || d.len > end - d.addr) return std::nullopt;
      for (std::uint32_t k = 0; k < d.len / 16; ++k) {
        const PackedDesc e = desc_at(mem, d.addr + 16 * std::uint64_t{k});
        if ((e.flags & (virtio::kDescIndirect | virtio::kDescWrite)) != 0 ||
            !in_memory(e.addr, e.len))
          return std::nullopt;
        total += e.len;
      }
      return RefChain{1, total};
    }
    if ((d.flags & virtio::kDescWrite) != 0 || !in_memory(d.addr, d.len)) return std::nullopt;
    total += d.len;
    if (!(d.flags & virtio::kDescNext)) return RefChain{n, total};
  }
}

bool available(const std::uint8_t* mem, std::uint32_t pos, bool wrap) {
  const std::uint16_t f = desc_at(mem, GuestRig::kDesc + 16 * std::uint64_t{pos}).flags;
  return ((f & virtio::kDescAvail) != 0) == wrap && ((f & virtio::kDescUsed) != 0) != wrap;
}

void load(GuestRig& g, const std::uint8_t* p, std::size_t n) {
  g.load(p, n,
         {{GuestRig::kDesc, 4096},
          {GuestRig::kAvail, 4},
          {GuestRig::kBuffers, GuestRig::kSize - GuestRig::kBuffers}});
}

// Sets the ring up from the input: size, features, starting position and wrap counter.
void start(GuestRig& g, VirtQueue& q, const std::uint8_t* data, std::size_t size) {
  const std::uint32_t qsize = std::uint32_t{data[0]} + 1;
  g.setup(q, qsize, data[1] & 1, data[1] & 2, true);
  std::memset(g.view + GuestRig::kBuffers, 0, GuestRig::kSize - GuestRig::kBuffers);
  load(g, data + 3, size - 3);
  std::lock_guard lock(q.mutex);
  q.set_base(static_cast<std::uint16_t>((data[2] % qsize) | (data[1] & 4 ? 0x8000 : 0)));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  GuestRig& g = GuestRig::shared();
  const std::uint32_t qsize = std::uint32_t{data[0]} + 1;
  const bool indirect = data[1] & 2, mergeable = data[1] & 8;
  const std::size_t hdr_len = data[1] & 16 ? 12 : 10;
  const std::size_t frame_len = static_cast<std::size_t>(data[1] >> 5) * 200;

  // --- send: the driver's frames into a batch ------------------------------------------------
  VirtQueue q;
  start(g, q, data, size);
  static std::uint8_t sim[GuestRig::kSize];  // the memory as the walker saw it
  std::memcpy(sim, g.view, GuestRig::kSize);
  const std::uint16_t disable = virtio::kEventDisable;  // (the device's first write)
  std::memcpy(sim + GuestRig::kUsed + 2, &disable, 2);
  // (a batch the device never fills: it takes every chain available, and so does the reference;
  // frames the batch refuses, runts and oversize ones, take no slot)
  static Batch batch(1024, 512);
  batch.clear();
  const RxLimits lim = guest_limits(batch);
  CounterValues tally;
  VqFault fault = VqFault::none;
  std::uint32_t pos = q.last_avail;
  bool wrap = q.avail_wrap;
  {
    std::lock_guard lock(q.mutex);
    take_frames(q, batch, lim, hdr_len, false, tally, fault);
  }
  std::uint64_t taken = 0, bytes = 0;
  bool refused = false;
  while (taken < VirtQueue::kShadow && available(sim, pos, wrap)) {
    const auto c = reference(sim, qsize, indirect, pos);
    if (!c) {
      refused = true;
      break;
    }
    ++taken;
    bytes += c->bytes < hdr_len ? c->bytes : std::min<std::uint64_t>(c->bytes - hdr_len, lim.slot);
    pos += c->descs;
    if (pos >= qsize) pos -= qsize, wrap = !wrap;
  }
  // Past kShadow chains the device writes used descriptors while it goes on, and with them
  // the ring the reference reads (chains started again on later laps, at places that were not
  // heads before): there only the first kShadow are compared.
  if (taken == VirtQueue::kShadow) {
    FUZZ_CHECK(tally.rx_packets >= taken);
    return 0;
  }
  FUZZ_CHECK(tally.rx_packets == taken);
  FUZZ_CHECK(tally.rx_bytes == bytes);
  FUZZ_CHECK((fault != VqFault::none) == refused);
  FUZZ_CHECK(q.last_avail == pos && q.avail_wrap == wrap);
  FUZZ_CHECK(q.used_idx == pos && q.used_wrap == wrap);  // (all of them returned)
  for (std::size_t i = 0; i < batch.size(); ++i)
    FUZZ_CHECK(batch[i].len <= lim.slot);

  // --- receive: a frame for the driver -------------------------------------------------------
  start(g, q, data, size);
  static std::uint8_t frame[2048];
  std::uint8_t hdr[12] = {};
  std::lock_guard lock(q.mutex);
  for (int round = 0; round < 4; ++round) {
    const std::uint16_t avail0 = q.last_avail;
    const bool wrap0 = q.avail_wrap;
    fault = VqFault::none;
    const PutResult r = put_frame(q, hdr, hdr_len, mergeable, frame, frame_len, fault);
    if (r == PutResult::fault) break;
    if (r != PutResult::sent) {
      FUZZ_CHECK(q.last_avail == avail0 && q.avail_wrap == wrap0);
      break;
    }
    // (a buffer may overlap the ring, and the frame's bytes then land on it, as that driver
    // asked: what the ring says after this is not checked)
    FUZZ_CHECK(q.last_avail < qsize);
    FUZZ_CHECK(q.last_avail != avail0 || q.avail_wrap != wrap0);
    q.publish_used();
    FUZZ_CHECK(q.used_idx == q.last_avail && q.used_wrap == q.avail_wrap);
  }
  return 0;
}
