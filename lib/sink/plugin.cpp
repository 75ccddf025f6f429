#include "sink/plugin.hpp"

#include <dlfcn.h>
#include <fdlinkd/sink_plugin.h>

#include <cstring>
#include <sstream>

#include "config/config.hpp"
#include "core/log.hpp"
#include "core/virtio_net.hpp"

namespace fdlinkd {

// A dlopen()ed plugin and the one instance create() made; destroyed and unloaded together.
class LoadedPlugin {
 public:
  ~LoadedPlugin() {
    if (instance && api) api->destroy(instance);
    if (handle) ::dlclose(handle);
  }
  void* handle = nullptr;
  const fdlinkd_sink_plugin* api = nullptr;
  void* instance = nullptr;
  std::string sink;                   ///< the [[sink]] name, for logs
  std::vector<std::string> counters;  ///< declared by the plugin, then the host's own
};

namespace {

constexpr const char* kHostCounters[] = {"dropped", "no_buffer", "bad_verdict"};

std::uint32_t add_counter(void* ctx, const char* name) {
  auto* p = static_cast<LoadedPlugin*>(ctx);
  p->counters.emplace_back(name ? name : "?");
  return static_cast<std::uint32_t>(p->counters.size() - 1);
}

void plugin_log(void* ctx, int level, const char* msg) {
  auto* p = static_cast<LoadedPlugin*>(ctx);
  const log::Level l = level >= FDLINKD_LOG_ERROR  ? log::Level::error
                       : level == FDLINKD_LOG_WARN ? log::Level::warn
                       : level == FDLINKD_LOG_INFO ? log::Level::info
                                                   : log::Level::debug;
  log::write(l, "plugin_log", msg ? msg : "", {{"sink", p->sink}});
}

struct PluginOptions : SinkOptions {
  std::string path;
  toml::source_region path_where, config_where;
  std::vector<OutputRef> to;
  std::vector<std::pair<std::string, std::string>> keys;
  mutable std::shared_ptr<LoadedPlugin> loaded;  ///< set by validate()
};

std::unique_ptr<SinkOptions> configure(TableReader& r) {
  auto o = std::make_unique<PluginOptions>();
  if (auto p = r.string("path", true)) {
    o->path_where = r.where("path");
    if (p->empty() || (*p)[0] != '/' || has_control_char(*p))
      r.errors().add(o->path_where, "path \"" + shown(*p) + "\" in " + r.what() +
                                        " must be an absolute path to a shared object");
    else
      o->path = *p;
  }
  if (auto to = r.names("to")) o->to = *to;
  o->config_where = r.where("config");
  if (const toml::table* t = r.subtable("config")) {
    for (const auto& [k, v] : *t) {
      std::string text;
      if (v.is_string()) {
        text = v.as_string()->get();
      } else if (v.is_integer()) {
        text = std::to_string(v.as_integer()->get());
      } else if (v.is_floating_point()) {
        std::ostringstream ss;
        ss << v.as_floating_point()->get();
        text = ss.str();
      } else if (v.is_boolean()) {
        text = v.as_boolean()->get() ? "true" : "false";
      } else {
        r.errors().add(v.source(), "config." + shown(k.str()) + " in " + r.what() +
                                       ": a plugin's keys take strings, numbers or booleans");
        continue;
      }
      o->keys.emplace_back(std::string(k.str()), text);
    }
  }
  return o;
}

std::vector<OutputRef> outputs(const SinkConfig& sink, const Config&) {
  return static_cast<const PluginOptions&>(*sink.options).to;
}

// Loads the object and makes its instance: every failure is a config error.
void validate(const SinkConfig& sink, const Config& config, ConfigErrors& errors) {
  const auto& o = static_cast<const PluginOptions&>(*sink.options);
  if (o.path.empty()) return;
  const std::string what = "sink \"" + sink.name + "\"";
  auto p = std::make_shared<LoadedPlugin>();
  p->sink = sink.name;
  p->handle = ::dlopen(o.path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!p->handle) {
    const char* e = ::dlerror();
    errors.add(o.path_where, "cannot load plugin " + shown(o.path, 200) + " for " + what + ": " +
                                 shown(e ? e : "dlopen failed", 300));
    return;
  }
  auto fn =
      reinterpret_cast<fdlinkd_sink_plugin_fn>(::dlsym(p->handle, FDLINKD_SINK_PLUGIN_SYMBOL));
  if (!fn) {
    errors.add(o.path_where, shown(o.path, 200) + " is not an fdlinkd sink plugin: it exports no " +
                                 FDLINKD_SINK_PLUGIN_SYMBOL + "()");
    return;
  }
  const fdlinkd_sink_plugin* api = fn();
  if (!api || api->abi_version != FDLINKD_SINK_PLUGIN_ABI ||
      api->struct_size < sizeof(fdlinkd_sink_plugin)) {
    errors.add(o.path_where, "plugin " + shown(o.path, 200) + " speaks sink plugin ABI version " +
                                 std::to_string(api ? api->abi_version : 0) + " (struct size " +
                                 std::to_string(api ? api->struct_size : 0) +
                                 "); this fdlinkd speaks version " +
                                 std::to_string(FDLINKD_SINK_PLUGIN_ABI) + " (size " +
                                 std::to_string(sizeof(fdlinkd_sink_plugin)) +
                                 "): rebuild it against this " + "fdlinkd's sink_plugin.h");
    return;
  }
  if (!api->create || !api->process || !api->destroy) {
    errors.add(o.path_where, "plugin " + shown(o.path, 200) + " lacks create, process or destroy");
    return;
  }
  p->api = api;
  std::vector<fdlinkd_kv> kv;
  for (const auto& [k, v] : o.keys)
    kv.push_back({k.c_str(), v.c_str()});
  fdlinkd_host host{sizeof(fdlinkd_host), p.get(), add_counter, plugin_log};
  char err[512] = "";
  p->instance =
      api->create(&host, kv.data(), static_cast<std::uint32_t>(kv.size()),
                  static_cast<std::uint32_t>(o.to.size()), config.daemon.workers, err, sizeof err);
  if (!p->instance) {
    err[sizeof err - 1] = '\0';
    errors.add(o.keys.empty() ? o.path_where : o.config_where,
               "plugin " + std::string(api->name ? api->name : "?") + " rejects the config of " +
                   what + ": " + shown(err, 400));
    return;
  }
  for (const char* c : kHostCounters)
    p->counters.emplace_back(c);
  o.loaded = std::move(p);
}

std::unique_ptr<Sink> create(const SinkConfig& sink, const SinkSetup& setup) {
  const auto& o = static_cast<const PluginOptions&>(*sink.options);
  std::size_t max_batch = 1;
  for (const auto& l : setup.config.links)
    max_batch = std::max<std::size_t>(max_batch, l.rx_batch);
  return std::make_unique<PluginSink>(o.loaded, o.to.size(), setup.workers, max_batch);
}

constexpr SinkKey kKeys[] = {
    {"path", "the plugin's shared object (required, absolute)"},
    {"to", "links or sinks: the plugin's outputs 0, 1, ..."},
    {"config", "a table of the plugin's own keys, e.g. { dst = \"02:00:00:00:00:02\" }"},
};

}  // namespace

const SinkType PluginSink::kType = {
    "plugin",  "a sink type from a shared object (C ABI: include/fdlinkd/sink_plugin.h)",
    kKeys,     false,
    configure, outputs,
    validate,  nullptr,
    create};

struct PluginSink::PerWorker {
  PerWorker(std::size_t max_batch, std::size_t n_counters)
      : frames(max_batch), verdicts(max_batch), counters(n_counters, 0) {}
  std::vector<fdlinkd_frame> frames;
  std::vector<std::int32_t> verdicts;
  std::vector<std::uint64_t> counters;
};

PluginSink::PluginSink(std::shared_ptr<LoadedPlugin> plugin, std::size_t outputs, unsigned workers,
                       std::size_t max_batch)
    : plugin_(std::move(plugin)), outputs_(outputs) {
  for (unsigned w = 0; w < workers; ++w)
    per_worker_.push_back(std::make_unique<PerWorker>(max_batch, plugin_->counters.size()));
  for (const auto& c : plugin_->counters)
    names_.push_back(c);
}

PluginSink::~PluginSink() = default;

std::span<const std::string_view> PluginSink::counter_names() const {
  return names_;
}

void PluginSink::process(Pass& pass, Batch& in) {
  PerWorker& pw = *per_worker_[pass.worker().id];
  const std::size_t own = plugin_->counters.size() - std::size(kHostCounters);
  const bool writes = plugin_->api->flags & FDLINKD_PLUGIN_WRITES_FRAMES;
  std::uint64_t no_buffer = 0;
  std::size_t n = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (writes && !pass.writable(in[i])) {
      ++no_buffer;
      continue;
    }
    if (n != i) std::swap(in[n], in[i]);  // (frames that got no copy slot go to the end)
    const Frame& f = in[n];
    VirtioNetHdr h;
    if (f.vnet) std::memcpy(&h, f.data - sizeof h, sizeof h);
    pw.frames[n] = {f.data, f.len, h.flags, h.gso_kind(), 0, f.rx_ns};
    ++n;
  }
  std::fill(pw.counters.begin(), pw.counters.end(), 0);
  const fdlinkd_call call{sizeof(fdlinkd_call), static_cast<std::uint32_t>(pass.worker().id),
                          pw.counters.data()};
  plugin_->api->process(plugin_->instance, &call, pw.frames.data(), static_cast<std::uint32_t>(n),
                        pw.verdicts.data());
  std::uint64_t dropped = 0, bad = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::int32_t v = pw.verdicts[i];
    if (v == FDLINKD_DROP)
      ++dropped;
    else if (v < 0 || static_cast<std::size_t>(v) >= outputs_)
      ++bad;
    else
      pass.emit(static_cast<std::size_t>(v), in[i]);
  }
  for (std::size_t c = 0; c < own; ++c)
    pass.count(c, pw.counters[c]);
  pass.count(own, dropped);
  pass.count(own + 1, no_buffer);
  pass.count(own + 2, bad);
}

}  // namespace fdlinkd
