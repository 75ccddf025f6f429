// VhostDevice: the backend side of the vhost-user protocol (QEMU's docs/interop/vhost-user.rst)
// for one virtio-net device: what the frontend's messages set up (features, the memory map,
// each virtqueue's size, addresses, base and eventfds, which queues are enabled), checked
// message by message. It knows no socket: the vhost_user link reads each message off its
// connection (VhostReader), hands it here, and sends the reply it gets back. A message that is
// malformed, comes out of order or asks for what was not offered is refused with the reason;
// the link then resets the connection.
//
// Offered: VERSION_1, ANY_LAYOUT, INDIRECT_DESC, EVENT_IDX, MRG_RXBUF, IN_ORDER (the device
// already takes and returns every queue's chains in the order the driver offered them; a
// driver that knows it can then hand out descriptors in table order: DPDK's virtio-user takes
// its in-order paths, which cost the device fewer misses), RING_PACKED (the driver picks the
// packed ring or the split one; QEMU's packed=on, virtio-user's packed_vq=1), and (with
// offloads)
// CSUM, GUEST_CSUM, HOST_TSO4/6, HOST_ECN, GUEST_TSO4/6, GUEST_ECN; protocol features MQ,
// REPLY_ACK and CONFIGURE_MEM_SLOTS. Not offered: VHOST_F_LOG_ALL and LOG_SHMFD (dirty-page
// logging), so QEMU blocks live migration of the guest ("Migration disabled: vhost-user backend
// lacks VHOST_USER_PROTOCOL_F_LOG_SHMFD feature") instead of migrating it with pages fdlinkd
// wrote left unsent; IOMMU.
//
// Rings: stopped until SET_VRING_KICK, stopped again by GET_VRING_BASE; enabled by
// SET_VRING_ENABLE once protocol features are negotiated (else as soon as started). Every
// change to a queue's state, and every change to the memory map, happens under that queue's
// mutex (the map: under all of them), so the data path sees either the old or the new state
// and never a region being unmapped.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "link/guest_memory.hpp"
#include "link/virtqueue.hpp"

namespace fdlinkd {

namespace vhost {
// Front-end requests (vhost-user.rst, "Front-end message types").
enum Request : std::uint32_t {
  kGetFeatures = 1,
  kSetFeatures = 2,
  kSetOwner = 3,
  kResetOwner = 4,
  kSetMemTable = 5,
  kSetLogBase = 6,
  kSetLogFd = 7,
  kSetVringNum = 8,
  kSetVringAddr = 9,
  kSetVringBase = 10,
  kGetVringBase = 11,
  kSetVringKick = 12,
  kSetVringCall = 13,
  kSetVringErr = 14,
  kGetProtocolFeatures = 15,
  kSetProtocolFeatures = 16,
  kGetQueueNum = 17,
  kSetVringEnable = 18,
  kGetMaxMemSlots = 36,
  kAddMemReg = 37,
  kRemMemReg = 38,
};
inline constexpr std::uint32_t kVersion = 1, kVersionMask = 3, kReplyFlag = 1u << 2,
                               kNeedReply = 1u << 3;
// Protocol feature bits.
inline constexpr unsigned kProtoMq = 0, kProtoLogShmfd = 1, kProtoReplyAck = 3,
                          kProtoConfigureMemSlots = 15;
inline constexpr std::size_t kHeaderSize = 12;
/// The largest payload fdlinkd reads: SET_MEM_TABLE with 8 regions (8 + 8 * 32).
inline constexpr std::size_t kMaxPayload = 264;
/// At most this many fds come with one message (one per region of SET_MEM_TABLE).
inline constexpr std::size_t kMaxFds = 8;
/// The queue index in SET_VRING_KICK/CALL/ERR's payload, and the flag for "no fd".
inline constexpr std::uint64_t kVringIndexMask = 0xff, kVringNoFd = 1u << 8;
}  // namespace vhost

/// A request's name for logs ("SET_MEM_TABLE"), or "request N".
std::string vhost_request_name(std::uint32_t request);

/// One message off the connection: the header's request and flags, its payload, and the fds
/// that came with it (owned by whoever handles the message).
struct VhostMessage {
  std::uint32_t request = 0;
  std::uint32_t flags = 0;
  std::span<const std::uint8_t> payload;
  std::span<const int> fds;
};

/// What the device tells the link as the frontend sets it up. Called on the control thread,
/// never under a queue's mutex.
class VhostHooks {
 public:
  virtual ~VhostHooks() = default;
  /// Queue `vq` has a new kick eventfd (-1: none any more). The device owns the fd; the link
  /// watches it (a transmit queue's, for its dispatcher) until told otherwise.
  virtual void kick_changed(std::size_t vq, int fd) = 0;
  /// Queue `vq` was started or enabled: frames may wait in it already.
  virtual void queue_woken(std::size_t vq) = 0;
};

class VhostDevice {
 public:
  /// A device with `pairs` queue pairs (receive queue 2i, transmit queue 2i + 1), offering
  /// checksum and segmentation offloads when `offloads`.
  VhostDevice(std::size_t pairs, bool offloads, VhostHooks& hooks);
  ~VhostDevice();
  VhostDevice(const VhostDevice&) = delete;
  VhostDevice& operator=(const VhostDevice&) = delete;

