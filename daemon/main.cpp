// fdlinkd: moves frames between TAP/TUN devices, interfaces (AF_PACKET) and unix sockets.
//
// Exit status: 0 clean stop (or config valid with --check-config), 1 a link or the control
// socket could not be opened, 2 bad command line or config (nothing was opened).
#include <systemd/sd-daemon.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "config/config.hpp"
#include "core/log.hpp"
#include "core/version.hpp"
#include "link/link_types.hpp"
#include "ops/instance.hpp"
#include "runtime/kinds.hpp"
#include "runtime/runtime.hpp"
#include "sink/sink.hpp"

namespace {

std::string sink_type_help() {
  std::string s = "\nSink types (--list-sinks for their keys):\n";
  for (const fdlinkd::SinkType* t : fdlinkd::sink_types())
    s += "  " + std::string(t->name) + "  " + std::string(t->help) + "\n";
  return s;
}

// --list-links: every link type, its one-line help and its own keys (besides name, type,
// sink, netns, mtu and rx_batch, which every link has).
void list_links() {
  for (const fdlinkd::LinkType* t : fdlinkd::link_types()) {
    std::printf("%.*s: %.*s\n", static_cast<int>(t->name.size()), t->name.data(),
                static_cast<int>(t->help.size()), t->help.data());
    for (const fdlinkd::ConfigKey& k : t->keys)
      std::printf("    %-16.*s %.*s\n", static_cast<int>(k.name.size()), k.name.data(),
                  static_cast<int>(k.help.size()), k.help.data());
  }
}

// --list-sinks: every sink type, its one-line help and its keys.
void list_sinks() {
  for (const fdlinkd::SinkType* t : fdlinkd::sink_types()) {
    std::printf("%.*s: %.*s%s\n", static_cast<int>(t->name.size()), t->name.data(),
                static_cast<int>(t->help.size()), t->help.data(),
                t->ethernet_only ? " (Ethernet links only)" : "");
    for (const fdlinkd::SinkKey& k : t->keys)
      std::printf("    %-12.*s %.*s\n", static_cast<int>(k.name.size()), k.name.data(),
                  static_cast<int>(k.help.size()), k.help.data());
    if (t->keys.empty()) std::printf("    (no keys of its own)\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace fdlinkd;

  CLI::App app{"fdlinkd: a packet-forwarding daemon for TAP/TUN devices, interfaces and sockets"};
  std::string config_path = "/etc/fdlinkd.toml";
  bool check_only = false;
  bool show_version = false;
  std::string level_arg, format_arg;
  std::string instance;
  app.add_option("-c,--config", config_path,
                 "configuration file (default /etc/fdlinkd.toml; with --instance NAME, "
                 "/etc/fdlinkd/NAME.toml)");
  app.add_option("-i,--instance", instance,
                 "run as instance NAME (fdlinkd@NAME.service): its own config, runtime directory "
                 "/run/fdlinkd-NAME with its control socket, and instance_name=\"NAME\" on its "
                 "metrics");
  app.add_flag("--check-config", check_only, "validate the configuration and exit");
  app.add_option("--log-level", level_arg, "trace|debug|info|warn|error (overrides the file)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  app.add_option("--log-format", format_arg, "text|json (overrides the file)")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_flag("--version", show_version, "print the version and exit");
  bool show_sinks = false, show_links = false;
  app.add_flag("--list-sinks", show_sinks, "list the sink types with their keys and exit");
  app.add_flag("--list-links", show_links, "list the link types with their keys and exit");
  app.footer(sink_type_help() + R"(
Signals:
  SIGHUP   reload the config file (as fdlinkctl reload, which also reports the outcome)
  SIGUSR1  log the counters and the bridges' MAC tables
  SIGTERM, SIGINT  stop: finish the batch in flight, log the final counters, close everything

Exit status:
  0  stopped cleanly (or, with --check-config, the config is valid)
  1  a link, the control socket or the metrics endpoint could not be opened
  2  bad command line or config: nothing was opened
)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (show_version) {
    std::printf("fdlinkd %s\n", kVersion);
    return 0;
  }
  if (show_sinks) {
    list_sinks();
    return 0;
  }
  if (show_links) {
    list_links();
    return 0;
  }

  if (!instance.empty()) {
    if (!valid_instance_name(instance)) {
      std::fprintf(stderr,
                   "fdlinkd: --instance \"%s\" must be 1-64 letters, digits, '-', '_' or '.' "
                   "(not starting with '.')\n",
                   instance.c_str());
      return 2;
    }
    if (app.count("--config") == 0) config_path = instance_config(instance);
    // Its control socket's place, as systemd's RuntimeDirectory=fdlinkd-NAME sets it (the
    // template unit does; run by hand, this does).
    if (const char* dir = std::getenv("RUNTIME_DIRECTORY"); !dir || *dir != '/')
      ::setenv("RUNTIME_DIRECTORY", instance_runtime_dir(instance).c_str(), 1);
  }
  ConfigResult loaded = load_config(config_path);
  if (!loaded.config) {
    // JSON lines when asked for on the command line, or in the file (if it got that far);
    // journal entries at priority 3 when stderr is the journal.
    const bool json_asked =
        format_arg == "json" || (format_arg.empty() && loaded.log_format == log::Format::json);
    log::init(log::Level::info, json_asked ? log::Format::json : log::Format::text);
    const bool json = json_asked || log::to_journal();
    for (const auto& e : loaded.errors) {
      if (json)
        log::error("config_error", e.message,
                   {{"file", e.file}, {"line", e.line}, {"column", e.column}});
      else
        std::fprintf(stderr, "%s\n", e.to_string().c_str());
    }
    const std::size_t hidden = loaded.error_count - loaded.errors.size();
    const std::string summary = std::to_string(loaded.error_count) + " error" +
                                (loaded.error_count == 1 ? "" : "s") + " in " + config_path +
                                "; nothing was started";
    if (json) {
      log::error("config_invalid", summary,
                 {{"errors", loaded.error_count}, {"not_shown", hidden}});
    } else {
      if (hidden > 0) std::fprintf(stderr, "fdlinkd: ... and %zu more errors not shown\n", hidden);
      std::fprintf(stderr, "fdlinkd: %s\n", summary.c_str());
    }
    sd_notifyf(0, "STATUS=invalid config %s\nERRNO=%d", config_path.c_str(), EINVAL);
    return 2;
  }
  Config& config = *loaded.config;
  if (!level_arg.empty()) config.daemon.log_level = *log::parse_level(level_arg);
  if (!format_arg.empty()) config.daemon.log_format = *log::parse_format(format_arg);

  if (check_only) {
    std::printf("%s: configuration OK (%zu links, %zu sinks)\n", config_path.c_str(),
                config.links.size(), config.sinks.size());
    return 0;
  }

  std::signal(SIGPIPE, SIG_IGN);
  log::init(config.daemon.log_level, config.daemon.log_format);
  if (instance.empty())
    log::info("starting", "fdlinkd starting", {{"version", kVersion}, {"config", config_path}});
  else
    log::info("starting", "fdlinkd starting",
              {{"version", kVersion}, {"config", config_path}, {"instance", instance}});
  CommandLine cli{config_path, std::nullopt, std::nullopt, instance};
  if (!level_arg.empty()) cli.log_level = config.daemon.log_level;
  if (!format_arg.empty()) cli.log_format = config.daemon.log_format;
  Runtime runtime(std::move(config), std::move(cli));
  return runtime.run();
}
