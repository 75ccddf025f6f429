#include "sink/reflect.hpp"

#include <cstring>

#include "config/config.hpp"

namespace fdlinkd {

namespace {

constexpr std::string_view kCounters[] = {"reflected", "no_buffer"};

std::unique_ptr<SinkOptions> configure(TableReader&) {
  return std::make_unique<SinkOptions>();
}

// Its outputs are the config's Ethernet links, in order: a frame goes back to whichever it
// came from (only Ethernet frames reach it). Links that never feed it never get a frame.
std::vector<OutputRef> outputs(const SinkConfig& sink, const Config& config) {
  std::vector<OutputRef> out;
  for (const auto& l : config.links)
    if (l.layer == Layer::ethernet) out.push_back({l.name, sink.where});
  return out;
}

std::unique_ptr<Sink> create(const SinkConfig&, const SinkSetup& setup) {
  std::vector<std::size_t> outs;  // link index -> output
  std::size_t next = 0;
  for (const auto& l : setup.config.links)
    outs.push_back(l.layer == Layer::ethernet ? next++ : ~std::size_t{0});
  return std::make_unique<ReflectSink>(std::move(outs));
}

}  // namespace

const SinkType ReflectSink::kType = {
    "reflect", "swaps MAC addresses and sends each frame back out of the link it came in on",
    {},        true,
    configure, outputs,
    nullptr,   nullptr,
    create};

std::span<const std::string_view> ReflectSink::counter_names() const {
  return kCounters;
}

void ReflectSink::process(Pass& pass, Batch& in) {
  const std::size_t out = link_outputs_[pass.ingress()];
  std::uint64_t reflected = 0, no_buffer = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    Frame f = in[i];
    if (!pass.writable(f)) {
      ++no_buffer;
      continue;
    }
    std::uint8_t mac[6];
    std::memcpy(mac, f.data, 6);
    std::memmove(f.data, f.data + 6, 6);
    std::memcpy(f.data + 6, mac, 6);
    in[i] = f;  // (a copy, if one was made, is now what this stage holds)
    pass.emit(out, f);
    ++reflected;
  }
  pass.count(0, reflected);
  pass.count(1, no_buffer);
}

}  // namespace fdlinkd
