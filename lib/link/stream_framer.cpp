#include "link/stream_framer.hpp"

#include <algorithm>
#include <cstring>

namespace fdlinkd {

StreamFramer::StreamFramer(std::size_t max_frame, std::size_t min_buffer)
    : max_frame_(max_frame),
      capacity_(kHeadroom + std::max(min_buffer, 2 * (max_frame + 4))),
      buf_(new std::uint8_t[capacity_]) {}

StreamFramer::Next StreamFramer::next(std::uint8_t*& data, std::size_t& len) {
  if (end_ - start_ < 4) return Next::need_more;
  const std::uint8_t* p = buf_.get() + start_;
  const std::uint32_t n =
      std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
  if (n == 0 || n > max_frame_) {
    len = n;
    return Next::bad_length;
  }
  if (end_ - start_ < 4 + std::size_t{n}) return Next::need_more;
  data = buf_.get() + start_ + 4;
  len = n;
  start_ += 4 + std::size_t{n};
  return Next::frame;
}

void StreamFramer::compact() {
  if (start_ == kHeadroom) return;
  const std::size_t rest = end_ - start_;
  if (rest) std::memmove(buf_.get() + kHeadroom, buf_.get() + start_, rest);
  start_ = kHeadroom;
  end_ = kHeadroom + rest;
}

}  // namespace fdlinkd
