#include "ops/control_socket.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cerrno>
#include <cstring>
#include <istream>
#include <memory>
#include <stdexcept>

#include "core/log.hpp"

namespace fdlinkd {

namespace asio = boost::asio;
namespace json = boost::json;
using stream = asio::local::stream_protocol;

json::object error_reply(std::string_view message) {
  return {{"ok", false}, {"error", message}};
}

json::object ok_reply(json::value result) {
  return {{"ok", true}, {"result", std::move(result)}};
}

namespace {

std::string in_use_message(const std::string& path, const std::string& holder) {
  return "control_socket " + path + " is in use: another fdlinkd is running" + holder +
         " (or set [daemon] control_socket to another path)";
}

// The directory of a socket path, made if missing (mode 0750: the socket's own mode decides
// who may connect).
void make_parent(const std::string& path) {
  const auto slash = path.rfind('/');
  const std::string dir = path.substr(0, slash == 0 ? 1 : slash);
  if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST)
    throw std::runtime_error("control_socket " + path + ": cannot create " + dir + ": " +
                             std::strerror(errno));
}

// Refuses a path where a live daemon answers (one of a version that took no lock); removes a
// stale socket file.
void clear_stale(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return;
  if (!S_ISSOCK(st.st_mode))
    throw std::runtime_error("control_socket " + path +
                             " exists and is not a socket; fdlinkd will not replace it");
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.c_str(), path.size());
  const bool live = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  if (fd >= 0) ::close(fd);
  if (live) throw std::runtime_error(in_use_message(path, ""));
  ::unlink(path.c_str());
}

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(stream::socket s, const ControlSocket::Handler& h)
      : socket_(std::move(s)), buf_(ControlSocket::kMaxRequest), handler_(h) {}

  void read() {
    asio::async_read_until(socket_, buf_, '\n',
                           [self = shared_from_this()](const boost::system::error_code& ec,
                                                       std::size_t n) { self->on_line(ec, n); });
  }

 private:
  void on_line(const boost::system::error_code& ec, std::size_t n) {
    if (ec) return;  // closed, or a line over kMaxRequest: drop the connection
    std::string line(asio::buffers_begin(buf_.data()), asio::buffers_begin(buf_.data()) + n);
    buf_.consume(n);
    boost::system::error_code perr;
    json::value v = json::parse(line, perr);
    if (perr || !v.is_object()) {
      send(
          error_reply("a request is one JSON object on one line, such as "
                      "{\"command\": \"status\"}"));
      return;
    }
    auto self = shared_from_this();
    handler_(v.as_object(), [self](json::object reply) { self->send(std::move(reply)); });
  }

  void send(json::object reply) {
    auto out = std::make_shared<std::string>(json::serialize(reply));
    out->push_back('\n');
    asio::async_write(
        socket_, asio::buffer(*out),
        [self = shared_from_this(), out](const boost::system::error_code& ec, std::size_t) {
          if (!ec) self->read();
        });
  }

  stream::socket socket_;
  asio::streambuf buf_;
  ControlSocket::Handler handler_;
};

}  // namespace

ControlLock::ControlLock(const std::string& socket_path) {
  make_parent(socket_path);
  const std::string path = socket_path + ".lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd_ < 0)
    throw std::runtime_error("control_socket " + socket_path + ": cannot open its lock file " +
                             path + ": " + std::strerror(errno));
  // A POSIX record lock (not flock) so that the loser can ask the kernel who holds it
  // (F_GETLK): the pid is exact at once, without a file the winner has yet to write.
  struct flock lk {};
  lk.l_type = F_WRLCK;
  lk.l_whence = SEEK_SET;
  int rc;
  do {
    rc = ::fcntl(fd_, F_SETLK, &lk);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    std::string holder;
    struct flock who = lk;
    if ((err == EAGAIN || err == EACCES) && ::fcntl(fd_, F_GETLK, &who) == 0 &&
        who.l_type != F_UNLCK && who.l_pid > 0)
      holder = " (pid " + std::to_string(who.l_pid) + ")";
    ::close(fd_);
    if (err == EAGAIN || err == EACCES)
      throw std::runtime_error(in_use_message(socket_path, holder));
    throw std::runtime_error("control_socket " + socket_path + ": cannot lock " + path + ": " +
                             std::strerror(err));
  }
  // Who holds it, for people who look.
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
    // (the lock holds without it)
  }
}

ControlLock::~ControlLock() {
  if (fd_ >= 0) ::close(fd_);  // (the file stays: removing it would race the next daemon)
}

ControlSocket::ControlSocket(asio::io_context& io, std::string path, int gid, Handler handler)
    : path_(std::move(path)), handler_(std::move(handler)), acceptor_(io) {
  make_parent(path_);
  clear_stale(path_);
  acceptor_.open(stream());
  const mode_t old = ::umask(0177);  // never reachable by others, even for an instant
  boost::system::error_code ec;
  acceptor_.bind(stream::endpoint(path_), ec);
  ::umask(old);
  if (ec) throw std::runtime_error("control_socket " + path_ + ": cannot bind: " + ec.message());
  if (gid >= 0 && (::chown(path_.c_str(), static_cast<uid_t>(-1), static_cast<gid_t>(gid)) != 0 ||
                   ::chmod(path_.c_str(), 0660) != 0)) {
    const int err = errno;
    ::unlink(path_.c_str());
    throw std::runtime_error("control_socket " + path_ + ": cannot give it to group " +
                             std::to_string(gid) + ": " + std::strerror(err));
  }
  acceptor_.listen(16);
  accept();
}

ControlSocket::~ControlSocket() {
  boost::system::error_code ec;
  acceptor_.close(ec);
  ::unlink(path_.c_str());
}

void ControlSocket::accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, stream::socket s) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) std::make_shared<Connection>(std::move(s), handler_)->read();
    accept();
  });
}

}  // namespace fdlinkd
