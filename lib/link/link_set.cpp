#include "link/link_set.hpp"

namespace fdlinkd {

void LinkSet::add(std::unique_ptr<Link> link, std::size_t index) {
  if (index == npos) {
    index = 0;
    while (index < slots_.size() && slots_[index])
      ++index;
  }
  if (index >= slots_.size()) slots_.resize(index + 1);
  link->set_index(index);
  slots_[index] = std::move(link);
  relist();
}

std::unique_ptr<Link> LinkSet::take(std::string_view name) {
  for (auto& l : slots_)
    if (l && l->name() == name) {
      auto out = std::move(l);
      while (!slots_.empty() && !slots_.back())
        slots_.pop_back();
      relist();
      return out;
    }
  return nullptr;
}

Link* LinkSet::find(std::string_view name) const {
  for (Link* l : list_)
    if (l->name() == name) return l;
  return nullptr;
}

void LinkSet::relist() {
  list_.clear();
  for (const auto& l : slots_)
    if (l) list_.push_back(l.get());
}

}  // namespace fdlinkd
