// Structured logging: every line has a level, an event name, a message and key=value fields.
//
//   text: 2026-11-24T21:51:00.123456Z info link_open: opened af_packet link link=a fds=1
//   json: {"ts":"2026-11-24T21:51:00.123456Z","level":"info","event":"link_open",
//          "msg":"opened af_packet link","link":"a","fds":1}
//
// spdlog carries the finished line to its sink (stderr; journald captures it under systemd).
// Logging is for the control path only; nothing on the per-frame path logs.
#pragma once

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace fdlinkd::log {

enum class Level { trace, debug, info, warn, error };
enum class Format { text, json };

std::optional<Level> parse_level(std::string_view s);
std::optional<Format> parse_format(std::string_view s);
std::string_view level_name(Level l);

/// Where a logging call is in the source: what std::source_location::current() says, from the
/// builtins it is made of (clang 14, which builds the sanitizer passes, has no
/// std::source_location). As a default argument it names the caller.
struct Where {
  const char* file;
  unsigned line;
  const char* function;
  static constexpr Where here(const char* file = __builtin_FILE(), unsigned line = __builtin_LINE(),
                              const char* function = __builtin_FUNCTION()) {
    return {file, line, function};
  }
};

/// One key=value of a log line. Numbers stay numbers in JSON.
struct Field {
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  Field(std::string_view k, bool v) : key(k), value(v ? "true" : "false"), number(true) {}
  template <std::integral T>
  requires(!std::same_as<T, bool>) Field(std::string_view k, T v)
      : key(k), value(std::to_string(v)), number(true) {}

  std::string_view key;
  std::string value;
  bool number = false;
};

/// Sets up the process-wide logger. Safe to call again (e.g. after the config is read).
/// When stderr is systemd's journal stream (JOURNAL_STREAM), entries go to the journal with
/// sd_journal_send instead: PRIORITY from the level (error 3, warn 4, info 6, debug 7),
/// MESSAGE, EVENT, every field upper case (LINK=, SINK=, QUEUE=, ...) and the place that
/// logged (CODE_FILE relative to the source tree, CODE_LINE, CODE_FUNC).
void init(Level level, Format format);
/// Whether log lines go to the journal as structured entries.
bool to_journal();
void set_level(Level level);
Format format();

/// `where`: the call site, which the journal records (every logging call passes it on).
void write(Level level, std::string_view event, std::string_view msg, std::span<const Field> fields,
           Where where = Where::here());
inline void write(Level level, std::string_view event, std::string_view msg,
                  std::initializer_list<Field> fields = {}, Where where = Where::here()) {
  write(level, event, msg, std::span<const Field>(fields.begin(), fields.size()), where);
}

/// Renders one line without the trailing newline (exposed for tests).
std::string render(Format format, Level level, std::string_view event, std::string_view msg,
                   std::span<const Field> fields, std::string_view timestamp);

/// JSON string escaping (quotes, backslash, control characters; valid UTF-8 passes through, a
/// byte that is not valid UTF-8 becomes the text \xNN, so every line is valid JSON).
void append_json_string(std::string& out, std::string_view s);

inline void debug(std::string_view ev, std::string_view msg, std::initializer_list<Field> f = {},
                  Where where = Where::here()) {
  write(Level::debug, ev, msg, f, where);
}
inline void info(std::string_view ev, std::string_view msg, std::initializer_list<Field> f = {},
                 Where where = Where::here()) {
  write(Level::info, ev, msg, f, where);
}
inline void warn(std::string_view ev, std::string_view msg, std::initializer_list<Field> f = {},
                 Where where = Where::here()) {
  write(Level::warn, ev, msg, f, where);
}
inline void error(std::string_view ev, std::string_view msg, std::initializer_list<Field> f = {},
                  Where where = Where::here()) {
  write(Level::error, ev, msg, f, where);
}

}  // namespace fdlinkd::log
