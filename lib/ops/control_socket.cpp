#include "ops/control_socket.hpp"

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

// Refuses a path where a live daemon answers; removes a stale socket file.
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
  if (live)
    throw std::runtime_error("control_socket " + path +
                             " is in use: another fdlinkd is running (or set [daemon] "
                             "control_socket to another path)");
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

ControlSocket::ControlSocket(asio::io_context& io, std::string path, int gid, Handler handler)
    : path_(std::move(path)), handler_(std::move(handler)), acceptor_(io) {
  const auto slash = path_.rfind('/');
  const std::string dir = path_.substr(0, slash == 0 ? 1 : slash);
  if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST)
    throw std::runtime_error("control_socket " + path_ + ": cannot create " + dir + ": " +
                             std::strerror(errno));
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
