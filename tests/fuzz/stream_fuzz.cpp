// libFuzzer target: the stream framing of QEMU's -netdev stream and passt (StreamFramer), as a
// dispatcher drives it: bytes arrive in reads of sizes the input picks, frames are taken out
// after each read, and what is incomplete is moved to the front once they are done with.
// Input: byte 0 picks the largest frame (small, so lengths past it are common), byte 1 the read
// size; the rest is the stream. Checked against a plain reference parse of the same bytes:
//   - the frames come out the same, in the same order, whatever the read size;
//   - a length of 0 or past the largest frame is reported as such, and nothing after it;
//   - what is left buffered at the end is exactly the incomplete tail.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "check.hpp"
#include "link/stream_framer.hpp"

using namespace fdlinkd;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t max_frame = 14 + data[0] * 8u;  // 14 .. 2054
  const std::size_t step = 1 + data[1] % 64;
  const std::uint8_t* s = data + 2;
  const std::size_t n = size - 2;

  // Reference: walk the lengths directly.
  struct Ref {
    std::size_t at, len;
  };
  std::vector<Ref> want;
  bool want_bad = false;
  std::size_t pos = 0;
  while (n - pos >= 4) {
    const std::uint32_t len = std::uint32_t{s[pos]} << 24 | std::uint32_t{s[pos + 1]} << 16 |
                              std::uint32_t{s[pos + 2]} << 8 | s[pos + 3];
    if (len == 0 || len > max_frame) {
      want_bad = true;
      break;
    }
    if (n - pos - 4 < len) break;
    want.push_back({pos + 4, len});
    pos += 4 + len;
  }

  StreamFramer fr(max_frame, 64);  // the smallest buffer: two frames, so compact() matters
  std::size_t got = 0, at = 0;
  bool bad = false;
  while (!bad) {
    std::uint8_t* frame = nullptr;
    std::size_t len = 0;
    StreamFramer::Next next;
    while ((next = fr.next(frame, len)) == StreamFramer::Next::frame) {
      FUZZ_CHECK(got < want.size());
      FUZZ_CHECK(len == want[got].len);
      FUZZ_CHECK(std::memcmp(frame, s + want[got].at, len) == 0);
      ++got;
    }
    if (next == StreamFramer::Next::bad_length) {
      bad = true;
      break;
    }
    if (at == n) break;
    fr.compact();  // (the frames above are done with, as after a batch)
    FUZZ_CHECK(fr.space_left() > 0);
    const std::size_t k = std::min({step, n - at, fr.space_left()});
    std::memcpy(fr.space(), s + at, k);
    fr.commit(k);
    at += k;
  }
  FUZZ_CHECK(got == want.size());
  FUZZ_CHECK(bad == want_bad);
  if (!bad) FUZZ_CHECK(fr.buffered() == n - pos);
  return 0;
}
