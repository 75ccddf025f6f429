// Runtime: a running fdlinkd, built from a validated Config.
//
// run() opens every link (main thread, before any worker), builds the stage graph, gives each
// fd a Dispatcher on one of `workers` threads (one io_context and one Worker context per
// thread, fds spread round-robin),
// tells systemd READY=1, and serves until SIGINT/SIGTERM. Then it stops the workers (a batch
// in flight is finished, not cut), logs the final counters and closes everything: TAP devices
// fdlinkd created disappear, unix socket files are removed.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "core/worker.hpp"
#include "dispatch/dispatcher.hpp"
#include "link/link.hpp"
#include "link/watch.hpp"
#include "sink/graph.hpp"

namespace fdlinkd {

class Runtime {
 public:
  explicit Runtime(Config config);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  /// Returns the process exit status: 0 after a clean stop, 1 when a link cannot be opened.
  int run();

 private:
  bool open_links();
  void build_data_path();
  bool start_workers();
  void stop_workers();
  void on_signal(int signo);
  void schedule_stats();
  void schedule_watchdog(std::chrono::microseconds period);
  void log_stats(bool final);
  /// Runs `done` on the control thread once every worker has run everything posted to it
  /// before this call (so none still uses what was taken away before it).
  void after_workers(std::function<void()> done);
  /// One rtnetlink watcher per network namespace that links with interfaces use.
  void watch_interfaces();
  void on_interface(const std::string& netns, const InterfaceEvent& ev);
  /// The link's interface went down or away: park its dispatchers, count what is sent to it
  /// as link_down, close its fds once no worker uses them.
  /// `keep_fds`: park without closing (a TAP whose device is only down).
  void take_down(Link& link, const std::string& reason, bool keep_fds = false);
  /// Closes what take_down retired once every worker is past it, then brings the link up if
  /// its interface came back meanwhile (or it is a TAP fdlinkd made).
  void close_when_workers_pass(Link& link);
  /// Its interface is back: reopen and restart the dispatchers.
  void bring_up(Link& link);
  void log_sink_stats(bool final);
  std::string status_line() const;

  Config config_;
  // Destruction runs bottom-up: dispatchers release their fds before the links close them,
  // and both go before the io_contexts they are registered with.
  boost::asio::io_context control_;  ///< signals and timers, on the main thread
  std::vector<std::unique_ptr<boost::asio::io_context>> workers_;
  std::vector<std::unique_ptr<Worker>> contexts_;  ///< one per worker thread
  std::vector<std::thread> threads_;
  LinkSet links_;
  std::unique_ptr<Graph> graph_;
  std::vector<std::unique_ptr<Dispatcher>> dispatchers_;
  std::map<const Link*, std::vector<Dispatcher*>> link_dispatchers_;
  std::vector<std::unique_ptr<InterfaceWatcher>> watchers_;
  /// Per link going down or down: whether its interface is back and when it went down.
  struct Recovery {
    bool closing = false;  ///< take_down's barrier has not run yet
    bool want_up = false;  ///< the interface came back meanwhile
    std::chrono::steady_clock::time_point since;
  };
  std::map<const Link*, Recovery> recovery_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer stats_timer_;
  boost::asio::steady_timer watchdog_timer_;
};

}  // namespace fdlinkd
