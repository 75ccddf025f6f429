#include "link/link.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <bit>
#include <cstring>

#include "core/log.hpp"
#include "core/worker.hpp"
#include "dispatch/dispatcher.hpp"
#include "dispatch/rx_ring.hpp"
#include "link/af_packet.hpp"
#include "link/af_xdp.hpp"
#include "link/netdev.hpp"
#include "link/netns.hpp"
#include "link/tap.hpp"
#include "link/unix.hpp"
#include "link/vxlan.hpp"
#include "writer/egress.hpp"
#include "writer/flow_hash.hpp"
#include "writer/writer.hpp"

namespace fdlinkd {

std::string errno_text(int err) {
  return std::strerror(err);
}

std::string errno_text(int err, std::string_view capability) {
  std::string s = std::strerror(err);
  if (err == EPERM || err == EACCES)
    s += " (fdlinkd needs " + std::string(capability) +
         ": run it as root, under its systemd unit (which grants it), or with "
         "`setpriv --ambient-caps` / `setcap` granting " +
         std::string(capability) + ")";
  return s;
}

bool peer_hung_up(int fd) {
  // A zero-length message and a hang-up both read as 0 bytes; only a hang-up also shows as
  // POLLHUP or POLLRDHUP.
  pollfd p{fd, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR)) != 0;
}

Port::Port() = default;
Port::~Port() = default;

Link::Link(const LinkConfig& config) : config_(config) {
  for (unsigned i = 0; i < config_.fds; ++i)
    ports_.push_back(std::make_unique<Port>());
  set_workers(1);
}

void Link::set_workers(unsigned workers) {
  workers_ = workers;
  counters_.reset(new PortCounters[workers * ports_.size()]);
  kernel_counters_.reset(new PortCounters[ports_.size()]);
  tx_queues_.clear();
  tx_queues_.resize(workers * ports_.size());
}

CounterValues Link::port_totals(std::size_t port) const {
  CounterValues v = kernel_counters_[port].snapshot();
  for (unsigned w = 0; w < workers_; ++w)
    v += counters_[w * ports_.size() + port].snapshot();
  return v;
}

Link::~Link() {
  alive_.reset();
  for (std::size_t i = 0; i < ports_.size(); ++i)
    close_port(i);
}

unsigned Link::existing_ifindex() const {
  const unsigned i = netdev::index_of(config_.interface);
  if (i == 0)
    throw LinkError("interface " + config_.interface + " does not exist" +
                    (config_.netns.empty() ? "" : " in network namespace " + config_.netns));
  return i;
}

void Link::close_port(std::size_t i) {
  const int fd = ports_[i]->fd.exchange(-1);
  if (fd >= 0) ::close(fd);
}

void Link::open(unsigned workers) {
  set_workers(workers);
  reopen();
}

void Link::mark_down(bool retire) {
  down_.store(true, std::memory_order_release);
  down_count_.fetch_add(1, std::memory_order_relaxed);
  if (retire) retire_fds();
}

void Link::retire_fds() {
  for (auto& p : ports_) {
    const int fd = p->fd.exchange(-1);
    if (fd >= 0) retired_fds_.push_back(fd);
    if (p->rx_ring) retired_rings_.push_back(std::move(p->rx_ring));
  }
}

void Link::close_retired() {
  retired_rings_.clear();  // (unmapped before their sockets close)
  for (int fd : retired_fds_)
    ::close(fd);
  retired_fds_.clear();
}

void Link::reopen() {
  try {
    NetnsGuard ns(config_.netns);
    open_fds();
  } catch (const std::runtime_error& e) {
    // Whatever was opened before the failure goes (a TAP made so far vanishes with its fd).
    for (std::size_t i = 0; i < ports_.size(); ++i) {
      close_port(i);
      ports_[i]->rx_ring.reset();
    }
    close_retired();
    throw LinkError(e.what());
  }
}

void Link::mark_up() {
  down_.store(false, std::memory_order_release);
}

void Link::start(const std::vector<Dispatcher*>& dispatchers) {
  for (std::size_t i = 0; i < ports_.size(); ++i)
    dispatchers[i]->attach(ports_[i]->fd.load());
}

