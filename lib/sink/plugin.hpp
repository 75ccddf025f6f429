// plugin: a sink type that comes from a shared object, through the C ABI of
// include/fdlinkd/sink_plugin.h.
//
//   [[sink]]
//   name = "rw"
//   type = "plugin"
//   path = "/usr/lib/x86_64-linux-gnu/fdlinkd/plugins/mac_rewrite.so"   # required, absolute
//   to = ["b"]                                   # its outputs, in order (optional)
//   config = { dst = "02:00:00:00:00:02" }       # the plugin's own keys
//
// The object is loaded, its ABI version and struct size checked, and its create() called
// with its keys while the config is read: any failure there is a config error with line:col.
// Per batch, the frames become plain C views (fdlinkd_frame), made writable first if the
// plugin says it changes them, and each verdict sends the frame to an output or drops it.
//
// Counters: the plugin's own, then dropped, no_buffer, bad_verdict (an output index the
// plugin does not have: the frame is dropped).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "sink/sink.hpp"

struct fdlinkd_frame;

namespace fdlinkd {

class LoadedPlugin;

class PluginSink : public Sink {
 public:
  PluginSink(std::shared_ptr<LoadedPlugin> plugin, std::size_t outputs, unsigned workers,
             std::size_t max_batch);
  ~PluginSink() override;

  void process(Pass& pass, Batch& in) override;
  std::span<const std::string_view> counter_names() const override;

  static const SinkType kType;

 private:
  struct PerWorker;
  std::shared_ptr<LoadedPlugin> plugin_;
  std::size_t outputs_;
  std::vector<std::unique_ptr<PerWorker>> per_worker_;
  std::vector<std::string_view> names_;
};

}  // namespace fdlinkd
