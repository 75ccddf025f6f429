#include "sink/bridge.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "config/config.hpp"
#include "core/log.hpp"
#include "offload/vlan.hpp"

namespace fdlinkd {

namespace {

enum Counter : std::size_t {
  kLearned,
  kMoved,
  kEvicted,
  kAged,
  kForwarded,
  kFlooded,
  kHairpin,
  kReserved,
  kVlanFiltered,
  kNotMember,
  kNoBuffer,
  kMacs,
  kCounters
};
constexpr std::string_view kCounterNames[kCounters] = {
    "learned", "moved",    "evicted",       "aged",       "forwarded", "flooded",
    "hairpin", "reserved", "vlan_filtered", "not_member", "no_buffer", "macs"};

constexpr std::size_t kMaxUpdates = 4096;  // per batch; more waits for the next frame from it
// offload = "xdp": workers other than 0 keep a MAC this much longer than `aging`, so that a
// refresh from the kernel's fast path, which worker 0 asks for, reaches them first.
constexpr std::uint32_t kFastPathGrace = 2;

std::uint32_t now_s() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<std::uint32_t>(ts.tv_sec);
}

std::uint64_t mix(std::uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  return k;
}

bool parse_mac(const std::string& s, std::array<std::uint8_t, 6>& mac) {
  unsigned b[6];
  char extra;
  if (std::sscanf(s.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
                  &extra) != 6 ||
      s.size() != 17)
    return false;
  for (int i = 0; i < 6; ++i)
    mac[i] = static_cast<std::uint8_t>(b[i]);
  return true;
}

std::string mac_text(std::uint64_t key) {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x",
                static_cast<unsigned>(key >> 40 & 0xFF), static_cast<unsigned>(key >> 32 & 0xFF),
                static_cast<unsigned>(key >> 24 & 0xFF), static_cast<unsigned>(key >> 16 & 0xFF),
                static_cast<unsigned>(key >> 8 & 0xFF), static_cast<unsigned>(key & 0xFF));
  return buf;
}

}  // namespace

// --- MacTable -----------------------------------------------------------------------------

MacTable::MacTable(std::size_t max_macs, std::size_t ports) : max_(max_macs), per_port_(ports, 0) {
  std::size_t cap = 16;
  while (cap < 2 * max_macs)  // at most half full: short probe runs
    cap *= 2;
  slots_.resize(cap);
  mask_ = cap - 1;
}

std::uint64_t MacTable::key(const std::uint8_t* mac, std::uint16_t vlan) {
  std::uint64_t k = 0;
  for (int i = 0; i < 6; ++i)
    k = k << 8 | mac[i];
  return k | std::uint64_t{vlan} << 48 | std::uint64_t{1} << 62;  // bit 62: never 0
}

std::size_t MacTable::slot_of(std::uint64_t key) const {
  std::size_t i = mix(key) & mask_;
  while (slots_[i].key != 0 && slots_[i].key != key)
    i = (i + 1) & mask_;
  return i;
}

std::uint16_t MacTable::lookup(std::uint64_t key) const {
  const Entry& e = slots_[slot_of(key)];
  return e.key ? e.port : kNoPort;
}

MacTable::Learned MacTable::learn(std::uint64_t key, std::uint16_t port, std::uint32_t now,
                                  bool heard) {
  std::size_t i = slot_of(key);
  Entry& e = slots_[i];
  if (e.key) {
    if (e.is_static) return Learned::kept_static;
    e.seen = now;
    if (e.port == port) {
      e.heard |= heard;  // (an addition or a move is posted as it happens)
      return Learned::refreshed;
    }
    --per_port_[e.port];
    ++per_port_[port];
    e.port = port;
    return Learned::moved;
  }
  Learned r = Learned::added;
  if (size_ >= max_) {
    last_evicted_ = 0;
    evict();
    r = Learned::added_evicting;
    i = slot_of(key);  // the eviction may have shifted entries
  }
  slots_[i] = Entry{key, now, port, false};
  ++size_;
  ++per_port_[port];
  return r;
}

