// Counters: every frame fdlinkd receives is either sent or dropped under a named reason.
//
// The reasons come from one list (FDLINKD_DROP_REASONS) so the same names appear in logs, in
// `stats` events and, later, in metrics and `fdlinkctl stats`. Every counter has one writer:
// each worker thread has its own copy per fd ("port") of a link and per sink, written with a
// plain relaxed load and store (no locked add, no cache line shared between workers) once per
// batch, and summed over the workers when read.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace fdlinkd {

// X(name, description)
#define FDLINKD_DROP_REASONS(X)                                                                \
  X(rx_queue_full, "the kernel dropped it: the fd's receive queue or ring was full")           \
  X(runt, "received frame shorter than the link header")                                       \
  X(oversize, "received frame larger than the receive buffer (would be truncated)")            \
  X(vnet_bad_gso, "virtio header: unknown GSO type")                                           \
  X(vnet_gso_size_zero, "virtio header: a GSO type with gso_size 0")                           \
  X(vnet_bad_hdr_len, "virtio header: hdr_len reaches past the frame")                         \
  X(vnet_bad_csum, "virtio header: the checksum field to finish lies past the frame")          \
  X(vnet_bad_headers, "virtio header says GSO but the IP/TCP headers do not match or parse")   \
  X(vxlan_bad_header, "VXLAN: flags other than the I flag alone, or reserved bits set")        \
  X(vxlan_unknown_vni, "VXLAN: a VNI that is not the link's")                                  \
  X(vxlan_inner_vlan, "VXLAN: an inner frame with a VLAN tag (inner_vlan = \"drop\")")         \
  X(too_big, "frame larger than the egress link's MTU")                                        \
  X(tx_queue_full, "egress fd would block (EAGAIN): its queue is full")                        \
  X(tx_backlog_full, "a local peer was full and more frames waited for it than tx_backlog")    \
  X(tx_nobufs, "egress fd out of buffers (ENOBUFS)")                                           \
  X(link_down, "egress interface is down or gone (ENETDOWN, ENXIO, EIO)")                      \
  X(no_peer, "no peer to send to: a unix link with none connected, a vhost_user queue not up") \
  X(no_buffer,                                                                                 \
    "no free copy slot for a frame that is changed for one output and kept for another")       \
  X(tx_error, "any other transmit error")

enum class DropReason : std::uint8_t {
#define FDLINKD_X(name, desc) name,
  FDLINKD_DROP_REASONS(FDLINKD_X)
#undef FDLINKD_X
};

inline constexpr std::size_t kDropReasonCount = 0
#define FDLINKD_X(name, desc) +1
    FDLINKD_DROP_REASONS(FDLINKD_X)
#undef FDLINKD_X
    ;

std::string_view drop_reason_name(DropReason r);
std::string_view drop_reason_help(DropReason r);

/// A plain (non-atomic) snapshot or per-batch tally of a port's counters.
struct CounterValues {
  std::uint64_t rx_packets = 0;
  std::uint64_t rx_bytes = 0;
  std::uint64_t tx_packets = 0;
  std::uint64_t tx_bytes = 0;
  std::uint64_t rx_errors = 0;  ///< read calls that failed with something other than EAGAIN
  /// Frames software segmentation added: a super-frame cut into n segments adds n - 1. So
  /// rx_packets + gso_segments = tx_packets + drops across a forward.
  std::uint64_t gso_segments = 0;
  std::array<std::uint64_t, kDropReasonCount> drops{};

  std::uint64_t& drop(DropReason r) { return drops[static_cast<std::size_t>(r)]; }
  std::uint64_t drop(DropReason r) const { return drops[static_cast<std::size_t>(r)]; }
  std::uint64_t total_drops() const;
  CounterValues& operator+=(const CounterValues& o);
};

/// Adds to a counter that only the calling thread writes (others may read it at any time).
inline void bump(std::atomic<std::uint64_t>& c, std::uint64_t v) {
  if (v != 0) c.store(c.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
}

/// Counters of one fd of a link on one worker thread: only that worker writes them; stats
/// read them from another thread. A cache line of its own, so two workers never share one.
class alignas(64) PortCounters {
 public:
  void add(const CounterValues& v);
  CounterValues snapshot() const;

 private:
  std::atomic<std::uint64_t> rx_packets_{0}, rx_bytes_{0}, tx_packets_{0}, tx_bytes_{0};
  std::atomic<std::uint64_t> rx_errors_{0}, gso_segments_{0};
  std::array<std::atomic<std::uint64_t>, kDropReasonCount> drops_{};
};

/// A sink's own named counters on one worker thread (single writer, as PortCounters).
class alignas(64) SinkCounters {
 public:
  explicit SinkCounters(std::size_t n) : n_(n), v_(new std::atomic<std::uint64_t>[n]) {
    for (std::size_t i = 0; i < n; ++i)
      v_[i].store(0, std::memory_order_relaxed);
  }
  std::size_t size() const { return n_; }
  void add(std::size_t i, std::uint64_t v) { bump(v_[i], v); }
  void set(std::size_t i, std::uint64_t v) { v_[i].store(v, std::memory_order_relaxed); }
  std::uint64_t get(std::size_t i) const { return v_[i].load(std::memory_order_relaxed); }

 private:
  std::size_t n_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> v_;
};

}  // namespace fdlinkd
