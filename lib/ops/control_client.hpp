// ControlClient: one request to a running fdlinkd's control socket, and its reply
// (the protocol is in control_socket.hpp). fdlinkctl and fdlinkd-cni use it.
#pragma once

#include <boost/json/object.hpp>
#include <string>

namespace fdlinkd {

/// Why a request got no reply: the daemon is not there, the path is bad, it timed out.
struct ControlClientError {
  bool usage = false;  ///< the caller's mistake (a path too long), not the daemon's absence
  std::string message;
};

/// Sends `request` to the control socket at `path` and waits at most `timeout_ms` for the
/// reply line. Throws ControlClientError (with a hint for the operator) when there is none.
boost::json::object ask_daemon(const std::string& path, const boost::json::object& request,
                               int timeout_ms);

}  // namespace fdlinkd
