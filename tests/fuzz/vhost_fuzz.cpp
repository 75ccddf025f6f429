// libFuzzer target: the vhost-user message parser and device, as a hostile frontend drives
// them over a real socket. The input is a series of writes to the frontend's end of a
// socketpair: [control byte][length byte][that many bytes]; the control byte's low two bits
// attach that many fds (a memfd of guest memory holding the input's bytes, or an eventfd when
// bit 2 is set). fdlinkd's side reads messages as the vhost_user link does (VhostReader),
// hands each to the device, and after each one runs the data path over every ready queue
// (frames taken from the odd ones, a frame put into the even ones) inside a guest access.
// A refused message ends the session as the link does: the device is reset. Checked:
//   - no crash, no read or write outside what was mapped (ASan), no hang;
//   - every fd the frontend sent is closed once the session ends (none leaks).
#include <dirent.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

#include "check.hpp"
#include "guest_rig.hpp"
#include "link/vhost_device.hpp"
#include "link/virtqueue.hpp"

using namespace fdlinkd;

namespace {

struct NoHooks : VhostHooks {
  void kick_changed(std::size_t, int) override {}
  void queue_woken(std::size_t) override {}
};

std::size_t open_fds() {
  std::size_t n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  while (::readdir(d))
    ++n;
  ::closedir(d);
  return n;
}

void send_chunk(int fd, const std::uint8_t* p, std::size_t len, const int* fds, std::size_t nfds) {
  iovec iov{const_cast<std::uint8_t*>(p), len};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 3)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (nfds) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    std::memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  (void)::sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
}

// The data path over every queue the frontend made ready.
void run_queues(VhostDevice& dev, Batch& batch) {
  const RxLimits lim = test::guest_limits(batch);
  static const std::uint8_t frame[1514] = {};
  const std::uint8_t hdr[12] = {};
  for (std::size_t i = 0; i < dev.queue_count(); ++i) {
    VirtQueue& q = dev.vq(i);
    std::lock_guard lock(q.mutex);
    if (!q.ready()) continue;
    CounterValues tally;
    VqFault fault = VqFault::none;
    batch.clear();
    const bool finished = guarded([&] {
      if (i % 2)
        take_frames(q, batch, lim, dev.header_len(), false, tally, fault);
      else if (put_frame(q, hdr, dev.header_len(), dev.has(virtio::kNetMrgRxbuf), frame, 100,
                         fault) == PutResult::sent)
        q.publish_used();
    });
    if (!finished || fault != VqFault::none) {
      q.broken = true;  // (as the link does: the queue is left alone until the reset)
      q.update_live();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Batch batch(16, 2048);
  NoHooks hooks;
  VhostDevice dev(2, true, hooks);
  VhostReader reader;
  // Guest memory: 64 KiB holding the input's bytes, over and over (one memfd for every input,
  // cut back to its size: a call fd that is a dup of it grows it).
  static const int memfd = ::memfd_create("fuzz-guest", MFD_CLOEXEC);
  static auto* guest = static_cast<std::uint8_t*>(
      ::mmap(nullptr, 65536, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0));
  FUZZ_CHECK(memfd >= 0 && ::ftruncate(memfd, 65536) == 0 && guest != MAP_FAILED);
  for (std::size_t i = 0; size && i < 65536; i += size)
    std::memcpy(guest + i, data, std::min<std::size_t>(size, 65536 - i));
  const std::size_t baseline = open_fds();  // (per input: libFuzzer opens files between them)
  int sv[2];
  FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
  std::size_t at = 0;
  bool over = false;
  while (!over && at + 2 <= size) {
    const std::uint8_t ctl = data[at], len = data[at + 1];
    at += 2;
    const std::size_t n = std::min<std::size_t>(len, size - at);
    int fds[3];
    const std::size_t nfds = ctl & 3;
    for (std::size_t k = 0; k < nfds; ++k)
      fds[k] = ctl & 4 ? ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) : ::dup(memfd);
    send_chunk(sv[1], data + at, n, fds, nfds);
    for (std::size_t k = 0; k < nfds; ++k)
      ::close(fds[k]);  // (the socket holds its own references until they are read)
    at += n;
    for (;;) {
      const VhostReader::Step step = reader.read(sv[0]);
      if (step == VhostReader::Step::again) break;
      if (step != VhostReader::Step::message) {
        over = true;
        break;
      }
      VhostDevice::Reply reply;
      const std::string why = dev.handle(reader.message(), reply);
      FUZZ_CHECK(reply.size <= sizeof reply.payload);
      if (!why.empty()) {
        over = true;
        break;
      }
      run_queues(dev, batch);
    }
  }
  dev.reset();
  reader.reset();
  ::close(sv[0]);
  ::close(sv[1]);
  FUZZ_CHECK(open_fds() == baseline);  // every fd the frontend sent was closed
  return 0;
}
