// libFuzzer target: arbitrary bytes as a virtio-net header followed by a frame, through the
// same steps a received frame takes: classify_rx (dispatch/), then egress preparation
// for a target chosen by one byte (plain or vnet_hdr, Ethernet or bare IP): checksum
// completion, TCP and UDP segmentation, GRO-to-GSO conversion; and, as an af_xdp link on a
// veth does, the completion of an offloaded checksum that arrived unmarked, and, as a vxlan link
// does, the virtio header given to a kernel VTEP's unmarked super-frame. Nothing may crash, read
// or write out of bounds, or hit undefined behaviour (run with ASan and UBSan by run.sh).
#include <cstdint>
#include <cstring>

#include "check.hpp"
#include "core/batch.hpp"
#include "core/counters.hpp"
#include "core/virtio_net.hpp"
#include "core/worker.hpp"
#include "link/rx.hpp"
#include "offload/checksum.hpp"
#include "offload/vnet.hpp"
#include "writer/egress.hpp"

using namespace fdlinkd;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < sizeof(VirtioNetHdr) + 1) return 0;
  VirtioNetHdr h;
  std::memcpy(&h, data, sizeof h);
  // bit 0: bare IP (TUN); 1: vnet fd; 2: passthrough; 3: received on an af_xdp link on a veth;
  // 4: received on a vxlan link
  const std::uint8_t pick = data[sizeof h];
  const bool l2 = (pick & 1) == 0;
  const std::uint8_t* frame = data + sizeof h + 1;
  const std::size_t len = size - sizeof h - 1;

  static Batch in(1, 65536);
  static boost::asio::io_context io;
  static Worker worker(io, 0, 1518, 65536);
  if (len > in.slot_capacity()) return 0;
  in.clear();
  std::uint8_t* slot = in.slot(0);
  std::memcpy(slot, frame, len);
  std::memcpy(slot - sizeof h, &h, sizeof h);  // where dispatchers put it: in the headroom
  if ((pick & 16) && l2) {  // (read_vxlan: a super-frame gets the header a kernel VTEP's lost)
    VirtioNetHdr vh;
    if (offload::gso_header_for_unmarked(slot, len, 1450, vh)) {
      offload::PacketInfo info;
      FUZZ_CHECK(!offload::check_vnet(vh, slot, len, true, info));  // what it says must hold
      std::memcpy(slot - sizeof vh, &vh, sizeof vh);
    }
  }
  // What every receive mode lets in (classify_rx: header checks, sizes); the rest is a named
  // drop on the receiving link.
  const RxLimits limits{in.slot_capacity(), l2 ? 1518u : 1500u, l2 ? 14u : 1u, true};
  if (classify_rx(slot, len, false, limits)) return 0;
  if (pick & 8) {  // (read_xsk: completes an offloaded checksum left unmarked; once is enough)
    if (offload::complete_unmarked_partial(slot, len, l2))
      FUZZ_CHECK(!offload::complete_unmarked_partial(slot, len, l2));
  }
  in.push(slot, static_cast<std::uint32_t>(len), true);

  EgressCaps caps;
  caps.l2 = l2;
  caps.vnet_fd = (pick & 2) != 0;
  caps.passthrough = caps.vnet_fd && (pick & 4) != 0;
  caps.wire_capacity = l2 ? 1514 : 1500;
  CounterValues tally;
  prepare_egress(in, caps, worker, tally, [](Batch& b) {
    std::uint32_t sum = 0;  // read every byte sent, so ASan checks the frames' bounds
    for (std::size_t i = 0; i < b.size(); ++i)
      for (std::size_t j = 0; j < b[i].len; ++j)
        sum += b[i].data[j];
    static volatile std::uint32_t sink;
    sink = sum;
  });
  // The README counts a bad virtio header on the receiving link: a frame let in must never be
  // dropped for its header on the way out.
  FUZZ_CHECK(tally.drop(DropReason::vnet_bad_headers) == 0);
  FUZZ_CHECK(tally.drop(DropReason::vnet_bad_csum) == 0);
  FUZZ_CHECK(tally.drop(DropReason::vnet_bad_gso) == 0);
  worker.copies.reset();
  return 0;
}
