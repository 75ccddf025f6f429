// The vhost-user device side without a socket or a VM: a split or packed virtqueue in a memfd that
// the test writes as a driver would (tests/fuzz/guest_rig.hpp), the frames taken from it and put
// into it, every fault a hostile driver can cause, the device's answers to message sequences,
// and the message reader on a real socketpair.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "../fuzz/guest_rig.hpp"
#include "link/vhost_device.hpp"
#include "link/virtqueue.hpp"

using namespace fdlinkd;
using namespace fdlinkd::test;

namespace {

constexpr std::size_t kHdr = 12;  // VERSION_1's virtio-net header

// Writes a 12-byte virtio-net header with `flags` and then `len` frame bytes at gpa `at`.
void write_frame(GuestRig& g, std::uint64_t at, std::size_t len, std::uint8_t tag) {
  std::memset(g.view + at, 0, kHdr);
  for (std::size_t i = 0; i < len; ++i)
    g.view[at + kHdr + i] = static_cast<std::uint8_t>(tag + i);
}

bool frame_is(const Batch& b, std::size_t i, std::size_t len, std::uint8_t tag) {
  if (b[i].len != len) return false;
  for (std::size_t k = 0; k < len; ++k)
    if (b[i].data[k] != static_cast<std::uint8_t>(tag + k)) return false;
  return true;
}

struct Taken {
  RxEnd end;
  VqFault fault = VqFault::none;
  CounterValues tally;
};
Taken take(VirtQueue& q, Batch& b, bool discard = false) {
  Taken t;
  std::lock_guard lock(q.mutex);
  t.end = take_frames(q, b, guest_limits(b), kHdr, discard, t.tally, t.fault);
  return t;
}

}  // namespace

TEST_CASE("vhost: a guest's frames enter a batch whole or split over descriptors and regions") {
  GuestRig g;
  VirtQueue q;
  g.setup(q, 8);
  Batch b(64, 2048);
  // Chain 0: one descriptor, header and 60 bytes.
  write_frame(g, 0x3000, 60, 1);
  g.desc(0, 0x3000, kHdr + 60);
  // Chain 1: the header split 5 + 7, then the frame in two pieces.
  write_frame(g, 0x4000, 100, 2);
  g.desc(1, 0x4000, 5, virtio::kDescNext, 2);
  g.desc(2, 0x4005, 7, virtio::kDescNext, 3);
  g.desc(3, 0x400c, 100);
  // Chain 4: a buffer across the boundary of the two memory regions.
  write_frame(g, GuestRig::kHalf - 40, 200, 3);
  g.desc(4, GuestRig::kHalf - 40, kHdr + 200);
  g.offer(0);
  g.offer(1);
  g.offer(4);
  const Taken t = take(q, b);
  REQUIRE(t.fault == VqFault::none);
  CHECK(t.end == RxEnd::drained);
  REQUIRE(b.size() == 3);
  CHECK(frame_is(b, 0, 60, 1));
  CHECK(frame_is(b, 1, 100, 2));
  CHECK(frame_is(b, 2, 200, 3));
  // All three are returned used, in order, with nothing written.
  CHECK(g.used_idx() == 3);
  CHECK(g.used_id(0) == 0);
  CHECK(g.used_id(1) == 1);
  CHECK(g.used_id(2) == 4);
  CHECK(g.used_len(1) == 0);
  CHECK(t.tally.rx_packets == 3);
}

TEST_CASE(
    "vhost: a short chain is a runt and a large one oversize and a disabled queue drops as "
    "no_peer") {
  GuestRig g;
  VirtQueue q;
  g.setup(q, 8);
  Batch b(64, 256);
  g.desc(0, 0x3000, 6);  // shorter than the header
  write_frame(g, 0x4000, 400, 5);
  g.desc(1, 0x4000, kHdr + 400);  // larger than a slot
  g.offer(0);
  g.offer(1);
  Taken t = take(q, b);
  CHECK(t.fault == VqFault::none);
  CHECK(b.size() == 0);
  CHECK(t.tally.drop(DropReason::runt) == 1);
  CHECK(t.tally.drop(DropReason::oversize) == 1);
  CHECK(g.used_idx() == 2);  // (taken and returned all the same)

  write_frame(g, 0x3000, 60, 1);
  g.desc(0, 0x3000, kHdr + 60);
  g.offer(0);
  t = take(q, b, true);
  CHECK(b.size() == 0);
  CHECK(t.tally.drop(DropReason::no_peer) == 1);
  CHECK(g.used_idx() == 3);
}

