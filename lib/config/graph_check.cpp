#include "config/graph_check.hpp"

#include <map>

namespace fdlinkd {

namespace {

template <class T>
void check_unique(const std::vector<T>& items, std::string_view kind, ConfigErrors& errors) {
  std::map<std::string, const T*, std::less<>> seen;
  for (const auto& it : items) {
    if (it.name.empty()) continue;
    auto [pos, fresh] = seen.emplace(it.name, &it);
    if (!fresh) {
      const auto& first = pos->second->name_where;
      const std::string file =
          first.path && (!it.name_where.path || *first.path != *it.name_where.path)
              ? *first.path + ":"
              : "line ";
      errors.add(it.name_where, "duplicate " + std::string(kind) + " name \"" + it.name +
                                    "\" (first defined at " + file +
                                    std::to_string(first.begin.line) + ")");
    }
  }
}

std::string_view layer_name(Layer l) {
  return l == Layer::ethernet ? "Ethernet frames" : "IP packets";
}

std::string describe_link(const LinkConfig& l) {
  return "link \"" + l.name + "\" (" + std::string(l.type_name()) + ", " +
         std::string(layer_name(l.layer)) + ")";
}

}  // namespace

void check_names(const Config& c, ConfigErrors& errors) {
  check_unique(c.links, "link", errors);
  check_unique(c.sinks, "sink", errors);
}

void check_graph(const Config& c, ConfigErrors& errors) {
  for (const auto& l : c.links) {
    if (l.sink.empty() || l.name.empty()) continue;
    if (!c.find_sink(l.sink))
      errors.add(l.sink_where, "link \"" + l.name + "\" sends to sink \"" + shown(l.sink) +
                                   "\", which is not defined");
  }
  const std::size_t n = c.sinks.size();
  std::vector<std::vector<OutputRef>> outs(n);
  auto sink_index = [&](std::string_view name) {
    if (name.empty()) return n;  // a missing name, already reported, names nothing
    for (std::size_t i = 0; i < n; ++i)
      if (c.sinks[i].name == name) return i;
    return n;
  };
  for (std::size_t i = 0; i < n; ++i) {
    const SinkConfig& s = c.sinks[i];
    if (!s.type || !s.options) continue;
    outs[i] = s.type->outputs(s, c);
    for (const OutputRef& o : outs[i])
      if (!c.find_link(o.name) && sink_index(o.name) == n)
        errors.add(o.where, "sink \"" + s.name + "\" sends to \"" + shown(o.name) +
                                "\", which is neither a link nor a sink");
  }
  // Cycles: depth-first, reported at the output that closes one.
  std::vector<int> state(n, 0);  // 0 new, 1 on the path, 2 done
  bool cyclic = false;
  auto visit = [&](auto&& self, std::size_t i) -> void {
    state[i] = 1;
    for (const OutputRef& o : outs[i]) {
      const std::size_t j = sink_index(o.name);
      if (j == n || c.find_link(o.name)) continue;
      if (state[j] == 1) {
        errors.add(o.where, "sink \"" + c.sinks[i].name + "\" sends to sink \"" + o.name +
                                "\", which leads back to it: the sinks form a cycle");
        cyclic = true;
      } else if (state[j] == 0) {
        self(self, j);
      }
    }
    state[i] = 2;
  };
  for (std::size_t i = 0; i < n; ++i)
    if (state[i] == 0) visit(visit, i);
  if (cyclic) return;
  // What each link's frames reach.
  for (const auto& l : c.links) {
    const std::size_t root = sink_index(l.sink);
    if (l.name.empty() || root == n) continue;
    std::vector<bool> seen(n, false);
    std::vector<std::size_t> todo = {root};
    seen[root] = true;
    bool reported = false;
    while (!todo.empty() && !reported) {
      const std::size_t i = todo.back();
      todo.pop_back();
      const SinkConfig& s = c.sinks[i];
      const std::string who = i == root ? "it" : "sink \"" + s.name + "\", after it,";
      if (s.type && s.type->ethernet_only && l.layer != Layer::ethernet) {
        errors.add(l.sink_where, describe_link(l) + " cannot use sink \"" + l.sink + "\": " + who +
                                     " takes only Ethernet frames (type " +
                                     std::string(s.type->name) + ")");
        break;
      }
      for (const OutputRef& o : outs[i]) {
        if (const LinkConfig* to = c.find_link(o.name)) {
          if (to->layer == l.layer) continue;
          errors.add(l.sink_where, describe_link(l) + " cannot use sink \"" + l.sink +
                                       "\": " + who + " sends to " + describe_link(*to));
          reported = true;
          break;
        }
        const std::size_t j = sink_index(o.name);
        if (j < n && !seen[j]) {
          seen[j] = true;
          todo.push_back(j);
        }
      }
    }
  }
}

}  // namespace fdlinkd
