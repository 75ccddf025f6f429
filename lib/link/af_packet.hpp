// af_packet: frames of an existing interface through AF_PACKET sockets.
//
// Each fd is a socket created with protocol 0 (so nothing is queued before it is bound) that
// sets PACKET_IGNORE_OUTGOING (so it never reads back what fdlinkd, or anyone, transmits on the
// interface: no forwarding loops), gets its RX ring when dispatch = "packet_mmap"
// (packet_ring.hpp; before bind: the ring version cannot change afterwards), then binds to the
// interface with ETH_P_ALL. With `promisc = true` (default) it joins PACKET_MR_PROMISC; the
// kernel drops that membership when the socket closes.
//
// fds > 1: the sockets form one PACKET_FANOUT group (mode `fanout`, "hash" by default: one flow
// always reaches the same fd). The first socket asks for PACKET_FANOUT_FLAG_UNIQUEID and reads
// the id the kernel picked; the others join that id. Fanout ids are per network namespace, so
// a fixed id would collide with other links or programs (EINVAL). A fanout group ignores its
// members' PACKET_IGNORE_OUTGOING (the kernel delivers through the group's hook), so the group
// is made with PACKET_FANOUT_FLAG_IGNORE_OUTGOING; without it, frames that the TX-ring
// sockets send through the qdisc come back in, and loop.
//
// Receiving: readv or recvmmsg with PACKET_AUXDATA (link/rx.hpp), or the ring's frames where
// they lie (RingRxQueue). The kernel takes each frame's outermost VLAN tag out and reports it
// on the side (the auxdata, the ring's frame header): it is put back (offload/vlan.hpp).
//
// Sending: sendmmsg through the fds, or with tx_ring = true, a transmit-only socket per worker
// (bound with protocol 0, so it receives nothing) with a TPACKET_V2 TX ring of its own.
// qdisc_bypass = true sets PACKET_QDISC_BYPASS on whatever transmits (its direct transmit does
// not segment GSO frames for an interface without TSO: measured, ENOBUFS).
//
// Every socket sets PACKET_VNET_HDR: received frames come with the kernel's virtio-net header
// (unfinished checksum, GSO type and MSS), and sent frames take one (see writer/egress.hpp).
//
// Keys: interface (required), promisc, fanout, tx_ring, qdisc_bypass, [link.ring], vnet_hdr,
// gro, gso_max_size, fds, dispatch.
#pragma once

#include <memory>
#include <vector>

#include "link/link.hpp"
#include "link/link_types.hpp"
#include "link/packet_ring.hpp"

namespace fdlinkd {

/// PACKET_FANOUT modes: how the kernel spreads an interface's frames over a link's fds.
enum class Fanout { hash, lb, cpu, rollover, rnd, qm };

struct AfPacketOptions : LinkOptions {
  bool promisc = true;           ///< put the interface in promiscuous mode
  Fanout fanout = Fanout::hash;  ///< with fds > 1
  bool tx_ring = false;          ///< transmit through TPACKET_V2 TX rings
  bool qdisc_bypass = false;     ///< PACKET_QDISC_BYPASS on transmit
  /// TCP segments of one flow in a batch leave as one GSO super-frame (writer/coalesce.hpp),
  /// as behind the kernel's GRO (needs vnet_hdr).
  bool gro = false;
  RingConfig ring;
};

class AfPacketLink : public Link {
 public:
  static const LinkType kType;

  explicit AfPacketLink(const LinkConfig& config);
  ~AfPacketLink() override;

  std::unique_ptr<RxQueue> make_rx_queue(std::size_t port, Worker& w, Batch& batch) override;
  /// PACKET_STATISTICS: tp_drops (ring or queue full) becomes rx_queue_full.
  void collect_kernel_counters() override;
  void close_retired() override;
  unsigned ifindex() const override { return ifindex_; }
  /// Port `port`'s receive ring (dispatch = "packet_mmap"), nullptr without.
  RxRing* ring(std::size_t port) const {
    return port < rings_.size() ? rings_[port].get() : nullptr;
  }

 protected:
  void open_fds() override;
  void send_batch(Worker& w, Batch& batch) override;
  TxTarget tx_target(int fd, TxBacklog* backlog) const override;
  void on_retire() override;

 private:
  void join_fanout(std::size_t q);
  void open_tx_rings(unsigned ifindex, unsigned if_mtu);

  const AfPacketOptions& o_;
  std::uint32_t fanout_id_ = 0;
  int fanout_flags_ = 0;                        ///< mode and flags every member must join with
  std::vector<std::unique_ptr<RxRing>> rings_;  ///< per port, with dispatch = "packet_mmap"
  std::vector<std::unique_ptr<RxRing>> retired_rings_;  ///< unmapped in close_retired()
  struct TxSocket {
    int fd = -1;
    std::unique_ptr<TxRing> ring;
  };
  std::vector<TxSocket> tx_;  ///< tx_ring: one per worker
  unsigned ifindex_ = 0;
};

}  // namespace fdlinkd
