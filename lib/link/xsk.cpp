#include "link/xsk.hpp"

#include <linux/if_xdp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "core/prefetch.hpp"
#include "link/link.hpp"

#ifndef SOL_XDP
#define SOL_XDP 283
#endif
// linux/if_xdp.h of Linux 6.17 (Debian 12's headers are older).
constexpr int kXdpMaxTxSkbBudget = 9;

namespace fdlinkd {

namespace {

// Frames shorter than this are copied even where they could be lent. A frame another CPU wrote
// costs its cache misses to whoever reads it first: fdlinkd's copy, or the kernel's into the
// skb. Lending saves writing the copy, which pays off for big frames only (bench, CAP=25, 4
// rounds: 1514 B frames +10% lent, 64 B frames -4%).
constexpr std::uint32_t kLendMin = 1024;

// `size` bytes of UMEM, populated (the kernel pins them when it registers them); nullptr and
// errno when the mapping fails.
std::uint8_t* map_umem(std::size_t size) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  return p == MAP_FAILED ? nullptr : static_cast<std::uint8_t*>(p);
}

// How often send() kicks before it leaves frames in the TX ring for the next batch: in copy
// mode one kick sends at most 32 frames, so this drains a full ring (2048) with room to spare.
constexpr int kMaxKicks = 128;

}  // namespace

XskArea& XskArea::get() {
  static XskArea area;
  return area;
}

void XskArea::plan(std::size_t slots) {
  std::lock_guard lock(lock_);
  if (planned_) return;
  planned_ = true;
  slots_ = slots <= kMaxSlots ? slots : 0;
}

int XskArea::take() {
  std::lock_guard lock(lock_);
  if (slots_ == 0) return -1;
  if (!base_) {  // (mapped once, for the life of the process: sockets come and go in it)
    const std::size_t size = slots_ * XskSocket::kFrameCount * XskSocket::kFrameSize;
    base_ = map_umem(size);
    if (!base_) {
      slots_ = 0;  // each socket maps its own
      return -1;
    }
    size_ = size;
    used_.assign(slots_, false);
  }
  for (std::size_t i = 0; i < used_.size(); ++i)
    if (!used_[i]) {
      used_[i] = true;
      return static_cast<int>(i);
    }
  return -1;
}

void XskArea::give(int slot) {
  std::lock_guard lock(lock_);
  if (slot >= 0 && static_cast<std::size_t>(slot) < used_.size()) used_[slot] = false;
}

