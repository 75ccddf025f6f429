// drop: counts every frame and sends it nowhere.
//
//   [[sink]]
//   name = "discard"
//   type = "drop"
//
// For a link whose received frames nobody wants (a capture-only port, a filter's `nomatch`),
// and for benchmarks. Counters: dropped (frames), dropped_bytes.
#pragma once

#include "sink/sink.hpp"

namespace fdlinkd {

class DropSink : public Sink {
 public:
  void process(Pass& pass, Batch& in) override;
  std::span<const std::string_view> counter_names() const override;

  static const SinkType kType;
};

}  // namespace fdlinkd
