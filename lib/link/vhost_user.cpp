#include "link/vhost_user.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bit>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstring>

#include "config/link_keys.hpp"
#include "core/log.hpp"
#include "link/rx.hpp"
#include "link/unix_path.hpp"
#include "writer/backlog.hpp"
#include "writer/flow_hash.hpp"

namespace fdlinkd {

namespace asio = boost::asio;
using virtio::bit;

namespace {

// Frames kept per worker and queue pair for a full guest: 4 batches of 64.
constexpr unsigned kDefaultBacklog = 256;

std::shared_ptr<const LinkOptions> read(TableReader& r, LinkConfig& l) {
  auto o = std::make_shared<VhostUserOptions>();
  l.socket = false;
  l.vnet_always = true;  // every frame crosses with a virtio-net header
  o->path = read_socket_path(r, "path", true);
  if (auto v = r.boolean("client")) o->client = *v;
  if (auto v = r.integer("queues", 1, 64)) o->queues = static_cast<unsigned>(*v);
  if (auto v = r.boolean("offloads")) o->offloads = *v;
  if (o->client) {
    for (auto k : {"socket_mode", "socket_group"})
      r.reject(k, "fdlinkd does not make the socket it connects to (client = true)");
  } else {
    read_socket_file(r, o->file);
  }
  l.fds = o->queues;
  r.reject("interface", "a vhost_user link has a socket (path), not an interface");
  r.reject("fds", "a vhost_user link has a port per queue pair: use queues");
  r.reject("dispatch", "a vhost_user link reads the guest's rings");
  r.reject("vnet_hdr",
           "a vhost_user link always carries virtio-net headers; offloads says whether "
           "checksum offload and TSO are offered to the guest");
  read_gso_max_size(r, l);
  read_backpressure(r, l, kDefaultBacklog);
  return o;
}

constexpr ConfigKey kKeys[] = {
    {"path", "the vhost-user socket (required)"},
    {"client", "fdlinkd connects to path and reconnects (false: it listens)"},
    {"queues", "queue pairs offered to the guest, with MQ (1)"},
    {"offloads", "offer checksum offload and TSO both ways (true)"},
    {"socket_mode", "mode of the socket file (0600)"},
    {"socket_group", "group of the socket file"},
    {"gso_max_size", "largest TSO super-frame taken from the guest (64KiB)"},
    {"tx_backlog", "frames kept per worker while the guest is full (256)"},
    {"tx_stall_timeout", "a guest that takes nothing this long stops holding back (1s)"},
};

std::unique_ptr<Link> make(const LinkConfig& c) {
  return std::make_unique<VhostUserLink>(c);
}

struct FeatureName {
  unsigned bit;
  const char* name;
};
constexpr FeatureName kFeatureNames[] = {
    {virtio::kNetCsum, "CSUM"},
    {virtio::kNetGuestCsum, "GUEST_CSUM"},
    {virtio::kNetGuestTso4, "GUEST_TSO4"},
    {virtio::kNetGuestTso6, "GUEST_TSO6"},
    {virtio::kNetGuestEcn, "GUEST_ECN"},
    {virtio::kNetHostTso4, "HOST_TSO4"},
    {virtio::kNetHostTso6, "HOST_TSO6"},
    {virtio::kNetHostEcn, "HOST_ECN"},
    {virtio::kNetMrgRxbuf, "MRG_RXBUF"},
    {virtio::kNetCtrlVq, "CTRL_VQ"},
    {virtio::kNetMq, "MQ"},
    {virtio::kAnyLayout, "ANY_LAYOUT"},
    {virtio::kRingIndirectDesc, "INDIRECT_DESC"},
    {virtio::kRingEventIdx, "EVENT_IDX"},
    {virtio::kProtocolFeatures, "PROTOCOL_FEATURES"},
    {virtio::kVersion1, "VERSION_1"},
    {virtio::kRingPacked, "RING_PACKED"},
    {virtio::kInOrder, "IN_ORDER"},
};

std::string feature_names(std::uint64_t f) {
  std::string s;
  for (const auto& n : kFeatureNames)
    if (f & bit(n.bit)) s += (s.empty() ? "" : " ") + std::string(n.name);
  return s;
}

const char* queue_state(const VirtQueue& q) {
  if (q.broken) return "broken";
  if (!q.started) return "stopped";
  return q.enabled ? "enabled" : "disabled";
}

// The frames of a guest's transmit queue (its pair's odd queue), read by the pair's dispatcher:
// the port's fd is an epoll fd holding the queue's kick eventfd and the link's own wake-up.
class VirtqRxQueue : public RxQueue {
 public:
  VirtqRxQueue(VhostUserLink& link, std::size_t pair, Batch& batch)
      : link_(link), pair_(pair), limits_(rx_limits(link, batch.slot_capacity())) {}
  void attach(int fd) override {
    epfd_ = fd;
    woken_ = true;
  }
  RxEnd receive(Batch& batch, CounterValues& tally) override {
    if (woken_) {  // take the wake-up's events off the epoll fd (they need no reading)
      epoll_event ev[4];
      while (::epoll_wait(epfd_, ev, 4, 0) == 4) {
      }
      woken_ = false;
    }
    const std::size_t index = 2 * pair_ + 1;
    VirtQueue& vq = link_.device().vq(index);
    RxEnd end = RxEnd::drained;
    {
      std::lock_guard lock(vq.mutex);  // (before the guest access: a fault skips nothing)
      if (vq.started && !vq.broken && vq.mapped()) {
        fault_ = VqFault::none;
        const std::size_t hdr_len = link_.device().header_len();
        const bool discard = !vq.enabled;
        if (!guarded(
                [&] { end_ = take_frames(vq, batch, limits_, hdr_len, discard, tally, fault_); })) {
          fault_ = VqFault::memory_fault;
          end_ = RxEnd::drained;
        }
        end = end_;
        if (fault_ != VqFault::none) link_.frontend_fault(index, fault_);
      }
    }
    if (end == RxEnd::drained) woken_ = true;
    stamp_now(batch);
    return end;
  }

