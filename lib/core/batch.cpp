#include "core/batch.hpp"

#include <cstring>

namespace fdlinkd {

Batch::Batch(std::size_t capacity, std::size_t slot_capacity, std::size_t worker)
    : capacity_(capacity),
      slot_capacity_(slot_capacity),
      worker_(worker),
      storage_(slot_capacity ? new std::uint8_t[capacity * (kHeadroom + slot_capacity)] : nullptr),
      frames_(new Frame[capacity]),
      iov_(new iovec[2 * capacity]),
      msgs_(new mmsghdr[capacity]),
      out_port_(new std::uint8_t[capacity]()),
      tx_hdr_(new VirtioNetHdr[capacity]) {
  std::memset(msgs_.get(), 0, capacity * sizeof(mmsghdr));
}

}  // namespace fdlinkd
