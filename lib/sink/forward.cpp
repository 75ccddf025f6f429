#include "sink/forward.hpp"

#include "config/config.hpp"
#include "link/link.hpp"

namespace fdlinkd {

namespace {

struct ForwardOptions : SinkOptions {
  std::string to;
  toml::source_region to_where;
};

std::unique_ptr<SinkOptions> configure(TableReader& r) {
  auto o = std::make_unique<ForwardOptions>();
  if (auto to = r.string("to", true)) {
    o->to = *to;
    o->to_where = r.where("to");
  }
  return o;
}

std::string_view layer_name(Layer l) {
  return l == Layer::ethernet ? "Ethernet frames" : "IP packets";
}

void validate(const SinkConfig& sink, const Config& config, ConfigErrors& errors) {
  const auto& o = static_cast<const ForwardOptions&>(*sink.options);
  if (o.to.empty()) return;  // missing `to` is already reported
  const LinkConfig* to = config.find_link(o.to);
  if (!to) {
    errors.add(o.to_where, "sink \"" + sink.name + "\" forwards to link \"" + o.to +
                               "\", which is not defined");
    return;
  }
  for (const auto& from : config.links) {
    if (from.sink != sink.name || from.layer() == to->layer()) continue;
    errors.add(from.sink_where, "link \"" + from.name + "\" (" +
                                    std::string(link_type_name(from.type)) + ", " +
                                    std::string(layer_name(from.layer())) + ") cannot use sink \"" +
                                    sink.name + "\": it forwards to link \"" + to->name + "\" (" +
                                    std::string(link_type_name(to->type)) + ", " +
                                    std::string(layer_name(to->layer())) + ")");
  }
}

std::unique_ptr<Sink> create(const SinkConfig& sink, LinkSet& links) {
  const auto& o = static_cast<const ForwardOptions&>(*sink.options);
  return std::make_unique<ForwardSink>(*links.find(o.to));
}

}  // namespace

const SinkType ForwardSink::kType = {"forward", "sends every frame out of the link named by `to`",
                                     configure, validate, create};

void ForwardSink::consume(Link&, Batch& batch) {
  to_.transmit(batch);
}

}  // namespace fdlinkd
