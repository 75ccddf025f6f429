// forward: sends every frame on to one link or sink.
//
//   [[sink]]
//   name = "to-b"
//   type = "forward"
//   to = "b"          # a link (frames leave through it) or another sink (required)
//   offload = "xdp"   # optional: from interface links to an interface link, in the kernel
//
// Frames the egress link cannot take are counted on that link (too_big, tx_queue_full, ...).
// The config checks that frames reach only links of their own kind (Ethernet or IP).
#pragma once

#include "sink/sink.hpp"

namespace fdlinkd {

class ForwardSink : public Sink {
 public:
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  /// `to`: the index of the link frames go to (npos: a sink).
  ForwardSink(bool offload = false, std::size_t to = npos) : offload_(offload), to_(to) {}
  void process(Pass& pass, Batch& in) override;
  bool offloads() const override { return offload_; }
  OffloadPlan offload_plan(std::size_t ingress) const override;

  static const SinkType kType;

 private:
  bool offload_;
  std::size_t to_;
};

}  // namespace fdlinkd
