// af_packet: frames of an existing interface through AF_PACKET sockets.
//
// Each fd is a socket created with protocol 0 (so nothing is queued before it is bound) that
// sets PACKET_IGNORE_OUTGOING (so it never reads back what fdlinkd, or anyone, transmits on the
// interface: no forwarding loops), gets its TPACKET_V3 RX ring when dispatch = "packet_mmap"
// (before bind: the ring version cannot change afterwards), then binds to the interface with
// ETH_P_ALL. With `promisc = true` (default) it joins PACKET_MR_PROMISC; the kernel drops that
// membership when the socket closes.
//
// fds > 1: the sockets form one PACKET_FANOUT group (mode `fanout`, "hash" by default: one flow
// always reaches the same fd). The first socket asks for PACKET_FANOUT_FLAG_UNIQUEID and reads
// the id the kernel picked; the others join that id. Fanout ids are per network namespace, so
// a fixed id would collide with other links or programs (EINVAL). A fanout group ignores its
// members' PACKET_IGNORE_OUTGOING (the kernel delivers through the group's hook), so the group
// is made with PACKET_FANOUT_FLAG_IGNORE_OUTGOING; without it, frames that the TX-ring
// sockets send through the qdisc come back in, and loop.
//
// tx_ring = true: each worker thread gets a transmit-only socket (bound with protocol 0, so it
// receives nothing) with a TPACKET_V2 TX ring of its own. Otherwise frames leave through the
// fds with sendmmsg. qdisc_bypass = true sets PACKET_QDISC_BYPASS on whatever transmits (its
// direct transmit does not segment GSO frames for an interface without TSO: measured, ENOBUFS).
//
// Every socket sets PACKET_VNET_HDR: received frames come with the kernel's virtio-net header
// (unfinished checksum, GSO type and MSS), and sent frames take one (see writer/egress.hpp).
//
// Keys: interface (required), promisc, fanout, tx_ring, qdisc_bypass, [link.ring], plus the
// common link keys.
#pragma once

#include <memory>
#include <vector>

#include "link/link.hpp"
#include "writer/tx_ring.hpp"

namespace fdlinkd {

class AfPacketLink : public Link {
 public:
  using Link::Link;
  ~AfPacketLink() override;

  void send_batch(Worker& w, Batch& batch) override;
  /// PACKET_STATISTICS: tp_drops (ring or queue full) becomes rx_queue_full.
  void collect_kernel_counters() override;
  void close_retired() override;
  unsigned ifindex() const override { return ifindex_; }

 protected:
  void open_fds() override;

 private:
  void join_fanout(std::size_t q);
  void open_tx_rings(unsigned ifindex, unsigned if_mtu);

  std::uint32_t fanout_id_ = 0;
  int fanout_flags_ = 0;  ///< mode and flags every member must join with
  struct TxSocket {
    int fd = -1;
    std::unique_ptr<TxRing> ring;
  };
  std::vector<TxSocket> tx_;  ///< tx_ring: one per worker
  unsigned ifindex_ = 0;
};

}  // namespace fdlinkd
