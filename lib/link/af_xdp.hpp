// af_xdp: frames of an existing interface through AF_XDP sockets, one per receive queue.
//
// Opening: fdlinkd loads its own XDP program (af_xdp.bpf.c, built into the daemon), which
// redirects each frame of a queue to that queue's socket through an XSKMAP, and frames of
// other queues to the kernel's stack. It attaches it with a BPF link (Linux 5.9+) in the
// driver (mode = "native", the default) or in generic mode (mode = "skb"). A BPF link goes
// away with its fd: however fdlinkd ends, even killed, no program stays on the interface.
// fdlinkd never replaces a program someone else attached: that is a clear error.
//
// Then one XskSocket per queue (queues, default all the interface has), bound with need_wakeup
// and zero copy where the driver can (zero_copy = "auto"; "on" requires it, "off" never asks).
// Each socket's fd is what its dispatcher waits on (a dup: the socket itself belongs to the
// XskSocket). With promisc = true (the default) an AF_PACKET socket that receives nothing
// holds the interface in promiscuous mode; the kernel drops that when it closes.
//
// Frames are read where they lie in the UMEM (no copy) and sent by copying them into the
// egress queue's UMEM, or, from one af_xdp link to another in copy mode, where they lie
// (xsk.hpp: the sockets share one memory area). They carry no virtio-net header: frames that still
// need a checksum or segmentation are finished in software on their way out (writer/egress.hpp).
//
// Receiving: XskRxQueue reads the frames of a queue's RX ring where they lie in the UMEM, and
// gives them back to the fill ring once the batch has been sent.
//
// Keys: interface (required), queues, mode, zero_copy, promisc.
#pragma once

#include <memory>
#include <vector>

#include "link/link.hpp"
#include "link/link_types.hpp"
#include "link/xsk.hpp"

struct bpf_object;

namespace fdlinkd {

/// The names of the program and of its XSKMAP in af_xdp.bpf.c.
inline constexpr const char* kXdpProgramName = "fdlinkd_xsk";
inline constexpr const char* kXdpSocketMap = "fdlinkd_xsks";

/// fdlinkd's XDP program (af_xdp.bpf.c), opened from the daemon's own bytes and set up for
/// `queues` sockets, marking frames whose checksum may be unfinished when `mark_partials`
/// (af_xdp_meta.h); not loaded yet (bpf_object__load). Throws LinkError.
bpf_object* open_xdp_program(unsigned queues, bool mark_partials);

/// open_xdp_program() and bpf_object__load(). Where the kernel refuses the marking (some
/// kernels do not let an XDP program call bpf_xdp_adjust_meta: "program of this type cannot
/// use helper"), loads the program without it: `marks` says which was loaded. nullptr with
/// errno set when neither loads. Throws LinkError as open_xdp_program().
bpf_object* load_xdp_program(unsigned queues, bool mark_partials, bool& marks);

struct AfXdpOptions : LinkOptions {
  bool promisc = true;
  /// One AF_XDP socket per receive queue 0..queues-1 (0: all of the interface's).
  unsigned queues = 0;
  bool xdp_skb = false;  ///< mode = "skb": generic XDP (any driver) instead of the driver's
  ZeroCopy zero_copy = ZeroCopy::automatic;
};

class AfXdpLink : public Link {
 public:
  static const LinkType kType;

  explicit AfXdpLink(const LinkConfig& config)
      : Link(config), o_(config_.options_as<AfXdpOptions>()) {}
  ~AfXdpLink() override;

  /// Plans the memory the config's af_xdp sockets share (XskArea): one slot per queue it will
  /// bind (`queues`, or what the interface has; 1 for an interface in another namespace).
  static void plan_shared_umem(const Config& config);
  std::unique_ptr<RxQueue> make_rx_queue(std::size_t port, Worker& w, Batch& batch) override;
  std::string_view reader_name() const override { return "af_xdp"; }

  /// Queue `port`'s socket (nullptr while the link is down and closed).
  XskSocket* xsk(std::size_t port) const {
    return port < xsks_.size() ? xsks_[port].get() : nullptr;
  }
  unsigned ifindex() const override { return ifindex_; }
  /// Whether frames may come with an offloaded checksum left unfinished and unmarked: on a
  /// veth or a TUN/TAP device, XDP sees what a local stack sent, before any checksum is done
  /// (offload/checksum.hpp: complete_unmarked_partial). Wire NICs deliver finished frames.
  bool sees_unmarked_partials() const { return local_peer_; }
  void send_batch(Worker& w, Batch& batch) override;
  void collect_kernel_counters() override;
  void close_retired() override;

 protected:
  void open_fds() override;

 private:
  /// Loads the XDP program, sized for `queues`, and attaches it to ifindex_. With
  /// `mark_partials`, the program marks the frames whose checksum may be unfinished
  /// (af_xdp_meta.h).
  void attach_program(unsigned queues, bool mark_partials);
  void detach_program();

  const AfXdpOptions& o_;
  unsigned ifindex_ = 0;
  bpf_object* program_ = nullptr;
  int bpf_link_fd_ = -1;  ///< the attachment; closing it detaches the program
  int map_fd_ = -1;       ///< the XSKMAP (owned by program_)
  int promisc_fd_ = -1;
  bool ever_opened_ = false;  ///< the queues (ports) are fixed from the first open on
  bool local_peer_ = false;   ///< a veth or TUN/TAP (sees_unmarked_partials)
  std::vector<std::unique_ptr<XskSocket>> xsks_;
};

}  // namespace fdlinkd