void Link::port_closed(std::size_t i, Dispatcher&) {
  log::error("link_fd_closed", "fd stopped: the device or peer is gone; the link stays down",
             {{"link", name()}, {"queue", i}});
}

void Link::transmit(Worker& w, Batch& batch) {
  if (is_down()) {  // parked until its interface is back
    CounterValues tally;
    tally.drop(DropReason::link_down) = batch.size();
    counters(w.id, 0).add(tally);
    return;
  }
  EgressCaps caps;
  caps.vnet_fd = config_.vnet_fd();
  caps.passthrough = config_.vnet_hdr;
  caps.l2 = config_.layer() == Layer::ethernet;
  caps.frame_capacity = config_.frame_capacity();
  CounterValues tally;
  prepare_egress(batch, caps, w, tally, [this, &w](Batch& b) { send_batch(w, b); });
  if (tally.total_drops() != 0 || tally.gso_segments != 0) counters(w.id, 0).add(tally);
}

void Link::send_batch(Worker& w, Batch& batch) {
  const std::size_t n = ports_.size();
  if (n == 1) {
    send_on_port(w, batch, 0, -1);
    return;
  }
  for (std::uint64_t used = spread(batch); used != 0; used &= used - 1) {
    const auto q = static_cast<std::size_t>(std::countr_zero(used));
    send_on_port(w, batch, q, static_cast<int>(q));
  }
}

std::uint64_t Link::spread(Batch& batch) const {
  const std::size_t n = ports_.size();
  if (n == 1) return 1;
  const bool l2 = config_.layer() == Layer::ethernet;
  std::uint64_t used = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto q = static_cast<std::uint8_t>(flow_hash(batch[i].data, batch[i].len, l2) % n);
    batch.out_port(i) = q;
    used |= std::uint64_t{1} << q;
  }
  return used;
}

void Link::send_on_port(Worker& w, Batch& batch, std::size_t q, int select) {
  const Port& port = *ports_[q];
  CounterValues tally;
  const int fd = port.fd.load(std::memory_order_relaxed);
  TxQueue* tq = tx_queue(w, q);
  if (fd < 0) {
    const DropReason why = gone_reason();
    for (std::size_t i = 0; i < batch.size(); ++i)
      if (batch.goes_to(i, select)) ++tally.drop(why);
  } else {
    // Frames kept for an earlier connection (a unix peer that went) are not for this one.
    if (tq && tq->watched_fd != fd && !tq->backlog.empty())
      drop_backlog(tq->backlog, gone_reason(), tally);
    write_batch(tx_target(fd, tq ? &tq->backlog : nullptr), batch, select, tally);
    if (tq && !tq->backlog.empty()) hold_back(*tq, q, fd);
  }
  counters(batch.worker(), q).add(tally);
}

TxTarget Link::tx_target(int fd, TxBacklog* backlog) const {
  TxTarget t;
  t.fd = fd;
  t.address = tx_address(t.address_len);
  // egress.cpp already held frames to the MTU; only passed-through GSO frames are larger.
  t.frame_capacity = config_.vnet_hdr ? config_.rx_capacity() : config_.frame_capacity();
  t.is_socket = is_socket(config_.type);
  t.vnet = config_.vnet_fd();
  t.backlog = backlog;
  t.gro = config_.gro;
  return t;
}

DropReason Link::gone_reason() const {
  return config_.type == LinkType::unix_socket ? DropReason::no_peer : DropReason::link_down;
}

// --- Back-pressure ------------------------------------------------------------------------

TxQueue::TxQueue(Worker& w, std::size_t frames, std::size_t bytes)
    : worker(w), backlog(frames, bytes), stall_timer(w.io), retry_timer(w.io) {}

TxQueue::~TxQueue() {
  if (watch) {
    boost::system::error_code ec;
    watch->close(ec);  // its own fd
  }
}

