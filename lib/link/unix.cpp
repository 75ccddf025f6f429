#include "link/unix.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/log.hpp"
#include "core/worker.hpp"
#include "dispatch/dispatcher.hpp"
#include "writer/stream.hpp"

namespace fdlinkd {

namespace asio = boost::asio;

namespace {

sockaddr_un address_of(const std::string& path, socklen_t& len) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.data(), path.size());  // length checked by the config
  len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return a;
}

// Whether a process is serving the socket at `path`: a connect that is refused means nobody
// is (a file left by a crash); one that is accepted, or refused for being of another type,
// means somebody is.
bool in_use(const std::string& path, int type) {
  const int fd = ::socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return false;
  socklen_t len = 0;
  const sockaddr_un a = address_of(path, len);
  const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&a), len);
  const int err = rc == 0 ? 0 : errno;
  ::close(fd);
  return err != ECONNREFUSED && err != ENOENT;
}

// A socket file left by an earlier run is removed; a live one, or anything that is not a
// socket, is an error: fdlinkd never takes over another process's socket.
void remove_stale(const std::string& path, int type) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return;
  if (!S_ISSOCK(st.st_mode))
    throw LinkError(path + " exists and is not a socket; fdlinkd will not remove it");
  if (in_use(path, type))
    throw LinkError(path +
                    " is in use: another process (another fdlinkd?) is listening on it; "
                    "fdlinkd will not take it over");
  ::unlink(path.c_str());
}

int socket_type(UnixSocket s) {
  return s == UnixSocket::seqpacket ? SOCK_SEQPACKET
         : s == UnixSocket::stream  ? SOCK_STREAM
                                    : SOCK_DGRAM;
}

}  // namespace

UnixLink::~UnixLink() {
  if (acceptor_) acceptor_->release();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (retired_fd_ >= 0) ::close(retired_fd_);
  if (bound_) ::unlink(config_.path.c_str());
}

bool UnixLink::stream() const {
  return config_.socket == UnixSocket::stream;
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
  if (bound_) ::unlink(config_.path.c_str());
  bound_ = false;
}

void UnixLink::open_fds() {
  if (stream()) {
    writer_ = std::make_unique<StreamWriter>(config_.frame_capacity());
    if (config_.connect) return;  // start() connects
  }
  const int type = socket_type(config_.socket);
  const bool listens = type != SOCK_DGRAM;
  const int fd = ::socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw LinkError("unix socket: " + errno_text(errno));
  if (listens)
    listen_fd_ = fd;
  else
    ports_[0]->fd = fd;

  remove_stale(config_.path, type);
  socklen_t len = 0;
  const sockaddr_un addr = address_of(config_.path, len);
  // The file is created with the umask applied; a umask that lets everyone in must not leave
  // the socket open for a moment before the chmod below. (Links open before workers start.)
  const mode_t old_mask = ::umask(0177);
  const int rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), len);
  const int bind_errno = errno;
  ::umask(old_mask);
  if (rc != 0) throw LinkError("cannot bind " + config_.path + ": " + errno_text(bind_errno));
  bound_ = true;
  if (::chmod(config_.path.c_str(), config_.socket_mode) != 0)
    throw LinkError("cannot set mode of " + config_.path + ": " + errno_text(errno));
  if (config_.socket_gid >= 0 && ::chown(config_.path.c_str(), static_cast<uid_t>(-1),
                                         static_cast<gid_t>(config_.socket_gid)) != 0)
    throw LinkError("cannot give " + config_.path + " to group " + config_.socket_group + ": " +
                    errno_text(errno));
  if (listens && ::listen(fd, 4) != 0)
    throw LinkError("cannot listen on " + config_.path + ": " + errno_text(errno));
  if (!config_.peer.empty()) peer_ = address_of(config_.peer, peer_len_);
}

