// Kinds: what the config knows of a link type or a sink type, which is only what a table row
// says. The types themselves live with the stage they belong to (link/, sink/), each in one
// file pair with its own options struct and its own key reader; their tables
// (link/link_types.cpp, sink/sink_types.cpp) hand config the rows as LinkKind and SinkKind,
// and the link and sink stages extend those rows with their factories. So config depends on
// core only, and a new type is one file pair and one table row.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "config/reader.hpp"

namespace fdlinkd {

struct Config;
struct LinkConfig;
struct SinkConfig;

/// One key a type takes, for --list-links, --list-sinks and the docs.
struct ConfigKey {
  std::string_view name;
  std::string_view help;
  /// What a link of another type that does not take the key is told, if more than "only
  /// <type> links take it" (e.g. "it sets what a TAP/TUN device may hand fdlinkd").
  std::string_view refused = {};
};

/// The typed, validated keys of one link type (each type derives its own).
struct LinkOptions {
  virtual ~LinkOptions() = default;
};

/// The typed, validated keys of one sink type (each type derives its own).
struct SinkOptions {
  virtual ~SinkOptions() = default;
  /// offload = "xdp" (forward and bridge sinks take it): the runtime then loads the XDP fast
  /// path before it builds the sinks.
  bool offload_xdp = false;
};

/// A link type as the config sees it: its `type` name and how to read its keys.
struct LinkKind {
  std::string_view name;            ///< the TOML `type`
  std::string_view help;            ///< one line for --list-links
  std::span<const ConfigKey> keys;  ///< its own keys (besides the common ones)
  /// Reads its own keys from `r` (the common name, type, sink, netns, mtu and rx_batch are
  /// read already): fills what `l` says to the other stages (layer, fds, interface, ...) and
  /// returns its options. Errors go to r.errors(). A key it does not take but another type
  /// does is reported by the caller ("only af_xdp links take it"), unless it rejects it first.
  std::shared_ptr<const LinkOptions> (*read)(TableReader& r, LinkConfig& l) = nullptr;
  /// Checks of its own against the whole config (vxlan: one VNI per socket); may be nullptr.
  void (*validate)(const Config& config, ConfigErrors& errors) = nullptr;
};

/// A sink type as the config sees it.
struct SinkKind {
  std::string_view name;            ///< the TOML `type`
  std::string_view help;            ///< one line for --help and --list-sinks
  std::span<const ConfigKey> keys;  ///< its own keys, for --list-sinks
  bool ethernet_only = false;       ///< cannot take IP packets (from a TUN link)
  /// Reads this type's own keys (the common `name` and `type` are already read).
  std::unique_ptr<SinkOptions> (*configure)(TableReader& table) = nullptr;
  /// The links and sinks it sends to, in the order of its outputs (checked by the config:
  /// each exists, no cycle, frames of the right kind).
  std::vector<OutputRef> (*outputs)(const SinkConfig& sink, const Config& config) = nullptr;
  /// Checks of its own against the whole config; may be nullptr.
  void (*validate)(const SinkConfig& sink, const Config& config, ConfigErrors& errors) = nullptr;
  /// A sink with ports (a bridge) takes `link`, whose `sink` names it, as a port when it does
  /// not list it already: a link in a drop-in file joins a bridge of the main file. `vlans`
  /// is the link's `vlans` table (nullptr: none), written at `where`. Returns whether it
  /// added the port. nullptr: the type has no ports to join.
  bool (*adopt)(SinkOptions& options, const LinkConfig& link, const toml::table* vlans,
                const toml::source_region& where, ConfigErrors& errors) = nullptr;
};

/// A table of types (link/link_types.cpp, sink/sink_types.cpp) as config sees its rows.
template <class Kind, class Type, std::size_t N>
std::array<const Kind*, N> kinds_of(const Type* const (&types)[N]) {
  std::array<const Kind*, N> out{};
  for (std::size_t i = 0; i < N; ++i)
    out[i] = types[i];
  return out;
}

/// The types a config may name: the link and sink tables.
struct ConfigKinds {
  std::span<const LinkKind* const> links;
  std::span<const SinkKind* const> sinks;
  const LinkKind* link(std::string_view name) const;
  const SinkKind* sink(std::string_view name) const;
};

}  // namespace fdlinkd
