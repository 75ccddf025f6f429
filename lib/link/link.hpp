// Link: the fds of one [[link]] and how frames leave through them.
//
// A link has one Port per fd. Opening happens once, on the main thread, before any worker runs
// (inside the link's network namespace if it names one); a failure throws LinkError with a
// message for the operator. Each kind of link is one file pair named after its TOML type.
//
// Frames leave through transmit(): the link picks the port and the writer system call
// (sendmmsg for sockets, one write per frame for TAP/TUN, which have no mmsg calls).
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/batch.hpp"
#include "core/counters.hpp"
#include "core/worker.hpp"
#include "writer/backlog.hpp"
#include "writer/writer.hpp"

namespace fdlinkd {

class Dispatcher;

class LinkError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class RxRing;

/// Back-pressure state of one fd of a link on one worker (links with tx_backlog > 0): the
/// frames waiting for the peer, the dispatchers held back meanwhile, and the wait for room.
/// Made at the first full peer; used by that worker's thread only.
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

/// One fd of a link. `fd` is -1 while there is none (a unix seqpacket link without a connected
/// peer); workers that transmit read it without a lock.
struct Port {
  Port();
  ~Port();
  std::atomic<int> fd{-1};
  std::unique_ptr<RxRing> rx_ring;  ///< dispatch = "packet_mmap": the fd's receive ring
};

class Link {
 public:
  explicit Link(const LinkConfig& config);
  virtual ~Link();
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  const LinkConfig& config() const { return config_; }
  const std::string& name() const { return config_.name; }
  /// This link's place in the config's [[link]] list (what Pass::ingress() reports).
  std::size_t index() const { return index_; }
  void set_index(std::size_t i) { index_ = i; }
  std::size_t port_count() const { return ports_.size(); }
  Port& port(std::size_t i) { return *ports_[i]; }
  const Port& port(std::size_t i) const { return *ports_[i]; }

  /// Opens every fd, inside config().netns when set. `workers` is how many threads may
  /// transmit on the link (links with per-thread TX state size it by that). Throws LinkError.
  void open(unsigned workers = 1);
  /// Sizes the per-worker counters for `workers` threads (open() does it too).
  void set_workers(unsigned workers);

  /// The counters of port `port` that worker `worker` writes (one writer each).
  PortCounters& counters(std::size_t worker, std::size_t port) {
    return counters_[worker * ports_.size() + port];
  }
  /// Port `port`'s counters summed over the workers.
  CounterValues port_totals(std::size_t port) const;

  /// Hands each port to its dispatcher (dispatchers[i] reads port i). A unix seqpacket link
  /// overrides this to accept a peer first.
  virtual void start(const std::vector<Dispatcher*>& dispatchers);
  /// A reload removes the link: stops what it runs besides its dispatchers (a unix listener's
  /// accept) and gives back what it holds by name (the socket file). Runs on the thread of
  /// dispatcher 0.
  virtual void stop() {}
  /// A reload changed only where the link's frames go (its `sink`). Control thread.
  void set_sink(std::string sink) { config_.sink = std::move(sink); }
  /// Dispatcher `i` saw its fd end (EOF, or the device is gone). The default logs it and leaves
  /// the port silent; links that can recover (a unix listener) override it.
  virtual void port_closed(std::size_t i, Dispatcher& d);

