// vlan: puts back the VLAN tag the kernel took out of a frame read from a packet socket.
//
// A packet socket never sees the outermost VLAN tag in the frame: the kernel moves it into
// metadata before any tap runs. A forwarder that does not put it back turns trunk traffic into
// untagged traffic. The MAC addresses (and the virtio header in front of them) move 4 bytes
// forward into the headroom and the tag goes in between; the header's offsets, which the
// kernel computed without the tag, grow by 4. Needs 4 writable bytes before the header.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fdlinkd {

/// Returns where the frame now starts (4 bytes before `data`) and adds 4 to `len`; a frame
/// shorter than its MAC addresses is left as it is. With `vnet`, the virtio-net header sits
/// just before `data` and moves along.
std::uint8_t* put_vlan_tag_back(std::uint8_t* data, std::size_t& len, std::uint16_t tpid,
                                std::uint16_t tci, bool vnet);

}  // namespace fdlinkd