 private:
  VhostUserLink& link_;
  std::size_t pair_;
  RxLimits limits_;
  int epfd_ = -1;
  bool woken_ = true;
  // Written inside the guest access and read after it: in memory, not in registers.
  VqFault fault_ = VqFault::none;
  RxEnd end_ = RxEnd::drained;
};

}  // namespace

const LinkType VhostUserLink::kType = {
    {"vhost_user", "a VM or DPDK application's virtio-net device, through vhost-user", kKeys, read},
    make};

VhostUserLink::VhostUserLink(const LinkConfig& config)
    : Link(config),
      o_(config_.options_as<VhostUserOptions>()),
      device_(o_.queues, o_.offloads, *this),
      wake_fds_(o_.queues, -1),
      watched_kick_(2 * o_.queues, -1),
      rx_kick_(o_.queues, -1),
      tx_fault_(o_.queues, VqFault::none) {
  set_workers(workers_);
}

VhostUserLink::~VhostUserLink() {
  stopping_ = true;
  if (acceptor_) acceptor_->release();
  if (conn_) conn_->release();
  device_.reset();  // (before the members its hooks use go)
  if (const int fd = conn_fd_.exchange(-1); fd >= 0) ::close(fd);
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (bound_) ::unlink(o_.path.c_str());
  for (int fd : wake_fds_)
    if (fd >= 0) ::close(fd);
}

std::string VhostUserLink::describe() const {
  return "vhost_user " + o_.path + (o_.client ? " (client)" : "") +
         (config_.netns.empty() ? "" : " (netns " + config_.netns + ")");
}

std::unique_ptr<RxQueue> VhostUserLink::make_rx_queue(std::size_t port, Worker&, Batch& batch) {
  return std::make_unique<VirtqRxQueue>(*this, port, batch);
}

void VhostUserLink::open_fds() {
  for (std::size_t q = 0; q < ports_.size(); ++q) {
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) throw LinkError("epoll_create1: " + errno_text(errno));
    ports_[q]->fd = ep;
    if (wake_fds_[q] < 0) wake_fds_[q] = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fds_[q] < 0) throw LinkError("eventfd: " + errno_text(errno));
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLET;
    ev.data.fd = wake_fds_[q];
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, wake_fds_[q], &ev) != 0)
      throw LinkError("epoll_ctl: " + errno_text(errno));
  }
  if (o_.client) return;  // start() connects
  listen_fd_ = systemd_socket(o_.path, SOCK_STREAM);
  if (listen_fd_ >= 0) {
    from_systemd_ = true;
    log::info("vhost_user_socket_from_systemd", "listening on the socket systemd made",
              {{"link", name()}, {"path", o_.path}});
    return;
  }
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw LinkError("unix socket: " + errno_text(errno));
  bind_unix_path(listen_fd_, o_.path, SOCK_STREAM, o_.file);
  bound_ = true;
  if (::listen(listen_fd_, 4) != 0)
    throw LinkError("cannot listen on " + o_.path + ": " + errno_text(errno));
}

