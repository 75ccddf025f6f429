#include "netlink.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <vector>

namespace fdlinkd::cni {

namespace {

std::string err_text(int e) {
  return std::strerror(e);
}

// One rtnetlink socket per request: fdlinkd-cni makes a handful of them.
class Rtnl {
 public:
  Rtnl() {
    nl_ = ::mnl_socket_open(NETLINK_ROUTE);
    if (!nl_ || ::mnl_socket_bind(nl_, 0, MNL_SOCKET_AUTOPID) < 0)
      throw NetlinkError("rtnetlink socket: " + err_text(errno));
    portid_ = ::mnl_socket_get_portid(nl_);
  }
  ~Rtnl() {
    if (nl_) ::mnl_socket_close(nl_);
  }
  Rtnl(const Rtnl&) = delete;
  Rtnl& operator=(const Rtnl&) = delete;

  nlmsghdr* start(std::uint16_t type, std::uint16_t flags) {
    nlmsghdr* h = ::mnl_nlmsg_put_header(buf_.data());
    h->nlmsg_type = type;
    // (NLM_F_ACK on every request: a GETLINK reply is one message without NLM_F_MULTI, and
    // the ACK after it is what says it is the last)
    h->nlmsg_flags = static_cast<std::uint16_t>(NLM_F_REQUEST | NLM_F_ACK | flags);
    h->nlmsg_seq = seq_ = static_cast<unsigned>(std::time(nullptr));
    return h;
  }

  /// Sends `h` and reads replies until the kernel is done; returns 0 or the errno it sent.
  int talk(nlmsghdr* h, mnl_cb_t cb = nullptr, void* data = nullptr) {
    if (::mnl_socket_sendto(nl_, h, h->nlmsg_len) < 0) return errno;
    std::vector<char> rx(MNL_SOCKET_BUFFER_SIZE * 4);
    for (;;) {
      const ssize_t n = ::mnl_socket_recvfrom(nl_, rx.data(), rx.size());
      if (n < 0) return errno;
      const int r = ::mnl_cb_run(rx.data(), static_cast<std::size_t>(n), seq_, portid_, cb, data);
      if (r < 0) return errno;
      if (r == MNL_CB_STOP) return 0;
    }
  }

 private:
  mnl_socket* nl_ = nullptr;
  unsigned portid_ = 0;
  unsigned seq_ = 0;
  std::vector<char> buf_ = std::vector<char>(MNL_SOCKET_BUFFER_SIZE);
};

struct Cidr {
  int family = AF_INET;
  unsigned char addr[16]{};
  unsigned prefix = 0;
  std::size_t len() const { return family == AF_INET ? 4 : 16; }
};

Cidr parse_cidr(const std::string& s) {
  Cidr c;
  const auto slash = s.find('/');
  const std::string ip = s.substr(0, slash);
  c.family = ip.find(':') == std::string::npos ? AF_INET : AF_INET6;
  if (::inet_pton(c.family, ip.c_str(), c.addr) != 1)
    throw NetlinkError("\"" + s + "\" is not an IP address");
  const unsigned max = c.family == AF_INET ? 32 : 128;
  c.prefix = max;
  if (slash != std::string::npos) {
    char* end = nullptr;
    const unsigned long p = std::strtoul(s.c_str() + slash + 1, &end, 10);
    if (*end != '\0' || p > max || end == s.c_str() + slash + 1)
      throw NetlinkError("\"" + s + "\" has a bad prefix length");
    c.prefix = static_cast<unsigned>(p);
  }
  return c;
}

int ifindex(const std::string& name) {
  auto l = find_link(name);
  if (!l) throw NetlinkError("no interface named " + name);
  return l->index;
}

int link_attr(const nlattr* a, void* data) {
  auto* info = static_cast<LinkInfo*>(data);
  switch (::mnl_attr_get_type(a)) {
    case IFLA_ADDRESS: {
      const auto* m = static_cast<const unsigned char*>(::mnl_attr_get_payload(a));
      if (::mnl_attr_get_payload_len(a) == 6) {
        char buf[18];
        std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3],
                      m[4], m[5]);
        info->mac = buf;
      }
      break;
    }
    case IFLA_MTU:
      if (::mnl_attr_validate(a, MNL_TYPE_U32) >= 0) info->mtu = ::mnl_attr_get_u32(a);
      break;
    default: break;
  }
  return MNL_CB_OK;
}

