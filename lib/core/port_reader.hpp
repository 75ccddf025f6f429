// PortReader: what reads one fd of a link (the dispatcher), as the link sees it.
//
// A link hands each of its fds to a reader when it starts, and again when a peer connects (a
// unix listener) or the fd is reopened; it hears from the reader when the fd ends. The link
// knows only this interface, not the dispatcher (dispatch/ is above link/: a link never calls
// up into it by name).
#pragma once

#include <boost/asio/io_context.hpp>

namespace fdlinkd {

class PortReader {
 public:
  virtual ~PortReader() = default;
  /// Starts reading `fd` (owned by the link). On the reader's io thread, or before it runs.
  virtual void attach(int fd) = 0;
  /// Stops reading; the fd stays open.
  virtual void detach() = 0;
  /// The io_context of the worker that reads (for the link's own waits: a unix listener).
  virtual boost::asio::io_context& io() = 0;
};

}  // namespace fdlinkd
