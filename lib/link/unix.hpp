// unix: frames through a boundary-preserving unix socket, one frame per message.
//
// socket = "seqpacket" (default): fdlinkd listens on `path`; one peer process connects and
// exchanges frames over the connection. When the peer goes away the link waits for the next
// one; a second peer while one is connected is refused (closed at once, logged).
// socket = "dgram": fdlinkd binds `path` and reads datagrams from anyone; it sends to `peer`
// (a path the other process bound). Without `peer` the link only receives.
//
// A stale socket file at `path` (left by a crash: a connect to it is refused) is replaced; a
// live one (another process listening) is never touched, and the link fails to open. The
// file gets `socket_mode` (default 0600) whatever the umask, and `socket_group` if set;
// fdlinkd removes it on exit. On a seqpacket link a zero-length message is a runt, counted
// and skipped; only the peer hanging up ends the connection.
// Frames are Ethernet frames, as on a TAP (qemu's `-netdev stream/dgram` convention).
//
// Keys: path (required), socket, peer, socket_mode, socket_group, plus the common link keys.
#pragma once

#include <sys/un.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <memory>

#include "link/link.hpp"

namespace fdlinkd {

class UnixLink : public Link {
 public:
  using Link::Link;
  ~UnixLink() override;

  void start(const std::vector<Dispatcher*>& dispatchers) override;
  void port_closed(std::size_t i, Dispatcher& d) override;
  void stop() override;
  bool zero_read_is_eof(int fd) const override;

 protected:
  void open_fds() override;
  const sockaddr* tx_address(socklen_t& len) const override;

 private:
  void wait_for_peer();
  void accept_peer();

  int listen_fd_ = -1;
  int retired_fd_ = -1;  ///< the last peer's fd, closed when the next peer arrives
  bool bound_ = false;
  sockaddr_un peer_{};
  socklen_t peer_len_ = 0;
  Dispatcher* dispatcher_ = nullptr;
  std::unique_ptr<boost::asio::posix::stream_descriptor> acceptor_;
};

}  // namespace fdlinkd