int link_msg(const nlmsghdr* h, void* data) {
  auto* info = static_cast<LinkInfo*>(data);
  const auto* ifm = static_cast<const ifinfomsg*>(::mnl_nlmsg_get_payload(h));
  info->index = ifm->ifi_index;
  info->up = (ifm->ifi_flags & IFF_UP) != 0;
  ::mnl_attr_parse(h, sizeof(ifinfomsg), link_attr, data);
  return MNL_CB_OK;
}

struct AddrQuery {
  int index;
  Cidr want;
  bool found = false;
};

int addr_attr(const nlattr* a, void* data) {
  auto* q = static_cast<AddrQuery*>(data);
  const auto t = ::mnl_attr_get_type(a);
  if ((t == IFA_LOCAL || t == IFA_ADDRESS) && ::mnl_attr_get_payload_len(a) == q->want.len() &&
      std::memcmp(::mnl_attr_get_payload(a), q->want.addr, q->want.len()) == 0)
    q->found = true;
  return MNL_CB_OK;
}

int addr_msg(const nlmsghdr* h, void* data) {
  auto* q = static_cast<AddrQuery*>(data);
  const auto* ifa = static_cast<const ifaddrmsg*>(::mnl_nlmsg_get_payload(h));
  if (static_cast<int>(ifa->ifa_index) != q->index || ifa->ifa_family != q->want.family ||
      ifa->ifa_prefixlen != q->want.prefix)
    return MNL_CB_OK;
  ::mnl_attr_parse(h, sizeof(ifaddrmsg), addr_attr, q);
  return MNL_CB_OK;
}

}  // namespace

InNetns::InNetns(const std::string& path) {
  home_ = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home_ < 0)
    throw NetlinkError("cannot open this process's network namespace: " + err_text(errno));
  const int fd = open_netns(path);
  const int r = ::setns(fd, CLONE_NEWNET);
  const int e = errno;
  ::close(fd);
  if (r != 0) {
    ::close(home_);
    throw NetlinkError("cannot enter network namespace " + path + ": " + err_text(e));
  }
}

InNetns::~InNetns() {
  if (::setns(home_, CLONE_NEWNET) != 0) std::abort();  // (never left in the pod's namespace)
  ::close(home_);
}

int open_netns(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw NetlinkError("cannot open network namespace " + path + ": " + err_text(errno));
  return fd;
}

std::optional<LinkInfo> find_link(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ) return std::nullopt;
  Rtnl nl;
  nlmsghdr* h = nl.start(RTM_GETLINK, 0);
  auto* ifm = static_cast<ifinfomsg*>(::mnl_nlmsg_put_extra_header(h, sizeof(ifinfomsg)));
  ifm->ifi_family = AF_UNSPEC;
  ::mnl_attr_put_strz(h, IFLA_IFNAME, name.c_str());
  LinkInfo info;
  const int e = nl.talk(h, link_msg, &info);
  if (e == ENODEV) return std::nullopt;
  if (e != 0) throw NetlinkError("cannot look up interface " + name + ": " + err_text(e));
  return info;
}

