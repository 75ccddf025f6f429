#include "ops/control_client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace fdlinkd {

namespace json = boost::json;

json::object ask_daemon(const std::string& path, const json::object& request, int timeout_ms) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw ControlClientError{false, std::string("socket: ") + std::strerror(errno)};
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path)
    throw ControlClientError{true, "socket path too long: " + path};
  std::memcpy(a.sun_path, path.c_str(), path.size());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    const int err = errno;
    ::close(fd);
    std::string hint;
    if (err == ENOENT || err == ECONNREFUSED)
      hint = " (is fdlinkd running? `systemctl status fdlinkd`; another socket: -s PATH)";
    else if (err == EACCES)
      hint = " (the socket is for root, or for [daemon] control_group: run as root)";
    throw ControlClientError{false,
                             "cannot reach fdlinkd at " + path + ": " + std::strerror(err) + hint};
  }
  std::string line = json::serialize(request) + "\n";
  for (std::size_t off = 0; off < line.size();) {
    const ssize_t n = ::send(fd, line.data() + off, line.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      throw ControlClientError{false, std::string("sending the request: ") + std::strerror(errno)};
    }
    off += static_cast<std::size_t>(n);
  }
  std::string reply;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  char buf[65536];
  while (reply.find('\n') == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    const int r = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      ::close(fd);
      throw ControlClientError{false, "no reply from fdlinkd at " + path + " within " +
                                          std::to_string(timeout_ms) + " ms"};
    }
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      throw ControlClientError{false, "fdlinkd closed the connection without a reply"};
    }
    reply.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  boost::system::error_code ec;
  json::value v = json::parse(reply.substr(0, reply.find('\n')), ec);
  if (ec || !v.is_object()) throw ControlClientError{false, "fdlinkd's reply is not JSON"};
  return v.as_object();
}

}  // namespace fdlinkd
