#include "sink/pcap.hpp"

#include <fcntl.h>
#include <pcap/pcap.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "config/config.hpp"
#include "core/log.hpp"

namespace fdlinkd {

namespace {

enum Counter : std::size_t {
  kCaptured,
  kQueueFull,
  kWritten,
  kWriteErrors,
  kFiles,
  kBytes,
  kCounters
};
constexpr std::string_view kCounterNames[kCounters] = {
    "captured", "pcap_queue_full", "written", "write_errors", "files", "written_bytes"};

/// What a worker puts in its ring before each frame's bytes.
struct Record {
  std::uint32_t caplen;
  std::uint32_t len;
  std::int64_t rx_ns;
};

std::size_t padded(std::size_t n) {
  return (n + 7) & ~std::size_t{7};
}

pcap_t* as_pcap(void* p) {
  return static_cast<pcap_t*>(p);
}
pcap_dumper_t* as_dumper(void* p) {
  return static_cast<pcap_dumper_t*>(p);
}

}  // namespace

// A single-producer (one worker), single-consumer (the writer thread) byte ring of records.
// Positions only grow; the index is the position modulo the capacity, and a record may wrap.
class PcapSink::Ring {
 public:
  explicit Ring(std::size_t capacity) : buf_(new std::uint8_t[capacity]), cap_(capacity) {}

  bool push(const Frame& f, std::uint32_t snaplen) {
    const Record r{f.len < snaplen ? f.len : snaplen, f.len, f.rx_ns};
    const std::size_t need = padded(sizeof r + r.caplen);
    const std::uint64_t tail = tail_.load(std::memory_order_relaxed);
    if (cap_ - (tail - head_.load(std::memory_order_acquire)) < need) return false;
    copy_in(tail, &r, sizeof r);
    copy_in(tail + sizeof r, f.data, r.caplen);
    tail_.store(tail + need, std::memory_order_release);
    return true;
  }

  /// Copies the next record into `out` (room for a Record and snaplen bytes); false if none.
  bool pop(std::uint8_t* out) {
    const std::uint64_t head = head_.load(std::memory_order_relaxed);
    if (head == tail_.load(std::memory_order_acquire)) return false;
    Record r;
    copy_out(head, &r, sizeof r);
    copy_out(head, out, sizeof r + r.caplen);
    head_.store(head + padded(sizeof r + r.caplen), std::memory_order_release);
    return true;
  }

  bool empty() const {
    return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_acquire);
  }

 private:
  void copy_in(std::uint64_t pos, const void* src, std::size_t n) {
    const std::size_t at = pos % cap_, first = n < cap_ - at ? n : cap_ - at;
    std::memcpy(buf_.get() + at, src, first);
    std::memcpy(buf_.get(), static_cast<const std::uint8_t*>(src) + first, n - first);
  }
  void copy_out(std::uint64_t pos, void* dst, std::size_t n) const {
    const std::size_t at = pos % cap_, first = n < cap_ - at ? n : cap_ - at;
    std::memcpy(dst, buf_.get() + at, first);
    std::memcpy(static_cast<std::uint8_t*>(dst) + first, buf_.get(), n - first);
  }

  std::unique_ptr<std::uint8_t[]> buf_;
  std::size_t cap_;
  alignas(64) std::atomic<std::uint64_t> head_{0};  ///< the writer's
  alignas(64) std::atomic<std::uint64_t> tail_{0};  ///< the worker's
};

// --- config -------------------------------------------------------------------------------