void MacTable::add_static(std::uint64_t key, std::uint16_t port) {
  const std::size_t i = slot_of(key);
  if (slots_[i].key) {
    --per_port_[slots_[i].port];
    --size_;
  }
  slots_[i] = Entry{key, 0, port, true};
  ++size_;
  ++per_port_[port];
}

void MacTable::erase_at(std::size_t i) {
  --per_port_[slots_[i].port];
  --size_;
  slots_[i] = Entry{};
  // Backward-shift deletion: move up each following entry whose home slot is at or before
  // the hole, so lookups never stop early at it.
  std::size_t hole = i;
  for (std::size_t j = (i + 1) & mask_; slots_[j].key != 0; j = (j + 1) & mask_) {
    const std::size_t home = mix(slots_[j].key) & mask_;
    const bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
    if (!movable) continue;
    slots_[hole] = slots_[j];
    slots_[j] = Entry{};
    hole = j;
  }
}

void MacTable::evict() {
  std::uint16_t worst = 0;
  for (std::uint16_t p = 1; p < per_port_.size(); ++p)
    if (per_port_[p] > per_port_[worst]) worst = p;
  std::size_t victim = slots_.size();
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const Entry& e = slots_[i];
    if (!e.key || e.is_static || e.port != worst) continue;
    if (victim == slots_.size() || e.seen < slots_[victim].seen) victim = i;
  }
  if (victim == slots_.size())  // that port holds only static entries: any dynamic one goes
    for (std::size_t i = 0; i < slots_.size(); ++i)
      if (slots_[i].key && !slots_[i].is_static &&
          (victim == slots_.size() || slots_[i].seen < slots_[victim].seen))
        victim = i;
  if (victim != slots_.size()) {
    last_evicted_ = slots_[victim].key;
    erase_at(victim);
  }
}

std::size_t MacTable::age(std::uint32_t now, std::uint32_t aging, std::vector<std::uint64_t>* gone,
                          const std::function<std::uint32_t(const Entry&)>& seen_elsewhere) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < slots_.size();) {
    Entry& e = slots_[i];
    if (e.key && !e.is_static && now - e.seen >= aging) {
      if (seen_elsewhere) {
        const std::uint32_t t = seen_elsewhere(e);
        if (t != 0 && now - t < aging) {
          e.seen = t;
          e.heard = true;
          ++i;
          continue;
        }
      }
      if (gone) gone->push_back(e.key);
      erase_at(i);  // (the shift may bring another entry into slot i: look again)
      ++n;
      continue;
    }
    ++i;
  }
  return n;
}

std::size_t MacTable::flush(std::vector<std::uint64_t>* gone) {
  std::vector<Entry> statics;
  for (const Entry& e : slots_)
    if (e.key && e.is_static)
      statics.push_back(e);
    else if (e.key && gone)
      gone->push_back(e.key);
  const std::size_t n = size_ - statics.size();
  std::fill(slots_.begin(), slots_.end(), Entry{});
  std::fill(per_port_.begin(), per_port_.end(), 0);
  size_ = 0;
  for (const Entry& e : statics)
    add_static(e.key, e.port);
  return n;
}

// --- config -------------------------------------------------------------------------------