TEST_CASE("vhost: a full batch stops the walk and the rest waits in the ring") {
  GuestRig g;
  VirtQueue q;
  g.setup(q, 16);
  Batch b(4, 2048);
  for (std::uint16_t i = 0; i < 6; ++i) {
    write_frame(g, 0x3000 + 0x100 * i, 60, static_cast<std::uint8_t>(i));
    g.desc(i, 0x3000 + 0x100 * i, kHdr + 60);
    g.offer(i);
  }
  Taken t = take(q, b);
  CHECK(t.end == RxEnd::full);
  CHECK(b.size() == 4);
  CHECK(g.used_idx() == 4);
  b.clear();
  t = take(q, b);
  CHECK(t.end == RxEnd::drained);
  CHECK(b.size() == 2);
  CHECK(frame_is(b, 1, 60, 5));
  CHECK(g.used_idx() == 6);
}

TEST_CASE("vhost: each hostile chain is named and taken no further") {
  GuestRig g;
  VirtQueue q;
  Batch b(64, 2048);
  struct Case {
    const char* what;
    VqFault want;
  };
  const Case cases[] = {
      {"a buffer past the end of memory", VqFault::bad_address},
      {"a buffer whose length wraps around", VqFault::bad_address},
      {"a chain that loops", VqFault::chain_loop},
      {"a next index past the table", VqFault::bad_descriptor},
      {"an available entry past the table", VqFault::bad_head},
      {"an available index that jumps past the ring", VqFault::bad_avail_index},
      {"an indirect table not negotiated", VqFault::bad_indirect},
      {"an indirect table inside an indirect table", VqFault::bad_indirect},
      {"an indirect table outside memory", VqFault::bad_address},
      {"a device-writable buffer in a send chain", VqFault::wrong_direction},
  };
  for (std::size_t c = 0; c < std::size(cases); ++c) {
    SECTION(cases[c].what) {
      const bool indirect = c == 7 || c == 8;
      g.setup(q, 8, false, indirect);
      write_frame(g, 0x3000, 60, 1);
      g.desc(0, 0x3000, kHdr + 60);  // a good chain first: it is taken
      g.offer(0);
      switch (c) {
        case 0: g.desc(1, GuestRig::kSize - 10, 20); break;
        case 1: g.desc(1, 0x3000, 0xffffffff); break;
        case 2:
          g.desc(1, 0x3000, 20, virtio::kDescNext, 2);
          g.desc(2, 0x3000, 20, virtio::kDescNext, 1);
          break;
        case 3: g.desc(1, 0x3000, 20, virtio::kDescNext, 8); break;
        case 4: break;
        case 5: break;
        case 6: g.desc(1, 0x5000, 16, virtio::kDescIndirect); break;
        case 7:
          g.desc(1, 0x5000, 16, virtio::kDescIndirect);
          g.desc(0, 0x6000, 16, virtio::kDescIndirect, 0, 0x5000);
          break;
        case 8: g.desc(1, GuestRig::kSize - 16, 32, virtio::kDescIndirect); break;
        case 9: g.desc(1, 0x3000, 20, virtio::kDescWrite); break;
      }
      if (c == 4)
        g.offer(9);
      else if (c == 5)
        g.set_avail_idx(1 + 9);  // 10 waiting in a ring of 8
      else
        g.offer(1);
      const Taken t = take(q, b);
      CHECK(t.fault == cases[c].want);
      // A bad available index is seen before anything is taken; otherwise the good chain
      // went through and the bad one was not returned.
      CHECK(b.size() == (c == 5 ? 0u : 1u));
      CHECK(g.used_idx() == (c == 5 ? 0 : 1));
    }
  }
}

TEST_CASE("vhost: an indirect table is read when negotiated") {
  GuestRig g;
  VirtQueue q;
  g.setup(q, 8, false, true);
  Batch b(64, 2048);
  write_frame(g, 0x3000, 80, 7);
  g.desc(0, 0x3000, kHdr, virtio::kDescNext, 1, 0x5000);
  g.desc(1, 0x3000 + kHdr, 80, 0, 0, 0x5000);
  g.desc(3, 0x5000, 32, virtio::kDescIndirect);
  g.offer(3);
  const Taken t = take(q, b);
  REQUIRE(t.fault == VqFault::none);
  REQUIRE(b.size() == 1);
  CHECK(frame_is(b, 0, 80, 7));
}

