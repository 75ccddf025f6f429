#include "sink/tee.hpp"

#include "config/config.hpp"

namespace fdlinkd {

namespace {

struct TeeOptions : SinkOptions {
  std::vector<OutputRef> to;
};

std::unique_ptr<SinkOptions> configure(TableReader& r) {
  auto o = std::make_unique<TeeOptions>();
  if (auto to = r.names("to", true)) o->to = std::move(*to);
  return o;
}

std::vector<OutputRef> outputs(const SinkConfig& sink, const Config&) {
  const SinkOptions& options = *sink.options;
  return static_cast<const TeeOptions&>(options).to;
}

std::unique_ptr<Sink> create(const SinkConfig& sink, const SinkSetup&) {
  return std::make_unique<TeeSink>(static_cast<const TeeOptions&>(*sink.options).to.size());
}

constexpr SinkKey kKeys[] = {{"to", "links or sinks each frame goes to, in order (required)"}};

}  // namespace

const SinkType TeeSink::kType = {"tee",     "sends every frame to each link or sink of `to`",
                                 kKeys,     false,
                                 configure, outputs,
                                 nullptr,   nullptr,
                                 create};

void TeeSink::process(Pass& pass, Batch& in) {
  for (std::size_t o = 0; o < outputs_; ++o)
    for (std::size_t i = 0; i < in.size(); ++i)
      pass.emit(o, in[i]);
}

}  // namespace fdlinkd
