#include "link/tap.hpp"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/log.hpp"
#include "core/virtio_net.hpp"
#include "link/netdev.hpp"

namespace fdlinkd {

namespace {
// TUN_F_USO4/6 (Linux 6.2), absent from Debian 12's headers.
constexpr unsigned kTunUso4 = 0x20, kTunUso6 = 0x40;
}  // namespace

void TapLink::open_fds() {
  const std::string& ifname = config_.interface;
  const bool existed = netdev::index_of(ifname) != 0;
  if (!existed) created_ = true;
  const bool tap = config_.type == LinkType::tap;

  for (std::size_t q = 0; q < ports_.size(); ++q) {
    const int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) throw LinkError("cannot open /dev/net/tun: " + errno_text(errno));
    ports_[q]->fd = fd;

    ifreq ifr{};
    std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
    // Several fds are the queues of one multi-queue device; the kernel spreads the device's
    // transmit side over them by flow, and each fd's writes enter on its own queue.
    const int mq = ports_.size() > 1 ? IFF_MULTI_QUEUE : 0;
    const int vnet = config_.vnet_hdr ? IFF_VNET_HDR : 0;
    ifr.ifr_flags = static_cast<short>((tap ? IFF_TAP : IFF_TUN) | IFF_NO_PI | mq | vnet);
    if (::ioctl(fd, TUNSETIFF, &ifr) != 0) {
      const int err = errno;
      std::string hint;
      if (err == EBUSY) hint = " (another process has it open)";
      if (err == EINVAL && existed)
        hint = " (it exists with other settings, or is not a " + std::string(tap ? "TAP" : "TUN") +
               " device)";
      throw LinkError("cannot attach to " + std::string(tap ? "TAP" : "TUN") + " device " + ifname +
                      ": " + errno_text(err, "CAP_NET_ADMIN") + hint);
    }
    if (config_.vnet_hdr) {
      const int size = sizeof(VirtioNetHdr);
      if (::ioctl(fd, TUNSETVNETHDRSZ, &size) != 0)
        throw LinkError("TUNSETVNETHDRSZ: " + errno_text(errno));
      // What the device may hand fdlinkd: only what fdlinkd can finish or pass on.
      unsigned offload = 0;
      if (config_.offload_csum) offload |= TUN_F_CSUM;
      if (config_.offload_tso4) offload |= TUN_F_TSO4;
      if (config_.offload_tso6) offload |= TUN_F_TSO6;
      if (config_.offload_uso) offload |= kTunUso4 | kTunUso6;
      if (::ioctl(fd, TUNSETOFFLOAD, offload) != 0)
        throw LinkError("TUNSETOFFLOAD: " + errno_text(errno) +
                        (config_.offload_uso ? " (\"uso\" needs Linux 6.2 or later)" : ""));
    }
    if (config_.persist && ::ioctl(fd, TUNSETPERSIST, 1) != 0)
      throw LinkError("cannot make " + ifname + " persistent: " + errno_text(errno));
  }

  try {
    netdev::set_mtu(ifname, config_.mtu);
    netdev::set_up(ifname);
  } catch (const std::runtime_error& e) {
    throw LinkError(e.what());
  }
  log::debug("tap_attached", existed ? "attached to an existing device" : "created the device",
             {{"link", name()}, {"interface", ifname}});
}

}  // namespace fdlinkd
