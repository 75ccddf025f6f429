// reflect: swaps each frame's destination and source MAC addresses and sends it back out of
// the link it came in on (testpmd's macswap: a loopback for tests and benchmarks).
//
//   [[sink]]
//   name = "echo"
//   type = "reflect"
//
// Ethernet links only. A frame another output still holds is swapped on a copy. Counters:
// reflected; no_buffer (no copy slot free for a shared frame).
#pragma once

#include <vector>

#include "sink/sink.hpp"

namespace fdlinkd {

class ReflectSink : public Sink {
 public:
  /// `link_outputs[i]`: the output that leads back to link i (config order).
  explicit ReflectSink(std::vector<std::size_t> link_outputs)
      : link_outputs_(std::move(link_outputs)) {}
  void process(Pass& pass, Batch& in) override;
  std::span<const std::string_view> counter_names() const override;

  static const SinkType kType;

 private:
  std::vector<std::size_t> link_outputs_;
};

}  // namespace fdlinkd
