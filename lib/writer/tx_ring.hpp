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

#include <cstddef>
#include <cstdint>

#include "core/batch.hpp"
#include "core/counters.hpp"

namespace fdlinkd {

class TxRing {
 public:
  static constexpr int kFullWaitMs = 1;

  /// Sets PACKET_VNET_HDR, PACKET_VERSION = TPACKET_V2 and PACKET_TX_RING on `fd` (before bind)
  /// with `frame_count` slots that each hold a frame of `frame_capacity` bytes, and maps it. Throws
  /// std::runtime_error.
  TxRing(int fd, std::size_t frame_capacity, std::size_t frame_count);
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
