// InterfaceWatcher: follows interfaces coming and going in one network namespace.
//
// One rtnetlink socket (libmnl) per namespace in use, subscribed to RTMGRP_LINK and opened
// inside the namespace (a netlink socket reports on the namespace it was created in). Asio
// wakes it on the control thread; each RTM_NEWLINK / RTM_DELLINK becomes an InterfaceEvent:
// name, index, whether it exists and is administratively up. The runtime decides what a link
// does about it (link/ does not call back into runtime/). A second socket, of the netdev
// generic netlink family, hears when an interface's XDP features change (a veth whose peer
// turns GRO on or off: whether it takes redirected frames), for the XDP fast path.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

struct mnl_socket;

namespace fdlinkd {

/// Something happened to interface `name`; `index` and `up` are its state as it is now, read
/// when the notification is handled (notifications queue up: one about a device fdlinkd has
/// just made again may describe a moment already past).
struct InterfaceEvent {
  std::string name;
  unsigned index = 0;  ///< 0: it does not exist (any more)
  bool up = false;     ///< IFF_UP
};

class InterfaceWatcher {
 public:
  using Callback = std::function<void(const InterfaceEvent&)>;

  /// Opens the socket inside `netns` (empty: the current namespace) and starts reading on
  /// `io`; `xdp_changed` (if set) runs after a batch of XDP feature changes (where the kernel
  /// says them: Linux 6.3+). Throws std::runtime_error.
  InterfaceWatcher(boost::asio::io_context& io, const std::string& netns, Callback cb,
                   std::function<void()> xdp_changed = {});
  ~InterfaceWatcher();
  InterfaceWatcher(const InterfaceWatcher&) = delete;
  InterfaceWatcher& operator=(const InterfaceWatcher&) = delete;

  const std::string& netns() const { return netns_; }

 private:
  void wait();
  void on_readable();
  void wait_xdp();

  std::string netns_;
  mnl_socket* nl_ = nullptr;
  boost::asio::posix::stream_descriptor desc_;
  Callback cb_;
  std::vector<char> buf_;
  mnl_socket* xdp_nl_ = nullptr;  ///< the netdev family's "mgmt" group
  boost::asio::posix::stream_descriptor xdp_desc_;
  std::function<void()> xdp_changed_;
};

}  // namespace fdlinkd
