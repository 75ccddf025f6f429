#include "writer/flow_hash.hpp"

#include "core/batch.hpp"
#include "offload/headers.hpp"

namespace fdlinkd {

namespace {

using offload::load16;
constexpr std::uint8_t kTcp = offload::kProtoTcp, kUdp = offload::kProtoUdp;

// Mixes `n` bytes into h (FNV-1a over bytes is enough: the inputs are short and the result is
// only reduced modulo a small number of fds; the final avalanche spreads the low bits).
std::uint32_t mix(std::uint32_t h, const std::uint8_t* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    h = (h ^ p[i]) * 16777619u;
  return h;
}

std::uint32_t finish(std::uint32_t h) {
  h ^= h >> 16;
  h *= 0x7feb352dU;
  h ^= h >> 15;
  h *= 0x846ca68bU;
  h ^= h >> 16;
  return h;
}

constexpr std::uint32_t kSeed = 2166136261u;

std::uint32_t hash_ip(const std::uint8_t* p, std::size_t len) {
  if (len < 1) return kSeed;
  const unsigned version = p[0] >> 4;
  if (version == 4 && len >= 20) {
    const std::size_t ihl = (p[0] & 0x0F) * 4u;
    std::uint32_t h = mix(kSeed, p + 12, 8);              // source and destination address
    const bool fragment = (load16(p + 6) & 0x3FFF) != 0;  // MF set or offset non-zero
    const std::uint8_t proto = p[9];
    h = mix(h, &proto, 1);
    if (!fragment && (proto == kTcp || proto == kUdp) && ihl >= 20 && len >= ihl + 4)
      h = mix(h, p + ihl, 4);  // source and destination port
    return finish(h);
  }
  if (version == 6 && len >= 40) {
    std::uint32_t h = mix(kSeed, p + 8, 32);
    const std::uint8_t next = p[6];
    h = mix(h, &next, 1);
    // Ports only right after the fixed header; behind extension headers (a fragment header
    // among them) the addresses alone decide, as for IPv4 fragments.
    if ((next == kTcp || next == kUdp) && len >= 44) h = mix(h, p + 40, 4);
    return finish(h);
  }
  return finish(mix(kSeed, p, len < 20 ? len : 20));
}

}  // namespace

std::uint32_t flow_hash(const std::uint8_t* frame, std::size_t len, bool l2) {
  if (!l2) return hash_ip(frame, len);
  std::uint16_t type = 0;
  std::size_t l3 = 0;
  if (!offload::skip_l2(frame, len, type, l3))  // cut short: what there is, or the MACs
    return finish(mix(kSeed, frame, len < 14 ? len : 12));
  if (type == offload::kEthIPv4 || type == offload::kEthIPv6) return hash_ip(frame + l3, len - l3);
  return finish(mix(kSeed, frame, 12));  // destination and source MAC
}

std::uint64_t spread(Batch& batch, std::size_t ports, bool l2) {
  if (ports == 1) return 1;
  std::uint64_t used = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto q = static_cast<std::uint8_t>(flow_hash(batch[i].data, batch[i].len, l2) % ports);
    batch.out_port(i) = q;
    used |= std::uint64_t{1} << q;
  }
  return used;
}

}  // namespace fdlinkd
