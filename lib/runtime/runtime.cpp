#include "runtime/runtime.hpp"

#include <systemd/sd-daemon.h>

#include <pthread.h>
#include <sched.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <csignal>

#include "core/log.hpp"
#include "link/link_types.hpp"
#include "ops/control_socket.hpp"
#include "ops/metrics.hpp"

namespace fdlinkd {

namespace asio = boost::asio;

Runtime::Runtime(Config config, CommandLine cli)
    : config_(std::move(config)),
      cli_(std::move(cli)),
      signals_(control_, SIGINT, SIGTERM, SIGHUP),
      stats_timer_(control_),
      watchdog_timer_(control_),
      offload_timer_(control_) {
  signals_.add(SIGUSR1);  // (the constructor takes at most three)
}

Runtime::~Runtime() {
  stop_workers();
}

bool Runtime::running(const Link* link) const {
  for (const Link* l : links_.all())
    if (l == link) return true;
  return false;
}

bool Runtime::open_links() {
  for (const LinkType* t : link_types())
    if (t->prepare) t->prepare(config_);
  for (const auto& lc : config_.links) {
    auto link = make_link(lc);
    try {
      link->open(config_.daemon.workers);
    } catch (const LinkError& e) {
      log::error("link_open_failed", e.what(), {{"link", lc.name}, {"what", link->describe()}});
      start_error_ = "link " + lc.name + ": " + e.what();
      return false;  // links opened so far close (and their TAPs vanish) with the Runtime
    }
    log::info("link_open", "link open",
              {{"link", lc.name},
               {"what", link->describe()},
               {"fds", link->port_count()},  // (af_xdp: its queues, known once open)
               {"dispatch", link->reader_name()},
               {"sink", lc.sink}});
    links_.add(std::move(link));
  }
  return true;
}

void Runtime::make_workers() {
  const std::size_t wire = config_.max_wire_capacity(), rx = config_.max_rx_capacity();
  std::vector<Worker*> list;
  heartbeat_.reset(new std::atomic<std::int64_t>[config_.daemon.workers]);
  for (unsigned i = 0; i < config_.daemon.workers; ++i) {
    workers_.push_back(std::make_unique<asio::io_context>(1));
    contexts_.push_back(std::make_unique<Worker>(*workers_.back(), i, wire, rx));
    list.push_back(contexts_.back().get());
    heartbeat_[i].store(std::chrono::steady_clock::now().time_since_epoch().count());
    heartbeat_timers_.push_back(std::make_unique<asio::steady_timer>(*workers_.back()));
  }
  stalled_.assign(workers_.size(), false);
  graph_ =
      Graph::build(config_, links_, config_.daemon.workers, nullptr, prepare_fastpath(config_));
  graph_->set_workers(std::move(list));
  for (Link* link : links_.all())
    link_dispatchers_[link] = add_dispatchers(*link);
}

std::vector<Dispatcher*> Runtime::add_dispatchers(Link& link) {
  std::vector<std::size_t> load(workers_.size(), 0);
  for (const auto& d : dispatchers_)
    ++load[d->worker().id];
  // Links that read one socket (vxlan links on one port) read it on one worker: the order in
  // which its datagrams come is the order they go on in.
  std::size_t group_worker = workers_.size();
  if (const void* group = link.rx_group())
    for (const auto& d : dispatchers_)
      if (&d->link() != &link && d->link().rx_group() == group) group_worker = d->worker().id;
  std::vector<Dispatcher*> mine;
  for (std::size_t q = 0; q < link.port_count(); ++q) {
    const std::size_t w =
        group_worker < workers_.size()
            ? group_worker
            : static_cast<std::size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    ++load[w];
    dispatchers_.push_back(std::make_unique<Dispatcher>(*contexts_[w], link, q, *graph_));
    mine.push_back(dispatchers_.back().get());
  }
  return mine;
}

bool Runtime::start_workers() {
  const auto& cpus = config_.daemon.cpu_affinity;
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    threads_.emplace_back([this, i] {
      // Named for top -H, perf and ps (15 characters at most): fdlinkd-w0, fdlinkd-w1, ...
      const std::string name = "fdlinkd-w" + std::to_string(i);
      pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
      auto guard = asio::make_work_guard(*workers_[i]);
      run_worker(*workers_[i], config_.daemon);
    });
    if (cpus.empty()) continue;
    const unsigned cpu = cpus[i % cpus.size()];
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    const int rc = pthread_setaffinity_np(threads_.back().native_handle(), sizeof set, &set);
    if (rc != 0) {
      log::error("cpu_affinity_failed", "cannot pin a worker to its CPU",
                 {{"worker", i}, {"cpu", cpu}, {"error", errno_text(rc)}});
      return false;
    }
    log::debug("worker_pinned", "worker pinned", {{"worker", i}, {"cpu", cpu}});
  }
  return true;
}

