#include "config/config.hpp"

#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "config/graph_check.hpp"
#include "config/limits.hpp"

namespace fdlinkd {

std::string_view dispatch_mode_name(DispatchMode m) {
  constexpr std::string_view kNames[] = {"readv", "recvmmsg", "packet_mmap"};
  return kNames[static_cast<std::size_t>(m)];
}

const LinkKind* ConfigKinds::link(std::string_view name) const {
  for (const LinkKind* k : links)
    if (k->name == name) return k;
  return nullptr;
}

const SinkKind* ConfigKinds::sink(std::string_view name) const {
  for (const SinkKind* k : sinks)
    if (k->name == name) return k;
  return nullptr;
}

std::size_t Config::max_wire_capacity() const {
  std::size_t n = 0;
  for (const auto& l : links)
    n = std::max(n, l.wire_capacity());
  return n;
}

std::size_t Config::max_rx_capacity() const {
  std::size_t n = 0;
  for (const auto& l : links)
    n = std::max(n, l.rx_capacity());
  return n;
}

// (An empty name is a missing one, already reported: it names nothing.)
const LinkConfig* Config::find_link(std::string_view name) const {
  if (name.empty()) return nullptr;
  for (const auto& l : links)
    if (l.name == name) return &l;
  return nullptr;
}

const SinkConfig* Config::find_sink(std::string_view name) const {
  if (name.empty()) return nullptr;
  for (const auto& s : sinks)
    if (s.name == name) return &s;
  return nullptr;
}

namespace {

constexpr std::size_t kMaxNameLength = 64;

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > kMaxNameLength) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      return false;
  return true;
}

// Where `key` itself is written in `t` (the table when it is absent).
toml::source_region key_where(const toml::table& t, std::string_view key) {
  for (const auto& [k, v] : t)
    if (k.str() == key) return k.source();
  return t.source();
}

// Reads `name` and checks its form; returns the label to use in later messages.
std::string read_name(const toml::table& t, std::string_view kind, std::size_t index,
                      ConfigErrors& errors, std::string& out) {
  const std::string label = "[[" + std::string(kind) + "]] #" + std::to_string(index + 1);
  TableReader r(t, label, errors);
  auto n = r.string("name", true);
  if (!n) return label;
  if (!valid_name(*n)) {
    errors.add(r.where("name"), std::string(kind) + " name \"" + shown(*n) +
                                    "\" must be 1-64 characters of letters, digits, '-', '_' "
                                    "or '.'");
    return label;
  }
  out = *n;
  return std::string(kind) + " \"" + *n + "\"";
}

// The settings of a [[link]] or [[sink]] table as one string (toml++ writes keys sorted), less
// the keys in `except`.
std::string settings_of(const toml::table& t, std::initializer_list<std::string_view> except) {
  toml::table copy = t;
  for (auto k : except)
    copy.erase(k);
  std::ostringstream out;
  out << toml::toml_formatter(copy);
  return out.str();
}

// "a, b, c or d"
std::string listed(std::span<const std::string_view> names, std::string_view last) {
  std::string s;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i != 0) s += i + 1 == names.size() ? " " + std::string(last) + " " : ", ";
    s += names[i];
  }
  return s;
}

std::string article(std::string_view word) {
  return std::string_view("aeiou").find(word.empty() ? 'x' : word[0]) != std::string_view::npos
             ? "an"
             : "a";
}

// The keys of `l`'s table its type did not take: a key another type takes is "not allowed"
// here (with that type's name, or what its key says); the rest are left for finish().
void refuse_foreign_keys(TableReader& r, const LinkConfig& l, const ConfigKinds& kinds) {
  for (const auto& [k, v] : r.table()) {
    const std::string_view key = k.str();
    if (r.known(key)) continue;
    std::vector<std::string_view> takers;
    std::string_view refused;
    for (const LinkKind* kind : kinds.links)
      for (const ConfigKey& ck : kind->keys)
        if (ck.name == key) {
          takers.push_back(kind->name);
          if (!ck.refused.empty()) refused = ck.refused;
        }
    if (takers.empty()) continue;  // (unknown everywhere: finish() says so)
    const std::string t(l.type_name());
    if (!refused.empty())
      r.reject(key, refused);
    else if (takers.size() <= 3) {  // "only af_xdp and vhost_user links take it"
      std::string who;
      for (std::size_t i = 0; i < takers.size(); ++i)
        who += (i == 0 ? "" : i + 1 == takers.size() ? " and " : ", ") + std::string(takers[i]);
      r.reject(key, "only " + who + " links take it");
    } else
      r.reject(key, article(t) + " " + t + " link does not take it");
  }
}

