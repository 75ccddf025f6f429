#include "link/unix.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "config/daemon.hpp"
#include "config/link_keys.hpp"
#include "core/log.hpp"
#include "core/worker.hpp"
#include "link/rx.hpp"
#include "link/stream_framer.hpp"
#include "link/unix_path.hpp"
#include "writer/stream.hpp"

namespace fdlinkd {

namespace asio = boost::asio;

namespace {

int socket_type(UnixSocket s) {
  return s == UnixSocket::seqpacket ? SOCK_SEQPACKET
         : s == UnixSocket::stream  ? SOCK_STREAM
                                    : SOCK_DGRAM;
}

// Frames a unix link keeps per worker for a full peer: what one batch of 64 can become once
// its GSO super-frames (64 KiB, from an af_packet or TAP link with vnet headers) are cut into
// 1500-byte segments for a peer that takes no virtio-net header: 64 x 45, rounded up. The
// peer may fill part way through such a batch, and the rest must wait, not drop: with 256,
// 56 of 4357 frames toward a slow QEMU dgram guest were dropped (tx_backlog_full). About 6 MB
// per worker, made the first time the peer is full.
constexpr unsigned kDefaultBacklog = 4096;

// --- keys ------------------------------------------------------------------------------------

std::shared_ptr<const LinkOptions> read(TableReader& lr, LinkConfig& u) {
  auto o = std::make_shared<UnixOptions>();
  UnixOptions& l = *o;
  const std::string& label = lr.what();
  ConfigErrors& errors = lr.errors();
  const std::string no = "a unix link does not take it";
  u.socket = true;
  l.path = read_socket_path(lr, "path", true);
  if (auto s = lr.choice("socket", {"seqpacket", "dgram", "stream"}))
    l.socket = *s == "dgram"    ? UnixSocket::dgram
               : *s == "stream" ? UnixSocket::stream
                                : UnixSocket::seqpacket;
  // stream: `listen = true` (the default) or `connect = true`, not both.
  const auto listen = lr.boolean("listen");
  const auto connect = lr.boolean("connect");
  if ((listen || connect) && l.socket != UnixSocket::stream) {
    errors.add(lr.where(listen ? "listen" : "connect"),
               std::string(listen ? "listen" : "connect") + " in " + label +
                   " needs socket = \"stream\" (a seqpacket link listens, a dgram link binds)");
  } else if (listen && connect && *listen == *connect) {
    errors.add(lr.where("connect"),
               "listen and connect in " + label + " say the same thing twice: give one of them");
  } else {
    l.connect = connect ? *connect : (listen && !*listen);
  }
  if (lr.has("peer") && l.socket != UnixSocket::dgram) {
    lr.skip("peer");
    errors.add(lr.where("peer"), "peer in " + label +
                                     " needs socket = \"dgram\" (a seqpacket link sends "
                                     "to whoever connected)");
  } else {
    l.peer = read_socket_path(lr, "peer", false);
  }
  if (l.connect) {
    for (auto k : {"socket_mode", "socket_group"})
      lr.reject(k, "fdlinkd does not make the socket it connects to");
  } else {
    read_socket_file(lr, l.file);
  }
  lr.reject("interface", no + " (unix links use path)");
  lr.reject("vnet_hdr", "virtio-net headers belong to TAP/TUN devices and AF_PACKET sockets");
  lr.reject("gso_max_size", "a unix link never receives GSO super-frames");
  if (auto v = lr.integer("fds", 1, 64); v && *v != 1)
    errors.add(lr.where("fds"), "fds = " + std::to_string(*v) + " in " + label +
                                    ": a unix link has one socket (for its one peer); use 1");
  read_dispatch(lr, u, false);
  if (l.socket == UnixSocket::stream && u.dispatch == DispatchMode::recvmmsg)
    errors.add(lr.where("dispatch"),
               "dispatch = \"recvmmsg\" in " + label +
                   " reads messages; a stream link reads bytes and cuts them into frames: use "
                   "\"readv\"");
  read_backpressure(lr, u, kDefaultBacklog);
  return o;
}

constexpr ConfigKey kKeys[] = {
    {"path", "the socket file (required)"},
    {"socket", "seqpacket, dgram or stream (seqpacket)"},
    {"connect", "stream: fdlinkd connects to path (false: it listens)"},
    {"listen", "stream: fdlinkd listens on path (the default)"},
    {"peer", "dgram: the path frames are sent to"},
    {"socket_mode", "mode of the socket file (0600)"},
    {"socket_group", "group of the socket file"},
    {"fds", "1"},
    {"dispatch", "readv or recvmmsg (readv)"},
    {"tx_backlog", "frames kept per worker while the peer is full (4096)"},
    {"tx_stall_timeout", "a peer that takes nothing this long stops holding back (1s)"},
};

std::unique_ptr<Link> make(const LinkConfig& c) {
  return std::make_unique<UnixLink>(c);
}

// A stream socket (QEMU's -netdev stream, passt): reads what is there into one buffer and
// cuts it at each 32-bit big-endian length (StreamFramer); the batch's frames point into that
// buffer, and a frame split across reads is moved to the front once the batch is sent.
class StreamRxQueue : public RxQueue {
 public:
  StreamRxQueue(UnixLink& link, Batch& batch)
      : link_(link),
        limits_(rx_limits(link, batch.slot_capacity())),
        framer_(std::make_unique<StreamFramer>(link.config().rx_capacity())) {}
  void attach(int fd) override {
    fd_ = fd;
    framer_->reset();  // (a new connection starts at a frame)
  }
  RxEnd receive(Batch& batch, CounterValues& tally) override {
    const RxEnd end = read(batch, tally);
    stamp_now(batch);
    return end;
  }

