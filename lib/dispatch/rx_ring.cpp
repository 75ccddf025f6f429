#include "dispatch/rx_ring.hpp"

#include <sys/mman.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace fdlinkd {

namespace {

std::uint32_t load_status(const tpacket_block_desc* b) {
  return __atomic_load_n(&b->hdr.bh1.block_status, __ATOMIC_ACQUIRE);
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
  void* p = ::mmap(nullptr, map_size_, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_LOCKED | MAP_POPULATE, fd, 0);
  if (p == MAP_FAILED)  // RLIMIT_MEMLOCK: run with ordinary pages
    p = ::mmap(nullptr, map_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (p == MAP_FAILED)
    throw std::runtime_error(std::string("mmap of the RX ring: ") + std::strerror(errno));
  base_ = static_cast<std::uint8_t*>(p);
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

}  // namespace fdlinkd
