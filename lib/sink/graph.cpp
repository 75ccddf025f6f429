#include "sink/graph.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>

#include "config/config.hpp"
#include "link/link_set.hpp"

namespace fdlinkd {

std::size_t SinkSetup::link_index(std::string_view name) const {
  if (links) {
    const Link* l = links->find(name);
    return l ? l->index() : Graph::npos;
  }
  for (std::size_t i = 0; i < config.links.size(); ++i)
    if (config.links[i].name == name) return i;
  return Graph::npos;
}

std::size_t SinkSetup::link_slots() const {
  return links ? links->slots() : config.links.size();
}

void Pass::flush(std::size_t o) {
  graph_.flush(worker_, ingress_, node_, o);
}

Graph::Graph(unsigned workers, std::size_t max_batch) : workers_(workers), max_batch_(max_batch) {
  for (unsigned w = 0; w < workers_; ++w)
    rx_views_.emplace_back(max_batch_, 0, w);
}

Graph::~Graph() = default;

std::unique_ptr<Graph> Graph::build(const Config& config, LinkSet& links, unsigned workers,
                                    const Graph* previous, XdpFastPath* fastpath) {
  std::size_t max_batch = 1;
  for (const auto& l : config.links)
    max_batch = std::max<std::size_t>(max_batch, l.rx_batch);
  auto g = std::make_unique<Graph>(workers, max_batch);
  const SinkSetup setup{config, workers, &links, fastpath};
  for (const auto& sc : config.sinks) {
    std::vector<Target> outputs;
    for (const OutputRef& o : sc.type->outputs(sc, config)) {
      Target t;
      t.link = links.find(o.name);
      if (!t.link)
        for (std::size_t i = 0; i < config.sinks.size(); ++i)
          if (config.sinks[i].name == o.name) t.node = i;
      outputs.push_back(t);  // (the config checked that every name exists)
    }
    const Node* old = nullptr;
    if (previous) {
      const std::size_t i = previous->find(sc.name);
      if (i != npos && previous->nodes_[i].type == &sink_type_of(sc)) old = &previous->nodes_[i];
    }
    if (old && old->settings == sc.settings) {  // unchanged: the same sink, counters and all
      const std::size_t n = g->add(sc.name, old->sink, std::move(outputs));
      for (unsigned w = 0; w < workers; ++w)
        g->nodes_[n].per_worker[w].counters = old->per_worker[w].counters;
      ++g->kept_;
    } else {
      const std::size_t n = g->add(sc.name, sink_type_of(sc).create(sc, setup), std::move(outputs));
      if (old) {
        g->nodes_[n].predecessor = old->sink;
        for (unsigned w = 0; w < workers; ++w)
          g->nodes_[n].predecessor_counters.push_back(old->per_worker[w].counters);
      }
    }
    g->nodes_.back().type = &sink_type_of(sc);
    g->nodes_.back().settings = sc.settings;
  }
  return g;
}

void Graph::take_over(Worker& w) {
  for (Node& n : nodes_) {
    if (!n.predecessor) continue;
    n.sink->take_over(*n.predecessor, w);
    const SinkCounters& from = *n.predecessor_counters[w.id];
    SinkCounters& to = *n.per_worker[w.id].counters;
    for (std::size_t i = 0; i < n.sink->counter_names().size(); ++i)
      to.set(i, from.get(i));
    n.sink->refresh_gauges(w, to);  // (the state taken over is not all of the old one)
  }
}

std::size_t Graph::flush_state(Worker& w, std::size_t node) {
  Node& n = nodes_[node];
  const std::size_t flushed = n.sink->flush_state(w);
  n.sink->refresh_gauges(w, *n.per_worker[w.id].counters);
  return flushed;
}

std::size_t Graph::add(std::string name, std::shared_ptr<Sink> sink, std::vector<Target> outputs) {
  Node n;
  n.name = std::move(name);
  for (unsigned w = 0; w < workers_; ++w) {
    PerWorker& pw = n.per_worker.emplace_back();
    for (std::size_t o = 0; o < outputs.size(); ++o)
      pw.pending.emplace_back(max_batch_, 0, w);
    pw.counters = std::make_shared<SinkCounters>(sink->counter_names().size());
  }
  n.sink = std::move(sink);
  n.outputs = std::move(outputs);
  nodes_.push_back(std::move(n));
  return nodes_.size() - 1;
}

std::size_t Graph::find(std::string_view name) const {
  for (std::size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i].name == name) return i;
  return npos;
}

void Graph::run(Worker& w, std::size_t ingress, std::size_t root, Batch& rx) {
  Batch& view = rx_views_[w.id];
  view.clear();
  for (std::size_t i = 0; i < rx.size(); ++i) {
    rx[i].holders = 1;  // the first sink's hold
    Frame v = rx[i];
    v.origin = &rx[i];
    view.push(v);
  }
  process(w, ingress, root, view);
  w.copies.reset();
}

void Graph::process(Worker& w, std::size_t ingress, std::size_t node, Batch& in) {
  Node& n = nodes_[node];
  PerWorker& pw = n.per_worker[w.id];
  Pass pass(*this, node, w, ingress, pw.pending.data(), pw.counters.get(), worker_list_);
  n.sink->process(pass, in);
  for (std::size_t i = 0; i < in.size(); ++i)
    --in[i].owner()->holders;
  for (std::size_t o = 0; o < n.outputs.size(); ++o)
    flush(w, ingress, node, o);
}

void Graph::flush(Worker& w, std::size_t ingress, std::size_t node, std::size_t o) {
  Batch& b = nodes_[node].per_worker[w.id].pending[o];
  if (b.empty()) return;
  const Target t = nodes_[node].outputs[o];
  if (t.link) {
    t.link->transmit(w, b);
    for (std::size_t i = 0; i < b.size(); ++i)
      --b[i].owner()->holders;
  } else {
    process(w, ingress, t.node, b);
  }
  b.clear();
}

std::vector<std::uint64_t> Graph::counters(std::size_t node) const {
  const Node& n = nodes_[node];
  std::vector<std::uint64_t> sum(n.sink->counter_names().size(), 0);
  for (const PerWorker& pw : n.per_worker)
    for (std::size_t i = 0; i < sum.size(); ++i)
      sum[i] += pw.counters->get(i);
  n.sink->add_own_counters(sum);
  return sum;
}

}  // namespace fdlinkd
