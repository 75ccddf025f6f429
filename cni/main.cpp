// fdlinkd-cni: a CNI plugin (spec 1.0.0 and 1.1.0) that gives a pod a port on an fdlinkd bridge.
//
// The runtime runs it with CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME and CNI_PATH in
// the environment and the network config on stdin. ADD makes the pod's interface (a veth, or a
// TAP that fdlinkd makes in the pod, or a vhost-user socket), writes the port's drop-in file
// into ports_dir (read through [daemon] include), reloads fdlinkd, waits until the link is up,
// and applies the addresses the IPAM plugin gave. State is only in those files: fdlinkd
// restarted comes back with its ports, and DEL removes the file. docs/kubernetes.md has more.
//
// Network config keys: bridge (required: a bridge sink in fdlinkd's main file), vlan, mtu,
// mode ("veth", "tap", "vhost-user"), control_socket, ports_dir, ipam.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "netlink.hpp"
#include "ops/control_client.hpp"

namespace json = boost::json;
namespace fs = std::filesystem;
using namespace fdlinkd;
using namespace fdlinkd::cni;

namespace {

constexpr const char* kVersions[] = {"1.0.0", "1.1.0"};

// CNI error codes (spec: 1-99 are the spec's, 100+ the plugin's).
enum Code {
  kIncompatibleVersion = 1,
  kUnsupportedField = 2,
  kContainerUnknown = 3,
  kInvalidEnv = 4,
  kIoFailure = 5,
  kDecodeFailure = 6,
  kInvalidConfig = 7,
  kTryAgainLater = 11,
  kNotAvailable = 50,
  kDaemonUnreachable = 100,  // fdlinkd's control socket does not answer
  kReloadFailed = 101,       // fdlinkd refused the port's drop-in (its message says why)
  kNetlink = 102,            // making or configuring the interface failed
  kNotUp = 103,              // the port did not come up in time
  kCheckFailed = 104,
};

struct CniError {
  int code;
  std::string msg;
  std::string details;
};

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string required_env(const char* name) {
  std::string v = env(name);
  if (v.empty()) throw CniError{kInvalidEnv, std::string(name) + " is not set", ""};
  return v;
}

struct NetConf {
  json::object raw;
  std::string version = "1.1.0";
  std::string name;
  std::string bridge;
  std::string mode = "veth";
  std::string control_socket = "/run/fdlinkd/control.sock";
  std::string ports_dir = "/run/fdlinkd/ports.d";
  std::int64_t vlan = 0;
  std::int64_t mtu = 0;
  const json::object* ipam = nullptr;
};

std::string get_string(const json::object& o, const char* key, const std::string& fallback) {
  const json::value* v = o.if_contains(key);
  if (!v) return fallback;
  if (!v->is_string())
    throw CniError{kInvalidConfig,
                   std::string("\"") + key + "\" in the network config must be a string", ""};
  return std::string(v->as_string());
}

std::int64_t get_int(const json::object& o, const char* key, std::int64_t lo, std::int64_t hi) {
  const json::value* v = o.if_contains(key);
  if (!v) return 0;
  if (!v->is_int64() && !v->is_uint64())
    throw CniError{kInvalidConfig,
                   std::string("\"") + key + "\" in the network config must be an integer", ""};
  const std::int64_t n = v->is_int64() ? v->as_int64() : static_cast<std::int64_t>(v->as_uint64());
  if (n < lo || n > hi)
    throw CniError{kInvalidConfig,
                   std::string("\"") + key + "\" in the network config must be from " +
                       std::to_string(lo) + " to " + std::to_string(hi),
                   ""};
  return n;
}

bool supported(const std::string& v) {
  for (const char* s : kVersions)
    if (v == s) return true;
  return false;
}

NetConf read_conf(const std::string& text, bool need_bridge) {
  NetConf c;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object())
    throw CniError{kDecodeFailure, "the network config on stdin is not a JSON object",
                   ec.message()};
  c.raw = v.as_object();
  c.version = get_string(c.raw, "cniVersion", "");
  if (c.version.empty())
    throw CniError{kInvalidConfig, "the network config has no \"cniVersion\"", ""};
  if (!supported(c.version))
    throw CniError{kIncompatibleVersion,
                   "fdlinkd-cni supports CNI 1.0.0 and 1.1.0, not " + c.version,
                   "set \"cniVersion\": \"1.0.0\" or \"1.1.0\" in the network config"};
  c.name = get_string(c.raw, "name", "");
  c.bridge = get_string(c.raw, "bridge", "");
  if (need_bridge && c.bridge.empty())
    throw CniError{kInvalidConfig,
                   "the network config has no \"bridge\": name a bridge sink of fdlinkd's main "
                   "file",
                   ""};
  c.mode = get_string(c.raw, "mode", "veth");
  if (c.mode != "veth" && c.mode != "tap" && c.mode != "vhost-user")
    throw CniError{kInvalidConfig,
                   "\"mode\" must be \"veth\", \"tap\" or \"vhost-user\", not \"" + c.mode + "\"",
                   ""};
  c.control_socket = get_string(c.raw, "control_socket", c.control_socket);
  c.ports_dir = get_string(c.raw, "ports_dir", c.ports_dir);
  if (c.ports_dir.empty() || c.ports_dir[0] != '/')
    throw CniError{kInvalidConfig, "\"ports_dir\" must be an absolute path", ""};
  c.vlan = get_int(c.raw, "vlan", 1, 4094);
  c.mtu = get_int(c.raw, "mtu", 68, 65535);
  if (const json::value* i = c.raw.if_contains("ipam")) {
    if (!i->is_object()) throw CniError{kInvalidConfig, "\"ipam\" must be an object", ""};
    if (!i->as_object().empty()) {
      c.ipam = &i->as_object();
      if (get_string(*c.ipam, "type", "").empty())
        throw CniError{kInvalidConfig, "\"ipam\" has no \"type\" (e.g. \"host-local\")", ""};
    }
  }
  return c;
}