void VhostUserLink::start(const std::vector<PortReader*>& readers) {
  Link::start(readers);  // each pair's dispatcher waits on its epoll fd from now on
  reader_ = readers[0];
  // The connection is handled on reader 0's thread, as stop() is.
  asio::post(reader_->io(), [this] {
    if (stopping_) return;
    if (o_.client) {
      retry_ = std::make_unique<asio::steady_timer>(reader_->io());
      try_connect();
      return;
    }
    acceptor_ = std::make_unique<asio::posix::stream_descriptor>(reader_->io(), listen_fd_);
    accept_frontend();  // one may be waiting already: the edge-triggered wait would miss it
    wait_for_frontend();
  });
}

void VhostUserLink::stop() {
  stopping_ = true;
  if (retry_) retry_->cancel();
  boost::system::error_code ec;
  if (acceptor_) {
    acceptor_->cancel(ec);
    acceptor_->release();
    acceptor_.reset();
  }
  end_session("", "");
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
  if (bound_) ::unlink(o_.path.c_str());
  bound_ = false;
}

// --- the connection ---------------------------------------------------------------------------

void VhostUserLink::wait_for_frontend() {
  acceptor_->async_wait(asio::posix::stream_descriptor::wait_read,
                        [this](const boost::system::error_code& ec) {
                          if (ec || stopping_) return;
                          accept_frontend();
                          wait_for_frontend();
                        });
}

void VhostUserLink::accept_frontend() {
  for (;;) {
    int err = 0;
    const int fd = accept_unix(listen_fd_, err);
    if (fd < 0) {
      if (err != 0)
        log::warn("vhost_user_accept_failed", "accept failed",
                  {{"link", name()}, {"error", errno_text(err)}});
      return;
    }
    if (conn_fd_.load() >= 0) {
      log::warn("vhost_user_frontend_refused", "a frontend is already connected; refusing another",
                {{"link", name()}, {"path", o_.path}});
      ::close(fd);
      continue;
    }
    begin_session(fd);
  }
}

void VhostUserLink::try_connect() {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int err = fd < 0 ? errno : 0;
  // A unix stream connect completes at once or fails (EAGAIN: the listener's backlog is full;
  // tried again later like any other failure).
  if (fd >= 0 && (err = connect_unix_path(fd, o_.path)) != 0) ::close(fd);
  if (err != 0) {
    if (err != connect_error_)  // once per kind of failure, not per attempt
      log::warn("vhost_user_connect_failed", "cannot connect to the frontend; trying again",
                {{"link", name()},
                 {"path", o_.path},
                 {"error", errno_text(err)},
                 {"retry_ms", backoff_.count()}});
    connect_error_ = err;
    retry_connect(backoff_);
    backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(5000));
    return;
  }
  connect_error_ = 0;
  backoff_ = std::chrono::milliseconds(100);
  begin_session(fd);
}