void Runtime::run_worker(asio::io_context& io, const DaemonConfig& daemon) {
  const std::chrono::microseconds busy_poll = daemon.busy_poll;
  if (daemon.busy_poll_always) {
    // No sleep, ever: every frame is read by a thread that is already running. poll() runs
    // what is ready, timers included (epoll with no wait).
    while (!io.stopped())
      io.poll();
    return;
  }
  if (busy_poll.count() == 0) {
    io.run();
    return;
  }
  // poll() runs what is ready, the fds' readiness included (epoll with no wait); run_one()
  // sleeps until something is. A worker that had work within busy_poll keeps polling.
  using clock = std::chrono::steady_clock;
  auto last = clock::now();
  while (!io.stopped()) {
    if (io.poll() != 0) {
      last = clock::now();
    } else if (clock::now() - last >= busy_poll) {
      io.run_one();
      last = clock::now();
    }
  }
}

void Runtime::stop_workers() {
  for (auto& io : workers_)
    io->stop();  // a handler in progress (one batch) completes first
  for (auto& t : threads_)
    t.join();
  threads_.clear();
}

int Runtime::run() {
  started_at_ = loaded_at_ = std::chrono::system_clock::now();
  if (!lock_control()) return 1;
  if (!open_links()) return fail_start(1, start_error_, EIO);
  make_workers();
  if (!open_control()) return 1;
  for (Link* link : links_.all())
    link->start(readers_of(*link));
  if (!start_workers()) return fail_start(1, "a worker could not be pinned to its CPU", EINVAL);
  plan_offload();
  schedule_offload_check();

  wait_signal();
  schedule_stats();
  watch_interfaces();
  std::uint64_t watchdog_usec = 0;
  const bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0;
  const auto period = watchdog ? std::chrono::microseconds(watchdog_usec / 2)
                               : std::chrono::microseconds(std::chrono::seconds(1));
  for (std::size_t w = 0; w < workers_.size(); ++w)
    schedule_heartbeat(w, period / 2);
  if (watchdog) schedule_watchdog(period);

  log::info(
      "ready", "forwarding",
      {{"links", links_.all().size()}, {"sinks", graph_->size()}, {"workers", workers_.size()}});
  sd_notifyf(0, "READY=1\nSTATUS=%s", status_line().c_str());

  control_.run();

  sd_notify(0, "STOPPING=1");
  metrics_.reset();
  control_socket_.reset();
  watchers_.clear();
  stop_workers();
  log_stats(true);
  fastpath_.reset();  // (its programs leave the interfaces before the links close)
  log::info("stopped", "all links closed", {});
  return 0;
}

std::vector<PortReader*> Runtime::readers_of(Link& link) {
  const auto& ds = link_dispatchers_[&link];
  return {ds.begin(), ds.end()};
}

void Runtime::after_workers(std::function<void()> done) {
  auto left = std::make_shared<std::atomic<std::size_t>>(workers_.size());
  auto shared = std::make_shared<std::function<void()>>(std::move(done));
  for (auto& io : workers_)
    asio::post(*io, [this, left, shared] {
      if (left->fetch_sub(1) == 1) asio::post(control_, [shared] { (*shared)(); });
    });
}