void add_veth(const std::string& host, const std::string& peer, int peer_netns_fd, unsigned mtu) {
  Rtnl nl;
  nlmsghdr* h = nl.start(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
  auto* ifm = static_cast<ifinfomsg*>(::mnl_nlmsg_put_extra_header(h, sizeof(ifinfomsg)));
  ifm->ifi_family = AF_UNSPEC;
  ::mnl_attr_put_strz(h, IFLA_IFNAME, host.c_str());
  if (mtu) ::mnl_attr_put_u32(h, IFLA_MTU, mtu);
  nlattr* info = ::mnl_attr_nest_start(h, IFLA_LINKINFO);
  ::mnl_attr_put_strz(h, IFLA_INFO_KIND, "veth");
  nlattr* data = ::mnl_attr_nest_start(h, IFLA_INFO_DATA);
  nlattr* p = ::mnl_attr_nest_start(h, VETH_INFO_PEER);
  auto* pifm = static_cast<ifinfomsg*>(::mnl_nlmsg_put_extra_header(h, sizeof(ifinfomsg)));
  pifm->ifi_family = AF_UNSPEC;
  ::mnl_attr_put_strz(h, IFLA_IFNAME, peer.c_str());
  ::mnl_attr_put_u32(h, IFLA_NET_NS_FD, static_cast<std::uint32_t>(peer_netns_fd));
  if (mtu) ::mnl_attr_put_u32(h, IFLA_MTU, mtu);
  ::mnl_attr_nest_end(h, p);
  ::mnl_attr_nest_end(h, data);
  ::mnl_attr_nest_end(h, info);
  if (const int e = nl.talk(h))
    throw NetlinkError("cannot make veth " + host + " (" + peer + " in the pod): " + err_text(e));
}

bool delete_link(const std::string& name) {
  if (!find_link(name)) return false;
  Rtnl nl;
  nlmsghdr* h = nl.start(RTM_DELLINK, NLM_F_ACK);
  auto* ifm = static_cast<ifinfomsg*>(::mnl_nlmsg_put_extra_header(h, sizeof(ifinfomsg)));
  ifm->ifi_family = AF_UNSPEC;
  ::mnl_attr_put_strz(h, IFLA_IFNAME, name.c_str());
  const int e = nl.talk(h);
  if (e == ENODEV) return false;
  if (e != 0) throw NetlinkError("cannot delete interface " + name + ": " + err_text(e));
  return true;
}

void set_up(const std::string& name) {
  Rtnl nl;
  nlmsghdr* h = nl.start(RTM_NEWLINK, NLM_F_ACK);
  auto* ifm = static_cast<ifinfomsg*>(::mnl_nlmsg_put_extra_header(h, sizeof(ifinfomsg)));
  ifm->ifi_family = AF_UNSPEC;
  ifm->ifi_index = ifindex(name);
  ifm->ifi_flags = IFF_UP;
  ifm->ifi_change = IFF_UP;
  if (const int e = nl.talk(h)) throw NetlinkError("cannot set " + name + " up: " + err_text(e));
}

void add_address(const std::string& name, const std::string& cidr) {
  const Cidr c = parse_cidr(cidr);
  Rtnl nl;
  nlmsghdr* h = nl.start(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
  auto* ifa = static_cast<ifaddrmsg*>(::mnl_nlmsg_put_extra_header(h, sizeof(ifaddrmsg)));
  ifa->ifa_family = static_cast<std::uint8_t>(c.family);
  ifa->ifa_prefixlen = static_cast<std::uint8_t>(c.prefix);
  ifa->ifa_index = static_cast<std::uint32_t>(ifindex(name));
  ::mnl_attr_put(h, IFA_LOCAL, c.len(), c.addr);
  ::mnl_attr_put(h, IFA_ADDRESS, c.len(), c.addr);
  if (c.family == AF_INET6) ::mnl_attr_put_u32(h, IFA_FLAGS, IFA_F_NODAD);  // usable at once
  const int e = nl.talk(h);
  if (e != 0 && e != EEXIST)
    throw NetlinkError("cannot add address " + cidr + " to " + name + ": " + err_text(e));
}

bool has_address(const std::string& name, const std::string& cidr) {
  AddrQuery q{ifindex(name), parse_cidr(cidr)};
  Rtnl nl;
  nlmsghdr* h = nl.start(RTM_GETADDR, NLM_F_DUMP);
  auto* ifa = static_cast<ifaddrmsg*>(::mnl_nlmsg_put_extra_header(h, sizeof(ifaddrmsg)));
  ifa->ifa_family = static_cast<std::uint8_t>(q.want.family);
  if (const int e = nl.talk(h, addr_msg, &q))
    throw NetlinkError("cannot list the addresses of " + name + ": " + err_text(e));
  return q.found;
}

void add_route(const std::string& name, const std::string& dst, const std::string& gw) {
  const Cidr d = parse_cidr(dst);
  Rtnl nl;
  nlmsghdr* h = nl.start(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
  auto* rtm = static_cast<rtmsg*>(::mnl_nlmsg_put_extra_header(h, sizeof(rtmsg)));
  rtm->rtm_family = static_cast<std::uint8_t>(d.family);
  rtm->rtm_dst_len = static_cast<std::uint8_t>(d.prefix);
  rtm->rtm_table = RT_TABLE_MAIN;
  rtm->rtm_protocol = RTPROT_BOOT;
  rtm->rtm_scope = gw.empty() ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
  rtm->rtm_type = RTN_UNICAST;
  if (d.prefix) ::mnl_attr_put(h, RTA_DST, d.len(), d.addr);
  if (!gw.empty()) {
    const Cidr g = parse_cidr(gw);
    if (g.family != d.family)
      throw NetlinkError("route to " + dst + ": gateway " + gw + " is of the other IP family");
    ::mnl_attr_put(h, RTA_GATEWAY, g.len(), g.addr);
  }
  ::mnl_attr_put_u32(h, RTA_OIF, static_cast<std::uint32_t>(ifindex(name)));
  const int e = nl.talk(h);
  if (e != 0 && e != EEXIST)
    throw NetlinkError("cannot add route to " + dst + " via " + (gw.empty() ? name : gw) + ": " +
                       err_text(e));
}

}  // namespace fdlinkd::cni