XskSocket::XskSocket(const std::string& ifname, unsigned queue, ZeroCopy zero_copy) {
  const std::size_t own_size = kFrameCount * kFrameSize;
  XskArea& shared = XskArea::get();
  slot_ = shared.take();
  if (slot_ >= 0) {
    area_ = shared.base();
    area_size_ = shared.size();
    own_ = std::uint64_t(slot_) * own_size;
  } else {
    area_size_ = own_size;
    area_ = map_umem(area_size_);
    if (!area_)
      throw std::runtime_error("cannot map " + std::to_string(area_size_ >> 20) +
                               " MiB of UMEM for AF_XDP: " + errno_text(errno));
  }
  own_tx_ = own_ + std::uint64_t{kFillSize} * kFrameSize;

  int err = 0;
  bool zc = false;  // bound in zero-copy mode
  if (zero_copy != ZeroCopy::off) {
    zc = create(queue, ifname, true, err);
    if (!zc && zero_copy == ZeroCopy::on) {
      drop_area();
      throw std::runtime_error(
          "AF_XDP zero copy on " + ifname + " queue " + std::to_string(queue) + ": " +
          errno_text(err) +
          (err == EOPNOTSUPP ? " (its driver cannot; veth never can): set zero_copy = \"auto\" "
                               "or \"off\""
                             : ""));
    }
  }
  if (!zc && !create(queue, ifname, false, err)) {
    drop_area();
    std::string what = "cannot bind an AF_XDP socket to " + ifname + " queue " +
                       std::to_string(queue) + ": " + errno_text(err, "CAP_NET_RAW");
    if (err == EINVAL)
      what += " (" + ifname + " has no queue " + std::to_string(queue) +
              ": set queues to at most its receive queues, see `ethtool -l " + ifname +
              "`; a veth takes AF_XDP on queue 0 only)";
    else if (err == EBUSY)
      what += " (another AF_XDP socket is bound to that queue)";
    else if (err == ENOBUFS || err == ENOMEM)
      what += " (its UMEM, " + std::to_string(area_size_ >> 20) +
              " MiB, is locked memory: raise the limit (`ulimit -l`, LimitMEMLOCK=; under "
              "systemd see examples/af_xdp.conf) or grant CAP_IPC_LOCK)";
    throw std::runtime_error(what);
  }
  zero_copy_ = zc;
  // Linux 6.17+: one kick may send the whole TX ring in copy mode, not 32 frames (older kernels
  // refuse the option: the kicks repeat instead).
  const int budget = kTxSize;
  tx_budget_raised_ =
      ::setsockopt(tx_fd(), SOL_XDP, kXdpMaxTxSkbBudget, &budget, sizeof budget) == 0;

  // Every receive frame starts in the fill ring.
  std::uint32_t idx = 0;
  if (xsk_ring_prod__reserve(&fill_, kFillSize, &idx) != kFillSize) {
    destroy();
    drop_area();
    throw std::runtime_error("AF_XDP fill ring on " + ifname + " has no room");
  }
  for (std::uint32_t i = 0; i < kFillSize; ++i)
    *xsk_ring_prod__fill_addr(&fill_, idx + i) = own_ + std::uint64_t{i} * kFrameSize;
  xsk_ring_prod__submit(&fill_, kFillSize);
  held_ = std::make_unique<std::uint64_t[]>(kFillSize);
  tx_free_ = std::make_unique<std::uint64_t[]>(kTxSize);
  for (std::uint32_t i = 0; i < kTxSize; ++i)
    tx_free_[tx_free_count_++] = own_tx_ + std::uint64_t{i} * kFrameSize;
}

void XskSocket::drop_area() {
  if (slot_ >= 0)
    XskArea::get().give(slot_);
  else if (area_)
    ::munmap(area_, area_size_);
  slot_ = -1;
  area_ = nullptr;
}

bool XskSocket::create(unsigned queue, const std::string& ifname, bool zero_copy, int& err) {
  xsk_umem_config uc{};
  uc.fill_size = kFillSize;
  uc.comp_size = kCompSize;
  uc.frame_size = kFrameSize;
  uc.frame_headroom = kUmemHeadroom;
  err = -xsk_umem__create(&umem_, area_, area_size_, &fill_, &comp_, &uc);
  if (err != 0) {
    umem_ = nullptr;
    return false;
  }
  xsk_socket_config sc{};
  sc.rx_size = kRxSize;
  sc.tx_size = kTxSize;
  sc.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD;  // af_xdp.cpp loads fdlinkd's own
  sc.bind_flags = XDP_USE_NEED_WAKEUP | (zero_copy ? XDP_ZEROCOPY : XDP_COPY);
  err = -xsk_socket__create(&xsk_, ifname.c_str(), queue, umem_, &rx_, nullptr, &sc);
  if (err != 0) {
    xsk_ = nullptr;
    destroy();
    return false;
  }
  // The transmitting socket joins the receiving one's queue and UMEM (its fill and completion
  // rings too: the kernel refuses separate ones on the same queue).
  err = -xsk_socket__create_shared(&tx_xsk_, ifname.c_str(), queue, umem_, nullptr, &tx_, &fill_,
                                   &comp_, &sc);
  if (err != 0) {
    tx_xsk_ = nullptr;
    destroy();
    return false;
  }
  return true;
}

