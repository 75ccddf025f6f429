#include "link/netdev.hpp"

#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "link/link.hpp"

namespace fdlinkd::netdev {

namespace {

// A throwaway socket to carry interface ioctls in the current namespace.
class CtlSocket {
 public:
  CtlSocket() : fd_(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    if (fd_ < 0) fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  }
  ~CtlSocket() { ::close(fd_); }
  int fd() const { return fd_; }

 private:
  int fd_;
};

ifreq request(const std::string& name) {
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  return ifr;
}

[[noreturn]] void fail(const std::string& what, const std::string& name) {
  throw std::runtime_error(what + " " + name + ": " + errno_text(errno, "CAP_NET_ADMIN"));
}

}  // namespace

unsigned index_of(const std::string& name) {
  return ::if_nametoindex(name.c_str());
}

bool is_up(const std::string& name) {
  CtlSocket s;
  ifreq ifr = request(name);
  return ::ioctl(s.fd(), SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP);
}

void set_up(const std::string& name) {
  CtlSocket s;
  ifreq ifr = request(name);
  if (::ioctl(s.fd(), SIOCGIFFLAGS, &ifr) < 0) fail("cannot read the flags of", name);
  if (ifr.ifr_flags & IFF_UP) return;
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  if (::ioctl(s.fd(), SIOCSIFFLAGS, &ifr) < 0) fail("cannot bring up", name);
}

void set_mtu(const std::string& name, unsigned mtu) {
  CtlSocket s;
  ifreq ifr = request(name);
  ifr.ifr_mtu = static_cast<int>(mtu);
  if (::ioctl(s.fd(), SIOCSIFMTU, &ifr) < 0) fail("cannot set the MTU of", name);
}

unsigned mtu_of(const std::string& name) {
  CtlSocket s;
  ifreq ifr = request(name);
  if (::ioctl(s.fd(), SIOCGIFMTU, &ifr) < 0) return 0;
  return static_cast<unsigned>(ifr.ifr_mtu);
}

unsigned rx_queues(const std::string& name) {
  CtlSocket s;
  ifreq ifr = request(name);
  ethtool_channels ch{};
  ch.cmd = ETHTOOL_GCHANNELS;
  ifr.ifr_data = reinterpret_cast<char*>(&ch);
  if (::ioctl(s.fd(), SIOCETHTOOL, &ifr) < 0) return 1;
  const unsigned n = ch.combined_count + ch.rx_count;
  return n == 0 ? 1 : n;
}

std::string driver_of(const std::string& name) {
  CtlSocket s;
  ifreq ifr = request(name);
  ethtool_drvinfo info{};
  info.cmd = ETHTOOL_GDRVINFO;
  ifr.ifr_data = reinterpret_cast<char*>(&info);
  if (::ioctl(s.fd(), SIOCETHTOOL, &ifr) < 0) return "";
  return std::string(info.driver, ::strnlen(info.driver, sizeof info.driver));
}

}  // namespace fdlinkd::netdev