namespace {

struct BridgeOptions : SinkOptions {
  BridgeSettings s;
  std::vector<OutputRef> ports;
};

std::optional<std::uint16_t> vid(const toml::node& n, const std::string& what,
                                 ConfigErrors& errors) {
  if (!n.is_integer() || n.as_integer()->get() < 1 || n.as_integer()->get() > 4094) {
    errors.add(n.source(), what + " must be a VLAN id from 1 to 4094");
    return std::nullopt;
  }
  return static_cast<std::uint16_t>(n.as_integer()->get());
}

// One port's VLANs, { access = 10 } or { trunk = [10, 20], native = 1 }, into `v`.
void read_port_vlans(const toml::node& node, const std::string& what, ConfigErrors& errors,
                     BridgePortVlans& v) {
  const toml::table* m = node.as_table();
  if (!m) {
    errors.add(node.source(), what +
                                  " must be a table such as { access = 10 } or "
                                  "{ trunk = [10, 20], native = 1 }");
    return;
  }
  TableReader mr(*m, what, errors);
  const bool access = mr.has("access"), trunk = mr.has("trunk");
  if (access == trunk) {
    errors.add(node.source(), what + " needs exactly one of access or trunk");
    mr.skip("access");
    mr.skip("trunk");
    mr.skip("native");
    mr.finish();
    return;
  }
  if (access) {
    mr.skip("access");
    if (auto id = vid(*m->get("access"), what + ": access", errors)) v.pvid = *id;
    v.mode = BridgePortVlans::Mode::access;
    mr.reject("native", "an access port has one VLAN; native belongs to trunk ports");
  } else {
    v.mode = BridgePortVlans::Mode::trunk;
    v.pvid = 0;
    if (auto ids = mr.integers("trunk", 1, 4094))
      for (auto id : *ids)
        v.allowed.set(static_cast<std::size_t>(id));
    if (m->contains("native")) {
      mr.skip("native");
      if (auto id = vid(*m->get("native"), what + ": native", errors)) v.native = *id;
    }
  }
  mr.finish();
}

// A port not given VLANs: an access port of VLAN 1, as Linux does.
BridgePortVlans default_port_vlans() {
  BridgePortVlans v;
  v.mode = BridgePortVlans::Mode::access;
  v.pvid = 1;
  return v;
}

void make_vlan_aware(BridgeSettings& s) {
  if (s.vlan_aware) return;
  s.vlan_aware = true;
  s.vlans.assign(s.ports.size(), default_port_vlans());
}

void read_vlans(TableReader& r, BridgeOptions& o) {
  const toml::table* t = r.subtable("vlans");
  if (!t) return;
  ConfigErrors& errors = r.errors();
  BridgeSettings& s = o.s;
  make_vlan_aware(s);
  for (const auto& [k, node] : *t) {
    const std::string port(k.str());
    const std::string what = "vlans." + shown(port) + " in " + r.what();
    std::size_t p = 0;
    while (p < s.ports.size() && s.ports[p] != port)
      ++p;
    if (p == s.ports.size()) {
      errors.add(k.source(), what + ": \"" + shown(port) + "\" is not one of the bridge's ports");
      continue;
    }
    read_port_vlans(node, what, errors, s.vlans[p]);
  }
}

void read_statics(TableReader& r, BridgeOptions& o) {
  const toml::node* n = r.table().get("static");
  r.skip("static");
  if (!n) return;
  ConfigErrors& errors = r.errors();
  const toml::array* a = n->as_array();
  if (!a) {
    errors.add(n->source(), "static in " + r.what() +
                                " must be an array such as [{ mac = \"02:00:00:00:00:01\", port "
                                "= \"a\" }]");
    return;
  }
  for (const toml::node& e : *a) {
    const toml::table* t = e.as_table();
    if (!t) {
      errors.add(e.source(), "each static entry in " + r.what() + " must be a table");
      continue;
    }
    TableReader er(*t, "a static entry of " + r.what(), errors);
    BridgeSettings::Static st{};
    bool ok = true;
    if (auto mac = er.string("mac", true)) {
      if (!parse_mac(*mac, st.mac) || (st.mac[0] & 1)) {
        errors.add(er.where("mac"), "mac \"" + shown(*mac) + "\" in " + er.what() +
                                        " must be a unicast MAC such as 02:00:00:00:00:01");
        ok = false;
      }
    } else {
      ok = false;
    }
    if (auto port = er.string("port", true)) {
      std::size_t p = 0;
      while (p < o.s.ports.size() && o.s.ports[p] != *port)
        ++p;
      if (p == o.s.ports.size()) {
        errors.add(er.where("port"),
                   "port \"" + shown(*port) + "\" in " + er.what() + " is not a port of it");
        ok = false;
      }
      st.port = static_cast<std::uint16_t>(p);
    } else {
      ok = false;
    }
    st.vlan = 0;
    if (auto v = er.integer("vlan", 1, 4094)) st.vlan = static_cast<std::uint16_t>(*v);
    er.finish();
    if (ok) o.s.statics.push_back(st);
  }
}

std::unique_ptr<SinkOptions> configure(TableReader& r) {
  auto o = std::make_unique<BridgeOptions>();
  if (auto ports = r.names("ports", false, true)) {
    o->ports = *ports;
    for (const auto& p : *ports)
      o->s.ports.push_back(p.name);
    if (ports->size() > 1024) r.errors().add(r.where("ports"), "a bridge has at most 1024 ports");
  }
  if (auto a = r.duration("aging")) {
    if (*a != std::chrono::microseconds(0) && *a < std::chrono::seconds(1))
      r.errors().add(r.where("aging"), "aging in " + r.what() + " must be at least 1s (or \"0s\")");
    else
      o->s.aging_s =
          static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(*a).count());
  }
  if (auto m = r.integer("max_macs", 16, 1 << 20)) o->s.max_macs = static_cast<std::size_t>(*m);
  o->s.offload = o->offload_xdp = read_offload(r);
  read_vlans(r, *o);
  read_statics(r, *o);
  // A static entry without a VLAN belongs to its port's VLAN (none when VLANs are off).
  for (auto& st : o->s.statics)
    if (o->s.vlan_aware && st.vlan == 0)
      st.vlan = o->s.vlans[st.port].pvid ? o->s.vlans[st.port].pvid : o->s.vlans[st.port].native;
  return o;
}

