#include "core/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <memory>

namespace fdlinkd::log {

namespace {

std::atomic<Format> g_format{Format::text};
std::atomic<Level> g_level{Level::info};

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
  logger();
}

void set_level(Level level) {
  g_level = level;
}
Format format() {
  return g_format;
}

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
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

void write(Level level, std::string_view event, std::string_view msg,
           std::span<const Field> fields) {
  if (level < g_level.load()) return;
  const std::string line = render(g_format, level, event, msg, fields, now_iso8601());
  // The line is finished text, never a format string: braces in it stay as they are.
  logger()->log(spdlog::source_loc{}, to_spdlog(level), spdlog::string_view_t(line));
}

}  // namespace fdlinkd::log
