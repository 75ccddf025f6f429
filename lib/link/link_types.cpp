// The table of link types: the only place that lists them.
#include "link/link_types.hpp"

#include "link/af_packet.hpp"
#include "link/af_xdp.hpp"
#include "link/link.hpp"
#include "link/tap.hpp"
#include "link/unix.hpp"
#include "link/vhost_user.hpp"
#include "link/vxlan.hpp"

namespace fdlinkd {

namespace {
// clang-format off
const LinkType* const kLinkTypes[] = {
    &AfPacketLink::kType,
    &AfXdpLink::kType,
    &TapLink::kTapType,
    &TapLink::kTunType,
    &UnixLink::kType,
    &VxlanLink::kType,
    &VhostUserLink::kType,
};
// clang-format on
}  // namespace

std::span<const LinkType* const> link_types() {
  return kLinkTypes;
}

std::span<const LinkKind* const> link_kinds() {
  static const auto kinds = kinds_of<LinkKind>(kLinkTypes);
  return kinds;
}

const LinkType& link_type_of(const LinkConfig& config) {
  return static_cast<const LinkType&>(*config.type);
}

std::unique_ptr<Link> make_link(const LinkConfig& config) {
  return link_type_of(config).make(config);
}

}  // namespace fdlinkd
