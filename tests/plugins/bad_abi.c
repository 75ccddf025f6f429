/* A plugin built for another ABI version: fdlinkd must refuse it before calling anything. */
#include <fdlinkd/sink_plugin.h>

static const fdlinkd_sink_plugin kPlugin = {
    FDLINKD_SINK_PLUGIN_ABI + 998, sizeof(fdlinkd_sink_plugin), "bad_abi", "refused", 0, 0, 0, 0};

__attribute__((visibility("default"))) const fdlinkd_sink_plugin* fdlinkd_sink_plugin_entry(void) {
  return &kPlugin;
}
