// kinds: the link and sink type tables, handed to config. config/ knows neither table (it
// depends on core only); whoever reads a config file for fdlinkd (the daemon, a reload, the
// tests) reads it with these.
#pragma once

#include <string>
#include <string_view>

#include "config/config.hpp"

namespace fdlinkd {

/// Every link type (link/link_types.hpp) and sink type (sink/sink.hpp).
const ConfigKinds& config_kinds();

/// load_config() and parse_config() with config_kinds().
inline ConfigResult load_config(const std::string& path) {
  return load_config(path, config_kinds());
}
inline ConfigResult parse_config(std::string_view text, const std::string& path) {
  return parse_config(text, path, config_kinds());
}

}  // namespace fdlinkd
