#include "core/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/uio.h>
// The journal's CODE_FILE, CODE_LINE and CODE_FUNC are the caller's (write()'s `where`), not
// those sd_journal_sendv's macro would record: this file.
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <vector>

namespace fdlinkd::log {

namespace {

std::atomic<Format> g_format{Format::text};
std::atomic<Level> g_level{Level::info};
std::atomic<bool> g_journal{false};

// Whether stderr is the journal's stream for this service (systemd sets JOURNAL_STREAM to its
// "device:inode"), as sd_journal_stream_fd's docs say to check.
bool stderr_is_journal() {
  const char* js = std::getenv("JOURNAL_STREAM");
  if (!js) return false;
  struct stat st {};
  if (::fstat(2, &st) != 0) return false;
  return std::string(js) == std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

int syslog_priority(Level l) {
  switch (l) {
    case Level::error: return 3;
    case Level::warn: return 4;
    case Level::info: return 6;
    default: return 7;
  }
}

// One journal entry: MESSAGE is the text line without its timestamp (journald stamps it),
// every field is a field of its own, upper case (EVENT=, LINK=, SINK=, QUEUE=, ...), and the
// code location is the call site's (its path as the build names it: relative to the source
// tree, -ffile-prefix-map).
void send_journal(Level level, std::string_view event, std::string_view msg,
                  std::span<const Field> fields, const Where& where) {
  std::vector<std::string> items;
  items.reserve(fields.size() + 4);
  std::string message = std::string(event) + ": " + std::string(msg);
  for (const auto& f : fields) {
    message += ' ';
    message += f.key;
    message += '=';
    message += f.value;
  }
  items.push_back("MESSAGE=" + message);
  items.push_back("PRIORITY=" + std::to_string(syslog_priority(level)));
  items.push_back("SYSLOG_IDENTIFIER=fdlinkd");
  items.push_back("EVENT=" + std::string(event));
  items.push_back("CODE_FILE=" + std::string(where.file));
  items.push_back("CODE_LINE=" + std::to_string(where.line));
  items.push_back("CODE_FUNC=" + std::string(where.function));
  for (const auto& f : fields) {
    std::string k;
    for (char c : f.key)
      k.push_back(std::isalnum(static_cast<unsigned char>(c))
                      ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
                      : '_');
    if (k.empty() || k[0] == '_' || std::isdigit(static_cast<unsigned char>(k[0]))) k = "F" + k;
    items.push_back(k + "=" + f.value);
  }
  std::vector<iovec> iov;
  iov.reserve(items.size());
  for (auto& i : items)
    iov.push_back({i.data(), i.size()});
  sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
}

spdlog::level::level_enum to_spdlog(Level l) {
  switch (l) {
    case Level::trace: return spdlog::level::trace;
    case Level::debug: return spdlog::level::debug;
    case Level::info: return spdlog::level::info;
    case Level::warn: return spdlog::level::warn;
    case Level::error: return spdlog::level::err;
  }
  return spdlog::level::info;
}

std::shared_ptr<spdlog::logger> logger() {
  static std::shared_ptr<spdlog::logger> l = [] {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    auto lg = std::make_shared<spdlog::logger>("fdlinkd", sink);
    lg->set_pattern("%v");
    lg->set_level(spdlog::level::trace);  // filtering is done in write()
    lg->flush_on(spdlog::level::trace);   // one line, one write: tails and tests see it at once
    return lg;
  }();
  return l;
}

std::string now_iso8601() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", t.tm_year + 1900,
                t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                static_cast<int>(ts.tv_nsec / 1000));
  return buf;
}

bool needs_quotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v)
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) return true;
  return false;
}

}  // namespace

std::optional<Level> parse_level(std::string_view s) {
  if (s == "trace") return Level::trace;
  if (s == "debug") return Level::debug;
  if (s == "info") return Level::info;
  if (s == "warn") return Level::warn;
  if (s == "error") return Level::error;
  return std::nullopt;
}

std::optional<Format> parse_format(std::string_view s) {
  if (s == "text") return Format::text;
  if (s == "json") return Format::json;
  return std::nullopt;
}

std::string_view level_name(Level l) {
  switch (l) {
    case Level::trace: return "trace";
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
  }
  return "info";
}

void init(Level level, Format format) {
  g_level = level;
  g_format = format;
  g_journal = stderr_is_journal();
  logger();
}

bool to_journal() {
  return g_journal;
}

void set_level(Level level) {
  g_level = level;
}
Format format() {
  return g_format;
}

namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 if it is not one (overlong forms,
// surrogates and code points past U+10FFFF are not valid).
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  std::size_t n = 0;
  std::uint32_t cp = 0;
  if (c >= 0xC2 && c <= 0xDF)
    n = 2, cp = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF)
    n = 3, cp = c & 0x0F;
  else if (c >= 0xF0 && c <= 0xF4)
    n = 4, cp = c & 0x07;
  else
    return 0;
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xC0) != 0x80) return 0;
    cp = cp << 6 | (b(k) & 0x3F);
  }
  if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
      (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
    return 0;
  return n;
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char ch = s[i];
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x80) {  // UTF-8 passes through; a byte that is not is written as \xNN text
      const std::size_t n = utf8_length(s, i);
      if (n == 0) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\\\x%02x", c);
        out += buf;
      } else {
        out.append(s.substr(i, n));
        i += n - 1;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

std::string render(Format format, Level level, std::string_view event, std::string_view msg,
                   std::span<const Field> fields, std::string_view timestamp) {
  std::string out;
  out.reserve(128);
  if (format == Format::json) {
    out += "{\"ts\":";
    append_json_string(out, timestamp);
    out += ",\"level\":";
    append_json_string(out, level_name(level));
    out += ",\"event\":";
    append_json_string(out, event);
    out += ",\"msg\":";
    append_json_string(out, msg);
    for (const auto& f : fields) {
      out.push_back(',');
      append_json_string(out, f.key);
      out.push_back(':');
      if (f.number)
        out += f.value;
      else
        append_json_string(out, f.value);
    }
    out.push_back('}');
    return out;
  }
  out += timestamp;
  out.push_back(' ');
  out += level_name(level);
  out.push_back(' ');
  out += event;
  out += ": ";
  out += msg;
  for (const auto& f : fields) {
    out.push_back(' ');
    out += f.key;
    out.push_back('=');
    if (needs_quotes(f.value))
      append_json_string(out, f.value);
    else
      out += f.value;
  }
  return out;
}

void write(Level level, std::string_view event, std::string_view msg, std::span<const Field> fields,
           Where where) {
  if (level < g_level.load()) return;
  if (g_journal.load(std::memory_order_relaxed)) {
    send_journal(level, event, msg, fields, where);
    return;
  }
  const std::string line = render(g_format, level, event, msg, fields, now_iso8601());
  // The line is finished text, never a format string: braces in it stay as they are.
  logger()->log(spdlog::source_loc{}, to_spdlog(level), spdlog::string_view_t(line));
}

}  // namespace fdlinkd::log