// A link that sends to the bridge without being in `ports` (a port from a drop-in file) is
// its next port; its `vlans` table makes the bridge VLAN-aware if it was not.
bool adopt(SinkOptions& options, const LinkConfig& link, const toml::table* vlans,
           const toml::source_region& where, ConfigErrors& errors) {
  auto& o = static_cast<BridgeOptions&>(options);
  const auto listed = std::find(o.s.ports.begin(), o.s.ports.end(), link.name);
  if (listed != o.s.ports.end()) {
    if (vlans)
      errors.add(where, "vlans in link \"" + link.name +
                            "\": the bridge lists it in ports already; give its VLANs in the "
                            "bridge's [sink.vlans] or take it out of ports");
    return false;
  }
  if (o.s.ports.size() >= 1024) {
    errors.add(link.sink_where, "link \"" + link.name + "\" cannot join bridge \"" + link.sink +
                                    "\": a bridge has at most 1024 ports");
    return false;
  }
  if (vlans) make_vlan_aware(o.s);  // (before the port is added: it gets its own entry below)
  o.ports.push_back({link.name, link.name_where});
  o.s.ports.push_back(link.name);
  if (o.s.vlan_aware) {
    o.s.vlans.push_back(default_port_vlans());
    if (vlans)
      read_port_vlans(*vlans, "vlans in link \"" + link.name + "\"", errors, o.s.vlans.back());
  }
  return true;
}

std::vector<OutputRef> outputs(const SinkConfig& sink, const Config&) {
  return static_cast<const BridgeOptions&>(*sink.options).ports;
}

void validate(const SinkConfig& sink, const Config& config, ConfigErrors& errors) {
  const auto& o = static_cast<const BridgeOptions&>(*sink.options);
  for (const OutputRef& p : o.ports)
    if (!config.find_link(p.name) && config.find_sink(p.name))
      errors.add(p.where,
                 "ports of sink \"" + sink.name + "\" must be links; \"" + p.name + "\" is a sink");
}

std::unique_ptr<Sink> create(const SinkConfig& sink, const SinkSetup& setup) {
  const auto& o = static_cast<const BridgeOptions&>(*sink.options);
  std::vector<std::uint16_t> link_port(setup.link_slots(), MacTable::kNoPort);
  for (std::size_t p = 0; p < o.s.ports.size(); ++p) {
    const std::size_t l = setup.link_index(o.s.ports[p]);
    if (l < link_port.size()) link_port[l] = static_cast<std::uint16_t>(p);
  }
  // The fast path's name for the bridge: its name's hash, the same across reloads.
  const auto id = static_cast<std::uint32_t>(std::hash<std::string>{}(sink.name));
  return std::make_unique<BridgeSink>(o.s, std::move(link_port), setup.workers,
                                      o.s.offload ? setup.fastpath : nullptr, id);
}

