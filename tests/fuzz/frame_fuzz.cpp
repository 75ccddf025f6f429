// libFuzzer target: arbitrary bytes as a received frame (a virtio-net header before it), through
// what every receive mode does to it and what egress reads of it:
//   - classify_rx: accepted, or one drop reason (runt, oversize, vnet_*), for limits picked by
//     the first byte (Ethernet or bare IP, with or without a virtio header, slot sizes);
//   - parse_headers / skip_l2 / ip_packet_end / parse_udp_tunnel: every offset they return lies
//     inside the frame and in order;
//   - flow_hash: reads only the frame, and is the same for the same bytes.
#include <cstdint>
#include <cstring>
#include <vector>

#include "check.hpp"
#include "core/virtio_net.hpp"
#include "link/rx.hpp"
#include "offload/headers.hpp"
#include "writer/flow_hash.hpp"

using namespace fdlinkd;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1 + sizeof(VirtioNetHdr)) return 0;
  const std::uint8_t pick = data[0];
  const bool l2 = (pick & 1) == 0;
  RxLimits lim;
  lim.vnet = (pick & 2) != 0;
  lim.min_frame = l2 ? 14 : 1;
  lim.wire = (pick & 4) ? 1518 : 128;
  lim.slot = (pick & 8) ? 65536 : lim.wire;
  const bool truncated = (pick & 16) != 0;
  const std::size_t len = size - 1 - sizeof(VirtioNetHdr);
  // The frame in a buffer of its own size (ASan sees any read past it), header just before.
  std::vector<std::uint8_t> buf(data + 1, data + size);
  const std::uint8_t* frame = buf.data() + sizeof(VirtioNetHdr);

  const auto why = classify_rx(frame, len, truncated, lim);
  if (why) {
    FUZZ_CHECK(*why == DropReason::oversize || *why == DropReason::runt ||
               *why == DropReason::vnet_bad_gso || *why == DropReason::vnet_gso_size_zero ||
               *why == DropReason::vnet_bad_hdr_len || *why == DropReason::vnet_bad_csum ||
               *why == DropReason::vnet_bad_headers);
  } else {
    FUZZ_CHECK(!truncated && len >= lim.min_frame && len <= lim.slot);
  }
  if (truncated || len > lim.slot) FUZZ_CHECK(why == DropReason::oversize);

  std::uint16_t type = 0;
  std::size_t l3 = 0;
  if (l2 && offload::skip_l2(frame, len, type, l3)) FUZZ_CHECK(l3 >= 14 && l3 <= len);

  offload::PacketInfo info;
  if (offload::parse_headers(frame, len, l2, info)) {
    FUZZ_CHECK(info.ip_version == 4 || info.ip_version == 6);
    FUZZ_CHECK(info.l3 < info.l4 && info.l4 < info.headers && info.headers <= len);
    const std::size_t end = offload::ip_packet_end(frame, len, info);
    FUZZ_CHECK(end <= len);
    if (info.l4_proto == offload::kProtoUdp) {
      offload::PacketInfo inner;
      // Where the kernel would point csum_start: try the spot a VXLAN or Geneve inner TCP
      // header would be at, and one the input picks.
      const std::size_t picks[] = {std::size_t{info.headers} + 8 + 14 + 20, pick * std::size_t{2}};
      for (std::size_t at : picks)
        if (offload::parse_udp_tunnel(frame, len, info, at, inner)) {
          FUZZ_CHECK(inner.l3 >= info.headers && inner.l3 < inner.l4);
          FUZZ_CHECK(inner.l4 == at && inner.headers <= len);
        }
    }
  }
  const std::uint32_t h1 = flow_hash(frame, len, l2);
  const std::uint32_t h2 = flow_hash(frame, len, l2);
  FUZZ_CHECK(h1 == h2);
  return 0;
}
