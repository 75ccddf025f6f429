// bridge: an L2 learning switch over its member links (its ports).
//
//   [[sink]]
//   name = "sw"
//   type = "bridge"
//   ports = ["a", "b", "c", "t"]   # member links, in output order; their frames come here
//   aging = "300s"                 # a learned MAC not seen for this long is forgotten ("0s":
//   never) max_macs = 8192                # table limit (per worker; see below) static = [{ mac =
//   "02:00:00:00:00:01", port = "a" }]   # optional; `vlan` = N too [sink.vlans] # optional;
//   without it the bridge ignores VLAN tags a = { access = 10 }            # untagged on the wire,
//   VLAN 10 inside t = { trunk = [10, 20], native = 1 }   # tagged 10 and 20; untagged = VLAN 1
//
// Per frame: the VLAN it belongs to is found from the ingress port's mode (an access port takes
// untagged and priority-tagged frames; a trunk port its allowed tags, and untagged frames for
// its native VLAN; anything else is `vlan_filtered`). Frames to 01:80:C2:00:00:0x (STP, LACP,
// LLDP: link-local by IEEE 802.1D) are never forwarded (`reserved`). The source MAC (unicast,
// not zero) is learned for (MAC, VLAN) on the ingress port; a MAC seen on another port moves at
// once (`moved`). A known unicast destination goes to its port (never back out of the ingress
// port: `hairpin`); anything else is flooded to the other ports of the same VLAN. On the way
// out, the tag is pushed, rewritten or popped as the egress port's mode says, on a copy.
//
// Table full: the least recently seen entry of the port with the most MACs is evicted (Open
// vSwitch's policy: a port flooding random sources evicts its own entries first), `evicted`.
// Static entries are never aged, moved or evicted.
//
// With several workers there is no lock on the per-frame path: each worker has a table of its
// own; what one worker learns (a new MAC or a move) is posted, once per batch, to the others'
// io_contexts and applied there. A frame a worker has not heard of yet is flooded meanwhile,
// as any switch floods an unknown destination. Refreshes go once a second, with each
// worker's sweep: the MACs its frames showed again, so that a MAC talking only through one
// worker's links does not age out of the others' tables.
//
// offload = "xdp" (link/fastpath.hpp): worker 0 enters each MAC the bridge learns (and takes
// out each one it forgets) in the fast path's table, and the kernel forwards known unicast
// between the ports whose links are on interfaces; what it forwards, fdlinkd does not see.
// So before worker 0 ages a MAC out it asks the kernel when its program last forwarded a
// frame from it: a MAC that talks there stays, and the refresh is posted to the other
// workers (which age theirs 2 s later, so that worker 0 decides first).
// Flooding, learning, moves and everything else stay here.
//
// Counters: learned, moved, evicted, aged, forwarded, flooded, hairpin, reserved,
// vlan_filtered, not_member, no_buffer, macs (the table size on worker 0). SIGUSR1 logs the
// table as `fdb` events.
#pragma once

#include <array>
#include <bitset>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "sink/sink.hpp"

namespace fdlinkd {

/// A MAC table keyed by (MAC, VLAN): open addressing, allocated once, single-threaded.
class MacTable {
 public:
  static constexpr std::uint16_t kNoPort = 0xFFFF;
  enum class Learned { refreshed, added, moved, added_evicting, kept_static };
  struct Entry {
    std::uint64_t key = 0;   ///< MAC in the low 48 bits, VLAN above; 0: empty slot
    std::uint32_t seen = 0;  ///< when last seen (seconds, the caller's clock)
    std::uint16_t port = 0;
    bool is_static = false;
    bool heard = false;  ///< refreshed by a frame here since take_heard() last looked
  };

  MacTable(std::size_t max_macs, std::size_t ports);

  static std::uint64_t key(const std::uint8_t* mac, std::uint16_t vlan);
  static std::uint16_t vlan_of(std::uint64_t key) {
    return static_cast<std::uint16_t>(key >> 48) & 0xFFF;
  }

  /// The port (MAC, VLAN) was learned on, or kNoPort.
  std::uint16_t lookup(std::uint64_t key) const;
  /// Records that `key` was seen on `port` at `now`. `heard`: by a frame here (a refresh is
  /// marked for take_heard), not by another worker's word.
  Learned learn(std::uint64_t key, std::uint16_t port, std::uint32_t now, bool heard = true);
  /// Calls f(entry) for each entry refreshed here (heard) since the last call, and clears its
  /// mark; when f returns false it stops, and the rest wait for the next call.
  template <class F>
  void take_heard(F&& f) {
    for (Entry& e : slots_)
      if (e.key && e.heard) {
        if (!f(static_cast<const Entry&>(e))) return;
        e.heard = false;
      }
  }
  void add_static(std::uint64_t key, std::uint16_t port);
  /// Forgets entries not seen since `now - aging`; returns how many (their keys into `gone`).
  /// `seen_elsewhere`, if given, is asked about each entry before it goes: when its MAC was
  /// last seen where this table does not look (the kernel's fast path; 0: not). An entry seen
  /// there within `aging` stays, as seen then (and heard).
  std::size_t age(std::uint32_t now, std::uint32_t aging,
                  std::vector<std::uint64_t>* gone = nullptr,
                  const std::function<std::uint32_t(const Entry&)>& seen_elsewhere = {});
  /// Forgets every learned (not static) entry; returns how many (their keys into `gone`).
  std::size_t flush(std::vector<std::uint64_t>* gone = nullptr);
  /// The key the last learn() that returned added_evicting evicted.
  std::uint64_t last_evicted() const { return last_evicted_; }

