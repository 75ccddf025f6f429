#include "link/packet_ring.hpp"

#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include "core/virtio_net.hpp"

namespace fdlinkd {

namespace {

std::uint32_t load_status(const tpacket_block_desc* b) {
  return __atomic_load_n(&b->hdr.bh1.block_status, __ATOMIC_ACQUIRE);
}

constexpr std::uint32_t kTimestampBits =
    TP_STATUS_TS_SOFTWARE | TP_STATUS_TS_SYS_HARDWARE | TP_STATUS_TS_RAW_HARDWARE;

tpacket2_hdr* header(std::uint8_t* slot) {
  return reinterpret_cast<tpacket2_hdr*>(slot);
}

std::uint32_t status_of(std::uint8_t* slot) {
  return __atomic_load_n(&header(slot)->tp_status, __ATOMIC_ACQUIRE) & ~kTimestampBits;
}

// Maps `size` bytes of the ring set up on `fd`: locked and populated where the locked-memory
// limit allows, else ordinary pages (RLIMIT_MEMLOCK). Throws std::runtime_error naming `what`.
std::uint8_t* map_ring(int fd, std::size_t size, const char* what) {
  void* p =
      ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_LOCKED | MAP_POPULATE, fd, 0);
  if (p == MAP_FAILED)
    p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (p == MAP_FAILED)
    throw std::runtime_error(std::string("mmap of the ") + what + ": " + std::strerror(errno));
  return static_cast<std::uint8_t*>(p);
}

}  // namespace

RxRing::RxRing(int fd, const RingConfig& c)
    : version_(c.version), block_size_(c.block_size), block_count_(c.block_count) {
  const int version = c.version == 2 ? TPACKET_V2 : TPACKET_V3;
  if (::setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof version) != 0)
    throw std::runtime_error(std::string("PACKET_VERSION TPACKET_V") + std::to_string(c.version) +
                             ": " + std::strerror(errno));
  tpacket_req3 req{};
  req.tp_block_size = c.block_size;
  req.tp_block_nr = c.block_count;
  req.tp_frame_size = c.frame_size;
  req.tp_frame_nr = (c.block_size / c.frame_size) * c.block_count;
  if (version == TPACKET_V3) {
    req.tp_retire_blk_tov = static_cast<unsigned>(c.block_timeout.count());
  } else {
    frame_size_ = c.frame_size;
    slots_per_block_ = c.block_size / c.frame_size;
    slot_count_ = req.tp_frame_nr;
    // A frame that does not fit its slot is also queued whole on the socket (TP_STATUS_COPY).
    const int one = 1;
    if (::setsockopt(fd, SOL_PACKET, PACKET_COPY_THRESH, &one, sizeof one) != 0)
      throw std::runtime_error(std::string("PACKET_COPY_THRESH: ") + std::strerror(errno));
  }
  // (a tpacket_req3 starts with the fields of the tpacket_req a V2 ring takes)
  const socklen_t req_len = version == TPACKET_V3 ? sizeof(tpacket_req3) : sizeof(tpacket_req);
  if (::setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, req_len) != 0)
    throw std::runtime_error(std::string("PACKET_RX_RING (") + std::to_string(c.block_count) +
                             " blocks of " + std::to_string(c.block_size) +
                             " bytes): " + std::strerror(errno));
  map_size_ = block_size_ * block_count_;
  base_ = map_ring(fd, map_size_, "RX ring");
}

RxRing::~RxRing() {
  if (base_) ::munmap(base_, map_size_);
}

