// fdlinkctl: asks a running fdlinkd through its control socket.
//
// One JSON request per line, one JSON reply per line (docs/control.md). Tables for people,
// --json for scripts (the reply's "result" as it came).
// Exit status: 0 done, 1 the daemon answered with an error, 2 bad usage, 3 no daemon reachable.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/version.hpp"
#include "ops/control_client.hpp"
#include "ops/instance.hpp"

namespace json = boost::json;

namespace {

constexpr int kOk = 0, kErrorReply = 1, kUsage = 2, kUnreachable = 3;

struct Failure {
  int status;
  std::string message;
};

// Sends one request and waits (at most `timeout_s`) for its reply line.
json::object ask(const std::string& path, const json::object& request, int timeout_s) {
  try {
    return fdlinkd::ask_daemon(path, request, timeout_s * 1000);
  } catch (const fdlinkd::ControlClientError& e) {
    const bool timed_out = e.message.rfind("no reply", 0) == 0;  // (say which option waits)
    throw Failure{e.usage ? kUsage : kUnreachable, e.message + (timed_out ? " (--timeout)" : "")};
  }
}

std::uint64_t num(const json::value& v) {
  if (v.is_uint64()) return v.as_uint64();
  if (v.is_int64()) return static_cast<std::uint64_t>(v.as_int64());
  if (v.is_double()) return static_cast<std::uint64_t>(v.as_double());
  return 0;
}

std::string str(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_bool()) return v.as_bool() ? "yes" : "no";
  if (v.is_null()) return "-";
  if (v.is_int64()) return std::to_string(v.as_int64());
  if (v.is_uint64()) return std::to_string(v.as_uint64());
  return json::serialize(v);
}

