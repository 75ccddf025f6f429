// errno_text: an errno value as an operator reads it in an error message.
#pragma once

#include <string>
#include <string_view>

namespace fdlinkd {

/// strerror(err).
std::string errno_text(int err);
/// The same, and for EPERM/EACCES which capability fdlinkd lacks and how to grant it.
std::string errno_text(int err, std::string_view capability);

}  // namespace fdlinkd
