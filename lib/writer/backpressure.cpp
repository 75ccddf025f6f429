#include "writer/backpressure.hpp"

#include "core/log.hpp"

namespace fdlinkd {

namespace asio = boost::asio;

TxQueue::TxQueue(Worker& w, std::size_t frames, std::size_t bytes)
    : worker(w), backlog(frames, bytes), stall_timer(w.io), retry_timer(w.io) {}

TxQueue::~TxQueue() {
  if (watch) {
    boost::system::error_code ec;
    watch->close(ec);  // its own fd
  }
}

Backpressure::~Backpressure() {
  alive_.reset();
}

void Backpressure::configure(unsigned workers, std::size_t ports, std::size_t frames,
                             std::size_t max_frame, bool always,
                             std::chrono::milliseconds stall_timeout) {
  workers_ = workers;
  ports_ = ports;
  frames_ = frames;
  // Room for `frames` frames of the wire size, each with a header (virtio-net or a stream
  // length) in front: the byte bound, whatever mix of sizes comes.
  bytes_ = frames * (max_frame + 16);
  always_ = always;
  stall_timeout_ = stall_timeout;
  queues_.clear();
  queues_.resize(workers * ports);
}

TxQueue* Backpressure::queue(Worker& w, std::size_t q) {
  if ((frames_ == 0 && !always_) || w.id >= workers_) return nullptr;
  auto& slot = queues_[w.id * ports_ + q];
  if (!slot) slot = std::make_unique<TxQueue>(w, frames_, bytes_);
  return slot.get();
}

void Backpressure::hold_back(TxQueue& tq, std::size_t q, int fd) {
  if (!tq.stalled && frames_ != 0) tq.worker.held = &tq.hold;
  watch_stall(tq);
  if (!tq.armed) wait_for_room(tq, q, fd);
}

void Backpressure::watch_stall(TxQueue& tq) {
  if (tq.timing) return;
  tq.timing = true;
  tq.sent_seen = tq.sent;
  tq.progress_at = std::chrono::steady_clock::now();
  tq.stall_timer.expires_at(tq.progress_at + stall_timeout_);
  tq.stall_timer.async_wait(
      [this, &tq, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
        on_stall_timer(tq, ec, alive);
      });
}

void Backpressure::on_stall_timer(TxQueue& tq, const boost::system::error_code& ec,
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
  } else if (now - tq.progress_at >= stall_timeout_ && !tq.stalled) {
    tq.stalled = true;
    log::warn("tx_peer_stalled",
              "the peer takes no frames: no longer holding back the links that feed it; "
              "frames beyond tx_backlog are dropped (tx_backlog_full) until it reads again",
              {{"link", port_.tx_name()},
               {"waiting", tq.backlog.size()},
               {"timeout_ms", stall_timeout_.count()}});
    tq.hold.release();
  }
  tq.stall_timer.expires_at(tq.stalled ? now + stall_timeout_ : tq.progress_at + stall_timeout_);
  tq.stall_timer.async_wait(
      [this, &tq, alive](const boost::system::error_code& e) { on_stall_timer(tq, e, alive); });
}

void Backpressure::wait_for_room(TxQueue& tq, std::size_t q, int fd) {
  if (!tq.watch || tq.watched_fd != fd) {
    if (tq.watch) {
      boost::system::error_code ec;
      tq.watch->close(ec);
      tq.watch.reset();
    }
    const int mine = port_.tx_watch_fd(q, fd);
    if (mine < 0) return;  // (what waits goes before the next batch)
    tq.watch = std::make_unique<asio::posix::stream_descriptor>(tq.worker.io, mine);
    tq.watched_fd = fd;
  } else {
    port_.tx_watch_rearm(q, tq.watch->native_handle());
  }
  tq.armed = true;
  tq.watch->async_wait(
      port_.tx_watch_readable() ? asio::posix::stream_descriptor::wait_read
                                : asio::posix::stream_descriptor::wait_write,
      [this, &tq, q, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
        if (ec || alive.expired()) return;  // (released by the link's destructor: gone)
        on_room(tq, q, true);
      });
}

void Backpressure::on_room(TxQueue& tq, std::size_t q, bool woken) {
  tq.armed = false;
  CounterValues tally;
  const int fd = port_.tx_fd(q);
  int err = 0;
  bool done = true;
  const std::uint64_t before = tq.sent;
  if (fd < 0 || fd != tq.watched_fd)
    drop_backlog(tq.backlog, port_.tx_gone_reason(), tally);
  else
    done = port_.flush_tx(tq, q, fd, err, tally);
  port_.tx_count(tq.worker.id, q, tally);
  if (tq.sent != before) {
    tq.sent_seen = tq.sent;
    tq.progress_at = std::chrono::steady_clock::now();
  }
  if (done || err != EAGAIN) {  // (after another error flush_tx dropped the rest)
    if (tq.stalled)
      log::info("tx_peer_resumed", "the peer takes frames again", {{"link", port_.tx_name()}});
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

void Backpressure::release(std::size_t worker) {
  for (std::size_t q = 0; q < ports_; ++q) {
    if (worker * ports_ + q >= queues_.size()) break;
    auto& tq = queues_[worker * ports_ + q];
    if (!tq) continue;
    CounterValues tally;
    drop_backlog(tq->backlog, port_.tx_gone_reason(), tally);
    port_.tx_count(worker, q, tally);
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

}  // namespace fdlinkd
