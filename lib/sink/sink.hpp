// Sink: a stage of the graph that received frames go through.
//
// Each [[link]] names the sink its received frames go to; each [[sink]] names a `type` and,
// with keys of its own (`to`, `match`, `ports`, ...), the links and sinks it sends to: its
// outputs, numbered in the order its type lists them. The graph (graph.hpp) runs a sink on the
// worker thread of the fd that received the frames, through process(), which looks at each
// frame and emits it to none, one or several outputs. Emitting passes a descriptor, never the
// bytes: a frame that goes to two places is the same bytes in both, and whoever changes a
// frame (egress finishing a checksum, a stage rewriting a header) first makes it writable,
// which copies it only if someone else still holds it unchanged.
//
// sink_types() is the one explicit table mapping a type name to its help line, its keys, its
// config reader, its outputs and its factory (config sees its rows as SinkKind). A sink type lives
// in one file pair named after its TOML type (forward.{hpp,cpp}, tee, ...).
#pragma once

#include <toml++/toml.h>

#include <bitset>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/kinds.hpp"
#include "config/reader.hpp"
#include "core/batch.hpp"
#include "core/counters.hpp"
#include "core/log.hpp"
#include "core/worker.hpp"
#include "link/fastpath.hpp"

namespace fdlinkd {

class Graph;
class LinkSet;
struct Config;
struct SinkConfig;

/// What a sink's process() gets besides its frames: the worker it runs on, where the frames
/// came in, and the way out to its outputs and its counters. Made by the graph for each call.
class Pass {
 public:
  Pass(Graph& graph, std::size_t node, Worker& worker, std::size_t ingress, Batch* outputs,
       SinkCounters* counters, std::span<Worker* const> workers)
      : worker_(worker),
        workers_(workers),
        graph_(graph),
        node_(node),
        ingress_(ingress),
        outputs_(outputs),
        counters_(counters) {}

  Worker& worker() { return worker_; }
  /// Every worker of the daemon (to post work to another one's io_context).
  std::span<Worker* const> workers() const { return workers_; }
  /// The link the frames were received on, as its index in the config's [[link]] list.
  std::size_t ingress() const { return ingress_; }

  /// Hands frame `f` to output `o`; the same frame may go to several outputs.
  void emit(std::size_t o, const Frame& f) {
    Batch& b = outputs_[o];
    if (b.full()) flush(o);
    Frame g = f;
    g.origin = g.owner();
    ++g.origin->holders;
    b.push(g);
  }
  /// Adds `n` to this sink's counter number `i` (its type's counter_names()).
  void count(std::size_t i, std::uint64_t n = 1) { counters_->add(i, n); }
  /// Makes `f` safe to change (make_writable); false: no copy slot, drop it (count it).
  bool writable(Frame& f) { return make_writable(f, worker_.copies); }
  /// Points `f`, a descriptor of a frame this stage holds, at a new private copy of its bytes
  /// (to make a variant of it while the original goes elsewhere unchanged); the stage must
  /// release(f) when done with it. False: no copy slot.
  bool copy(Frame& f) { return worker_.copies.copy(f); }
  /// Lets go of a frame made with copy().
  static void release(Frame& f) { --f.owner()->holders; }
  /// Sets this sink's counter `i` on this worker to `v` (a gauge, such as a table size).
  void set(std::size_t i, std::uint64_t v) { counters_->set(i, v); }

 private:
  void flush(std::size_t o);