bool RxRing::next_v2(Frame& out) {
  if (taken_ == slot_count_) return false;  // every slot is waiting for release()
  tpacket2_hdr* h = slot(next_slot_);
  const std::uint32_t status = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
  if ((status & TP_STATUS_USER) == 0) return false;
  out.data = reinterpret_cast<std::uint8_t*>(h) + h->tp_mac;
  out.caplen = h->tp_snaplen;
  out.len = h->tp_len;
  out.status = status;
  out.vlan_tci = h->tp_vlan_tci;
  out.vlan_tpid = (status & TP_STATUS_VLAN_TPID_VALID) ? h->tp_vlan_tpid : std::uint16_t{0x8100};
  out.rx_ns = std::int64_t{h->tp_sec} * 1'000'000'000 + h->tp_nsec;
  out.room = h->tp_mac > TPACKET2_HDRLEN ? h->tp_mac - TPACKET2_HDRLEN : 0;
  out.copied = (status & TP_STATUS_COPY) != 0;
  next_slot_ = (next_slot_ + 1) % slot_count_;
  ++taken_;
  return true;
}

bool RxRing::next(Frame& out) {
  if (version_ == 2) return next_v2(out);
  out.copied = false;
  while (remaining_ == 0) {
    if (frame_ != nullptr) {  // the current block is finished: move on
      ++done_;
      current_ = (current_ + 1) % block_count_;
      frame_ = nullptr;
      if (done_ == block_count_) return false;  // every block is waiting for release()
    }
    tpacket_block_desc* b = block(current_);
    if ((load_status(b) & TP_STATUS_USER) == 0) return false;
    remaining_ = b->hdr.bh1.num_pkts;
    frame_ = reinterpret_cast<tpacket3_hdr*>(reinterpret_cast<std::uint8_t*>(b) +
                                             b->hdr.bh1.offset_to_first_pkt);
    if (remaining_ == 0) frame_ = reinterpret_cast<tpacket3_hdr*>(b);  // empty block: skip
  }
  tpacket3_hdr* h = frame_;
  out.data = reinterpret_cast<std::uint8_t*>(h) + h->tp_mac;
  out.caplen = h->tp_snaplen;
  out.len = h->tp_len;
  out.status = h->tp_status;
  out.vlan_tci = static_cast<std::uint16_t>(h->hv1.tp_vlan_tci);
  out.vlan_tpid = (h->tp_status & TP_STATUS_VLAN_TPID_VALID)
                      ? static_cast<std::uint16_t>(h->hv1.tp_vlan_tpid)
                      : std::uint16_t{0x8100};
  out.rx_ns = std::int64_t{h->tp_sec} * 1'000'000'000 + h->tp_nsec;
  out.room = h->tp_mac > TPACKET3_HDRLEN ? h->tp_mac - TPACKET3_HDRLEN : 0;
  --remaining_;
  frame_ = reinterpret_cast<tpacket3_hdr*>(reinterpret_cast<std::uint8_t*>(h) + h->tp_next_offset);
  return true;
}

void RxRing::release() {
  if (version_ == 2) {  // the `taken_` slots just before next_slot_
    std::size_t i = (next_slot_ + slot_count_ - taken_) % slot_count_;
    for (; taken_ > 0; --taken_, i = (i + 1) % slot_count_)
      __atomic_store_n(&slot(i)->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    return;
  }
  // The finished blocks are the `done_` blocks just before current_.
  std::size_t i = (current_ + block_count_ - done_) % block_count_;
  for (; done_ > 0; --done_, i = (i + 1) % block_count_)
    __atomic_store_n(&block(i)->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
}

TxRing::TxRing(int fd, std::size_t max_frame, std::size_t frame_count) : fd_(fd) {
  // With PACKET_VNET_HDR the kernel copies the first hdr_len bytes of a frame into the skb's
  // linear area; the rest would be attached as fragments of the ring's pages, which veth must
  // then copy into freshly allocated pages (skb_copy_ubufs). egress.cpp gives frames without
  // offload work a zero header with hdr_len = the whole frame: one memcpy, no page allocation.
  // It also lets GSO super-frames and unfinished checksums through when vnet_hdr = true.
  const int one = 1;
  if (::setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) != 0)
    throw std::runtime_error(std::string("PACKET_VNET_HDR: ") + std::strerror(errno));
  data_offset_ = TPACKET_ALIGN(sizeof(tpacket2_hdr));
  slot_size_ = std::bit_ceil(data_offset_ + vnet_size_ + max_frame);
  const std::size_t block_size = slot_size_ < 4096 ? 4096 : slot_size_;
  slot_count_ = frame_count;
  if ((slot_count_ * slot_size_) % block_size != 0)
    slot_count_ += (block_size / slot_size_) - slot_count_ % (block_size / slot_size_);

  const int version = TPACKET_V2;
  if (::setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof version) != 0)
    throw std::runtime_error(std::string("PACKET_VERSION TPACKET_V2: ") + std::strerror(errno));
  tpacket_req req{};
  req.tp_block_size = static_cast<unsigned>(block_size);
  req.tp_frame_size = static_cast<unsigned>(slot_size_);
  req.tp_frame_nr = static_cast<unsigned>(slot_count_);
  req.tp_block_nr = static_cast<unsigned>(slot_count_ * slot_size_ / block_size);
  if (::setsockopt(fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof req) != 0)
    throw std::runtime_error(std::string("PACKET_TX_RING: ") + std::strerror(errno));
  map_size_ = slot_count_ * slot_size_;
  base_ = map_ring(fd, map_size_, "TX ring");
}

