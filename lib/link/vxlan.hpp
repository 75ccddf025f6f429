// vxlan: a VXLAN tunnel endpoint (RFC 7348) that talks to the Linux kernel's VXLAN, Open vSwitch
// and the rest: the link's frames are the inner Ethernet frames; its fd is a UDP socket bound to
// `local`:`port` (4789; a Linux `ip link add ... type vxlan` without `dstport` uses 8472).
//
// Receiving: each datagram is an 8-byte VXLAN header and the inner frame, read with recvmmsg
// straight into a batch slot (the header lands in the slot's headroom, the frame where a frame
// starts: no copy). The header must carry the I flag alone and the link's `vni`; otherwise the
// datagram is counted (vxlan_bad_header, vxlan_unknown_vni) and skipped. With `learning`, the
// inner source MAC is learned as behind the VTEP that sent it (aged out after 300 s).
//
// Sending: a frame whose destination MAC was learned goes to that VTEP; broadcast, multicast
// and unknown unicast go to each of `remotes` (head-end replication). The VXLAN header is one
// constant 8 bytes every datagram's first iovec points at; the kernel adds UDP and IP (and the
// UDP checksum). A batch goes out with sendmmsg. Consecutive frames of one size for the same
// VTEPs (the segments of a TCP super-frame) go as one UDP GSO send (UDP_SEGMENT): the kernel
// runs its UDP/IP path once for up to 64 datagrams and cuts them apart at the device. The UDP
// source port follows the inner flow (one of 16 sockets, by flow hash), so that the underlay's
// ECMP and RSS spread flows and keep each in order; the kernel's VXLAN does the same.
//
// Inner VLAN tags (RFC 7348 6.1), unless inner_vlan = "keep": left out of frames going into the
// tunnel, and a tagged frame coming out of it is dropped (vxlan_inner_vlan).
//
// Several VNIs on one port: vxlan links on the same address, port and interface (in the same
// namespace) share one receiving socket (VxlanSocket), each holding a dup of it. Whichever
// link's receive queue reads a datagram hands it to the link with its VNI (VxlanRxQueue: its
// member table); a VNI no link has is vxlan_unknown_vni. Their dispatchers run on one worker,
// so a flow's datagrams stay in order.
//
// Keys: vni (required), local (required), port, remotes, learning, ttl, udp_checksum, inner_vlan,
// source_ports, interface (the underlay device to bind to), plus the common link keys.
#pragma once

#include <sys/socket.h>

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "link/link.hpp"
#include "link/link_types.hpp"

namespace fdlinkd {

class VxlanLink;

struct VxlanOptions : LinkOptions {
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
  std::string interface;          ///< the underlay device to send through ("" : any)
  toml::source_region vni_where;  ///< its `vni` key
  bool ipv6() const { return local.find(':') != std::string::npos; }
};

/// The UDP socket vxlan links on one address and port receive on, and who they are.
class VxlanSocket {
 public:
  VxlanSocket(int fd, std::string key) : fd_(fd), key_(std::move(key)) {}
  ~VxlanSocket();
  VxlanSocket(const VxlanSocket&) = delete;
  VxlanSocket& operator=(const VxlanSocket&) = delete;
  int fd() const { return fd_; }
  /// The links on it now (control thread changes it; a dispatcher copies it between batches).
  std::vector<VxlanLink*> members() const;
  /// The member with VNI `vni`, or nullptr.
  VxlanLink* member(std::uint32_t vni) const;
  void join(VxlanLink* link);
  void leave(VxlanLink* link);

 private:
  int fd_;
  std::string key_;
  mutable std::mutex mutex_;
  std::vector<VxlanLink*> members_;
};

class VxlanLink : public Link {
 public:
  static const LinkType kType;

  static constexpr std::size_t kHeaderLen = 8;
  static constexpr std::uint8_t kFlagI = 0x08;   ///< "a valid VNI" (RFC 7348 5.)
  static constexpr std::size_t kMaxVteps = 256;  ///< static remotes and learned ones
  static constexpr std::size_t kMacSlots = 4096;

  explicit VxlanLink(const LinkConfig& config);
  ~VxlanLink() override;
  static constexpr std::size_t kSourcePorts = 16;  ///< sending sockets, at most

  /// What vxlan links that share one receiving socket have in common (namespace, address in
  /// its canonical text, port, interface): links with the same key share it.
  static std::string socket_key(const LinkConfig& config);

  std::uint32_t vni() const { return o_.vni; }
  const VxlanOptions& options() const { return o_; }
  std::unique_ptr<RxQueue> make_rx_queue(std::size_t port, Worker& w, Batch& batch) override;
  std::string_view reader_name() const override { return "recvmmsg"; }
  std::string describe() const override;
  /// The socket it receives on, shared with the other vxlan links on its address and port.
  const VxlanSocket* socket() const { return rx_.get(); }
  const void* rx_group() const override { return rx_.get(); }
  void close_retired() override;
  /// The UDP source ports it sends from (bound when it opens).
  std::vector<std::uint16_t> source_ports() const;

