// NetnsGuard: runs the opening of a link's fds inside another network namespace.
//
// A socket or TAP belongs to the namespace it was created in, whatever thread uses it later, so
// the opening thread enters the namespace, opens, and returns to where it was. setns() with
// CLONE_NEWNET changes only the calling thread.
#pragma once

#include <string>

namespace fdlinkd {

class NetnsGuard {
 public:
  /// `spec` is a name under /run/netns or a path (e.g. /proc/PID/ns/net); empty = stay put.
  /// Throws std::runtime_error when the namespace cannot be entered.
  explicit NetnsGuard(const std::string& spec);
  ~NetnsGuard();
  NetnsGuard(const NetnsGuard&) = delete;
  NetnsGuard& operator=(const NetnsGuard&) = delete;

  /// "/run/netns/NAME" for a bare name, the path itself otherwise.
  static std::string path_of(const std::string& spec);

 private:
  int home_ = -1;
};

}  // namespace fdlinkd