TxRing::~TxRing() {
  if (base_) ::munmap(base_, map_size_);
}

void TxRing::kick() {
  // Errors of single frames come back per slot (TP_STATUS_WRONG_FORMAT); a failed kick leaves
  // the frames queued for the next one.
  while (::sendto(fd_, nullptr, 0, MSG_DONTWAIT, nullptr, 0) < 0 && errno == EINTR) {
  }
}

bool TxRing::slot_free(std::size_t i) const {
  const std::uint32_t st = status_of(slot(i));
  return st != TP_STATUS_SEND_REQUEST && st != TP_STATUS_SENDING;
}

bool TxRing::make_room(bool& queued) {
  if (queued) {  // usually enough: on veth the kick transmits synchronously
    kick();
    queued = false;
    if (slot_free(head_)) return true;
  }
  pollfd pfd{fd_, POLLOUT, 0};
  ::poll(&pfd, 1, kFullWaitMs);
  return slot_free(head_);
}

void TxRing::send(Batch& batch, CounterValues& tally) {
  const std::size_t capacity = slot_size_ - data_offset_ - vnet_size_;
  bool queued = false;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const Frame& f = batch[i];
    const bool tagged = f.len >= 18 && (f.data[12] == 0x81 || f.data[12] == 0x88) &&
                        (f.data[13] == 0x00 || f.data[13] == 0xa8);
    if (f.len > capacity || f.len > max_untagged_ + (tagged ? 4 : 0)) {
      ++tally.drop(DropReason::too_big);
      continue;
    }
    if (!slot_free(head_) && !make_room(queued)) {
      ++tally.drop(DropReason::tx_queue_full);
      continue;
    }
    std::uint8_t* s = slot(head_);
    if (status_of(s) & TP_STATUS_WRONG_FORMAT) {
      // The kernel refused the frame this slot held last time round; it was counted as sent
      // then. Move it to tx_error (the tallies are added modulo 2^64, so this subtracts).
      --tally.tx_packets;
      tally.tx_bytes -= header(s)->tp_len - vnet_size_;
      ++tally.drop(DropReason::tx_error);
    }
    // The frame's virtio-net header (egress.cpp set it) goes in front of it.
    std::memcpy(s + data_offset_, &batch.tx_header(i), vnet_size_);
    std::memcpy(s + data_offset_ + vnet_size_, f.data, f.len);
    header(s)->tp_len = static_cast<unsigned>(f.len + vnet_size_);
    __atomic_store_n(&header(s)->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
    head_ = (head_ + 1) % slot_count_;
    queued = true;
    ++tally.tx_packets;
    tally.tx_bytes += f.len;
  }
  if (queued) kick();
}

}  // namespace fdlinkd
