// tap / tun: a TAP (Ethernet frames) or TUN (IP packets) device through /dev/net/tun.
//
// fdlinkd attaches to the device if it exists, or creates it; it sets IFF_NO_PI (frames carry
// no extra header), the link's MTU, and brings the device up (a TAP that is down fails writes
// with EIO). A device fdlinkd created disappears when fdlinkd closes it, unless
// `persist = true`; a device that existed before is left as it was found.
//
// TAP fds are character devices: no recvmmsg/sendmmsg, one frame per read or write (the shared
// readers and writers of link/rx.hpp and writer/writer.hpp do that). With fds > 1 the device
// is opened IFF_MULTI_QUEUE, one fd per queue. With vnet_hdr = true every read and write
// carries a virtio-net header (IFF_VNET_HDR), and `offloads` says what the device may hand
// fdlinkd (TUNSETOFFLOAD).
//
// Keys: interface (required), persist, vnet_hdr, offloads, gso_max_size, fds, dispatch
// (readv), tx_backlog, tx_stall_timeout. Two types, one class: tap and tun.
#pragma once

#include "link/link.hpp"
#include "link/link_types.hpp"

namespace fdlinkd {

struct TapOptions : LinkOptions {
  bool persist = false;  ///< keep the device after fdlinkd exits
  /// With vnet_hdr: what the device may hand fdlinkd (TUNSETOFFLOAD).
  bool offload_csum = true, offload_tso4 = true, offload_tso6 = true;
  bool offload_uso = false;  ///< UDP GSO (USO4 and USO6 together; kernel 6.2+)
};

class TapLink : public Link {
 public:
  static const LinkType kTapType, kTunType;

  explicit TapLink(const LinkConfig& config) : Link(config), o_(config_.options_as<TapOptions>()) {}
  /// fdlinkd created the device (it did not exist): if someone deletes it, fdlinkd makes it
  /// again.
  bool owns_device() const override { return created_; }
  /// Closing a TAP's fds would delete a device fdlinkd made: a TAP that is only down keeps
  /// them.
  bool keeps_fds_while_down() const override { return true; }

 protected:
  void open_fds() override;

 private:
  const TapOptions& o_;
  bool created_ = false;
};

}  // namespace fdlinkd
