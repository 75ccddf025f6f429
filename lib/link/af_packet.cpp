#include "link/af_packet.hpp"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "core/log.hpp"
#include "link/netdev.hpp"

namespace fdlinkd {

namespace {

constexpr int kSocketBuffer = 4 << 20;  // room for bursts while a worker is busy

void set_buffer(int fd, int force_opt, int opt) {
  // SO_*BUFFORCE needs CAP_NET_ADMIN and ignores the sysctl ceiling; fall back to the plain one.
  if (::setsockopt(fd, SOL_SOCKET, force_opt, &kSocketBuffer, sizeof kSocketBuffer) != 0)
    ::setsockopt(fd, SOL_SOCKET, opt, &kSocketBuffer, sizeof kSocketBuffer);
}

}  // namespace

void AfPacketLink::open_fds() {
  const std::string& ifname = config_.interface;
  const unsigned ifindex = netdev::index_of(ifname);
  if (ifindex == 0)
    throw LinkError("interface " + ifname + " does not exist" +
                    (config_.netns.empty() ? "" : " in network namespace " + config_.netns));

  for (std::size_t q = 0; q < ports_.size(); ++q) {
    const int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw LinkError("AF_PACKET socket: " + errno_text(errno));
    ports_[q]->fd = fd;

    const int one = 1;
    if (::setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) != 0)
      throw LinkError("PACKET_IGNORE_OUTGOING (needs Linux 4.20): " + errno_text(errno));
    set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF);
    set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF);

    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = static_cast<int>(ifindex);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0)
      throw LinkError("cannot bind AF_PACKET socket to " + ifname + ": " + errno_text(errno));

    if (config_.promisc) {
      packet_mreq mr{};
      mr.mr_ifindex = static_cast<int>(ifindex);
      mr.mr_type = PACKET_MR_PROMISC;
      if (::setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) != 0)
        throw LinkError("cannot put " + ifname + " in promiscuous mode: " + errno_text(errno));
    }
  }

  const unsigned if_mtu = netdev::mtu_of(ifname);
  if (if_mtu > config_.mtu)
    log::warn(
        "link_mtu", "interface MTU is larger than the link's mtu: bigger frames are dropped",
        {{"link", name()}, {"interface", ifname}, {"interface_mtu", if_mtu}, {"mtu", config_.mtu}});
}

}  // namespace fdlinkd