TEST_CASE("vhost: frames to the guest fill mergeable buffers and say how many") {
  GuestRig g;
  VirtQueue q;
  g.setup(q, 8);
  for (std::uint16_t i = 0; i < 4; ++i) {
    g.desc(i, 0x3000 + 0x100 * i, 40, virtio::kDescWrite);
    g.offer(i);
  }
  std::uint8_t hdr[kHdr] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  std::vector<std::uint8_t> frame(90);
  for (std::size_t i = 0; i < frame.size(); ++i)
    frame[i] = static_cast<std::uint8_t>(i);
  VqFault fault = VqFault::none;
  std::lock_guard lock(q.mutex);
  // 12 + 90 = 102 bytes: three buffers of 40.
  REQUIRE(put_frame(q, hdr, kHdr, true, frame.data(), frame.size(), fault) == PutResult::sent);
  q.publish_used();
  CHECK(g.used_idx() == 3);
  CHECK(g.used_len(0) == 40);
  CHECK(g.used_len(2) == 22);
  std::uint16_t num_buffers;
  std::memcpy(&num_buffers, g.view + 0x3000 + 10, 2);
  CHECK(num_buffers == 3);
  CHECK(g.view[0x3000] == 1);
  CHECK(std::memcmp(g.view + 0x3000 + kHdr, frame.data(), 28) == 0);
  CHECK(std::memcmp(g.view + 0x3100, frame.data() + 28, 40) == 0);
  CHECK(std::memcmp(g.view + 0x3200, frame.data() + 68, 22) == 0);
  // One buffer of 40 left: the next frame does not fit and takes nothing.
  CHECK(put_frame(q, hdr, kHdr, true, frame.data(), frame.size(), fault) == PutResult::ring_full);
  CHECK(q.last_avail == 3);
  CHECK(q.used_idx == 3);
  // Without MRG_RXBUF a frame must fit one chain.
  CHECK(put_frame(q, hdr, kHdr, false, frame.data(), frame.size(), fault) == PutResult::too_big);
  CHECK(q.last_avail == 3);
  CHECK(put_frame(q, hdr, kHdr, false, frame.data(), 20, fault) == PutResult::sent);
  CHECK(q.used_idx == 4);
  // A read-only descriptor in a receive chain is the driver's fault.
  g.desc(4, 0x3400, 200);
  g.offer(4);
  CHECK(put_frame(q, hdr, kHdr, true, frame.data(), 20, fault) == PutResult::fault);
  CHECK(fault == VqFault::wrong_direction);
}

TEST_CASE("vhost: the driver is interrupted only when it asked") {
  GuestRig g;
  VirtQueue q;
  g.setup(q, 8, true);
  const int efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  REQUIRE(efd >= 0);
  q.call_fd = efd;
  auto calls = [&] {
    std::uint64_t v = 0;
    return ::read(efd, &v, 8) == 8 ? v : 0;
  };
  std::lock_guard lock(q.mutex);
  g.set_used_event(2);  // "interrupt me once entry 2 is used"
  q.put_used(0, 0);
  q.publish_used();
  q.call_if_needed();  // (the first call is always made: nothing was signalled before)
  CHECK(calls() == 1);
  q.put_used(1, 0);
  q.publish_used();
  q.call_if_needed();
  CHECK(calls() == 0);  // used index 2: not past the event yet
  q.put_used(2, 0);
  q.publish_used();
  q.call_if_needed();
  CHECK(calls() == 1);  // used index 3 passes used_event 2
  q.call_if_needed();
  CHECK(calls() == 0);  // nothing new
  ::close(efd);
}

TEST_CASE("vhost: a memfd truncated under the ring faults back to the caller") {
  GuestRig g;
  VirtQueue q;
  g.setup(q, 8);
  write_frame(g, 0x9000, 60, 1);
  g.desc(0, 0x9000, kHdr + 60);
  g.offer(0);
  REQUIRE(::ftruncate(g.fd, 0x4000) == 0);  // the buffer's page is gone, the rings are not
  Batch b(64, 2048);
  Taken t;
  std::lock_guard lock(q.mutex);
  const bool finished =
      guarded([&] { t.end = take_frames(q, b, guest_limits(b), kHdr, false, t.tally, t.fault); });
  CHECK_FALSE(finished);
  REQUIRE(::ftruncate(g.fd, GuestRig::kSize) == 0);
}