void VhostUserLink::retry_connect(std::chrono::milliseconds after) {
  retry_->expires_after(after);
  retry_->async_wait([this](const boost::system::error_code& ec) {
    if (!ec && !stopping_) try_connect();
  });
}

void VhostUserLink::begin_session(int fd) {
  conn_fd_ = fd;
  session_ = ++sessions_;
  reader_state_.reset();
  connects_.fetch_add(1, std::memory_order_relaxed);
  conn_ = std::make_unique<asio::posix::stream_descriptor>(reader_->io(), fd);
  log::info("vhost_user_connected", o_.client ? "connected to the frontend" : "frontend connected",
            {{"link", name()}, {"path", o_.path}});
  read_messages();
}

void VhostUserLink::read_messages() {
  const int session = session_.load();
  for (;;) {
    const int fd = conn_fd_.load();
    if (fd < 0) return;
    const VhostReader::Step step = reader_state_.read(fd);
    if (step == VhostReader::Step::again) {
      conn_->async_wait(asio::posix::stream_descriptor::wait_read,
                        [this, session](const boost::system::error_code& ec) {
                          if (ec || stopping_ || session != session_.load()) return;
                          read_messages();
                        });
      return;
    }
    if (step == VhostReader::Step::closed) {
      end_session("", "");
      return;
    }
    if (step == VhostReader::Step::error) {
      end_session("the frontend sent " + reader_state_.error(), "bad_message");
      return;
    }
    const VhostMessage m = reader_state_.message();
    VhostDevice::Reply reply;
    const std::string why = device_.handle(m, reply);
    log::debug("vhost_user_message", "message from the frontend",
               {{"link", name()}, {"request", vhost_request_name(m.request)}});
    if (reply.send && !send_reply(m.request, reply)) {
      end_session("cannot reply to the frontend: " + errno_text(errno), "bad_message");
      return;
    }
    if (!why.empty()) {
      end_session(why, "bad_message");
      return;
    }
    if (m.request == vhost::kSetFeatures)
      log::info("vhost_user_features", "the guest's driver took its features",
                {{"link", name()}, {"features", feature_names(device_.features())}});
  }
}

