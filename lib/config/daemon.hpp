// DaemonConfig: the [daemon] table (threads, logs, control socket, metrics).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "config/reader.hpp"
#include "core/log.hpp"

namespace fdlinkd {

/// $RUNTIME_DIRECTORY/control.sock (systemd sets it to /run/fdlinkd), else
/// /run/fdlinkd/control.sock.
std::string default_control_socket();

struct DaemonConfig {
  unsigned workers = 1;
  std::chrono::microseconds stats_interval = std::chrono::seconds(10);
  log::Level log_level = log::Level::info;
  log::Format log_format = log::Format::text;
  std::vector<unsigned> cpu_affinity;  ///< worker i runs on cpu_affinity[i % size]; empty: any
  /// After it last had work, a worker keeps polling its fds for this long before it sleeps:
  /// the next frame is read without a wake-up (latency), at the price of the CPU spun. 0: off.
  std::chrono::microseconds busy_poll{0};
  /// busy_poll = "always": a worker never sleeps; it polls its fds all the time, as a DPDK
  /// lcore does (a CPU per worker spins), so no frame waits for a wake-up.
  bool busy_poll_always = false;
  /// The control socket fdlinkctl talks to ("" : none); default_control_socket() when unset.
  std::string control_socket = default_control_socket();
  std::string control_group;  ///< group that may use the control socket (mode 0660); "" : 0600
  int control_gid = -1;       ///< control_group resolved when the config is read
  /// Prometheus endpoint, "host:port" ("" : off). `metrics = true` means 127.0.0.1:9469.
  std::string metrics;
  /// Drop-in files read with this one (`include`): glob patterns, a relative one from the main
  /// file's directory. Each file may hold [[link]] and [[sink]] tables.
  std::vector<std::string> include;
  toml::source_region include_where;

  /// The settings a reload cannot change (the threads and their CPUs), as "key = value"; the
  /// first one that differs from `other`, or "".
  std::string restart_needed(const DaemonConfig& other) const;
};

/// Reads [daemon].
void read_daemon(const toml::table& t, DaemonConfig& d, ConfigErrors& errors);

/// A group name or number that exists on this host (control_group, the group of a link's
/// socket file): its gid, with the name kept in `name`; nullopt (reported) otherwise.
std::optional<int> read_group(TableReader& r, std::string_view key, std::string& name);

}  // namespace fdlinkd