// --- a port: its names and its drop-in file --------------------------------------------------

// FNV-1a: stable across builds and hosts, so a port's names follow from (container, ifname).
std::string port_id(const std::string& container, const std::string& ifname) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (char c : container + "/" + ifname) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return std::string(buf, 12);
}

struct Port {
  std::string id;  // 12 hex digits
  std::string container, ifname, netns, network, mode;
  std::string link() const { return "cni-" + id; }    // the fdlinkd link
  std::string host_if() const { return "fdl" + id; }  // the veth's host end (15 chars)
  std::string file(const NetConf& c) const { return c.ports_dir + "/" + id + ".toml"; }
  std::string socket(const NetConf& c) const {
    return fs::path(c.ports_dir).parent_path().string() + "/vhost-user/" + id + ".sock";
  }
};

Port port_of(const NetConf& c, const std::string& container, const std::string& ifname,
             const std::string& netns) {
  return Port{port_id(container, ifname), container, ifname, netns, c.name, c.mode};
}

std::string quoted(const std::string& s) {  // a TOML basic string
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c == 0x7f) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      out += b;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

// The first line of a drop-in: who it is for, as JSON (for DEL, GC and fdlinkctl's reader).
constexpr std::string_view kMarker = "# fdlinkd-cni ";

std::string dropin_text(const NetConf& c, const Port& p) {
  json::object meta{{"containerID", p.container},
                    {"ifname", p.ifname},
                    {"netns", p.netns},
                    {"network", p.network},
                    {"mode", p.mode}};
  std::string t = std::string(kMarker) + json::serialize(meta) + "\n";
  t += "# written by fdlinkd-cni; DEL removes it\n[[link]]\n";
  t += "name = " + quoted(p.link()) + "\n";
  if (p.mode == "veth") {
    t += "type = \"af_packet\"\ninterface = " + quoted(p.host_if()) + "\n";
  } else if (p.mode == "tap") {
    t += "type = \"tap\"\ninterface = " + quoted(p.ifname) + "\nnetns = " + quoted(p.netns) +
         "\npersist = true\n";
  } else {
    t += "type = \"vhost_user\"\npath = " + quoted(p.socket(c)) + "\n";
  }
  t += "sink = " + quoted(c.bridge) + "\n";
  if (c.mtu) t += "mtu = " + std::to_string(c.mtu) + "\n";
  if (c.vlan) t += "vlans = { access = " + std::to_string(c.vlan) + " }\n";
  return t;
}

