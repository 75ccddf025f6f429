// fdlinkd's XDP program (lib/link/af_xdp.bpf.c), run by the kernel on test frames
// (BPF_PROG_TEST_RUN): the mark it leaves in front of each frame must send every frame whose
// checksum the daemon would complete (offload::complete_unmarked_partial) to that check.
// Loading a program needs root (CAP_BPF and CAP_NET_ADMIN), as CI has.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "frames.hpp"
#include "link/af_xdp.hpp"
#include "link/af_xdp_meta.h"
#include "offload/checksum.hpp"

using namespace fdlinkd;
using namespace fdlinkd::test;

namespace {

// The daemon's program as the link loads it (load_xdp_program), not attached.
class Program {
 public:
  explicit Program(bool mark) : obj_(load_xdp_program(1, mark, marking_)) {
    REQUIRE(obj_ != nullptr);
    fd_ = bpf_program__fd(bpf_object__find_program_by_name(obj_, kXdpProgramName));
    REQUIRE(fd_ >= 0);
  }
  ~Program() { bpf_object__close(obj_); }
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;

  // Runs the program on `frame`: what it left in front of the frame (none: no metadata).
  struct Result {
    bool has_meta = false;
    std::uint32_t meta = 0;
  };
  Result run(const Bytes& frame) const {
    Bytes out(frame.size() + 64);
    bpf_test_run_opts o{};
    o.sz = sizeof o;
    o.data_in = frame.data();
    o.data_size_in = static_cast<__u32>(frame.size());
    o.data_out = out.data();
    o.data_size_out = static_cast<__u32>(out.size());
    o.repeat = 1;
    REQUIRE(bpf_prog_test_run_opts(fd_, &o) == 0);
    CHECK(o.retval == XDP_PASS);  // (no socket in the map: the frame goes on to the stack)
    Result r;
    // The output is the metadata, then the frame (unchanged).
    REQUIRE((o.data_size_out == frame.size() ||
             o.data_size_out == frame.size() + FDLINKD_XDP_META_SIZE));
    r.has_meta = o.data_size_out != frame.size();
    const std::size_t at = r.has_meta ? FDLINKD_XDP_META_SIZE : 0;
    CHECK(Bytes(out.begin() + static_cast<long>(at),
                out.begin() + static_cast<long>(at) + static_cast<long>(frame.size())) == frame);
    if (r.has_meta) std::memcpy(&r.meta, out.data(), sizeof r.meta);
    return r;
  }
  /// Whether the kernel took the marking (load_xdp_program's fallback: not on every kernel).
  bool marking() const { return marking_; }
  // Whether it marks `frame` for the daemon's check (with metadata of its own, always).
  bool marks(const Bytes& frame) const {
    const Result r = run(frame);
    REQUIRE(r.has_meta);
    REQUIRE((r.meta & FDLINKD_XDP_META_MAGIC_MASK) == FDLINKD_XDP_META_MAGIC);
    return (r.meta & FDLINKD_XDP_META_CHECK) != 0;
  }

 private:
  bool marking_ = false;
  bpf_object* obj_ = nullptr;
  int fd_ = -1;
};

// Whether the daemon's own test completes the frame's checksum (on a copy).
bool daemon_completes(Bytes f) {
  return offload::complete_unmarked_partial(f.data(), f.size(), true);
}

Bytes with_vlan(const Bytes& f, std::uint16_t tpid) {
  Bytes t(f.begin(), f.begin() + 12);
  t.push_back(static_cast<std::uint8_t>(tpid >> 8));
  t.push_back(static_cast<std::uint8_t>(tpid));
  t.push_back(0x00);
  t.push_back(0x2A);  // VLAN 42
  t.insert(t.end(), f.begin() + 12, f.end());
  return t;
}

// Where the kernel refused the marking: the program the daemon then runs leaves no mark on
// `frame`, so the daemon checks the frame itself (no magic, no trust). False: go on.
bool refused_marking(const Program& p, const Bytes& frame) {
  if (p.marking()) return false;
  WARN(
      "this kernel refuses bpf_xdp_adjust_meta in XDP programs: checking the fallback "
      "(no marks; the daemon checks every frame) instead of the marks");
  CHECK_FALSE(p.run(frame).has_meta);
  return true;
}

bool root() {
  if (::geteuid() == 0) return true;
  WARN("not root: the kernel will not load an XDP program, so this test cannot run here");
  return false;
}

}  // namespace

