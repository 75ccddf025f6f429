// Live reload: SIGHUP or `fdlinkctl reload`.
//
// The new file is read and validated in full first; an invalid one changes nothing. A valid
// one is compared with the running config, link by link and sink by sink (their tables as
// written):
//   kept     same settings: same fds, same dispatchers, no frame lost (its `sink` may change);
//   changed  parked, closed, and opened anew with the new settings (same index);
//   added    opened before anything else changes: if one cannot be opened, nothing changes
//            (but an af_xdp link on a removed af_xdp link's interface, a rename, opens once
//            that one has closed: only one XDP program fits on an interface);
//   removed  parked and closed (a TAP fdlinkd made disappears).
// Sinks with unchanged settings are the same objects in the new graph (a bridge keeps its
// table and counters); changed ones are built anew and take over what still applies.
//
// Workers switch without a lock: the control thread posts the switch to each worker, which
// makes it between two batches; what the old graph and the removed links used is destroyed
// once every worker is past the switch, and once more past anything they posted to each other
// before it (a bridge shares learned MACs with a post).
#include <systemd/sd-daemon.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <ctime>

#include "core/log.hpp"
#include "link/link_types.hpp"
#include "runtime/kinds.hpp"
#include "runtime/runtime.hpp"

namespace fdlinkd {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

std::uint64_t monotonic_usec() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000 +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1000;
}

json::array names_of(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v)
    a.emplace_back(s);
  return a;
}

}  // namespace

void Runtime::reload(std::string why, ReloadDone done) {
  // One at a time: a reload asked for while one runs reads the file again once it is done.
  queued_reloads_.push_back(std::move(done));
  if (!reloading_) start_reload(std::move(why));
}