void Runtime::watch_interfaces() {
  std::vector<std::string> spaces;
  for (const auto& link : links_.all())
    if (link->has_interface() &&
        std::find(spaces.begin(), spaces.end(), link->config().netns) == spaces.end() &&
        std::find(watched_.begin(), watched_.end(), link->config().netns) == watched_.end())
      spaces.push_back(link->config().netns);
  for (const auto& ns : spaces) {
    watched_.push_back(ns);
    try {
      watchers_.push_back(std::make_unique<InterfaceWatcher>(
          control_, ns, [this, ns](const InterfaceEvent& ev) { on_interface(ns, ev); },
          [this] { replan_offload(); }));  // (a way out may take redirected frames or not now)
    } catch (const std::runtime_error& e) {
      log::error("netlink_error", "cannot follow interfaces; links will not recover by themselves",
                 {{"netns", ns}, {"error", e.what()}});
    }
  }
}

void Runtime::on_interface(const std::string& netns, const InterfaceEvent& ev) {
  const std::vector<Link*> links = links_.all();  // (take_down may not change it, but be safe)
  for (Link* lp : links) {
    Link& link = *lp;
    if (!link.has_interface() || link.config().netns != netns || link.config().interface != ev.name)
      continue;
    const bool tap = link.keeps_fds_while_down();
    if (ev.index == 0) {
      take_down(link, "interface deleted");
    } else if (!ev.up) {  // (a TAP keeps its fds: closing them would delete its device)
      take_down(link, "interface down", tap);
    } else if (link.is_down()) {
      bring_up(link);
    } else if (!tap && link.ifindex() != 0 && ev.index != link.ifindex()) {
      take_down(link, "interface recreated");  // deleted and made again before we saw it go
      bring_up(link);
    }
  }
}

void Runtime::take_down(Link& link, const std::string& reason, bool keep_fds) {
  Recovery& r = recovery_[&link];
  if (link.is_down()) {
    // Parked with its fds, and now deleted: close them too (and make the device again if it
    // is fdlinkd's).
    if (keep_fds || !link.has_fds() || r.closing) return;
    r.closing = true;
    link.retire_fds();
    close_when_workers_pass(link);
    return;
  }
  r.closing = !keep_fds;
  r.want_up = false;
  r.since = std::chrono::steady_clock::now();
  link.mark_down(!keep_fds);
  log::warn("link_down", "link down: its dispatchers wait for the interface to come back",
            {{"link", link.name()},
             {"what", link.describe()},
             {"reason", reason},
             {"down_count", link.down_count()}});
  for (Dispatcher* d : link_dispatchers_[&link])
    asio::post(d->io(), [d] { d->detach(); });
  release_tx(link);
  plan_offload();  // (its frames, and frames to it, go up to fdlinkd)
  if (keep_fds) return;
  close_when_workers_pass(link);
}

void Runtime::release_tx(Link& link) {
  // What waits for the link is dropped, and the links it held back read again.
  for (auto& c : contexts_)
    asio::post(c->io, [l = &link, id = c->id] { l->release_tx(id); });
}

void Runtime::close_when_workers_pass(Link& link) {
  after_workers([this, &link] {
    if (!running(&link)) return;  // a reload took it away meanwhile (and closed it)
    link.close_retired();
    Recovery& r = recovery_[&link];
    r.closing = false;
    // A TAP fdlinkd made is made again; any other link waits for its interface.
    if (r.want_up || link.owns_device()) bring_up(link);
  });
}

void Runtime::bring_up(Link& link) {
  Recovery& r = recovery_[&link];
  if (!link.is_down()) return;
  if (r.closing) {  // the old fds are not closed yet: come back once they are
    r.want_up = true;
    return;
  }
  const bool reopened = !link.has_fds();
  if (reopened) {
    try {
      link.reopen();
    } catch (const LinkError& e) {
      log::warn("link_reopen_failed", e.what(), {{"link", link.name()}, {"what", link.describe()}});
      return;  // still down; the next event of its interface tries again
    }
  }
  link.mark_up();
  const auto down_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now() - r.since)
                           .count();
  log::info(
      "link_up",
      reopened && link.owns_device() ? "link up again: its device was made again" : "link up again",
      {{"link", link.name()}, {"what", link.describe()}, {"downtime_ms", down_ms}});
  const auto& ds = link_dispatchers_[&link];
  for (std::size_t q = 0; q < ds.size(); ++q) {
    Dispatcher* d = ds[q];
    asio::post(d->io(), [d, fd = link.port(q).fd.load()] { d->attach(fd); });
  }
  plan_offload();
}