void XskSocket::destroy() {
  if (tx_xsk_) xsk_socket__delete(tx_xsk_);
  if (xsk_) xsk_socket__delete(xsk_);
  if (umem_) xsk_umem__delete(umem_);
  tx_xsk_ = nullptr;
  xsk_ = nullptr;
  umem_ = nullptr;
}

XskSocket::~XskSocket() {
  destroy();
  drop_area();
}

int XskSocket::fd() const {
  return xsk_socket__fd(xsk_);
}

int XskSocket::tx_fd() const {
  return xsk_socket__fd(tx_xsk_);
}

void XskSocket::prefetch(std::uint32_t i) const {
  // The frame's first line and the one before it (the XDP metadata), which the kernel has
  // just written on another CPU: asked for early, the misses overlap instead of stalling.
  const std::uint8_t* f = frame(xsk_ring_cons__rx_desc(&rx_, rx_index_ + i)->addr);
  prefetch_read(f - FDLINKD_XDP_META_SIZE);
  prefetch_read(f);
}

bool XskSocket::next(std::uint8_t*& data, std::uint32_t& len) {
  if (taken_ == peeked_) {
    peeked_ = xsk_ring_cons__peek(&rx_, 64, &rx_index_);
    taken_ = 0;
    if (peeked_ == 0) return false;
    for (std::uint32_t i = 0; i < kPrefetchAhead && i < peeked_; ++i)
      prefetch(i);
  }
  if (taken_ + kPrefetchAhead < peeked_) prefetch(taken_ + kPrefetchAhead);
  const xdp_desc* d = xsk_ring_cons__rx_desc(&rx_, rx_index_ + taken_++);
  ++unreleased_;
  held_[held_count_++] = d->addr;
  data = frame(d->addr);
  len = d->len;
  return true;
}

