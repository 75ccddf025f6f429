// RxRing: a TPACKET_V3 receive ring on an AF_PACKET socket (dispatch = "packet_mmap").
//
// The kernel writes frames of any size back to back into blocks and hands a block over when it
// is full or when block_timeout expires (1 ms by default, so a lone ping is not held back).
// fdlinkd reads the frames where they lie (no copy, no system call while blocks are ready) and
// gives each block back once the batches that point into it have been sent.
//
// The ring must be set up before the socket is bound (PACKET_VERSION cannot change after).
#pragma once

#include <linux/if_packet.h>

#include <cstddef>
#include <cstdint>

#include "config/config.hpp"

namespace fdlinkd {

class RxRing {
 public:
  /// Sets PACKET_VERSION = TPACKET_V3 and PACKET_RX_RING on `fd` and maps the ring. Throws
  /// std::runtime_error. MAP_LOCKED is tried first, then plain pages.
  RxRing(int fd, const RingConfig& config);
  ~RxRing();
  RxRing(const RxRing&) = delete;
  RxRing& operator=(const RxRing&) = delete;

  /// One frame of the current block.
  struct Frame {
    std::uint8_t* data;
    std::uint32_t caplen;     ///< bytes in the ring
    std::uint32_t len;        ///< bytes on the wire (larger when the ring cut the frame)
    std::uint32_t status;     ///< tp_status (TP_STATUS_VLAN_VALID, ...)
    std::uint16_t vlan_tci;   ///< the VLAN tag the kernel took out, if TP_STATUS_VLAN_VALID
    std::uint16_t vlan_tpid;  ///< its TPID (0x8100 when the kernel does not say)
    std::size_t room;         ///< writable bytes in front of data (the virtio header's included)
    std::int64_t rx_ns;       ///< when the kernel received it (tp_sec, tp_nsec)
  };

  /// The next frame, or false when no block is ready. Frames stay valid until release().
  bool next(Frame& out);
  /// Gives every block whose frames were all taken back to the kernel. Call after the
  /// frames taken so far are sent.
  void release();

 private:
  tpacket_block_desc* block(std::size_t i) const {
    return reinterpret_cast<tpacket_block_desc*>(base_ + i * block_size_);
  }

  std::uint8_t* base_ = nullptr;
  std::size_t map_size_ = 0;
  std::size_t block_size_;
  std::size_t block_count_;
  std::size_t current_ = 0;        ///< block being read
  std::size_t done_ = 0;           ///< finished blocks not yet released (they precede current_)
  std::uint32_t remaining_ = 0;    ///< frames left in the current block
  tpacket3_hdr* frame_ = nullptr;  ///< next frame in the current block
};

}  // namespace fdlinkd
