// forward: sends every frame on to one link or sink.
//
//   [[sink]]
//   name = "to-b"
//   type = "forward"
//   to = "b"          # a link (frames leave through it) or another sink (required)
//
// Frames the egress link cannot take are counted on that link (too_big, tx_queue_full, ...).
// The config checks that frames reach only links of their own kind (Ethernet or IP).
#pragma once

#include "sink/sink.hpp"

namespace fdlinkd {

class ForwardSink : public Sink {
 public:
  void process(Pass& pass, Batch& in) override;

  static const SinkType kType;
};

}  // namespace fdlinkd
