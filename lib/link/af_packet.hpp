// af_packet: frames of an existing interface through AF_PACKET sockets.
//
// The socket is created with protocol 0 (so nothing is queued before it is bound), sets
// PACKET_IGNORE_OUTGOING (so it never reads back what fdlinkd, or anyone, transmits on the
// interface: no forwarding loops), then binds to the interface with ETH_P_ALL. With
// `promisc = true` (default) it joins PACKET_MR_PROMISC, so frames for other MACs arrive on
// real NICs too; the kernel drops that membership when the socket closes.
//
// Keys: interface (required), promisc, plus the common link keys.
#pragma once

#include "link/link.hpp"

namespace fdlinkd {

class AfPacketLink : public Link {
 public:
  using Link::Link;

 protected:
  void open_fds() override;
};

}  // namespace fdlinkd