namespace {

struct NoHooks : VhostHooks {
  std::vector<std::pair<std::size_t, int>> kicks;
  void kick_changed(std::size_t vq, int fd) override { kicks.emplace_back(vq, fd); }
  void queue_woken(std::size_t) override {}
};

struct Frontend {
  NoHooks hooks;
  VhostDevice dev{1, true, hooks};
  VhostDevice::Reply reply;
  std::string send(std::uint32_t req, std::vector<std::uint8_t> payload = {},
                   std::vector<int> fds = {}, std::uint32_t flags = vhost::kVersion) {
    VhostMessage m;
    m.request = req;
    m.flags = flags;
    m.payload = payload;
    m.fds = fds;
    reply = {};
    return dev.handle(m, reply);
  }
  std::uint64_t reply_u64() const {
    std::uint64_t v = 0;
    std::memcpy(&v, reply.payload, 8);
    return v;
  }
};

std::vector<std::uint8_t> u64s(std::initializer_list<std::uint64_t> v) {
  std::vector<std::uint8_t> out;
  for (std::uint64_t x : v)
    for (int i = 0; i < 8; ++i)
      out.push_back(static_cast<std::uint8_t>(x >> (8 * i)));
  return out;
}
std::vector<std::uint8_t> state(std::uint32_t index, std::uint32_t num) {
  std::vector<std::uint8_t> out(8);
  std::memcpy(out.data(), &index, 4);
  std::memcpy(out.data() + 4, &num, 4);
  return out;
}
bool fd_open(int fd) {
  return ::fcntl(fd, F_GETFD) != -1;
}

}  // namespace

TEST_CASE("vhost: the device follows a frontend's set-up and refuses what is out of place") {
  Frontend f;
  GuestRig g;
  REQUIRE(f.send(vhost::kGetFeatures).empty());
  const std::uint64_t offered = f.reply_u64();
  CHECK((offered & virtio::bit(virtio::kVersion1)) != 0);
  CHECK((offered & virtio::bit(virtio::kNetMrgRxbuf)) != 0);
  CHECK((offered & virtio::bit(virtio::kLogAll)) == 0);  // no dirty logging: no migration
  // A feature not offered is refused.
  CHECK_FALSE(f.send(vhost::kSetFeatures, u64s({offered | virtio::bit(virtio::kLogAll)})).empty());
  CHECK((offered & virtio::bit(virtio::kRingPacked)) != 0);
  // (without PROTOCOL_FEATURES: a ring is enabled as soon as it starts; the split ring)
  REQUIRE(f.send(vhost::kSetFeatures, u64s({offered & ~virtio::bit(virtio::kProtocolFeatures) &
                                            ~virtio::bit(virtio::kRingPacked)}))
              .empty());
  CHECK(f.dev.header_len() == 12);
  // Payloads of the wrong size, and fds where none belong (closed all the same).
  CHECK_FALSE(f.send(vhost::kSetVringNum, {1, 2, 3}).empty());
  const int stray = ::eventfd(0, EFD_CLOEXEC);
  CHECK_FALSE(f.send(vhost::kSetVringNum, state(0, 8), {stray}).empty());
  CHECK_FALSE(fd_open(stray));
  // A ring size that is not a power of two, a queue that does not exist.
  CHECK_FALSE(f.send(vhost::kSetVringNum, state(0, 6)).empty());
  CHECK_FALSE(f.send(vhost::kSetVringNum, state(2, 8)).empty());
  // The memory map: one region of the rig's memfd (the device keeps a mapping, not the fd).
  const int memfd = ::dup(g.fd);
  // (num_regions is a u32 and 4 bytes of padding: one u64 here; then gpa, size, uva, offset)
  std::vector<std::uint8_t> mt = u64s({1, 0, GuestRig::kSize, GuestRig::kUva, 0});
  REQUIRE(f.send(vhost::kSetMemTable, mt, {memfd}).empty());
  CHECK(f.dev.regions() == 1);
  CHECK_FALSE(fd_open(memfd));
  // A queue set up and kicked into life, then stopped by GET_VRING_BASE.
  REQUIRE(f.send(vhost::kSetVringNum, state(1, 8)).empty());
  std::vector<std::uint8_t> addr =
      u64s({1, GuestRig::kUva + GuestRig::kDesc, GuestRig::kUva + GuestRig::kUsed,
            GuestRig::kUva + GuestRig::kAvail, 0});
  REQUIRE(f.send(vhost::kSetVringAddr, addr).empty());
  REQUIRE(f.send(vhost::kSetVringBase, state(1, 5)).empty());
  const int kick = ::eventfd(0, EFD_CLOEXEC);
  REQUIRE(f.send(vhost::kSetVringKick, u64s({1}), {kick}).empty());
  CHECK(f.dev.vq(1).started);
  CHECK(f.dev.vq(1).ready());  // (no protocol features: enabled when started)
  REQUIRE(!f.hooks.kicks.empty());
  CHECK(f.hooks.kicks.back() == std::make_pair(std::size_t{1}, kick));
  CHECK_FALSE(f.send(vhost::kSetVringNum, state(1, 16)).empty());  // (not while it runs)
  REQUIRE(f.send(vhost::kGetVringBase, state(1, 0)).empty());
  std::uint32_t base[2];
  std::memcpy(base, f.reply.payload, 8);
  CHECK(base[0] == 1);
  CHECK(base[1] == 5);
  CHECK_FALSE(f.dev.vq(1).started);
  CHECK_FALSE(fd_open(kick));  // (the stopped ring's kick fd is closed)
  // A ring outside memory cannot start.
  addr = u64s({1, GuestRig::kUva + GuestRig::kSize, GuestRig::kUva + GuestRig::kUsed,
               GuestRig::kUva + GuestRig::kAvail, 0});
  REQUIRE(f.send(vhost::kSetVringAddr, addr).empty());
  CHECK_FALSE(f.send(vhost::kSetVringKick, u64s({1}), {::eventfd(0, EFD_CLOEXEC)}).empty());
  f.dev.reset();
  CHECK(f.dev.regions() == 0);
  CHECK(f.dev.features() == 0);
}