  // --- Going down and coming back (runtime/ drives it; see InterfaceWatcher) ---------------
  /// Whether the link is down: its interface is gone or down; frames sent to it count as
  /// link_down, its dispatchers are parked.
  bool is_down() const { return down_.load(std::memory_order_acquire); }
  /// Marks the link down and, with `retire`, takes its fds away from the transmit path (they
  /// stay open until close_retired(), which the runtime calls once every worker is past them).
  /// Without: the fds stay (a TAP that is down keeps its device). Control thread.
  void mark_down(bool retire);
  /// The retiring half of mark_down(true), for a link already parked with its fds.
  void retire_fds();
  /// Whether the fds are open (a link parked without retiring them).
  bool has_fds() const { return ports_[0]->fd.load() >= 0; }
  /// Closes what mark_down() took away. Control thread, after every worker has moved on.
  virtual void close_retired();
  /// Opens the fds (again) in config().netns; throws LinkError, with nothing left open. Then
  /// mark_up(). Control thread.
  void reopen();
  /// Publishes the reopened fds to the transmit path.
  void mark_up();
  /// How many times the link went down.
  std::uint64_t down_count() const { return down_count_.load(std::memory_order_relaxed); }
  /// The ifindex the fds are bound to (af_packet), or 0.
  virtual unsigned ifindex() const { return 0; }
  /// Whether fdlinkd created the link's device (a TAP/TUN), so it makes it again when deleted.
  virtual bool owns_device() const { return false; }
  /// Links whose dispatchers read one shared socket (vxlan links on one port) return the same
  /// non-null value: their dispatchers run on one worker, which keeps each flow in order.
  virtual const void* rx_group() const { return nullptr; }
  /// Whether the link follows an interface (af_packet, tap, tun; not unix).
  bool has_interface() const {
    return config_.type != LinkType::unix_socket && config_.type != LinkType::vxlan;
  }

  /// Sends every frame of `batch` out of this link on worker `w`, and counts the outcome per
  /// port: first fitted to the link (egress.hpp: checksums finished, super-frames segmented,
  /// headers), then sent by send_batch(). Frames another output also holds are not changed.
  void transmit(Worker& w, Batch& batch);

  /// Whether a 0-byte read on `fd` means the peer hung up (seqpacket) rather than an empty
  /// message.
  virtual bool zero_read_is_eof(int /*fd*/) const { return false; }

  /// Adds what the kernel counted on its side of the fds (frames it dropped before fdlinkd
  /// could read them) to the ports' counters. Called from the stats timer, on the thread that
  /// owns kernel_counters_.
  virtual void collect_kernel_counters() {}

  /// Sum of all ports' counters.
  CounterValues totals() const;

  /// One line for logs: "af_packet veth0", "unix /run/x.sock", ...
  std::string describe() const;

 protected:
  /// Opens the fds (the namespace is already entered) and stores them in the ports.
  virtual void open_fds() = 0;
  /// Where sendmmsg sends (unix dgram with a peer); nullptr for bound or connected fds.
  virtual const sockaddr* tx_address(socklen_t& len) const {
    len = 0;
    return nullptr;
  }
  /// The ifindex of config().interface (the namespace is entered); throws LinkError naming it
  /// (and the namespace) when there is no such interface.
  unsigned existing_ifindex() const;
  /// Closes and forgets port i's fd.
  void close_port(std::size_t i);
  /// Sends a batch that fits the link. With several fds, each frame's fd is picked by flow
  /// hash, and each fd gets its frames in one system call, in their original order.
  virtual void send_batch(Worker& w, Batch& batch);
  /// With several ports: picks each frame's port by flow hash (Batch::out_port). Returns the
  /// ports that get frames, as bit q for port q (ports <= 64); 1 (port 0) with one port.
  std::uint64_t spread(Batch& batch) const;
  /// Sends the frames of `batch` bound for port q (all when select < 0) and counts them there.
  void send_on_port(Worker& w, Batch& batch, std::size_t q, int select);

