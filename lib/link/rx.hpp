// rx: how a link receives. Each port of a link has a receive queue (RxQueue) per dispatcher
// that reads it, made by the link: the dispatcher only waits, asks the queue for a batch, runs
// it through the graph and tells the queue when the batch has been sent. What a kind of fd
// needs to be read (a ring, a UMEM, a stream's framing, a tunnel's header) lives in its link's
// queue, in the link's own file.
//
// This file holds what several link types share: the checks every received frame passes
// (classify_rx, accept_frame: the same drop reasons in every mode), and the reader of plain
// fds (FdRxQueue): one frame per readv (any fd, TAP/TUN included), or a batch per recvmmsg
// (sockets), with PACKET_AUXDATA on af_packet sockets (the VLAN tag the kernel took out, and
// the receive time).
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>

#include "core/batch.hpp"
#include "core/counters.hpp"
#include "core/virtio_net.hpp"
#include "offload/vnet.hpp"

namespace fdlinkd {

class Link;

/// How a receive ended: the fd has nothing more now, the batch is full (read again), or the
/// fd is gone (EOF, the device or the peer went away).
enum class RxEnd { drained, full, closed };

/// One port's receive queue, read by one dispatcher on one worker.
class RxQueue {
 public:
  virtual ~RxQueue() = default;
  /// Reads from `fd` from now on: the port's fd when the dispatcher attaches, again when the
  /// link reopens it or a new peer connects. On the worker's thread, before any receive().
  virtual void attach(int fd) = 0;
  /// Fills `batch` (empty, its slots the size the link receives) with what the fd has, up to
  /// the batch's capacity, and counts what it read into `tally`: frames accepted, and frames
  /// dropped under their reason. Each frame's receive time is set.
  virtual RxEnd receive(Batch& batch, CounterValues& tally) = 0;
  /// The batch has been sent: whatever its frames pointed into goes back (ring blocks, UMEM
  /// frames, a stream's buffer).
  virtual void release() {}

