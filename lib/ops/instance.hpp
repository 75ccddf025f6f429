// Instances: several fdlinkd daemons on one host, one per tenant or VM group, the way
// wg-quick@ and openvpn-server@ run (systemd's template unit fdlinkd@NAME.service). Each has
// its own config (/etc/fdlinkd/NAME.toml), runtime directory (/run/fdlinkd-NAME, which holds
// its control socket) and metrics label (instance_name="NAME"). The daemon without a name is
// the plain fdlinkd.service: /etc/fdlinkd.toml and /run/fdlinkd.
//
// (/run/fdlinkd-NAME rather than /run/fdlinkd/NAME: systemd removes a unit's RuntimeDirectory
// when it stops, and the plain unit's would take the instances' sockets with it.)
#pragma once

#include <cctype>
#include <string>
#include <string_view>

namespace fdlinkd {

/// 1-64 letters, digits, '-', '_' or '.', not starting with '.' (a file and directory name).
inline bool valid_instance_name(std::string_view s) {
  if (s.empty() || s.size() > 64 || s[0] == '.') return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      return false;
  return true;
}

/// Where instance `name` (empty: the plain daemon) keeps its control socket.
inline std::string instance_runtime_dir(std::string_view name) {
  return name.empty() ? std::string("/run/fdlinkd") : "/run/fdlinkd-" + std::string(name);
}

/// Instance `name`'s config file (empty: the plain daemon's).
inline std::string instance_config(std::string_view name) {
  return name.empty() ? std::string("/etc/fdlinkd.toml")
                      : "/etc/fdlinkd/" + std::string(name) + ".toml";
}

}  // namespace fdlinkd
