// Runtime: a running fdlinkd, built from a validated Config.
//
// run() opens every link (main thread, before any worker), builds the stage graph, gives each
// fd a Dispatcher on one of `workers` threads (one io_context and one Worker context per
// thread, fds spread over them), opens the control socket and the metrics endpoint, tells
// systemd READY=1, and serves until SIGINT/SIGTERM. Then it stops the workers (a batch in
// flight is finished, not cut), logs the final counters and closes everything: TAP devices
// fdlinkd created disappear, unix socket files are removed.
//
// The main thread is the control thread: signals, timers, interface events, the control
// socket, metrics and reloads all run on its io_context. Workers never wait for it; it hands
// work to them by posting to their io_contexts, and learns that they are past something with
// after_workers().
//
// Files: runtime.cpp (start, stop, links going down and up, stats), reload.cpp (live reload),
// commands.cpp (what the control socket and metrics answer).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "core/worker.hpp"
#include "dispatch/dispatcher.hpp"
#include "link/fastpath.hpp"
#include "link/link_set.hpp"
#include "link/watch.hpp"
#include "sink/graph.hpp"

namespace fdlinkd {

class ControlLock;
class ControlSocket;
class MetricsServer;

/// What the command line says that a reload must keep (it overrides the file).
struct CommandLine {
  std::string config_path;
  std::optional<log::Level> log_level;
  std::optional<log::Format> log_format;
  std::string instance;  ///< --instance NAME ("" : the plain daemon)
};

class Runtime {
 public:
  Runtime(Config config, CommandLine cli);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  /// Returns the process exit status: 0 after a clean stop, 1 when a link cannot be opened.
  int run();

 private:
  using ReloadDone = std::function<void(bool ok, boost::json::object outcome)>;

  // --- start and stop (runtime.cpp) -----------------------------------------------------------
  bool open_links();
  void make_workers();
  /// Gives each fd of `link` a dispatcher on the worker with the fewest so far (not started).
  std::vector<Dispatcher*> add_dispatchers(Link& link);
  /// The dispatchers of `link`, as the link sees them.
  std::vector<PortReader*> readers_of(Link& link);
  bool start_workers();
  /// Takes the control socket's lock (ControlLock): false when another daemon holds it.
  bool lock_control();
  bool open_control();
  /// A failed start: tells systemd why (STATUS=, ERRNO=) and returns `status`.
  int fail_start(int status, const std::string& why, int err);
  void stop_workers();
  /// A worker thread's loop: io.run(), or with busy_poll, polling for that long after work,
  /// or (busy_poll = "always") polling all the time.
  static void run_worker(boost::asio::io_context& io, const DaemonConfig& daemon);
  void on_signal(int signo);
  void wait_signal();
  void schedule_stats();
  void schedule_watchdog(std::chrono::microseconds period);
  void schedule_heartbeat(std::size_t w, std::chrono::microseconds period);
  void log_stats(bool final);
  void log_sink_stats(bool final);
  /// SIGUSR1: every sink's state (a bridge's MAC table) as `fdb` events.
  void log_sink_state();
  std::string status_line() const;
  /// Runs `done` on the control thread once every worker has run everything posted to it
  /// before this call (so none still uses what was taken away before it).
  void after_workers(std::function<void()> done);
  /// Whether `link` is (still) one of the running links.
  bool running(const Link* link) const;

  // --- links going down and coming back (runtime.cpp) ---------------------------------------
  /// One rtnetlink watcher per network namespace that links with interfaces use.
  void watch_interfaces();
  void on_interface(const std::string& netns, const InterfaceEvent& ev);
  /// The link's interface went down or away: park its dispatchers, count what is sent to it
  /// as link_down, close its fds once no worker uses them.
  /// `keep_fds`: park without closing (a TAP whose device is only down).
  void take_down(Link& link, const std::string& reason, bool keep_fds = false);
  /// Closes what take_down retired once every worker is past it, then brings the link up if
  /// its interface came back meanwhile (or it is a TAP fdlinkd made).
  /// `fdb` output: the remote VTEP of each MAC on a vxlan port.
  void add_remotes(boost::json::array& bridges) const;
  /// On every worker: drops what waits in `link`'s backlogs and frees what they hold back.
  void release_tx(Link& link);
  void close_when_workers_pass(Link& link);
  /// Its interface is back: reopen and restart the dispatchers.
  void bring_up(Link& link);

  // --- live reload (reload.cpp) ---------------------------------------------------------------
  /// Reads the config file again and, if it is valid, applies the difference; `done` gets the
  /// outcome (errors, or what changed). A reload asked for while one runs follows it.
  void reload(std::string why, ReloadDone done);
  void start_reload(std::string why);
  void finish_reload(bool ok, boost::json::object outcome);