TEST_CASE("vhost: enable needs protocol features and REPLY_ACK answers every message") {
  Frontend f;
  REQUIRE(f.send(vhost::kGetProtocolFeatures).empty());
  const std::uint64_t proto = f.reply_u64();
  CHECK((proto & virtio::bit(vhost::kProtoReplyAck)) != 0);
  CHECK((proto & virtio::bit(vhost::kProtoLogShmfd)) == 0);
  CHECK_FALSE(f.send(vhost::kSetVringEnable, state(0, 1)).empty());  // not negotiated yet
  REQUIRE(f.send(vhost::kSetProtocolFeatures, u64s({proto})).empty());
  REQUIRE(f.send(vhost::kSetVringEnable, state(0, 1)).empty());
  CHECK(f.dev.vq(0).enabled);
  CHECK_FALSE(f.dev.vq(0).ready());  // (enabled, not started)
  // With need_reply, a good message is answered 0 and a bad one non-zero.
  REQUIRE(
      f.send(vhost::kSetVringNum, state(0, 8), {}, vhost::kVersion | vhost::kNeedReply).empty());
  CHECK(f.reply.send);
  CHECK(f.reply_u64() == 0);
  CHECK_FALSE(
      f.send(vhost::kSetVringNum, state(0, 7), {}, vhost::kVersion | vhost::kNeedReply).empty());
  CHECK(f.reply.send);
  CHECK(f.reply_u64() != 0);
  CHECK(f.send(vhost::kSetLogBase, u64s({0, 0})) != "");  // (no dirty logging)
  CHECK_FALSE(f.send(99).empty());
  CHECK_FALSE(f.send(vhost::kGetFeatures, {}, {}, 2).empty());  // version 2
}