 private:
  RxEnd read(Batch& batch, CounterValues& tally);

  UnixLink& link_;
  RxLimits limits_;
  std::unique_ptr<StreamFramer> framer_;
  int fd_ = -1;
  int last_error_ = 0;
};

RxEnd StreamRxQueue::read(Batch& batch_, CounterValues& tally) {
  framer_->compact();  // the last batch is sent: keep only a frame not yet complete
  for (;;) {
    std::uint8_t* data = nullptr;
    std::size_t len = 0;
    while (!batch_.full()) {
      const auto next = framer_->next(data, len);
      if (next == StreamFramer::Next::need_more) break;
      if (next == StreamFramer::Next::bad_length) {
        ++tally.rx_errors;
        log::warn("unix_protocol_error", "stream frame length out of range: closing the connection",
                  {{"link", link_.name()},
                   {"path", link_.options().path},
                   {"length", len},
                   {"max", link_.config().rx_capacity()}});
        return RxEnd::closed;
      }
      accept_frame(batch_, limits_, data, len, false, tally, false);
    }
    // A full batch, or frames held in a buffer with no room left: send them first.
    if (batch_.full() || framer_->space_left() == 0) return RxEnd::full;
    const ssize_t n = ::read(fd_, framer_->space(), framer_->space_left());
    if (n < 0) {
      if (errno == EINTR) continue;
      return rx_error(errno, tally, link_, 0, last_error_);
    }
    if (n == 0) {
      if (framer_->buffered()) {
        ++tally.rx_errors;
        log::warn("unix_protocol_error", "the peer hung up in the middle of a frame",
                  {{"link", link_.name()},
                   {"path", link_.options().path},
                   {"bytes", framer_->buffered()}});
      }
      return RxEnd::closed;
    }
    last_error_ = 0;
    framer_->commit(static_cast<std::size_t>(n));
  }
}

}  // namespace

const LinkType UnixLink::kType = {
    {"unix", "a unix socket: seqpacket, dgram, or stream (QEMU, passt)", kKeys, read}, make};

UnixLink::UnixLink(const LinkConfig& config) : Link(config), o_(config_.options_as<UnixOptions>()) {
  tx_always_ = stream();  // (it waits for room to finish a frame a write cut short)
  set_workers(workers_);
}

std::unique_ptr<RxQueue> UnixLink::make_rx_queue(std::size_t port, Worker& w, Batch& batch) {
  if (stream()) return std::make_unique<StreamRxQueue>(*this, batch);
  return Link::make_rx_queue(port, w, batch);
}

std::string UnixLink::describe() const {
  return "unix " + o_.path + (config_.netns.empty() ? "" : " (netns " + config_.netns + ")");
}

UnixLink::~UnixLink() {
  if (acceptor_) acceptor_->release();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (retired_fd_ >= 0) ::close(retired_fd_);
  if (bound_) ::unlink(o_.path.c_str());
}

bool UnixLink::stream() const {
  return o_.socket == UnixSocket::stream;
}

void UnixLink::stop() {
  if (retry_) retry_->cancel();
  if (acceptor_) {
    boost::system::error_code ec;
    acceptor_->cancel(ec);
    acceptor_->release();
  }
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
  if (bound_) ::unlink(o_.path.c_str());
  bound_ = false;
}

void UnixLink::open_fds() {
  if (stream()) {
    writer_ = std::make_unique<StreamWriter>(config_.wire_capacity());
    if (o_.connect) return;  // start() connects
  }
  const int type = socket_type(o_.socket);
  const bool listens = type != SOCK_DGRAM;
  const int fd = ::socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw LinkError("unix socket: " + errno_text(errno));
  if (listens)
    listen_fd_ = fd;
  else
    ports_[0]->fd = fd;

  bind_unix_path(fd, o_.path, type, o_.file);
  bound_ = true;
  if (listens && ::listen(fd, 4) != 0)
    throw LinkError("cannot listen on " + o_.path + ": " + errno_text(errno));
  if (!o_.peer.empty()) peer_ = unix_address(o_.peer, peer_len_);
}

bool UnixLink::zero_read_is_eof(int fd) const {
  if (stream()) return true;  // a stream has no empty messages
  return o_.socket == UnixSocket::seqpacket && peer_hung_up(fd);
}

const sockaddr* UnixLink::tx_address(socklen_t& len) const {
  len = peer_len_;
  return peer_len_ ? reinterpret_cast<const sockaddr*>(&peer_) : nullptr;
}

void UnixLink::start(const std::vector<PortReader*>& readers) {
  if (o_.socket == UnixSocket::dgram) {
    Link::start(readers);
    return;
  }
  reader_ = readers[0];
  if (stream() && o_.connect) {
    retry_ = std::make_unique<asio::steady_timer>(reader_->io());
    try_connect();
    return;
  }
  acceptor_ = std::make_unique<asio::posix::stream_descriptor>(reader_->io(), listen_fd_);
  accept_peer();  // one may have connected already: the edge-triggered wait would miss it
  wait_for_peer();
}

void UnixLink::wait_for_peer() {
  acceptor_->async_wait(asio::posix::stream_descriptor::wait_read,
                        [this](const boost::system::error_code& ec) {
                          if (ec) return;
                          accept_peer();
                          wait_for_peer();
                        });
}

void UnixLink::accept_peer() {
  for (;;) {
    int err = 0;
    const int fd = accept_unix(listen_fd_, err);
    if (fd < 0) {
      if (err != 0)
        log::warn("unix_accept_failed", "accept failed",
                  {{"link", name()}, {"error", errno_text(err)}});
      return;
    }
    if (ports_[0]->fd.load() >= 0) {
      log::warn("unix_peer_refused", "a peer is already connected; refusing another",
                {{"link", name()}, {"path", o_.path}});
      ::close(fd);
      continue;
    }
    ports_[0]->fd = fd;
    if (retired_fd_ >= 0) ::close(retired_fd_);
    retired_fd_ = -1;
    log::info("unix_peer_connected", "peer connected", {{"link", name()}, {"path", o_.path}});
    reader_->attach(fd);
  }
}

void UnixLink::port_closed(std::size_t i, PortReader& r) {
  if (o_.socket == UnixSocket::dgram) {
    Link::port_closed(i, r);
    return;
  }
  // Other workers may still be sending on the old fd number: shut it down now (their sends
  // fail with EPIPE and count as no_peer) and close it only when the next peer arrives.
  const int fd = ports_[i]->fd.exchange(-1);
  if (fd >= 0) {
    ::shutdown(fd, SHUT_RDWR);
    if (retired_fd_ >= 0) ::close(retired_fd_);
    retired_fd_ = fd;
  }
  if (writer_) {
    std::lock_guard lock(tx_mutex_);
    writer_->reset();  // the rest of a frame cut short has no one to go to now
  }
  if (stream() && o_.connect) {
    log::info("unix_peer_disconnected", "peer went away; connecting again",
              {{"link", name()}, {"path", o_.path}});
    backoff_ = std::chrono::milliseconds(100);
    retry_->expires_after(backoff_);
    retry_->async_wait([this](const boost::system::error_code& ec) {
      if (!ec) try_connect();
    });
    return;
  }
  log::info("unix_peer_disconnected", "peer disconnected; waiting for the next one",
            {{"link", name()}, {"path", o_.path}});
}

void UnixLink::try_connect() {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int err = fd < 0 ? errno : 0;
  if (fd >= 0) {
    // A unix stream connect completes at once or fails (EAGAIN: the listener's backlog is
    // full; try again later like any other failure).
    if ((err = connect_unix_path(fd, o_.path)) != 0) ::close(fd);
  }
  if (err != 0) {
    if (err != connect_error_)  // once per kind of failure, not per attempt
      log::warn("unix_connect_failed", "cannot connect; trying again",
                {{"link", name()},
                 {"path", o_.path},
                 {"error", errno_text(err)},
                 {"retry_ms", backoff_.count()}});
    connect_error_ = err;
    retry_->expires_after(backoff_);
    backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(5000));
    retry_->async_wait([this](const boost::system::error_code& ec) {
      if (!ec) try_connect();
    });
    return;
  }
  connect_error_ = 0;
  backoff_ = std::chrono::milliseconds(100);
  ports_[0]->fd = fd;
  if (retired_fd_ >= 0) ::close(retired_fd_);
  retired_fd_ = -1;
  log::info("unix_peer_connected", "connected to peer", {{"link", name()}, {"path", o_.path}});
  reader_->attach(fd);
}

