// The table of sink types: the only place that lists them. A new sink type is one file pair
// named after its TOML type plus one line here.
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

const SinkType* find_sink_type(std::string_view name) {
  for (const SinkType* t : kSinkTypes)
    if (t->name == name) return t;
  return nullptr;
}

}  // namespace fdlinkd