TxQueue* Link::tx_queue(Worker& w, std::size_t q) {
  // (A unix stream link has one even without a backlog: it waits for room to finish a frame
  // a write cut short.)
  const bool stream = config_.type == LinkType::unix_socket && config_.socket == UnixSocket::stream;
  if ((config_.tx_backlog == 0 && !stream) || w.id >= workers_) return nullptr;
  auto& slot = tx_queues_[w.id * ports_.size() + q];
  if (!slot) {
    // Room for tx_backlog frames of the wire size, each with a header (virtio-net or a
    // stream length) in front: the byte bound, whatever mix of sizes comes.
    const std::size_t bytes = std::size_t{config_.tx_backlog} * (config_.frame_capacity() + 16);
    slot = std::make_unique<TxQueue>(w, config_.tx_backlog, bytes);
  }
  return slot.get();
}

int Link::tx_watch_fd(std::size_t /*q*/, int fd) {
  return ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

bool Link::flush_tx(TxQueue& tq, std::size_t /*q*/, int fd, int& err, CounterValues& tally) {
  tq.sent += send_backlog(tx_target(fd, &tq.backlog), tq.backlog, tally, err);
  return tq.backlog.empty();
}

void Link::hold_back(TxQueue& tq, std::size_t q, int fd) {
  if (!tq.stalled && config_.tx_backlog != 0) tq.worker.held = &tq.hold;
  watch_stall(tq);
  if (!tq.armed) wait_for_room(tq, q, fd);
}

void Link::watch_stall(TxQueue& tq) {
  if (tq.timing) return;
  tq.timing = true;
  tq.sent_seen = tq.sent;
  tq.progress_at = std::chrono::steady_clock::now();
  tq.stall_timer.expires_at(tq.progress_at + config_.tx_stall_timeout);
  tq.stall_timer.async_wait(
      [this, &tq, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
        on_stall_timer(tq, ec, alive);
      });
}

void Link::on_stall_timer(TxQueue& tq, const boost::system::error_code& ec,
                          const std::weak_ptr<bool>& alive) {
  if (ec || alive.expired()) return;
  const auto now = std::chrono::steady_clock::now();
  if (tq.backlog.empty() && !tq.armed) {  // nothing waits any more
    tq.timing = false;
    return;
  }
  if (tq.sent != tq.sent_seen) {  // it moved: look again a timeout after that
    tq.sent_seen = tq.sent;
    tq.progress_at = now;
  } else if (now - tq.progress_at >= config_.tx_stall_timeout && !tq.stalled) {
    tq.stalled = true;
    log::warn("tx_peer_stalled",
              "the peer takes no frames: no longer holding back the links that feed it; "
              "frames beyond tx_backlog are dropped (tx_backlog_full) until it reads again",
              {{"link", name()},
               {"waiting", tq.backlog.size()},
               {"timeout_ms", config_.tx_stall_timeout.count()}});
    tq.hold.release();
  }
  tq.stall_timer.expires_at(tq.stalled ? now + config_.tx_stall_timeout
                                       : tq.progress_at + config_.tx_stall_timeout);
  tq.stall_timer.async_wait(
      [this, &tq, alive](const boost::system::error_code& e) { on_stall_timer(tq, e, alive); });
}

void Link::wait_for_room(TxQueue& tq, std::size_t q, int fd) {
  namespace asio = boost::asio;
  if (!tq.watch || tq.watched_fd != fd) {
    if (tq.watch) {
      boost::system::error_code ec;
      tq.watch->close(ec);
      tq.watch.reset();
    }
    const int mine = tx_watch_fd(q, fd);
    if (mine < 0) return;  // (what waits goes before the next batch)
    tq.watch = std::make_unique<asio::posix::stream_descriptor>(tq.worker.io, mine);
    tq.watched_fd = fd;
  } else {
    tx_watch_rearm(tq.watch->native_handle());
  }
  tq.armed = true;
  tq.watch->async_wait(
      asio::posix::stream_descriptor::wait_write,
      [this, &tq, q, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
        if (ec || alive.expired()) return;  // (released by the link's destructor: gone)
        on_room(tq, q, true);
      });
}

void Link::on_room(TxQueue& tq, std::size_t q, bool woken) {
  tq.armed = false;
  CounterValues tally;
  const int fd = ports_[q]->fd.load(std::memory_order_relaxed);
  int err = 0;
  bool done = true;
  const std::uint64_t before = tq.sent;
  if (fd < 0 || fd != tq.watched_fd)
    drop_backlog(tq.backlog, gone_reason(), tally);
  else
    done = flush_tx(tq, q, fd, err, tally);
  counters(tq.worker.id, q).add(tally);
  if (tq.sent != before) {
    tq.sent_seen = tq.sent;
    tq.progress_at = std::chrono::steady_clock::now();
  }
  if (done || err != EAGAIN) {  // (after another error flush_tx dropped the rest)
    if (tq.stalled) log::info("tx_peer_resumed", "the peer takes frames again", {{"link", name()}});
    tq.stalled = false;
    tq.hold.release();
    return;
  }
  if (tq.sent != before || !woken) {
    wait_for_room(tq, q, fd);
    return;
  }
  // Woken without room: the fd watched is not the one that was full (a unix dgram link
  // watches the peer's queue, but its own send buffer was full). Look again shortly.
  tq.armed = true;
  tq.retry_timer.expires_after(std::chrono::milliseconds(1));
  tq.retry_timer.async_wait(
      [this, &tq, q, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
        if (ec || alive.expired()) return;
        on_room(tq, q, false);
      });
}

void Link::release_tx(std::size_t worker) {
  for (std::size_t q = 0; q < ports_.size(); ++q) {
    auto& tq = tx_queues_[worker * ports_.size() + q];
    if (!tq) continue;
    CounterValues tally;
    drop_backlog(tq->backlog, gone_reason(), tally);
    counters(worker, q).add(tally);
    boost::system::error_code ec;
    tq->stall_timer.cancel();
    tq->retry_timer.cancel();
    if (tq->watch) tq->watch->close(ec);
    tq->watch.reset();
    tq->armed = tq->timing = tq->stalled = false;
    tq->watched_fd = -1;
    tq->hold.release();
  }
}

CounterValues Link::totals() const {
  CounterValues v;
  for (std::size_t q = 0; q < ports_.size(); ++q)
    v += port_totals(q);
  return v;
}

std::string Link::describe() const {
  std::string d(link_type_name(config_.type));
  d += ' ';
  if (config_.type == LinkType::vxlan)
    d += "vni " + std::to_string(config_.vni) + " " + config_.local + " port " +
         std::to_string(config_.port);
  else
    d += config_.type == LinkType::unix_socket ? config_.path : config_.interface;
  if (!config_.netns.empty()) d += " (netns " + config_.netns + ")";
  return d;
}

void LinkSet::add(std::unique_ptr<Link> link, std::size_t index) {
  if (index == npos) {
    index = 0;
    while (index < slots_.size() && slots_[index])
      ++index;
  }
  if (index >= slots_.size()) slots_.resize(index + 1);
  link->set_index(index);
  slots_[index] = std::move(link);
  relist();
}

std::unique_ptr<Link> LinkSet::take(std::string_view name) {
  for (auto& l : slots_)
    if (l && l->name() == name) {
      auto out = std::move(l);
      while (!slots_.empty() && !slots_.back())
        slots_.pop_back();
      relist();
      return out;
    }
  return nullptr;
}

Link* LinkSet::find(std::string_view name) const {
  for (Link* l : list_)
    if (l->name() == name) return l;
  return nullptr;
}

void LinkSet::relist() {
  list_.clear();
  for (const auto& l : slots_)
    if (l) list_.push_back(l.get());
}

std::unique_ptr<Link> make_link(const LinkConfig& config) {
  switch (config.type) {
    case LinkType::af_packet: return std::make_unique<AfPacketLink>(config);
    case LinkType::af_xdp: return std::make_unique<AfXdpLink>(config);
    case LinkType::tap:
    case LinkType::tun: return std::make_unique<TapLink>(config);
    case LinkType::unix_socket: return std::make_unique<UnixLink>(config);
    case LinkType::vxlan: return std::make_unique<VxlanLink>(config);
  }
  return nullptr;
}

}  // namespace fdlinkd
