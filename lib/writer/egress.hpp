// egress: makes a received batch fit the link it leaves on, before the writer sends it.
//
// A frame may arrive with work left in it: a checksum the sender left unfinished
// (NEEDS_CSUM) or a GSO super-frame larger than the wire MTU. An egress link that passes
// offloads on (vnet_hdr = true) gets such frames whole, with their virtio-net header, when
// their segments fit its MTU. Any other egress link gets what the wire needs: the checksum
// finished, TCP super-frames cut into segments and UDP GSO super-frames into datagrams of
// their gso_size (gso.hpp) in the worker's spill batch, in their original order, and anything else
// that does not fit the MTU dropped as too_big (a plain UDP datagram is never cut into several).
// Two kinds are always done here, whatever the egress, because no virtio header can carry them
// back: TCP GSO inside a UDP tunnel, and SCTP's CRC32c.
//
// A frame is changed in place only when this output is its last holder; otherwise on a copy
// (make_writable), so that a frame sent to two links reaches both as it came in.
//
// Fds that carry virtio-net headers (AF_PACKET always, TAP/TUN with vnet_hdr) need one in
// front of every frame: frames that keep no header of their own get a zero one whose hdr_len
// is the whole frame (the kernel then builds one linear skb instead of page fragments). The
// header goes into the batch's tx_header slot, never into the frame's headroom.
#pragma once

#include <cstddef>
#include <functional>

#include "core/batch.hpp"
#include "core/counters.hpp"

namespace fdlinkd {

struct EgressCaps {
  bool vnet_fd = false;      ///< the fd takes a virtio-net header before each frame
  bool passthrough = false;  ///< checksum offload and GSO go to the fd as they are
  /// With passthrough: the GSO kinds the fd takes (a guest says which it does); others are
  /// segmented here.
  bool gso_tcp4 = true, gso_tcp6 = true, gso_udp = true, gso_ecn = true;
  bool l2 = true;                 ///< frames start with an Ethernet header
  std::size_t wire_capacity = 0;  ///< the largest frame the link puts on the wire
};

struct Worker;

/// Sends `batch` through `send` (once, or in several batches of w.spill when frames had to be
/// reworked), counting drops and the extra frames segmentation made in `tally`.
void prepare_egress(Batch& batch, const EgressCaps& caps, Worker& w, CounterValues& tally,
                    const std::function<void(Batch&)>& send);

}  // namespace fdlinkd
