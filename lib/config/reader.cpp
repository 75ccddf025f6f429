#include "config/reader.hpp"

#include <algorithm>
#include <charconv>

namespace fdlinkd {

std::string ConfigError::to_string() const {
  if (line == 0) return file + ": " + message;  // the file as a whole (it cannot be read)
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

void ConfigErrors::add(const toml::source_region& where, std::string message) {
  add(where.path ? *where.path : std::string("<config>"), where.begin.line, where.begin.column,
      std::move(message));
}

void ConfigErrors::add(std::string file, std::uint32_t line, std::uint32_t column,
                       std::string message) {
  ++total_;
  if (errors_.size() >= kMaxKept) return;
  if (message.size() > kMaxMessage) {
    message.resize(kMaxMessage);
    message += "...";
  }
  errors_.push_back({std::move(file), line, column, std::move(message)});
}

std::string shown(std::string_view value, std::size_t max) {
  std::string out;
  const std::size_t n = value.size() < max ? value.size() : max;
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
      continue;
    }
    static constexpr char kHex[] = "0123456789abcdef";
    out += "\\x";
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  if (value.size() > max) out += "... (" + std::to_string(value.size()) + " bytes)";
  return out;
}

bool has_control_char(std::string_view s) {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

std::vector<ConfigError> ConfigErrors::sorted() const {
  auto v = errors_;
  const auto rank = [this](const std::string& file) {
    std::size_t i = 0;
    while (i < files_.size() && files_[i] != file)
      ++i;
    return i;
  };
  std::stable_sort(v.begin(), v.end(), [&](const ConfigError& a, const ConfigError& b) {
    const std::size_t ra = rank(a.file), rb = rank(b.file);
    if (ra != rb) return ra < rb;
    return a.line != b.line ? a.line < b.line : a.column < b.column;
  });
  return v;
}

std::string_view toml_type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "string";
    case toml::node_type::integer: return "integer";
    case toml::node_type::floating_point: return "float";
    case toml::node_type::boolean: return "boolean";
    case toml::node_type::table: return "table";
    case toml::node_type::array: return "array";
    case toml::node_type::date: return "date";
    case toml::node_type::time: return "time";
    case toml::node_type::date_time: return "date-time";
    default: return "nothing";
  }
}

