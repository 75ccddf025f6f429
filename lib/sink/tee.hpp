// tee: sends every frame to each of its outputs, in order.
//
//   [[sink]]
//   name = "mirror"
//   type = "tee"
//   to = ["b", "cap"]   # links or sinks (at least one, no name twice)
//
// The outputs share the frame's bytes; an output that changes a frame (a checksum finished for
// a link without offloads, a tag pushed) changes its own copy, so every output gets the frame
// as it came in. Counters: none of its own (each output counts what it sends).
#pragma once

#include "sink/sink.hpp"

namespace fdlinkd {

class TeeSink : public Sink {
 public:
  explicit TeeSink(std::size_t outputs) : outputs_(outputs) {}
  void process(Pass& pass, Batch& in) override;

  static const SinkType kType;

 private:
  std::size_t outputs_;
};

}  // namespace fdlinkd