void Runtime::wait_signal() {
  signals_.async_wait([this](const boost::system::error_code& ec, int signo) {
    if (!ec) on_signal(signo);
  });
}

void Runtime::on_signal(int signo) {
  if (signo == SIGUSR1) {  // the counters and the state of every sink (a bridge's MAC table)
    log::info("sigusr1", "SIGUSR1: logging the counters and the sinks' state", {});
    log_stats(false);
    log_sink_state();
    wait_signal();
    return;
  }
  if (signo == SIGHUP) {
    reload("SIGHUP", nullptr);
    wait_signal();
    return;
  }
  log::info("stopping", signo == SIGTERM ? "SIGTERM received" : "SIGINT received", {});
  stats_timer_.cancel();
  watchdog_timer_.cancel();
  offload_timer_.cancel();
  control_.stop();
}

void Runtime::log_sink_state() {
  if (workers_.empty()) return;
  std::shared_ptr<Graph> g = graph_;
  Worker& w = *contexts_[0];
  asio::post(w.io, [g, &w] {
    for (std::size_t n = 0; n < g->size(); ++n) {
      const auto rows = g->sink(n).state(w);
      for (const auto& row : rows) {
        std::vector<log::Field> f = {{"sink", g->name(n)}};
        f.insert(f.end(), row.begin(), row.end());
        log::write(log::Level::info, "fdb", "bridge table entry", f);
      }
      if (g->sink(n).has_state())
        log::info("fdb_end", "bridge table", {{"sink", g->name(n)}, {"entries", rows.size()}});
    }
  });
}

void Runtime::schedule_stats() {
  if (config_.daemon.stats_interval.count() == 0) return;
  stats_timer_.expires_after(config_.daemon.stats_interval);
  stats_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    log_stats(false);
    sd_notifyf(0, "STATUS=%s", status_line().c_str());
    schedule_stats();
  });
}

// Each worker stamps its heartbeat from a timer on its own io_context: the stamp is late when
// the worker is stuck in a handler (or starved), whatever the control thread does.
void Runtime::schedule_heartbeat(std::size_t w, std::chrono::microseconds period) {
  asio::steady_timer& t = *heartbeat_timers_[w];
  t.expires_after(period);
  t.async_wait([this, w, period](const boost::system::error_code& ec) {
    if (ec) return;
    heartbeat_[w].store(std::chrono::steady_clock::now().time_since_epoch().count(),
                        std::memory_order_relaxed);
    schedule_heartbeat(w, period);
  });
}

// WATCHDOG=1 only while every worker has stamped its heartbeat within the last period: a
// stalled worker stops the pings, and systemd restarts fdlinkd after WatchdogSec.
void Runtime::schedule_watchdog(std::chrono::microseconds period) {
  watchdog_timer_.expires_after(period);
  watchdog_timer_.async_wait([this, period](const boost::system::error_code& ec) {
    if (ec) return;
    const auto now = std::chrono::steady_clock::now().time_since_epoch();
    bool all = true;
    for (std::size_t w = 0; w < workers_.size(); ++w) {
      const auto age =
          now - std::chrono::steady_clock::duration(heartbeat_[w].load(std::memory_order_relaxed));
      const bool late = age > period;
      if (late && !stalled_[w])
        log::error(
            "worker_stalled",
            "a worker has not turned its loop within the watchdog interval; not "
            "telling systemd WATCHDOG=1",
            {{"worker", w},
             {"stalled_ms", std::chrono::duration_cast<std::chrono::milliseconds>(age).count()}});
      else if (!late && stalled_[w])
        log::warn("worker_recovered", "the worker turns its loop again", {{"worker", w}});
      stalled_[w] = late;
      all = all && !late;
    }
    if (all) sd_notify(0, "WATCHDOG=1");
    schedule_watchdog(period);
  });
}

int Runtime::fail_start(int status, const std::string& why, int err) {
  sd_notifyf(0, "STATUS=failed to start: %s\nERRNO=%d", why.c_str(), err);
  return status;
}