constexpr SinkKey kKeys[] = {
    {"ports",
     "member links, in order; a link whose sink is the bridge joins it too (its own "
     "`vlans` key: { access = 10 })"},
    {"aging", "forget a MAC not seen for this long (default \"300s\"; \"0s\": never)"},
    {"max_macs", "table size limit; when full the port with most MACs loses its oldest (8192)"},
    {"static", "fixed entries: [{ mac = \"..\", port = \"a\", vlan = 10 }]"},
    {"vlans", "per port: { access = 10 } or { trunk = [10, 20], native = 1 }"},
    {"offload",
     "\"xdp\": known unicast between ports on interfaces is forwarded in the kernel (XDP); "
     "\"off\" (default)"},
};

}  // namespace

const SinkType BridgeSink::kType = {
    "bridge",  "an L2 learning switch over its member links, with VLANs (access, trunk, native)",
    kKeys,     true,
    configure, outputs,
    validate,  adopt,
    create};

// --- data path ----------------------------------------------------------------------------

struct BridgeSink::PerWorker {
  PerWorker(const BridgeSettings& s) : table(s.max_macs, s.ports.size()) {}
  MacTable table;
  std::uint32_t last_sweep = 0;
  std::vector<Update> outbox;       ///< learned this batch, for the other workers
  std::vector<std::uint64_t> gone;  ///< aged this sweep (worker 0, for the fast path)
};

BridgeSink::BridgeSink(BridgeSettings settings, std::vector<std::uint16_t> link_port,
                       unsigned workers, XdpFastPath* fastpath, std::uint32_t fastpath_id)
    : s_(std::move(settings)),
      link_port_(std::move(link_port)),
      port_link_(s_.ports.size(), static_cast<std::size_t>(-1)),
      fp_(fastpath && fastpath->ready() ? fastpath : nullptr),
      fp_id_(fastpath_id),
      clock_(now_s) {
  for (std::size_t l = 0; l < link_port_.size(); ++l)
    if (link_port_[l] != MacTable::kNoPort) port_link_[link_port_[l]] = l;
  vlan_ports_.resize(s_.vlan_aware ? 4096 : 1);
  for (std::uint16_t p = 0; p < s_.ports.size(); ++p) {
    if (!s_.vlan_aware) {
      vlan_ports_[0].push_back(p);
      continue;
    }
    const BridgePortVlans& v = s_.vlans[p];
    for (std::size_t id = 1; id < 4095; ++id)
      if ((v.mode == BridgePortVlans::Mode::access && v.pvid == id) ||
          (v.mode == BridgePortVlans::Mode::trunk && (v.allowed.test(id) || v.native == id)))
        vlan_ports_[id].push_back(p);
  }
  for (unsigned w = 0; w < workers; ++w) {
    per_worker_.push_back(std::make_unique<PerWorker>(s_));
    per_worker_.back()->outbox.reserve(256);
    for (const auto& st : s_.statics)
      per_worker_.back()->table.add_static(MacTable::key(st.mac.data(), st.vlan), st.port);
  }
  if (fp_) {  // (a bridge built anew on a reload enters again what it takes over)
    fp_->fdb_clear(fp_id_);
    for (const auto& st : s_.statics)
      fast_learn(0, MacTable::Learned::added, MacTable::key(st.mac.data(), st.vlan), st.port,
                 per_worker_[0]->table);
  }
}

namespace {

void mac_of(std::uint64_t key, std::uint8_t* mac) {
  for (int i = 0; i < 6; ++i)
    mac[i] = static_cast<std::uint8_t>(key >> (40 - 8 * i));
}

}  // namespace

