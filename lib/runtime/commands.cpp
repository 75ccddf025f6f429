// What the control socket answers (docs/control.md has the protocol) and what the metrics
// endpoint is made of. Everything here runs on the control thread and reads the workers'
// counters without stopping them; what only a worker may look at (a bridge's table) is asked of
// it with a post, and the reply follows.
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <thread>

#include "core/log.hpp"
#include "core/version.hpp"
#include "ops/control_socket.hpp"
#include "runtime/runtime.hpp"

namespace fdlinkd {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

struct Command {
  const char* name;
  const char* args;
  const char* help;
};
constexpr Command kCommands[] = {
    {"status", "", "version, uptime, config file, links with their state and fds, workers"},
    {"stats", "[LINK...]", "counters per link and per fd: packets, bytes, drops by reason"},
    {"sinks", "", "each sink with its own counters"},
    {"fdb", "[BRIDGE]", "the MAC tables of the bridges"},
    {"fdb-flush", "[BRIDGE]", "forget the learned MACs of the bridges (static ones stay)"},
    {"reload", "", "read the config file again and apply it; replies when done"},
    {"log-level", "LEVEL", "set the log level: trace, debug, info, warn or error"},
    {"version", "", "the version of the running daemon"},
    {"list-commands", "", "this list"},
};

double unix_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

std::string iso_time(std::chrono::system_clock::time_point t) {
  const std::time_t s = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

json::object counters_json(const CounterValues& v) {
  json::object o{{"rx_packets", v.rx_packets}, {"rx_bytes", v.rx_bytes},
                 {"tx_packets", v.tx_packets}, {"tx_bytes", v.tx_bytes},
                 {"rx_errors", v.rx_errors},   {"gso_segments", v.gso_segments}};
  json::object drops;
  for (std::size_t r = 0; r < kDropReasonCount; ++r)
    drops[drop_reason_name(static_cast<DropReason>(r))] = v.drops[r];
  o["drops"] = std::move(drops);
  o["drops_total"] = v.total_drops();
  return o;
}

json::value field_json(const log::Field& f) {
  if (!f.number) return json::value(f.value);
  if (f.value == "true" || f.value == "false") return json::value(f.value == "true");
  if (!f.value.empty() && f.value[0] == '-')
    return json::value(std::strtoll(f.value.c_str(), nullptr, 10));
  return json::value(std::strtoull(f.value.c_str(), nullptr, 10));
}

std::vector<std::string> string_args(const json::object& req, std::string& error) {
  std::vector<std::string> out;
  const json::value* a = req.if_contains("args");
  if (!a) return out;
  if (!a->is_array()) {
    error = "\"args\" must be an array of strings";
    return out;
  }
  for (const auto& v : a->as_array()) {
    if (!v.is_string()) {
      error = "\"args\" must be an array of strings";
      return out;
    }
    out.emplace_back(v.as_string());
  }
  return out;
}

}  // namespace

void Runtime::handle(const json::object& req, std::function<void(json::object)> reply) {
  const json::value* c = req.if_contains("command");
  if (!c || !c->is_string()) {
    reply(error_reply("a request needs \"command\" (a string); try list-commands"));
    return;
  }
  const std::string cmd(c->as_string());
  std::string bad;
  const std::vector<std::string> args = string_args(req, bad);
  if (!bad.empty()) {
    reply(error_reply(bad));
    return;
  }
  const auto max_args = [&](std::size_t n) {
    if (args.size() <= n) return true;
    reply(error_reply(cmd + " takes at most " + std::to_string(n) + " argument" +
                      (n == 1 ? "" : "s")));
    return false;
  };

  if (cmd == "version") {
    if (max_args(0)) reply(ok_reply(json::object{{"version", kVersion}}));
  } else if (cmd == "list-commands") {
    json::array list;
    for (const Command& k : kCommands)
      list.push_back(json::object{{"command", k.name}, {"args", k.args}, {"help", k.help}});
    reply(ok_reply(std::move(list)));
  } else if (cmd == "status") {
    if (max_args(0)) reply(ok_reply(status()));
  } else if (cmd == "stats") {
    json::object s = stats();
    if (!args.empty()) {
      json::array picked;
      for (const auto& name : args) {
        const json::value* found = nullptr;
        for (const auto& l : s.at("links").as_array())
          if (l.as_object().at("name").as_string() == name) found = &l;
        if (!found) {
          reply(error_reply("no link named \"" + name + "\""));
          return;
        }
        picked.push_back(*found);
      }
      s["links"] = std::move(picked);
    }
    reply(ok_reply(std::move(s)));
  } else if (cmd == "sinks") {
    if (max_args(0)) reply(ok_reply(json::object{{"sinks", stats().at("sinks")}}));
  } else if (cmd == "fdb" || cmd == "fdb-flush") {
    if (max_args(1)) fdb(args.empty() ? "" : args[0], cmd == "fdb-flush", std::move(reply));
  } else if (cmd == "reload") {
    if (!max_args(0)) return;
    reload("fdlinkctl reload", [reply](bool ok, json::object outcome) {
      if (ok)
        reply(ok_reply(std::move(outcome)));
      else {
        json::object r = error_reply(outcome.at("error").as_string());
        if (outcome.contains("errors")) r["errors"] = outcome.at("errors");
        reply(std::move(r));
      }
    });
  } else if (cmd == "log-level") {
    const auto level = args.size() == 1 ? log::parse_level(args[0]) : std::nullopt;
    if (!level) {
      reply(error_reply("log-level takes one of: trace, debug, info, warn, error"));
      return;
    }
    log::set_level(*level);
    config_.daemon.log_level = *level;
    log::info("log_level", "log level changed", {{"level", args[0]}});
    reply(ok_reply(json::object{{"level", args[0]}}));
  } else if (cmd == "debug-stall-worker" && std::getenv("FDLINKD_TEST_HOOKS")) {
    // Test hook (only with FDLINKD_TEST_HOOKS set): blocks worker N for S seconds, as a stuck
    // handler would.
    const std::size_t w = args.size() == 2 ? std::strtoul(args[0].c_str(), nullptr, 10) : 0;
    const long secs = args.size() == 2 ? std::strtol(args[1].c_str(), nullptr, 10) : 0;
    if (w >= workers_.size() || secs <= 0 || secs > 600) {
      reply(error_reply("debug-stall-worker WORKER SECONDS"));
      return;
    }
    asio::post(*workers_[w], [secs] { std::this_thread::sleep_for(std::chrono::seconds(secs)); });
    reply(ok_reply(json::object{{"worker", w}, {"seconds", secs}}));
  } else {
    reply(error_reply("unknown command \"" + cmd + "\"; try list-commands"));
  }
}

namespace {

// What a link knows of its peer (Link::facts): "peer" for the link, "queues" by port.
void add_facts(const Link& l, json::object& o) {
  const Link::Facts f = l.facts();
  if (f.link.empty() && f.ports.empty()) return;
  json::object peer;
  for (const auto& [k, v] : f.link)
    peer[k] = v;
  o["peer"] = std::move(peer);
  json::array queues;
  for (std::size_t q = 0; q < f.ports.size(); ++q) {
    json::object e{{"queue", q}};
    for (const auto& [k, v] : f.ports[q])
      e[k] = v;
    queues.push_back(std::move(e));
  }
  o["queues"] = std::move(queues);
}

}  // namespace

json::object Runtime::status() const {
  const auto now = std::chrono::system_clock::now();
  json::array links;
  for (const Link* l : links_.all()) {
    json::array fds;
    for (std::size_t q = 0; q < l->port_count(); ++q)
      fds.push_back(l->port(q).fd.load());
    json::object o{{"name", l->name()},
                   {"type", l->config().type_name()},
                   {"what", l->describe()},
                   {"state", l->is_down() ? "down" : "up"},
                   {"down_count", l->down_count()},
                   {"sink", l->config().sink},
                   {"file", l->config().file()},
                   {"fds", std::move(fds)}};
    add_facts(*l, o);
    links.push_back(std::move(o));
  }
  json::array sinks;
  for (std::size_t n = 0; n < graph_->size(); ++n)
    sinks.push_back(json::object{{"name", graph_->name(n)},
                                 {"type", graph_->type(n) ? graph_->type(n)->name : "?"}});
  json::array workers;
  const auto mono = std::chrono::steady_clock::now().time_since_epoch();
  for (std::size_t w = 0; w < workers_.size(); ++w) {
    std::size_t fds = 0;
    for (const auto& d : dispatchers_)
      fds += d->worker().id == w;
    const auto age = mono - std::chrono::steady_clock::duration(heartbeat_[w].load());
    workers.push_back(json::object{
        {"worker", w},
        {"fds", fds},
        {"last_turn_ms", std::chrono::duration_cast<std::chrono::milliseconds>(age).count()},
        {"stalled", static_cast<bool>(stalled_[w])}});
  }
  return {{"version", kVersion},
          {"instance", cli_.instance},
          {"pid", ::getpid()},
          {"uptime_s", std::chrono::duration_cast<std::chrono::seconds>(now - started_at_).count()},
          {"started", iso_time(started_at_)},
          {"config", cli_.config_path},
          {"config_files", json::array(config_.files.begin(), config_.files.end())},
          {"config_loaded", iso_time(loaded_at_)},
          {"reloads", reloads_},
          {"last_reload_ok", last_reload_ok_},
          {"reloading", reloading_},
          {"links", std::move(links)},
          {"sinks", std::move(sinks)},
          {"offload", offload_status()},
          {"workers", std::move(workers)}};
}

json::object Runtime::stats() const {
  json::array links;
  for (Link* l : links_.all()) {
    l->collect_kernel_counters();
    json::object o{{"name", l->name()},
                   {"type", l->config().type_name()},
                   {"state", l->is_down() ? "down" : "up"},
                   {"down_count", l->down_count()}};
    const json::object totals = counters_json(l->totals());
    for (const auto& [k, v] : totals)
      o[k] = v;
    add_fastpath_stats(*l, o);
    json::array fds;
    for (std::size_t q = 0; q < l->port_count(); ++q) {
      json::object f{{"queue", q}};
      for (const auto& [k, v] : counters_json(l->port_totals(q)))
        f[k] = v;
      fds.push_back(std::move(f));
    }
    o["fds"] = std::move(fds);
    add_facts(*l, o);
    if (const auto events = l->events(); !events.empty()) {  // (what happened to its peer)
      json::object ev;
      for (const auto& [k, v] : events)
        ev[k] = v;
      o["events"] = std::move(ev);
    }
    if (l->has_remotes()) {  // (a tunnel: each remote endpoint's counters)
      json::array remotes;
      for (const auto& r : l->remote_stats())
        remotes.push_back(json::object{{"remote", r.remote},
                                       {"tx_packets", r.tx_packets},
                                       {"tx_bytes", r.tx_bytes},
                                       {"rx_packets", r.rx_packets},
                                       {"rx_bytes", r.rx_bytes}});
      o["remotes"] = std::move(remotes);
    }
    links.push_back(std::move(o));
  }
  json::array sinks;
  for (std::size_t n = 0; n < graph_->size(); ++n) {
    const Sink& s = graph_->sink(n);
    const auto names = s.counter_names();
    const std::vector<std::uint64_t> values = graph_->counters(n);
    json::object counters;
    json::array gauges;
    for (std::size_t i = 0; i < names.size(); ++i) {
      counters[names[i]] = values[i];
      if (s.is_gauge(i)) gauges.emplace_back(names[i]);
    }
    sinks.push_back(json::object{{"name", graph_->name(n)},
                                 {"type", graph_->type(n) ? graph_->type(n)->name : "?"},
                                 {"counters", std::move(counters)},
                                 {"gauges", std::move(gauges)}});
  }
  return {{"links", std::move(links)}, {"sinks", std::move(sinks)}};
}

json::object Runtime::info() const {
  return {{"version", kVersion},
          {"instance", cli_.instance},
          {"start_time_seconds", unix_seconds(started_at_)},
          {"workers", workers_.size()},
          {"reload_successful", last_reload_ok_},
          {"reload_timestamp_seconds", unix_seconds(loaded_at_)},
          {"reloads", reloads_}};
}

void Runtime::fdb(const std::string& bridge, bool flush, std::function<void(json::object)> reply) {
  std::vector<std::size_t> nodes;
  for (std::size_t n = 0; n < graph_->size(); ++n)
    if (graph_->sink(n).has_state() && (bridge.empty() || graph_->name(n) == bridge))
      nodes.push_back(n);
  if (nodes.empty()) {
    reply(
        error_reply(bridge.empty() ? "there is no bridge" : "no bridge named \"" + bridge + "\""));
    return;
  }
  std::shared_ptr<Graph> g = graph_;
  if (flush) {  // every worker has its own table: each forgets its learned entries
    auto flushed = std::make_shared<std::vector<std::size_t>>(nodes.size(), 0);
    for (auto& c : contexts_) {
      Worker* w = c.get();
      asio::post(w->io, [g, w, nodes, flushed] {
        for (std::size_t i = 0; i < nodes.size(); ++i) {
          const std::size_t n = g->flush_state(*w, nodes[i]);
          if (w->id == 0) (*flushed)[i] = n;
        }
      });
    }
    after_workers([g, nodes, flushed, reply] {
      json::array out;
      for (std::size_t i = 0; i < nodes.size(); ++i) {
        out.push_back(json::object{{"name", g->name(nodes[i])}, {"flushed", (*flushed)[i]}});
        log::info("fdb_flush", "bridge table flushed",
                  {{"sink", g->name(nodes[i])}, {"entries", (*flushed)[i]}});
      }
      reply(ok_reply(json::object{{"bridges", std::move(out)}}));
    });
    return;
  }
  Worker& w = *contexts_[0];
  asio::post(w.io, [this, g, &w, nodes, reply] {
    auto out = std::make_shared<json::array>();
    for (std::size_t n : nodes) {
      json::array entries;
      for (const auto& row : g->sink(n).state(w)) {
        json::object e;
        for (const log::Field& f : row)
          e[f.key] = field_json(f);
        entries.push_back(std::move(e));
      }
      out->push_back(json::object{{"name", g->name(n)}, {"entries", std::move(entries)}});
    }
    asio::post(control_, [this, out, reply] {
      add_remotes(*out);
      reply(ok_reply(json::object{{"bridges", *out}}));
    });
  });
}

void Runtime::add_remotes(json::array& bridges) const {
  // A MAC on a tunnel's port (vxlan) lives behind a remote endpoint: say which (control
  // thread: the links are stable here; a VTEP table is read lock-free).
  for (auto& b : bridges)
    for (auto& ev : b.as_object().at("entries").as_array()) {
      json::object& e = ev.as_object();
      const Link* l = links_.find(json::value_to<std::string>(e.at("port")));
      if (!l || !l->has_remotes()) continue;
      std::uint8_t mac[6];
      const std::string text = json::value_to<std::string>(e.at("mac"));
      if (std::sscanf(text.c_str(), "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2],
                      &mac[3], &mac[4], &mac[5]) != 6)
        continue;
      const std::string vtep = l->remote_of(mac);
      if (!vtep.empty()) e["remote"] = vtep;
    }
}

}  // namespace fdlinkd
