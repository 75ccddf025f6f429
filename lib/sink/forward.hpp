// forward: sends every frame of the links that use it out of one other link.
//
//   [[sink]]
//   name = "to-b"
//   type = "forward"
//   to = "b"          # the link frames leave through (required)
//
// Both ends must carry the same kind of frame: Ethernet (af_packet, tap, unix) or IP (tun).
// Frames the egress link cannot take are counted on that link (too_big, tx_queue_full, ...).
#pragma once

#include "sink/sink.hpp"

namespace fdlinkd {

class ForwardSink : public Sink {
 public:
  explicit ForwardSink(Link& to) : to_(to) {}
  void consume(Link& from, Batch& batch) override;

  static const SinkType kType;

 private:
  Link& to_;
};

}  // namespace fdlinkd
