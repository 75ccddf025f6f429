// backpressure: frames for a local peer that is full wait for it, and the links that feed it
// stop reading meanwhile, instead of dropping.
//
// A link to a local peer (a unix socket's VM or container, a TAP with tx_backlog) has a
// TxQueue per fd and worker: when the peer is full, the writer keeps the rest of the batch in
// its TxBacklog (backlog.hpp) and the TxQueue holds back the dispatcher whose pass it was
// (Worker::held, a Hold): its fd's kernel queue fills meanwhile, as a wire's would. The queue
// waits for room with epoll on a watch fd (a dup of the port's fd, or what the link says),
// sends what waits when room comes, and releases the hold. A stall timer stops holding back
// for a peer that takes nothing for tx_stall_timeout, until it reads again. Everything runs on
// the worker's thread: no lock.
//
// The link says how (TxPort): which fd a port has now, how to send what waits, what to watch.
#pragma once

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "core/counters.hpp"
#include "core/worker.hpp"
#include "writer/backlog.hpp"

namespace fdlinkd {

struct TxQueue;

/// What the writer needs of a link to wait for its peer.
class TxPort {
 public:
  virtual ~TxPort() = default;
  /// Port q's fd now (-1: none: a peer that went away).
  virtual int tx_fd(std::size_t q) const = 0;
  /// Sends what it can of what waits in `tq` for port q's `fd`; true when nothing waits, else
  /// `err` says why (EAGAIN: full again).
  virtual bool flush_tx(TxQueue& tq, std::size_t q, int fd, int& err, CounterValues& tally) = 0;
  /// A new fd to watch for room on port q's `fd` (-1: none).
  virtual int tx_watch_fd(std::size_t q, int fd) = 0;
  /// Before each further wait on port q's `watch_fd`.
  virtual void tx_watch_rearm(std::size_t /*q*/, int /*watch_fd*/) {}
  /// Whether room shows as the watch fd turning readable (an eventfd the peer writes when it
  /// has made room: a vhost-user guest's kick) instead of writable (a socket's buffer).
  virtual bool tx_watch_readable() const { return false; }
  /// What frames waiting for a gone peer or fd count as.
  virtual DropReason tx_gone_reason() const = 0;
  /// Adds `tally` to port q's counters on worker `worker`.
  virtual void tx_count(std::size_t worker, std::size_t q, const CounterValues& tally) = 0;
  /// The link's name, for logs.
  virtual const std::string& tx_name() const = 0;
};

/// Back-pressure state of one fd of a link on one worker: the frames waiting for the peer, the
/// dispatchers held back meanwhile, and the wait for room. Made at the first full peer; used by
/// that worker's thread only.
struct TxQueue {
  TxQueue(Worker& w, std::size_t frames, std::size_t bytes);
  ~TxQueue();
  Worker& worker;
  TxBacklog backlog;
  Hold hold;  ///< the dispatchers of this worker that wait for the backlog to go
  std::unique_ptr<boost::asio::posix::stream_descriptor> watch;  ///< the fd watched for room
  int watched_fd = -1;  ///< the port's fd that `watch` stands for
  bool armed = false;   ///< a wait for room is pending
  boost::asio::steady_timer stall_timer, retry_timer;
  bool timing = false;          ///< stall_timer is running
  bool stalled = false;         ///< gave up holding back (the peer made no progress for a while)
  std::uint64_t sent = 0;       ///< frames sent from the backlog (progress)
  std::uint64_t sent_seen = 0;  ///< `sent` when the stall timer last looked
  std::chrono::steady_clock::time_point progress_at;  ///< when it last saw `sent` move
};

/// A link's TxQueues, one per worker and fd, made at first use.
class Backpressure {
 public:
  explicit Backpressure(TxPort& port) : port_(port) {}
  ~Backpressure();
  Backpressure(const Backpressure&) = delete;
  Backpressure& operator=(const Backpressure&) = delete;

  /// Up to `frames` frames of at most `max_frame` bytes (and a header) wait per worker and
  /// fd; 0 frames: none wait (a wire), unless `always` (a stream link, which waits to finish a
  /// frame a write cut short). A peer that takes nothing for `stall_timeout` stops holding back
  /// the links that feed it. Drops every queue; nothing may be transmitting.
  void configure(unsigned workers, std::size_t ports, std::size_t frames, std::size_t max_frame,
                 bool always, std::chrono::milliseconds stall_timeout);
  /// Port q's queue on worker w (made now if need be), or nullptr without back-pressure.
  TxQueue* queue(Worker& w, std::size_t q);
  /// Frames wait in `tq` for port q's `fd`: wait for room, and hold back the dispatcher whose
  /// pass this is (Worker::held) unless the peer has stalled.
  void hold_back(TxQueue& tq, std::size_t q, int fd);
  /// On worker `worker`'s thread: drops what waits there (the link goes down or leaves) and
  /// lets the dispatchers it holds read again.
  void release(std::size_t worker);
  /// Destroys every queue (their waits and timers belong to the workers' io_contexts: this
  /// must happen before those go). Nothing may be transmitting.
  void clear() { queues_.clear(); }

 private:
  void wait_for_room(TxQueue& tq, std::size_t q, int fd);
  void on_room(TxQueue& tq, std::size_t q, bool woken);
  void watch_stall(TxQueue& tq);
  void on_stall_timer(TxQueue& tq, const boost::system::error_code& ec,
                      const std::weak_ptr<bool>& alive);

  TxPort& port_;
  std::size_t ports_ = 1;
  std::size_t frames_ = 0, bytes_ = 0;
  bool always_ = false;
  std::chrono::milliseconds stall_timeout_{1000};
  unsigned workers_ = 0;
  std::vector<std::unique_ptr<TxQueue>> queues_;  ///< [worker * ports + port]
  /// Expires with the link: handlers of waits it started check it first.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace fdlinkd