  Worker& worker_;
  std::span<Worker* const> workers_;
  Graph& graph_;
  std::size_t node_;
  std::size_t ingress_;
  Batch* outputs_;
  SinkCounters* counters_;
};

/// What a sink with offload = "xdp" lets the kernel do with the frames of one of its input
/// links (link/fastpath.hpp): the link's row in the fast path and where its frames may go.
struct OffloadPlan {
  fdlinkd_fp_port port{};           ///< mode, out, bridge, VLANs (max_len: the runtime's)
  std::bitset<4096> trunk_vlans;    ///< a trunk port's tagged VLANs
  std::vector<std::size_t> egress;  ///< the links (by index) its frames may leave through
  std::string why_not;              ///< empty: the sink can offload this input
};

class Sink {
 public:
  virtual ~Sink() = default;
  /// Decides where each frame of `in` goes (Pass::emit). Runs on the worker thread of the fd
  /// that received them; must not block, allocate or lock per frame. Frames it does not emit
  /// are dropped: count them under one of its counters.
  virtual void process(Pass& pass, Batch& in) = 0;
  /// Names of this sink's own counters, shown with the sink's name in `stats` events.
  virtual std::span<const std::string_view> counter_names() const { return {}; }
  /// Adds counters that a thread of the sink's own keeps (not a worker's) to `values`, in
  /// counter_names() order.
  virtual void add_own_counters(std::span<std::uint64_t> /*values*/) const {}
  /// The sink's state (a bridge's MAC table) as worker `w` sees it, a row of fields per entry;
  /// runs on that worker's thread (SIGUSR1, `fdlinkctl fdb`).
  virtual std::vector<std::vector<log::Field>> state(Worker& /*w*/) const { return {}; }
  /// Whether the sink has a state that state() shows (a bridge, even with an empty table).
  virtual bool has_state() const { return false; }
  /// Whether counter `i` is a gauge (a table size) rather than a count of events.
  virtual bool is_gauge(std::size_t /*i*/) const { return false; }
  /// Forgets worker `w`'s learned state (`fdlinkctl fdb flush`); returns how many entries.
  /// Runs on that worker's thread (through Graph::flush_state, which then refreshes gauges).
  virtual std::size_t flush_state(Worker& /*w*/) { return 0; }
  /// Sets worker `w`'s gauges (a table size) in `counters` from the state as it is now: after
  /// a flush or a take-over, which change the state outside process(). Worker `w`'s thread.
  virtual void refresh_gauges(Worker& /*w*/, SinkCounters& /*counters*/) const {}
  /// Reload: this sink replaces `old`, a sink of the same type and name whose settings
  /// changed; takes over the part of worker `w`'s state that still applies (a bridge's learned
  /// MACs on ports it still has). Runs on worker `w`'s thread, between two batches, while no
  /// other thread uses `w`'s state of either sink.
  virtual void take_over(Sink& /*old*/, Worker& /*w*/) {}
  /// Whether the sink was given offload = "xdp".
  virtual bool offloads() const { return false; }
  /// With offload = "xdp": what the fast path may do with the frames of link `ingress` (an
  /// input of this sink); the runtime checks that the links can take part (offload.cpp).
  virtual OffloadPlan offload_plan(std::size_t /*ingress*/) const {
    return {{}, {}, {}, "this sink type has no XDP offload"};
  }
};

/// Reads a sink's `offload` key ("off" or "xdp"; forward and bridge sinks take it).
bool read_offload(TableReader& r);

/// One key of a sink type, for --list-sinks.
using SinkKey = ConfigKey;

/// What a sink type's factory may use besides its own options.
struct SinkSetup {
  const Config& config;
  unsigned workers = 1;
  /// The open links; without them (tests), a link's index is its place in config.links.
  const LinkSet* links = nullptr;
  /// Index of link `name` (the value Pass::ingress() gives).
  std::size_t link_index(std::string_view name) const;
  /// One past the largest link index.
  std::size_t link_slots() const;
  /// The XDP fast path, when the runtime has one (a bridge with offload = "xdp" writes the
  /// MACs it learns into it); nullptr otherwise.
  XdpFastPath* fastpath = nullptr;
};

/// A row of the table of sink types: what config reads (config/kinds.hpp: name, help, keys,
/// reader, outputs, checks), and the factory.
struct SinkType : SinkKind {
  /// Builds the sink once every link is open.
  std::unique_ptr<Sink> (*create)(const SinkConfig& sink, const SinkSetup& setup) = nullptr;
};

/// Every sink type fdlinkd knows, in the order --list-sinks prints them.
std::span<const SinkType* const> sink_types();
/// The same rows as config sees them.
std::span<const SinkKind* const> sink_kinds();
/// The row of `config`'s type (config.type is one of sink_kinds()).
const SinkType& sink_type_of(const SinkConfig& config);

}  // namespace fdlinkd