LinkConfig read_link(const toml::table& t, std::size_t index, ConfigErrors& errors,
                     const ConfigKinds& kinds, const std::shared_ptr<const toml::table>& file) {
  LinkConfig l;
  l.where = t.source();
  l.name_where = key_where(t, "name");
  const std::string label = read_name(t, "link", index, errors, l.name);
  TableReader lr(t, label, errors);  // messages name the link from here on
  lr.skip("name");

  std::vector<std::string_view> names;
  for (const LinkKind* k : kinds.links)
    names.push_back(k->name);
  if (!lr.has("type"))
    errors.add(lr.where(), label + " is missing required key type (" + listed(names, "or") + ")");
  else if (auto v = lr.choice("type", names))
    l.type = kinds.link(*v);

  // The keys every link has.
  if (auto v = lr.integer("rx_batch", 1, 1024)) l.rx_batch = static_cast<unsigned>(*v);
  if (auto v = lr.integer("mtu", 68, 65535)) l.mtu = static_cast<unsigned>(*v);
  if (auto v = lr.string("netns")) {
    if (v->empty() || v->size() > 4096 || has_control_char(*v))
      errors.add(lr.where("netns"), "netns \"" + shown(*v) + "\" in " + label +
                                        " must name a namespace under /run/netns or be a path, "
                                        "without control characters");
    else
      l.netns = *v;
  }
  if (auto v = lr.string("sink", true)) {
    l.sink = *v;
    l.sink_where = lr.where("sink");
  }
  if (lr.has("vlans")) {  // (how it is a port of its sink: checked when it joins it)
    l.port_vlans_where = lr.where("vlans");
    // (kept in place, with the file's tables alive: a copy would lose where it is written)
    if (const toml::table* v = lr.subtable("vlans")) l.port_vlans = {file, v};
  }

  if (!l.type) {
    for (const LinkKind* k : kinds.links)
      for (const ConfigKey& key : k->keys)
        lr.skip(key.name);  // (the type error is enough)
  } else {
    l.options = l.type->read(lr, l);
    refuse_foreign_keys(lr, l, kinds);
  }
  lr.finish();
  l.settings = settings_of(t, {"sink"});
  return l;
}

SinkConfig read_sink(const toml::table& t, std::size_t index, ConfigErrors& errors,
                     const ConfigKinds& kinds) {
  SinkConfig s;
  s.where = t.source();
  s.name_where = key_where(t, "name");
  const std::string label = read_name(t, "sink", index, errors, s.name);
  TableReader sr(t, label, errors);
  sr.skip("name");
  auto type = sr.string("type");
  std::string known;
  for (const SinkKind* st : kinds.sinks)
    known += (known.empty() ? "" : ", ") + std::string(st->name);
  if (!sr.has("type")) {
    errors.add(sr.where(), label + " is missing required key type (one of: " + known + ")");
    return s;  // its other keys depend on the type: nothing more to check
  }
  if (!type) return s;
  s.type = kinds.sink(*type);
  if (!s.type) {
    errors.add(sr.where("type"), "unknown sink type \"" + shown(*type) + "\" in " + label +
                                     " (known: " + known + ")");
    return s;
  }
  s.options = s.type->configure(sr);
  sr.finish();
  s.settings = settings_of(t, {});
  return s;
}

// [[link]] written as [link], or link = 5: say how to write it.
const toml::array* array_of_tables(const toml::table& root, std::string_view key,
                                   ConfigErrors& errors) {
  const toml::node* n = root.get(key);
  if (!n) return nullptr;
  const toml::array* a = n->as_array();
  if (!a || !a->is_array_of_tables()) {
    errors.add(n->source(), std::string(key) + " must be an array of tables: write [[" +
                                std::string(key) + "]] above each one");
    return nullptr;
  }
  return a;
}