  // --- the XDP fast path (offload.cpp) --------------------------------------------------------
  /// Before the graph of `config` is built: loads the fast path if a sink has offload = "xdp".
  XdpFastPath* prepare_fastpath(const Config& config);
  /// Brings the fast path in line with the graph and the links: which inputs of sinks with
  /// offload = "xdp" are decided in the kernel (attached, their rows written), which are not
  /// and why (logged when that changes); instances of links that left are detached. Runs on
  /// the control thread after a start, a reload, and a link going down or up.
  void plan_offload();
  /// plan_offload(), if the fast path is loaded and no reload is under way.
  void replan_offload();
  /// Logs each link's xdp_tx_failed that grew since the last call (xdp_tx_failed).
  void log_tx_failed();
  /// Once a second while the fast path is loaded: plan_offload() again, so that a way out
  /// that starts or stops taking redirected frames (a veth peer's GRO) is followed.
  void schedule_offload_check();
  /// Adds slot `index`'s fast-path counters to a link's stats object.
  void add_fastpath_stats(const Link& link, boost::json::object& o) const;
  boost::json::array offload_status() const;

  // --- control socket and metrics (commands.cpp) ------------------------------------------
  void handle(const boost::json::object& request, std::function<void(boost::json::object)> reply);
  boost::json::object status() const;
  /// Every link's and fd's counters and every sink's (what `fdlinkctl stats` shows and the
  /// metrics are made of).
  boost::json::object stats() const;
  boost::json::object info() const;
  void fdb(const std::string& bridge, bool flush, std::function<void(boost::json::object)> reply);

  Config config_;
  CommandLine cli_;
  // Destruction runs bottom-up: dispatchers release their fds before the links close them,
  // and both go before the io_contexts they are registered with.
  boost::asio::io_context control_;  ///< signals, timers, control socket, metrics: main thread
  std::vector<std::unique_ptr<boost::asio::io_context>> workers_;
  std::vector<std::unique_ptr<Worker>> contexts_;  ///< one per worker thread
  std::vector<std::thread> threads_;
  /// Per worker: when it last turned its loop (steady clock, ns), for the watchdog.
  std::unique_ptr<std::atomic<std::int64_t>[]> heartbeat_;
  std::vector<std::unique_ptr<boost::asio::steady_timer>> heartbeat_timers_;
  std::vector<bool> stalled_;  ///< per worker: a stall was logged
  /// Before the links and the graph: a bridge holds a pointer to it.
  std::unique_ptr<XdpFastPath> fastpath_;
  struct Offloaded {
    std::string link, sink;
    std::string why_not;  ///< empty: offloaded
    std::string mode;     ///< native or generic
    bool quiet = false;   ///< its sink does not offload: in status, not in the log
  };
  std::vector<Offloaded> offloaded_;
  std::map<std::size_t, std::uint64_t> fastpath_owner_;  ///< slot -> serial of the link its
                                                         ///< counters are of
  /// slot -> the serial of its link and its xdp_tx_failed, as last logged
  std::map<std::size_t, std::pair<std::uint64_t, std::uint64_t>> tx_failed_logged_;
  bool trace_warned_ = false;  ///< said that xdp_tx_failed cannot be counted
  LinkSet links_;
  std::shared_ptr<Graph> graph_;
  std::vector<std::unique_ptr<Dispatcher>> dispatchers_;
  std::map<const Link*, std::vector<Dispatcher*>> link_dispatchers_;
  std::vector<std::unique_ptr<InterfaceWatcher>> watchers_;
  std::vector<std::string> watched_;  ///< the namespaces of watchers_
  /// Per link going down or down: whether its interface is back and when it went down.
  struct Recovery {
    bool closing = false;  ///< take_down's barrier has not run yet
    bool want_up = false;  ///< the interface came back meanwhile
    std::chrono::steady_clock::time_point since;
  };
  std::map<const Link*, Recovery> recovery_;

  // Reload state.
  bool reloading_ = false;
  std::vector<ReloadDone> queued_reloads_;
  std::vector<ReloadDone> current_reload_;
  std::uint64_t reloads_ = 0;
  bool last_reload_ok_ = true;
  std::chrono::system_clock::time_point loaded_at_;
  std::chrono::system_clock::time_point started_at_;

  std::string start_error_;  ///< why open_links() failed
  /// Held from before the first link opens: one daemon per control socket path.
  std::unique_ptr<ControlLock> control_lock_;
  std::unique_ptr<ControlSocket> control_socket_;
  std::unique_ptr<MetricsServer> metrics_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer stats_timer_;
  boost::asio::steady_timer watchdog_timer_;
  boost::asio::steady_timer offload_timer_;
};

}  // namespace fdlinkd
