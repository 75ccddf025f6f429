// ControlSocket: the unix socket fdlinkctl talks to.
//
// One JSON object per line in, one per line out, any number of requests per connection, in
// order:   -> {"command": "stats", "args": ["a"]}
//          <- {"ok": true, "result": {...}}   or   {"ok": false, "error": "..."}
// The socket file is made mode 0600 (0660 with a group), so the kernel refuses anyone else's
// connect. The handler runs on the control thread and replies when it is done (a reload replies
// once it has finished). A request line longer than kMaxRequest closes the connection.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/json/object.hpp>
#include <functional>
#include <string>

namespace fdlinkd {

class ControlSocket {
 public:
  static constexpr std::size_t kMaxRequest = 64 * 1024;
  using Reply = std::function<void(boost::json::object)>;
  using Handler = std::function<void(const boost::json::object& request, Reply reply)>;

  /// Binds `path` (gid >= 0: group `gid`, mode 0660; else 0600) and starts accepting on `io`.
  /// Throws std::runtime_error with a message for the operator (path in use by a live
  /// daemon, directory missing and not creatable, ...).
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
