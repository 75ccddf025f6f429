// Writer: the last stage of the data path, from a batch to an fd.
//
// Sockets get sendmmsg: one system call for a whole run of frames. TAP/TUN fds are character
// devices without mmsg calls, so they get one write per frame. Nothing blocks: a frame the fd
// cannot take now is dropped and counted under the errno's reason (see counters.hpp), or, on a
// link with a backlog (a local peer: back-pressure), kept there with the rest of the batch and
// sent first the next time (backlog.hpp; the link waits for room).
#pragma once

#include <sys/socket.h>

#include <cstddef>

#include "core/batch.hpp"
#include "core/counters.hpp"

namespace fdlinkd {

class TxBacklog;

struct TxTarget {
  int fd = -1;
  const sockaddr* address = nullptr;  ///< sendmmsg destination; nullptr for bound/connected fds
  socklen_t address_len = 0;
  std::size_t max_frame = 0;  ///< larger frames are dropped as too_big
  bool is_socket = true;      ///< sendmmsg, else one write per frame
  bool vnet = false;  ///< the fd takes a virtio-net header (Batch::tx_header) before each frame
  /// Where frames wait when the fd is full (EAGAIN), instead of being dropped; nullptr: none.
  TxBacklog* backlog = nullptr;
  /// TCP segments of one flow go as one GSO super-frame (coalesce.hpp). Sockets with vnet
  /// and no backlog only.
  bool gro = false;
};

/// Sends the frames of `batch` whose out_port is `port` (every frame when port < 0) to
/// `target`, whose fd is open, adding sent and dropped frames to `tally`. Order is kept: with a
/// backlog that is not empty, it is sent first, and what it cannot send waits behind it.
void write_batch(const TxTarget& target, Batch& batch, int port, CounterValues& tally);

/// The reason a frame is dropped when a send or write fails with `err`.
DropReason tx_drop_reason(int err);
/// True when after `err` the rest of the batch would fail the same way (queue full, link gone).
bool tx_error_ends_batch(int err);

}  // namespace fdlinkd
