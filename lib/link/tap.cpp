#include "link/tap.hpp"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "config/link_keys.hpp"
#include "core/log.hpp"
#include "core/virtio_net.hpp"
#include "link/netdev.hpp"

namespace fdlinkd {

namespace {

// TUN_F_USO4/6 (Linux 6.2), absent from Debian 12's headers.
constexpr unsigned kTunUso4 = 0x20, kTunUso6 = 0x40;

// offloads = ["csum", "tso4", ...] (with vnet_hdr = true).
void read_offloads(TableReader& r, const LinkConfig& l, TapOptions& o) {
  if (!r.has("offloads")) return;
  if (!l.vnet_hdr) r.reject("offloads", "it needs vnet_hdr = true");
  const toml::array* a = r.table().get("offloads")->as_array();
  r.skip("offloads");
  if (!l.vnet_hdr) return;
  if (!a) {
    r.errors().add(r.where("offloads"),
                   "offloads in " + r.what() + " must be an array such as [\"csum\", \"tso4\"]");
    return;
  }
  o.offload_csum = o.offload_tso4 = o.offload_tso6 = o.offload_uso = false;
  for (const toml::node& e : *a) {
    const auto* str = e.as_string();
    const std::string v = str ? str->get() : "";
    if (v == "csum")
      o.offload_csum = true;
    else if (v == "tso4")
      o.offload_tso4 = true;
    else if (v == "tso6")
      o.offload_tso6 = true;
    else if (v == "uso")
      o.offload_uso = true;
    else
      r.errors().add(e.source(), "offloads in " + r.what() + ": \"" + v +
                                     "\" is not one of csum, tso4, tso6, uso");
  }
  if ((o.offload_tso4 || o.offload_tso6 || o.offload_uso) && !o.offload_csum)
    r.errors().add(r.where("offloads"),
                   "offloads in " + r.what() +
                       ": tso4, tso6 and uso need csum (the kernel refuses segmentation offload "
                       "without checksum offload)");
}

std::shared_ptr<const LinkOptions> read(TableReader& r, LinkConfig& l, Layer layer) {
  auto o = std::make_shared<TapOptions>();
  l.layer = layer;
  l.socket = false;  // a character device: readv and write
  read_interface(r, l, true, true);
  if (auto v = r.boolean("persist")) o->persist = *v;
  if (auto v = r.boolean("vnet_hdr")) l.vnet_hdr = *v;
  read_offloads(r, l, *o);
  read_gso_max_size(r, l);
  read_fds(r, l);
  read_dispatch(r, l, false);
  read_backpressure(r, l, 0);
  return o;
}

std::shared_ptr<const LinkOptions> read_tap(TableReader& r, LinkConfig& l) {
  return read(r, l, Layer::ethernet);
}

std::shared_ptr<const LinkOptions> read_tun(TableReader& r, LinkConfig& l) {
  return read(r, l, Layer::ip);
}

constexpr ConfigKey kKeys[] = {
    {"interface", "the device; made if it does not exist (required)"},
    {"persist", "keep a device fdlinkd made after it exits (false)"},
    {"vnet_hdr", "virtio-net headers: offloads pass through (false)"},
    {"offloads", "with vnet_hdr: csum, tso4, tso6, uso (csum, tso4, tso6)",
     "it sets what a TAP/TUN device may hand fdlinkd"},
    {"gso_max_size", "largest super-frame received (64KiB)"},
    {"fds", "queues of a multi-queue device (1)"},
    {"dispatch", "readv"},
    {"tx_backlog", "frames kept per worker while the device is full (0)"},
    {"tx_stall_timeout", "a device that takes nothing this long stops holding back (1s)"},
};

std::unique_ptr<Link> make(const LinkConfig& c) {
  return std::make_unique<TapLink>(c);
}

}  // namespace

const LinkType TapLink::kTapType = {
    {"tap", "a TAP device (Ethernet frames) through /dev/net/tun", kKeys, read_tap}, make};
const LinkType TapLink::kTunType = {
    {"tun", "a TUN device (IP packets) through /dev/net/tun", kKeys, read_tun}, make};

void TapLink::open_fds() {
  const std::string& ifname = config_.interface;
  const bool existed = netdev::index_of(ifname) != 0;
  if (!existed) created_ = true;
  const bool tap = config_.layer == Layer::ethernet;

  for (std::size_t q = 0; q < ports_.size(); ++q) {
    const int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) throw LinkError("cannot open /dev/net/tun: " + errno_text(errno));
    ports_[q]->fd = fd;

    ifreq ifr{};
    std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
    // Several fds are the queues of one multi-queue device; the kernel spreads the device's
    // transmit side over them by flow, and each fd's writes enter on its own queue.
    const int mq = ports_.size() > 1 ? IFF_MULTI_QUEUE : 0;
    const int vnet = config_.vnet_hdr ? IFF_VNET_HDR : 0;
    ifr.ifr_flags = static_cast<short>((tap ? IFF_TAP : IFF_TUN) | IFF_NO_PI | mq | vnet);
    if (::ioctl(fd, TUNSETIFF, &ifr) != 0) {
      const int err = errno;
      std::string hint;
      if (err == EBUSY) hint = " (another process has it open)";
      if (err == EINVAL && existed)
        hint = " (it exists with other settings, or is not a " + std::string(tap ? "TAP" : "TUN") +
               " device)";
      throw LinkError("cannot attach to " + std::string(tap ? "TAP" : "TUN") + " device " + ifname +
                      ": " + errno_text(err, "CAP_NET_ADMIN") + hint);
    }
    if (config_.vnet_hdr) {
      const int size = sizeof(VirtioNetHdr);
      if (::ioctl(fd, TUNSETVNETHDRSZ, &size) != 0)
        throw LinkError("TUNSETVNETHDRSZ: " + errno_text(errno));
      // What the device may hand fdlinkd: only what fdlinkd can finish or pass on.
      unsigned offload = 0;
      if (o_.offload_csum) offload |= TUN_F_CSUM;
      if (o_.offload_tso4) offload |= TUN_F_TSO4;
      if (o_.offload_tso6) offload |= TUN_F_TSO6;
      if (o_.offload_uso) offload |= kTunUso4 | kTunUso6;
      if (::ioctl(fd, TUNSETOFFLOAD, offload) != 0)
        throw LinkError("TUNSETOFFLOAD: " + errno_text(errno) +
                        (o_.offload_uso ? " (\"uso\" needs Linux 6.2 or later)" : ""));
    }
    if (o_.persist && ::ioctl(fd, TUNSETPERSIST, 1) != 0)
      throw LinkError("cannot make " + ifname + " persistent: " + errno_text(errno));
  }

  try {
    netdev::set_mtu(ifname, config_.mtu);
    netdev::set_up(ifname);
  } catch (const std::runtime_error& e) {
    throw LinkError(e.what());
  }
  log::debug("tap_attached", existed ? "attached to an existing device" : "created the device",
             {{"link", name()}, {"interface", ifname}});
}

}  // namespace fdlinkd