TEST_CASE("vhost: the reader takes messages in pieces and refuses oversized ones") {
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
  VhostReader r;
  CHECK(r.read(sv[0]) == VhostReader::Step::again);
  std::uint8_t msg[12 + 8];
  const std::uint32_t hdr[3] = {vhost::kSetFeatures, vhost::kVersion, 8};
  std::memcpy(msg, hdr, 12);
  const std::uint64_t v = 0x1234;
  std::memcpy(msg + 12, &v, 8);
  // Seven bytes, then the rest.
  REQUIRE(::write(sv[1], msg, 7) == 7);
  CHECK(r.read(sv[0]) == VhostReader::Step::again);
  REQUIRE(::write(sv[1], msg + 7, sizeof msg - 7) == static_cast<ssize_t>(sizeof msg - 7));
  REQUIRE(r.read(sv[0]) == VhostReader::Step::message);
  const VhostMessage m = r.message();
  CHECK(m.request == vhost::kSetFeatures);
  REQUIRE(m.payload.size() == 8);
  CHECK(std::memcmp(m.payload.data(), &v, 8) == 0);
  r.reset();
  // A payload larger than any message fdlinkd takes.
  const std::uint32_t big[3] = {vhost::kSetMemTable, vhost::kVersion, 100000};
  REQUIRE(::write(sv[1], big, 12) == 12);
  CHECK(r.read(sv[0]) == VhostReader::Step::error);
  CHECK_FALSE(r.error().empty());
  ::close(sv[1]);
  r.reset();
  CHECK(r.read(sv[0]) == VhostReader::Step::closed);
  ::close(sv[0]);
}

// --- the packed ring ------------------------------------------------------------------------

namespace {

struct Put {
  PutResult r;
  VqFault fault = VqFault::none;
};
Put put(VirtQueue& q, const std::uint8_t* frame, std::size_t len, bool mergeable) {
  Put p;
  std::uint8_t hdr[kHdr] = {};
  hdr[10] = 1;
  std::lock_guard lock(q.mutex);
  p.r = put_frame(q, hdr, kHdr, mergeable, frame, len, p.fault);
  return p;
}
void publish(VirtQueue& q) {
  std::lock_guard lock(q.mutex);
  q.publish_used();
}

}  // namespace

TEST_CASE("vhost packed: frames are taken whole over three laps of the ring and returned by id") {
  GuestRig g;
  VirtQueue q;
  g.setup(q, 4, false, true, true);
  PackedDriver d{g, 4};
  Batch b(64, 2048);
  std::uint8_t tag = 1;
  // Chains of 1 and 2 descriptors (the header apart): 3 a round on a ring of 4, so they wrap
  // it at different places.
  for (int lap = 0; lap < 4; ++lap) {
    write_frame(g, 0x3000, 60, tag);
    d.offer({{0x3000, kHdr + 60}}, 7);
    write_frame(g, 0x4000, 100, static_cast<std::uint8_t>(tag + 1));
    d.offer({{0x4000, kHdr}, {0x4000 + kHdr, 100}}, 9);
    Taken t = take(q, b);
    REQUIRE(t.fault == VqFault::none);
    REQUIRE(b.size() == 2);
    CHECK(frame_is(b, 0, 60, tag));
    CHECK(frame_is(b, 1, 100, static_cast<std::uint8_t>(tag + 1)));
    std::uint16_t id = 0;
    std::uint32_t len = 1;
    REQUIRE(d.used(id, len));
    CHECK(id == 7);
    CHECK(len == 0);
    REQUIRE(d.used(id, len));
    CHECK(id == 9);
    CHECK_FALSE(d.used(id, len));  // (nothing more)
    b.clear();
    tag = static_cast<std::uint8_t>(tag + 2);
  }
  CHECK(q.last_avail == 0);   // 12 descriptors: three laps of 4
  CHECK_FALSE(q.avail_wrap);  // (flipped three times from 1)
  CHECK(q.base() == 0);       // (both positions 0, both wrap counters 0)
  // An indirect table of two descriptors takes one place in the ring.
  write_frame(g, 0x5000, 80, 50);
  const PackedDesc table[2] = {{0x5000, 20, 0, 0}, {0x5000 + 20, kHdr + 60, 0, 0}};
  std::memcpy(g.view + 0x6000, table, sizeof table);
  d.offer({{0x6000, sizeof table}}, 3, false, virtio::kDescIndirect);
  const Taken t = take(q, b);
  REQUIRE(t.fault == VqFault::none);
  REQUIRE(b.size() == 1);
  CHECK(frame_is(b, 0, 80, 50));
  std::uint16_t id = 0;
  std::uint32_t len = 0;
  REQUIRE(d.used(id, len));
  CHECK(id == 3);
  CHECK(q.last_avail == 1);
}

