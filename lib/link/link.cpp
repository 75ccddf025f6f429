#include "link/link.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <bit>

#include "core/log.hpp"
#include "link/netdev.hpp"
#include "link/netns.hpp"
#include "link/rx.hpp"
#include "writer/egress.hpp"
#include "writer/flow_hash.hpp"

namespace fdlinkd {

bool peer_hung_up(int fd) {
  // A zero-length message and a hang-up both read as 0 bytes; only a hang-up also shows as
  // POLLHUP or POLLRDHUP.
  pollfd p{fd, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR)) != 0;
}

namespace {
std::atomic<std::uint64_t> g_link_serial{0};
}  // namespace

Link::Link(const LinkConfig& config) : config_(config), serial_(++g_link_serial) {
  resize_ports(config_.fds);
}

Link::~Link() {
  for (std::size_t i = 0; i < ports_.size(); ++i)
    close_port(i);
}

void Link::resize_ports(std::size_t n) {
  ports_.clear();
  for (std::size_t i = 0; i < n; ++i)
    ports_.push_back(std::make_unique<Port>());
  set_workers(workers_);
}

void Link::set_workers(unsigned workers) {
  workers_ = workers;
  counters_.reset(new PortCounters[workers * ports_.size()]);
  kernel_counters_.reset(new PortCounters[ports_.size()]);
  backpressure_.configure(workers, ports_.size(), config_.tx_backlog, config_.wire_capacity(),
                          tx_always_, config_.tx_stall_timeout);
}

CounterValues Link::port_totals(std::size_t port) const {
  CounterValues v = kernel_counters_[port].snapshot();
  for (unsigned w = 0; w < workers_; ++w)
    v += counters_[w * ports_.size() + port].snapshot();
  return v;
}

CounterValues Link::totals() const {
  CounterValues v;
  for (std::size_t q = 0; q < ports_.size(); ++q)
    v += port_totals(q);
  return v;
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
  }
  on_retire();
}

void Link::close_retired() {
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
    retire_fds();
    close_retired();
    throw LinkError(e.what());
  }
}

void Link::mark_up() {
  down_.store(false, std::memory_order_release);
}

std::unique_ptr<RxQueue> Link::make_rx_queue(std::size_t port, Worker&, Batch& batch) {
  return std::make_unique<FdRxQueue>(*this, port, batch, false);
}

void Link::start(const std::vector<PortReader*>& readers) {
  for (std::size_t i = 0; i < ports_.size(); ++i)
    readers[i]->attach(ports_[i]->fd.load());
}

void Link::port_closed(std::size_t i, PortReader&) {
  log::error("link_fd_closed", "fd stopped: the device or peer is gone; the link stays down",
             {{"link", name()}, {"queue", i}});
}

std::string Link::describe() const {
  std::string d(config_.type_name());
  d += ' ' + config_.interface;
  if (!config_.netns.empty()) d += " (netns " + config_.netns + ")";
  return d;
}

void Link::transmit(Worker& w, Batch& batch) {
  if (is_down()) {  // parked until its interface is back
    CounterValues tally;
    tally.drop(DropReason::link_down) = batch.size();
    counters(w.id, 0).add(tally);
    return;
  }
  CounterValues tally;
  prepare_egress(batch, egress_caps(), w, tally, [this, &w](Batch& b) { send_batch(w, b); });
  if (tally.total_drops() != 0 || tally.gso_segments != 0) counters(w.id, 0).add(tally);
}

EgressCaps Link::egress_caps() const {
  EgressCaps caps;
  caps.vnet_fd = config_.vnet_fd();
  caps.passthrough = config_.vnet_hdr;
  caps.l2 = config_.layer == Layer::ethernet;
  caps.wire_capacity = config_.wire_capacity();
  return caps;
}

void Link::send_batch(Worker& w, Batch& batch) {
  const std::size_t n = ports_.size();
  if (n == 1) {
    send_on_port(w, batch, 0, -1);
    return;
  }
  const bool l2 = config_.layer == Layer::ethernet;
  for (std::uint64_t used = spread(batch, n, l2); used != 0; used &= used - 1) {
    const auto q = static_cast<std::size_t>(std::countr_zero(used));
    send_on_port(w, batch, q, static_cast<int>(q));
  }
}

void Link::send_on_port(Worker& w, Batch& batch, std::size_t q, int select) {
  CounterValues tally;
  const int fd = ports_[q]->fd.load(std::memory_order_relaxed);
  TxQueue* tq = backpressure_.queue(w, q);
  if (fd < 0) {
    const DropReason why = tx_gone_reason();
    for (std::size_t i = 0; i < batch.size(); ++i)
      if (batch.goes_to(i, select)) ++tally.drop(why);
  } else {
    // Frames kept for an earlier connection (a unix peer that went) are not for this one.
    if (tq && tq->watched_fd != fd && !tq->backlog.empty())
      drop_backlog(tq->backlog, tx_gone_reason(), tally);
    write_batch(tx_target(fd, tq ? &tq->backlog : nullptr), batch, select, tally);
    if (tq && !tq->backlog.empty()) backpressure_.hold_back(*tq, q, fd);
  }
  counters(batch.worker(), q).add(tally);
}

TxTarget Link::tx_target(int fd, TxBacklog* backlog) const {
  TxTarget t;
  t.fd = fd;
  t.address = tx_address(t.address_len);
  // egress.cpp already held frames to the MTU; only passed-through GSO frames are larger.
  t.max_frame = config_.vnet_hdr ? config_.rx_capacity() : config_.wire_capacity();
  t.is_socket = config_.socket;
  t.vnet = config_.vnet_fd();
  t.backlog = backlog;
  return t;
}

int Link::tx_watch_fd(std::size_t /*q*/, int fd) {
  return ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

bool Link::flush_tx(TxQueue& tq, std::size_t /*q*/, int fd, int& err, CounterValues& tally) {
  tq.sent += send_backlog(tx_target(fd, &tq.backlog), tq.backlog, tally, err);
  return tq.backlog.empty();
}

}  // namespace fdlinkd
