// TableReader: reads the keys of one TOML table into typed values, collecting every mistake
// as `path:line:col: message` instead of stopping at the first one.
//
// Each read marks its key as known; finish() then reports every key nobody asked for, so a
// typo ("intreface") is an error, not a silently ignored line.
#pragma once

#include <toml++/toml.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fdlinkd {

/// A link or sink named in the config (a sink's output), with where it is written.
struct OutputRef {
  std::string name;
  toml::source_region where;
};

struct ConfigError {
  std::string file;
  std::uint32_t line = 0;
  std::uint32_t column = 0;
  std::string message;

  /// "path:line:col: message" ("path: message" when line is 0: the file as a whole)
  std::string to_string() const;
};

/// Every error found while reading one config file, in file order. Only the first kMaxKept are
/// kept (a file of a million bad lines must not take a million messages' memory); the rest
/// are counted.
class ConfigErrors {
 public:
  static constexpr std::size_t kMaxKept = 100;
  /// A message is cut to this many bytes (a value it quotes is already cut by shown()).
  static constexpr std::size_t kMaxMessage = 512;

  void add(const toml::source_region& where, std::string message);
  void add(std::string file, std::uint32_t line, std::uint32_t column, std::string message);
  bool empty() const { return total_ == 0; }
  /// How many errors were found, kept or not.
  std::size_t size() const { return total_; }
  /// The kept errors, sorted by file (in the order files were announced with read_file(), the
  /// main file first), then line and column.
  std::vector<ConfigError> sorted() const;
  /// Says that `file` is read next (errors in it sort after those of the files before).
  void read_file(const std::string& file) { files_.push_back(file); }

 private:
  std::vector<std::string> files_;
  std::vector<ConfigError> errors_;
  std::size_t total_ = 0;
};

/// A value from the config as it may appear in a message: control characters (and bytes that
/// are not printable ASCII) escaped as \xNN, and cut after `max` bytes with the length said.
std::string shown(std::string_view value, std::size_t max = 64);

/// Whether `s` holds a NUL or another control character (never valid in a name or a path).
bool has_control_char(std::string_view s);

class TableReader {
 public:
  /// `what` names the table in messages ("[daemon]", "link \"a\"").
  TableReader(const toml::table& table, std::string what, ConfigErrors& errors);

  const toml::table& table() const { return table_; }
  const std::string& what() const { return what_; }
  ConfigErrors& errors() { return errors_; }
  /// Where the table starts: the place to report a missing key.
  const toml::source_region& where() const { return table_.source(); }

  bool has(std::string_view key) const { return table_.contains(key); }
  /// Where `key`'s value is (the table itself if the key is absent).
  const toml::source_region& where(std::string_view key) const;

  std::optional<std::string> string(std::string_view key, bool required = false);
  std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max);
  std::optional<bool> boolean(std::string_view key);
  /// "10s", "250ms", "1m", "500us", "0s".
  std::optional<std::chrono::microseconds> duration(std::string_view key);
  /// A byte size: an integer, or a string such as "64KiB", "1MiB", "4096".
  std::optional<std::uint64_t> size(std::string_view key, std::uint64_t min, std::uint64_t max);
  /// An array of integers, each in min..max.
  std::optional<std::vector<std::int64_t>> integers(std::string_view key, std::int64_t min,
                                                    std::int64_t max);
  /// A list of names of links or sinks: an array of strings (a single string is taken as a
  /// list of one). Each keeps where it is written; a name given twice is an error.
  std::optional<std::vector<OutputRef>> names(std::string_view key, bool required = false,
                                              bool may_be_empty = false);
  /// An array of strings.
  std::optional<std::vector<std::string>> strings(std::string_view key);
  /// A sub-table (e.g. [link.ring]); nullptr when absent, reported when not a table.
  const toml::table* subtable(std::string_view key);
  /// A string that must be one of `choices`.
  std::optional<std::string> choice(std::string_view key,
                                    std::initializer_list<std::string_view> choices);
  std::optional<std::string> choice(std::string_view key,
                                    std::span<const std::string_view> choices);
  /// Whether `key` was read, skipped or rejected already.
  bool known(std::string_view key) const { return known_.count(key) != 0; }

  /// Reports `key` as present but not allowed here (with `why`), and marks it known.
  void reject(std::string_view key, std::string_view why);
  /// Marks `key` known without reading it (its checks are moot after an earlier error).
  void skip(std::string_view key) { known_.emplace(key); }
  /// Reports every key not read; call once at the end.
  void finish();

 private:
  const toml::node* get(std::string_view key);
  void wrong_type(std::string_view key, const toml::node& n, std::string_view expected);

  const toml::table& table_;
  std::string what_;
  ConfigErrors& errors_;
  std::set<std::string, std::less<>> known_;
};

/// Parses "10s", "250ms", "1m", "1h", "500us" (and "0s"); nullopt on anything else.
std::optional<std::chrono::microseconds> parse_duration(std::string_view s);

/// Parses "4096", "64KiB", "1MiB", "1GiB" (also "KB"/"MB" style for powers of 1000).
std::optional<std::uint64_t> parse_size(std::string_view s);

/// The TOML type of a node as a user would say it ("string", "integer", "table", ...).
std::string_view toml_type_name(const toml::node& n);

}  // namespace fdlinkd
