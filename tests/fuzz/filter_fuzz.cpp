// libFuzzer target: the filter sink, built from a config as the daemon builds it, over
// arbitrary frames. Byte 0 picks one of a set of expressions (VLANs, IPv4/IPv6, ports, ranges,
// byte offsets, lengths); the rest is frames of [length][bytes], one batch of them. Checked:
//   - every frame that reaches `m` matches the expression, every one that reaches `n` does not
//     (the compiled program run again on the bytes that were sent);
//   - matched + unmatched = frames in.
#include <cstdint>
#include <memory>
#include <string>

#include "check.hpp"
#include "graph_rig.hpp"
#include "sink/filter.hpp"

using namespace fdlinkd;
using namespace fdlinkd::fuzz;

namespace {

constexpr const char* kExprs[] = {
    "tcp port 443",
    "vlan and tcp port 80",
    "vlan 10 and vlan 20 and udp",
    "ip6 and tcp port 80",
    "tcp[tcpflags] & tcp-syn != 0",
    "ip[6:2] & 0x1fff != 0",
    "udp portrange 1000-2000 or icmp",
    "greater 200 and ether broadcast",
    "less 60 or ether[12:2] = 0x88cc",
    "arp or rarp",
    "ip src net 10.0.0.0/8 and not ip dst host 10.0.0.1",
    "ether proto 0x88a8 and vlan",
    "ip proto 132 or ip6 protochain 58",
};
constexpr std::size_t kCount = sizeof kExprs / sizeof kExprs[0];

struct Rig {
  explicit Rig(const char* expr) : prog(expr) {
    const std::string toml = rig_links({"in"}, "f") + rig_links({"m", "n"}, "drop") +
                             "[[sink]]\nname = \"f\"\ntype = \"filter\"\nexpr = \"" + expr +
                             "\"\nmatch = \"m\"\nnomatch = \"n\"\n"
                             "[[sink]]\nname = \"drop\"\ntype = \"drop\"\n";
    rig = std::make_unique<GraphRig>(toml, [this](const Link& to, const Batch& out, std::size_t) {
      for (std::size_t i = 0; i < out.size(); ++i)
        FUZZ_CHECK(prog.matches(out[i].data, out[i].len) == (to.name() == "m"));
    });
  }
  BpfProgram prog;
  std::unique_ptr<GraphRig> rig;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  static std::unique_ptr<Rig> rigs[kCount];
  auto& slot = rigs[data[0] % kCount];
  if (!slot) slot = std::make_unique<Rig>(kExprs[data[0] % kCount]);
  GraphRig& r = *slot->rig;
  const auto before = r.counter("f", "matched") + r.counter("f", "unmatched");
  std::size_t at = 1, in = 0;
  while (at < size && !r.batch().full()) {
    std::size_t len = data[at++];
    if (len > size - at) len = size - at;
    in += r.add(0, data + at, len);
    at += len;
  }
  if (in) r.run(0);
  FUZZ_CHECK(r.counter("f", "matched") + r.counter("f", "unmatched") == before + in);
  return 0;
}
