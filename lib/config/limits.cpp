#include "config/limits.hpp"

namespace fdlinkd {

std::optional<ConfigError> too_deep(std::string_view text, const std::string& path) {
  std::uint32_t line = 1, col = 1;
  std::size_t depth = 0;  // open [ and { outside strings
  std::size_t dots = 0;   // dots in the current line's key, before its =
  bool in_value = false;  // after the = of a key/value line
  auto error = [&](std::string msg) { return ConfigError{path, line, col, std::move(msg)}; };
  for (std::size_t i = 0; i < text.size(); ++i, ++col) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      col = 0;
      dots = 0;
      if (depth == 0) in_value = false;
      continue;
    }
    if (c == '#') {
      while (i + 1 < text.size() && text[i + 1] != '\n')
        ++i;
      continue;
    }
    if (c == '"' || c == '\'') {
      const bool multi = text.substr(i, 3) == std::string(3, c);
      const std::string_view end = multi ? text.substr(i, 3) : text.substr(i, 1);
      std::size_t j = i + end.size();
      for (; j < text.size(); ++j) {
        if (c == '"' && text[j] == '\\') {
          ++j;
          continue;
        }
        if (text.substr(j, end.size()) == end) break;
        if (text[j] == '\n') {
          if (!multi) break;  // the parser reports the unterminated string
          ++line;
          col = 0;
        }
      }
      col += static_cast<std::uint32_t>(j - i);
      i = j + end.size() - 1;
      continue;
    }
    if (c == '=' && depth == 0) in_value = true;
    if (c == '.' && !in_value && ++dots > kMaxKeyParts)
      return error("a key with more than " + std::to_string(kMaxKeyParts) +
                   " dotted parts; fdlinkd's config is never that deep");
    if (c == '[' || c == '{') {
      if (c == '{' || in_value) in_value = true;
      if (++depth > kMaxNesting)
        return error("arrays or tables nested more than " + std::to_string(kMaxNesting) +
                     " deep; fdlinkd's config is never that deep");
    }
    if ((c == ']' || c == '}') && depth > 0) --depth;
  }
  return std::nullopt;
}

}  // namespace fdlinkd