bool VhostUserLink::send_reply(std::uint32_t request, const VhostDevice::Reply& r) {
  std::uint8_t buf[vhost::kHeaderSize + sizeof r.payload];
  const std::uint32_t flags = vhost::kVersion | vhost::kReplyFlag;
  std::memcpy(buf, &request, 4);
  std::memcpy(buf + 4, &flags, 4);
  std::memcpy(buf + 8, &r.size, 4);
  std::memcpy(buf + vhost::kHeaderSize, r.payload, r.size);
  const std::size_t len = vhost::kHeaderSize + r.size;
  // The frontend waits for the reply: its socket buffer has room for a few dozen bytes. One
  // that does not read its replies is reset.
  const ssize_t n = ::send(conn_fd_.load(), buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
  return n == static_cast<ssize_t>(len);
}

void VhostUserLink::end_session(const std::string& why, std::string_view reason) {
  if (conn_fd_.load() < 0) return;
  if (!why.empty()) {
    log::warn("vhost_user_frontend_reset", why + "; the connection is reset",
              {{"link", name()}, {"path", o_.path}, {"reason", reason}});
    if (reason == "bad_message") reset_bad_message_.fetch_add(1, std::memory_order_relaxed);
  } else if (!stopping_) {
    log::info("vhost_user_disconnected",
              o_.client ? "the frontend went away; connecting again"
                        : "the frontend went away; waiting for the next one",
              {{"link", name()}, {"path", o_.path}});
  }
  session_ = -1;    // senders see no peer from now on
  device_.reset();  // (under every queue's mutex: no sender or reader is in one after it)
  if (conn_) {
    boost::system::error_code ec;
    conn_->cancel(ec);
    conn_->release();
    conn_.reset();
  }
  ::close(conn_fd_.exchange(-1));
  reader_state_.reset();
  if (o_.client && !stopping_ && retry_) {
    backoff_ = std::chrono::milliseconds(100);
    retry_connect(backoff_);
  }
}

void VhostUserLink::frontend_fault(std::size_t vq, VqFault fault) {
  VirtQueue& q = device_.vq(vq);
  if (q.broken) return;
  q.broken = true;
  q.update_live();
  reset_fault_[static_cast<std::size_t>(fault)].fetch_add(1, std::memory_order_relaxed);
  log::warn("vhost_user_frontend_fault",
            "the frontend broke the rules of a queue (" + std::string(vq_fault_name(fault)) +
                "); resetting it",
            {{"link", name()}, {"queue", vq}, {"fault", vq_fault_name(fault)}});
  // The control thread sees the connection end and resets the device (it cannot close the
  // fd before it has every queue's mutex, and this one is held).
  if (const int fd = conn_fd_.load(); fd >= 0) ::shutdown(fd, SHUT_RDWR);
}

// --- VhostHooks (control thread) ---------------------------------------------------------------

void VhostUserLink::kick_changed(std::size_t vq, int fd) {
  const std::size_t pair = vq / 2;
  if (vq % 2 == 0) {  // a receive queue: the guest kicks it when it adds buffers
    std::lock_guard lock(device_.vq(vq).mutex);
    rx_kick_[pair] = fd;
    return;
  }
  const int ep = ports_[pair]->fd.load();
  if (watched_kick_[vq] >= 0 && ep >= 0) ::epoll_ctl(ep, EPOLL_CTL_DEL, watched_kick_[vq], nullptr);
  watched_kick_[vq] = -1;
  if (fd < 0 || ep < 0) return;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.fd = fd;
  if (::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0) watched_kick_[vq] = fd;
}

void VhostUserLink::queue_woken(std::size_t vq) {
  if (vq % 2 == 0) return;
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_fds_[vq / 2], &one, sizeof one);
}

// --- sending to the guest ---------------------------------------------------------------------

EgressCaps VhostUserLink::egress_caps() const {
  const std::uint64_t f = device_.features();
  EgressCaps c;
  c.vnet_fd = true;
  c.l2 = true;
  c.wire_capacity = config_.wire_capacity();
  c.passthrough = f & bit(virtio::kNetGuestCsum);
  c.gso_tcp4 = f & bit(virtio::kNetGuestTso4);
  c.gso_tcp6 = f & bit(virtio::kNetGuestTso6);
  c.gso_ecn = f & bit(virtio::kNetGuestEcn);
  c.gso_udp = false;  // (GUEST_USO is not offered)
  return c;
}

void VhostUserLink::send_batch(Worker& w, Batch& batch) {
  const std::size_t n = ports_.size();
  if (n == 1) {
    send_on_pair(w, batch, 0, -1);
    return;
  }
  // Spread over the pairs whose receive queue is ready (a guest may use fewer than offered).
  std::size_t live[64];
  std::size_t k = 0;
  for (std::size_t q = 0; q < n; ++q)
    if (device_.vq(2 * q).live.load(std::memory_order_relaxed)) live[k++] = q;
  if (k <= 1) {
    send_on_pair(w, batch, k == 1 ? live[0] : 0, -1);
    return;
  }
  for (std::uint64_t used = spread(batch, k, true); used != 0; used &= used - 1) {
    const auto j = static_cast<std::size_t>(std::countr_zero(used));
    send_on_pair(w, batch, live[j], static_cast<int>(j));
  }
}

