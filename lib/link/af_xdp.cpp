#include "link/af_xdp.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <string_view>

#include "config/link_keys.hpp"
#include "core/log.hpp"
#include "link/fastpath.hpp"
#include "link/netdev.hpp"
#include "link/rx.hpp"
#include "offload/checksum.hpp"
#include "writer/flow_hash.hpp"

namespace fdlinkd {

// The program of af_xdp.bpf.c, compiled at build time (cmake/embed.cmake).
extern const unsigned char kXdpProgram[];
extern const std::size_t kXdpProgram_size;

namespace {

std::string where(const std::string& ifname, const std::string& netns) {
  return ifname + (netns.empty() ? "" : " (netns " + netns + ")");
}

// --- keys ------------------------------------------------------------------------------------

// The keys of an af_xdp link (besides interface and promisc).
std::shared_ptr<const LinkOptions> read(TableReader& lr, LinkConfig& c) {
  auto o = std::make_shared<AfXdpOptions>();
  AfXdpOptions& l = *o;
  c.socket = true;
  read_interface(lr, c, true, true);
  if (auto v = lr.boolean("promisc")) l.promisc = *v;
  if (auto v = lr.integer("queues", 1, 64)) l.queues = c.fds = static_cast<unsigned>(*v);
  if (auto v = lr.choice("mode", {"native", "skb"})) l.xdp_skb = *v == "skb";
  if (auto v = lr.choice("zero_copy", {"auto", "on", "off"}))
    l.zero_copy = *v == "on" ? ZeroCopy::on : *v == "off" ? ZeroCopy::off : ZeroCopy::automatic;
  if (l.xdp_skb && l.zero_copy == ZeroCopy::on)
    lr.reject("zero_copy", "zero_copy = \"on\" needs mode = \"native\" (generic XDP copies)");
  const std::string why = "an af_xdp link reads its frames from AF_XDP rings, one socket per queue";
  lr.reject("fds", why + ": give queues instead");
  lr.reject("dispatch", why);
  lr.reject("vnet_hdr", why + ", and they carry no virtio-net header");
  lr.reject("gso_max_size", why + ": XDP sees no GSO super-frames");
  lr.reject("persist",
            "an af_xdp link does not take it (fdlinkd does not create the interfaces it attaches "
            "XDP to)");
  reject_backpressure(lr, "an af_xdp link is a wire");
  return o;
}

constexpr ConfigKey kKeys[] = {
    {"interface", "the interface (required)"},
    {"queues", "AF_XDP sockets on receive queues 0..queues-1 (all the interface has)"},
    {"mode", "native or skb (native)"},
    {"zero_copy", "auto, on or off (auto)"},
    {"promisc", "promiscuous mode while fdlinkd runs (true)"},
};

std::unique_ptr<Link> make(const LinkConfig& c) {
  return std::make_unique<AfXdpLink>(c);
}

// The frames of a queue's AF_XDP RX ring, where they lie in the UMEM; they go back to the
// fill ring once the batch has been sent. On a veth or TUN, a checksum the peer's stack
// offloaded is completed first, for the frames the XDP program marked (af_xdp_meta.h).
class XskRxQueue : public RxQueue {
 public:
  XskRxQueue(AfXdpLink& link, std::size_t port, Batch& batch)
      : link_(link), port_(port), limits_(rx_limits(link, batch.slot_capacity())) {}
  void attach(int fd) override {
    fd_ = fd;
    xsk_ = link_.xsk(port_);  // (a reopened link has new sockets)
    partial_ = link_.sees_unmarked_partials();
  }
  RxEnd receive(Batch& batch, CounterValues& tally) override;
  void release() override {
    if (xsk_) xsk_->release();
  }

