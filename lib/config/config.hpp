// Config: the typed, validated form of /etc/fdlinkd.toml.
//
// load_config() parses and checks everything (syntax, types, ranges, unknown keys, names that
// must exist, modes an fd kind cannot do) and returns either a Config or every error found,
// each as `path:line:col: message`. Nothing is opened here: `--check-config` runs only this.
#pragma once

#include <toml++/toml.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/reader.hpp"
#include "core/log.hpp"
#include "sink/sink.hpp"

namespace fdlinkd {

/// $RUNTIME_DIRECTORY/control.sock (systemd sets it to /run/fdlinkd), else
/// /run/fdlinkd/control.sock.
std::string default_control_socket();

struct DaemonConfig {
  unsigned workers = 1;
  std::chrono::microseconds stats_interval = std::chrono::seconds(10);
  log::Level log_level = log::Level::info;
  log::Format log_format = log::Format::text;
  std::vector<unsigned> cpu_affinity;  ///< worker i runs on cpu_affinity[i % size]; empty: any
  /// After it last had work, a worker keeps polling its fds for this long before it sleeps:
  /// the next frame is read without a wake-up (latency), at the price of the CPU spun. 0: off.
  std::chrono::microseconds busy_poll{0};
  /// busy_poll = "always": a worker never sleeps; it polls its fds all the time, as a DPDK
  /// lcore does (a CPU per worker spins), so no frame waits for a wake-up.
  bool busy_poll_always = false;
  /// The control socket fdlinkctl talks to ("" : none); default_control_socket() when unset.
  std::string control_socket = default_control_socket();
  std::string control_group;  ///< group that may use the control socket (mode 0660); "" : 0600
  int control_gid = -1;       ///< control_group resolved when the config is read
  /// Prometheus endpoint, "host:port" ("" : off). `metrics = true` means 127.0.0.1:9469.
  std::string metrics;

