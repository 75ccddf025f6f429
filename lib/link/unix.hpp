// unix: frames through a unix socket.
//
// socket = "seqpacket" (default): one frame per message. fdlinkd listens on `path`; one peer
// process connects and exchanges frames over the connection. When the peer goes away the link
// waits for the next one; a second peer while one is connected is refused (closed at once,
// logged).
// socket = "dgram": one frame per datagram. fdlinkd binds `path` and reads datagrams from
// anyone; it sends to `peer` (a path the other process bound). Without `peer` the link only
// receives.
// socket = "stream": QEMU's `-netdev stream`, passt's and libkrun's protocol: each frame after
// its 32-bit big-endian length on a SOCK_STREAM connection (stream_framer.hpp, read by
// StreamRxQueue in unix.cpp; writer/stream.hpp). fdlinkd listens on `path` as for seqpacket, or
// with `connect = true` connects to `path` (QEMU with server=on, passt) and connects again, after
// 100 ms doubling up to 5 s, whenever the peer is not there or goes away.
//
// A stale socket file at `path` (left by a crash: a connect to it is refused) is replaced; a
// live one (another process listening) is never touched, and the link fails to open. The
// file gets `socket_mode` (default 0600) whatever the umask, and `socket_group` if set;
// fdlinkd removes it on exit. On a seqpacket link a zero-length message is a runt, counted
// and skipped; only the peer hanging up ends the connection.
// Frames are Ethernet frames, as on a TAP (qemu's `-netdev stream/dgram` convention).
//
// Back-pressure: the peer is a local process (a VM, a container), so when it is full the frames
// wait for it (tx_backlog per worker, TxQueue) and the links that feed it stop reading
// meanwhile. fdlinkd waits for room with epoll: on a dup of the connection (stream, seqpacket),
// or for dgram on a probe socket connected to `peer` (an unconnected datagram socket is always
// writable; a connected one is writable when its peer's queue has room).
//
// Keys: path (required), socket, peer, connect, listen, socket_mode, socket_group, plus the
// common link keys.
#pragma once

#include <sys/un.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <vector>

#include "config/link_keys.hpp"
#include "link/link.hpp"
#include "link/link_types.hpp"
#include "writer/stream.hpp"

namespace fdlinkd {

enum class UnixSocket { seqpacket, dgram, stream };

struct UnixOptions : LinkOptions {
  std::string path;
  UnixSocket socket = UnixSocket::seqpacket;
  std::string peer;      ///< dgram: where frames are sent (else: the last sender)
  bool connect = false;  ///< stream: fdlinkd connects to `path` (else it listens)
  SocketFile file;       ///< mode and group of the socket file fdlinkd makes
};

class UnixLink : public Link {
 public:
  static const LinkType kType;

  explicit UnixLink(const LinkConfig& config);
  ~UnixLink() override;

  std::unique_ptr<RxQueue> make_rx_queue(std::size_t port, Worker& w, Batch& batch) override;
  void start(const std::vector<PortReader*>& readers) override;
  void port_closed(std::size_t i, PortReader& r) override;
  void stop() override;
  bool zero_read_is_eof(int fd) const override;
  std::string describe() const override;
  const UnixOptions& options() const { return o_; }

 protected:
  void open_fds() override;
  const sockaddr* tx_address(socklen_t& len) const override;
  void send_batch(Worker& w, Batch& batch) override;
  bool flush_tx(TxQueue& tq, std::size_t q, int fd, int& err, CounterValues& tally) override;
  int tx_watch_fd(std::size_t q, int fd) override;
  void tx_watch_rearm(std::size_t q, int watch_fd) override;
  DropReason tx_gone_reason() const override { return DropReason::no_peer; }

 private:
  bool stream() const;
  const UnixOptions& o_;
  void wait_for_peer();
  void accept_peer();
  /// connect = true: one attempt; on failure, the next after the backoff.
  void try_connect();
  int listen_fd_ = -1;
  int retired_fd_ = -1;  ///< the last peer's fd, closed when the next peer arrives
  bool bound_ = false;
  sockaddr_un peer_{};
  socklen_t peer_len_ = 0;
  PortReader* reader_ = nullptr;
  std::unique_ptr<boost::asio::posix::stream_descriptor> acceptor_;
  // connect = true
  std::unique_ptr<boost::asio::steady_timer> retry_;
  std::chrono::milliseconds backoff_{100};
  int connect_error_ = 0;  ///< the last failed attempt's errno (logged once per kind)
  // socket = "stream": one writer at a time (workers share the connection), per batch.
  std::mutex tx_mutex_;
  std::unique_ptr<StreamWriter> writer_;
};

}  // namespace fdlinkd
