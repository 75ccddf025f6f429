// filter: a tcpdump expression decides where each frame goes.
//
//   [[sink]]
//   name = "web"
//   type = "filter"
//   expr = "tcp port 443"   # pcap-filter(7) syntax (required)
//   match = "b"             # where matching frames go (a link or sink; default: dropped)
//   nomatch = "log"         # where the others go (default: dropped)
//
// The expression is compiled once, optimised, by libpcap (pcap_compile for DLT_EN10MB) when
// the config is read: a bad one is a config error with libpcap's message. Each frame is then
// run through the compiled BPF program in userspace (pcap_offline_filter, read-only, so every
// worker shares it), whole and with its VLAN tag in place. Note that, as in tcpdump, a plain
// "tcp port 80" does not match a VLAN-tagged frame: write "vlan and tcp port 80".
//
// Ethernet links only. Counters: matched, unmatched, dropped (a frame whose side has no output).
#pragma once

#include <pcap/pcap.h>

#include <memory>

#include "sink/sink.hpp"

namespace fdlinkd {

/// A compiled BPF program, freed with it.
class BpfProgram {
 public:
  /// Compiles `expr` for Ethernet frames; on failure `error()` holds libpcap's message.
  explicit BpfProgram(const std::string& expr);
  ~BpfProgram();
  BpfProgram(const BpfProgram&) = delete;
  BpfProgram& operator=(const BpfProgram&) = delete;

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  /// Whether the frame matches (the program looks at most at `len` bytes).
  bool matches(const std::uint8_t* data, std::uint32_t len) const;

 private:
  bpf_program prog_{};
  bool ok_ = false;
  std::string error_;
};

class FilterSink : public Sink {
 public:
  FilterSink(std::shared_ptr<const BpfProgram> prog, std::size_t match, std::size_t nomatch)
      : prog_(std::move(prog)), match_(match), nomatch_(nomatch) {}
  void process(Pass& pass, Batch& in) override;
  std::span<const std::string_view> counter_names() const override;

  static constexpr std::size_t kNone = ~std::size_t{0};  ///< no output for that side
  static const SinkType kType;

 private:
  std::shared_ptr<const BpfProgram> prog_;
  std::size_t match_, nomatch_;
};

}  // namespace fdlinkd
