// vhost_user: fdlinkd as the vhost-user backend of a virtio-net device: a VM's NIC (QEMU
// `-netdev vhost-user`), or a DPDK application's (`--vdev net_virtio_user0,path=...`). The
// frames cross in the frontend's own memory: the guest's virtqueues, which fdlinkd maps, with
// kicks and calls over eventfds; no system call per frame.
//
// Connecting: `path` is the socket. By default fdlinkd listens there (QEMU connects:
// `-chardev socket,id=c0,path=P -netdev vhost-user,id=n0,chardev=c0`) and takes the next
// frontend when one goes (a guest powered off, a QEMU restarted). With `client = true` fdlinkd
// connects to a frontend that listens (`-chardev socket,...,server=on`) and connects again
// whenever it goes, after 100 ms doubling up to 5 s: either side can restart. A socket that
// systemd made (a .socket unit naming fdlinkd's service, ListenStream=PATH) is taken instead of
// binding one.
//
// The protocol is vhost_device.hpp's; the rings are virtqueue.hpp's. Each queue pair of the
// device (`queues`, with MQ) is a port of the link: its dispatcher waits on an epoll fd that
// holds the transmit queue's kick eventfd (and fdlinkd's own wake-up), so the frontend may
// change the kick fd at any time without the dispatcher noticing. Frames the guest sends are
// copied into the batch (one copy: the guest may change its buffers at any time); frames for
// the guest are copied into its receive buffers (MRG_RXBUF: as many as a frame needs), with
// the virtio-net header fdlinkd already speaks, so checksum offload and TSO cross whole when
// the guest negotiated them and are finished or cut by egress when not.
//
// A full guest: with tx_backlog (256 by default) frames wait for it and the links that feed it
// stop reading (writer/backpressure.hpp), woken by the guest's kick when it adds buffers; one
// that takes nothing for tx_stall_timeout stops holding them back.
//
// The frontend is untrusted: a malformed or out-of-order message, or a ring or descriptor it
// points outside its memory (VqFault), resets it: the link counts it under its reason
// (events(): reset_<reason>), logs it and closes the connection; the daemon and other links go
// on, and the next frontend starts afresh.
//
// Keys: path (required), client, queues, offloads, socket_mode, socket_group, tx_backlog,
// tx_stall_timeout, gso_max_size, plus the common keys.
#pragma once

#include <atomic>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "config/link_keys.hpp"
#include "link/link.hpp"
#include "link/link_types.hpp"
#include "link/vhost_device.hpp"

namespace fdlinkd {

struct VhostUserOptions : LinkOptions {
  std::string path;
  bool client = false;   ///< fdlinkd connects to `path` (else it listens)
  unsigned queues = 1;   ///< queue pairs (MQ)
  bool offloads = true;  ///< offer checksum offload and TSO both ways
  SocketFile file;       ///< mode and group of the socket file fdlinkd makes
};

class VhostUserLink : public Link, private VhostHooks {
 public:
  static const LinkType kType;

  explicit VhostUserLink(const LinkConfig& config);
  ~VhostUserLink() override;

  std::unique_ptr<RxQueue> make_rx_queue(std::size_t port, Worker& w, Batch& batch) override;
  std::string_view reader_name() const override { return "virtqueue"; }
  void start(const std::vector<PortReader*>& readers) override;
  void stop() override;
  void port_closed(std::size_t, PortReader&) override {}
  std::string describe() const override;
  EgressCaps egress_caps() const override;
  Facts facts() const override;
  std::vector<std::pair<std::string, std::uint64_t>> events() const override;
  const VhostUserOptions& options() const { return o_; }

  /// The frontend broke queue `vq`'s rules (data path, under the queue's mutex): the queue
  /// stops, the fault is counted and logged, and the connection is shut down (the control
  /// thread then resets the device).
  void frontend_fault(std::size_t vq, VqFault fault);
  VhostDevice& device() { return device_; }

 protected:
  void open_fds() override;
  void send_batch(Worker& w, Batch& batch) override;
  int tx_fd(std::size_t q) const override;
  bool flush_tx(TxQueue& tq, std::size_t q, int fd, int& err, CounterValues& tally) override;
  int tx_watch_fd(std::size_t q, int fd) override;
  void tx_watch_rearm(std::size_t q, int watch_fd) override;
  bool tx_watch_readable() const override { return true; }
  DropReason tx_gone_reason() const override { return DropReason::no_peer; }

 private:
  // VhostHooks (control thread)
  void kick_changed(std::size_t vq, int fd) override;
  void queue_woken(std::size_t vq) override;

  // The connection (control thread: reader 0's).
  void accept_frontend();
  void wait_for_frontend();
  void try_connect();
  void retry_connect(std::chrono::milliseconds after);
  void begin_session(int fd);
  void read_messages();
  /// Ends the connection: the device forgets the frontend; `why` is logged (empty: it hung
  /// up), and counted as reset_<reason> when `reason` is set.
  void end_session(const std::string& why, std::string_view reason);
  bool send_reply(std::uint32_t request, const VhostDevice::Reply& r);

  /// Sends the frames of `batch` bound for queue pair q (all when select < 0).
  void send_on_pair(Worker& w, Batch& batch, std::size_t q, int select);
  /// Asks the guest to kick when it adds receive buffers to pair q; writes `watch_fd` (its
  /// kick's dup) when some are there already. Under the queue's mutex.
  void arm_room(std::size_t q, int watch_fd);

  const VhostUserOptions& o_;
  VhostDevice device_;
  std::vector<int> wake_fds_;      ///< per pair: fdlinkd's own wake-up, in the port's epoll fd
  std::vector<int> watched_kick_;  ///< per queue: the kick fd in its pair's epoll fd (tx)
  std::vector<int> rx_kick_;       ///< per pair: the receive queue's kick fd (under its mutex)
  std::atomic<int> session_{-1};   ///< the connection's number while there is one, else -1
  int sessions_ = 0;
  std::atomic<int> conn_fd_{-1};
  int listen_fd_ = -1;
  bool bound_ = false;
  bool from_systemd_ = false;  ///< the listening socket is systemd's (not unlinked)
  PortReader* reader_ = nullptr;
  std::unique_ptr<boost::asio::posix::stream_descriptor> acceptor_, conn_;
  std::unique_ptr<boost::asio::steady_timer> retry_;
  std::chrono::milliseconds backoff_{100};
  int connect_error_ = 0;
  VhostReader reader_state_;
  // Counts (events()): connections, and resets by reason.
  std::atomic<std::uint64_t> connects_{0};
  std::atomic<std::uint64_t> reset_bad_message_{0};
  std::atomic<std::uint64_t> reset_fault_[16] = {};  ///< by VqFault
  std::vector<VqFault> tx_fault_;                    ///< per pair, under its receive queue's mutex
  bool stopping_ = false;                            ///< stop() ran (control thread)
};

}  // namespace fdlinkd
