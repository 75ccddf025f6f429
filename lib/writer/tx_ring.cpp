#include "writer/tx_ring.hpp"

#include <linux/if_packet.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include "core/virtio_net.hpp"

#include <bit>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace fdlinkd {

namespace {

constexpr std::uint32_t kTimestampBits =
    TP_STATUS_TS_SOFTWARE | TP_STATUS_TS_SYS_HARDWARE | TP_STATUS_TS_RAW_HARDWARE;

tpacket2_hdr* header(std::uint8_t* slot) {
  return reinterpret_cast<tpacket2_hdr*>(slot);
}

std::uint32_t status_of(std::uint8_t* slot) {
  return __atomic_load_n(&header(slot)->tp_status, __ATOMIC_ACQUIRE) & ~kTimestampBits;
}

}  // namespace

TxRing::TxRing(int fd, std::size_t frame_capacity, std::size_t frame_count) : fd_(fd) {
  // With PACKET_VNET_HDR the kernel copies the first hdr_len bytes of a frame into the skb's
  // linear area; the rest would be attached as fragments of the ring's pages, which veth must
  // then copy into freshly allocated pages (skb_copy_ubufs). egress.cpp gives frames without
  // offload work a zero header with hdr_len = the whole frame: one memcpy, no page allocation.
  // It also lets GSO super-frames and unfinished checksums through when vnet_hdr = true.
  const int one = 1;
  if (::setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) != 0)
    throw std::runtime_error(std::string("PACKET_VNET_HDR: ") + std::strerror(errno));
  data_offset_ = TPACKET_ALIGN(sizeof(tpacket2_hdr));
  slot_size_ = std::bit_ceil(data_offset_ + vnet_size_ + frame_capacity);
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
  void* p = ::mmap(nullptr, map_size_, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_LOCKED | MAP_POPULATE, fd, 0);
  if (p == MAP_FAILED)
    p = ::mmap(nullptr, map_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (p == MAP_FAILED)
    throw std::runtime_error(std::string("mmap of the TX ring: ") + std::strerror(errno));
  base_ = static_cast<std::uint8_t*>(p);
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
