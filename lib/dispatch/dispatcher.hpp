// Dispatcher: the loop that reads one fd of a link in batches and runs each batch through the
// graph, starting at the link's sink. It knows no kind of fd: the link's receive queue
// (link/rx.hpp) does the reading.
//
//   wait     Asio's async_wait(wait_read) on the fd (edge-triggered: a wake-up drains it)
//   receive  the queue fills the dispatcher's one reusable Batch
//   run      the graph sends everything before it returns (sink/graph.hpp)
//   release  the queue takes back what the frames pointed into (ring blocks, UMEM frames)
//   hold     an output kept frames back for a full local peer (Worker::held): wait for it
// After kMaxBatchesPerWake batches it yields (posts itself) so the other fds of the same
// worker get their turn. A frame that cannot be forwarded is counted by the queue under its
// reason and skipped: it never ends the loop. EOF or a dead device ends the fd: the link is
// told (port_closed).
//
// Back-pressure: when an output kept frames back for a full local peer during a pass
// (Worker::held), the dispatcher does not read again until that output releases it (it has
// sent them, or stopped waiting for a stalled peer): its fd's kernel queue fills meanwhile, as
// a wire's would. Other dispatchers of the worker go on.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <cstdint>
#include <memory>
#include <vector>

#include "core/batch.hpp"
#include "core/counters.hpp"
#include "core/port_reader.hpp"
#include "core/worker.hpp"

namespace fdlinkd {

class Graph;
class Link;
class RxQueue;

class Dispatcher : public HoldWaiter, public PortReader {
 public:
  static constexpr int kMaxBatchesPerWake = 16;

  /// Reads port `port` of `link` on worker thread `worker`, whose batches go to `graph`'s node
  /// named by the link's `sink`.
  Dispatcher(Worker& worker, Link& link, std::size_t port, Graph& graph);
  ~Dispatcher() override;
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  /// Starts reading `fd` (owned by the link, not by the dispatcher). From any thread: off the
  /// io thread it is posted there.
  void attach(int fd) override;
  /// Stops reading (and waiting on a hold); the fd stays open.
  void detach() override;
  /// The output that held it back has room again: read on.
  void resume() override;
  boost::asio::io_context& io() override { return io_; }

  /// Reload: batches from now on go to node `root` of `graph`, from the link with index
  /// `ingress`. Call on the io thread, between batches.
  void set_graph(Graph& graph, std::size_t root, std::size_t ingress);

  Worker& worker() { return worker_; }
  Link& link() { return link_; }
  std::size_t port() const { return port_; }

 private:
  void wait();
  void on_ready();
  /// Runs batch_ through the graph: as one batch, or per link when the queue gave frames of
  /// several (a socket shared by vxlan links).
  void run_batch();
  /// (Re)reads who shares the queue and where their frames go, as the current graph knows.
  void refresh_routes();

  boost::asio::io_context& io_;
  Worker& worker_;
  Link& link_;
  std::size_t port_;
  Graph* graph_;
  std::size_t root_;     ///< the graph node of the link's sink
  std::size_t ingress_;  ///< the link's index
  boost::asio::posix::stream_descriptor desc_;
  std::uint64_t generation_ = 0;  ///< bumped by detach(): stale wake-ups are ignored
  Batch batch_;
  std::unique_ptr<RxQueue> rxq_;
  /// Per member of the queue (member 0: the link itself): its index and its sink's node.
  struct Route {
    std::size_t ingress = 0, root = 0;
  };
  std::vector<Route> routes_;
  std::unique_ptr<Batch> demux_;  ///< a view: one member's frames of batch_
};

}  // namespace fdlinkd