namespace {

struct PcapOptions : SinkOptions {
  PcapSettings s;
};

std::unique_ptr<SinkOptions> configure(TableReader& r) {
  auto o = std::make_unique<PcapOptions>();
  if (auto p = r.string("path", true)) {
    if (p->empty() || (*p)[0] != '/' || has_control_char(*p) || p->size() > 4000)
      r.errors().add(r.where("path"), "path \"" + shown(*p) + "\" in " + r.what() +
                                          " must be an absolute path without control characters");
    else
      o->s.path = *p;
  }
  if (auto v = r.size("snaplen", 64, 262144)) o->s.snaplen = static_cast<std::uint32_t>(*v);
  if (auto v = r.size("rotate_size", 4096, std::uint64_t{1} << 40)) o->s.rotate_size = *v;
  if (auto v = r.integer("rotate_count", 1, 100000)) {
    o->s.rotate_count = static_cast<std::uint32_t>(*v);
    if (o->s.rotate_size == 0)
      r.errors().add(r.where("rotate_count"),
                     "rotate_count in " + r.what() + " needs rotate_size (as tcpdump -W needs -C)");
  }
  if (auto v = r.size("buffer", 64 * 1024, std::uint64_t{1} << 30)) o->s.buffer = *v;
  if (o->s.buffer < 2 * (o->s.snaplen + sizeof(Record)))
    r.errors().add(r.where("buffer"),
                   "buffer in " + r.what() + " must hold at least two frames of snaplen bytes");
  return o;
}

std::vector<OutputRef> outputs(const SinkConfig&, const Config&) {
  return {};
}

std::unique_ptr<Sink> create(const SinkConfig& sink, const SinkSetup& setup) {
  return std::make_unique<PcapSink>(static_cast<const PcapOptions&>(*sink.options).s,
                                    setup.workers);
}

constexpr SinkKey kKeys[] = {
    {"path", "the capture file (required); rotated ones are path.1, path.2, ..."},
    {"snaplen", "bytes kept of each frame (default 262144)"},
    {"rotate_size", "start the next file when this one would pass it, e.g. \"100MB\" (tcpdump -C)"},
    {"rotate_count", "keep at most this many files, overwriting the oldest (tcpdump -W)"},
    {"buffer", "per worker, frames waiting for the disk (default \"4MiB\")"},
};

}  // namespace

const SinkType PcapSink::kType = {
    "pcap",
    "writes every frame to a pcap file (nanosecond timestamps, rotation) off the data path",
    kKeys,
    true,
    configure,
    outputs,
    nullptr,
    nullptr,
    create};

// --- data path and writer -----------------------------------------------------------------

PcapSink::PcapSink(PcapSettings settings, unsigned workers) : s_(std::move(settings)) {
  for (unsigned w = 0; w < workers; ++w)
    rings_.push_back(std::make_unique<Ring>(s_.buffer));
  pcap_ = pcap_open_dead_with_tstamp_precision(DLT_EN10MB, static_cast<int>(s_.snaplen),
                                               PCAP_TSTAMP_PRECISION_NANO);
  writer_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "fdlinkd-pcap");
    writer_loop();
  });
}

PcapSink::~PcapSink() {
  stop_ = true;
  wake_.notify_one();
  writer_.join();
  if (pcap_) pcap_close(as_pcap(pcap_));
}

std::span<const std::string_view> PcapSink::counter_names() const {
  return kCounterNames;
}

void PcapSink::add_own_counters(std::span<std::uint64_t> v) const {
  v[kWritten] += written_.load(std::memory_order_relaxed);
  v[kWriteErrors] += write_errors_.load(std::memory_order_relaxed);
  v[kFiles] += files_.load(std::memory_order_relaxed);
  v[kBytes] += written_bytes_.load(std::memory_order_relaxed);
}

void PcapSink::process(Pass& pass, Batch& in) {
  Ring& ring = *rings_[pass.worker().id];
  std::uint64_t captured = 0;
  for (std::size_t i = 0; i < in.size(); ++i)
    captured += ring.push(in[i], s_.snaplen);
  pass.count(kCaptured, captured);
  pass.count(kQueueFull, in.size() - captured);
  if (captured && sleeping_.load(std::memory_order_relaxed)) wake_.notify_one();
}

std::string PcapSink::file_name(std::uint32_t index) const {
  return index == 0 ? s_.path : s_.path + "." + std::to_string(index);
}

bool PcapSink::open_file() {
  const std::string name = file_name(file_index_);
  const int fd = ::open(name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  FILE* f = nullptr;
  if (fd >= 0) {
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) ::fchmod(fd, 0640);  // whatever the umask
    f = ::fdopen(fd, "w");
    if (!f) ::close(fd);
  }
  if (f) dumper_ = pcap_dump_fopen(as_pcap(pcap_), f);
  if (!dumper_) {
    const int err = errno;
    if (f) std::fclose(f);
    write_errors_ += 1 + unflushed_;
    unflushed_ = 0;
    unflushed_bytes_ = 0;
    if (!failing_)
      log::error("pcap_write_failed", "cannot open the capture file; frames are not captured",
                 {{"path", name}, {"error", std::strerror(err)}});
    failing_ = true;
    return false;
  }
  ++files_;
  file_bytes_ = 24;  // the file header
  log::info("pcap_file", "capture file opened", {{"path", name}});
  return true;
}