 private:
  AfXdpLink& link_;
  std::size_t port_;
  RxLimits limits_;
  int fd_ = -1;
  XskSocket* xsk_ = nullptr;
  bool partial_ = false;
  int last_error_ = 0;
};

RxEnd XskRxQueue::receive(Batch& batch, CounterValues& tally) {
  std::uint8_t* data = nullptr;
  std::uint32_t len = 0;
  RxEnd end = RxEnd::full;
  while (batch.size() < batch.capacity()) {
    if (!xsk_->next(data, len)) {
      end = batch.empty() ? pending_error(fd_, tally, link_, port_, last_error_) : RxEnd::drained;
      break;
    }
    last_error_ = 0;
    if (partial_ && len >= limits_.min_frame && XskSocket::may_hold_partial(data))
      offload::complete_unmarked_partial(data, len, true);
    accept_frame(batch, limits_, data, len, false, tally, false);
  }
  stamp_now(batch);
  return end;
}

}  // namespace

const LinkType AfXdpLink::kType = {
    {"af_xdp", "an existing interface through AF_XDP sockets and fdlinkd's XDP program", kKeys,
     read},
    make,
    AfXdpLink::plan_shared_umem,
    true};

std::unique_ptr<RxQueue> AfXdpLink::make_rx_queue(std::size_t port, Worker&, Batch& batch) {
  return std::make_unique<XskRxQueue>(*this, port, batch);
}

bpf_object* open_xdp_program(unsigned queues, bool mark_partials) {
  bpf_object_open_opts oo{};
  oo.sz = sizeof oo;
  oo.object_name = "fdlinkd_xdp";
  bpf_object* obj = bpf_object__open_mem(kXdpProgram, kXdpProgram_size, &oo);
  if (!obj) throw LinkError("cannot open fdlinkd's XDP program: " + errno_text(errno));
  bpf_map* map = bpf_object__find_map_by_name(obj, kXdpSocketMap);
  // fdlinkd_mark_partials, the program's one read-only global (.rodata, set before loading).
  const __u32 mark = mark_partials ? 1 : 0;
  if (!map || !bpf_object__find_program_by_name(obj, kXdpProgramName) ||
      !set_read_only_globals(obj, &mark, sizeof mark)) {
    bpf_object__close(obj);
    throw LinkError("fdlinkd's XDP program is not the one it was built with");
  }
  bpf_map__set_max_entries(map, queues);
  return obj;
}

bpf_object* load_xdp_program(unsigned queues, bool mark_partials, bool& marks) {
  marks = mark_partials;
  bpf_object* obj = open_xdp_program(queues, mark_partials);
  if (bpf_object__load(obj) == 0) return obj;
  int err = errno;
  bpf_object__close(obj);
  if (mark_partials && err == EINVAL) {  // (the verifier refused it: once more, unmarked)
    marks = false;
    obj = open_xdp_program(queues, false);
    if (bpf_object__load(obj) == 0) return obj;
    err = errno;
    bpf_object__close(obj);
  }
  errno = err;
  return nullptr;
}

AfXdpLink::~AfXdpLink() {
  close_retired();
  for (std::size_t i = 0; i < ports_.size(); ++i)
    close_port(i);
  xsks_.clear();
  detach_program();
}

void AfXdpLink::close_retired() {
  Link::close_retired();
  // Retired (down) or never opened: the sockets, the program and the promiscuous mode go.
  // (No worker touches them while the link is down: transmit stops at is_down(), and the
  // dispatchers were detached.)
  if (has_fds()) return;
  xsks_.clear();
  detach_program();
  if (promisc_fd_ >= 0) ::close(promisc_fd_);
  promisc_fd_ = -1;
}

void AfXdpLink::detach_program() {
  if (bpf_link_fd_ >= 0) ::close(bpf_link_fd_);  // the program leaves the interface
  bpf_link_fd_ = -1;
  if (program_) bpf_object__close(program_);
  program_ = nullptr;
  map_fd_ = -1;
}

void AfXdpLink::attach_program(unsigned queues, bool mark_partials) {
  send_libbpf_messages_to_log();
  const std::string on = where(config_.interface, config_.netns);

  // Someone else's program: fdlinkd does not replace it.
  __u32 id = 0;
  if (bpf_xdp_query_id(static_cast<int>(ifindex_), 0, &id) == 0 && id != 0)
    throw LinkError("interface " + on + " already has an XDP program (id " + std::to_string(id) +
                    "), and fdlinkd does not replace another program: see `bpftool net` or `ip "
                    "link show " +
                    config_.interface + "`, and detach it (`ip link set dev " + config_.interface +
                    " xdp off`) if nothing needs it");

  bool marks = false;
  program_ = load_xdp_program(queues, mark_partials, marks);
  if (!program_) {
    const int err = errno;
    throw LinkError("cannot load fdlinkd's XDP program for " + on + ": " +
                    errno_text(err, "CAP_BPF and CAP_NET_ADMIN (or CAP_SYS_ADMIN)") +
                    (err == EPERM ? "; under systemd, install examples/af_xdp.conf as a drop-in; "
                                    "a seccomp filter that forbids bpf(2) says the same"
                                  : ""));
  }
  if (mark_partials && !marks)
    log::warn("af_xdp_no_marks",
              "this kernel refused the XDP program's checksum marks (bpf_xdp_adjust_meta): "
              "loaded without them, fdlinkd checks every frame it receives for an unfinished "
              "checksum itself, which costs more per frame",
              {{"link", name()}, {"interface", config_.interface}});
  map_fd_ = bpf_map__fd(bpf_object__find_map_by_name(program_, kXdpSocketMap));

  bpf_link_create_opts lo{};
  lo.sz = sizeof lo;
  lo.flags = o_.xdp_skb ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
  const int fd =
      bpf_link_create(bpf_program__fd(bpf_object__find_program_by_name(program_, kXdpProgramName)),
                      static_cast<int>(ifindex_), BPF_XDP, &lo);
  if (fd < 0) {
    const int err = errno;
    std::string what = "cannot attach XDP to " + on + " in " + (o_.xdp_skb ? "skb" : "native") +
                       " mode: " + errno_text(err, "CAP_NET_ADMIN and CAP_BPF");
    if (err == ERANGE)
      what +=
          " (its MTU, or its veth peer's, is larger than XDP allows without multi-buffer, "
          "about 3.5 KB on veth: lower it, e.g. `ip link set dev PEER mtu 1500`)";
    else if (err == EOPNOTSUPP)
      what += " (its driver has no native XDP: set mode = \"skb\")";
    else if (err == EBUSY || err == EEXIST)
      what += " (another XDP program is attached: see `bpftool net`)";
    else if (err == EINVAL && !o_.xdp_skb)
      what += " (the driver refused it; mode = \"skb\" works with any driver)";
    throw LinkError(what);
  }
  bpf_link_fd_ = fd;
}

// The most queues a link reads: it has at most 64 fds (Link::spread's bit mask).
constexpr unsigned kMaxQueues = 64;

void AfXdpLink::plan_shared_umem(const Config& config) {
  std::size_t sockets = 0;
  for (const auto& lc : config.links) {
    if (lc.type != &kType) continue;
    const AfXdpOptions& o = lc.options_as<AfXdpOptions>();
    const unsigned q = o.queues ? o.queues : lc.netns.empty() ? netdev::rx_queues(lc.interface) : 1;
    sockets += q > kMaxQueues ? kMaxQueues : q;
  }
  XskArea::get().plan(sockets);
}

void AfXdpLink::open_fds() {
  const std::string& ifname = config_.interface;
  ifindex_ = existing_ifindex();
  unsigned queues = o_.queues ? o_.queues : netdev::rx_queues(ifname);
  if (queues > kMaxQueues) {  // (only the default can ask for more)
    log::warn("af_xdp_queues", "the interface has more receive queues than a link can read",
              {{"link", name()}, {"interface", ifname}, {"queues", queues}, {"used", kMaxQueues}});
    queues = kMaxQueues;
  }
  if (queues != ports_.size()) {
    if (ever_opened_)
      throw LinkError("interface " + ifname + " now has " + std::to_string(queues) + " queues, " +
                      std::to_string(ports_.size()) +
                      " when the link opened: restart fdlinkd to follow it");
    resize_ports(queues);  // (first open: no dispatcher exists yet)
  }
  ever_opened_ = true;

  const std::string driver = netdev::driver_of(ifname);
  local_peer_ = driver == "veth" || driver == "tun";
  attach_program(queues, local_peer_);
  if (o_.promisc) {
    promisc_fd_ = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);  // receives nothing
    packet_mreq mr{};
    mr.mr_ifindex = static_cast<int>(ifindex_);
    mr.mr_type = PACKET_MR_PROMISC;
    if (promisc_fd_ < 0 ||
        ::setsockopt(promisc_fd_, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) != 0)
      throw LinkError("cannot put " + ifname +
                      " in promiscuous mode: " + errno_text(errno, "CAP_NET_ADMIN"));
  }
  bool copy = false, shared = true;
  unsigned budget = 0;
  for (unsigned q = 0; q < queues; ++q) {
    auto s = std::make_unique<XskSocket>(ifname, q, o_.zero_copy);
    const int fd = s->fd();
    if (bpf_map_update_elem(map_fd_, &q, &fd, BPF_ANY) != 0)
      throw LinkError("cannot enter the AF_XDP socket of queue " + std::to_string(q) +
                      " in the XSKMAP: " + errno_text(errno));
    const int watched = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);  // (the dispatcher's; xsks_ owns fd)
    if (watched < 0) throw LinkError("dup of an AF_XDP socket: " + errno_text(errno));
    ports_[q]->fd = watched;
    copy = copy || !s->zero_copy();
    shared = shared && s->shared();
    budget = s->kick_budget();
    xsks_.push_back(std::move(s));
  }
  log::info("af_xdp_attached", "XDP program attached, AF_XDP sockets bound",
            {{"link", name()},
             {"interface", ifname},
             {"driver", driver},
             {"mode", o_.xdp_skb ? "skb" : "native"},
             {"queues", queues},
             {"zero_copy", !copy},
             {"shared_umem", shared},
             {"tx_kick_budget", budget}});
  if (driver == "veth" && !o_.xdp_skb)
    log::info("af_xdp_veth",
              "native XDP on a veth: its peer no longer makes GSO super-frames (the kernel "
              "turns software GSO off), and its MTU may not exceed about 3.5 KB while fdlinkd "
              "runs",
              {{"link", name()}, {"interface", ifname}});
  const unsigned if_mtu = netdev::mtu_of(ifname);
  if (if_mtu != 0 && if_mtu != config_.mtu)
    log::warn(
        "link_mtu", "interface MTU differs from the link's mtu: bigger frames are dropped",
        {{"link", name()}, {"interface", ifname}, {"interface_mtu", if_mtu}, {"mtu", config_.mtu}});
}

void AfXdpLink::send_batch(Worker& w, Batch& batch) {
  const std::size_t n = ports_.size();
  for (std::uint64_t used = spread(batch, n, config_.layer == Layer::ethernet); used != 0;
       used &= used - 1) {
    const auto q = static_cast<std::size_t>(std::countr_zero(used));
    CounterValues tally;
    XskSocket* s = ports_[q]->fd.load(std::memory_order_relaxed) >= 0 ? xsk(q) : nullptr;
    const int select = n > 1 ? static_cast<int>(q) : -1;
    if (s) {
      s->send(batch, select, tally);
    } else {
      for (std::size_t i = 0; i < batch.size(); ++i)
        if (batch.goes_to(i, select)) ++tally.drop(DropReason::link_down);
    }
    counters(w.id, q).add(tally);
  }
}

void AfXdpLink::collect_kernel_counters() {
  for (std::size_t q = 0; q < ports_.size(); ++q)
    if (XskSocket* s = ports_[q]->fd.load(std::memory_order_relaxed) >= 0 ? xsk(q) : nullptr)
      kernel_counters_[q].add(s->kernel_drops());
}

}  // namespace fdlinkd
