// Dispatcher: reads frames from one fd in batches and runs each batch through the graph,
// starting at the link's sink.
//
// The fd is wrapped in an Asio descriptor; async_wait(wait_read) wakes the dispatcher, which
// then drains the fd with plain non-blocking system calls (readv: one frame per call, any fd;
// recvmmsg: a batch per call, sockets only) into its one reusable Batch, or takes the frames
// where they lie in a PACKET_MMAP ring (packet_mmap), runs each batch through the graph (which
// sends everything before it returns), and waits again. After kMaxBatchesPerWake batches it yields
// (posts itself) so the other fds of the same worker get their turn.
//
// A frame that cannot be forwarded (runt, oversize) is counted under its reason and skipped:
// it never ends the loop. EOF or a dead device ends the fd: the link is told (port_closed).
//
// Back-pressure: when an output kept frames back for a full local peer during a pass
// (Worker::held), the dispatcher does not read again until that output releases it (it has
// sent them, or stopped waiting for a stalled peer): its fd's kernel queue fills meanwhile, as
// a wire's would. Other dispatchers of the worker go on.
#pragma once

#include <sys/socket.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <cstdint>
#include <memory>

#include "config/config.hpp"
#include "core/batch.hpp"
#include "core/counters.hpp"
#include "core/worker.hpp"
#include "dispatch/rx_ring.hpp"

namespace fdlinkd {

class Graph;
class Link;
class StreamFramer;
class VxlanLink;
class XskSocket;
struct Worker;

class Dispatcher : public HoldWaiter {
 public:
  static constexpr int kMaxBatchesPerWake = 16;
  /// Catches the bytes of a frame larger than a slot, so it is seen whole and dropped.
  static constexpr std::size_t kOverflowBytes = 64 * 1024;
  /// Reads port `port` of `link` on worker thread `worker`, whose batches go to `graph`'s node
  /// named by the link's `sink`.
  Dispatcher(Worker& worker, Link& link, std::size_t port, Graph& graph);
  ~Dispatcher() override;
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  /// Starts reading `fd` (owned by the link, not by the dispatcher). Call on the io thread or
  /// before it runs.
  void attach(int fd);
  /// Stops reading (and waiting on a hold); the fd stays open.
  void detach();
  /// The output that held it back has room again: read on.
  void resume() override;

  /// Reload: batches from now on go to node `root` of `graph`, from the link with index
  /// `ingress`. Call on the io thread, between batches.
  void set_graph(Graph& graph, std::size_t root, std::size_t ingress);

  boost::asio::io_context& io() { return io_; }
  Worker& worker() { return worker_; }
  Link& link() { return link_; }
  std::size_t port() const { return port_; }

 private:
  enum class ReadEnd { drained, full, closed };