void BridgeSink::fast_learn(std::size_t w, MacTable::Learned r, std::uint64_t key,
                            std::uint16_t port, const MacTable& table) {
  if (!fp_ || w != 0) return;
  if (r == MacTable::Learned::added_evicting && table.last_evicted())
    fast_forget(table.last_evicted());
  if (r != MacTable::Learned::added && r != MacTable::Learned::added_evicting &&
      r != MacTable::Learned::moved)
    return;
  std::uint8_t mac[6];
  mac_of(key, mac);
  // (when the kernel's table is full, this MAC stays on the slow path)
  fp_->fdb_set(fp_id_, fast_vlan(key), mac, port_link_[port]);
}

std::uint32_t BridgeSink::fast_seen(std::uint64_t key) const {
  std::uint8_t mac[6];
  mac_of(key, mac);
  return fp_->fdb_seen(fp_id_, fast_vlan(key), mac);
}

void BridgeSink::fast_forget(std::uint64_t key) {
  std::uint8_t mac[6];
  mac_of(key, mac);
  fp_->fdb_del(fp_id_, fast_vlan(key), mac);
}

OffloadPlan BridgeSink::offload_plan(std::size_t ingress) const {
  OffloadPlan plan;
  const std::uint16_t p = ingress < link_port_.size() ? link_port_[ingress] : MacTable::kNoPort;
  if (p == MacTable::kNoPort) {
    plan.why_not = "not a port of the bridge";
    return plan;
  }
  fdlinkd_fp_port& row = plan.port;
  row.mode = FDLINKD_FP_BRIDGE;
  row.bridge = fp_id_;
  if (s_.vlan_aware) {
    const BridgePortVlans& v = s_.vlans[p];
    row.flags |= FDLINKD_FP_VLAN_AWARE;
    if (v.mode == BridgePortVlans::Mode::trunk) {
      row.flags |= FDLINKD_FP_TRUNK;
      row.native = v.native;
      plan.trunk_vlans = v.allowed;
    } else {
      row.pvid = v.pvid;
    }
  }
  for (std::size_t q = 0; q < port_link_.size(); ++q)
    if (q != p && port_link_[q] != static_cast<std::size_t>(-1))
      plan.egress.push_back(port_link_[q]);
  return plan;
}

BridgeSink::~BridgeSink() = default;

std::span<const std::string_view> BridgeSink::counter_names() const {
  return kCounterNames;
}

bool BridgeSink::is_gauge(std::size_t i) const {
  return kCounterNames[i] == "macs";
}

const MacTable& BridgeSink::table(std::size_t w) const {
  return per_worker_[w]->table;
}

void BridgeSink::send(Pass& pass, Frame& f, std::uint16_t q, std::uint16_t vlan, bool tagged,
                      std::uint16_t tci, Frame* variants) {
  if (!s_.vlan_aware) {
    pass.emit(q, f);
    return;
  }
  const BridgePortVlans& v = s_.vlans[q];
  const bool want_tag = v.mode == BridgePortVlans::Mode::trunk && vlan != v.native;
  if (want_tag == tagged && (!tagged || (tci & 0xFFF) == vlan)) {
    pass.emit(q, f);
    return;
  }
  Frame& g = variants[want_tag ? 1 : 0];  // made once per frame, then shared by its ports
  if (g.data == nullptr) {
    g = f;
    if (!pass.copy(g)) {
      g.data = nullptr;
      pass.count(kNoBuffer);
      return;
    }
    std::size_t len = g.len;
    if (!want_tag) {
      g.data = take_vlan_tag_out(g.data, len, g.vnet);
    } else if (tagged) {
      g.data[14] = static_cast<std::uint8_t>((tci >> 8 & 0xF0) | vlan >> 8);
      g.data[15] = static_cast<std::uint8_t>(vlan);
    } else {
      g.data = put_vlan_tag_back(g.data, len, 0x8100, vlan, g.vnet);
    }
    g.len = static_cast<std::uint32_t>(len);
  }
  pass.emit(q, g);
}

