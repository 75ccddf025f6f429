#include "sink/forward.hpp"

#include "config/config.hpp"

namespace fdlinkd {

namespace {

struct ForwardOptions : SinkOptions {
  OutputRef to;
};

std::unique_ptr<SinkOptions> configure(TableReader& r) {
  auto o = std::make_unique<ForwardOptions>();
  if (auto to = r.string("to", true)) o->to = {*to, r.where("to")};
  return o;
}

std::vector<OutputRef> outputs(const SinkConfig& sink, const Config&) {
  const SinkOptions& options = *sink.options;
  const auto& o = static_cast<const ForwardOptions&>(options);
  if (o.to.name.empty()) return {};
  return {o.to};
}

std::unique_ptr<Sink> create(const SinkConfig&, const SinkSetup&) {
  return std::make_unique<ForwardSink>();
}

constexpr SinkKey kKeys[] = {{"to", "link or sink every frame goes to (required)"}};

}  // namespace

const SinkType ForwardSink::kType = {
    "forward", "sends every frame to the link or sink named by `to`",
    kKeys,     false,
    configure, outputs,
    nullptr,   nullptr,
    create};

void ForwardSink::process(Pass& pass, Batch& in) {
  for (std::size_t i = 0; i < in.size(); ++i)
    pass.emit(0, in[i]);
}

}  // namespace fdlinkd