TEST_CASE("vhost packed: a frame fills mergeable buffers and one that does not fit takes none") {
  GuestRig g;
  VirtQueue q;
  g.setup(q, 8, false, false, true);
  PackedDriver d{g, 8};
  std::uint8_t frame[300];
  for (std::size_t i = 0; i < sizeof frame; ++i)
    frame[i] = static_cast<std::uint8_t>(i);
  // Two buffers of 200: the frame and its header take both, and num_buffers says 2.
  d.offer({{0x3000, 200}}, 1, true);
  d.offer({{0x4000, 200}}, 2, true);
  Put p = put(q, frame, 300, true);
  REQUIRE(p.r == PutResult::sent);
  std::uint16_t id = 0;
  std::uint32_t len = 0;
  CHECK_FALSE(d.used(id, len));  // (nothing visible before publish_used)
  publish(q);
  REQUIRE(d.used(id, len));
  CHECK((id == 1 && len == 200));
  REQUIRE(d.used(id, len));
  CHECK((id == 2 && len == kHdr + 300 - 200));
  CHECK(g.view[0x3000 + 10] == 2);
  CHECK(std::memcmp(g.view + 0x3000 + kHdr, frame, 200 - kHdr) == 0);
  CHECK(std::memcmp(g.view + 0x4000, frame + 200 - kHdr, 300 - (200 - kHdr)) == 0);
  // One buffer of 200 left: the frame does not fit, and the ring is left as the driver wrote
  // it (its descriptor unchanged, the device where it was).
  d.offer({{0x5000, 200}}, 4, true);
  std::uint8_t before[16];
  std::memcpy(before, g.view + GuestRig::kDesc + 16 * 2, 16);
  p = put(q, frame, 300, true);
  CHECK(p.r == PutResult::ring_full);
  publish(q);
  CHECK(std::memcmp(before, g.view + GuestRig::kDesc + 16 * 2, 16) == 0);
  CHECK(q.last_avail == 2);
  // Without mergeable buffers it is too big for one; a smaller frame fits.
  CHECK(put(q, frame, 300, false).r == PutResult::too_big);
  REQUIRE(put(q, frame, 100, false).r == PutResult::sent);
  publish(q);
  REQUIRE(d.used(id, len));
  CHECK((id == 4 && len == kHdr + 100));
}

TEST_CASE("vhost packed: calls follow the driver's event area and kicks the device's") {
  GuestRig g;
  VirtQueue q;
  g.setup(q, 8, true, false, true);
  PackedDriver d{g, 8};
  Batch b(64, 2048);
  const auto take_one = [&] {
    write_frame(g, 0x3000, 60, 1);
    d.offer({{0x3000, kHdr + 60}}, 1);
    b.clear();
    std::lock_guard lock(q.mutex);
    VqFault f = VqFault::none;
    CounterValues tally;
    take_frames(q, b, guest_limits(b), kHdr, false, tally, f);
    REQUIRE(f == VqFault::none);
    std::uint16_t id;
    std::uint32_t len;
    REQUIRE(d.used(id, len));
  };
  const auto calls = [&] {
    std::lock_guard lock(q.mutex);
    return q.should_call();
  };
  take_one();
  CHECK(calls());        // (the first: always)
  CHECK_FALSE(calls());  // (nothing new since)
  d.want(virtio::kEventDisable);
  take_one();
  CHECK_FALSE(calls());
  d.want(virtio::kEventEnable);
  take_one();
  CHECK(calls());
  // With EVENT_IDX: a call once the device writes the used descriptor the driver names. The
  // next it writes is at 3 (wrap 1): a wish for 4 is not met by 3, and is by 4.
  d.want(virtio::kEventDesc, 4, true);
  take_one();
  CHECK_FALSE(calls());
  take_one();
  CHECK(calls());
  // A wish on the next lap (position 1, wrap 0) is met only after the ring wraps: not by 5, 6,
  // 7 or 0, and by 1.
  d.want(virtio::kEventDesc, 1, false);
  for (int i = 0; i < 4; ++i) {
    take_one();
    CHECK_FALSE(calls());
  }
  take_one();
  CHECK(calls());
  // The device asks for no kicks while it takes frames, and for them again once drained.
  CHECK(d.device_flags() == virtio::kEventEnable);
  {
    std::lock_guard lock(q.mutex);
    q.suppress_kicks();
  }
  CHECK(d.device_flags() == virtio::kEventDisable);
  {
    std::lock_guard lock(q.mutex);
    CHECK_FALSE(q.enable_kicks());
  }
  CHECK(d.device_flags() == virtio::kEventEnable);
}

