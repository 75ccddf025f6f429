// Sink: where a link's received batches go.
//
// Each [[sink]] in the config names a `type`; sink_types() is the one explicit table mapping a
// type name to its help line, its config reader, its cross-checks and its factory. A sink type
// lives in one file pair named after its TOML type (forward.{hpp,cpp}, ...).
#pragma once

#include <memory>
#include <span>
#include <string_view>

namespace fdlinkd {

class Batch;
class Link;
class LinkSet;
class TableReader;
class ConfigErrors;
struct Config;
struct SinkConfig;

/// The typed, validated options of one sink type (each type derives its own).
struct SinkOptions {
  virtual ~SinkOptions() = default;
};

class Sink {
 public:
  virtual ~Sink() = default;
  /// Takes one batch received on `from`. Runs on the worker thread of the receiving fd; must
  /// not block, allocate or lock per frame. Frames it cannot deliver are counted, not queued.
  virtual void consume(Link& from, Batch& batch) = 0;
};

struct SinkType {
  std::string_view name;  ///< the TOML `type`
  std::string_view help;  ///< one line for --help and `fdlinkctl`
  /// Reads this type's own keys (the common `name` and `type` are already read).
  std::unique_ptr<SinkOptions> (*configure)(TableReader& table);
  /// Cross-checks against the whole config (links named exist, layers match, ...).
  void (*validate)(const SinkConfig& sink, const Config& config, ConfigErrors& errors);
  /// Builds the sink once every link is open.
  std::unique_ptr<Sink> (*create)(const SinkConfig& sink, LinkSet& links);
};

/// Every sink type fdlinkd knows, in the order `--help` lists them.
std::span<const SinkType* const> sink_types();
const SinkType* find_sink_type(std::string_view name);

}  // namespace fdlinkd
