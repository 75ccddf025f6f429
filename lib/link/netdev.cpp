#include "link/netdev.hpp"

#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/ethtool.h>
#include <linux/genetlink.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <vector>

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

namespace {

// The netdev generic netlink family (include/uapi/linux/netdev.h, Linux 6.3; Debian 12's
// headers predate it).
constexpr std::uint8_t kNetdevCmdDevGet = 1;
constexpr std::uint16_t kNetdevAttrIfindex = 1;
constexpr std::uint16_t kNetdevAttrXdpFeatures = 3;

// One request, one answer: the payload's attributes go to `cb`.
bool genl_ask(mnl_socket* nl, nlmsghdr* req, mnl_attr_cb_t cb, void* data) {
  if (mnl_socket_sendto(nl, req, req->nlmsg_len) < 0) return false;
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  const ssize_t n = mnl_socket_recvfrom(nl, buf.data(), buf.size());
  if (n <= 0) return false;
  struct Ctx {
    mnl_attr_cb_t cb;
    void* data;
  } ctx{cb, data};
  return mnl_cb_run(
             buf.data(), static_cast<std::size_t>(n), req->nlmsg_seq, mnl_socket_get_portid(nl),
             [](const nlmsghdr* nlh, void* d) {
               auto* c = static_cast<Ctx*>(d);
               return mnl_attr_parse(nlh, sizeof(genlmsghdr), c->cb, c->data);
             },
             &ctx) >= 0;
}

nlmsghdr* genl_request(char* buf, std::uint16_t family, std::uint8_t cmd, unsigned seq) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = family;
  nlh->nlmsg_flags = NLM_F_REQUEST;
  nlh->nlmsg_seq = seq;
  auto* g = static_cast<genlmsghdr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(genlmsghdr)));
  g->cmd = cmd;
  g->version = 1;
  return nlh;
}

// The netdev family's id and the id of its "mgmt" multicast group (0: none), asked on `nl`.
struct NetdevFamily {
  std::uint16_t id = 0;
  std::uint32_t mgmt = 0;
};
bool netdev_family(mnl_socket* nl, NetdevFamily& f) {
  char buf[256];
  nlmsghdr* req = genl_request(buf, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1);
  mnl_attr_put_strz(req, CTRL_ATTR_FAMILY_NAME, "netdev");
  const bool found = genl_ask(
      nl, req,
      [](const nlattr* a, void* d) {
        auto* fam = static_cast<NetdevFamily*>(d);
        if (mnl_attr_get_type(a) == CTRL_ATTR_FAMILY_ID && mnl_attr_validate(a, MNL_TYPE_U16) >= 0)
          fam->id = mnl_attr_get_u16(a);
        if (mnl_attr_get_type(a) == CTRL_ATTR_MCAST_GROUPS &&
            mnl_attr_validate(a, MNL_TYPE_NESTED) >= 0) {
          const auto* end =
              static_cast<const char*>(mnl_attr_get_payload(a)) + mnl_attr_get_payload_len(a);
          for (auto* group = static_cast<const nlattr*>(mnl_attr_get_payload(a));
               mnl_attr_ok(group, static_cast<int>(end - reinterpret_cast<const char*>(group)));
               group = mnl_attr_next(group)) {
            struct Group {
              const char* name = nullptr;
              std::uint32_t id = 0;
            } g;
            mnl_attr_parse_nested(
                group,
                [](const nlattr* x, void* gd) {
                  auto* gg = static_cast<Group*>(gd);
                  if (mnl_attr_get_type(x) == CTRL_ATTR_MCAST_GRP_NAME &&
                      mnl_attr_validate(x, MNL_TYPE_NUL_STRING) >= 0)
                    gg->name = mnl_attr_get_str(x);
                  if (mnl_attr_get_type(x) == CTRL_ATTR_MCAST_GRP_ID &&
                      mnl_attr_validate(x, MNL_TYPE_U32) >= 0)
                    gg->id = mnl_attr_get_u32(x);
                  return MNL_CB_OK;
                },
                &g);
            if (g.name && std::string_view(g.name) == "mgmt") fam->mgmt = g.id;
          }
        }
        return MNL_CB_OK;
      },
      &f);
  return found && f.id != 0;
}

}  // namespace

mnl_socket* watch_xdp_features() {
  mnl_socket* nl = mnl_socket_open2(NETLINK_GENERIC, SOCK_CLOEXEC);
  if (!nl) return nullptr;
  NetdevFamily family;
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) != 0 || !netdev_family(nl, family) ||
      family.mgmt == 0 ||
      mnl_socket_setsockopt(nl, NETLINK_ADD_MEMBERSHIP, &family.mgmt, sizeof family.mgmt) != 0) {
    mnl_socket_close(nl);
    return nullptr;
  }
  // (non-blocking from here: the caller drains it when it is readable)
  const int fd = mnl_socket_get_fd(nl);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return nl;
}

std::optional<std::uint64_t> xdp_features(unsigned ifindex) {
  mnl_socket* nl = mnl_socket_open2(NETLINK_GENERIC, SOCK_CLOEXEC);
  if (!nl) return std::nullopt;
  std::optional<std::uint64_t> out;
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) == 0) {
    char buf[256];
    NetdevFamily family;
    if (netdev_family(nl, family)) {
      nlmsghdr* req = genl_request(buf, family.id, kNetdevCmdDevGet, 2);
      mnl_attr_put_u32(req, kNetdevAttrIfindex, ifindex);
      std::uint64_t features = 0;
      bool seen = false;
      struct Got {
        std::uint64_t* features;
        bool* seen;
      } got{&features, &seen};
      if (genl_ask(
              nl, req,
              [](const nlattr* a, void* d) {
                auto* g = static_cast<Got*>(d);
                if (mnl_attr_get_type(a) == kNetdevAttrXdpFeatures &&
                    mnl_attr_validate(a, MNL_TYPE_U64) >= 0) {
                  *g->features = mnl_attr_get_u64(a);
                  *g->seen = true;
                }
                return MNL_CB_OK;
              },
              &got) &&
          seen)
        out = features;
    }
  }
  mnl_socket_close(nl);
  return out;
}

}  // namespace fdlinkd::netdev