// Columns padded to their widest cell.
void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  for (const auto& r : rows) {
    std::string line;
    for (std::size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

std::string duration(std::uint64_t s) {
  char buf[64];
  if (s >= 86400)
    std::snprintf(buf, sizeof buf, "%llud %lluh %llum", static_cast<unsigned long long>(s / 86400),
                  static_cast<unsigned long long>(s % 86400 / 3600),
                  static_cast<unsigned long long>(s % 3600 / 60));
  else if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lluh %llum %llus", static_cast<unsigned long long>(s / 3600),
                  static_cast<unsigned long long>(s % 3600 / 60),
                  static_cast<unsigned long long>(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%llum %llus", static_cast<unsigned long long>(s / 60),
                  static_cast<unsigned long long>(s % 60));
  return buf;
}

void show_status(const json::object& r) {
  const json::value* inst = r.if_contains("instance");
  const std::string name = inst && inst->is_string() && !inst->as_string().empty()
                               ? " (instance " + str(*inst) + ")"
                               : "";
  std::printf("fdlinkd %s%s, pid %s, up %s\n", str(r.at("version")).c_str(), name.c_str(),
              str(r.at("pid")).c_str(), duration(num(r.at("uptime_s"))).c_str());
  std::printf("config %s, loaded %s (reloads: %s, last %s)\n", str(r.at("config")).c_str(),
              str(r.at("config_loaded")).c_str(), str(r.at("reloads")).c_str(),
              r.at("last_reload_ok").as_bool() ? "ok" : "FAILED");
  std::printf("\n");
  // FILE: where each link is written (the main file, or a drop-in it includes).
  std::vector<std::vector<std::string>> rows{
      {"LINK", "TYPE", "STATE", "FDS", "SINK", "FILE", "WHAT"}};
  for (const auto& lv : r.at("links").as_array()) {
    const auto& l = lv.as_object();
    std::string fds;
    for (const auto& f : l.at("fds").as_array())
      fds += (fds.empty() ? "" : ",") + str(f);
    const json::value* file = l.if_contains("file");
    rows.push_back({str(l.at("name")), str(l.at("type")), str(l.at("state")), fds,
                    str(l.at("sink")), file ? str(*file) : "-", str(l.at("what"))});
  }
  print_table(rows);
  std::printf("\n");
  rows = {{"SINK", "TYPE"}};
  for (const auto& sv : r.at("sinks").as_array())
    rows.push_back({str(sv.at("name")), str(sv.at("type"))});
  print_table(rows);
  std::printf("\n");
  // XDP offload: the inputs of sinks with offload = "xdp", and why those that are not
  // offloaded are not.
  const json::value* offload = r.if_contains("offload");
  if (offload && offload->is_array() && !offload->as_array().empty()) {
    rows = {{"OFFLOAD", "SINK", "XDP", "WHY NOT"}};
    for (const auto& ov : offload->as_array()) {
      const auto& o = ov.as_object();
      const bool on = o.at("offloaded").as_bool();
      rows.push_back({str(o.at("link")), str(o.at("sink")), on ? str(o.at("xdp_mode")) : "no",
                      on ? "-" : str(o.at("why_not"))});
    }
    print_table(rows);
    std::printf("\n");
  }
  rows = {{"WORKER", "FDS", "LAST_TURN_MS", "STALLED"}};
  for (const auto& wv : r.at("workers").as_array())
    rows.push_back({str(wv.at("worker")), str(wv.at("fds")), str(wv.at("last_turn_ms")),
                    str(wv.at("stalled"))});
  print_table(rows);
}

void show_stats(const json::object& r) {
  std::vector<std::vector<std::string>> rows{
      {"LINK", "FD", "STATE", "RX_PACKETS", "RX_BYTES", "TX_PACKETS", "TX_BYTES", "DROPS"}};
  std::vector<std::string> drop_lines;
  for (const auto& lv : r.at("links").as_array()) {
    const auto& l = lv.as_object();
    rows.push_back({str(l.at("name")), "all", str(l.at("state")), str(l.at("rx_packets")),
                    str(l.at("rx_bytes")), str(l.at("tx_packets")), str(l.at("tx_bytes")),
                    str(l.at("drops_total"))});
    const auto& fds = l.at("fds").as_array();
    if (fds.size() > 1)
      for (const auto& fv : fds)
        rows.push_back({"", str(fv.at("queue")), "", str(fv.at("rx_packets")),
                        str(fv.at("rx_bytes")), str(fv.at("tx_packets")), str(fv.at("tx_bytes")),
                        str(fv.at("drops_total"))});
    std::string reasons;
    for (const auto& [k, v] : l.at("drops").as_object())
      if (num(v)) reasons += (reasons.empty() ? "" : ", ") + std::string(k) + " " + str(v);
    if (!reasons.empty()) drop_lines.push_back(str(l.at("name")) + ": " + reasons);
  }
  print_table(rows);
  // Frames the XDP fast path sent on: fdlinkd never read them (they are not in RX/TX above).
  std::vector<std::vector<std::string>> xdp{{"LINK", "XDP_RX_PACKETS", "XDP_RX_BYTES",
                                             "XDP_TX_PACKETS", "XDP_TX_BYTES", "TO_SLOW_PATH",
                                             "XDP_DROPPED", "XDP_TX_FAILED"}};
  for (const auto& lv : r.at("links").as_array()) {
    const auto& l = lv.as_object();
    if (l.contains("xdp_rx_packets") &&
        num(l.at("xdp_rx_packets")) + num(l.at("xdp_tx_packets")) + num(l.at("xdp_to_slow_path")))
      xdp.push_back({str(l.at("name")), str(l.at("xdp_rx_packets")), str(l.at("xdp_rx_bytes")),
                     str(l.at("xdp_tx_packets")), str(l.at("xdp_tx_bytes")),
                     str(l.at("xdp_to_slow_path")), str(l.at("xdp_dropped")),
                     l.contains("xdp_tx_failed") ? str(l.at("xdp_tx_failed")) : "-"});
  }
  if (xdp.size() > 1) {
    std::printf("\noffloaded (XDP, in the kernel):\n");
    print_table(xdp);
  }
  if (!drop_lines.empty()) {
    std::printf("\ndrops by reason:\n");
    for (const auto& d : drop_lines)
      std::printf("  %s\n", d.c_str());
  }
}

void show_sinks(const json::object& r) {
  for (const auto& sv : r.at("sinks").as_array()) {
    const auto& s = sv.as_object();
    std::printf("%s (%s)\n", str(s.at("name")).c_str(), str(s.at("type")).c_str());
    for (const auto& [k, v] : s.at("counters").as_object())
      std::printf("  %-16s %s\n", std::string(k).c_str(), str(v).c_str());
  }
}

void show_fdb(const json::object& r) {
  for (const auto& bv : r.at("bridges").as_array()) {
    const auto& b = bv.as_object();
    if (b.contains("flushed")) {
      std::printf("%s: %s learned entries flushed\n", str(b.at("name")).c_str(),
                  str(b.at("flushed")).c_str());
      continue;
    }
    std::printf("%s:\n", str(b.at("name")).c_str());
    std::vector<std::vector<std::string>> rows{
        {"  MAC", "VLAN", "PORT", "AGE_S", "STATIC", "REMOTE"}};
    for (const auto& ev : b.at("entries").as_array()) {
      const auto& e = ev.as_object();
      // REMOTE: the VTEP behind which a MAC on a vxlan port lives.
      rows.push_back({"  " + str(e.at("mac")), str(e.at("vlan")), str(e.at("port")),
                      str(e.at("age_s")), str(e.at("static")),
                      e.contains("remote") ? str(e.at("remote")) : "-"});
    }
    print_table(rows);
  }
}

void show_reload(const json::object& r) {
  const auto list = [&](const char* k) {
    std::string s;
    for (const auto& v : r.at(k).as_array())
      s += (s.empty() ? "" : ", ") + str(v);
    return s.empty() ? std::string("-") : s;
  };
  std::printf(
      "reloaded: links kept: %s; reopened: %s; added: %s; removed: %s; sinks kept %s, "
      "built %s\n",
      list("links_kept").c_str(), list("links_reopened").c_str(), list("links_added").c_str(),
      list("links_removed").c_str(), str(r.at("sinks_kept")).c_str(),
      str(r.at("sinks_built")).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fdlinkctl: ask a running fdlinkd (status, counters, bridge tables, reload)"};
  app.require_subcommand(1);
  app.fallthrough();  // -j, -s, -t after the command too: fdlinkctl stats --json
  // As fdlinkd: $RUNTIME_DIRECTORY/control.sock when set, else /run/fdlinkd/control.sock.
  std::string socket_path = "/run/fdlinkd/control.sock";
  if (const char* dir = std::getenv("RUNTIME_DIRECTORY"); dir && *dir == '/')
    socket_path = std::string(dir).substr(0, std::string(dir).find(':')) + "/control.sock";
  bool as_json = false;
  int timeout_s = 60;
  std::string instance;
  auto* socket_opt = app.add_option("-s,--socket", socket_path, "the daemon's control socket")
                         ->capture_default_str();
  app.add_option("-i,--instance", instance,
                 "ask instance NAME (fdlinkd@NAME.service), at /run/fdlinkd-NAME/control.sock")
      ->excludes(socket_opt)
      ->check([](const std::string& v) {
        return fdlinkd::valid_instance_name(v)
                   ? std::string()
                   : "an instance name is 1-64 letters, digits, '-', '_' or '.'";
      });
  app.add_flag("-j,--json", as_json, "print the reply as JSON");
  app.add_option("-t,--timeout", timeout_s, "seconds to wait for a reply")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  app.set_version_flag("--version", std::string("fdlinkctl ") + fdlinkd::kVersion);
  app.footer(R"(
Exit status:
  0  done
  1  fdlinkd answered with an error (a rejected reload: its errors are printed)
  2  bad usage
  3  fdlinkd could not be reached (not running, no permission, no reply)
)");

  std::vector<std::string> links, rest;
  std::string bridge, level;
  auto* status = app.add_subcommand("status", "version, uptime, config, links, sinks, workers");
  auto* stats = app.add_subcommand("stats", "counters per link and per fd, drops by reason");
  stats->add_option("links", links, "only these links");
  auto* sinks = app.add_subcommand("sinks", "each sink with its own counters");
  auto* fdb =
      app.add_subcommand("fdb", "the bridges' MAC tables; `fdb flush` forgets learned MACs");
  fdb->add_option("args", rest, "[BRIDGE] or flush [BRIDGE]");
  auto* reload = app.add_subcommand(
      "reload", "read the config again and apply it; waits for the outcome (exit 1 if rejected)");
  auto* loglevel = app.add_subcommand("log-level", "set the daemon's log level at run time");
  loglevel->add_option("level", level, "trace|debug|info|warn|error")
      ->required()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  auto* version = app.add_subcommand("version", "the running daemon's version");
  auto* list = app.add_subcommand("list-commands", "the commands the daemon knows");
  auto* raw = app.add_subcommand("call", "send any command: call COMMAND [ARG...] (prints JSON)");
  std::vector<std::string> raw_args;
  raw->add_option("command", raw_args, "command and arguments")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kOk : kUsage;
  }
  if (!instance.empty()) socket_path = fdlinkd::instance_runtime_dir(instance) + "/control.sock";

  json::object req;
  json::array args;
  if (status->parsed()) req["command"] = "status";
  if (stats->parsed()) {
    req["command"] = "stats";
    for (const auto& l : links)
      args.emplace_back(l);
  }
  if (sinks->parsed()) req["command"] = "sinks";
  if (fdb->parsed()) {
    const bool flush = !rest.empty() && rest[0] == "flush";
    req["command"] = flush ? "fdb-flush" : "fdb";
    if (rest.size() > (flush ? 2u : 1u)) {
      std::fprintf(stderr, "fdlinkctl: fdb takes [BRIDGE] or flush [BRIDGE]\n");
      return kUsage;
    }
    if (rest.size() == (flush ? 2u : 1u)) args.emplace_back(rest.back());
  }
  if (reload->parsed()) req["command"] = "reload";
  if (loglevel->parsed()) {
    req["command"] = "log-level";
    args.emplace_back(level);
  }
  if (version->parsed()) req["command"] = "version";
  if (list->parsed()) req["command"] = "list-commands";
  if (raw->parsed()) {
    req["command"] = raw_args[0];
    for (std::size_t i = 1; i < raw_args.size(); ++i)
      args.emplace_back(raw_args[i]);
    as_json = true;
  }
  if (!args.empty()) req["args"] = std::move(args);

  json::object reply;
  try {
    reply = ask(socket_path, req, timeout_s);
  } catch (const Failure& f) {
    std::fprintf(stderr, "fdlinkctl: %s\n", f.message.c_str());
    return f.status;
  }
  const json::value* ok = reply.if_contains("ok");
  if (!ok || !ok->is_bool() || !ok->as_bool()) {
    if (as_json) {
      std::printf("%s\n", json::serialize(reply).c_str());
      return kErrorReply;
    }
    const json::value* err = reply.if_contains("error");
    std::fprintf(stderr, "fdlinkctl: %s\n", err ? str(*err).c_str() : "error");
    if (const json::value* errs = reply.if_contains("errors"))
      for (const auto& e : errs->as_array())
        std::fprintf(stderr, "%s\n", str(e).c_str());
    return kErrorReply;
  }
  const json::value& result = reply.at("result");
  if (as_json) {
    std::printf("%s\n", json::serialize(result).c_str());
    return kOk;
  }
  const std::string cmd(req.at("command").as_string());
  if (cmd == "status")
    show_status(result.as_object());
  else if (cmd == "stats")
    show_stats(result.as_object());
  else if (cmd == "sinks")
    show_sinks(result.as_object());
  else if (cmd == "fdb" || cmd == "fdb-flush")
    show_fdb(result.as_object());
  else if (cmd == "reload")
    show_reload(result.as_object());
  else if (cmd == "version")
    std::printf("fdlinkd %s (fdlinkctl %s)\n", str(result.at("version")).c_str(),
                fdlinkd::kVersion);
  else if (cmd == "log-level")
    std::printf("log level: %s\n", str(result.at("level")).c_str());
  else if (cmd == "list-commands")
    for (const auto& c : result.as_array())
      std::printf("%-14s %-10s %s\n", str(c.at("command")).c_str(), str(c.at("args")).c_str(),
                  str(c.at("help")).c_str());
  return kOk;
}