namespace {

struct Unit {
  std::string_view name;
  std::uint64_t scale;
};

// "<digits><unit>" with a unit from `units`; nullopt on anything else or on overflow.
std::optional<std::uint64_t> parse_scaled(std::string_view s, std::initializer_list<Unit> units) {
  std::uint64_t n = 0;
  const char* first = s.data();
  const char* last = s.data() + s.size();
  auto [p, ec] = std::from_chars(first, last, n);
  if (ec != std::errc() || p == first) return std::nullopt;
  const std::string_view unit(p, static_cast<std::size_t>(last - p));
  for (const Unit& u : units) {
    if (u.name != unit) continue;
    if (n > (std::uint64_t{1} << 62) / u.scale) return std::nullopt;
    return n * u.scale;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::chrono::microseconds> parse_duration(std::string_view s) {
  auto us = parse_scaled(s, {{"us", 1},
                             {"ms", 1000},
                             {"s", 1000 * 1000},
                             {"m", 60ull * 1000 * 1000},
                             {"h", 3600ull * 1000 * 1000}});
  if (!us) return std::nullopt;
  return std::chrono::microseconds(*us);
}

std::optional<std::uint64_t> parse_size(std::string_view s) {
  return parse_scaled(s, {{"", 1},
                          {"B", 1},
                          {"KiB", 1ull << 10},
                          {"MiB", 1ull << 20},
                          {"GiB", 1ull << 30},
                          {"KB", 1000},
                          {"kB", 1000},
                          {"MB", 1000 * 1000},
                          {"GB", 1000 * 1000 * 1000}});
}

TableReader::TableReader(const toml::table& table, std::string what, ConfigErrors& errors)
    : table_(table), what_(std::move(what)), errors_(errors) {}

const toml::source_region& TableReader::where(std::string_view key) const {
  if (const toml::node* n = table_.get(key)) return n->source();
  return table_.source();
}

const toml::node* TableReader::get(std::string_view key) {
  known_.emplace(key);
  return table_.get(key);
}

void TableReader::wrong_type(std::string_view key, const toml::node& n, std::string_view expected) {
  errors_.add(n.source(), std::string(key) + " in " + what_ + " must be " + std::string(expected) +
                              ", not " + std::string(toml_type_name(n)));
}

std::optional<std::string> TableReader::string(std::string_view key, bool required) {
  const toml::node* n = get(key);
  if (!n) {
    if (required) errors_.add(where(), what_ + " is missing required key " + std::string(key));
    return std::nullopt;
  }
  if (auto v = n->value<std::string>(); v && n->is_string()) return *v;
  wrong_type(key, *n, "a string");
  return std::nullopt;
}

std::optional<std::int64_t> TableReader::integer(std::string_view key, std::int64_t min,
                                                 std::int64_t max) {
  const toml::node* n = get(key);
  if (!n) return std::nullopt;
  if (!n->is_integer()) {
    wrong_type(key, *n, "an integer");
    return std::nullopt;
  }
  const std::int64_t v = n->as_integer()->get();
  if (v < min || v > max) {
    errors_.add(n->source(), std::string(key) + " = " + std::to_string(v) + " in " + what_ +
                                 " is out of range (" + std::to_string(min) + ".." +
                                 std::to_string(max) + ")");
    return std::nullopt;
  }
  return v;
}

std::optional<bool> TableReader::boolean(std::string_view key) {
  const toml::node* n = get(key);
  if (!n) return std::nullopt;
  if (!n->is_boolean()) {
    wrong_type(key, *n, "true or false");
    return std::nullopt;
  }
  return n->as_boolean()->get();
}

std::optional<std::chrono::microseconds> TableReader::duration(std::string_view key) {
  const toml::node* n = get(key);
  if (!n) return std::nullopt;
  if (!n->is_string()) {
    wrong_type(key, *n, "a duration string such as \"10s\" or \"250ms\"");
    return std::nullopt;
  }
  const std::string& s = n->as_string()->get();
  auto d = parse_duration(s);
  if (!d)
    errors_.add(n->source(), std::string(key) + " = \"" + shown(s) + "\" in " + what_ +
                                 " is not a duration (use a number and us, ms, s, m or h, "
                                 "such as \"10s\")");
  return d;
}

std::optional<std::uint64_t> TableReader::size(std::string_view key, std::uint64_t min,
                                               std::uint64_t max) {
  const toml::node* n = get(key);
  if (!n) return std::nullopt;
  std::optional<std::uint64_t> v;
  if (n->is_integer() && n->as_integer()->get() >= 0) {
    v = static_cast<std::uint64_t>(n->as_integer()->get());
  } else if (n->is_string()) {
    v = parse_size(n->as_string()->get());
    if (!v) {
      errors_.add(n->source(), std::string(key) + " = \"" + shown(n->as_string()->get()) +
                                   "\" in " + what_ +
                                   " is not a size (use bytes or KiB, MiB, GiB, such as "
                                   "\"1MiB\")");
      return std::nullopt;
    }
  } else {
    wrong_type(key, *n, "a size such as \"1MiB\" or a number of bytes");
    return std::nullopt;
  }
  if (*v < min || *v > max) {
    errors_.add(n->source(), std::string(key) + " = " + std::to_string(*v) + " bytes in " + what_ +
                                 " is out of range (" + std::to_string(min) + ".." +
                                 std::to_string(max) + ")");
    return std::nullopt;
  }
  return v;
}

std::optional<std::vector<std::int64_t>> TableReader::integers(std::string_view key,
                                                               std::int64_t min, std::int64_t max) {
  const toml::node* n = get(key);
  if (!n) return std::nullopt;
  const toml::array* a = n->as_array();
  if (!a) {
    wrong_type(key, *n, "an array of integers");
    return std::nullopt;
  }
  std::vector<std::int64_t> out;
  bool ok = true;
  for (const toml::node& e : *a) {
    if (!e.is_integer()) {
      errors_.add(e.source(), std::string(key) + " in " + what_ + " must hold integers, not " +
                                  std::string(toml_type_name(e)));
      ok = false;
      continue;
    }
    const std::int64_t v = e.as_integer()->get();
    if (v < min || v > max) {
      errors_.add(e.source(), std::string(key) + " in " + what_ + ": " + std::to_string(v) +
                                  " is out of range (" + std::to_string(min) + ".." +
                                  std::to_string(max) + ")");
      ok = false;
      continue;
    }
    out.push_back(v);
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<std::vector<std::string>> TableReader::strings(std::string_view key) {
  const toml::node* n = get(key);
  if (!n) return std::nullopt;
  const toml::array* a = n->as_array();
  if (!a) {
    wrong_type(key, *n, "an array of strings");
    return std::nullopt;
  }
  std::vector<std::string> out;
  bool ok = true;
  for (const toml::node& e : *a) {
    if (!e.is_string()) {
      errors_.add(e.source(), std::string(key) + " in " + what_ + " must hold strings, not " +
                                  std::string(toml_type_name(e)));
      ok = false;
      continue;
    }
    out.push_back(e.as_string()->get());
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<std::vector<OutputRef>> TableReader::names(std::string_view key, bool required,
                                                         bool may_be_empty) {
  const toml::node* n = get(key);
  if (!n) {
    if (required) errors_.add(where(), what_ + " is missing required key " + std::string(key));
    return std::nullopt;
  }
  std::vector<OutputRef> out;
  if (n->is_string()) {
    out.push_back({n->as_string()->get(), n->source()});
    return out;
  }
  const toml::array* a = n->as_array();
  if (!a) {
    wrong_type(key, *n, "an array of link or sink names");
    return std::nullopt;
  }
  bool ok = true;
  for (const toml::node& e : *a) {
    if (!e.is_string()) {
      errors_.add(e.source(), std::string(key) + " in " + what_ + " must hold names, not " +
                                  std::string(toml_type_name(e)));
      ok = false;
      continue;
    }
    const std::string& v = e.as_string()->get();
    for (const auto& seen : out)
      if (seen.name == v) {
        errors_.add(e.source(), std::string(key) + " in " + what_ + " names \"" + shown(v) +
                                    "\" twice (first at line " +
                                    std::to_string(seen.where.begin.line) + ")");
        ok = false;
      }
    out.push_back({v, e.source()});
  }
  if (ok && out.empty() && !may_be_empty) {
    errors_.add(n->source(), std::string(key) + " in " + what_ + " is empty");
    ok = false;
  }
  if (!ok) return std::nullopt;
  return out;
}

const toml::table* TableReader::subtable(std::string_view key) {
  const toml::node* n = get(key);
  if (!n) return nullptr;
  if (const toml::table* t = n->as_table()) return t;
  wrong_type(key, *n, "a table");
  return nullptr;
}

std::optional<std::string> TableReader::choice(std::string_view key,
                                               std::initializer_list<std::string_view> choices) {
  return choice(key, std::span<const std::string_view>(choices.begin(), choices.size()));
}

std::optional<std::string> TableReader::choice(std::string_view key,
                                               std::span<const std::string_view> choices) {
  auto v = string(key);
  if (!v) return std::nullopt;
  for (auto c : choices)
    if (*v == c) return v;
  std::string list;
  for (auto c : choices)
    list += (list.empty() ? "" : ", ") + std::string(c);
  errors_.add(where(key), std::string(key) + " = \"" + shown(*v) + "\" in " + what_ +
                              " is not one of: " + list);
  return std::nullopt;
}

void TableReader::reject(std::string_view key, std::string_view why) {
  known_.emplace(key);
  if (const toml::node* n = table_.get(key))
    errors_.add(n->source(),
                std::string(key) + " is not allowed in " + what_ + ": " + std::string(why));
}

void TableReader::finish() {
  for (const auto& [k, v] : table_) {
    if (known_.count(k.str())) continue;
    errors_.add(k.source(), "unknown key " + shown(k.str()) + " in " + what_);
  }
}

}  // namespace fdlinkd