void XskSocket::release() {
  if (unreleased_ != 0) {  // (the descriptors were read; their frames go back below)
    xsk_ring_cons__release(&rx_, unreleased_);
    unreleased_ = 0;
  }
  if (held_count_ == 0) return;
  std::uint32_t idx = 0;
  // The fill ring holds every receive frame: there is always room for the ones taken.
  const auto n = static_cast<std::uint32_t>(held_count_);
  if (xsk_ring_prod__reserve(&fill_, n, &idx) == n) {
    for (std::uint32_t i = 0; i < n; ++i)
      *xsk_ring_prod__fill_addr(&fill_, idx + i) = held_[i] & ~std::uint64_t{kFrameSize - 1};
    xsk_ring_prod__submit(&fill_, n);
    held_count_ = 0;
  }
  if (xsk_ring_prod__needs_wakeup(&fill_))
    ::recvfrom(fd(), nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
}

void XskSocket::reap() {
  std::uint32_t idx = 0;
  const std::uint32_t n = xsk_ring_cons__peek(&comp_, kCompSize, &idx);
  if (n == 0) return;
  for (std::uint32_t i = 0; i < n; ++i) {
    const std::uint64_t addr = *xsk_ring_cons__comp_addr(&comp_, idx + i);
    if (own_tx_frame(addr)) tx_free_[tx_free_count_++] = addr;  // (else a frame it lent)
  }
  xsk_ring_cons__release(&comp_, n);
}

bool XskSocket::tx_drained() const {
  return __atomic_load_n(tx_.consumer, __ATOMIC_ACQUIRE) == *tx_.producer;
}

void XskSocket::flush(std::uint32_t queued) {
  if (queued != 0) xsk_ring_prod__submit(&tx_, queued);
  for (int kick = 0; kick < kMaxKicks && !tx_drained(); ++kick) {
    if (!xsk_ring_prod__needs_wakeup(&tx_)) break;  // (zero copy: the driver is at it)
    if (::sendto(tx_fd(), nullptr, 0, MSG_DONTWAIT, nullptr, 0) < 0 && errno != EAGAIN &&
        errno != EBUSY && errno != ENOBUFS && errno != EINTR)
      break;  // (ENETDOWN, ENXIO: the device is going; what is queued goes with it)
    reap();   // (EAGAIN is also a full completion ring)
  }
  reap();
}

bool XskSocket::lendable(const std::uint8_t* data, std::uint32_t len) const {
  if (len < kLendMin || data < area_) return false;
  const auto addr = static_cast<std::uint64_t>(data - area_);
  return addr < area_size_ && !own_tx_frame(addr) && (addr & (kFrameSize - 1)) + len <= kFrameSize;
}

void XskSocket::settle_lent() {
  const std::uint32_t end = *tx_.producer;
  for (std::uint32_t i = __atomic_load_n(tx_.consumer, __ATOMIC_ACQUIRE); i != end; ++i) {
    xdp_desc* d = xsk_ring_prod__tx_desc(&tx_, i);
    if (own_tx_frame(d->addr)) continue;
    const std::uint64_t addr = tx_free_[--tx_free_count_];  // (one is kept for each lent)
    std::memcpy(frame(addr), frame(d->addr), d->len);
    d->addr = addr;
  }
}

void XskSocket::send(Batch& batch, int select, CounterValues& tally) {
  std::lock_guard lock(tx_lock_);
  reap();
  std::uint32_t queued = 0;
  std::size_t lent = 0;  // frames lent since the ring last drained: as many own ones stay free
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (!batch.goes_to(i, select)) continue;
    const Frame& f = batch[i];
    if (f.len > kMaxFrame) {
      ++tally.drop(DropReason::too_big);
      continue;
    }
    std::uint32_t idx = 0;
    if (tx_free_count_ <= lent || xsk_ring_prod__reserve(&tx_, 1, &idx) != 1) {
      flush(queued);  // make room: send what is queued and take back what is done
      queued = 0;
      if (tx_drained()) lent = 0;
      if (tx_free_count_ <= lent || xsk_ring_prod__reserve(&tx_, 1, &idx) != 1) {
        ++tally.drop(DropReason::tx_queue_full);
        continue;
      }
    }
    xdp_desc* d = xsk_ring_prod__tx_desc(&tx_, idx);
    if (lends() && lendable(f.data, f.len)) {
      d->addr = static_cast<std::uint64_t>(f.data - area_);  // where another socket received it
      ++lent;
    } else {
      d->addr = tx_free_[--tx_free_count_];
      std::memcpy(frame(d->addr), f.data, f.len);
    }
    d->len = f.len;
    d->options = 0;
    ++queued;
    ++tally.tx_packets;
    tally.tx_bytes += f.len;
  }
  flush(queued);
  if (lent != 0 && !tx_drained()) settle_lent();
}

CounterValues XskSocket::kernel_drops() {
  CounterValues v;
  xdp_statistics st{};
  socklen_t len = sizeof st;
  if (::getsockopt(fd(), SOL_XDP, XDP_STATISTICS, &st, &len) != 0) return v;
  xdp_statistics tx_st{};  // (the transmitting socket's own)
  len = sizeof tx_st;
  if (::getsockopt(tx_fd(), SOL_XDP, XDP_STATISTICS, &tx_st, &len) == 0)
    st.tx_invalid_descs = tx_st.tx_invalid_descs;
  const std::uint64_t rx = st.rx_dropped + st.rx_ring_full;
  if (rx > seen_rx_drops_) {
    v.rx_packets = rx - seen_rx_drops_;  // received by the kernel for this socket, then dropped
    v.drop(DropReason::rx_queue_full) = rx - seen_rx_drops_;
  }
  if (st.tx_invalid_descs > seen_tx_invalid_) {
    // Counted as sent when queued; the kernel refused them.
    const std::uint64_t n = st.tx_invalid_descs - seen_tx_invalid_;
    v.tx_packets = 0 - n;
    v.drop(DropReason::tx_error) = n;
  }
  seen_rx_drops_ = rx;
  seen_tx_invalid_ = st.tx_invalid_descs;
  return v;
}

}  // namespace fdlinkd
