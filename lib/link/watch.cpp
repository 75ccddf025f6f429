#include "link/watch.hpp"

#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/rtnetlink.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "core/log.hpp"
#include "link/netdev.hpp"
#include "link/netns.hpp"

namespace fdlinkd {

namespace asio = boost::asio;

namespace {

int attr_cb(const nlattr* attr, void* data) {
  if (mnl_attr_get_type(attr) == IFLA_IFNAME && mnl_attr_validate(attr, MNL_TYPE_STRING) >= 0)
    static_cast<InterfaceEvent*>(data)->name = mnl_attr_get_str(attr);
  return MNL_CB_OK;
}

struct Dispatch {
  InterfaceWatcher::Callback* cb;
  const std::string* netns;
};

int msg_cb(const nlmsghdr* nlh, void* data) {
  if (nlh->nlmsg_type != RTM_NEWLINK && nlh->nlmsg_type != RTM_DELLINK) return MNL_CB_OK;
  const auto* ifm = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  InterfaceEvent ev;
  mnl_attr_parse(nlh, sizeof *ifm, attr_cb, &ev);
  if (ev.name.empty()) return MNL_CB_OK;
  auto* d = static_cast<Dispatch*>(data);
  {
    NetnsGuard ns(*d->netns);
    ev.index = netdev::index_of(ev.name);
    ev.up = ev.index != 0 && netdev::is_up(ev.name);
  }
  (*d->cb)(ev);
  return MNL_CB_OK;
}

}  // namespace

InterfaceWatcher::InterfaceWatcher(asio::io_context& io, const std::string& netns, Callback cb,
                                   std::function<void()> xdp_changed)
    : netns_(netns),
      desc_(io),
      cb_(std::move(cb)),
      buf_(MNL_SOCKET_BUFFER_SIZE * 4),
      xdp_desc_(io),
      xdp_changed_(std::move(xdp_changed)) {
  {
    NetnsGuard ns(netns);
    if (xdp_changed_) xdp_nl_ = netdev::watch_xdp_features();  // (nullptr: an older kernel)
    nl_ = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (!nl_) throw std::runtime_error(std::string("rtnetlink socket: ") + std::strerror(errno));
    if (mnl_socket_bind(nl_, RTMGRP_LINK, MNL_SOCKET_AUTOPID) < 0) {
      const int err = errno;
      mnl_socket_close(nl_);
      nl_ = nullptr;
      throw std::runtime_error(std::string("rtnetlink bind: ") + std::strerror(err));
    }
  }
  desc_.assign(mnl_socket_get_fd(nl_));
  wait();
  if (xdp_nl_) {
    xdp_desc_.assign(mnl_socket_get_fd(xdp_nl_));
    wait_xdp();
  }
}

InterfaceWatcher::~InterfaceWatcher() {
  for (auto* d : {&desc_, &xdp_desc_})
    if (d->is_open()) {
      boost::system::error_code ec;
      d->cancel(ec);
      d->release();
    }
  if (nl_) mnl_socket_close(nl_);
  if (xdp_nl_) mnl_socket_close(xdp_nl_);
}

void InterfaceWatcher::wait_xdp() {
  xdp_desc_.async_wait(asio::posix::stream_descriptor::wait_read,
                       [this](const boost::system::error_code& ec) {
                         if (ec) return;
                         // What changed is asked afresh by the callback: the messages only
                         // say that something did (and a full queue, ENOBUFS, says so too).
                         while (mnl_socket_recvfrom(xdp_nl_, buf_.data(), buf_.size()) > 0 ||
                                errno == EINTR || errno == ENOBUFS) {
                         }
                         xdp_changed_();
                         wait_xdp();
                       });
}

void InterfaceWatcher::wait() {
  desc_.async_wait(asio::posix::stream_descriptor::wait_read,
                   [this](const boost::system::error_code& ec) {
                     if (!ec) on_readable();
                   });
}

void InterfaceWatcher::on_readable() {
  Dispatch d{&cb_, &netns_};
  for (;;) {
    const ssize_t n = mnl_socket_recvfrom(nl_, buf_.data(), buf_.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      // ENOBUFS: the kernel dropped notifications (a burst); the next ones still come.
      if (errno != EAGAIN)
        log::warn("netlink_error", "reading interface notifications failed",
                  {{"netns", netns_}, {"error", std::strerror(errno)}});
      break;
    }
    mnl_cb_run(buf_.data(), static_cast<std::size_t>(n), 0, 0, msg_cb, &d);
  }
  wait();
}

}  // namespace fdlinkd