// The text of a config file, or nullopt with the reason in `errors`.
std::optional<std::string> read_text(const std::string& path, ConfigErrors& errors) {
  auto fail = [&](std::string msg) -> std::optional<std::string> {
    errors.add(path, 0, 0, std::move(msg));
    return std::nullopt;
  };
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return fail(std::string("cannot read config: ") + std::strerror(errno));
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return fail(std::string("cannot read config: ") + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) {
    const char* kind = S_ISDIR(st.st_mode)    ? "a directory"
                       : S_ISFIFO(st.st_mode) ? "a FIFO"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a regular file";
    return fail(std::string("cannot read config: it is ") + kind + ", not a regular file");
  }
  if (static_cast<std::uint64_t>(st.st_size) > kMaxConfigBytes)
    return fail("cannot read config: it is " + std::to_string(st.st_size) +
                " bytes; the limit is " + std::to_string(kMaxConfigBytes) + " (16 MiB)");
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(std::string("cannot read config: ") + std::strerror(errno));
    if (n == 0) break;  // the file shrank while it was read
    got += static_cast<std::size_t>(n);
  }
  text.resize(got);
  return text;
}

// The TOML of `text`, or nullopt with the error in `errors`.
std::shared_ptr<const toml::table> parse_toml(std::string_view text, const std::string& path,
                                              ConfigErrors& errors) {
  if (auto e = too_deep(text, path)) {
    errors.add(e->file, e->line, e->column, e->message);
    return nullptr;
  }
  try {
    return std::make_shared<const toml::table>(toml::parse(text, path));
  } catch (const toml::parse_error& e) {
    errors.add(e.source(), shown(e.description(), ConfigErrors::kMaxMessage));
    return nullptr;
  }
}

// The files [daemon] include names, in order: each pattern's matches sorted, a file named by
// two patterns once. A pattern that matches nothing is no error (a ports directory is empty
// until the first port arrives).
std::vector<std::string> included_files(const DaemonConfig& d, const std::string& main_path,
                                        ConfigErrors& errors) {
  std::vector<std::string> files;
  const auto slash = main_path.rfind('/');
  const std::string dir = slash == std::string::npos ? "" : main_path.substr(0, slash + 1);
  for (const std::string& pattern : d.include) {
    const std::string full = pattern[0] == '/' ? pattern : dir + pattern;
    glob_t g{};
    const int rc = ::glob(full.c_str(), GLOB_ERR | GLOB_NOSORT, nullptr, &g);
    std::vector<std::string> matched;
    if (rc == 0)
      for (std::size_t i = 0; i < g.gl_pathc; ++i)
        matched.emplace_back(g.gl_pathv[i]);
    else if (rc == GLOB_ABORTED && errno != ENOENT && errno != ENOTDIR)
      errors.add(d.include_where,
                 "include \"" + shown(pattern) +
                     "\" in [daemon]: cannot read its directory: " + std::strerror(errno));
    ::globfree(&g);
    std::sort(matched.begin(), matched.end());
    for (auto& m : matched)
      if (m != main_path && std::find(files.begin(), files.end(), m) == files.end())
        files.push_back(std::move(m));
  }
  if (files.size() > kMaxIncludedFiles)
    errors.add(d.include_where, "include in [daemon] names " + std::to_string(files.size()) +
                                    " files; the limit is " + std::to_string(kMaxIncludedFiles));
  return files;
}