  /// RFC 7348 5: the I flag alone, reserved fields zero.
  static bool header_ok(const std::uint8_t* vxh) {
    return vxh[0] == kFlagI && vxh[1] == 0 && vxh[2] == 0 && vxh[3] == 0 && vxh[7] == 0;
  }
  static std::uint32_t vni_of(const std::uint8_t* vxh) {
    return std::uint32_t{vxh[4]} << 16 | std::uint32_t{vxh[5]} << 8 | vxh[6];
  }

  /// Checks a received datagram: its VXLAN header `vxh`, the inner frame (`len` bytes at
  /// `frame`) and who sent it; learns the inner source MAC. nullopt: the frame goes on.
  /// `worker`: the reading thread (per-remote counters).
  std::optional<DropReason> check_rx(const std::uint8_t* vxh, const sockaddr_storage& from,
                                     const std::uint8_t* frame, std::size_t len,
                                     std::size_t worker = 0);
  /// What went to and came from each VTEP (datagrams and their inner bytes), summed over the
  /// workers; static remotes first, then learned ones.
  std::vector<RemoteStats> remote_stats() const override;
  bool has_remotes() const override { return true; }
  /// The VTEP a MAC was learned behind, as "address" (for fdb output), or "".
  std::string remote_of(const std::uint8_t* mac) const override;

 protected:
  void open_fds() override;
  void send_batch(Worker& w, Batch& batch) override;

 private:
  /// The VTEP index `mac` was learned behind, or -1.
  int lookup(const std::uint8_t* mac) const;
  void learn(const std::uint8_t* mac, const sockaddr_storage& from);
  /// The index of VTEP `addr` (the port set to the link's), added if new; -1 when full.
  int vtep_index(const sockaddr_storage& addr);

  const VxlanOptions& o_;
  int family_;
  std::array<std::uint8_t, kHeaderLen> header_{};  ///< what every datagram starts with
  // VTEPs: static remotes first; learned ones appended (never changed once published).
  std::unique_ptr<sockaddr_storage[]> vteps_;
  std::atomic<std::size_t> vtep_count_{0};
  std::size_t static_count_ = 0;
  std::mutex vtep_mutex_;  ///< adding a VTEP (rare: a new one learned)
  struct MacSlot {
    std::atomic<std::uint64_t> key{0};  ///< the MAC + 1; 0: free
    std::atomic<std::uint32_t> vtep{0};
    std::atomic<std::int64_t> seen{0};  ///< CLOCK_MONOTONIC_COARSE, s
  };
  std::unique_ptr<MacSlot[]> macs_;
  /// Where frame `f` goes: a VTEP index, kFlood (every static remote) or kNobody.
  int destination(const Frame& f) const;
  static constexpr int kFlood = -1, kNobody = -2;

  // Per worker: the arrays one sendmmsg of (replicated, GSO) datagrams needs.
  struct Control {
    alignas(cmsghdr) std::uint8_t buf[CMSG_SPACE(sizeof(std::uint16_t))];
  };
  struct Scratch {
    std::vector<mmsghdr> msgs;
    std::vector<iovec> iov;
    std::vector<Control> control;      ///< per message: UDP_SEGMENT for a GSO send
    std::vector<std::uint32_t> frame;  ///< per message: its first frame in the batch
    std::vector<std::uint32_t> count;  ///< and how many frames it carries
    std::vector<std::uint16_t> vtep;   ///< and where it goes
    std::vector<std::uint8_t> first;   ///< its first copy (what the link's counters count)
    std::vector<int> dest;             ///< per frame of the batch: destination()
    std::vector<std::uint8_t> via;     ///< and its sending socket (by flow hash)
    std::vector<std::uint8_t> strip;   ///< and whether its VLAN tag is left out
    std::vector<std::uint32_t> len;    ///< and its length as sent
  };
  std::vector<Scratch> scratch_;
  // Per worker and VTEP: what was sent there and received from there (one writer each).
  struct alignas(64) RemoteCounters {
    std::atomic<std::uint64_t> tx_packets{0}, tx_bytes{0}, rx_packets{0}, rx_bytes{0};
  };
  std::unique_ptr<RemoteCounters[]> remote_counters_;  ///< [worker * kMaxVteps + vtep]
  std::vector<std::size_t> rx_last_;  ///< per worker: the VTEP the last datagram came from
  RemoteCounters* remote(std::size_t worker, std::size_t vtep) {
    return remote_counters_ ? &remote_counters_[worker * kMaxVteps + vtep] : nullptr;
  }
  /// The sending sockets, one per source port (in source_ports); ports_[0]'s fd, a dup of
  /// rx_'s, receives.
  std::array<int, kSourcePorts> tx_fds_;
  std::size_t tx_count_ = 0;
  /// How many ports source_ports holds.
  std::uint32_t source_span() const {
    return std::uint32_t{o_.source_port_max} - o_.source_port_min + 1;
  }
  void close_tx_fds();
  /// Joins (or makes) the receiving socket of its address and port; returns a dup of it.
  int join_socket();
  void leave_socket();
  /// A UDP socket with the link's options, bound to `local`:`port`; with port 0, to one of
  /// the source ports from `from` on (and `port` is set to it).
  int make_socket(std::uint16_t& port, bool source, std::uint32_t from = 0);
  std::shared_ptr<VxlanSocket> rx_;
  std::atomic<bool> gso_{true};  ///< UDP GSO works here (off after the kernel refused it)
};

}  // namespace fdlinkd