namespace {

// Writes what waits in `backlog` into the guest's buffers, oldest first, until they run out.
// Returns how many left the backlog (sent, or dropped as too_big).
std::size_t deliver_backlog(VirtQueue& vq, TxBacklog& backlog, bool mergeable, CounterValues& tally,
                            VqFault& fault) {
  std::size_t n = 0;
  for (; n < backlog.size(); ++n) {
    const TxBacklog::Entry e = backlog.at(n);
    const PutResult r =
        put_frame(vq, e.data, e.hdr_len, mergeable, e.data + e.hdr_len, e.len - e.hdr_len, fault);
    if (r == PutResult::sent) {
      ++tally.tx_packets;
      tally.tx_bytes += e.len - e.hdr_len;
    } else if (r == PutResult::too_big) {
      ++tally.drop(DropReason::too_big);
    } else {
      break;
    }
  }
  backlog.pop(n);
  return n;
}

}  // namespace

void VhostUserLink::send_on_pair(Worker& w, Batch& batch, std::size_t q, int select) {
  CounterValues tally;
  TxQueue* tq = backpressure_.queue(w, q);
  VirtQueue& vq = device_.vq(2 * q);
  const int session = session_.load();
  bool wait = false;
  {
    std::lock_guard lock(vq.mutex);  // (before the guest access: a fault skips nothing)
    if (tq && !tq->backlog.empty() && (session < 0 || tq->watched_fd != session))
      drop_backlog(tq->backlog, DropReason::no_peer, tally);  // (for an earlier frontend)
    if (session < 0 || !vq.ready()) {
      for (std::size_t i = 0; i < batch.size(); ++i)
        if (batch.goes_to(i, select)) ++tally.drop(DropReason::no_peer);
    } else {
      const bool mrg = device_.has(virtio::kNetMrgRxbuf);
      const std::size_t hl = device_.header_len();
      VqFault& fault = tx_fault_[q];
      fault = VqFault::none;
      const bool done = guarded([&] {
        vq.suppress_kicks();  // (it kicks when it adds buffers only once asked: arm_room)
        if (tq && !tq->backlog.empty())
          tq->sent += deliver_backlog(vq, tq->backlog, mrg, tally, fault);
        std::uint8_t hdr[12];
        for (std::size_t i = 0; i < batch.size() && fault == VqFault::none; ++i) {
          if (!batch.goes_to(i, select)) continue;
          const Frame& f = batch[i];
          std::memcpy(hdr, &batch.tx_header(i), sizeof(VirtioNetHdr));
          hdr[10] = 1;  // num_buffers (MRG_RXBUF: put_frame writes the count)
          hdr[11] = 0;
          PutResult r = PutResult::ring_full;
          if (!tq || tq->backlog.empty()) r = put_frame(vq, hdr, hl, mrg, f.data, f.len, fault);
          if (r == PutResult::sent) {
            ++tally.tx_packets;
            tally.tx_bytes += f.len;
          } else if (r == PutResult::too_big) {
            ++tally.drop(DropReason::too_big);
          } else if (r == PutResult::ring_full) {
            if (!tq)
              ++tally.drop(DropReason::tx_queue_full);
            else if (!tq->backlog.push(hdr, hl, f.data, f.len))
              ++tally.drop(DropReason::tx_backlog_full);
          }
        }
        vq.publish_used();
        vq.call_if_needed();
      });
      if (!done) fault = VqFault::memory_fault;
      if (fault != VqFault::none) frontend_fault(2 * q, fault);
      wait = tq && !tq->backlog.empty() && fault == VqFault::none;
    }
  }
  if (wait) backpressure_.hold_back(*tq, q, session);
  counters(batch.worker(), q).add(tally);
}

int VhostUserLink::tx_fd(std::size_t /*q*/) const {
  return session_.load();
}