  void wait();
  void on_ready();
  /// Fills batch_ with the mode of the link; says whether the fd is drained.
  ReadEnd read(CounterValues& tally);
  ReadEnd read_readv(CounterValues& tally);
  ReadEnd read_recvmmsg(CounterValues& tally);
  ReadEnd read_ring(CounterValues& tally);
  /// An af_xdp link: the frames of the AF_XDP socket's RX ring, where they lie in the UMEM.
  ReadEnd read_xsk(CounterValues& tally);
  /// A V2 ring slot too small for its frame (TP_STATUS_COPY): reads the frame whole from the
  /// socket's queue into the batch slot it would take; false when it is not there (counted).
  bool read_copied(const RxRing::Frame& f, std::uint8_t*& data, std::size_t& len,
                   CounterValues& tally);
  /// A stream socket: reads what is there and cuts it into frames (StreamFramer).
  ReadEnd read_stream(CounterValues& tally);
  /// A vxlan link's UDP socket: recvmmsg, each datagram's VXLAN header into the slot's
  /// headroom, checked by the link (VxlanLink::check_rx).
  ReadEnd read_vxlan(CounterValues& tally);
  /// Runs batch_ through the graph: as one batch, or per vxlan link when it holds frames of
  /// several (one socket, several VNIs).
  void run_batch();
  /// vxlan: (re)reads who shares the socket, as the current graph knows them.
  void refresh_members();
  /// packet_mmap: a wake-up with no frame in the ring; collects a pending socket error.
  ReadEnd ring_woke_empty(CounterValues& tally);
  /// Checks one received frame: pushes it into the batch (true) or counts why it was dropped.
  /// `vnet`: a virtio-net header sits before it (the link's own setting, or a vxlan link's
  /// super-frame that was given one).
  bool accept_frame(std::uint8_t* data, std::size_t len, bool truncated, CounterValues& tally,
                    bool vnet);
  bool accept_frame(std::uint8_t* data, std::size_t len, bool truncated, CounterValues& tally) {
    return accept_frame(data, len, truncated, tally, vnet_);
  }
  /// Sets the receive time of every frame of batch_ to now.
  void stamp_time();
  /// Handles a failed read; returns how the loop ends.
  ReadEnd read_error(int err, CounterValues& tally);
  /// af_packet: the VLAN tag PACKET_AUXDATA in control buffer `i` reports, put back into the
  /// frame at `data` (which then starts 4 bytes earlier, as returned), and the receive time
  /// SCM_TIMESTAMPNS reports into rx_ns.
  std::uint8_t* read_aux(std::size_t i, std::uint8_t* data, std::size_t& len,
                         std::size_t msg_controllen, std::int64_t& rx_ns) const;

  boost::asio::io_context& io_;
  Worker& worker_;
  Link& link_;
  std::size_t port_;
  Graph* graph_;
  std::size_t root_;     ///< the graph node of the link's sink
  std::size_t ingress_;  ///< the link's index
  boost::asio::posix::stream_descriptor desc_;
  int fd_ = -1;
  std::uint64_t generation_ = 0;  ///< bumped by detach(): stale wake-ups are ignored
  DispatchMode mode_;
  std::size_t min_frame_;
  bool socket_;  ///< the fd is a socket (recvmsg), not a TAP/TUN character device (readv)
  std::size_t wire_capacity_;  ///< the largest frame the link's MTU allows (not GSO)
  bool vnet_;  ///< reads start with a virtio-net header (stored just before the frame)
  Batch batch_;
  std::unique_ptr<std::uint8_t[]> overflow_;
  RxRing* ring_ = nullptr;                ///< packet_mmap: the port's ring
  XskSocket* xsk_ = nullptr;              ///< af_xdp: the queue's AF_XDP socket
  bool xsk_partial_ = false;              ///< af_xdp on a veth/TUN: complete offloaded checksums
  std::unique_ptr<StreamFramer> framer_;  ///< a unix stream link: the bytes read, cut up
  VxlanLink* vxlan_ = nullptr;            ///< a vxlan link
  std::unique_ptr<sockaddr_storage[]> senders_;  ///< vxlan: who sent each datagram
  /// vxlan: the links on the socket this one reads (itself included), by VNI.
  struct VxlanMember {
    std::uint32_t vni = 0;
    VxlanLink* link = nullptr;
    std::size_t ingress = 0, root = 0;
    CounterValues tally;  ///< what a pass received for it (another link than link_)
  };
  std::vector<VxlanMember> members_;
  std::unique_ptr<std::uint16_t[]> member_of_;  ///< per frame of batch_: its member
  bool mixed_ = false;                          ///< batch_ holds other links' frames
  std::unique_ptr<Batch> demux_;                ///< a view: one member's frames of batch_
  /// af_packet without a ring: one PACKET_AUXDATA control buffer per batch slot.
  std::unique_ptr<std::uint8_t[]> aux_;
  int last_error_ = 0;  ///< the errno last logged, to log a repeating error once
};

}  // namespace fdlinkd
