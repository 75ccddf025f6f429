// The table of link types: the only place that lists them. A row is what config reads (the
// type's name, help, keys and key reader: config/kinds.hpp) and what the link stage does with
// it (its factory). A new link type is one file pair named after its TOML type, one row in
// link_types.cpp, one line in lib/CMakeLists.txt and its docs (docs/architecture.md, "Adding a
// link type").
#pragma once

#include <memory>
#include <span>

#include "config/kinds.hpp"

namespace fdlinkd {

class Link;
struct Config;
struct LinkConfig;

struct LinkType : LinkKind {
  /// Builds the link for `config` (not opened yet).
  std::unique_ptr<Link> (*make)(const LinkConfig& config) = nullptr;
  /// Runs before any link of `config` opens (af_xdp: plans the memory its sockets share); may
  /// be nullptr.
  void (*prepare)(const Config& config) = nullptr;
  /// One link of this type per interface at a time (af_xdp: an interface holds one XDP
  /// program): a reload that renames one opens the new one once the old one has closed.
  bool exclusive_interface = false;
};

/// Every link type, in the order --list-links prints them.
std::span<const LinkType* const> link_types();
/// The same rows as config sees them.
std::span<const LinkKind* const> link_kinds();
/// The row of `config`'s type (config().type is one of link_kinds()).
const LinkType& link_type_of(const LinkConfig& config);
/// Builds the link for `config` (not opened yet).
std::unique_ptr<Link> make_link(const LinkConfig& config);

}  // namespace fdlinkd