  // --- a queue that several links share (vxlan links on one socket, told apart by VNI) ---
  /// Links whose frames the last receive() may hold besides the queue's own link: frame i of
  /// the batch belongs to member(member_of(i)); member 0 is the link itself. What was counted
  /// for a member other than 0 is in member_tally(m), which the dispatcher adds to that link
  /// and clears.
  virtual std::size_t member_count() const { return 1; }
  virtual Link* member(std::size_t /*m*/) { return nullptr; }
  virtual std::size_t member_of(std::size_t /*frame*/) const { return 0; }
  virtual CounterValues* member_tally(std::size_t /*m*/) { return nullptr; }
  /// Whether the last batch holds frames of members other than 0.
  virtual bool mixed() const { return false; }
  /// The links that may share the queue changed (a reload): reads them again, keeping only
  /// those `admit` says the graph knows.
  virtual void refresh_members(bool (*admit)(Link&, void*), void* arg) {
    (void)admit;
    (void)arg;
  }
};

/// What a receiving fd allows.
struct RxLimits {
  std::size_t slot = 0;       ///< a receive slot's capacity (a larger frame was cut short)
  std::size_t wire = 0;       ///< the largest frame the link's MTU allows, GSO aside
  std::size_t min_frame = 0;  ///< the link header's length (14 on Ethernet, 1 for bare IP)
  bool vnet = false;          ///< a virtio-net header sits just before the frame
};

/// Whether a frame a link read may enter the graph (nullopt), or the reason it is dropped. The
/// same checks in every receive mode, so each drop reason means the same whichever mode
/// counted it; a fuzz target drives it directly. `truncated`: the fd said the frame was longer
/// than it gave.
inline std::optional<DropReason> classify_rx(const std::uint8_t* data, std::size_t len,
                                             bool truncated, const RxLimits& lim) {
  if (truncated || len > lim.slot) return DropReason::oversize;
  if (len < lim.min_frame) return DropReason::runt;
  VirtioNetHdr h;
  if (lim.vnet) std::memcpy(&h, data - sizeof h, sizeof h);
  // Only a GSO super-frame may be larger than the link's MTU allows (the receive slots are
  // sized for super-frames where the fd can deliver them).
  if (len > lim.wire && h.gso_type == VirtioNetHdr::kGsoNone) return DropReason::oversize;
  // Only a header that claims something needs checking (most small frames carry zeros).
  if (lim.vnet && ((h.flags & VirtioNetHdr::kNeedsCsum) || h.gso_type != VirtioNetHdr::kGsoNone ||
                   h.hdr_len > len)) {
    offload::PacketInfo info;
    return offload::check_vnet(h, data, len, lim.min_frame == 14, info);
  }
  return std::nullopt;
}

/// The receive limits of `link` for a batch whose slots hold `slot` bytes.
RxLimits rx_limits(const Link& link, std::size_t slot);

/// Counts one frame read (rx_packets, rx_bytes) and pushes it into `batch` if classify_rx lets
/// it in, else counts the reason. `vnet`: a virtio-net header sits before it. True: pushed.
/// (Inline: every receive queue calls it for every frame.)
inline bool accept_frame(Batch& batch, const RxLimits& limits, std::uint8_t* data, std::size_t len,
                         bool truncated, CounterValues& tally, bool vnet) {
  ++tally.rx_packets;
  tally.rx_bytes += len;
  RxLimits lim = limits;
  lim.vnet = vnet;
  if (auto why = classify_rx(data, len, truncated, lim)) {
    ++tally.drop(*why);
    return false;
  }
  batch.push(data, static_cast<std::uint32_t>(len), vnet);
  return true;
}

/// Sets the receive time of frames `from`.. of `batch` to now (fds that report none: TAP/TUN,
/// unix sockets; the frames were read within microseconds of each other).
void stamp_now(Batch& batch, std::size_t from = 0);

/// A failed read: EAGAIN is "drained"; anything else is counted (rx_errors) and logged once
/// per errno in a row (`last_error`), and ends the fd (closed) when the device or connection
/// is gone for good.
RxEnd rx_error(int err, CounterValues& tally, const Link& link, std::size_t port, int& last_error);

/// A wake-up that found nothing in a ring (PACKET_MMAP, AF_XDP): a ring is never read with a
/// system call, so nothing else collects an error the kernel sets on the socket (ENETDOWN when
/// the interface goes down or is deleted). Left pending, it keeps the fd reporting EPOLLERR
/// and the worker would spin on it: collects it (SO_ERROR) and handles it as rx_error().
RxEnd pending_error(int fd, CounterValues& tally, const Link& link, std::size_t port,
                    int& last_error);

/// A plain fd: readv (one frame per call; a TAP/TUN character device, or a socket with
/// recvmsg) or recvmmsg (a batch per call, sockets), as the link's `dispatch` says. With
/// `auxdata` (af_packet without a ring) each frame's PACKET_AUXDATA puts back the VLAN tag the
/// kernel took out, and SCM_TIMESTAMPNS gives its receive time.
class FdRxQueue : public RxQueue {
 public:
  /// Catches the bytes of a frame larger than a slot, so it is seen whole and dropped.
  static constexpr std::size_t kOverflowBytes = 64 * 1024;

  FdRxQueue(Link& link, std::size_t port, Batch& batch, bool auxdata);
  void attach(int fd) override { fd_ = fd; }
  RxEnd receive(Batch& batch, CounterValues& tally) override;

 protected:
  RxEnd read_readv(Batch& batch, CounterValues& tally);
  RxEnd read_recvmmsg(Batch& batch, CounterValues& tally);
  /// af_packet: the VLAN tag PACKET_AUXDATA in control buffer `i` reports, put back into the
  /// frame at `data` (which then starts 4 bytes earlier, as returned), and the receive time
  /// SCM_TIMESTAMPNS reports into rx_ns.
  std::uint8_t* read_aux(std::size_t i, std::uint8_t* data, std::size_t& len,
                         std::size_t msg_controllen, std::int64_t& rx_ns) const;

  Link& link_;
  std::size_t port_;
  int fd_ = -1;
  RxLimits limits_;
  bool vnet_;
  bool socket_;
  bool recvmmsg_;
  std::unique_ptr<std::uint8_t[]> overflow_;
  std::unique_ptr<std::uint8_t[]> aux_;  ///< one control buffer per batch slot
  int last_error_ = 0;
};

}  // namespace fdlinkd