bool PcapSink::flush_file() {
  // Frames count as written once a flush put them in the file; a failed write or flush loses
  // what the buffer held since the last good one.
  const bool ok = pcap_dump_flush(as_dumper(dumper_)) == 0;
  if (ok) {
    written_ += unflushed_;
    written_bytes_ += unflushed_bytes_;
    if (failing_ && unflushed_ > 0)  // (frames really reached the file)
      log::info("pcap_write_ok", "writing the capture file works again",
                {{"path", file_name(file_index_)}});
    failing_ = false;
  } else {
    write_failed("flushing the capture file failed");
  }
  unflushed_ = 0;
  unflushed_bytes_ = 0;
  return ok;
}

void PcapSink::write_failed(const char* what) {
  const int err = errno;
  write_errors_ += unflushed_;
  unflushed_ = 0;
  unflushed_bytes_ = 0;
  std::clearerr(pcap_dump_file(as_dumper(dumper_)));
  if (!failing_)
    log::error("pcap_write_failed", what,
               {{"path", file_name(file_index_)}, {"error", std::strerror(err)}});
  failing_ = true;
}

void PcapSink::close_file() {
  if (!dumper_) return;
  flush_file();
  pcap_dump_close(as_dumper(dumper_));
  dumper_ = nullptr;
}

void PcapSink::write_record(const std::uint8_t* rec) {
  Record r;
  std::memcpy(&r, rec, sizeof r);
  const std::uint64_t size = 16 + r.caplen;  // pcap's record header and the bytes
  if (dumper_ && s_.rotate_size && file_bytes_ + size > s_.rotate_size && file_bytes_ > 24) {
    close_file();
    ++file_index_;
    if (s_.rotate_count) file_index_ %= s_.rotate_count;
  }
  if (!dumper_ && !open_file()) return;
  pcap_pkthdr h{};
  h.ts.tv_sec = r.rx_ns / 1'000'000'000;
  h.ts.tv_usec = r.rx_ns % 1'000'000'000;  // nanoseconds: the handle's precision is NANO
  h.caplen = r.caplen;
  h.len = r.len;
  pcap_dump(reinterpret_cast<u_char*>(dumper_), &h, rec + sizeof r);
  ++unflushed_;
  unflushed_bytes_ += size;
  if (std::ferror(pcap_dump_file(as_dumper(dumper_)))) {
    write_failed("writing the capture file failed; frames are lost from it");
    return;
  }
  file_bytes_ += size;
}

void PcapSink::writer_loop() {
  std::unique_ptr<std::uint8_t[]> rec(new std::uint8_t[sizeof(Record) + s_.snaplen]);
  bool dirty = false;
  for (;;) {
    bool any = false;
    for (auto& ring : rings_)
      while (ring->pop(rec.get())) {
        write_record(rec.get());
        any = dirty = true;
      }
    if (any) continue;
    if (dirty && dumper_) flush_file();  // caught up: what was written reaches the file
    dirty = false;
    std::unique_lock lock(mu_);
    ++idle_passes_;
    drained_.notify_all();
    if (stop_) break;
    sleeping_ = true;
    bool empty = true;
    for (auto& ring : rings_)
      empty = empty && ring->empty();
    if (empty) wake_.wait_for(lock, std::chrono::milliseconds(100));
    sleeping_ = false;
  }
  close_file();
}

void PcapSink::drain() {
  std::unique_lock lock(mu_);
  const std::uint64_t start = idle_passes_;
  wake_.notify_one();
  // Two idle passes after this call: the rings were seen empty after everything queued
  // before the call was written, and the file was flushed.
  drained_.wait(lock, [&] { return idle_passes_ >= start + 2; });
}

}  // namespace fdlinkd