  std::size_t size() const { return size_; }
  std::size_t macs_on(std::uint16_t port) const { return per_port_[port]; }
  template <class F>
  void for_each(F&& f) const {
    for (const Entry& e : slots_)
      if (e.key) f(e);
  }

 private:
  std::size_t slot_of(std::uint64_t key) const;
  void erase_at(std::size_t i);
  /// Makes room: the least recently seen non-static entry of the port with the most MACs.
  void evict();

  std::vector<Entry> slots_;
  std::size_t mask_;
  std::size_t size_ = 0;
  std::size_t max_;
  std::uint64_t last_evicted_ = 0;
  std::vector<std::uint32_t> per_port_;
};

/// A bridge port's VLAN membership.
struct BridgePortVlans {
  enum class Mode : std::uint8_t { none, access, trunk } mode = Mode::none;
  std::uint16_t pvid = 0;     ///< access: its VLAN
  std::uint16_t native = 0;   ///< trunk: VLAN of untagged frames (0: untagged refused)
  std::bitset<4096> allowed;  ///< trunk: tagged VLANs it carries
};

struct BridgeSettings {
  std::vector<std::string> ports;
  std::uint32_t aging_s = 300;  ///< 0: never
  std::size_t max_macs = 8192;
  bool vlan_aware = false;
  std::vector<BridgePortVlans> vlans;  ///< per port, when vlan_aware
  bool offload = false;                ///< offload = "xdp"
  struct Static {
    std::array<std::uint8_t, 6> mac;
    std::uint16_t vlan;
    std::uint16_t port;
  };
  std::vector<Static> statics;
};

class BridgeSink : public Sink {
 public:
  /// `link_port[i]`: the port of link i (config order), or MacTable::kNoPort. With
  /// `fastpath` (offload = "xdp"), worker 0 enters what the bridge learns there as bridge
  /// `fastpath_id`.
  BridgeSink(BridgeSettings settings, std::vector<std::uint16_t> link_port, unsigned workers,
             XdpFastPath* fastpath = nullptr, std::uint32_t fastpath_id = 0);
  ~BridgeSink() override;

  void process(Pass& pass, Batch& in) override;
  std::span<const std::string_view> counter_names() const override;
  std::vector<std::vector<log::Field>> state(Worker& w) const override;
  std::size_t flush_state(Worker& w) override;
  void refresh_gauges(Worker& w, SinkCounters& counters) const override;
  bool has_state() const override { return true; }
  bool is_gauge(std::size_t i) const override;
  /// Takes over the learned entries of `old` (a BridgeSink) on ports of the same name.
  void take_over(Sink& old, Worker& w) override;
  bool offloads() const override { return s_.offload; }
  OffloadPlan offload_plan(std::size_t ingress) const override;

  /// The table worker `w` keeps (tests look at it between batches).
  const MacTable& table(std::size_t w) const;
  /// The clock aging counts in (seconds; CLOCK_MONOTONIC_COARSE unless a test sets its own).
  using Clock = std::uint32_t (*)();
  void set_clock(Clock c) { clock_ = c; }

  static const SinkType kType;

 private:
  struct PerWorker;
  struct Update {
    std::uint64_t key;
    std::uint16_t port;
    bool refresh = false;  ///< only seen again: not applied over a move the worker saw since
  };
  /// Sends frame `f` (VLAN `vlan`, tagged as `tag` says) out of port `q`, as that port's mode
  /// wants it tagged; variants are made once per frame, on copies.
  void send(Pass& pass, Frame& f, std::uint16_t q, std::uint16_t vlan, bool tagged,
            std::uint16_t tci, Frame* variants);
  void apply(PerWorker& pw, const std::vector<Update>& updates);
  /// Worker 0, with a fast path: (MAC, VLAN) `key` is now on `port` (or gone: kNoPort).
  void fast_learn(std::size_t w, MacTable::Learned r, std::uint64_t key, std::uint16_t port,
                  const MacTable& table);
  void fast_forget(std::uint64_t key);
  /// When the kernel last forwarded a frame from `key` (seconds, now_s's clock; 0: not).
  std::uint32_t fast_seen(std::uint64_t key) const;
  /// The VLAN of `key` in the fast path's table (0 for a bridge without VLANs).
  std::uint16_t fast_vlan(std::uint64_t key) const {
    return s_.vlan_aware ? MacTable::vlan_of(key) : 0;
  }
  void share(Pass& pass, PerWorker& pw);

  BridgeSettings s_;
  std::vector<std::uint16_t> link_port_;
  std::vector<std::vector<std::uint16_t>> vlan_ports_;  ///< per VLAN (4096, or 1 if unaware)
  std::vector<std::unique_ptr<PerWorker>> per_worker_;
  std::vector<std::size_t> port_link_;  ///< per port: its link's index
  XdpFastPath* fp_ = nullptr;
  std::uint32_t fp_id_ = 0;
  Clock clock_;
};

}  // namespace fdlinkd
