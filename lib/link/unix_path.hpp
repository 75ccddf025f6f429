// unix_path: the file of a unix socket that a link listens on or connects to (unix,
// vhost_user): its address, whether a process serves it, and binding it safely.
//
// A stale socket file at the path (left by a crash: a connect to it is refused) is replaced; a
// live one (another process listening) is never touched, nor is anything that is not a
// socket. The file gets its mode whatever the umask (it never exists with a wider one), and
// its group if one is set.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <string>

#include "config/link_keys.hpp"

namespace fdlinkd {

/// The address of `path` (at most 107 bytes: the config checked it) and its length.
sockaddr_un unix_address(const std::string& path, socklen_t& len);

/// Binds `fd` (of socket `type`) to `path` with the mode and group of `file`, replacing a
/// stale socket file. Throws LinkError, naming the path, when the path is in use or is not a
/// socket, or a system call fails.
void bind_unix_path(int fd, const std::string& path, int type, const SocketFile& file);

/// A listening socket of `type` bound to `path` that systemd passed to fdlinkd (a .socket unit
/// of its service: LISTEN_FDS), as a new fd of fdlinkd's own (systemd's stays open, for the
/// next link that takes it after a reload); -1 when there is none.
int systemd_socket(const std::string& path, int type);

/// Accepts one waiting connection on listening socket `listen_fd`, nonblocking and
/// close-on-exec (EINTR retried): its fd, or -1 with `err` 0 when none is waiting, or -1 with
/// `err` set on a failure.
int accept_unix(int listen_fd, int& err);

/// Connects `fd` to `path`; 0, or the errno.
int connect_unix_path(int fd, const std::string& path);

}  // namespace fdlinkd