// One file's [[link]] and [[sink]] tables, read into `c`; `main` says whether it is the main
// file (the only one that may hold [daemon]).
void read_tables(const std::shared_ptr<const toml::table>& file, bool main, Config& c,
                 ConfigErrors& errors, const ConfigKinds& kinds) {
  const toml::table& root = *file;
  if (const toml::array* links = array_of_tables(root, "link", errors))
    for (std::size_t i = 0; i < links->size(); ++i)
      c.links.push_back(read_link(*links->get(i)->as_table(), i, errors, kinds, file));
  if (const toml::array* sinks = array_of_tables(root, "sink", errors))
    for (std::size_t i = 0; i < sinks->size(); ++i)
      c.sinks.push_back(read_sink(*sinks->get(i)->as_table(), i, errors, kinds));
  for (const auto& [k, v] : root) {
    if (k == "link" || k == "sink") continue;
    if (k == "daemon" && main) continue;
    if (k == "daemon")
      errors.add(k.source(), "[daemon] belongs in the main file (" + c.path +
                                 "); a file it includes holds only [[link]] and [[sink]] tables");
    else
      errors.add(k.source(), "unknown key " + shown(k.str()) + " at the top level (expected " +
                                 (main ? "[daemon], " : "") + "[[link]] or [[sink]])");
  }
}

// A link whose sink takes ports (a bridge) but does not list it joins it, with its `vlans`.
void join_sinks(Config& c, ConfigErrors& errors) {
  for (auto& l : c.links) {
    SinkConfig* s = nullptr;
    for (auto& sc : c.sinks)
      if (!l.sink.empty() && sc.name == l.sink) s = &sc;
    const bool can_join = s && s->type && s->options && s->type->adopt;
    if (l.port_vlans && !can_join) {
      errors.add(l.port_vlans_where,
                 "vlans in link \"" + l.name + "\": only a link whose sink is a bridge takes it");
      continue;
    }
    if (!can_join || l.name.empty()) continue;
    // (the sink's options are its own until the config is built: adopting changes them)
    auto& options = const_cast<SinkOptions&>(*s->options);
    if (s->type->adopt(options, l, l.port_vlans.get(), l.port_vlans_where, errors))
      s->settings += "\n# joined by link " + l.name + " " + l.settings;
  }
}

Config build(const std::shared_ptr<const toml::table>& file, const std::string& path,
             ConfigErrors& errors, const ConfigKinds& kinds) {
  const toml::table& root = *file;
  Config c;
  c.path = path;
  c.files.push_back(path);
  if (const toml::node* d = root.get("daemon")) {
    if (const toml::table* t = d->as_table())
      read_daemon(*t, c.daemon, errors);
    else
      errors.add(d->source(), "daemon must be a table: write [daemon]");
  }
  read_tables(file, true, c, errors, kinds);
  for (std::string& name : included_files(c.daemon, path, errors)) {
    if (c.files.size() > kMaxIncludedFiles) break;
    errors.read_file(name);
    auto text = read_text(name, errors);
    if (!text) continue;
    auto dropin = parse_toml(*text, name, errors);
    if (!dropin) continue;
    c.files.push_back(std::move(name));
    read_tables(dropin, false, c, errors, kinds);
  }

  if (c.links.empty() && !root.contains("link") && c.daemon.include.empty())
    errors.add(path, 1, 1,
               "no [[link]] defined: fdlinkd needs at least one link (or an include in [daemon] "
               "from which links arrive)");

  check_names(c, errors);
  join_sinks(c, errors);
  for (const LinkKind* k : kinds.links)
    if (k->validate) k->validate(c, errors);
  check_graph(c, errors);
  for (const auto& s : c.sinks)
    if (s.type && s.options && s.type->validate) s.type->validate(s, c, errors);
  return c;
}

ConfigResult finish(Config c, ConfigErrors& errors) {
  ConfigResult r;
  r.log_format = c.daemon.log_format;  // (as far as it was read: for reporting the errors)
  if (errors.empty())
    r.config = std::move(c);
  else
    r.errors = errors.sorted();
  r.error_count = errors.size();
  return r;
}

}  // namespace

ConfigResult parse_config(std::string_view text, const std::string& path,
                          const ConfigKinds& kinds) {
  ConfigErrors errors;
  errors.read_file(path);
  auto root = parse_toml(text, path, errors);
  if (!root) return finish({}, errors);
  Config c = build(root, path, errors, kinds);
  return finish(std::move(c), errors);
}

ConfigResult load_config(const std::string& path, const ConfigKinds& kinds) {
  ConfigErrors errors;
  auto text = read_text(path, errors);
  if (!text) return finish({}, errors);
  return parse_config(*text, path, kinds);
}

}  // namespace fdlinkd
