// pcap: frames through the real dispatcher and graph into a capture file, read back with
// libpcap.
#include <pcap/pcap.h>
#include <sys/stat.h>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <vector>

#include "dispatch/dispatcher.hpp"
#include "frames.hpp"
#include "sink/graph.hpp"
#include "sink/pcap.hpp"
#include "test_worker.hpp"

using namespace fdlinkd;
using namespace fdlinkd::test;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/fdlinkd-pcap.XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string path;
};

// Sends `frames` through link "in" into a pcap sink with `s`; returns the sink's counters.
std::vector<std::uint64_t> capture(const PcapSettings& s, const std::vector<Bytes>& frames) {
  Pair in;
  LinkConfig c = config_of("in", "unix", "cap", "tx_backlog = 0");
  PairLink link(c, in.inside);
  boost::asio::io_context io;
  Worker w(io, 0, 2048, 2048);
  Graph g(1, 64);
  auto sink = std::make_unique<PcapSink>(s, 1);
  PcapSink* pcap = sink.get();
  g.add("cap", std::move(sink), {});
  Dispatcher d(w, link, 0, g);
  d.attach(in.inside);
  for (const Bytes& f : frames) {
    REQUIRE(::send(in.outside, f.data(), f.size(), 0) > 0);
    run_until(io, [&] {
      return link.totals().rx_packets == static_cast<std::uint64_t>(&f - &frames[0] + 1);
    });
  }
  pcap->drain();
  return g.counters(0);
}

// Every frame of a pcap file, with its timestamp (ns) and wire length.
struct Read {
  std::vector<Bytes> frames;
  std::vector<std::int64_t> ns;
  std::vector<std::uint32_t> len;
};
Read read_pcap(const std::string& path) {
  char err[PCAP_ERRBUF_SIZE];
  pcap_t* p =
      pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, err);
  REQUIRE(p != nullptr);
  CHECK(pcap_datalink(p) == DLT_EN10MB);
  Read r;
  pcap_pkthdr* h;
  const u_char* data;
  while (pcap_next_ex(p, &h, &data) == 1) {
    r.frames.emplace_back(data, data + h->caplen);
    r.ns.push_back(std::int64_t{h->ts.tv_sec} * 1'000'000'000 + h->ts.tv_usec);
    r.len.push_back(h->len);
  }
  pcap_close(p);
  return r;
}

}  // namespace

TEST_CASE("pcap: the file holds exactly the frames sent - with their receive time") {
  TempDir dir;
  PcapSettings s;
  s.path = dir.path + "/a.pcap";
  std::vector<Bytes> frames;
  for (std::size_t i = 0; i < 20; ++i)
    frames.push_back(tcp4_frame(10 + 50 * i, 0x10));
  const auto before = std::chrono::system_clock::now().time_since_epoch();
  const auto c = capture(s, frames);
  const auto after = std::chrono::system_clock::now().time_since_epoch();
  CHECK(c[0] == 20);  // captured
  CHECK(c[1] == 0);   // pcap_queue_full
  CHECK(c[2] == 20);  // written
  CHECK(c[3] == 0);   // write_errors
  CHECK(c[4] == 1);   // files
  const Read r = read_pcap(s.path);
  REQUIRE(r.frames.size() == 20);
  for (std::size_t i = 0; i < 20; ++i) {
    CHECK(r.frames[i] == frames[i]);
    CHECK(r.len[i] == frames[i].size());
    CHECK(r.ns[i] >= std::chrono::duration_cast<std::chrono::nanoseconds>(before).count());
    CHECK(r.ns[i] <= std::chrono::duration_cast<std::chrono::nanoseconds>(after).count());
  }
  CHECK((fs::status(s.path).permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read));
}

TEST_CASE("pcap: snaplen cuts frames and keeps their wire length") {
  TempDir dir;
  PcapSettings s;
  s.path = dir.path + "/a.pcap";
  s.snaplen = 64;
  capture(s, {tcp4_frame(500, 0x10)});
  const Read r = read_pcap(s.path);
  REQUIRE(r.frames.size() == 1);
  CHECK(r.frames[0].size() == 64);
  CHECK(r.len[0] == 570);
}

TEST_CASE("pcap: rotation keeps at most rotate_count files of at most rotate_size") {
  TempDir dir;
  PcapSettings s;
  s.path = dir.path + "/r.pcap";
  s.rotate_size = 4096;
  s.rotate_count = 3;
  std::vector<Bytes> frames;
  for (int i = 0; i < 100; ++i)
    frames.push_back(tcp4_frame(300, 0x10));  // 386-byte records: 10 per file
  const auto c = capture(s, frames);
  CHECK(c[2] == 100);
  CHECK(c[4] == 10);  // files opened
  std::size_t files = 0, in_files = 0;
  for (const auto& e : fs::directory_iterator(dir.path)) {
    ++files;
    CHECK(fs::file_size(e.path()) <= 4096);
    in_files += read_pcap(e.path()).frames.size();
  }
  CHECK(files == 3);
  CHECK(in_files == 30);  // the last three files' worth
  CHECK(fs::exists(s.path));
  CHECK(fs::exists(s.path + ".1"));
  CHECK(fs::exists(s.path + ".2"));
}

TEST_CASE("pcap: a file that cannot be written is counted - and nothing stalls") {
  PcapSettings s;
  s.path = "/dev/full";  // every write: ENOSPC
  s.buffer = 1 << 16;
  std::vector<Bytes> frames;
  for (int i = 0; i < 200; ++i)
    frames.push_back(tcp4_frame(1000, 0x10));
  const auto c = capture(s, frames);
  CHECK(c[0] + c[1] == 200);  // every frame captured or counted as queue full
  CHECK(c[3] > 0);            // write errors seen
  CHECK(c[2] < 200);
  PcapSettings d;
  d.path = "/nonexistent-dir/x.pcap";
  const auto c2 = capture(d, {tcp4_frame(10, 0x10)});
  CHECK(c2[3] == 1);
  CHECK(c2[4] == 0);
}