bool UnixLink::zero_read_is_eof(int fd) const {
  if (stream()) return true;  // a stream has no empty messages
  return config_.socket == UnixSocket::seqpacket && peer_hung_up(fd);
}

const sockaddr* UnixLink::tx_address(socklen_t& len) const {
  len = peer_len_;
  return peer_len_ ? reinterpret_cast<const sockaddr*>(&peer_) : nullptr;
}

void UnixLink::start(const std::vector<Dispatcher*>& dispatchers) {
  if (config_.socket == UnixSocket::dgram) {
    Link::start(dispatchers);
    return;
  }
  dispatcher_ = dispatchers[0];
  if (stream() && config_.connect) {
    retry_ = std::make_unique<asio::steady_timer>(dispatcher_->io());
    try_connect();
    return;
  }
  acceptor_ = std::make_unique<asio::posix::stream_descriptor>(dispatcher_->io(), listen_fd_);
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
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN)
        log::warn("unix_accept_failed", "accept failed",
                  {{"link", name()}, {"error", errno_text(errno)}});
      return;
    }
    if (ports_[0]->fd.load() >= 0) {
      log::warn("unix_peer_refused", "a peer is already connected; refusing another",
                {{"link", name()}, {"path", config_.path}});
      ::close(fd);
      continue;
    }
    ports_[0]->fd = fd;
    if (retired_fd_ >= 0) ::close(retired_fd_);
    retired_fd_ = -1;
    log::info("unix_peer_connected", "peer connected", {{"link", name()}, {"path", config_.path}});
    dispatcher_->attach(fd);
  }
}

void UnixLink::port_closed(std::size_t i, Dispatcher& d) {
  if (config_.socket == UnixSocket::dgram) {
    Link::port_closed(i, d);
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
  if (stream() && config_.connect) {
    log::info("unix_peer_disconnected", "peer went away; connecting again",
              {{"link", name()}, {"path", config_.path}});
    backoff_ = std::chrono::milliseconds(100);
    retry_->expires_after(backoff_);
    retry_->async_wait([this](const boost::system::error_code& ec) {
      if (!ec) try_connect();
    });
    return;
  }
  log::info("unix_peer_disconnected", "peer disconnected; waiting for the next one",
            {{"link", name()}, {"path", config_.path}});
}

void UnixLink::try_connect() {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int err = fd < 0 ? errno : 0;
  if (fd >= 0) {
    socklen_t len = 0;
    const sockaddr_un a = address_of(config_.path, len);
    // A unix stream connect completes at once or fails (EAGAIN: the listener's backlog is
    // full; try again later like any other failure).
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), len) != 0) {
      err = errno;
      ::close(fd);
    }
  }
  if (err != 0) {
    if (err != connect_error_)  // once per kind of failure, not per attempt
      log::warn("unix_connect_failed", "cannot connect; trying again",
                {{"link", name()},
                 {"path", config_.path},
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
  log::info("unix_peer_connected", "connected to peer", {{"link", name()}, {"path", config_.path}});
  dispatcher_->attach(fd);
}

void UnixLink::send_batch(Worker& w, Batch& batch) {
  if (!stream()) {
    Link::send_batch(w, batch);
    return;
  }
  CounterValues tally;
  TxQueue* tq = tx_queue(w, 0);  // (a stream link always has one: to finish a cut write)
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
  if (waiting) hold_back(*tq, 0, fd);
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
  if (config_.socket != UnixSocket::dgram) return Link::tx_watch_fd(q, fd);
  const int probe = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (probe >= 0) tx_watch_rearm(probe);
  return probe;
}

void UnixLink::tx_watch_rearm(int watch_fd) {
  // Connected again each time: a peer that restarted has a new socket at the same path. If
  // the peer is not there the probe is writable at once and the send says no_peer.
  if (config_.socket == UnixSocket::dgram && peer_len_)
    ::connect(watch_fd, reinterpret_cast<const sockaddr*>(&peer_), peer_len_);
}

}  // namespace fdlinkd
