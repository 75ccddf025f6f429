// Netlink for fdlinkd-cni (rtnetlink through libmnl): the pod's veth, its addresses and
// routes, in whichever network namespace the calling thread is in.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

namespace fdlinkd::cni {

struct NetlinkError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Enters a network namespace (a path such as /run/netns/x or /proc/PID/ns/net) for as long
/// as it lives, and goes back to the one before. fdlinkd-cni has one thread.
class InNetns {
 public:
  explicit InNetns(const std::string& path);
  ~InNetns();
  InNetns(const InNetns&) = delete;
  InNetns& operator=(const InNetns&) = delete;

 private:
  int home_ = -1;
};

/// An open file descriptor of a network namespace (for IFLA_NET_NS_FD).
int open_netns(const std::string& path);

struct LinkInfo {
  int index = 0;
  std::string mac;  ///< "02:..:.."
  unsigned mtu = 0;
  bool up = false;
};

/// The interface `name` in the current namespace, or nullopt.
std::optional<LinkInfo> find_link(const std::string& name);
/// Makes a veth pair: `host` here and `peer` in the namespace `peer_netns_fd`, both `mtu`
/// (0: the kernel's default).
void add_veth(const std::string& host, const std::string& peer, int peer_netns_fd, unsigned mtu);
/// Deletes interface `name`; false if there is none.
bool delete_link(const std::string& name);
void set_up(const std::string& name);
/// Adds "10.1.2.3/24" (or an IPv6 one) to `name`.
void add_address(const std::string& name, const std::string& cidr);
/// Whether `name` has the address "10.1.2.3/24".
bool has_address(const std::string& name, const std::string& cidr);
/// Adds a route to `dst` ("0.0.0.0/0") through `gw` ("" : on-link) out of `name`.
void add_route(const std::string& name, const std::string& dst, const std::string& gw);

}  // namespace fdlinkd::cni