  // --- Back-pressure (tx_backlog > 0) ----------------------------------------------------
  /// Port q's backlog on worker w (made at first use), or nullptr without tx_backlog.
  TxQueue* tx_queue(Worker& w, std::size_t q);
  /// Frames wait in `tq` for port q's `fd`: wait for room, and hold back the dispatcher whose
  /// pass this is (Worker::held) unless the peer has stalled.
  void hold_back(TxQueue& tq, std::size_t q, int fd);
  /// Waits for room on port q's `fd` (a watch fd, tx_watch_fd()), then on_room().
  void wait_for_room(TxQueue& tq, std::size_t q, int fd);
  /// Room (`woken`), or a retry: sends what waits; releases the hold once nothing does.
  void on_room(TxQueue& tq, std::size_t q, bool woken);
  /// Notices a peer that takes nothing for tx_stall_timeout: stops holding back for it.
  void watch_stall(TxQueue& tq);
  void on_stall_timer(TxQueue& tq, const boost::system::error_code& ec,
                      const std::weak_ptr<bool>& alive);
  /// Sends what it can of what waits in `tq` for port q's `fd`; true when nothing waits, else
  /// `err` says why (EAGAIN: full again).
  virtual bool flush_tx(TxQueue& tq, std::size_t q, int fd, int& err, CounterValues& tally);
  /// A new fd to watch for room on port q's `fd`: a dup (the fd itself may be in the same
  /// worker's epoll, for reading, and epoll takes an fd once).
  virtual int tx_watch_fd(std::size_t q, int fd);
  /// Before each wait on `watch_fd` (a unix dgram link points its probe at the peer again).
  virtual void tx_watch_rearm(int /*watch_fd*/) {}
  /// What frames waiting for a gone peer or fd count as.
  DropReason gone_reason() const;
  /// The TxTarget for port q's `fd`.
  TxTarget tx_target(int fd, TxBacklog* backlog) const;

 public:
  /// On worker `worker`'s thread: drops what waits for this link there (it goes down or
  /// leaves) and lets the dispatchers it holds read again.
  void release_tx(std::size_t worker);
  /// Destroys the back-pressure state (its waits and timers belong to the workers'
  /// io_contexts: this must happen before those go; the runtime's member order sees to it,
  /// tests call it). Nothing may be transmitting.
  void close_tx() { tx_queues_.clear(); }

 protected:
  unsigned workers_ = 1;
  std::size_t index_ = 0;
  std::atomic<bool> down_{false};
  std::atomic<std::uint64_t> down_count_{0};
  std::vector<int> retired_fds_;  ///< taken by mark_down(), closed later
  std::vector<std::unique_ptr<RxRing>> retired_rings_;

  LinkConfig config_;
  std::vector<std::unique_ptr<Port>> ports_;
  std::unique_ptr<PortCounters[]> counters_;  ///< [worker * ports + port]
  /// What the kernel counted (collect_kernel_counters): written by the stats thread only.
  std::unique_ptr<PortCounters[]> kernel_counters_;
  /// [worker * ports + port]; each made and used by its worker's thread.
  std::vector<std::unique_ptr<TxQueue>> tx_queues_;
  /// Expires with the link: handlers of waits it started check it first.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

/// The links of the running config, by name. A link keeps its index (Pass::ingress(), what a
/// bridge maps to its ports) for as long as it is in the set, across reloads: a reload takes
/// the links it removes out and puts new ones in free slots.
class LinkSet {
 public:
  /// Adds `link` in slot `index`, or in the first free slot when `index` is npos.
  void add(std::unique_ptr<Link> link, std::size_t index = npos);
  /// Takes link `name` out of the set (its slot becomes free); nullptr if there is none.
  std::unique_ptr<Link> take(std::string_view name);
  Link* find(std::string_view name) const;
  /// Every link, in slot order.
  const std::vector<Link*>& all() const { return list_; }
  /// How many slots there are (one past the largest index).
  std::size_t slots() const { return slots_.size(); }

  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

 private:
  void relist();
  std::vector<std::unique_ptr<Link>> slots_;
  std::vector<Link*> list_;
};

/// Builds the Link subclass for config.type (not yet opened).
std::unique_ptr<Link> make_link(const LinkConfig& config);

/// Whether the peer of a connected socket hung up (after a 0-byte read, which an empty message
/// also gives).
bool peer_hung_up(int fd);

/// "strerror" of an errno value, for LinkError messages.
std::string errno_text(int err);
/// The same, and for EPERM/EACCES which capability fdlinkd lacks and how to grant it.
std::string errno_text(int err, std::string_view capability);

}  // namespace fdlinkd
