// link_keys: the keys several link types share, read the same way (and with the same
// messages) by each type that takes them. A type's own reader (link/<type>.cpp) calls these.
#pragma once

#include <string>
#include <string_view>

#include "config/config.hpp"
#include "config/reader.hpp"

namespace fdlinkd {

/// An interface name the kernel would take: 1-15 bytes, no '/', ':', spaces or control
/// characters, not "." or "..".
bool valid_ifname(std::string_view s);

/// `interface`: required or not; the link follows it (goes down and up with it) when `follow`.
/// Returns the name ("" when absent or invalid, reported).
std::string read_interface(TableReader& r, LinkConfig& l, bool required, bool follow);

/// `dispatch`: readv, recvmmsg (sockets only: l.socket) or packet_mmap (`rings`: an af_packet
/// link's PACKET_MMAP ring), into l.dispatch.
void read_dispatch(TableReader& r, LinkConfig& l, bool rings);

/// `fds` (1-64), into l.fds.
void read_fds(TableReader& r, LinkConfig& l);

/// `gso_max_size` (1518 B - 64 KiB), into l.gso_max_size.
void read_gso_max_size(TableReader& r, LinkConfig& l);

/// `tx_backlog` (0-65536; `backlog` when absent) and `tx_stall_timeout` (1ms-60s): a link to a
/// local peer that waits for it (back-pressure).
void read_backpressure(TableReader& r, LinkConfig& l, unsigned backlog);

/// A unix socket's path under `key`: absolute, at most 107 bytes, no control characters; ""
/// when absent or invalid (reported).
std::string read_socket_path(TableReader& r, std::string_view key, bool required);

/// The file of a socket fdlinkd makes (unix, vhost_user): `socket_mode` (0o600 or "0600", at
/// most 0777) and `socket_group` (a group name, resolved now).
struct SocketFile {
  unsigned mode = 0600;
  std::string group;  ///< empty: fdlinkd's own
  int gid = -1;
};
void read_socket_file(TableReader& r, SocketFile& f);

/// Refuses tx_backlog and tx_stall_timeout on a link that is a wire: `what` says why
/// ("an af_packet link is a wire").
void reject_backpressure(TableReader& r, std::string_view what);

}  // namespace fdlinkd
