// Small helpers for network interfaces in the calling thread's namespace.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

struct mnl_socket;

namespace fdlinkd::netdev {

/// 0 when there is no such interface.
unsigned index_of(const std::string& name);
/// Whether it exists and has IFF_UP.
bool is_up(const std::string& name);
/// Sets IFF_UP. Throws std::runtime_error.
void set_up(const std::string& name);
/// Sets the interface MTU. Throws std::runtime_error.
void set_mtu(const std::string& name, unsigned mtu);
/// The interface MTU, or 0 when it cannot be read.
unsigned mtu_of(const std::string& name);
/// The receive queues in use (ETHTOOL_GCHANNELS: combined and RX-only), 1 when it cannot say.
unsigned rx_queues(const std::string& name);
/// The driver's name (ETHTOOL_GDRVINFO: "veth", "mlx5_core", ...), or "".
std::string driver_of(const std::string& name);

/// XDP actions the interface supports now (the netdev generic netlink family, Linux 6.3+):
/// bits of enum netdev_xdp_act. nullopt when the kernel cannot say.
std::optional<std::uint64_t> xdp_features(unsigned ifindex);
/// The bit of xdp_features: frames redirected in XDP can leave through the interface (a veth:
/// only while its peer has GRO on or an XDP program of its own).
inline constexpr std::uint64_t kXdpNdoXmit = 1u << 2;
/// A generic netlink socket of the current network namespace that hears when any of its
/// interfaces' xdp_features change (the netdev family's "mgmt" group, Linux 6.3+): a veth
/// whose peer turns GRO on or off. Non-blocking; nullptr where the kernel has no such group.
mnl_socket* watch_xdp_features();

}  // namespace fdlinkd::netdev
