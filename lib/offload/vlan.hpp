// vlan: puts an 802.1Q/802.1ad tag into a frame and takes one out, in place.
//
// put_vlan_tag_back: a packet socket never sees the outermost VLAN tag in the frame: the kernel
// moves it into metadata before any tap runs. A forwarder that does not put it back turns trunk
// traffic into untagged traffic. The MAC addresses (and the virtio header in front of them) move 4
// bytes forward into the headroom and the tag goes in between; the header's offsets, which the
// kernel computed without the tag, grow by 4. Needs 4 writable bytes before the header.
// The bridge uses the same to tag a frame for a trunk port, and take_vlan_tag_out to untag
// one for an access port.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fdlinkd {

/// Returns where the frame now starts (4 bytes before `data`) and adds 4 to `len`; a frame
/// shorter than its MAC addresses is left as it is. With `vnet`, the virtio-net header sits
/// just before `data` and moves along.
std::uint8_t* put_vlan_tag_back(std::uint8_t* data, std::size_t& len, std::uint16_t tpid,
                                std::uint16_t tci, bool vnet);

/// The frame's outermost VLAN tag (TPID 0x8100 or 0x88a8, then the TCI), if it has one.
bool vlan_tag_of(const std::uint8_t* data, std::size_t len, std::uint16_t& tci);

/// Takes the outermost tag out: the MAC addresses (and the virtio header before them) move 4
/// bytes back; returns where the frame now starts (4 bytes after `data`) and subtracts 4 from
/// `len`. A frame without a tag is left as it is.
std::uint8_t* take_vlan_tag_out(std::uint8_t* data, std::size_t& len, bool vnet);

}  // namespace fdlinkd
