// LinkSet: the links of the running config, by name and by index.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "link/link.hpp"

namespace fdlinkd {

/// The links of the running config, by name. A link keeps its index (Pass::ingress(), what a
/// bridge maps to its ports) for as long as it is in the set, across reloads: a reload takes
/// the links it removes out and puts new ones in free slots.
class LinkSet {
 public:
  /// Adds `link` in slot `index`, or in the first free slot when `index` is npos.
  void add(std::unique_ptr<Link> link, std::size_t index = npos);
  /// Takes link `name` out of the set (its slot becomes free); nullptr if there is none.
  std::unique_ptr<Link> take(std::string_view name);
  Link* find(std::string_view name) const;
  /// Every link, in slot order.
  const std::vector<Link*>& all() const { return list_; }
  /// How many slots there are (one past the largest index).
  std::size_t slots() const { return slots_.size(); }

  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

 private:
  void relist();
  std::vector<std::unique_ptr<Link>> slots_;
  std::vector<Link*> list_;
};

}  // namespace fdlinkd
