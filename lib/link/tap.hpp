// tap / tun: a TAP (Ethernet frames) or TUN (IP packets) device through /dev/net/tun.
//
// fdlinkd attaches to the device if it exists, or creates it; it sets IFF_NO_PI (frames carry
// no extra header), the link's MTU, and brings the device up (a TAP that is down fails writes
// with EIO). A device fdlinkd created disappears when fdlinkd closes it, unless
// `persist = true`; a device that existed before is left as it was found.
//
// TAP fds are character devices: no recvmmsg/sendmmsg, one frame per read or write. With
// fds > 1 the device is opened IFF_MULTI_QUEUE, one fd per queue.
//
// Keys: interface (required), persist, plus the common link keys.
#pragma once

#include "link/link.hpp"

namespace fdlinkd {

class TapLink : public Link {
 public:
  using Link::Link;
  /// fdlinkd created the device (it did not exist): if someone deletes it, fdlinkd makes it
  /// again.
  bool owns_device() const override { return created_; }

 protected:
  void open_fds() override;

 private:
  bool created_ = false;
};

}  // namespace fdlinkd