void BridgeSink::process(Pass& pass, Batch& in) {
  PerWorker& pw = *per_worker_[pass.worker().id];
  const std::uint32_t now = clock_();
  const std::size_t w = pass.worker().id;
  if (s_.aging_s != 0 && now != pw.last_sweep) {  // at most once a second
    pw.last_sweep = now;
    if (fp_ && w == 0) {
      // A MAC whose frames the kernel forwards stays, as the kernel last saw it (and the other
      // workers hear of it below).
      pw.gone.clear();
      pass.count(kAged, pw.table.age(now, s_.aging_s, &pw.gone,
                                     [&](const MacTable::Entry& e) { return fast_seen(e.key); }));
      for (std::uint64_t k : pw.gone)
        fast_forget(k);
    } else {
      pass.count(kAged, pw.table.age(now, fp_ ? s_.aging_s + kFastPathGrace : s_.aging_s));
    }
    if (per_worker_.size() > 1)  // the refreshes of the last second, for the other workers
      pw.table.take_heard([&](const MacTable::Entry& e) {
        if (pw.outbox.size() >= kMaxUpdates) return false;
        pw.outbox.push_back({e.key, e.port, true});
        return true;
      });
  }
  const std::size_t ingress = pass.ingress();
  const std::uint16_t p = ingress < link_port_.size() ? link_port_[ingress] : MacTable::kNoPort;
  if (p == MacTable::kNoPort) {
    pass.count(kNotMember, in.size());
    return;
  }
  std::uint64_t forwarded = 0, flooded = 0, hairpin = 0, reserved = 0, filtered = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    Frame& f = in[i];
    const std::uint8_t* d = f.data;
    std::uint16_t tci = 0;
    const bool tagged = vlan_tag_of(d, f.len, tci) && d[12] == 0x81;  // 802.1Q only
    std::uint16_t vlan = 0;
    if (s_.vlan_aware) {
      const BridgePortVlans& v = s_.vlans[p];
      const std::uint16_t id = tci & 0xFFF;
      if (v.mode == BridgePortVlans::Mode::access) {
        vlan = (!tagged || id == 0) ? v.pvid : 0;
      } else {
        vlan = (tagged && id != 0) ? (v.allowed.test(id) ? id : 0) : v.native;
      }
      if (vlan == 0) {
        ++filtered;
        continue;
      }
    }
    if (d[0] == 0x01 && d[1] == 0x80 && d[2] == 0xC2 && d[3] == 0 && d[4] == 0 &&
        (d[5] & 0xF0) == 0) {
      ++reserved;
      continue;
    }
    const bool src_unicast = (d[6] & 1) == 0 && (d[6] | d[7] | d[8] | d[9] | d[10] | d[11]) != 0;
    if (src_unicast) {
      const std::uint64_t k = MacTable::key(d + 6, vlan);
      const MacTable::Learned r = pw.table.learn(k, p, now);
      if (fp_) fast_learn(w, r, k, p, pw.table);
      if (r == MacTable::Learned::added || r == MacTable::Learned::added_evicting)
        pass.count(kLearned);
      if (r == MacTable::Learned::added_evicting) pass.count(kEvicted);
      if (r == MacTable::Learned::moved) pass.count(kMoved);
      // Changes go to the other workers with this batch; refreshes are marked in the table and
      // go with the next sweep (once a second, not once a frame).
      const bool changed = r == MacTable::Learned::added ||
                           r == MacTable::Learned::added_evicting || r == MacTable::Learned::moved;
      if (changed && per_worker_.size() > 1 && pw.outbox.size() < kMaxUpdates)
        pw.outbox.push_back({k, p});
    }
    Frame variants[2] = {};
    const std::uint16_t to =
        (d[0] & 1) ? MacTable::kNoPort : pw.table.lookup(MacTable::key(d, vlan));
    if (to == p) {
      ++hairpin;
    } else if (to != MacTable::kNoPort) {
      send(pass, f, to, vlan, tagged, tci, variants);
      ++forwarded;
    } else {
      for (std::uint16_t q : vlan_ports_[s_.vlan_aware ? vlan : 0])
        if (q != p) send(pass, f, q, vlan, tagged, tci, variants);
      ++flooded;
    }
    for (Frame& g : variants)
      if (g.data) Pass::release(g);
  }
  pass.count(kForwarded, forwarded);
  pass.count(kFlooded, flooded);
  pass.count(kHairpin, hairpin);
  pass.count(kReserved, reserved);
  pass.count(kVlanFiltered, filtered);
  if (pass.worker().id == 0) pass.set(kMacs, pw.table.size());  // (every worker has the table)
  share(pass, pw);
}