void UnixLink::send_batch(Worker& w, Batch& batch) {
  if (!stream()) {
    Link::send_batch(w, batch);
    return;
  }
  CounterValues tally;
  TxQueue* tq = backpressure_.queue(w, 0);  // (a stream link always has one: a cut write)
  int fd;
  bool waiting = false;
  {
    std::lock_guard lock(tx_mutex_);
    fd = ports_[0]->fd.load(std::memory_order_relaxed);
    if (fd < 0) {
      tally.drop(DropReason::no_peer) += batch.size();
    } else {
      if (tq->watched_fd != fd && !tq->backlog.empty())
        drop_backlog(tq->backlog, DropReason::no_peer, tally);  // (for an earlier peer)
      writer_->send(fd, batch, tally, config_.tx_backlog ? &tq->backlog : nullptr);
      waiting = writer_->pending() || !tq->backlog.empty();
    }
  }
  if (waiting) backpressure_.hold_back(*tq, 0, fd);
  counters(batch.worker(), 0).add(tally);
}

bool UnixLink::flush_tx(TxQueue& tq, std::size_t q, int fd, int& err, CounterValues& tally) {
  if (!stream()) return Link::flush_tx(tq, q, fd, err, tally);
  std::lock_guard lock(tx_mutex_);
  if (ports_[0]->fd.load(std::memory_order_relaxed) != fd) {
    drop_backlog(tq.backlog, DropReason::no_peer, tally);
    return true;
  }
  std::size_t progress = 0;
  const bool done = writer_->flush(fd, err, &tq.backlog, tally, progress);
  tq.sent += progress;
  return done;
}

int UnixLink::tx_watch_fd(std::size_t q, int fd) {
  if (o_.socket != UnixSocket::dgram) return Link::tx_watch_fd(q, fd);
  const int probe = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (probe >= 0) tx_watch_rearm(q, probe);
  return probe;
}

void UnixLink::tx_watch_rearm(std::size_t /*q*/, int watch_fd) {
  // Connected again each time: a peer that restarted has a new socket at the same path. If
  // the peer is not there the probe is writable at once and the send says no_peer.
  if (o_.socket == UnixSocket::dgram && peer_len_)
    ::connect(watch_fd, reinterpret_cast<const sockaddr*>(&peer_), peer_len_);
}

}  // namespace fdlinkd