  /// The reply to send, if any: its payload (the header is the link's to write).
  struct Reply {
    bool send = false;
    std::uint8_t payload[24] = {};
    std::uint32_t size = 0;
  };
  /// Handles one message. Its fds are the device's from now on: it keeps those it uses and
  /// closes the others. Returns "" when the message is fine, else what is wrong with it (the
  /// link resets the connection, after sending `reply` if it says so: REPLY_ACK's failure).
  std::string handle(const VhostMessage& m, Reply& reply);
  /// The connection ended: stops every queue, closes their fds and unmaps the memory, as the
  /// device was before the frontend came.
  void reset();

  std::size_t queue_count() const { return vqs_.size(); }
  VirtQueue& vq(std::size_t i) { return *vqs_[i]; }
  const VirtQueue& vq(std::size_t i) const { return *vqs_[i]; }
  /// What the device offers, and what the driver took (SET_FEATURES; 0 before).
  std::uint64_t offered() const { return offered_; }
  std::uint64_t features() const { return features_.load(std::memory_order_acquire); }
  std::uint64_t protocol_features() const {
    return protocol_features_.load(std::memory_order_acquire);
  }
  bool has(unsigned feature_bit) const { return features() & virtio::bit(feature_bit); }
  /// The virtio-net header's length with the features taken: 12 or 10.
  std::size_t header_len() const {
    return has(virtio::kVersion1) || has(virtio::kNetMrgRxbuf) ? 12 : 10;
  }
  /// Memory regions mapped now (under any queue's mutex, or on the control thread).
  std::size_t regions() const { return mem_ ? mem_->size() : 0; }

 private:
  /// handle() but for REPLY_ACK's answer.
  std::string apply(const VhostMessage& m, Reply& reply);
  std::string set_features(std::uint64_t v);
  std::string set_mem_table(const VhostMessage& m);
  std::string add_mem_reg(const VhostMessage& m);
  std::string rem_mem_reg(const VhostMessage& m);
  /// SET_VRING_KICK/CALL/ERR. `fd` is the message's fd (-1: none), closed by handle() unless
  /// this keeps it (then it sets it to -1, or to an old fd for handle() to close).
  std::string vring_fd(const VhostMessage& m, int& fd);
  /// Checks queue index `i` and that the ring is stopped if `stopped`.
  std::string check_queue(std::uint64_t i, std::string_view what, bool stopped) const;
  void lock_all();
  void unlock_all();
  /// Remaps every started ring after a memory change (all queues locked): false when one no
  /// longer lies in memory.
  bool remap_started();
  void stop(std::size_t i);
  /// Whether the frontend uses protocol features: it set them (QEMU does so, and enables
  /// rings, before SET_FEATURES), or its driver took VHOST_USER_F_PROTOCOL_FEATURES.
  bool protocol_negotiated() const { return protocol_set_ || has(virtio::kProtocolFeatures); }

  VhostHooks& hooks_;
  std::uint64_t offered_ = 0;
  std::uint64_t offered_protocol_ = 0;
  std::atomic<std::uint64_t> features_{0};
  std::atomic<std::uint64_t> protocol_features_{0};
  bool protocol_set_ = false;
  std::vector<std::unique_ptr<VirtQueue>> vqs_;
  std::vector<int> kick_fds_, err_fds_;
  std::unique_ptr<GuestMemory> mem_;
};

/// Reads whole messages off a vhost-user connection: the 12-byte header (with the fds that
/// came with it), then the payload, never past the end of a message. Nonblocking: a message
/// may arrive in pieces.
class VhostReader {
 public:
  enum class Step { message, again, closed, error };
  ~VhostReader() { drop_fds(); }
  /// Reads what `fd` has toward the next message. message: a whole one is in message(); again:
  /// wait for more; closed: EOF; error: `error()` says what (a payload too large, too many
  /// fds, a read error).
  Step read(int fd);
  /// The whole message read last; its fds pass to the caller.
  VhostMessage message();
  const std::string& error() const { return error_; }
  /// Forgets a message in progress (a new connection).
  void reset() {
    drop_fds();
    have_ = 0;
  }

 private:
  void drop_fds();
  std::uint8_t buf_[vhost::kHeaderSize + vhost::kMaxPayload] = {};
  std::size_t have_ = 0;
  int fds_[vhost::kMaxFds] = {};
  std::size_t nfds_ = 0;
  std::string error_;
};

}  // namespace fdlinkd
