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

  /// Builds one node per [[sink]] of `config`, in order, over the open `links`.
  static std::unique_ptr<Graph> build(const Config& config, LinkSet& links, unsigned workers);

  /// Adds a node; returns its index. Outputs that name nodes may name ones added later.
  std::size_t add(std::string name, std::unique_ptr<Sink> sink, std::vector<Target> outputs);
  /// The node named `name`, or npos.
  std::size_t find(std::string_view name) const;

  /// Runs batch `rx`, received on `ingress` by worker `w`, through node `root` and everything
  /// after it (see above).
  void run(Worker& w, const Link& ingress, std::size_t root, Batch& rx);

  /// The workers that run it, for stages that post work to each other (runtime sets them).
  void set_workers(std::vector<Worker*> workers) { worker_list_ = std::move(workers); }
  /// Runs every sink's log_state() on worker 0's thread.
  void log_state();

  std::size_t size() const { return nodes_.size(); }
  const std::string& name(std::size_t node) const { return nodes_[node].name; }
  const Sink& sink(std::size_t node) const { return *nodes_[node].sink; }
  /// Node `node`'s own counters summed over the workers, in counter_names() order.
  std::vector<std::uint64_t> counters(std::size_t node) const;

 private:
  friend class Pass;
  struct PerWorker {
    std::vector<Batch> pending;  ///< one per output
    std::unique_ptr<SinkCounters> counters;
  };
  struct Node {
    std::string name;
    std::unique_ptr<Sink> sink;
    std::vector<Target> outputs;
    std::vector<PerWorker> per_worker;
  };

  void process(Worker& w, std::size_t ingress, std::size_t node, Batch& in);
  void flush(Worker& w, std::size_t ingress, std::size_t node, std::size_t o);

  unsigned workers_;
  std::size_t max_batch_;
  std::vector<Node> nodes_;
  std::vector<Batch> rx_views_;  ///< per worker: the first sink's view of a received batch
  std::vector<Worker*> worker_list_;
};

}  // namespace fdlinkd