  /// The settings a reload cannot change (the threads and their CPUs), as "key = value"; the
  /// first one that differs from `other`, or "".
  std::string restart_needed(const DaemonConfig& other) const;
};

enum class LinkType { af_packet, af_xdp, tap, tun, unix_socket, vxlan };
enum class Layer { ethernet, ip };  ///< what a frame starts with
enum class DispatchMode { readv, recvmmsg, packet_mmap };
/// PACKET_FANOUT modes: how the kernel spreads an interface's frames over a link's fds.
enum class Fanout { hash, lb, cpu, rollover, rnd, qm };
enum class UnixSocket { seqpacket, dgram, stream };
/// af_xdp: whether the AF_XDP sockets bind in zero-copy mode.
enum class ZeroCopy { automatic, on, off };

std::string_view link_type_name(LinkType t);
std::string_view dispatch_mode_name(DispatchMode m);
std::string_view fanout_name(Fanout f);
Layer link_layer(LinkType t);
bool is_socket(LinkType t);

/// PACKET_MMAP rings of an af_packet link ([link.ring]).
struct RingConfig {
  // RX: TPACKET_V3, frames packed into blocks; a block goes to fdlinkd when full or when
  // block_timeout passes, so the timeout bounds the latency at low rates. version = 2:
  // TPACKET_V2, one slot of frame_size per frame, each handed over as it lands (a frame larger
  // than a slot comes through the socket's queue instead).
  //
  // At a low rate every block_timeout retires a block holding a few frames, so the ring holds
  // block_count timeouts of traffic while a worker is away, whatever its size in bytes: 16
  // blocks lost frames at 20 kpps when a worker stalled for 25-30 ms (a busy host), where a
  // socket's 4 MiB queue (readv, recvmmsg) took 200 ms. 64 blocks of 128 KiB (8 MiB per fd)
  // took 100 ms; a block still holds a 64 KiB GSO super-frame.
  unsigned version = 3;
  std::uint32_t block_size = 128 * 1024;
  std::uint32_t block_count = 64;
  std::uint32_t frame_size = 2048;
  std::chrono::milliseconds block_timeout{1};
  // TX: TPACKET_V2, fixed slots of the smallest power of two that holds a frame.
  // A slot is free again only when the receiver has freed the frame, so a slow receiver holds
  // slots: 512 dropped 3% of a TCP stream's frames in bench/, 4096 none (8 MiB per worker).
  std::uint32_t tx_frame_count = 4096;
};

struct LinkConfig {
  std::string name;
  LinkType type = LinkType::af_packet;
  std::string interface;  ///< af_packet, af_xdp, tap, tun
  std::string path;       ///< unix
  UnixSocket socket = UnixSocket::seqpacket;
  std::string peer;             ///< unix dgram: where frames are sent (else: the last sender)
  bool connect = false;         ///< unix stream: fdlinkd connects to `path` (else it listens)
  unsigned socket_mode = 0600;  ///< unix: mode of the socket file, whatever the umask
  std::string socket_group;     ///< unix: group of the socket file (empty: fdlinkd's)
  int socket_gid = -1;          ///< socket_group resolved when the config is read
  std::string netns;            ///< open the fds inside this network namespace
  // vxlan (RFC 7348): the link's frames are the inner Ethernet frames of a UDP tunnel.
  std::uint32_t vni = 0;
  std::string local;                 ///< underlay address the UDP socket binds (IPv4 or IPv6)
  std::uint16_t port = 4789;         ///< UDP port, local and remote
  std::vector<std::string> remotes;  ///< VTEPs that get broadcast, multicast, unknown unicast
  bool learning = true;              ///< inner source MAC -> the VTEP it came from
  unsigned ttl = 64;
  /// udp_checksum = "zero": send UDP checksum 0; over IPv6 also accept it (RFC 6935/6936)
  bool udp_zero_checksum = false;
  toml::source_region udp_checksum_where;
  bool inner_vlan_keep = false;  ///< inner_vlan = "keep": inner VLAN tags pass (else: out)
  /// The UDP source ports datagrams leave from, inclusive (by inner flow hash).
  std::uint16_t source_port_min = 49152, source_port_max = 65535;
  toml::source_region vni_where;  ///< its `vni` key
  bool ipv6() const { return local.find(':') != std::string::npos; }
  /// vxlan: what links sharing one receiving socket have in common (namespace, address, port,
  /// interface); links with the same key share it and are told apart by VNI.
  std::string vxlan_socket_key() const;
  // af_xdp: one AF_XDP socket per receive queue 0..queues-1 (0: all of the interface's).
  unsigned queues = 0;
  bool xdp_skb = false;  ///< mode = "skb": generic XDP (any driver) instead of the driver's
  ZeroCopy zero_copy = ZeroCopy::automatic;
  unsigned fds = 1;
  DispatchMode dispatch = DispatchMode::readv;
  unsigned rx_batch = 64;  ///< frames read per batch
  /// Back-pressure (unix, and tap/tun when set): frames kept per worker and fd while the local
  /// peer is full, instead of dropped; 0: drop (tx_queue_full) as on a wire.
  unsigned tx_backlog = 0;
  /// How long a full peer may hold up the links that feed it before fdlinkd stops waiting for
  /// it (and drops what does not fit in the backlog) until it takes frames again.
  std::chrono::milliseconds tx_stall_timeout{1000};
  unsigned mtu = 1500;   ///< L3 MTU; an Ethernet frame may be mtu + 18 (header and VLAN tag)
  bool promisc = true;   ///< af_packet: put the interface in promiscuous mode
  bool persist = false;  ///< tap/tun: keep the device after fdlinkd exits
  Fanout fanout = Fanout::hash;  ///< af_packet with fds > 1
  bool tx_ring = false;          ///< af_packet: transmit through TPACKET_V2 TX rings
  bool qdisc_bypass = false;     ///< af_packet: PACKET_QDISC_BYPASS on transmit
  RingConfig ring;
  /// tap/tun/af_packet: hand checksum offload and GSO super-frames to the kernel with a
  /// virtio-net header (IFF_VNET_HDR, PACKET_VNET_HDR) instead of finishing them in software.
  /// af_packet without the key: true unless qdisc_bypass or tx_ring is (they cannot take them).
  bool vnet_hdr = false;
  /// af_packet with vnet_hdr: TCP segments of one flow in a batch leave as one GSO
  /// super-frame (writer/coalesce.hpp), as behind the kernel's GRO.
  bool gro = false;
  /// tap/tun with vnet_hdr: what the device may hand fdlinkd (TUNSETOFFLOAD).
  bool offload_csum = true, offload_tso4 = true, offload_tso6 = true;
  bool offload_uso = false;  ///< UDP GSO (USO4 and USO6 together; kernel 6.2+)
  /// Largest GSO super-frame accepted on receive (links that can get them: af_packet, vnet).
  std::uint32_t gso_max_size = 65536;
  std::string sink;
  toml::source_region where;       ///< the [[link]] table
  toml::source_region name_where;  ///< its `name` key
  toml::source_region sink_where;  ///< its `sink` key
  /// The [[link]] table as written, without `sink`: equal settings mean equal fds, so a reload
  /// keeps the link open.
  std::string settings;

  Layer layer() const { return link_layer(type); }
  /// Largest frame this link puts on the wire, link header included.
  std::size_t frame_capacity() const { return layer() == Layer::ethernet ? mtu + 18 : mtu; }
  /// Whether every read and write on this link's fds carries a virtio-net header. AF_PACKET
  /// sockets always do (PACKET_VNET_HDR): on receive it is how the kernel says that a frame's
  /// checksum is unfinished or that it is a GSO super-frame.
  bool vnet_fd() const { return type == LinkType::af_packet || vnet_hdr; }
  /// Largest frame this link may receive: GSO super-frames where the fd can deliver them (a
  /// vxlan link's socket gets a kernel VTEP's tunnel GSO datagrams whole).
  std::size_t rx_capacity() const {
    const bool gso = vnet_fd() || type == LinkType::vxlan;
    return gso && gso_max_size > frame_capacity() ? gso_max_size : frame_capacity();
  }
};

struct SinkConfig {
  std::string name;
  const SinkType* type = nullptr;
  std::shared_ptr<const SinkOptions> options;
  toml::source_region where;
  toml::source_region name_where;  ///< its `name` key
  /// The [[sink]] table as written: equal settings mean a reload keeps the sink (and its state).
  std::string settings;
};

struct Config {
  std::string path;
  DaemonConfig daemon;
  std::vector<LinkConfig> links;
  std::vector<SinkConfig> sinks;

  const LinkConfig* find_link(std::string_view name) const;
  /// The largest frame any link puts on the wire, and the largest any receives (what the
  /// workers' buffers are sized for).
  std::size_t max_frame_capacity() const;
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

/// Reads and validates a config file.
ConfigResult load_config(const std::string& path);
/// The same for text in memory; `path` is used in messages.
ConfigResult parse_config(std::string_view text, const std::string& path);

}  // namespace fdlinkd
