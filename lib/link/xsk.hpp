// XskSocket: the AF_XDP sockets of an af_xdp link on one receive queue, with their UMEM (the
// frame memory the kernel and fdlinkd share) and its four rings.
//
// Two sockets share the queue and the UMEM: one receives (RX ring; the dispatcher waits on it
// in epoll) and one transmits (TX ring; never waited on). Copy-mode transmit frees an skb per
// frame, and each free wakes whatever waits on the sending socket: on a socket in epoll that
// is a locked wake-up walk per frame, 8% of a forwarder's CPU on this VM (docs/benchmarks.md).
// The transmit socket has no waiter, so the frees wake nothing.
//
// The UMEM is kFrameCount frames of kFrameSize bytes: the first kFillSize belong to receive
// (they go round fill ring -> RX ring -> a batch -> fill ring), the rest to transmit (free ->
// TX ring -> completion ring -> free). The fill ring holds every receive frame, twice the RX
// ring, so the kernel always has buffers while fdlinkd holds a batch.
//
// Receive (the dispatcher's thread only): next() hands out frames where they lie in the UMEM,
// with at least XDP_PACKET_HEADROOM (256 bytes) writable in front (its last 4 bytes hold
// what fdlinkd's XDP program says of the frame: may_hold_partial); release() gives the frames
// taken since the last call back to the fill ring once the batch that points into them is sent.
//
// Transmit (any worker, one at a time: a lock taken once per batch, uncontended unless
// several workers send to one queue): each frame is copied into a free transmit frame, the
// batch is submitted, and the kernel is kicked until the TX ring is empty (in copy mode one
// kick sends at most 32 frames). Completions are reaped before and after.
//
// Sockets share one memory area (XskArea) where the config plans for them (up to 4): each
// registers all of it as its UMEM and owns one slot of it. A copy-mode socket then sends a
// frame of 1 KiB or more that another socket received (af_xdp link to af_xdp link) where it
// lies, without copying it: the descriptor points into the other socket's slot. That is safe
// because in copy mode the kernel copies a frame into an skb when it takes the descriptor,
// and takes descriptors only inside send()'s kicks (nothing waits on the transmitting
// socket): once the kicks have drained the ring, the frame is no longer needed, and its own
// socket gives it back to the kernel as usual. A descriptor the kicks left (the device
// refused more) is pointed at a copy in a frame of this socket before send() returns; one
// such frame is kept free for every frame lent. A zero-copy socket's device reads frames
// after the kick, so it always copies.
//
// need_wakeup is always on: the kernel is woken only when it asks for it (the fill ring in
// zero-copy mode, every TX kick in copy mode).
#pragma once

#include <xdp/xsk.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/batch.hpp"
#include "core/counters.hpp"
#include "link/af_xdp_meta.h"

namespace fdlinkd {

/// af_xdp: whether the AF_XDP sockets bind in zero-copy mode.
enum class ZeroCopy { automatic, on, off };

/// The memory AF_XDP sockets share: one mapping of `slots` UMEMs, registered whole by each
/// socket that takes a slot. Planned once, at start, for the af_xdp sockets of the config;
/// a socket that finds no free slot (a reload added it) maps a UMEM of its own.
class XskArea {
 public:
  /// The most sockets that share: the kernel keeps per socket a descriptor for every frame of
  /// the UMEM it registered (about 128 bytes per 4 KiB frame), so that memory grows with the
  /// square of the sockets. With more, each socket has its own UMEM.
  static constexpr std::size_t kMaxSlots = 4;

  static XskArea& get();
  /// Sets the number of slots (before the first take(); later calls change nothing).
  void plan(std::size_t slots);
  /// A free slot, mapping the area on first use; -1 when none is free.
  int take();
  void give(int slot);
  std::uint8_t* base() const { return base_; }
  std::size_t size() const { return size_; }

 private:
  std::mutex lock_;
  std::size_t slots_ = 0;
  bool planned_ = false;
  std::uint8_t* base_ = nullptr;
  std::size_t size_ = 0;
  std::vector<bool> used_;
};

class XskSocket {
 public:
  static constexpr std::size_t kFrameSize = 4096;
  static constexpr std::uint32_t kRxSize = 2048, kFillSize = 2 * kRxSize;
  static constexpr std::uint32_t kTxSize = 2048, kCompSize = kTxSize;
  static constexpr std::size_t kFrameCount = kFillSize + kTxSize;
  /// The UMEM's own headroom, in front of the kernel's (XDP_PACKET_HEADROOM, 256 bytes, whose
  /// last 4 bytes hold the metadata of fdlinkd's XDP program: af_xdp_meta.h). A multiple of
  /// the cache line, so a received frame lies at the same offset in its line as in a veth's
  /// buffer and the kernel's copy into the UMEM runs aligned (with 4, putting the metadata in
  /// the frame's first line, the sender's CPU copied 1514-byte frames 20% slower); 64 puts
  /// the metadata's line and the frame's first in one 128-byte pair.
  static constexpr std::size_t kUmemHeadroom = 64;
  static constexpr std::size_t kHeadroom = kUmemHeadroom + 256;
  /// The largest frame a UMEM frame holds after the headroom.
  static constexpr std::size_t kMaxFrame = kFrameSize - kHeadroom;