void BridgeSink::share(Pass& pass, PerWorker& pw) {
  if (pw.outbox.empty()) return;
  // One post per other worker and batch that learned something (not per frame): the vector
  // is copied into the handler, the only allocation on this path.
  for (Worker* other : pass.workers()) {
    if (other->id == pass.worker().id || other->id >= per_worker_.size()) continue;
    PerWorker* target = per_worker_[other->id].get();
    boost::asio::post(other->io, [this, target, updates = pw.outbox] { apply(*target, updates); });
  }
  pw.outbox.clear();
}

void BridgeSink::apply(PerWorker& pw, const std::vector<Update>& updates) {
  const std::uint32_t now = clock_();
  const std::size_t w = &pw == per_worker_[0].get() ? 0 : 1;
  for (const Update& u : updates) {
    if (u.refresh) {  // (a move this worker saw since stands)
      const std::uint16_t at = pw.table.lookup(u.key);
      if (at != MacTable::kNoPort && at != u.port) continue;
    }
    const MacTable::Learned r = pw.table.learn(u.key, u.port, now, false);
    if (fp_) fast_learn(w, r, u.key, u.port, pw.table);
  }
}

std::vector<std::vector<log::Field>> BridgeSink::state(Worker& w) const {
  const MacTable& t = per_worker_[w.id]->table;
  const std::uint32_t now = clock_();
  std::vector<std::vector<log::Field>> rows;
  t.for_each([&](const MacTable::Entry& e) {
    // With offload, worker 0 asks the kernel only when a MAC reaches `aging`: the age shown is
    // from the later of fdlinkd's last sight and the kernel's.
    std::uint32_t seen = e.seen;
    if (fp_ && w.id == 0 && !e.is_static) {
      const std::uint32_t k = std::min(fast_seen(e.key), now);
      if (k != 0 && now - k < now - seen) seen = k;
    }
    rows.push_back({{"mac", mac_text(e.key)},
                    {"vlan", MacTable::vlan_of(e.key)},
                    {"port", s_.ports[e.port]},
                    {"static", e.is_static},
                    {"age_s", e.is_static ? 0 : now - seen}});
  });
  return rows;
}

void BridgeSink::refresh_gauges(Worker& w, SinkCounters& counters) const {
  if (w.id == 0) counters.set(kMacs, per_worker_[w.id]->table.size());
}

std::size_t BridgeSink::flush_state(Worker& w) {
  PerWorker& pw = *per_worker_[w.id];
  pw.outbox.clear();
  if (!fp_ || w.id != 0) return pw.table.flush();
  pw.gone.clear();
  const std::size_t n = pw.table.flush(&pw.gone);
  for (std::uint64_t k : pw.gone)
    fast_forget(k);
  return n;
}

void BridgeSink::take_over(Sink& old_sink, Worker& w) {
  auto* old = dynamic_cast<BridgeSink*>(&old_sink);
  if (!old) return;
  std::vector<std::uint16_t> port_of(old->s_.ports.size(), MacTable::kNoPort);
  for (std::size_t p = 0; p < old->s_.ports.size(); ++p)
    for (std::size_t q = 0; q < s_.ports.size(); ++q)
      if (old->s_.ports[p] == s_.ports[q]) port_of[p] = static_cast<std::uint16_t>(q);
  MacTable& mine = per_worker_[w.id]->table;
  old->per_worker_[w.id]->table.for_each([&](const MacTable::Entry& e) {
    if (e.is_static || port_of[e.port] == MacTable::kNoPort) return;
    if (mine.lookup(e.key) == MacTable::kNoPort) {
      const MacTable::Learned r = mine.learn(e.key, port_of[e.port], e.seen);
      if (fp_) fast_learn(w.id, r, e.key, port_of[e.port], mine);
    }
  });
}

}  // namespace fdlinkd
