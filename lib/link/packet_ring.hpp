// packet_ring: the PACKET_MMAP rings of an af_packet link: RxRing (dispatch = "packet_mmap")
// and TxRing (tx_ring = true). Both are mapped the same way (map_ring: MAP_LOCKED first, plain
// pages when the locked-memory limit refuses).
//
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
//
// TxRing: a TPACKET_V2 transmit ring on an AF_PACKET socket (tx_ring = true).
//
// Frames are copied into free slots, marked TP_STATUS_SEND_REQUEST, and the whole burst goes
// with one sendto() "kick". The kernel marks slots free again as frames leave. A slot counts
// as free when its status, with the timestamp bits masked off, is TP_STATUS_AVAILABLE: on veth
// the kernel leaves TP_STATUS_TS_* set on sent slots, and a check without the mask never sees
// a free slot again. When the ring is full after a kick, the writer waits for room in poll()
// (at most kFullWaitMs, no spinning), then drops what still does not fit as tx_queue_full.
//
// One ring per worker thread and egress link, so no two threads ever write the same ring.
#pragma once

#include <linux/if_packet.h>

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "core/batch.hpp"
#include "core/counters.hpp"

namespace fdlinkd {

/// PACKET_MMAP rings of an af_packet link ([link.ring]).
struct RingConfig {
  // RX: TPACKET_V3, frames packed into blocks; a block goes to fdlinkd when full or when
  // block_timeout passes, so the timeout bounds the latency at low rates. version = 2:
  // TPACKET_V2, one slot of frame_size per frame, each handed over as it lands (a frame larger
  // than a slot comes through the socket's queue instead).
  //
  // At a low rate every block_timeout retires a block holding a few frames, so the ring holds
  // block_count timeouts of traffic while a worker is away, whatever its size in bytes: 16
  // blocks lost frames at 20 kpps when a worker stalled for 25-30 ms (a busy host), where a
  // socket's 4 MiB queue (readv, recvmmsg) took 200 ms. 64 blocks of 128 KiB (8 MiB per fd)
  // took 100 ms; a block still holds a 64 KiB GSO super-frame.
  unsigned version = 3;
  std::uint32_t block_size = 128 * 1024;
  std::uint32_t block_count = 64;
  std::uint32_t frame_size = 2048;
  std::chrono::milliseconds block_timeout{1};
  // TX: TPACKET_V2, fixed slots of the smallest power of two that holds a frame.
  // A slot is free again only when the receiver has freed the frame, so a slow receiver holds
  // slots: 512 dropped 3% of a TCP stream's frames in bench/, 4096 none (8 MiB per worker).
  std::uint32_t tx_frame_count = 4096;
};

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

class TxRing {
 public:
  static constexpr int kFullWaitMs = 1;

  /// Sets PACKET_VNET_HDR, PACKET_VERSION = TPACKET_V2 and PACKET_TX_RING on `fd` (before bind)
  /// with `frame_count` slots that each hold a frame of `max_frame` bytes, and maps it. Throws
  /// std::runtime_error.
  TxRing(int fd, std::size_t max_frame, std::size_t frame_count);
  ~TxRing();
  TxRing(const TxRing&) = delete;
  TxRing& operator=(const TxRing&) = delete;

  /// The interface's MTU. With a virtio header the kernel does not check a ring frame's
  /// length against it (it would pass a frame the peer then drops unseen), so the ring does:
  /// a longer frame (Ethernet header and one VLAN tag aside) is too_big, as sendmmsg's EMSGSIZE.
  void set_interface_mtu(std::size_t mtu) { max_untagged_ = mtu + 14; }

  /// Queues every frame of `batch`, each with the virtio-net header stored before it, and kicks
  /// once.
  void send(Batch& batch, CounterValues& tally);

 private:
  std::uint8_t* slot(std::size_t i) const { return base_ + i * slot_size_; }
  bool slot_free(std::size_t i) const;
  /// Kicks what is queued, then waits in poll() up to kFullWaitMs for the slot at head_ to
  /// free up; false when it stays full.
  bool make_room(bool& queued);
  void kick();

  int fd_;
  std::uint8_t* base_ = nullptr;
  std::size_t map_size_ = 0;
  std::size_t slot_size_;
  std::size_t slot_count_;
  std::size_t head_ = 0;
  std::size_t data_offset_;
  std::size_t max_untagged_ = ~std::size_t{0} / 2;  ///< the interface MTU + 14
  static constexpr std::size_t vnet_size_ = 10;     ///< the virtio header before each frame
};

}  // namespace fdlinkd