bool VhostUserLink::flush_tx(TxQueue& tq, std::size_t q, int fd, int& err, CounterValues& tally) {
  VirtQueue& vq = device_.vq(2 * q);
  std::lock_guard lock(vq.mutex);
  if (fd != session_.load() || !vq.ready()) {
    drop_backlog(tq.backlog, DropReason::no_peer, tally);
    return true;
  }
  const bool mrg = device_.has(virtio::kNetMrgRxbuf);
  VqFault& fault = tx_fault_[q];
  fault = VqFault::none;
  if (!guarded([&] {
        tq.sent += deliver_backlog(vq, tq.backlog, mrg, tally, fault);
        vq.publish_used();
        vq.call_if_needed();
      }))
    fault = VqFault::memory_fault;
  if (fault != VqFault::none) {
    frontend_fault(2 * q, fault);
    drop_backlog(tq.backlog, DropReason::no_peer, tally);
    return true;
  }
  if (tq.backlog.empty()) return true;
  err = EAGAIN;
  return false;
}

void VhostUserLink::arm_room(std::size_t q, int watch_fd) {
  VirtQueue& vq = device_.vq(2 * q);
  if (!vq.ready()) return;
  bool room = false;
  if (!guarded([&] { room = vq.enable_kicks(); })) frontend_fault(2 * q, VqFault::memory_fault);
  if (room) {  // buffers came before the wait: make the wait see them
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(watch_fd, &one, sizeof one);
  }
}

int VhostUserLink::tx_watch_fd(std::size_t q, int fd) {
  VirtQueue& vq = device_.vq(2 * q);
  std::lock_guard lock(vq.mutex);
  if (fd != session_.load() || rx_kick_[q] < 0) return -1;
  const int watch = ::fcntl(rx_kick_[q], F_DUPFD_CLOEXEC, 0);
  if (watch >= 0) arm_room(q, watch);
  return watch;
}

void VhostUserLink::tx_watch_rearm(std::size_t q, int watch_fd) {
  VirtQueue& vq = device_.vq(2 * q);
  std::lock_guard lock(vq.mutex);
  arm_room(q, watch_fd);
}

// --- what the link reports --------------------------------------------------------------------

Link::Facts VhostUserLink::facts() const {
  Facts f;
  const bool connected = session_.load() >= 0;
  f.link.emplace_back("frontend", connected ? "connected" : o_.client ? "connecting" : "waiting");
  f.link.emplace_back("features", feature_names(device_.features()));
  std::size_t regions = 0;
  for (std::size_t q = 0; q < ports_.size(); ++q) {
    const VirtQueue& rx = device_.vq(2 * q);
    const VirtQueue& tx = device_.vq(2 * q + 1);
    std::vector<std::pair<std::string, std::string>> p;
    {
      std::lock_guard lock(rx.mutex);
      p.emplace_back("rx", queue_state(rx));  // (the guest's receive queue: frames to it)
      p.emplace_back("rx_size", std::to_string(rx.size));
      if (q == 0) regions = device_.regions();
    }
    {
      std::lock_guard lock(tx.mutex);
      p.emplace_back("tx", queue_state(tx));
      p.emplace_back("tx_size", std::to_string(tx.size));
    }
    f.ports.push_back(std::move(p));
  }
  f.link.emplace_back("memory_regions", std::to_string(regions));
  return f;
}

std::vector<std::pair<std::string, std::uint64_t>> VhostUserLink::events() const {
  std::vector<std::pair<std::string, std::uint64_t>> e;
  e.emplace_back("connects", connects_.load(std::memory_order_relaxed));
  e.emplace_back("reset_bad_message", reset_bad_message_.load(std::memory_order_relaxed));
#define FDLINKD_X(name, desc)                                                                \
  e.emplace_back("reset_" #name, reset_fault_[static_cast<std::size_t>(VqFault::name)].load( \
                                     std::memory_order_relaxed));
  FDLINKD_VQ_FAULTS(FDLINKD_X)
#undef FDLINKD_X
  return e;
}

}  // namespace fdlinkd
