// Config: the typed, validated form of /etc/fdlinkd.toml.
//
// load_config() parses and checks everything (syntax, types, ranges, unknown keys, names that
// must exist, modes an fd kind cannot do) and returns either a Config or every error found,
// each as `path:line:col: message`. Nothing is opened here: `--check-config` runs only this.
//
// Files: config.cpp (the file, [[link]] and [[sink]] tables, their common keys), daemon.cpp
// ([daemon]), link_keys.cpp (keys several link types share), graph_check.cpp (names, the
// stage graph), limits.cpp (what no real config exceeds). Each link and sink type reads its
// own keys in its own file (kinds.hpp).
#pragma once

#include <toml++/toml.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/daemon.hpp"
#include "config/kinds.hpp"
#include "config/reader.hpp"
#include "core/log.hpp"

namespace fdlinkd {

enum class Layer { ethernet, ip };  ///< what a frame starts with
/// How a link's fds are read by the readers links share (link/rx.hpp): one frame per readv
/// (any fd), a batch per recvmmsg (sockets), or a PACKET_MMAP ring (af_packet).
enum class DispatchMode { readv, recvmmsg, packet_mmap };

std::string_view dispatch_mode_name(DispatchMode m);

struct LinkConfig {
  // --- the keys every link has -------------------------------------------------------------
  std::string name;
  const LinkKind* type = nullptr;  ///< its `type`: a row of the link type table
  std::string sink;
  std::string netns;       ///< open the fds inside this network namespace
  unsigned mtu = 1500;     ///< L3 MTU; an Ethernet frame may be mtu + 18 (header and VLAN tag)
  unsigned rx_batch = 64;  ///< frames read per batch

  // --- what its type made of its own keys, as far as the other stages need it ---------------
  /// The interface the link follows: it goes down with it and comes back with it. "": none.
  std::string interface;
  Layer layer = Layer::ethernet;
  unsigned fds = 1;  ///< fds (ports) the link reads and writes; a type may decide at open
  DispatchMode dispatch = DispatchMode::readv;
  bool socket = true;  ///< its fds are sockets (recvmmsg, sendmmsg), not character devices
  /// Checksum offload and GSO super-frames pass to and from the fds with a virtio-net header
  /// instead of being finished in software.
  bool vnet_hdr = false;
  /// Every read and write carries a virtio-net header, whatever vnet_hdr says (AF_PACKET: on
  /// receive it is how the kernel says that a frame's checksum is unfinished or that it is a
  /// GSO super-frame).
  bool vnet_always = false;
  /// The fds may deliver GSO super-frames without a header of their own (a vxlan link's socket
  /// gets a kernel VTEP's tunnel GSO datagrams whole).
  bool gso_rx = false;
  /// Largest GSO super-frame accepted on receive.
  std::uint32_t gso_max_size = 65536;
  /// Back-pressure (unix, and tap/tun when set): frames kept per worker and fd while the local
  /// peer is full, instead of dropped; 0: drop (tx_queue_full) as on a wire.
  unsigned tx_backlog = 0;
  /// How long a full peer may hold up the links that feed it before fdlinkd stops waiting for
  /// it (and drops what does not fit in the backlog) until it takes frames again.
  std::chrono::milliseconds tx_stall_timeout{1000};
  /// The type's own keys (each type derives its own options struct).
  std::shared_ptr<const LinkOptions> options;

  /// `vlans`: how it is a port of the bridge it sends to ({ access = 10 }, { trunk = [..] }),
  /// for a link that joins a bridge from a file of its own.
  std::shared_ptr<const toml::table> port_vlans;
  toml::source_region port_vlans_where;

  toml::source_region where;       ///< the [[link]] table
  toml::source_region name_where;  ///< its `name` key
  toml::source_region sink_where;  ///< its `sink` key
  /// The [[link]] table as written, without `sink`: equal settings mean equal fds, so a reload
  /// keeps the link open.
  std::string settings;

  std::string_view type_name() const { return type ? type->name : std::string_view("?"); }
  /// The file it is written in (the main file, or one that file includes).
  std::string file() const { return where.path ? *where.path : std::string(); }
  /// The type's options, as the type that made them.
  template <class T>
  const T& options_as() const {
    return static_cast<const T&>(*options);
  }
  /// Largest frame this link puts on the wire, link header included.
  std::size_t wire_capacity() const { return layer == Layer::ethernet ? mtu + 18 : mtu; }
  /// Whether every read and write on this link's fds carries a virtio-net header.
  bool vnet_fd() const { return vnet_always || vnet_hdr; }
  /// Largest frame this link may receive: GSO super-frames where the fd can deliver them.
  std::size_t rx_capacity() const {
    const bool gso = vnet_fd() || gso_rx;
    return gso && gso_max_size > wire_capacity() ? gso_max_size : wire_capacity();
  }
};

struct SinkConfig {
  std::string name;
  const SinkKind* type = nullptr;  ///< a row of the sink type table
  std::shared_ptr<const SinkOptions> options;
  toml::source_region where;
  toml::source_region name_where;  ///< its `name` key
  /// The [[sink]] table as written: equal settings mean a reload keeps the sink (and its state).
  std::string settings;
};

struct Config {
  std::string path;
  std::vector<std::string> files;  ///< the files read: path, then what [daemon] include named
  DaemonConfig daemon;
  std::vector<LinkConfig> links;
  std::vector<SinkConfig> sinks;

  const LinkConfig* find_link(std::string_view name) const;
  /// The largest frame any link puts on the wire, and the largest any receives (what the
  /// workers' buffers are sized for).
  std::size_t max_wire_capacity() const;
  std::size_t max_rx_capacity() const;
  const SinkConfig* find_sink(std::string_view name) const;
};

struct ConfigResult {
  std::optional<Config> config;
  std::vector<ConfigError> errors;  ///< empty when config is set; at most ConfigErrors::kMaxKept
  std::size_t error_count = 0;      ///< how many errors there were in all
  /// The file's log_format, when it could be read (text otherwise): errors are reported in it.
  log::Format log_format = log::Format::text;
};

/// Reads and validates a config file whose link and sink types are `kinds`.
ConfigResult load_config(const std::string& path, const ConfigKinds& kinds);
/// The same for text in memory; `path` is used in messages.
ConfigResult parse_config(std::string_view text, const std::string& path, const ConfigKinds& kinds);

}  // namespace fdlinkd
