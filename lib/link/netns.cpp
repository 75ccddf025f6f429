#include "link/netns.hpp"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "link/link.hpp"

#include "core/log.hpp"

namespace fdlinkd {

std::string NetnsGuard::path_of(const std::string& spec) {
  return spec.find('/') == std::string::npos ? "/run/netns/" + spec : spec;
}

NetnsGuard::NetnsGuard(const std::string& spec) {
  if (spec.empty()) return;
  const std::string path = path_of(spec);
  home_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home_ < 0)
    throw std::runtime_error(std::string("cannot open this thread's network namespace: ") +
                             std::strerror(errno));
  const int target = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    const int err = errno;
    ::close(home_);
    throw std::runtime_error("cannot open network namespace " + path + ": " + std::strerror(err));
  }
  const int rc = ::setns(target, CLONE_NEWNET);
  const int err = errno;
  ::close(target);
  if (rc != 0) {
    ::close(home_);
    throw std::runtime_error("cannot enter network namespace " + path + ": " +
                             errno_text(err, "CAP_SYS_ADMIN") +
                             (err == EPERM ? "; under systemd, add the netns drop-in "
                                             "(examples/netns.conf)"
                                           : ""));
  }
}

NetnsGuard::~NetnsGuard() {
  if (home_ < 0) return;
  if (::setns(home_, CLONE_NEWNET) != 0) {
    // Every fd opened after this would land in the wrong namespace: stop now.
    log::error("netns_restore_failed", "cannot return to the daemon's network namespace",
               {{"error", std::strerror(errno)}});
    std::abort();
  }
  ::close(home_);
}

}  // namespace fdlinkd
