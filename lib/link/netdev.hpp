// Small helpers for network interfaces in the calling thread's namespace.
#pragma once

#include <string>

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

}  // namespace fdlinkd::netdev