void Runtime::start_reload(std::string why) {
  reloading_ = true;
  ++reloads_;
  current_reload_ = std::move(queued_reloads_);
  queued_reloads_.clear();
  sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading %s",
             static_cast<unsigned long long>(monotonic_usec()), cli_.config_path.c_str());
  log::info("reload", "reloading the config", {{"why", why}, {"config", cli_.config_path}});

  ConfigResult loaded = load_config(cli_.config_path);
  if (!loaded.config) {
    json::array errors;
    for (const auto& e : loaded.errors) {
      log::error("config_error", e.message,
                 {{"file", e.file}, {"line", e.line}, {"column", e.column}});
      errors.emplace_back(e.to_string());
    }
    finish_reload(false, {{"error", std::to_string(loaded.error_count) + " error(s) in " +
                                        cli_.config_path + "; the running config is unchanged"},
                          {"errors", errors}});
    return;
  }
  auto next = std::make_shared<Config>(std::move(*loaded.config));
  if (cli_.log_level) next->daemon.log_level = *cli_.log_level;
  if (cli_.log_format) next->daemon.log_format = *cli_.log_format;
  if (const std::string key = config_.daemon.restart_needed(next->daemon); !key.empty()) {
    finish_reload(false, {{"error", "[daemon] " + key +
                                        " needs a restart of fdlinkd (systemctl restart "
                                        "fdlinkd); nothing was changed"}});
    return;
  }

  // The plan.
  struct Plan {
    std::vector<std::string> kept, changed, added, removed, resinked;
    std::vector<std::string> handed;             ///< added, opened after a removed one closes
    std::vector<std::unique_ptr<Link>> opened;   ///< added, open
    std::vector<std::unique_ptr<Link>> leaving;  ///< changed and removed, taken out
    std::map<std::string, std::size_t> slot;     ///< a changed link's index
    std::vector<Dispatcher*> fresh;              ///< dispatchers of opened links
    std::shared_ptr<Graph> old_graph;
  };
  auto plan = std::make_shared<Plan>();
  for (const auto& lc : next->links) {
    Link* old = links_.find(lc.name);
    if (!old)
      plan->added.push_back(lc.name);
    else if (old->config().settings != lc.settings)
      plan->changed.push_back(lc.name);
    else {
      plan->kept.push_back(lc.name);
      if (old->config().sink != lc.sink) plan->resinked.push_back(lc.name);
    }
  }
  for (const Link* l : links_.all())
    if (!next->find_link(l->name())) plan->removed.push_back(l->name());

  // An added link of a type that holds its interface alone (af_xdp: its XDP hook) on the
  // interface of a removed one (a rename) cannot open while the old one holds it: it opens once
  // the old one has closed, as a changed link does.
  for (const auto& name : plan->added) {
    const LinkConfig& lc = *next->find_link(name);
    for (const auto& gone : plan->removed) {
      const LinkConfig& oc = links_.find(gone)->config();
      if (link_type_of(lc).exclusive_interface && lc.type == oc.type &&
          lc.interface == oc.interface && lc.netns == oc.netns) {
        plan->handed.push_back(name);
        break;
      }
    }
  }
  auto handed = [&plan](const std::string& name) {
    return std::find(plan->handed.begin(), plan->handed.end(), name) != plan->handed.end();
  };

  // Added links open first: if one cannot, nothing has changed yet.
  for (const auto& name : plan->added) {
    if (handed(name)) continue;
    auto link = make_link(*next->find_link(name));
    try {
      link->open(config_.daemon.workers);
    } catch (const LinkError& e) {
      log::error("link_open_failed", e.what(), {{"link", name}, {"what", link->describe()}});
      finish_reload(false, {{"error", "link \"" + name + "\" cannot be opened: " + e.what() +
                                          "; the running config is unchanged"}});
      return;  // plan->opened closes with the plan
    }
    log::info("link_open", "link open", {{"link", name}, {"what", link->describe()}});
    plan->opened.push_back(std::move(link));
  }

  // Changed and removed links leave: parked now, closed once every worker is past them.
  std::vector<std::string> leaving = plan->changed;
  leaving.insert(leaving.end(), plan->removed.begin(), plan->removed.end());
  for (const auto& name : leaving) {
    Link* link = links_.find(name);
    plan->slot[name] = link->index();
    if (!link->is_down())
      link->mark_down(true);
    else if (link->has_fds())
      link->retire_fds();
    const auto& ds = link_dispatchers_[link];
    for (Dispatcher* d : ds)
      asio::post(d->io(), [d] { d->detach(); });
    if (!ds.empty()) asio::post(ds[0]->io(), [link] { link->stop(); });
    release_tx(*link);
    recovery_.erase(link);
    plan->leaving.push_back(links_.take(name));
  }

  after_workers([this, next, plan] {
    for (auto& link : plan->leaving) {
      link->close_retired();  // (a TAP fdlinkd made disappears here)
      log::info("link_closed", "link closed by the reload",
                {{"link", link->name()}, {"what", link->describe()}});
    }
    // Changed links open again with their new settings, in their old slots; links that take
    // an interface over from a removed one open now. One that cannot stays down and is retried.
    std::vector<std::string> late = plan->changed;
    late.insert(late.end(), plan->handed.begin(), plan->handed.end());
    for (const auto& name : late) {
      const bool changed = plan->slot.count(name) != 0;
      auto link = make_link(*next->find_link(name));
      bool ok = true;
      try {
        link->open(config_.daemon.workers);
        log::info("link_open", changed ? "link reopened with its new settings" : "link open",
                  {{"link", name}, {"what", link->describe()}});
      } catch (const LinkError& e) {
        ok = false;
        log::error("link_open_failed", std::string(e.what()) + "; the link stays down",
                   {{"link", name}, {"what", link->describe()}});
      }
      Link* raw = link.get();
      if (changed)
        links_.add(std::move(link), plan->slot[name]);
      else
        links_.add(std::move(link));
      if (!ok) {
        raw->mark_down(false);
        recovery_[raw].since = std::chrono::steady_clock::now();
      }
    }
    for (auto& link : plan->opened)
      links_.add(std::move(link));
    plan->opened.clear();
    for (const auto& name : plan->resinked)
      links_.find(name)->set_sink(next->find_link(name)->sink);

    // The new graph, and dispatchers for the links that are new to it.
    plan->old_graph = graph_;
    graph_ = Graph::build(*next, links_, config_.daemon.workers, plan->old_graph.get(),
                          prepare_fastpath(*next));
    std::vector<Worker*> list;
    for (auto& c : contexts_)
      list.push_back(c.get());
    graph_->set_workers(std::move(list));
    std::vector<std::string> fresh_links = plan->changed;
    fresh_links.insert(fresh_links.end(), plan->added.begin(), plan->added.end());
    for (const auto& name : fresh_links) {
      Link* link = links_.find(name);
      link_dispatchers_[link] = add_dispatchers(*link);
    }
    const std::size_t wire = next->max_wire_capacity(), rx = next->max_rx_capacity();

    // The switch, on each worker between two batches.
    for (auto& c : contexts_) {
      Worker* w = c.get();
      std::vector<std::tuple<Dispatcher*, std::size_t, std::size_t>> mine;
      for (Link* link : links_.all())
        for (Dispatcher* d : link_dispatchers_[link])
          if (&d->worker() == w)
            mine.emplace_back(d, graph_->find(link->config().sink), link->index());
      asio::post(w->io, [w, g = graph_, mine, wire, rx] {
        w->grow(wire, rx);
        g->take_over(*w);
        for (auto [d, root, ingress] : mine)
          d->set_graph(*g, root, ingress);
      });
    }
    after_workers([this, next, plan, fresh_links] {
      for (const auto& name : fresh_links) {
        Link* link = links_.find(name);
        if (!link->is_down()) link->start(readers_of(*link));
      }
      plan_offload();  // (every worker runs the new graph: the kernel follows it)
      // Once more: whatever a worker posted to another through the old graph has run.
      after_workers([this, next, plan] {
        for (const auto& link : plan->leaving) {
          const Link* raw = link.get();
          std::erase_if(dispatchers_,
                        [raw](const std::unique_ptr<Dispatcher>& d) { return &d->link() == raw; });
          link_dispatchers_.erase(raw);
        }
        plan->leaving.clear();
        plan->old_graph.reset();
        const bool log_changed = next->daemon.log_level != config_.daemon.log_level ||
                                 next->daemon.log_format != config_.daemon.log_format;
        const bool stats_changed = next->daemon.stats_interval != config_.daemon.stats_interval;
        config_ = std::move(*next);
        if (log_changed) log::init(config_.daemon.log_level, config_.daemon.log_format);
        if (stats_changed) {
          stats_timer_.cancel();
          schedule_stats();
        }
        watch_interfaces();
        loaded_at_ = std::chrono::system_clock::now();
        const std::size_t sinks_kept = graph_->kept();
        json::object outcome{{"links_kept", names_of(plan->kept)},
                             {"links_reopened", names_of(plan->changed)},
                             {"links_added", names_of(plan->added)},
                             {"links_removed", names_of(plan->removed)},
                             {"sinks_kept", sinks_kept},
                             {"sinks_built", graph_->size() - sinks_kept}};
        finish_reload(true, std::move(outcome));
      });
    });
  });
}

void Runtime::finish_reload(bool ok, json::object outcome) {
  last_reload_ok_ = ok;
  if (ok) {
    const auto count = [&](const char* k) { return outcome.at(k).as_array().size(); };
    log::info("reload_done", "config reloaded",
              {{"kept", count("links_kept")},
               {"reopened", count("links_reopened")},
               {"added", count("links_added")},
               {"removed", count("links_removed")},
               {"sinks_kept", outcome.at("sinks_kept").as_uint64()},
               {"sinks_built", outcome.at("sinks_built").as_uint64()}});
  } else {
    log::error("reload_failed", std::string(outcome.at("error").as_string()), {});
  }
  sd_notifyf(0, "READY=1\nSTATUS=%s%s", ok ? "" : "reload failed; still running the old config; ",
             status_line().c_str());
  auto waiting = std::move(current_reload_);
  current_reload_.clear();
  reloading_ = false;
  for (auto& done : waiting)
    if (done) done(ok, outcome);
  if (!queued_reloads_.empty()) start_reload("asked for during the last reload");
}

}  // namespace fdlinkd
