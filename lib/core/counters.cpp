#include "core/counters.hpp"

namespace fdlinkd {

namespace {
constexpr std::string_view kNames[] = {
#define FDLINKD_X(name, desc) #name,
    FDLINKD_DROP_REASONS(FDLINKD_X)
#undef FDLINKD_X
};
constexpr std::string_view kHelp[] = {
#define FDLINKD_X(name, desc) desc,
    FDLINKD_DROP_REASONS(FDLINKD_X)
#undef FDLINKD_X
};
}  // namespace

std::string_view drop_reason_name(DropReason r) {
  return kNames[static_cast<std::size_t>(r)];
}
std::string_view drop_reason_help(DropReason r) {
  return kHelp[static_cast<std::size_t>(r)];
}

std::uint64_t CounterValues::total_drops() const {
  std::uint64_t n = 0;
  for (auto d : drops)
    n += d;
  return n;
}

CounterValues& CounterValues::operator+=(const CounterValues& o) {
  rx_packets += o.rx_packets;
  rx_bytes += o.rx_bytes;
  tx_packets += o.tx_packets;
  tx_bytes += o.tx_bytes;
  rx_errors += o.rx_errors;
  gso_segments += o.gso_segments;
  for (std::size_t i = 0; i < kDropReasonCount; ++i)
    drops[i] += o.drops[i];
  return *this;
}

void PortCounters::add(const CounterValues& v) {
  bump(rx_packets_, v.rx_packets);
  bump(rx_bytes_, v.rx_bytes);
  bump(tx_packets_, v.tx_packets);
  bump(tx_bytes_, v.tx_bytes);
  bump(rx_errors_, v.rx_errors);
  bump(gso_segments_, v.gso_segments);
  for (std::size_t i = 0; i < kDropReasonCount; ++i)
    bump(drops_[i], v.drops[i]);
}

CounterValues PortCounters::snapshot() const {
  CounterValues v;
  v.rx_packets = rx_packets_.load(std::memory_order_relaxed);
  v.rx_bytes = rx_bytes_.load(std::memory_order_relaxed);
  v.tx_packets = tx_packets_.load(std::memory_order_relaxed);
  v.tx_bytes = tx_bytes_.load(std::memory_order_relaxed);
  v.rx_errors = rx_errors_.load(std::memory_order_relaxed);
  v.gso_segments = gso_segments_.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < kDropReasonCount; ++i)
    v.drops[i] = drops_[i].load(std::memory_order_relaxed);
  return v;
}

}  // namespace fdlinkd
