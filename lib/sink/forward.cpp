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
  o->offload_xdp = read_offload(r);
  return o;
}

std::vector<OutputRef> outputs(const SinkConfig& sink, const Config&) {
  const SinkOptions& options = *sink.options;
  const auto& o = static_cast<const ForwardOptions&>(options);
  if (o.to.name.empty()) return {};
  return {o.to};
}

std::unique_ptr<Sink> create(const SinkConfig& sink, const SinkSetup& setup) {
  const auto& o = static_cast<const ForwardOptions&>(*sink.options);
  const bool to_link = setup.config.find_link(o.to.name) != nullptr;
  return std::make_unique<ForwardSink>(o.offload_xdp,
                                       to_link ? setup.link_index(o.to.name) : ForwardSink::npos);
}

constexpr SinkKey kKeys[] = {
    {"to", "link or sink every frame goes to (required)"},
    {"offload",
     "\"xdp\": frames from interface links to an interface link never leave the kernel "
     "(XDP redirect); \"off\" (default)"}};

}  // namespace

const SinkType ForwardSink::kType = {
    "forward", "sends every frame to the link or sink named by `to`",
    kKeys,     false,
    configure, outputs,
    nullptr,   nullptr,
    create};

OffloadPlan ForwardSink::offload_plan(std::size_t) const {
  OffloadPlan p;
  if (to_ == npos) {
    p.why_not = "its `to` is a sink, whose frames need fdlinkd";
    return p;
  }
  p.port.mode = FDLINKD_FP_FORWARD;
  p.port.out = static_cast<std::uint32_t>(to_);
  p.egress = {to_};
  return p;
}

void ForwardSink::process(Pass& pass, Batch& in) {
  for (std::size_t i = 0; i < in.size(); ++i)
    pass.emit(0, in[i]);
}

}  // namespace fdlinkd
