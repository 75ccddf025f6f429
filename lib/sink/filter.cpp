#include "sink/filter.hpp"

#include "config/config.hpp"

namespace fdlinkd {

namespace {

constexpr std::string_view kCounters[] = {"matched", "unmatched", "dropped"};

struct FilterOptions : SinkOptions {
  std::shared_ptr<const BpfProgram> prog;
  OutputRef match, nomatch;
};

std::unique_ptr<SinkOptions> configure(TableReader& r) {
  auto o = std::make_unique<FilterOptions>();
  if (auto expr = r.string("expr", true)) {
    auto prog = std::make_shared<BpfProgram>(*expr);
    if (prog->ok())
      o->prog = std::move(prog);
    else
      r.errors().add(r.where("expr"), "expr \"" + shown(*expr) + "\" in " + r.what() +
                                          " is not a filter libpcap can compile: " + prog->error());
  }
  if (auto m = r.string("match")) o->match = {*m, r.where("match")};
  if (auto m = r.string("nomatch")) o->nomatch = {*m, r.where("nomatch")};
  return o;
}

std::vector<OutputRef> outputs(const SinkConfig& sink, const Config&) {
  const auto& o = static_cast<const FilterOptions&>(*sink.options);
  std::vector<OutputRef> out;
  if (!o.match.name.empty()) out.push_back(o.match);
  if (!o.nomatch.name.empty()) out.push_back(o.nomatch);
  return out;
}

std::unique_ptr<Sink> create(const SinkConfig& sink, const SinkSetup&) {
  const auto& o = static_cast<const FilterOptions&>(*sink.options);
  const std::size_t match = o.match.name.empty() ? FilterSink::kNone : 0;
  const std::size_t nomatch = o.nomatch.name.empty() ? FilterSink::kNone : (match == 0 ? 1 : 0);
  return std::make_unique<FilterSink>(o.prog, match, nomatch);
}

constexpr SinkKey kKeys[] = {
    {"expr", "a tcpdump (pcap-filter) expression, compiled by libpcap (required)"},
    {"match", "link or sink for frames that match (default: dropped)"},
    {"nomatch", "link or sink for frames that do not (default: dropped)"},
};

}  // namespace

const SinkType FilterSink::kType = {
    "filter",  "sends frames that match a tcpdump expression to `match`, the rest to `nomatch`",
    kKeys,     true,
    configure, outputs,
    nullptr,   nullptr,
    create};

BpfProgram::BpfProgram(const std::string& expr) {
  // A "dead" handle: no device, just the link type and snap length to compile for.
  pcap_t* p = pcap_open_dead(DLT_EN10MB, 65535);
  if (!p) {
    error_ = "pcap_open_dead failed";
    return;
  }
  ok_ = pcap_compile(p, &prog_, expr.c_str(), 1, PCAP_NETMASK_UNKNOWN) == 0;
  if (!ok_) error_ = pcap_geterr(p);
  pcap_close(p);
}

BpfProgram::~BpfProgram() {
  if (ok_) pcap_freecode(&prog_);
}

bool BpfProgram::matches(const std::uint8_t* data, std::uint32_t len) const {
  pcap_pkthdr h{};
  h.caplen = h.len = len;
  return pcap_offline_filter(&prog_, &h, data) != 0;
}

std::span<const std::string_view> FilterSink::counter_names() const {
  return kCounters;
}

void FilterSink::process(Pass& pass, Batch& in) {
  std::uint64_t matched = 0, dropped = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const bool m = prog_->matches(in[i].data, in[i].len);
    matched += m;
    const std::size_t out = m ? match_ : nomatch_;
    if (out == kNone)
      ++dropped;
    else
      pass.emit(out, in[i]);
  }
  pass.count(0, matched);
  pass.count(1, in.size() - matched);
  pass.count(2, dropped);
}

}  // namespace fdlinkd
