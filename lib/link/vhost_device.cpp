#include "link/vhost_device.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/errno_text.hpp"

namespace fdlinkd {

namespace {

using namespace vhost;
using virtio::bit;

std::uint64_t u64_at(std::span<const std::uint8_t> p, std::size_t off) {
  std::uint64_t v;
  std::memcpy(&v, p.data() + off, sizeof v);
  return v;
}

std::uint32_t u32_at(std::span<const std::uint8_t> p, std::size_t off) {
  std::uint32_t v;
  std::memcpy(&v, p.data() + off, sizeof v);
  return v;
}

std::string hex(std::uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

GuestRegionDesc region_at(std::span<const std::uint8_t> p, std::size_t off) {
  return {u64_at(p, off), u64_at(p, off + 8), u64_at(p, off + 16), u64_at(p, off + 24)};
}

// The payload each request must have: its exact size (or, for SET_MEM_TABLE, checked there).
constexpr std::size_t kU64 = 8, kState = 8, kAddr = 40, kRegion = 40;

}  // namespace

std::string vhost_request_name(std::uint32_t r) {
  switch (r) {
    case kGetFeatures: return "GET_FEATURES";
    case kSetFeatures: return "SET_FEATURES";
    case kSetOwner: return "SET_OWNER";
    case kResetOwner: return "RESET_OWNER";
    case kSetMemTable: return "SET_MEM_TABLE";
    case kSetLogBase: return "SET_LOG_BASE";
    case kSetLogFd: return "SET_LOG_FD";
    case kSetVringNum: return "SET_VRING_NUM";
    case kSetVringAddr: return "SET_VRING_ADDR";
    case kSetVringBase: return "SET_VRING_BASE";
    case kGetVringBase: return "GET_VRING_BASE";
    case kSetVringKick: return "SET_VRING_KICK";
    case kSetVringCall: return "SET_VRING_CALL";
    case kSetVringErr: return "SET_VRING_ERR";
    case kGetProtocolFeatures: return "GET_PROTOCOL_FEATURES";
    case kSetProtocolFeatures: return "SET_PROTOCOL_FEATURES";
    case kGetQueueNum: return "GET_QUEUE_NUM";
    case kSetVringEnable: return "SET_VRING_ENABLE";
    case kGetMaxMemSlots: return "GET_MAX_MEM_SLOTS";
    case kAddMemReg: return "ADD_MEM_REG";
    case kRemMemReg: return "REM_MEM_REG";
    default: return "request " + std::to_string(r);
  }
}

VhostDevice::VhostDevice(std::size_t pairs, bool offloads, VhostHooks& hooks)
    : hooks_(hooks), mem_(std::make_unique<GuestMemory>()) {
  offered_ = bit(virtio::kVersion1) | bit(virtio::kAnyLayout) | bit(virtio::kRingIndirectDesc) |
             bit(virtio::kRingEventIdx) | bit(virtio::kNetMrgRxbuf) |
             bit(virtio::kProtocolFeatures) | bit(virtio::kInOrder) | bit(virtio::kRingPacked);
  if (offloads)
    offered_ |= bit(virtio::kNetCsum) | bit(virtio::kNetGuestCsum) | bit(virtio::kNetHostTso4) |
                bit(virtio::kNetHostTso6) | bit(virtio::kNetHostEcn) | bit(virtio::kNetGuestTso4) |
                bit(virtio::kNetGuestTso6) | bit(virtio::kNetGuestEcn);
  // Several queue pairs: the driver picks how many through its control queue, which the
  // frontend (QEMU, virtio-user) serves itself and never hands over.
  if (pairs > 1) offered_ |= bit(virtio::kNetMq) | bit(virtio::kNetCtrlVq);
  offered_protocol_ = bit(kProtoMq) | bit(kProtoReplyAck) | bit(kProtoConfigureMemSlots);
  for (std::size_t i = 0; i < 2 * pairs; ++i) {
    vqs_.push_back(std::make_unique<VirtQueue>());
    vqs_.back()->mem = mem_.get();
  }
  kick_fds_.assign(vqs_.size(), -1);
  err_fds_.assign(vqs_.size(), -1);
}

VhostDevice::~VhostDevice() {
  reset();
}

void VhostDevice::lock_all() {
  for (auto& q : vqs_)
    q->mutex.lock();
}

void VhostDevice::unlock_all() {
  for (auto it = vqs_.rbegin(); it != vqs_.rend(); ++it) {
    (*it)->update_live();
    (*it)->mutex.unlock();
  }
}

void VhostDevice::reset() {
  for (std::size_t i = 0; i < vqs_.size(); ++i) {
    if (kick_fds_[i] >= 0) {
      hooks_.kick_changed(i, -1);
      ::close(kick_fds_[i]);
      kick_fds_[i] = -1;
    }
    if (err_fds_[i] >= 0) ::close(err_fds_[i]);
    err_fds_[i] = -1;
  }
  lock_all();
  for (auto& q : vqs_) {
    if (q->call_fd >= 0) ::close(q->call_fd);
    q->call_fd = -1;
    q->started = q->enabled = q->broken = q->addr_set = false;
    q->event_idx = q->indirect = q->packed = false;
    q->size = 0;
    q->set_base(0);
    q->unmap();
  }
  mem_->clear();
  unlock_all();
  features_ = 0;
  protocol_features_ = 0;
  protocol_set_ = false;
}

std::string VhostDevice::check_queue(std::uint64_t i, std::string_view what, bool stopped) const {
  if (i >= vqs_.size())
    return std::string(what) + " for queue " + std::to_string(i) + ", but the device has " +
           std::to_string(vqs_.size()) + " queues (" + std::to_string(vqs_.size() / 2) +
           " pairs: set queues in the link)";
  if (stopped && vqs_[i]->started)
    return std::string(what) + " for queue " + std::to_string(i) + " while it runs";
  return "";
}

void VhostDevice::stop(std::size_t i) {
  VirtQueue& q = *vqs_[i];
  {
    std::lock_guard lock(q.mutex);
    q.started = false;
    q.unmap();
    q.update_live();
  }
  if (kick_fds_[i] >= 0) {
    hooks_.kick_changed(i, -1);
    ::close(kick_fds_[i]);
    kick_fds_[i] = -1;
  }
}

bool VhostDevice::remap_started() {
  bool ok = true;
  for (auto& q : vqs_) {
    q->mem = mem_.get();
    if (q->started && q->size != 0 && !q->map()) {
      q->broken = true;
      ok = false;
    }
  }
  return ok;
}

std::string VhostDevice::handle(const VhostMessage& m, Reply& reply) {
  const std::string err = apply(m, reply);
  // REPLY_ACK: a frontend that asks hears 0 (done) or 1 (refused) for a message that has no
  // reply of its own, whatever made it fail.
  if ((m.flags & kNeedReply) && (protocol_features() & bit(kProtoReplyAck)) && !reply.send) {
    const std::uint64_t v = err.empty() ? 0 : 1;
    reply.send = true;
    reply.size = 8;
    std::memcpy(reply.payload, &v, 8);
  }
  return err;
}

std::string VhostDevice::apply(const VhostMessage& m, Reply& reply) {
  // The fds this message brings, closed on return unless taken (set to -1 here).
  int fds[kMaxFds];
  const std::size_t nfds = std::min(m.fds.size(), kMaxFds);
  for (std::size_t i = 0; i < nfds; ++i)
    fds[i] = m.fds[i];
  struct Closer {
    int* fds;
    std::size_t n;
    ~Closer() {
      for (std::size_t i = 0; i < n; ++i)
        if (fds[i] >= 0) ::close(fds[i]);
    }
  } closer{fds, nfds};
  int spare = -1;  // (the fd slot of a message that brought none)

  const auto p = m.payload;
  const std::string name = vhost_request_name(m.request);
  auto expect = [&](std::size_t size) -> std::string {
    if (p.size() != size)
      return name + " with a payload of " + std::to_string(p.size()) + " bytes (expected " +
             std::to_string(size) + ")";
    return "";
  };
  auto no_fds = [&]() -> std::string {
    if (nfds != 0 && m.request != kRemMemReg)  // (REM_MEM_REG may carry one: closed)
      return name + " with " + std::to_string(nfds) + " fds (it takes none)";
    return "";
  };
  auto answer_u64 = [&](std::uint64_t v) {
    reply.send = true;
    reply.size = 8;
    std::memcpy(reply.payload, &v, 8);
  };
  if ((m.flags & kVersionMask) != kVersion)
    return name + " with version " + std::to_string(m.flags & kVersionMask) + " (expected 1)";

  std::string err;
  switch (m.request) {
    case kGetFeatures:
    case kGetProtocolFeatures:
    case kGetQueueNum:
    case kGetMaxMemSlots:
      if (!(err = expect(0)).empty() || !(err = no_fds()).empty()) return err;
      if (m.request == kGetMaxMemSlots && !(protocol_features() & bit(kProtoConfigureMemSlots)))
        return name + " without CONFIGURE_MEM_SLOTS negotiated";
      if (m.request == kGetQueueNum && !(protocol_features() & bit(kProtoMq)))
        return name + " without MQ negotiated";
      answer_u64(m.request == kGetFeatures           ? offered_
                 : m.request == kGetProtocolFeatures ? offered_protocol_
                 : m.request == kGetQueueNum         ? vqs_.size() / 2
                                                     : GuestMemory::kMaxRegions);
      return "";
    case kSetFeatures:
      if (!(err = expect(kU64)).empty() || !(err = no_fds()).empty()) return err;
      err = set_features(u64_at(p, 0));
      break;
    case kSetProtocolFeatures: {
      if (!(err = expect(kU64)).empty() || !(err = no_fds()).empty()) return err;
      const std::uint64_t v = u64_at(p, 0);
      if (v & ~offered_protocol_)
        return name + " " + hex(v) + " asks for protocol features not offered (" +
               hex(v & ~offered_protocol_) + ")";
      protocol_features_ = v;
      protocol_set_ = true;
      break;
    }
    case kSetOwner:
    case kResetOwner:
      if (!(err = expect(0)).empty() || !(err = no_fds()).empty()) return err;
      if (m.request == kResetOwner)  // (deprecated: taken as "stop every ring")
        for (std::size_t i = 0; i < vqs_.size(); ++i)
          stop(i);
      break;
    case kSetMemTable:
      err = set_mem_table(m);  // (a mapping holds its file: the fds are closed here)
      break;
    case kAddMemReg: err = add_mem_reg(m); break;
    case kRemMemReg: err = rem_mem_reg(m); break;
    case kSetVringNum: {
      if (!(err = expect(kState)).empty() || !(err = no_fds()).empty()) return err;
      const std::uint32_t i = u32_at(p, 0), num = u32_at(p, 4);
      if (!(err = check_queue(i, name, true)).empty()) return err;
      // (0: DPDK's virtio-user sends it for a queue it leaves unused; such a ring cannot start)
      if (num > VirtQueue::kMaxSize)
        return name + " " + std::to_string(num) + " for queue " + std::to_string(i) +
               ": a ring holds up to 32768 descriptors";
      if (!has(virtio::kRingPacked) && (num & (num - 1)) != 0)
        return name + " " + std::to_string(num) + " for queue " + std::to_string(i) +
               ": a split ring's size is a power of two up to 32768";
      std::lock_guard lock(vqs_[i]->mutex);
      vqs_[i]->size = num;
      break;
    }
    case kSetVringAddr: {
      if (!(err = expect(kAddr)).empty() || !(err = no_fds()).empty()) return err;
      const std::uint32_t i = u32_at(p, 0);
      if (!(err = check_queue(i, name, false)).empty()) return err;
      VirtQueue& q = *vqs_[i];
      std::lock_guard lock(q.mutex);
      q.desc_uva = u64_at(p, 8);
      q.used_uva = u64_at(p, 16);
      q.avail_uva = u64_at(p, 24);
      q.addr_set = true;
      if (q.started && !q.map()) {
        q.broken = true;
        q.update_live();
        return name + " for running queue " + std::to_string(i) + ": a ring outside memory";
      }
      break;
    }
    case kSetVringBase: {
      if (!(err = expect(kState)).empty() || !(err = no_fds()).empty()) return err;
      const std::uint32_t i = u32_at(p, 0), base = u32_at(p, 4);
      if (!(err = check_queue(i, name, true)).empty()) return err;
      // Packed: QEMU adds the used position in bits 16-31 (as GET_VRING_BASE gives it); the
      // device takes and returns chains in order, so the next used descriptor goes where the
      // next chain begins, and the available position (bits 0-15) is all it needs.
      const bool packed = has(virtio::kRingPacked);
      if (base > 0xffff && !packed)
        return name + " " + std::to_string(base) + ": beyond a 16-bit index";
      std::lock_guard lock(vqs_[i]->mutex);
      vqs_[i]->packed = packed;  // (how the base reads)
      vqs_[i]->set_base(static_cast<std::uint16_t>(base & 0xffff));
      break;
    }
    case kGetVringBase: {
      if (!(err = expect(kState)).empty() || !(err = no_fds()).empty()) return err;
      const std::uint32_t i = u32_at(p, 0);
      if (!(err = check_queue(i, name, false)).empty()) return err;
      stop(i);
      std::uint32_t state[2];
      state[0] = i;
      {
        std::lock_guard lock(vqs_[i]->mutex);
        state[1] = vqs_[i]->base();
      }
      reply.send = true;
      reply.size = sizeof state;
      std::memcpy(reply.payload, state, sizeof state);
      return "";
    }
    case kSetVringKick:
    case kSetVringCall:
    case kSetVringErr: err = vring_fd(m, nfds == 0 ? spare : fds[0]); break;
    case kSetVringEnable: {
      if (!(err = expect(kState)).empty() || !(err = no_fds()).empty()) return err;
      const std::uint32_t i = u32_at(p, 0), on = u32_at(p, 4);
      if (!(err = check_queue(i, name, false)).empty()) return err;
      if (!protocol_negotiated()) return name + " without protocol features negotiated";
      if (on > 1) return name + " " + std::to_string(on) + " (0 or 1)";
      {
        std::lock_guard lock(vqs_[i]->mutex);
        vqs_[i]->enabled = on == 1;
        vqs_[i]->update_live();
      }
      if (on) hooks_.queue_woken(i);
      break;
    }
    case kSetLogBase:
    case kSetLogFd:
      return name +
             ": fdlinkd does not log dirty pages (no live migration; VHOST_F_LOG_ALL is "
             "not offered)";
    default: return "unsupported " + name + " (not offered)";
  }
  return err;
}

std::string VhostDevice::set_features(std::uint64_t v) {
  if (v & ~offered_) {
    const std::uint64_t extra = v & ~offered_;
    if (extra & bit(virtio::kLogAll))
      return "SET_FEATURES with VHOST_F_LOG_ALL: fdlinkd does not log dirty pages, so the guest "
             "cannot be live-migrated";
    return "SET_FEATURES " + hex(v) + " asks for features not offered (" + hex(extra) + ")";
  }
  features_ = v;
  lock_all();
  for (auto& q : vqs_) {
    q->event_idx = v & bit(virtio::kRingEventIdx);
    q->indirect = v & bit(virtio::kRingIndirectDesc);
    if (!q->started) q->packed = v & bit(virtio::kRingPacked);
    // Without protocol features a started ring is enabled at once.
    if (q->started && !protocol_negotiated()) q->enabled = true;
  }
  unlock_all();
  return "";
}

std::string VhostDevice::set_mem_table(const VhostMessage& m) {
  const auto p = m.payload;
  if (p.size() < 8) return "SET_MEM_TABLE cut short (" + std::to_string(p.size()) + " bytes)";
  const std::uint32_t n = u32_at(p, 0);
  if (n == 0 || n > 8)
    return "SET_MEM_TABLE with " + std::to_string(n) + " regions (1 to 8; more with ADD_MEM_REG)";
  if (p.size() != 8 + 32 * std::size_t{n})
    return "SET_MEM_TABLE of " + std::to_string(n) + " regions in " + std::to_string(p.size()) +
           " bytes (expected " + std::to_string(8 + 32 * n) + ")";
  if (m.fds.size() != n)
    return "SET_MEM_TABLE of " + std::to_string(n) + " regions with " +
           std::to_string(m.fds.size()) + " fds";
  auto next = std::make_unique<GuestMemory>();
  for (std::uint32_t i = 0; i < n; ++i) {
    const std::string why = next->add(region_at(p, 8 + 32 * std::size_t{i}), m.fds[i]);
    if (!why.empty()) return "SET_MEM_TABLE region " + std::to_string(i) + ": " + why;
  }
  lock_all();
  std::swap(mem_, next);
  const bool ok = remap_started();
  unlock_all();
  next.reset();  // the old map, unmapped now that no queue points into it
  if (!ok) return "SET_MEM_TABLE leaves a running ring outside memory";
  return "";
}

std::string VhostDevice::add_mem_reg(const VhostMessage& m) {
  if (!(protocol_features() & bit(kProtoConfigureMemSlots)))
    return "ADD_MEM_REG without CONFIGURE_MEM_SLOTS negotiated";
  if (m.payload.size() != kRegion)
    return "ADD_MEM_REG with a payload of " + std::to_string(m.payload.size()) +
           " bytes (expected 40)";
  if (m.fds.size() != 1)
    return "ADD_MEM_REG with " + std::to_string(m.fds.size()) + " fds (expected 1)";
  lock_all();
  const std::string why = mem_->add(region_at(m.payload, 8), m.fds[0]);
  unlock_all();
  if (!why.empty()) return "ADD_MEM_REG: " + why;
  return "";
}

std::string VhostDevice::rem_mem_reg(const VhostMessage& m) {
  if (!(protocol_features() & bit(kProtoConfigureMemSlots)))
    return "REM_MEM_REG without CONFIGURE_MEM_SLOTS negotiated";
  if (m.payload.size() != kRegion)
    return "REM_MEM_REG with a payload of " + std::to_string(m.payload.size()) +
           " bytes (expected 40)";
  if (m.fds.size() > 1) return "REM_MEM_REG with " + std::to_string(m.fds.size()) + " fds";
  lock_all();
  const bool found = mem_->remove(region_at(m.payload, 8));
  const bool ok = remap_started();
  unlock_all();
  mem_->unmap_removed();
  if (!found) return "REM_MEM_REG of a region that is not mapped";
  if (!ok) return "REM_MEM_REG takes away memory a running ring lies in";
  return "";
}

std::string VhostDevice::vring_fd(const VhostMessage& m, int& fd) {
  const std::string name = vhost_request_name(m.request);
  if (m.payload.size() != kU64)
    return name + " with a payload of " + std::to_string(m.payload.size()) + " bytes (expected 8)";
  const std::uint64_t v = u64_at(m.payload, 0);
  const std::size_t i = v & kVringIndexMask;
  const bool nofd = v & kVringNoFd;
  if (v & ~(kVringIndexMask | kVringNoFd)) return name + " " + hex(v) + ": unknown bits";
  if (std::string err = check_queue(i, name, false); !err.empty()) return err;
  if (m.fds.size() != (nofd ? 0u : 1u))
    return name + " with " + std::to_string(m.fds.size()) + " fds and the no-fd flag " +
           (nofd ? "set" : "clear");
  VirtQueue& q = *vqs_[i];
  if (m.request == kSetVringCall) {
    int old;
    {
      std::lock_guard lock(q.mutex);
      old = q.call_fd;
      q.call_fd = fd;  // (-1 with the no-fd flag: the driver polls)
    }
    fd = old;  // (closed by handle())
    return "";
  }
  if (m.request == kSetVringErr) {
    std::swap(err_fds_[i], fd);
    return "";
  }
  // SET_VRING_KICK: the queue starts.
  if (nofd)
    return name +
           " without an eventfd: the frontend would have fdlinkd poll the queue; "
           "fdlinkd waits for kicks";
  if (kick_fds_[i] >= 0) {
    hooks_.kick_changed(i, -1);
    ::close(kick_fds_[i]);
  }
  kick_fds_[i] = fd;
  fd = -1;
  bool mapped;
  {
    std::lock_guard lock(q.mutex);
    q.mem = mem_.get();
    q.event_idx = has(virtio::kRingEventIdx);
    q.indirect = has(virtio::kRingIndirectDesc);
    q.packed = has(virtio::kRingPacked);
    q.started = true;
    if (!protocol_negotiated()) q.enabled = true;
    // A ring of size 0 (DPDK's virtio-user kicks one it leaves unused) starts and stays idle:
    // it has no buffers, and the data path never looks at it (it is not ready()).
    mapped = q.size == 0 || q.map();
    if (!mapped) q.broken = true;
    q.update_live();
  }
  if (!mapped)
    return name + " for queue " + std::to_string(i) +
           ": its size or ring addresses were not set, or lie outside memory";
  hooks_.kick_changed(i, kick_fds_[i]);
  hooks_.queue_woken(i);
  return "";
}

// --- VhostReader -------------------------------------------------------------------------------

void VhostReader::drop_fds() {
  for (std::size_t i = 0; i < nfds_; ++i)
    ::close(fds_[i]);
  nfds_ = 0;
}

VhostReader::Step VhostReader::read(int fd) {
  for (;;) {
    std::size_t want = vhost::kHeaderSize;
    if (have_ >= vhost::kHeaderSize) {
      std::uint32_t size;
      std::memcpy(&size, buf_ + 8, 4);
      if (size > vhost::kMaxPayload) {
        error_ = "a message with a payload of " + std::to_string(size) + " bytes (at most " +
                 std::to_string(vhost::kMaxPayload) + ")";
        return Step::error;
      }
      want = vhost::kHeaderSize + size;
      if (have_ == want) return Step::message;
    }
    iovec iov{buf_ + have_, want - have_};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * vhost::kMaxFds)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return Step::again;
      error_ = "read: " + errno_text(errno);
      return Step::error;
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const std::size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t j = 0; j < k; ++j) {
        int f;
        std::memcpy(&f, CMSG_DATA(c) + j * sizeof(int), sizeof f);
        if (nfds_ < vhost::kMaxFds)
          fds_[nfds_++] = f;
        else
          ::close(f);
      }
    }
    if (msg.msg_flags & MSG_CTRUNC) {
      error_ = "a message with more than " + std::to_string(vhost::kMaxFds) + " fds";
      return Step::error;
    }
    if (n == 0) return Step::closed;
    have_ += static_cast<std::size_t>(n);
  }
}

VhostMessage VhostReader::message() {
  VhostMessage m;
  std::memcpy(&m.request, buf_, 4);
  std::memcpy(&m.flags, buf_ + 4, 4);
  m.payload = {buf_ + vhost::kHeaderSize, have_ - vhost::kHeaderSize};
  m.fds = {fds_, nfds_};
  nfds_ = 0;  // (the caller's now)
  have_ = 0;  // the next read starts a new message; the payload stays until then
  return m;
}

}  // namespace fdlinkd
