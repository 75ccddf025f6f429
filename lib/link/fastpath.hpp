// XdpFastPath: fdlinkd's XDP fast path (fastpath.bpf.c), the maps it reads and the instances
// attached to the interfaces of offloaded links.
//
// The runtime owns one. open() loads the program once, which creates the shared maps and
// tells whether this kernel and these capabilities allow it at all (CAP_BPF, CAP_NET_ADMIN,
// bpf_redirect_map, multi-buffer XDP). attach() loads an instance that knows its link's slot
// and attaches it to the link's interface with a BPF link (native XDP where the driver has
// it, generic otherwise): it goes away with its fd, so however fdlinkd ends, nothing of its
// own stays attached. A program someone else attached is never replaced.
//
// What the instances do is only what the maps say: a slot's row (off, forward, bridge port),
// the egress devices, a trunk's VLANs and the bridges' learned MACs. The runtime writes the
// rows from the graph (sink offload_port()); a bridge writes the MACs it learns, from one
// worker. Every call here is a bpf(2) syscall on fds that stay open for the daemon's life:
// safe from any thread.
#pragma once

#include <bitset>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "link/fastpath_maps.h"

struct bpf_link;
struct bpf_object;

namespace fdlinkd {

class Link;

/// Sends libbpf's messages to fdlinkd's log (debug) instead of stderr; once per process.
void send_libbpf_messages_to_log();
/// Sets an opened (not loaded) program's read-only globals (its .rodata) to `value`; false
/// when it has none of that size.
bool set_read_only_globals(bpf_object* obj, const void* value, std::size_t size);

class XdpFastPath {
 public:
  XdpFastPath();
  ~XdpFastPath();
  XdpFastPath(const XdpFastPath&) = delete;
  XdpFastPath& operator=(const XdpFastPath&) = delete;

  /// Loads the program and creates the maps, once; returns "" or why the fast path cannot be
  /// used here (the same answer every time).
  const std::string& open();
  bool ready() const { return template_ != nullptr; }
  /// "" when the frames the kernel drops after a redirect are counted (tx_failed: raw
  /// tracepoints, fastpath_trace.bpf.c), else why not (it takes CAP_PERFMON).
  const std::string& trace_error() const { return trace_error_; }
  /// The id of the DEVMAP of the ways out (what the kernel's tracepoints name it by); 0 before
  /// open().
  std::uint32_t tx_map_id() const { return tx_map_id_; }
  /// The fd of the tracepoint program `name` (tests run it with BPF_PROG_TEST_RUN); -1 if the
  /// tracer is not loaded.
  int trace_program_fd(const char* name) const;
  /// The program open() loaded, for slot 0, never attached (tests run it on frames with
  /// BPF_PROG_TEST_RUN); -1 before open().
  int program_fd() const;

  /// Attaches an instance for `slot` to `link`'s interface (af_packet); "" or why not.
  std::string attach(std::size_t slot, const Link& link);
  /// Takes slot's instance off its interface (its row is cleared first).
  void detach(std::size_t slot);
  bool attached(std::size_t slot) const;
  /// "native" or "generic": how slot's instance is attached ("" if it is not).
  std::string mode(std::size_t slot) const;

  /// Slot's row: what its instance does with the frames of its interface.
  bool set_port(std::size_t slot, const fdlinkd_fp_port& port);
  void clear_port(std::size_t slot);
  /// Frames redirected to `slot` leave through `ifindex` (in network namespace `netns`).
  std::string set_tx(std::size_t slot, unsigned ifindex, const std::string& netns);
  void clear_tx(std::size_t slot);
  /// A trunk port's tagged VLANs (replaces what the slot had).
  void set_vlans(std::size_t slot, const std::bitset<4096>& allowed);

  /// A bridge's learned MAC (vlan 0: a bridge without VLANs) on the port of `slot`.
  bool fdb_set(std::uint32_t bridge, std::uint16_t vlan, const std::uint8_t* mac, std::size_t slot);
  void fdb_del(std::uint32_t bridge, std::uint16_t vlan, const std::uint8_t* mac);
  /// When the program last sent on a frame from that MAC, in seconds of CLOCK_MONOTONIC (its
  /// coarse form, as the bridge's clock, has the same seconds); 0: not since fdb_set.
  std::uint32_t fdb_seen(std::uint32_t bridge, std::uint16_t vlan, const std::uint8_t* mac) const;
  /// Forgets every MAC of `bridge`.
  void fdb_clear(std::uint32_t bridge);

  /// One past the largest slot ever given a row, a way out or an instance.
  std::size_t slots_used() const { return used_; }

  /// Slot's counters, summed over the CPUs.
  fdlinkd_fp_stats stats(std::size_t slot) const;
  void reset_stats(std::size_t slot);

 private:
  struct Instance;
  void open_trace();
  /// Slot's way out as the tracepoints name it (nullopt: none).
  void set_egress(std::size_t slot, std::optional<fdlinkd_fp_egress_key> key);
  std::string error_;
  std::string trace_error_;
  bpf_object* trace_ = nullptr;         ///< fastpath_trace.bpf.c, loaded and attached
  std::vector<bpf_link*> trace_links_;  ///< its attachments
  int egress_fd_ = -1;
  std::uint32_t tx_map_id_ = 0;
  std::vector<std::optional<fdlinkd_fp_egress_key>> egress_;  ///< by slot: what it holds
  bool opened_ = false;
  bpf_object* template_ = nullptr;  ///< loaded, never attached: owns the shared maps
  int ports_fd_ = -1, tx_fd_ = -1, vlans_fd_ = -1, fdb_fd_ = -1, stats_fd_ = -1;
  std::vector<std::unique_ptr<Instance>> instances_;  ///< by slot
  std::vector<std::bitset<4096>> vlans_;              ///< by slot: what fdlinkd_fp_vlans holds
  std::size_t used_ = 0;
};

}  // namespace fdlinkd
