#include "link/unix_path.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/errno_text.hpp"
#include "link/link.hpp"

namespace fdlinkd {

namespace {

// Whether a process is serving the socket at `path`: a connect that is refused means nobody
// is (a file left by a crash); one that is accepted, or refused for being of another type,
// means somebody is.
bool in_use(const std::string& path, int type) {
  const int fd = ::socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return false;
  const int err = connect_unix_path(fd, path);
  ::close(fd);
  return err != ECONNREFUSED && err != ENOENT;
}

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

}  // namespace

sockaddr_un unix_address(const std::string& path, socklen_t& len) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.data(), path.size());  // length checked by the config
  len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return a;
}

int systemd_socket(const std::string& path, int type) {
  // What systemd passed, read once: sd_listen_fds checks that LISTEN_PID is this process and
  // marks the fds close-on-exec.
  static const int count = [] {
    const int n = sd_listen_fds(0);
    return n > 0 ? n : 0;
  }();
  for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + count; ++fd)
    if (sd_is_socket_unix(fd, type, 1, path.c_str(), 0) > 0) {
      const int mine = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
      if (mine >= 0) ::fcntl(mine, F_SETFL, ::fcntl(mine, F_GETFL) | O_NONBLOCK);
      return mine;
    }
  return -1;
}

int connect_unix_path(int fd, const std::string& path) {
  socklen_t len = 0;
  const sockaddr_un a = unix_address(path, len);
  return ::connect(fd, reinterpret_cast<const sockaddr*>(&a), len) == 0 ? 0 : errno;
}

void bind_unix_path(int fd, const std::string& path, int type, const SocketFile& file) {
  remove_stale(path, type);
  socklen_t len = 0;
  const sockaddr_un addr = unix_address(path, len);
  // The file is created with the umask applied; a umask that lets everyone in must not leave
  // the socket open for a moment before the chmod below. (Links open before workers start.)
  const mode_t old_mask = ::umask(0177);
  const int rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), len);
  const int bind_errno = errno;
  ::umask(old_mask);
  if (rc != 0) throw LinkError("cannot bind " + path + ": " + errno_text(bind_errno));
  std::string why;
  if (::chmod(path.c_str(), file.mode) != 0)
    why = "cannot set mode of " + path + ": " + errno_text(errno);
  else if (file.gid >= 0 &&
           ::chown(path.c_str(), static_cast<uid_t>(-1), static_cast<gid_t>(file.gid)) != 0)
    why = "cannot give " + path + " to group " + file.group + ": " + errno_text(errno);
  if (!why.empty()) {
    ::unlink(path.c_str());
    throw LinkError(why);
  }
}

int accept_unix(int listen_fd, int& err) {
  for (;;) {
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0 || errno != EINTR) {
      err = fd >= 0 || errno == EAGAIN ? 0 : errno;
      return fd;
    }
  }
}

}  // namespace fdlinkd
