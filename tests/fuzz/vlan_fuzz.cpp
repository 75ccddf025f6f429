// libFuzzer target: VLAN tag restoration, as a dispatcher does it for a frame whose outermost
// tag the kernel moved into metadata (PACKET_AUXDATA or the ring's tp_vlan_*), and as the
// bridge tags and untags frames for trunk and access ports. Input: TPID selector, TCI, flags,
// then the frame (with a virtio-net header before it when the flag says so).
//   - put_vlan_tag_back writes only into the 4 bytes of headroom before the frame (and the
//     header), then vlan_tag_of finds the tag it put, with its TCI;
//   - take_vlan_tag_out gives back the original frame, byte for byte, and its header;
//   - a frame too short for its MAC addresses is left as it was.
#include <cstdint>
#include <cstring>
#include <vector>

#include "check.hpp"
#include "core/virtio_net.hpp"
#include "offload/vlan.hpp"

using namespace fdlinkd;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  const std::uint16_t tpid = (data[0] & 1) ? 0x88a8 : 0x8100;
  const bool vnet = (data[0] & 2) != 0;
  const std::uint16_t tci = static_cast<std::uint16_t>(data[1] << 8 | data[2]);
  const std::size_t hdr = vnet ? sizeof(VirtioNetHdr) : 0;
  if (size - 3 < hdr) return 0;
  const std::size_t len0 = size - 3 - hdr;
  // [4 bytes of headroom][virtio header][frame]: exactly what the dispatcher has, and no more
  // (ASan catches a write outside).
  std::vector<std::uint8_t> buf(4 + hdr + len0);
  std::memcpy(buf.data() + 4, data + 3, hdr + len0);
  const std::vector<std::uint8_t> before = buf;
  std::uint8_t* frame = buf.data() + 4 + hdr;

  std::size_t len = len0;
  std::uint8_t* tagged = put_vlan_tag_back(frame, len, tpid, tci, vnet);
  if (len0 < 12) {  // no room for the MAC addresses: untouched
    FUZZ_CHECK(tagged == frame && len == len0 && buf == before);
    return 0;
  }
  FUZZ_CHECK(tagged == frame - 4 && len == len0 + 4);
  FUZZ_CHECK(std::memcmp(tagged, before.data() + 4 + hdr, 12) == 0);  // the MACs moved along
  if (vnet) FUZZ_CHECK(std::memcmp(tagged - hdr, before.data() + 4, 2) == 0);  // flags, gso type
  if (len0 < 14) return 0;  // a runt, tagged or not: nothing reads it further
  std::uint16_t got = 0;
  FUZZ_CHECK(vlan_tag_of(tagged, len, got) && got == tci);

  std::uint8_t* untagged = take_vlan_tag_out(tagged, len, vnet);
  FUZZ_CHECK(untagged == frame && len == len0);
  FUZZ_CHECK(std::memcmp(frame, before.data() + 4 + hdr, len0) == 0);
  if (vnet) {
    // The header's offsets grew by 4 with the tag and shrink back without it (offsets within
    // 4 of 65535, which no frame has, are left alone rather than wrapped).
    VirtioNetHdr a, b;
    std::memcpy(&a, frame - hdr, sizeof a);
    std::memcpy(&b, before.data() + 4, sizeof b);
    FUZZ_CHECK(a.flags == b.flags && a.gso_type == b.gso_type && a.gso_size == b.gso_size);
    if (b.csum_start < 0xFFFC && b.hdr_len < 0xFFFC) FUZZ_CHECK(std::memcmp(&a, &b, sizeof a) == 0);
  }
  return 0;
}
