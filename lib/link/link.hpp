// Link: the fds of one [[link]], how frames come in through them and how they leave.
//
// A link type is a class of its own in one file pair named after its TOML type (af_packet,
// af_xdp, tap, unix, vxlan), with a row in the table of link types (link_types.hpp): its keys,
// their reader, its factory. Like a netdev class of Open vSwitch, it owns both directions:
//   receive  make_rx_queue(): the queue a dispatcher reads a port through (rx.hpp); plain fds
//            get the shared readers (readv, recvmmsg), a ring or a UMEM or a stream its own;
//   send     transmit() fits a batch to the link (writer/egress.hpp: checksums, GSO, MTU) and
//            hands it to send_batch(), which picks each frame's port by flow hash and writes
//            (writer/writer.hpp: sendmmsg for sockets, one write per frame for TAP/TUN), or
//            does what the type does instead (TX rings, AF_XDP rings, VXLAN datagrams).
// A link has one Port per fd. Opening happens once, on the main thread, before any worker
// runs (inside the link's network namespace if it names one); a failure throws LinkError with
// a message for the operator. A link to a local peer waits for it when it is full
// (writer/backpressure.hpp) instead of dropping.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "core/batch.hpp"
#include "core/counters.hpp"
#include "core/errno_text.hpp"
#include "core/port_reader.hpp"
#include "core/worker.hpp"
#include "writer/backpressure.hpp"
#include "writer/egress.hpp"
#include "writer/writer.hpp"