TEST_CASE("vhost packed: a hostile driver's rings are faults and nothing is read beyond them") {
  GuestRig g;
  VirtQueue q;
  Batch b(64, 2048);
  SECTION("every descriptor says NEXT: the chain loops") {
    g.setup(q, 4, false, false, true);
    PackedDriver d{g, 4};
    d.offer({{0x3000, 20}, {0x3000, 20}, {0x3000, 20}, {0x3000, 20}}, 1, false);
    PackedDesc last;
    std::memcpy(&last, g.view + 16 * 3, 16);
    last.flags |= virtio::kDescNext;
    d.write(3, last);
    CHECK(take(q, b).fault == VqFault::chain_loop);
  }
  SECTION("an indirect table that also says NEXT, or that is not negotiated") {
    g.setup(q, 4, false, true, true);
    PackedDriver d{g, 4};
    d.offer({{0x6000, 32}}, 1, false, virtio::kDescIndirect | virtio::kDescNext);
    CHECK(take(q, b).fault == VqFault::bad_indirect);
    g.setup(q, 4, false, false, true);
    PackedDriver d2{g, 4};
    d2.offer({{0x6000, 32}}, 1, false, virtio::kDescIndirect);
    CHECK(take(q, b).fault == VqFault::bad_indirect);
  }
  SECTION("a buffer outside memory, or one the device may write in a send chain") {
    g.setup(q, 4, false, false, true);
    PackedDriver d{g, 4};
    d.offer({{GuestRig::kSize - 8, 64}}, 1);
    CHECK(take(q, b).fault == VqFault::bad_address);
    g.setup(q, 4, false, false, true);
    PackedDriver d2{g, 4};
    d2.offer({{0x3000, 64}}, 1, true);
    CHECK(take(q, b).fault == VqFault::wrong_direction);
  }
  SECTION("a base outside the ring cannot map") {
    g.setup(q, 4, false, false, true);
    std::lock_guard lock(q.mutex);
    q.set_base(0x8000 | 4);
    CHECK_FALSE(q.map());
  }
  CHECK(b.size() == 0);
}

TEST_CASE("vhost packed: the device negotiates it and keeps position and wrap across a stop") {
  Frontend f;
  GuestRig g;
  REQUIRE(f.send(vhost::kGetFeatures).empty());
  const std::uint64_t want = f.reply_u64() & ~virtio::bit(virtio::kProtocolFeatures);
  REQUIRE(f.send(vhost::kSetFeatures, u64s({want})).empty());
  const int memfd = ::dup(g.fd);
  REQUIRE(f.send(vhost::kSetMemTable, u64s({1, 0, GuestRig::kSize, GuestRig::kUva, 0}), {memfd})
              .empty());
  // A packed ring need not be a power of two.
  REQUIRE(f.send(vhost::kSetVringNum, state(1, 6)).empty());
  REQUIRE(f.send(vhost::kSetVringAddr,
                 u64s({1, GuestRig::kUva + GuestRig::kDesc, GuestRig::kUva + GuestRig::kUsed,
                       GuestRig::kUva + GuestRig::kAvail, 0}))
              .empty());
  REQUIRE(f.send(vhost::kSetVringBase, state(1, 0x8000 | 5)).empty());
  REQUIRE(f.send(vhost::kSetVringKick, u64s({1}), {::eventfd(0, EFD_CLOEXEC)}).empty());
  VirtQueue& q = f.dev.vq(1);
  REQUIRE(q.ready());
  CHECK(q.packed);
  // The driver offers one frame at position 5 (wrap 1); the device takes it and wraps.
  PackedDriver d{g, 6};
  d.next = 5;
  d.used_at = 5;
  write_frame(g, 0x3000, 60, 1);
  d.offer({{0x3000, kHdr + 60}}, 2);
  Batch b(64, 2048);
  REQUIRE(take(q, b).fault == VqFault::none);
  CHECK(b.size() == 1);
  REQUIRE(f.send(vhost::kGetVringBase, state(1, 0)).empty());
  std::uint32_t base[2];
  std::memcpy(base, f.reply.payload, 8);
  CHECK(base[1] == 0u);  // position 0, both wrap counters 0 now
  f.dev.reset();
}