bool Runtime::lock_control() {
  if (config_.daemon.control_socket.empty()) return true;
  try {
    control_lock_ = std::make_unique<ControlLock>(config_.daemon.control_socket);
  } catch (const std::runtime_error& e) {
    log::error("control_open_failed", e.what(), {{"path", config_.daemon.control_socket}});
    fail_start(1, e.what(), EADDRINUSE);
    return false;
  }
  return true;
}

bool Runtime::open_control() {
  try {
    if (!config_.daemon.control_socket.empty()) {
      control_socket_ = std::make_unique<ControlSocket>(
          control_, config_.daemon.control_socket, config_.daemon.control_gid,
          [this](const boost::json::object& req, std::function<void(boost::json::object)> reply) {
            handle(req, std::move(reply));
          });
      log::info("control_socket", "control socket open", {{"path", config_.daemon.control_socket}});
    }
    if (!config_.daemon.metrics.empty()) {
      metrics_ = std::make_unique<MetricsServer>(
          control_, config_.daemon.metrics, [this] { return render_metrics(stats(), info()); });
      log::info("metrics", "Prometheus metrics served", {{"address", metrics_->address()}});
    }
  } catch (const std::runtime_error& e) {
    log::error("control_open_failed", e.what(), {});
    fail_start(1, e.what(), EADDRINUSE);
    return false;
  }
  return true;
}

void Runtime::log_stats(bool final) {
  log_sink_stats(final);
  for (const auto& link : links_.all())
    link->collect_kernel_counters();
  for (const auto& link : links_.all()) {
    const CounterValues v = link->totals();
    std::vector<log::Field> f = {{"link", link->name()},
                                 {"rx_packets", v.rx_packets},
                                 {"rx_bytes", v.rx_bytes},
                                 {"tx_packets", v.tx_packets},
                                 {"tx_bytes", v.tx_bytes},
                                 {"rx_errors", v.rx_errors},
                                 {"gso_segments", v.gso_segments},
                                 {"drops", v.total_drops()},
                                 {"final", final},
                                 {"state", link->is_down() ? "down" : "up"},
                                 {"down_count", link->down_count()}};
    std::vector<std::string> names;  // the drop_<reason> keys must outlive f
    names.reserve(kDropReasonCount);
    for (std::size_t r = 0; r < kDropReasonCount; ++r) {
      if (v.drops[r] == 0) continue;
      names.push_back("drop_" + std::string(drop_reason_name(static_cast<DropReason>(r))));
      f.emplace_back(names.back(), v.drops[r]);
    }
    log::write(log::Level::info, "stats", final ? "final counters" : "counters", f);
    if (link->port_count() == 1) continue;
    // How the fds share the load (fanout, multi-queue, flow hash): debug while running, and
    // always at exit.
    for (std::size_t q = 0; q < link->port_count(); ++q) {
      const CounterValues p = link->port_totals(q);
      log::write(final ? log::Level::info : log::Level::debug, "queue_stats",
                 final ? "final counters of one fd" : "counters of one fd",
                 {{"link", link->name()},
                  {"queue", q},
                  {"rx_packets", p.rx_packets},
                  {"tx_packets", p.tx_packets},
                  {"drops", p.total_drops()},
                  {"final", final}});
    }
  }
}

void Runtime::log_sink_stats(bool final) {
  for (std::size_t n = 0; n < graph_->size(); ++n) {
    const auto names = graph_->sink(n).counter_names();
    if (names.empty()) continue;
    const std::vector<std::uint64_t> values = graph_->counters(n);
    std::vector<log::Field> f = {{"sink", graph_->name(n)}};
    for (std::size_t i = 0; i < names.size(); ++i)
      f.emplace_back(names[i], values[i]);
    f.emplace_back("final", final);
    log::write(log::Level::info, "stats", final ? "final counters of a sink" : "counters of a sink",
               f);
  }
}

std::string Runtime::status_line() const {
  std::uint64_t rx = 0, tx = 0, drops = 0;
  for (const auto& link : links_.all()) {
    const CounterValues v = link->totals();
    rx += v.rx_packets;
    tx += v.tx_packets;
    drops += v.total_drops();
  }
  return std::to_string(links_.all().size()) + " links; " + std::to_string(rx) + " frames in, " +
         std::to_string(tx) + " out, " + std::to_string(drops) + " dropped";
}

}  // namespace fdlinkd
