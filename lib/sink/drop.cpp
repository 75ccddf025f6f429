#include "sink/drop.hpp"

#include "config/config.hpp"

namespace fdlinkd {

namespace {

constexpr std::string_view kCounters[] = {"dropped", "dropped_bytes"};

std::unique_ptr<SinkOptions> configure(TableReader&) {
  return std::make_unique<SinkOptions>();
}

std::vector<OutputRef> outputs(const SinkConfig&, const Config&) {
  return {};
}

std::unique_ptr<Sink> create(const SinkConfig&, const SinkSetup&) {
  return std::make_unique<DropSink>();
}

}  // namespace

const SinkType DropSink::kType = {"drop",    "counts every frame and sends it nowhere",
                                  {},        false,
                                  configure, outputs,
                                  nullptr,   nullptr,
                                  create};

std::span<const std::string_view> DropSink::counter_names() const {
  return kCounters;
}

void DropSink::process(Pass& pass, Batch& in) {
  std::uint64_t bytes = 0;
  for (std::size_t i = 0; i < in.size(); ++i)
    bytes += in[i].len;
  pass.count(0, in.size());
  pass.count(1, bytes);
}

}  // namespace fdlinkd