std::optional<json::object> read_marker(const std::string& file) {
  std::ifstream in(file);
  std::string line;
  if (!in || !std::getline(in, line) || line.rfind(kMarker, 0) != 0) return std::nullopt;
  boost::system::error_code ec;
  json::value v = json::parse(line.substr(kMarker.size()), ec);
  if (ec || !v.is_object()) return std::nullopt;
  return v.as_object();
}

void write_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";  // (not *.toml: fdlinkd never reads it half-written)
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw CniError{kIoFailure, "cannot write " + tmp + ": " + std::strerror(errno), ""};
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw CniError{kIoFailure, "cannot rename " + tmp + ": " + std::strerror(errno), ""};
}

// Held while a command changes ports: two ADDs at once each get their reload in turn.
class PortsLock {
 public:
  explicit PortsLock(const std::string& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    fd_ = ::open((dir + "/.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0)
      throw CniError{kIoFailure, "cannot open " + dir + "/.lock: " + std::strerror(errno),
                     "is ports_dir writable? fdlinkd-cni runs as root"};
    while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
  }
  ~PortsLock() { ::close(fd_); }

 private:
  int fd_ = -1;
};

// --- fdlinkd ---------------------------------------------------------------------------------

json::object ask(const NetConf& c, const std::string& command, int timeout_ms = 30000) {
  try {
    return ask_daemon(c.control_socket, {{"command", command}}, timeout_ms);
  } catch (const ControlClientError& e) {
    throw CniError{
        kDaemonUnreachable, e.message,
        "fdlinkd must run on this node with [daemon] include naming " + c.ports_dir + "/*.toml"};
  }
}

void reload(const NetConf& c) {
  json::object r = ask(c, "reload");
  if (r.if_contains("ok") && r.at("ok").is_bool() && r.at("ok").as_bool()) return;
  std::string details;
  if (const json::value* errs = r.if_contains("errors"); errs && errs->is_array())
    for (const auto& e : errs->as_array())
      details += (details.empty() ? "" : "; ") + json::value_to<std::string>(e);
  const json::value* msg = r.if_contains("error");
  throw CniError{kReloadFailed,
                 "fdlinkd did not take the port: " +
                     (msg && msg->is_string() ? std::string(msg->as_string()) : "reload failed"),
                 details};
}

// The link's entry in fdlinkd's status, or nullptr.
const json::object* find_status_link(const json::object& status, const std::string& name) {
  const json::value* res = status.if_contains("result");
  if (!res || !res->is_object()) return nullptr;
  const json::value* links = res->as_object().if_contains("links");
  if (!links || !links->is_array()) return nullptr;
  for (const auto& l : links->as_array())
    if (l.is_object() && l.as_object().if_contains("name") &&
        l.as_object().at("name") == json::value(name))
      return &l.as_object();
  return nullptr;
}

void wait_up(const NetConf& c, const Port& p) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::string state = "missing";
  while (std::chrono::steady_clock::now() < deadline) {
    const json::object s = ask(c, "status", 5000);
    if (const json::object* l = find_status_link(s, p.link())) {
      state = std::string(l->at("state").as_string());
      if (state == "up") return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw CniError{kNotUp, "fdlinkd's link " + p.link() + " is " + state + " after 10 s",
                 "see `fdlinkctl status` and fdlinkd's log"};
}

// --- IPAM --------------------------------------------------------------------------------------

// Runs the IPAM plugin with `command`, the same environment otherwise, and `conf` on stdin.
// `attachment`: another container's (containerID, ifname) than the environment's (GC).
json::object run_ipam(const NetConf& c, const std::string& command, const json::object& conf,
                      const std::pair<std::string, std::string>* attachment = nullptr) {
  const std::string type = get_string(*c.ipam, "type", "");
  if (type.find('/') != std::string::npos)
    throw CniError{kInvalidConfig, "ipam \"type\" must be a plugin name, not a path", ""};
  std::string exe;
  const std::string paths = env("CNI_PATH");
  for (std::size_t b = 0; b <= paths.size();) {
    const std::size_t e = std::min(paths.find(':', b), paths.size());
    const std::string cand = paths.substr(b, e - b) + "/" + type;
    if (e > b && ::access(cand.c_str(), X_OK) == 0) {
      exe = cand;
      break;
    }
    b = e + 1;
  }
  if (exe.empty())
    throw CniError{kInvalidConfig,
                   "IPAM plugin \"" + type + "\" is not in CNI_PATH (" + paths + ")",
                   "Debian: apt-get install containernetworking-plugins (/usr/lib/cni)"};
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0)
    throw CniError{kIoFailure, std::string("pipe: ") + std::strerror(errno), ""};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::setenv("CNI_COMMAND", command.c_str(), 1);
    if (attachment) {
      ::setenv("CNI_CONTAINERID", attachment->first.c_str(), 1);
      ::setenv("CNI_IFNAME", attachment->second.c_str(), 1);
    }
    ::execl(exe.c_str(), exe.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  std::string text = json::serialize(conf);
  if (command == "VERSION") text = R"({"cniVersion":"1.0.0"})";
  for (std::size_t off = 0; off < text.size();) {
    const ssize_t n = ::write(in[1], text.data() + off, text.size() - off);
    if (n <= 0 && errno != EINTR) break;
    if (n > 0) off += static_cast<std::size_t>(n);
  }
  ::close(in[1]);
  std::string reply;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    reply.append(buf, static_cast<std::size_t>(n));
  }
  ::close(out[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  boost::system::error_code ec;
  json::value v = reply.empty() ? json::value(json::object{}) : json::parse(reply, ec);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    if (!ec && v.is_object() && v.as_object().if_contains("msg")) {
      const auto& o = v.as_object();
      const std::int64_t code =
          o.if_contains("code") && o.at("code").is_int64() ? o.at("code").as_int64() : 999;
      throw CniError{static_cast<int>(code),
                     "IPAM " + type + ": " + std::string(o.at("msg").as_string()),
                     o.if_contains("details") && o.at("details").is_string()
                         ? std::string(o.at("details").as_string())
                         : ""};
    }
    throw CniError{kIoFailure, "IPAM " + type + " " + command + " failed", reply};
  }
  if (ec || !v.is_object())
    throw CniError{kDecodeFailure, "IPAM " + type + " printed no JSON", reply};
  return v.as_object();
}

// What the IPAM plugin is asked: the same config, at the newest version it speaks. Debian 12's
// plugins (containernetworking-plugins 1.1.1) speak up to 1.0.0, whose ADD, DEL and CHECK are
// 1.1.0's; STATUS and GC (new in 1.1.0) go only to a plugin that lists 1.1.0.
bool ipam_speaks_11(const NetConf& c) {
  const json::object v = run_ipam(c, "VERSION", {});
  if (const json::value* l = v.if_contains("supportedVersions"); l && l->is_array())
    for (const auto& x : l->as_array())
      if (x == json::value("1.1.0")) return true;
  return false;
}

json::object ipam(const NetConf& c, const std::string& command,
                  const std::pair<std::string, std::string>* attachment = nullptr) {
  json::object conf = c.raw;
  if (command == "STATUS" || command == "GC") {
    if (!ipam_speaks_11(c)) return {};
  } else if (c.version == "1.1.0" && !ipam_speaks_11(c)) {
    conf["cniVersion"] = "1.0.0";
  }
  conf.erase("cni.dev/valid-attachments");
  json::object r = run_ipam(c, command, conf, attachment);
  if (r.if_contains("cniVersion")) r["cniVersion"] = c.version;
  return r;
}

// --- commands ------------------------------------------------------------------------------------

void print(const json::value& v) {
  std::cout << json::serialize(v) << std::endl;
}

struct Env {
  std::string container, netns, ifname;
};

Env read_env(bool need_netns) {
  Env e;
  e.container = required_env("CNI_CONTAINERID");
  e.ifname = required_env("CNI_IFNAME");
  e.netns = need_netns ? required_env("CNI_NETNS") : env("CNI_NETNS");
  if (e.ifname.size() > 15 || e.ifname.find_first_of("/ \t\n:") != std::string::npos)
    throw CniError{kInvalidEnv, "CNI_IFNAME \"" + e.ifname + "\" is not a valid interface name",
                   ""};
  return e;
}

// Puts the IPAM result's addresses and routes on `ifname` (in the pod's namespace).
void apply_ips(const std::string& ifname, const json::object& result) {
  set_up(ifname);
  if (const json::value* ips = result.if_contains("ips"); ips && ips->is_array())
    for (const auto& ip : ips->as_array())
      add_address(ifname, std::string(ip.at("address").as_string()));
  if (const json::value* routes = result.if_contains("routes"); routes && routes->is_array())
    for (const auto& r : routes->as_array()) {
      const auto& o = r.as_object();
      std::string gw = o.if_contains("gw") ? std::string(o.at("gw").as_string()) : "";
      add_route(ifname, std::string(o.at("dst").as_string()), gw);
    }
}

// Undoes what exists of a port: its file, its interface. Nothing there is no error.
void remove_port(const NetConf& c, const Port& p, bool do_reload) {
  std::error_code ec;
  const bool had_file = fs::remove(p.file(c), ec);
  if (do_reload && had_file) {
    try {
      reload(c);
    } catch (const CniError& e) {
      if (e.code != kDaemonUnreachable) throw;  // (a stopped fdlinkd will not read the file)
    }
  }
  if (p.mode == "veth" || p.mode.empty()) delete_link(p.host_if());  // (its pod end goes too)
  if (p.mode == "tap" && !p.netns.empty() && fs::exists(p.netns)) {
    InNetns in(p.netns);
    delete_link(p.ifname);  // (persistent: it outlives fdlinkd's fd)
  }
  if (p.mode == "vhost-user") fs::remove(p.socket(c), ec);
}

void cmd_add(const NetConf& c) {
  const Env e = read_env(c.mode != "vhost-user");
  Port p = port_of(c, e.container, e.ifname, e.netns);
  PortsLock lock(c.ports_dir);
  if (fs::exists(p.file(c)))
    throw CniError{kTryAgainLater,
                   "container " + e.container + " already has interface " + e.ifname + " here",
                   "DEL it first (" + p.file(c) + ")"};
  json::object ipam_result;
  if (c.ipam) ipam_result = ipam(c, "ADD");
  json::array interfaces;
  std::size_t pod_if = 0;
  try {
    if (c.mode == "veth") {
      const int nsfd = open_netns(e.netns);
      try {
        add_veth(p.host_if(), e.ifname, nsfd, static_cast<unsigned>(c.mtu));
      } catch (...) {
        ::close(nsfd);
        throw;
      }
      ::close(nsfd);
      set_up(p.host_if());
      {
        InNetns in(e.netns);
        apply_ips(e.ifname, ipam_result);
      }
    }
    if (c.mode == "vhost-user") {
      std::error_code ec;
      fs::create_directories(fs::path(p.socket(c)).parent_path(), ec);
    }
    write_file(p.file(c), dropin_text(c, p));
    reload(c);
    wait_up(c, p);
    if (c.mode == "tap") {
      InNetns in(e.netns);
      apply_ips(e.ifname, ipam_result);
    }
    if (c.mode == "veth") {
      const auto host = find_link(p.host_if());
      interfaces.push_back(json::object{{"name", p.host_if()}, {"mac", host ? host->mac : ""}});
      pod_if = 1;
    }
    if (c.mode == "vhost-user") {
      interfaces.push_back(json::object{{"name", e.ifname}, {"socketPath", p.socket(c)}});
    } else {
      InNetns in(e.netns);
      const auto pod = find_link(e.ifname);
      if (!pod) throw CniError{kNetlink, e.ifname + " is not in " + e.netns, ""};
      interfaces.push_back(
          json::object{{"name", e.ifname}, {"mac", pod->mac}, {"sandbox", e.netns}});
    }
  } catch (const NetlinkError& err) {
    remove_port(c, p, true);
    if (c.ipam) ipam(c, "DEL");
    throw CniError{kNetlink, err.what(), ""};
  } catch (...) {
    try {
      remove_port(c, p, true);
      if (c.ipam) ipam(c, "DEL");
    } catch (...) {
    }
    throw;
  }
  json::object result{{"cniVersion", c.version}, {"interfaces", std::move(interfaces)}};
  json::array ips;
  if (const json::value* v = ipam_result.if_contains("ips"); v && v->is_array())
    for (const auto& ip : v->as_array()) {
      json::object o = ip.as_object();
      o["interface"] = pod_if;
      ips.push_back(std::move(o));
    }
  result["ips"] = std::move(ips);
  if (const json::value* v = ipam_result.if_contains("routes")) result["routes"] = *v;
  result["dns"] = ipam_result.if_contains("dns") ? ipam_result.at("dns") : json::object{};
  print(result);
}

void cmd_del(const NetConf& c) {
  const Env e = read_env(false);
  Port p = port_of(c, e.container, e.ifname, e.netns);
  PortsLock lock(c.ports_dir);
  if (auto meta = read_marker(p.file(c))) {  // (what ADD made, whatever the config says now)
    p.mode = std::string(meta->at("mode").as_string());
    if (p.netns.empty()) p.netns = std::string(meta->at("netns").as_string());
  }
  if (c.ipam) ipam(c, "DEL");
  try {
    remove_port(c, p, true);
  } catch (const NetlinkError& err) {
    throw CniError{kNetlink, err.what(), ""};
  }
}

void cmd_check(const NetConf& c) {
  const Env e = read_env(c.mode != "vhost-user");
  const Port p = port_of(c, e.container, e.ifname, e.netns);
  const json::value* prev = c.raw.if_contains("prevResult");
  if (!prev || !prev->is_object())
    throw CniError{kInvalidConfig, "CHECK needs \"prevResult\" in the network config", ""};
  if (!fs::exists(p.file(c)))
    throw CniError{kCheckFailed, "no port for container " + e.container + " " + e.ifname,
                   p.file(c) + " is missing"};
  const json::object s = ask(c, "status", 5000);
  const json::object* l = find_status_link(s, p.link());
  if (!l || l->at("state") != json::value("up"))
    throw CniError{kCheckFailed, "fdlinkd's link " + p.link() + " is " + (l ? "down" : "missing"),
                   "see `fdlinkctl status`"};
  if (c.mode != "vhost-user") {
    InNetns in(e.netns);
    if (!find_link(e.ifname)) throw CniError{kCheckFailed, e.ifname + " is not in " + e.netns, ""};
    if (const json::value* ips = prev->as_object().if_contains("ips"); ips && ips->is_array())
      for (const auto& ip : ips->as_array()) {
        const std::string a(ip.at("address").as_string());
        if (!has_address(e.ifname, a))
          throw CniError{kCheckFailed, e.ifname + " in " + e.netns + " has lost " + a, ""};
      }
  }
  if (c.ipam) ipam(c, "CHECK");
}

void cmd_status(const NetConf& c) {
  const json::object s = ask(c, "status", 5000);
  const json::value* res = s.if_contains("result");
  bool found = false;
  if (res && res->is_object())
    for (const auto& sink : res->as_object().at("sinks").as_array())
      found |= sink.at("name") == json::value(c.bridge) && sink.at("type") == json::value("bridge");
  if (!found)
    throw CniError{kNotAvailable, "fdlinkd has no bridge sink \"" + c.bridge + "\"",
                   "declare it in fdlinkd's main file"};
  if (c.ipam) ipam(c, "STATUS");
}

void cmd_gc(const NetConf& c) {
  std::vector<std::pair<std::string, std::string>> valid;
  if (const json::value* v = c.raw.if_contains("cni.dev/valid-attachments"); v && v->is_array())
    for (const auto& a : v->as_array())
      valid.emplace_back(std::string(a.at("containerID").as_string()),
                         std::string(a.at("ifname").as_string()));
  PortsLock lock(c.ports_dir);
  bool removed = false;
  std::error_code ec;
  for (const auto& f : fs::directory_iterator(c.ports_dir, ec)) {
    if (f.path().extension() != ".toml") continue;
    const auto meta = read_marker(f.path());
    if (!meta || meta->at("network") != json::value(c.name)) continue;
    Port p{f.path().stem().string(),
           std::string(meta->at("containerID").as_string()),
           std::string(meta->at("ifname").as_string()),
           std::string(meta->at("netns").as_string()),
           c.name,
           std::string(meta->at("mode").as_string())};
    bool keep = false;
    for (const auto& [id, ifn] : valid)
      keep |= id == p.container && ifn == p.ifname;
    if (keep) continue;
    remove_port(c, p, false);
    removed = true;
    // (an IPAM plugin without GC of its own, as Debian 12's host-local, gets a DEL per
    // attachment it still holds)
    const std::pair<std::string, std::string> gone{p.container, p.ifname};
    if (c.ipam && !ipam_speaks_11(c)) ipam(c, "DEL", &gone);
  }
  if (removed) {
    try {
      reload(c);
    } catch (const CniError& e) {
      if (e.code != kDaemonUnreachable) throw;
    }
  }
  if (c.ipam) ipam(c, "GC");
}

}  // namespace

int main() {
  std::string version = "1.1.0";
  try {
    const std::string command = required_env("CNI_COMMAND");
    const std::string text(std::istreambuf_iterator<char>(std::cin), {});
    if (command == "VERSION") {
      json::array list;
      for (const char* v : kVersions)
        list.emplace_back(v);
      print(json::object{{"cniVersion", "1.1.0"}, {"supportedVersions", std::move(list)}});
      return 0;
    }
    const NetConf c = read_conf(text, command != "GC");
    version = c.version;
    if (command == "ADD")
      cmd_add(c);
    else if (command == "DEL")
      cmd_del(c);
    else if (command == "CHECK")
      cmd_check(c);
    else if (command == "STATUS")
      cmd_status(c);
    else if (command == "GC")
      cmd_gc(c);
    else
      throw CniError{kInvalidEnv, "unknown CNI_COMMAND \"" + command + "\"",
                     "one of ADD, DEL, CHECK, STATUS, GC, VERSION"};
    return 0;
  } catch (const CniError& e) {
    json::object o{{"cniVersion", version}, {"code", e.code}, {"msg", e.msg}};
    if (!e.details.empty()) o["details"] = e.details;
    print(o);
    return 1;
  } catch (const std::exception& e) {
    print(json::object{{"cniVersion", version}, {"code", 999}, {"msg", e.what()}});
    return 1;
  }
}