  /// Binds a socket to queue `queue` of `ifname` (in the current network namespace). Throws
  /// std::runtime_error whose message says what the kernel refused and what to do.
  XskSocket(const std::string& ifname, unsigned queue, ZeroCopy zero_copy);
  ~XskSocket();
  XskSocket(const XskSocket&) = delete;
  XskSocket& operator=(const XskSocket&) = delete;

  /// The receiving socket (to wait on).
  int fd() const;
  bool zero_copy() const { return zero_copy_; }
  /// Whether its UMEM is a slot of the shared area (else a mapping of its own).
  bool shared() const { return slot_ >= 0; }
  /// Frames one TX kick may send in copy mode: the ring (Linux 6.17+), else the kernel's 32.
  unsigned kick_budget() const { return tx_budget_raised_ ? kTxSize : 32; }

  // --- Receive: the dispatcher's thread ---
  /// The next received frame, or false when the RX ring is empty.
  bool next(std::uint8_t*& data, std::uint32_t& len);
  /// Gives the frames taken since the last call back to the kernel (their batch is sent).
  void release();
  /// Whether a frame from next() may hold a checksum left unfinished: fdlinkd's XDP program
  /// marked it so, or left no mark. (Only on links whose program marks: sees_unmarked_partials.)
  static bool may_hold_partial(const std::uint8_t* data) {
    std::uint32_t meta;
    std::memcpy(&meta, data - FDLINKD_XDP_META_SIZE, sizeof meta);
    return (meta & FDLINKD_XDP_META_MAGIC_MASK) != FDLINKD_XDP_META_MAGIC ||
           (meta & FDLINKD_XDP_META_CHECK) != 0;
  }

  // --- Transmit: any worker ---
  /// Sends the frames of `batch` bound for `select` (all when < 0), counting them in `tally`.
  void send(Batch& batch, int select, CounterValues& tally);

  /// What the kernel dropped on this socket since the last call (XDP_STATISTICS): receive
  /// frames with no room (rx_queue_full) and invalid descriptors (tx_error). Stats thread.
  CounterValues kernel_drops();

 private:
  bool create(unsigned queue, const std::string& ifname, bool zero_copy, int& err);
  void destroy();
  /// Gives its slot back to the shared area, or unmaps its own.
  void drop_area();
  std::uint8_t* frame(std::uint64_t addr) const { return area_ + addr; }
  /// Frames ahead of the one next() hands out whose lines it asks the CPU for.
  static constexpr std::uint32_t kPrefetchAhead = 4;
  /// Prefetches the lines of the frame of the `i`th descriptor of the peeked window.
  void prefetch(std::uint32_t i) const;
  /// Takes finished transmit frames back (the completion ring).
  void reap();
  /// Submits what send() queued and kicks until the kernel has taken it.
  void flush(std::uint32_t queued);
  bool tx_drained() const;
  /// Whether the frame at `data` (`len` bytes) is a received frame in the shared area, within
  /// one UMEM frame: it can be sent where it is.
  bool lendable(const std::uint8_t* data, std::uint32_t len) const;
  /// Points the descriptors still in the TX ring that are not its own frames at copies.
  void settle_lent();
  bool own_tx_frame(std::uint64_t addr) const { return addr - own_tx_ < kTxSize * kFrameSize; }
  /// Whether it sends other sockets' frames where they lie (copy mode, in the shared area).
  bool lends() const { return slot_ >= 0 && !zero_copy_; }
  int tx_fd() const;

  std::uint8_t* area_ = nullptr;
  std::size_t area_size_ = 0;
  xsk_umem* umem_ = nullptr;
  xsk_socket* xsk_ = nullptr;     ///< receives
  xsk_socket* tx_xsk_ = nullptr;  ///< transmits: the same queue and UMEM (XDP_SHARED_UMEM)
  xsk_ring_prod fill_{};
  xsk_ring_cons comp_{};
  xsk_ring_cons rx_{};
  xsk_ring_prod tx_{};
  bool zero_copy_ = false;
  int slot_ = -1;                  ///< its slot of the shared area; -1: area_ is its own mapping
  std::uint64_t own_ = 0;          ///< where its frames start in area_ (receive, then transmit)
  std::uint64_t own_tx_ = 0;       ///< where its transmit frames start
  bool tx_budget_raised_ = false;  ///< XDP_MAX_TX_SKB_BUDGET took: one kick sends the ring

  // Receive: the window of the RX ring last peeked, and the frames handed out since release().
  std::uint32_t rx_index_ = 0, peeked_ = 0, taken_ = 0, unreleased_ = 0;
  std::unique_ptr<std::uint64_t[]> held_;
  std::size_t held_count_ = 0;

  // Transmit.
  std::mutex tx_lock_;
  std::unique_ptr<std::uint64_t[]> tx_free_;  ///< free transmit frames (a stack)
  std::size_t tx_free_count_ = 0;

  // Stats thread.
  std::uint64_t seen_rx_drops_ = 0, seen_tx_invalid_ = 0;
};

}  // namespace fdlinkd
