#include "offload/vlan.hpp"

#include <cstring>

#include "core/virtio_net.hpp"

namespace fdlinkd {

std::uint8_t* put_vlan_tag_back(std::uint8_t* data, std::size_t& len, std::uint16_t tpid,
                                std::uint16_t tci, bool vnet) {
  if (len < 12) return data;  // a runt: dropped as such, tag or not
  std::uint8_t* front = data - (vnet ? sizeof(VirtioNetHdr) : 0);
  std::memmove(front - 4, front, static_cast<std::size_t>(data - front) + 12);
  std::uint8_t* out = data - 4;
  const std::uint8_t tag[4] = {static_cast<std::uint8_t>(tpid >> 8),
                               static_cast<std::uint8_t>(tpid), static_cast<std::uint8_t>(tci >> 8),
                               static_cast<std::uint8_t>(tci)};
  std::memcpy(out + 12, tag, sizeof tag);
  len += 4;
  if (vnet) {
    VirtioNetHdr h;
    std::memcpy(&h, out - sizeof h, sizeof h);
    if (h.flags & VirtioNetHdr::kNeedsCsum)
      h.csum_start = static_cast<std::uint16_t>(h.csum_start + 4);
    if (h.hdr_len != 0 && h.hdr_len < 0xFFFC) h.hdr_len = static_cast<std::uint16_t>(h.hdr_len + 4);
    std::memcpy(out - sizeof h, &h, sizeof h);
  }
  return out;
}

bool vlan_tag_of(const std::uint8_t* data, std::size_t len, std::uint16_t& tci) {
  if (len < 18) return false;
  const unsigned tpid = unsigned{data[12]} << 8 | data[13];
  if (tpid != 0x8100 && tpid != 0x88a8) return false;
  tci = static_cast<std::uint16_t>(data[14] << 8 | data[15]);
  return true;
}

std::uint8_t* take_vlan_tag_out(std::uint8_t* data, std::size_t& len, bool vnet) {
  std::uint16_t tci;
  if (!vlan_tag_of(data, len, tci)) return data;
  std::uint8_t* front = data - (vnet ? sizeof(VirtioNetHdr) : 0);
  std::memmove(front + 4, front, static_cast<std::size_t>(data - front) + 12);
  std::uint8_t* out = data + 4;
  len -= 4;
  if (vnet) {
    VirtioNetHdr h;
    std::memcpy(&h, out - sizeof h, sizeof h);
    if ((h.flags & VirtioNetHdr::kNeedsCsum) && h.csum_start >= 4)
      h.csum_start = static_cast<std::uint16_t>(h.csum_start - 4);
    if (h.hdr_len >= 4) h.hdr_len = static_cast<std::uint16_t>(h.hdr_len - 4);
    std::memcpy(out - sizeof h, &h, sizeof h);
  }
  return out;
}

}  // namespace fdlinkd
