// pcap: writes frames to a pcap file, and sends them nowhere else (put it behind a tee to
// capture beside forwarding).
//
//   [[sink]]
//   name = "cap"
//   type = "pcap"
//   path = "/var/lib/fdlinkd/a.pcap"   # required
//   snaplen = 262144          # bytes kept of each frame
//   rotate_size = "100MB"     # start a new file when this one would grow past it (tcpdump -C)
//   rotate_count = 10         # keep at most this many: path, path.1, ... (tcpdump -W); needs
//                             # rotate_size
//   buffer = "4MiB"           # per worker: frames waiting for the disk
//
// The data path never waits on the disk: each worker copies the frames (snaplen bytes, with
// their receive time) into a ring buffer of its own, and a writer thread empties the rings
// into the file with libpcap (nanosecond timestamps, LINKTYPE_ETHERNET). A full ring drops the
// frame from the capture only (`pcap_queue_full`); forwarding is not affected. Files are
// created with mode 0640. A write error (disk full) is counted (`write_errors`), logged once
// until a write succeeds again, and never stops the daemon; every write, flush and close is
// checked (pcap_dump itself reports nothing: the FILE is checked with ferror).
//
// Counters: captured, pcap_queue_full, written, write_errors, files.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sink/sink.hpp"

namespace fdlinkd {

struct PcapSettings {
  std::string path;
  std::uint32_t snaplen = 262144;
  std::uint64_t rotate_size = 0;   ///< 0: one file that grows
  std::uint32_t rotate_count = 0;  ///< 0: as many as rotate_size makes (path, path.1, ...)
  std::size_t buffer = 4 << 20;
};

class PcapSink : public Sink {
 public:
  PcapSink(PcapSettings settings, unsigned workers);
  ~PcapSink() override;

  void process(Pass& pass, Batch& in) override;
  std::span<const std::string_view> counter_names() const override;
  void add_own_counters(std::span<std::uint64_t> values) const override;

  /// Waits until every frame queued so far is in the file and flushed (tests, shutdown).
  void drain();

  static const SinkType kType;

 private:
  class Ring;
  void writer_loop();
  bool open_file();
  void close_file();
  bool flush_file();
  void write_failed(const char* what);
  void write_record(const std::uint8_t* rec);
  std::string file_name(std::uint32_t index) const;

  PcapSettings s_;
  std::vector<std::unique_ptr<Ring>> rings_;  ///< one per worker: it writes, the writer reads
  std::thread writer_;
  std::mutex mu_;
  std::condition_variable wake_, drained_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> sleeping_{false};
  std::atomic<std::uint64_t> written_{0}, write_errors_{0}, files_{0}, written_bytes_{0};
  std::uint64_t idle_passes_ = 0;  ///< under mu_: times the writer found nothing to write
  // Writer thread only:
  void* pcap_ = nullptr;    ///< pcap_t (a dead handle: link type and precision)
  void* dumper_ = nullptr;  ///< pcap_dumper_t of the open file
  std::uint64_t file_bytes_ = 0;
  std::uint64_t unflushed_ = 0;        ///< frames handed to stdio since the last good flush
  std::uint64_t unflushed_bytes_ = 0;  ///< their bytes, record headers included
  std::uint32_t file_index_ = 0;
  bool failing_ = false;  ///< the last write failed (logged once)
};

}  // namespace fdlinkd
