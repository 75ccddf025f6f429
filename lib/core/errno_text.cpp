#include "core/errno_text.hpp"

#include <cerrno>
#include <cstring>

namespace fdlinkd {

std::string errno_text(int err) {
  return std::strerror(err);
}

std::string errno_text(int err, std::string_view capability) {
  std::string s = std::strerror(err);
  if (err == EPERM || err == EACCES)
    s += " (fdlinkd needs " + std::string(capability) +
         ": run it as root, under its systemd unit (which grants it), or with "
         "`setpriv --ambient-caps` / `setcap` granting " +
         std::string(capability) + ")";
  return s;
}

}  // namespace fdlinkd
