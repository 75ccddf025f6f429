// StreamFramer: cuts the bytes of a stream socket into frames, in place. The framing is the one
// QEMU's `-netdev stream`, passt/pasta and libkrun speak: each Ethernet frame preceded by its
// length as a 32-bit big-endian integer.
//
// Bytes are read into one buffer; next() hands out each complete frame where it lies (no copy),
// so a batch can hold frames of the buffer until the graph has sent them. compact() then moves
// the bytes of a frame not yet complete (a frame split across reads) to the front. The buffer
// holds at least two of the largest frames, so a complete frame always fits after compact().
// A length of 0 or above `max_frame` is a protocol error: the stream cannot be resynchronised.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace fdlinkd {

class StreamFramer {
 public:
  /// Bytes kept before the data: a frame at the front still has 4 bytes (its length) and more
  /// before it, which a stage may use as headroom (a VLAN tag).
  static constexpr std::size_t kHeadroom = 64;

  explicit StreamFramer(std::size_t max_frame, std::size_t min_buffer = 256 * 1024);

  /// Forgets everything buffered (a new connection).
  void reset() { start_ = end_ = kHeadroom; }
  /// Where the next read goes, and how many bytes fit there.
  std::uint8_t* space() { return buf_.get() + end_; }
  std::size_t space_left() const { return capacity_ - end_; }
  /// `n` bytes were read into space().
  void commit(std::size_t n) { end_ += n; }

  enum class Next { frame, need_more, bad_length };
  /// The next complete frame (data, len); bad_length with the length read in `len`.
  Next next(std::uint8_t*& data, std::size_t& len);
  /// Moves the bytes of an incomplete frame to the front. Only when no frame handed out by
  /// next() is in use any more.
  void compact();
  /// Bytes of a frame not yet complete (a peer that hangs up now left one half sent).
  std::size_t buffered() const { return end_ - start_; }

 private:
  std::size_t max_frame_;
  std::size_t capacity_;
  std::unique_ptr<std::uint8_t[]> buf_;
  std::size_t start_ = kHeadroom;  ///< the first byte not handed out
  std::size_t end_ = kHeadroom;    ///< one past the last byte read
};

}  // namespace fdlinkd
