// RxRing: a receive ring on an AF_PACKET socket (dispatch = "packet_mmap").
//
// TPACKET_V3 (ring.version = 3, the default): the kernel writes frames of any size back to back
// into blocks and hands a block over when it is full or when block_timeout expires (1 ms at
// least: the kernel counts in ms). Under load that is one wake-up per block; at low load a lone
// frame waits up to the timeout.
//
// TPACKET_V2 (ring.version = 2): one slot of frame_size per frame, each handed over (and the
// socket woken) as it lands, so a lone frame is read within microseconds, as with readv; under
// load the dispatcher still takes every ready slot in one pass. A frame larger than a slot (a
// GSO super-frame) is queued whole on the socket as well (PACKET_COPY_THRESH), and its slot says
// so (TP_STATUS_COPY): the dispatcher reads it from there with recvmsg, in its place.
//
// fdlinkd reads the frames where they lie (no copy, no system call while frames are ready) and
// gives blocks (V3) or slots (V2) back once the batches that point into them have been sent.
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
  /// Sets PACKET_VERSION (config.version) and PACKET_RX_RING on `fd` and maps the ring. Throws
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
    bool copied = false;      ///< V2: too big for its slot; read it whole from the socket
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

  bool next_v2(Frame& out);
  tpacket2_hdr* slot(std::size_t i) const {
    return reinterpret_cast<tpacket2_hdr*>(base_ + (i / slots_per_block_) * block_size_ +
                                           (i % slots_per_block_) * frame_size_);
  }

  unsigned version_;
  std::uint8_t* base_ = nullptr;
  std::size_t map_size_ = 0;
  // V2: slots, the next one to read, and how many read since the last release().
  std::size_t frame_size_ = 0, slots_per_block_ = 1, slot_count_ = 0;
  std::size_t next_slot_ = 0, taken_ = 0;
  std::size_t block_size_;
  std::size_t block_count_;
  std::size_t current_ = 0;        ///< block being read
  std::size_t done_ = 0;           ///< finished blocks not yet released (they precede current_)
  std::uint32_t remaining_ = 0;    ///< frames left in the current block
  tpacket3_hdr* frame_ = nullptr;  ///< next frame in the current block
};

}  // namespace fdlinkd
