// The table of sink types: the only place that lists them. A new sink type is one file pair
// named after its TOML type plus one line here.
#include "config/config.hpp"
#include "sink/bridge.hpp"
#include "sink/drop.hpp"
#include "sink/filter.hpp"
#include "sink/forward.hpp"
#include "sink/pcap.hpp"
#include "sink/plugin.hpp"
#include "sink/reflect.hpp"
#include "sink/sink.hpp"
#include "sink/tee.hpp"

namespace fdlinkd {

namespace {
// clang-format off
const SinkType* const kSinkTypes[] = {
    &ForwardSink::kType,
    &TeeSink::kType,
    &BridgeSink::kType,
    &FilterSink::kType,
    &PcapSink::kType,
    &DropSink::kType,
    &ReflectSink::kType,
    &PluginSink::kType,
};
// clang-format on
}  // namespace

std::span<const SinkType* const> sink_types() {
  return kSinkTypes;
}

std::span<const SinkKind* const> sink_kinds() {
  static const auto kinds = kinds_of<SinkKind>(kSinkTypes);
  return kinds;
}

const SinkType& sink_type_of(const SinkConfig& config) {
  return static_cast<const SinkType&>(*config.type);
}

bool read_offload(TableReader& r) {
  const auto v = r.choice("offload", {"off", "xdp"});
  return v && *v == "xdp";
}

}  // namespace fdlinkd
