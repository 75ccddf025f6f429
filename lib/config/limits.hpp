// limits: what no real config exceeds, checked before toml++ sees the text (a file or a key
// deep enough to exhaust the parser's stack is refused with a message, not a crash).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config/reader.hpp"

namespace fdlinkd {

constexpr std::uint64_t kMaxConfigBytes = 16 << 20;
constexpr std::size_t kMaxKeyParts = 32;         ///< dots in one key (a.b.c has 2)
constexpr std::size_t kMaxNesting = 32;          ///< arrays and inline tables inside each other
constexpr std::size_t kMaxIncludedFiles = 4096;  ///< files [daemon] include may bring in

/// toml++ parses dotted keys and nested arrays and inline tables by recursion, without a depth
/// limit of its own for dotted keys: a key of 100,000 dots overflows the stack. This scan runs
/// first and refuses what is deeper than any real config could be. It knows just enough TOML
/// to skip strings and comments.
std::optional<ConfigError> too_deep(std::string_view text, const std::string& path);

}  // namespace fdlinkd
