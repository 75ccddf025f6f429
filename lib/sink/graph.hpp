// Graph: the stages a received batch goes through, and how their outputs are sent.
//
// Built once from the config's [[sink]] tables (and, in tests, by hand): one node per sink,
// each with its outputs resolved to a link (egress: writer/) or to another node. The graph is
// a DAG; the config refuses cycles. Per worker thread, each output of each node has its own
// pending view batch, and each node its own counters, so no two threads share anything here.
//
// run() is the whole path of one received batch, top to bottom, on the receiving worker:
//   1. the received frames become the owners of their bytes (holders = 1: the first sink's
//      hold), and the first sink gets a view of them;
//   2. process(node, view): the sink emits descriptors into its outputs' pending batches
//      (each emit is one more holder), then lets go of its input (one less);
//   3. each output is flushed in order: a link's goes to Link::transmit (egress changes a frame
//      only when it is the last holder, or on a copy), a sink's is processed as in 2;
//   4. the worker's copy area is reset: everything that pointed into it has been sent.
// So when run() returns, every frame has been sent, dropped or copied out (pcap): the
// dispatcher may hand the ring blocks back to the kernel.
#pragma once

#include <cstddef>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core/batch.hpp"
#include "core/counters.hpp"
#include "core/worker.hpp"
#include "sink/sink.hpp"

namespace fdlinkd {

class Link;
class LinkSet;
struct Config;

class Graph {
 public:
  static constexpr std::size_t npos = std::numeric_limits<std::size_t>::max();

  /// Where an output goes: a link, or another node of the graph.
  struct Target {
    Link* link = nullptr;
    std::size_t node = npos;
  };

  /// `workers` threads will run it; no batch it sees holds more than `max_batch` frames.
  Graph(unsigned workers, std::size_t max_batch);
  ~Graph();
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  /// Builds one node per [[sink]] of `config`, in order, over the open `links`. On a reload,
  /// `previous` is the running graph: a sink whose settings (its [[sink]] table) are unchanged
  /// is the same object in both graphs, with its counters and state; one whose settings
  /// changed is built anew and takes over what still applies (take_over()).
  /// `fastpath`: the XDP fast path sinks with offload = "xdp" write to (nullptr: none).
  static std::unique_ptr<Graph> build(const Config& config, LinkSet& links, unsigned workers,
                                      const Graph* previous = nullptr,
                                      XdpFastPath* fastpath = nullptr);
  /// Reload, on worker `w`'s thread just before it switches to this graph: sinks that replace
  /// one of the previous graph take over `w`'s part of its state and counters.
  void take_over(Worker& w);
  /// Forgets node `node`'s learned state on worker `w` (Sink::flush_state) and refreshes its
  /// gauges; returns how many entries went. Worker `w`'s thread.
  std::size_t flush_state(Worker& w, std::size_t node);
  /// The nodes kept from the previous graph as they were, and those rebuilt from it.
  std::size_t kept() const { return kept_; }

  /// Adds a node; returns its index. Outputs that name nodes may name ones added later.
  std::size_t add(std::string name, std::shared_ptr<Sink> sink, std::vector<Target> outputs);
  /// The node named `name`, or npos.
  std::size_t find(std::string_view name) const;

  /// Runs batch `rx`, received by worker `w` on the link with index `ingress`, through node
  /// `root` and everything after it (see above).
  void run(Worker& w, std::size_t ingress, std::size_t root, Batch& rx);

  /// The workers that run it, for stages that post work to each other (runtime sets them).
  void set_workers(std::vector<Worker*> workers) { worker_list_ = std::move(workers); }

  std::size_t size() const { return nodes_.size(); }
  const std::string& name(std::size_t node) const { return nodes_[node].name; }
  /// The type of node `node` (nullptr for a node added by hand).
  const SinkType* type(std::size_t node) const { return nodes_[node].type; }
  const Sink& sink(std::size_t node) const { return *nodes_[node].sink; }
  Sink& sink(std::size_t node) { return *nodes_[node].sink; }
  const std::vector<Worker*>& workers() const { return worker_list_; }
  /// Node `node`'s own counters summed over the workers, in counter_names() order.
  std::vector<std::uint64_t> counters(std::size_t node) const;

 private:
  friend class Pass;
  struct PerWorker {
    std::vector<Batch> pending;              ///< one per output
    std::shared_ptr<SinkCounters> counters;  ///< shared with the next graph if the sink is kept
  };
  struct Node {
    std::string name;
    std::shared_ptr<Sink> sink;  ///< shared with the next graph if the sink is kept
    std::vector<Target> outputs;
    std::vector<PerWorker> per_worker;
    const SinkType* type = nullptr;  ///< (nullptr for nodes added by hand)
    std::string settings;
    /// Reload: the sink of the same name and type this one replaces, until take_over().
    std::shared_ptr<Sink> predecessor;
    std::vector<std::shared_ptr<SinkCounters>> predecessor_counters;
  };

  void process(Worker& w, std::size_t ingress, std::size_t node, Batch& in);
  void flush(Worker& w, std::size_t ingress, std::size_t node, std::size_t o);

  unsigned workers_;
  std::size_t max_batch_;
  std::vector<Node> nodes_;
  std::vector<Batch> rx_views_;  ///< per worker: the first sink's view of a received batch
  std::vector<Worker*> worker_list_;
  std::size_t kept_ = 0;
};

}  // namespace fdlinkd