namespace fdlinkd {

class RxQueue;

class LinkError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One fd of a link. `fd` is -1 while there is none (a unix seqpacket link without a connected
/// peer); workers that transmit read it without a lock.
struct Port {
  std::atomic<int> fd{-1};
};

class Link : protected TxPort {
 public:
  explicit Link(const LinkConfig& config);
  ~Link() override;
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  const LinkConfig& config() const { return config_; }
  const std::string& name() const { return config_.name; }
  /// This link's place in the config's [[link]] list (what Pass::ingress() reports).
  std::size_t index() const { return index_; }
  void set_index(std::size_t i) { index_ = i; }
  /// Unique among the Links this process has made (an address may be reused, this is not).
  std::uint64_t serial() const { return serial_; }
  std::size_t port_count() const { return ports_.size(); }
  Port& port(std::size_t i) { return *ports_[i]; }
  const Port& port(std::size_t i) const { return *ports_[i]; }

  /// Opens every fd, inside config().netns when set. `workers` is how many threads may
  /// transmit on the link (links with per-thread TX state size it by that). Throws LinkError.
  void open(unsigned workers = 1);
  /// Sizes the per-worker counters and back-pressure for `workers` threads (open() does it).
  void set_workers(unsigned workers);

  /// The counters of port `port` that worker `worker` writes (one writer each).
  PortCounters& counters(std::size_t worker, std::size_t port) {
    return counters_[worker * ports_.size() + port];
  }
  /// Port `port`'s counters summed over the workers.
  CounterValues port_totals(std::size_t port) const;
  /// Sum of all ports' counters.
  CounterValues totals() const;

  // --- Receiving ---------------------------------------------------------------------------
  /// The queue through which the dispatcher of port `port` on worker `w` reads into `batch`
  /// (its slots hold config().rx_capacity()). The default reads a plain fd (rx.hpp).
  virtual std::unique_ptr<RxQueue> make_rx_queue(std::size_t port, Worker& w, Batch& batch);
  /// What the link reads its fds with, for the link_open event ("readv", "packet_mmap", ...).
  virtual std::string_view reader_name() const { return dispatch_mode_name(config_.dispatch); }
  /// Hands each port to its reader (readers[i] reads port i). A unix listener overrides this
  /// to accept a peer first.
  virtual void start(const std::vector<PortReader*>& readers);
  /// A reload removes the link: stops what it runs besides its readers (a unix listener's
  /// accept) and gives back what it holds by name (the socket file). On reader 0's thread.
  virtual void stop() {}
  /// A reload changed only where the link's frames go (its `sink`). Control thread.
  void set_sink(std::string sink) { config_.sink = std::move(sink); }
  /// Reader `r` saw port i's fd end (EOF, or the device is gone). The default logs it and
  /// leaves the port silent; links that can recover (a unix listener) override it.
  virtual void port_closed(std::size_t i, PortReader& r);
  /// Whether a 0-byte read on `fd` means the peer hung up (seqpacket) rather than an empty
  /// message.
  virtual bool zero_read_is_eof(int /*fd*/) const { return false; }
  /// Links whose readers read one shared socket (vxlan links on one port) return the same
  /// non-null value: their readers run on one worker, which keeps each flow in order.
  virtual const void* rx_group() const { return nullptr; }

  // --- Sending -----------------------------------------------------------------------------
  /// What the link's fds take of what a frame may carry (virtio-net header, offloads, size);
  /// the default says what the config does. (vhost_user: what the guest negotiated.)
  virtual EgressCaps egress_caps() const;
  /// Sends every frame of `batch` out of this link on worker `w`, and counts the outcome per
  /// port: first fitted to the link (egress.hpp: checksums finished, super-frames segmented,
  /// headers), then sent by send_batch(). Frames another output also holds are not changed.
  void transmit(Worker& w, Batch& batch);
  /// On worker `worker`'s thread: drops what waits for this link there (it goes down or
  /// leaves) and lets the readers it holds back read again.
  void release_tx(std::size_t worker) { backpressure_.release(worker); }
  /// Destroys the back-pressure state (its waits and timers belong to the workers'
  /// io_contexts: this must happen before those go; the runtime's member order sees to it,
  /// tests call it). Nothing may be transmitting.
  void close_tx() { backpressure_.clear(); }

  // --- Going down and coming back (runtime/ drives it; see InterfaceWatcher) ---------------
  /// Whether the link follows an interface (config().interface): it goes down and up with it.
  bool has_interface() const { return !config_.interface.empty(); }
  /// Whether the link is down: its interface is gone or down; frames sent to it count as
  /// link_down, its readers are parked.
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
  /// The ifindex the fds are bound to (af_packet, af_xdp), or 0.
  virtual unsigned ifindex() const { return 0; }
  /// Whether fdlinkd created the link's device (a TAP/TUN), so it makes it again when deleted.
  virtual bool owns_device() const { return false; }
  /// Whether a link whose interface is only down (not deleted) keeps its fds (a TAP: closing
  /// them would delete its device).
  virtual bool keeps_fds_while_down() const { return false; }

  // --- What the link reports ---------------------------------------------------------------
  /// Adds what the kernel counted on its side of the fds (frames it dropped before fdlinkd
  /// could read them) to the ports' counters. Called from the stats timer, on the thread that
  /// owns kernel_counters_.
  virtual void collect_kernel_counters() {}
  /// One line for logs: "af_packet veth0", "unix /run/x.sock", ...
  virtual std::string describe() const;
  /// A tunnel's remote endpoints (a vxlan link's VTEPs), with what went to and came from
  /// each, summed over the workers.
  struct RemoteStats {
    std::string remote;
    std::uint64_t tx_packets = 0, tx_bytes = 0, rx_packets = 0, rx_bytes = 0;
  };
  virtual std::vector<RemoteStats> remote_stats() const { return {}; }
  /// What the link knows of its peer beyond the counters (a vhost-user frontend: connected,
  /// the features it took; each queue's state), for status, stats and metrics.
  struct Facts {
    std::vector<std::pair<std::string, std::string>> link;
    std::vector<std::vector<std::pair<std::string, std::string>>> ports;  ///< by port
  };
  virtual Facts facts() const { return {}; }
  /// Named counts of what happened to the link's peer (connects, resets by reason).
  virtual std::vector<std::pair<std::string, std::uint64_t>> events() const { return {}; }
  /// Whether the link is a tunnel with remote endpoints (remote_stats(), remote_of()).
  virtual bool has_remotes() const { return false; }
  /// The remote endpoint a MAC was learned behind ("" : none, or not a tunnel).
  virtual std::string remote_of(const std::uint8_t* /*mac*/) const { return ""; }

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
  /// retire_fds() took the fds away: a type retires what goes with them (an af_packet link's
  /// rings), to be freed in its close_retired().
  virtual void on_retire() {}
  /// Closes and forgets port i's fd.
  void close_port(std::size_t i);
  /// Makes the ports anew: `n` of them (a type that learns its fd count at open: af_xdp).
  void resize_ports(std::size_t n);
  /// Sends a batch that fits the link. With several fds, each frame's fd is picked by flow
  /// hash, and each fd gets its frames in one system call, in their original order.
  virtual void send_batch(Worker& w, Batch& batch);
  /// Sends the frames of `batch` bound for port q (all when select < 0) and counts them there.
  void send_on_port(Worker& w, Batch& batch, std::size_t q, int select);
  /// The TxTarget for port q's `fd`.
  virtual TxTarget tx_target(int fd, TxBacklog* backlog) const;

  // --- TxPort: back-pressure's view of the link ----------------------------------------------
  int tx_fd(std::size_t q) const override { return ports_[q]->fd.load(std::memory_order_relaxed); }
  bool flush_tx(TxQueue& tq, std::size_t q, int fd, int& err, CounterValues& tally) override;
  int tx_watch_fd(std::size_t q, int fd) override;
  DropReason tx_gone_reason() const override { return DropReason::link_down; }
  void tx_count(std::size_t worker, std::size_t q, const CounterValues& tally) override {
    counters(worker, q).add(tally);
  }
  const std::string& tx_name() const override { return config_.name; }

  unsigned workers_ = 1;
  /// Back-pressure even without tx_backlog (a stream link waits to finish a frame a write cut
  /// short); set before set_workers().
  bool tx_always_ = false;
  std::size_t index_ = 0;
  std::atomic<bool> down_{false};
  std::atomic<std::uint64_t> down_count_{0};
  std::vector<int> retired_fds_;  ///< taken by mark_down(), closed later

  LinkConfig config_;
  std::uint64_t serial_;
  std::vector<std::unique_ptr<Port>> ports_;
  std::unique_ptr<PortCounters[]> counters_;  ///< [worker * ports + port]
  /// What the kernel counted (collect_kernel_counters): written by the stats thread only.
  std::unique_ptr<PortCounters[]> kernel_counters_;
  /// Frames waiting for a full local peer (tx_backlog), per worker and port.
  Backpressure backpressure_{*this};
};

/// Whether the peer of a connected socket hung up (after a 0-byte read, which an empty message
/// also gives).
bool peer_hung_up(int fd);

}  // namespace fdlinkd
