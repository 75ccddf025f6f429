#include "dispatch/dispatcher.hpp"

#include <boost/asio/post.hpp>
#include <utility>

#include "link/link.hpp"
#include "link/rx.hpp"
#include "sink/graph.hpp"

namespace fdlinkd {

namespace asio = boost::asio;

Dispatcher::Dispatcher(Worker& worker, Link& link, std::size_t port, Graph& graph)
    : io_(worker.io),
      worker_(worker),
      link_(link),
      port_(port),
      graph_(&graph),
      root_(graph.find(link.config().sink)),
      ingress_(link.index()),
      desc_(worker.io),
      batch_(link.config().rx_batch, link.config().rx_capacity(), worker.id),
      rxq_(link.make_rx_queue(port, worker, batch_)) {
  refresh_routes();
}

Dispatcher::~Dispatcher() {
  detach();
}

void Dispatcher::set_graph(Graph& graph, std::size_t root, std::size_t ingress) {
  graph_ = &graph;
  root_ = root;
  ingress_ = ingress;
  refresh_routes();
}

void Dispatcher::refresh_routes() {
  // (a link opened by a reload in progress joins once the graph that has it is in place)
  rxq_->refresh_members(
      [](Link& l, void* g) { return static_cast<Graph*>(g)->find(l.config().sink) != Graph::npos; },
      graph_);
  routes_.assign(rxq_->member_count(), Route{ingress_, root_});
  for (std::size_t m = 1; m < routes_.size(); ++m) {
    Link& l = *rxq_->member(m);
    routes_[m] = {l.index(), graph_->find(l.config().sink)};
  }
  if (routes_.size() > 1 && !demux_)
    demux_ = std::make_unique<Batch>(batch_.capacity(), 0, worker_.id);
}

void Dispatcher::run_batch() {
  if (!rxq_->mixed()) {
    graph_->run(worker_, ingress_, root_, batch_);
    return;
  }
  for (std::size_t m = 0; m < routes_.size(); ++m) {
    demux_->clear();
    for (std::size_t i = 0; i < batch_.size(); ++i)
      if (rxq_->member_of(i) == m) demux_->push(batch_[i]);
    if (!demux_->empty()) graph_->run(worker_, routes_[m].ingress, routes_[m].root, *demux_);
  }
}

void Dispatcher::attach(int fd) {
  // Called off the worker's thread (a link started at start-up, or by a reload on the control
  // thread while the worker runs), the attach is handed to the worker, in order: a recovery
  // may be attaching on the worker at the same time.
  if (!io_.get_executor().running_in_this_thread()) {
    asio::post(io_, [this, fd] { attach(fd); });
    return;
  }
  detach();
  rxq_->attach(fd);
  desc_.assign(fd);
  // Asio registers the fd edge-triggered and async_wait is not speculative: frames already
  // queued would wait for the next arrival. Drain once first.
  asio::post(io_, [this, gen = generation_] {
    if (gen == generation_) on_ready();
  });
}

void Dispatcher::detach() {
  ++generation_;
  leave();
  if (desc_.is_open()) {
    boost::system::error_code ec;
    desc_.cancel(ec);
    desc_.release();  // the link owns the fd
  }
}

void Dispatcher::resume() {
  asio::post(io_, [this, gen = generation_] {
    if (gen == generation_) on_ready();
  });
}

void Dispatcher::wait() {
  desc_.async_wait(asio::posix::stream_descriptor::wait_read,
                   [this, gen = generation_](const boost::system::error_code& ec) {
                     if (ec || gen != generation_) return;  // cancelled or detached
                     on_ready();
                   });
}

void Dispatcher::on_ready() {
  const std::uint64_t gen = generation_;
  for (int round = 0; round < kMaxBatchesPerWake; ++round) {
    CounterValues tally;
    batch_.clear();
    const RxEnd end = rxq_->receive(batch_, tally);
    worker_.held = nullptr;
    if (!batch_.empty()) run_batch();
    rxq_->release();  // the batch is sent: what it pointed into goes back
    link_.counters(worker_.id, port_).add(tally);
    for (std::size_t m = 1; m < routes_.size(); ++m) {  // (links sharing the queue)
      CounterValues& t = *rxq_->member_tally(m);
      rxq_->member(m)->counters(worker_.id, 0).add(t);
      t = {};
    }
    if (end == RxEnd::closed) {
      worker_.held = nullptr;
      detach();
      link_.port_closed(port_, *this);
      return;
    }
    if (Hold* h = std::exchange(worker_.held, nullptr)) {  // an output is full: wait for it
      h->wait(*this);
      return;
    }
    if (end == RxEnd::drained) {
      wait();
      return;
    }
  }
  // Still more to read: let the worker's other fds run first.
  asio::post(io_, [this, gen] {
    if (gen == generation_) on_ready();
  });
}

}  // namespace fdlinkd
