// libFuzzer target: arbitrary bytes as a virtio-net header followed by a frame, through the
// same steps a received frame takes: header check, checksum completion, TCP segmentation.
// Nothing may crash, read or write out of bounds, or hit undefined behaviour (run with ASan
// and UBSan by run.sh).
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/batch.hpp"
#include "core/virtio_net.hpp"
#include "offload/checksum.hpp"
#include "offload/gso.hpp"
#include "offload/vnet.hpp"

using namespace fdlinkd;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < sizeof(VirtioNetHdr) + 1) return 0;
  VirtioNetHdr h;
  std::memcpy(&h, data, sizeof h);
  const bool l2 = (data[sizeof h] & 1) == 0;  // one byte picks Ethernet or bare IP (TUN)
  std::vector<std::uint8_t> frame(data + sizeof h + 1, data + size);
  offload::PacketInfo info;
  if (offload::check_vnet(h, frame.data(), frame.size(), l2, info)) return 0;
  if (h.flags & VirtioNetHdr::kNeedsCsum)
    offload::finish_partial(frame.data(), frame.size(), h.csum_start, h.csum_offset);
  if (offload::parse_headers(frame.data(), frame.size(), l2, info) &&
      info.l4_proto == offload::kProtoTcp) {
    static Batch out(256, 1518);
    out.clear();
    std::size_t mss = h.gso_size ? h.gso_size : 1448;
    if (info.headers < 1518 && mss > 1518 - info.headers) mss = 1518 - info.headers;
    offload::segment_tcp(frame.data(), frame.size(), info, mss, out);
  }
  return 0;
}
