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
    : block_size_(c.block_size), block_count_(c.block_count) {
  const int version = TPACKET_V3;
  if (::setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof version) != 0)
    throw std::runtime_error(std::string("PACKET_VERSION TPACKET_V3: ") + std::strerror(errno));
  tpacket_req3 req{};
  req.tp_block_size = c.block_size;
  req.tp_block_nr = c.block_count;
  req.tp_frame_size = c.frame_size;
  req.tp_frame_nr = (c.block_size / c.frame_size) * c.block_count;
  req.tp_retire_blk_tov = static_cast<unsigned>(c.block_timeout.count());
  if (::setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) != 0)
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

bool RxRing::next(Frame& out) {
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
  // The finished blocks are the `done_` blocks just before current_.
  std::size_t i = (current_ + block_count_ - done_) % block_count_;
  for (; done_ > 0; --done_, i = (i + 1) % block_count_)
    __atomic_store_n(&block(i)->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
}

}  // namespace fdlinkd