TEST_CASE("the XDP program marks frames whose checksum field holds only the pseudo-header sum") {
  if (!root()) return;
  const Program p(true);

  Bytes tcp = tcp4_frame(999, kAck | kPsh);  // IP and TCP options
  put16(tcp, 38 + 16, partial_field(tcp, 4, 14, 38, 6));
  if (refused_marking(p, tcp)) return;
  CHECK(p.marks(tcp));
  CHECK(p.marks(with_vlan(tcp, 0x8100)));
  CHECK(p.marks(with_vlan(with_vlan(tcp, 0x8100), 0x88A8)));  // QinQ
  REQUIRE(daemon_completes(tcp));
  offload::complete_unmarked_partial(tcp.data(), tcp.size(), true);
  CHECK_FALSE(p.marks(tcp));  // finished: a valid checksum is not the pseudo-header sum

  Bytes tcp6 = tcp6_frame(100, kAck);
  put16(tcp6, 54 + 16, partial_field(tcp6, 6, 14, 54, 6));
  CHECK(p.marks(tcp6));

  Bytes udp6 = udp_frame(6, 30);
  put16(udp6, 54 + 6, partial_field(udp6, 6, 14, 54, 17));
  Bytes padded = udp6;
  padded.resize(padded.size() + 3, 0xAA);  // Ethernet padding is not in the sum
  CHECK(p.marks(padded));

  Bytes udp4 = udp_frame(4, 18);
  put16(udp4, 34 + 6, partial_field(udp4, 4, 14, 34, 17));
  CHECK(p.marks(udp4));
  Bytes frag = udp4;
  put16(frag, 20, 0x2000);  // more fragments: never touched
  CHECK_FALSE(p.marks(frag));
  CHECK_FALSE(p.marks(udp_frame(4, 18)));  // IPv4 UDP without a checksum (0)
  Bytes arp(42);
  arp[12] = 0x08;
  arp[13] = 0x06;
  CHECK_FALSE(p.marks(arp));
  CHECK_FALSE(p.marks(Bytes(udp4.begin(), udp4.begin() + 40)));  // cut in the UDP header
}

TEST_CASE("every frame the daemon would complete is marked by the XDP program") {
  if (!root()) return;
  const Program p(true);
  // Frames of each kind with a partial field, then damaged at random: lengths cut, bytes of
  // the headers changed. Whatever the daemon's test would complete must be marked.
  std::vector<Bytes> seeds;
  Bytes t4 = tcp4_frame(300, kAck);
  put16(t4, 38 + 16, partial_field(t4, 4, 14, 38, 6));
  Bytes t6 = tcp6_frame(64, kAck);
  put16(t6, 54 + 16, partial_field(t6, 6, 14, 54, 6));
  Bytes u4 = udp_frame(4, 40);
  put16(u4, 34 + 6, partial_field(u4, 4, 14, 34, 17));
  Bytes u6 = udp_frame(6, 9);
  put16(u6, 54 + 6, partial_field(u6, 6, 14, 54, 17));
  seeds = {t4, t6, u4, u6, with_vlan(t4, 0x8100), with_vlan(u6, 0x88A8)};
  if (refused_marking(p, t4)) return;
  std::mt19937 rng(7);
  int completed = 0, marked = 0, runs = 0;
  for (int i = 0; i < 3000; ++i) {
    Bytes f = seeds[rng() % seeds.size()];
    const int edits = static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = rng() % std::min<std::size_t>(f.size(), 80);
      f[at] = static_cast<std::uint8_t>(rng());
    }
    if (rng() % 4 == 0) f.resize(14 + rng() % (f.size() - 13));
    const bool completes = daemon_completes(f);
    const bool marks = p.marks(f);
    if (completes) CHECK(marks);
    completed += completes;
    marked += marks;
    ++runs;
  }
  INFO(completed << " of " << runs << " completed, " << marked << " marked");
  CHECK(completed > 300);         // the property was put to the test
  CHECK(marked < runs * 9 / 10);  // and marking is not everything
}

TEST_CASE("without marking the XDP program leaves no metadata") {
  if (!root()) return;
  const Program p(false);
  Bytes tcp = tcp4_frame(100, kAck);
  put16(tcp, 38 + 16, partial_field(tcp, 4, 14, 38, 6));
  CHECK_FALSE(p.run(tcp).has_meta);
}
