// ControlSocket: the unix socket fdlinkctl talks to.
//
// One JSON object per line in, one per line out, any number of requests per connection, in
// order:   -> {"command": "stats", "args": ["a"]}
//          <- {"ok": true, "result": {...}}   or   {"ok": false, "error": "..."}
// The socket file is made mode 0600 (0660 with a group), so the kernel refuses anyone else's
// connect. The handler runs on the control thread and replies when it is done (a reload replies
// once it has finished). A request line longer than kMaxRequest closes the connection.
//
// One daemon owns a control socket path: ControlLock holds a lock on `PATH.lock` from
// before any link opens until the daemon exits, so of two daemons started at once on one path
// exactly one runs (a connect-and-see probe on the socket races: both can see it free, or both
// see the other's).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/json/object.hpp>
#include <functional>
#include <string>

namespace fdlinkd {

/// The lock file beside a control socket (`PATH.lock`), held exclusively while this object
/// lives (a POSIX record lock: the kernel tells a second daemon who holds it).
class ControlLock {
 public:
  /// Creates the socket's directory if needed and takes the lock, or throws
  /// std::runtime_error saying that another fdlinkd (pid N) is running on `socket_path`.
  explicit ControlLock(const std::string& socket_path);
  ~ControlLock();
  ControlLock(const ControlLock&) = delete;
  ControlLock& operator=(const ControlLock&) = delete;

 private:
  int fd_ = -1;
};

class ControlSocket {
 public:
  static constexpr std::size_t kMaxRequest = 64 * 1024;
  using Reply = std::function<void(boost::json::object)>;
  using Handler = std::function<void(const boost::json::object& request, Reply reply)>;

  /// Binds `path` (gid >= 0: group `gid`, mode 0660; else 0600) and starts accepting on `io`.
  /// The caller holds its ControlLock: a socket file there is a stale one and is replaced.
  /// Throws std::runtime_error with a message for the operator (path in use by a daemon that
  /// takes no lock, directory missing and not creatable, ...).
  ControlSocket(boost::asio::io_context& io, std::string path, int gid, Handler handler);
  /// Stops accepting and removes the socket file.
  ~ControlSocket();
  ControlSocket(const ControlSocket&) = delete;
  ControlSocket& operator=(const ControlSocket&) = delete;

 private:
  void accept();

  std::string path_;
  Handler handler_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
};

/// {"ok": false, "error": message}
boost::json::object error_reply(std::string_view message);
/// {"ok": true, "result": result}
boost::json::object ok_reply(boost::json::value result);

}  // namespace fdlinkd
