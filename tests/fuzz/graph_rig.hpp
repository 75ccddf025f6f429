// GraphRig: a config's links and sinks, built the way the daemon builds them (parse_config,
// then Graph::build), over links that have no fds: what a link would send is handed to a
// check instead, after every byte of it is read (so ASan checks each frame's bounds). Frames
// are fed to a link's sink as a dispatcher feeds them, one batch at a time, on one worker.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "check.hpp"
#include "config/config.hpp"
#include "core/batch.hpp"
#include "core/worker.hpp"
#include "link/link.hpp"
#include "link/link_set.hpp"
#include "link/rx.hpp"
#include "runtime/kinds.hpp"
#include "sink/graph.hpp"

namespace fdlinkd::fuzz {

class GraphRig {
 public:
  /// Called for every batch a link sends: the link, the batch, and the link the frames
  /// came in on.
  using Check = std::function<void(const Link& to, const Batch& out, std::size_t ingress)>;

  explicit GraphRig(const std::string& toml, Check check = {}) : check_(std::move(check)) {
    ConfigResult r = parse_config(toml, "rig.toml");
    if (!r.config) {
      for (const auto& e : r.errors)
        std::fprintf(stderr, "rig config: %s\n", e.to_string().c_str());
      std::abort();
    }
    config_ = std::move(*r.config);
    for (std::size_t i = 0; i < config_.links.size(); ++i) {
      auto l = std::make_unique<RigLink>(config_.links[i], *this);
      l->set_index(i);
      l->set_workers(1);
      links_.add(std::move(l), i);
    }
    graph_ = Graph::build(config_, links_, 1);
    worker_ =
        std::make_unique<Worker>(io_, 0, config_.max_wire_capacity(), config_.max_rx_capacity());
    graph_->set_workers({worker_.get()});
    batch_ = std::make_unique<Batch>(kBatch, config_.max_rx_capacity(), 0);
  }

  static constexpr std::size_t kBatch = 16;
  Batch& batch() { return *batch_; }
  Worker& worker() { return *worker_; }
  Graph& graph() { return *graph_; }
  const Config& config() const { return config_; }

  /// Runs the batch (filled by the caller) through link `ingress`'s sink, then anything the
  /// sinks posted to the worker; empties the batch.
  void run(std::size_t ingress) {
    ingress_ = ingress;
    const std::size_t root = graph_->find(config_.links[ingress].sink);
    graph_->run(*worker_, ingress, root, *batch_);
    io_.poll();
    io_.restart();
    batch_->clear();
  }

  /// Adds a copy of `len` bytes to the batch, if link `ingress`'s dispatcher would let the frame
  /// in (classify_rx: not a runt, not oversize); false otherwise or when the batch is full.
  bool add(std::size_t ingress, const std::uint8_t* data, std::size_t len) {
    const LinkConfig& l = config_.links[ingress];
    const RxLimits limits{batch_->slot_capacity(), l.wire_capacity(),
                          l.layer == Layer::ethernet ? 14u : 1u, false};
    if (batch_->full() || len > batch_->slot_capacity()) return false;
    std::uint8_t* slot = batch_->slot(batch_->size());
    if (len) std::memcpy(slot, data, len);
    if (classify_rx(slot, len, false, limits)) return false;
    batch_->push(slot, static_cast<std::uint32_t>(len));
    return true;
  }

  /// Node `name`'s counter `counter` (its type's counter_names()).
  std::uint64_t counter(std::string_view node, std::string_view counter) const {
    const std::size_t n = graph_->find(node);
    FUZZ_CHECK(n != Graph::npos);
    const auto names = graph_->sink(n).counter_names();
    const auto values = graph_->counters(n);
    for (std::size_t i = 0; i < names.size(); ++i)
      if (names[i] == counter) return values[i];
    FUZZ_CHECK(!"no such counter");
    return 0;
  }

  std::uint64_t sent = 0;  ///< frames the links sent

 private:
  class RigLink : public Link {
   public:
    RigLink(const LinkConfig& c, GraphRig& rig) : Link(c), rig_(rig) {}

   protected:
    void open_fds() override {}
    void send_batch(Worker& /*w*/, Batch& b) override {
      std::uint32_t sum = 0;
      for (std::size_t i = 0; i < b.size(); ++i)
        for (std::size_t j = 0; j < b[i].len; ++j)
          sum += b[i].data[j];
      static volatile std::uint32_t sink;
      sink = sum;
      rig_.sent += b.size();
      if (rig_.check_) rig_.check_(*this, b, rig_.ingress_);
    }

   private:
    GraphRig& rig_;
  };

  Config config_;
  LinkSet links_;
  std::unique_ptr<Graph> graph_;
  boost::asio::io_context io_;
  std::unique_ptr<Worker> worker_;
  std::unique_ptr<Batch> batch_;
  Check check_;
  std::size_t ingress_ = 0;
};

/// The [[link]] tables of unix links named `names`, each feeding `sink` (never opened).
inline std::string rig_links(std::initializer_list<const char*> names, const char* sink) {
  std::string s;
  for (const char* n : names)
    s += std::string("[[link]]\nname = \"") + n + "\"\ntype = \"unix\"\npath = \"/nonexistent/" +
         n + ".sock\"\nsink = \"" + sink + "\"\n";
  return s;
}

}  // namespace fdlinkd::fuzz
