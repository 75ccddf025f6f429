// libFuzzer target: the bridge sink's input. Arbitrary frames, from arbitrary member ports, in
// batches, through a bridge built from a config the way the daemon builds it: learning, moves,
// flooding, reserved MACs, a small table that must evict, VLAN-aware ports (access, trunk,
// native) that tag and untag frames in place. Input: byte 0 picks the bridge, then records of
// [port][length][bytes]. Checked:
//   - nothing goes back out of the port it came in on;
//   - on a VLAN-aware bridge, an access port only ever sends frames without an 802.1Q tag
//     (unless one came in with two: the inner one stays, as with Linux's bridge), and a trunk
//     only frames tagged with one of its VLANs (or untagged: its native VLAN);
//   - the table never holds more than max_macs entries; its state can be listed and flushed
//     at any time.
#include <cstdint>
#include <memory>
#include <string>

#include "check.hpp"
#include "graph_rig.hpp"
#include "offload/vlan.hpp"

using namespace fdlinkd;
using namespace fdlinkd::fuzz;

namespace {

constexpr std::size_t kPorts = 4;
// Whether the input holds a frame with two 802.1Q tags: the bridge takes the outer one off for
// an access port, as Linux's does, and the inner one then leaves with the frame.
bool double_tagged = false;

void check_out(bool vlan_aware, const Link& to, const Batch& out, std::size_t ingress) {
  FUZZ_CHECK(to.index() != ingress);  // no hairpin
  if (!vlan_aware) return;
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::uint16_t tci = 0;
    // An 802.1Q tag (an 802.1ad one is payload to this 802.1Q bridge, and passes as it is)
    const bool tagged = vlan_tag_of(out[i].data, out[i].len, tci) && out[i].data[12] == 0x81;
    const unsigned vid = tci & 0xFFF;
    if (to.name() == "a" || to.name() == "b" || to.name() == "c")  // access ports
      FUZZ_CHECK(!tagged || double_tagged);
    else  // d: trunk 10, 20
      FUZZ_CHECK(!tagged || vid == 10 || vid == 20);
  }
}

GraphRig& rig(unsigned which) {
  static std::unique_ptr<GraphRig> rigs[3];
  auto& r = rigs[which];
  if (!r) {
    const bool vlan_aware = which == 1;
    std::string toml =
        rig_links({"a", "b", "c", "d"}, "sw") +
        "[[sink]]\nname = \"sw\"\ntype = \"bridge\"\nports = [\"a\", \"b\", \"c\", \"d\"]\n";
    // (a table of 256, not the default 8192: each input flushes and lists it, and the
    // smaller table keeps the fuzzer fast; 16 makes it evict all the time)
    toml += which == 2 ? "max_macs = 16\n" : "max_macs = 256\n";
    if (vlan_aware)
      toml +=
          "[sink.vlans]\na = { access = 10 }\nb = { access = 10 }\nc = { access = 20 }\n"
          "d = { trunk = [10, 20], native = 1 }\n";
    r = std::make_unique<GraphRig>(toml,
                                   [vlan_aware](const Link& to, const Batch& out, std::size_t in) {
                                     check_out(vlan_aware, to, out, in);
                                   });
  }
  return *r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  GraphRig& r = rig(data[0] % 3);
  double_tagged = false;
  for (std::size_t i = 0; i + 6 <= size; ++i)  // (anywhere: cheap, and never too strict)
    if (data[i] == 0x81 && data[i + 1] == 0 && data[i + 4] == 0x81 && data[i + 5] == 0)
      double_tagged = true;
  const std::size_t node = r.graph().find("sw");
  Sink& bridge = r.graph().sink(node);
  std::size_t at = 1;
  std::size_t port = 0;
  while (at + 2 <= size) {
    const std::size_t p = data[at] % kPorts;
    std::size_t len = data[at + 1];
    at += 2;
    if (len > size - at) len = size - at;
    if (p != port || r.batch().full()) {  // a batch holds frames of one port
      if (r.batch().size()) r.run(port);
      port = p;
    }
    r.add(p, data + at, len);
    at += len;
    if (len && data[at - 1] == 0xF1) r.graph().flush_state(r.worker(), node);  // `fdb flush`
  }
  if (r.batch().size()) r.run(port);
  FUZZ_CHECK(r.counter("sw", "macs") <= (data[0] % 3 == 2 ? 16u : 256u));
  const auto rows = bridge.state(r.worker());
  FUZZ_CHECK(rows.size() == r.counter("sw", "macs"));
  r.graph().flush_state(r.worker(), node);  // each input starts from an empty table
  FUZZ_CHECK(r.counter("sw", "macs") == 0);
  return 0;
}
