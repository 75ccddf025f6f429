#include "link/link.hpp"

#include <poll.h>
#include <unistd.h>

#include <bit>
#include <cstring>

#include "core/log.hpp"
#include "core/worker.hpp"
#include "dispatch/dispatcher.hpp"
#include "dispatch/rx_ring.hpp"
#include "link/af_packet.hpp"
#include "link/netns.hpp"
#include "link/tap.hpp"
#include "link/unix.hpp"
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
}

CounterValues Link::port_totals(std::size_t port) const {
  CounterValues v = kernel_counters_[port].snapshot();
  for (unsigned w = 0; w < workers_; ++w)
    v += counters_[w * ports_.size() + port].snapshot();
  return v;
}

Link::~Link() {
  for (std::size_t i = 0; i < ports_.size(); ++i)
    close_port(i);
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

void Link::send_batch(Worker& /*w*/, Batch& batch) {
  const std::size_t n = ports_.size();
  if (n == 1) {
    send_on_port(batch, 0, -1);
    return;
  }
  const bool l2 = config_.layer() == Layer::ethernet;
  std::uint64_t used = 0;  // bit q: some frame goes to port q (fds <= 64)
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto q = static_cast<std::uint8_t>(flow_hash(batch[i].data, batch[i].len, l2) % n);
    batch.out_port(i) = q;
    used |= std::uint64_t{1} << q;
  }
  for (; used != 0; used &= used - 1) {
    const auto q = static_cast<std::size_t>(std::countr_zero(used));
    send_on_port(batch, q, static_cast<int>(q));
  }
}

void Link::send_on_port(Batch& batch, std::size_t q, int select) {
  const Port& port = *ports_[q];
  CounterValues tally;
  const int fd = port.fd.load(std::memory_order_relaxed);
  if (fd < 0) {
    const DropReason why =
        config_.type == LinkType::unix_socket ? DropReason::no_peer : DropReason::link_down;
    for (std::size_t i = 0; i < batch.size(); ++i)
      if (batch.goes_to(i, select)) ++tally.drop(why);
  } else {
    TxTarget t;
    t.fd = fd;
    t.address = tx_address(t.address_len);
    // egress.cpp already held frames to the MTU; only passed-through GSO frames are larger.
    t.frame_capacity = config_.vnet_hdr ? config_.rx_capacity() : config_.frame_capacity();
    t.is_socket = is_socket(config_.type);
    t.vnet = config_.vnet_fd();
    write_batch(t, batch, select, tally);
  }
  counters(batch.worker(), q).add(tally);
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
    case LinkType::tap:
    case LinkType::tun: return std::make_unique<TapLink>(config);
    case LinkType::unix_socket: return std::make_unique<UnixLink>(config);
  }
  return nullptr;
}

}  // namespace fdlinkd
