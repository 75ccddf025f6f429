// fdlinkd's XDP program for af_xdp links: every frame that arrives on a receive queue with an
// AF_XDP socket of fdlinkd's goes to that socket; on a queue without one, the frame goes on to
// the kernel's stack as if there were no program (XDP_PASS).
//
// On a veth or TUN (fdlinkd_mark_partials, set before loading), it first marks each frame in
// its metadata (af_xdp_meta.h) with whether the frame's TCP/UDP checksum field holds just the
// pseudo-header sum: the test is cheap here, where the frame has just been written, and the
// daemon then completes the checksums of the marked frames only. The test errs one way: a
// frame the daemon's own test (offload/checksum.cpp) would complete is always marked.
//
// Compiled with clang -target bpf at build time and embedded in the daemon (af_xdp.cpp loads
// it from memory): nothing is read from disk at run time, and no BPF filesystem is needed.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "af_xdp_meta.h"
#include "xdp_partial.h"

// Queue index -> AF_XDP socket. af_xdp.cpp sizes it to the link's queues before loading.
struct {
  __uint(type, BPF_MAP_TYPE_XSKMAP);
  __uint(max_entries, 64);
  __type(key, __u32);
  __type(value, __u32);
} fdlinkd_xsks SEC(".maps");

// Whether to mark frames (a veth or TUN link); read-only once loaded, so the verifier drops
// the marking altogether where it is 0.
const volatile __u32 fdlinkd_mark_partials = 0;

// 1 when the frame's checksum may be unfinished (xdp_partial.h).
static __always_inline __u32 may_hold_partial(struct xdp_md* ctx) {
  struct fdlinkd_l4 at;
  return fdlinkd_partial_at(ctx, &at);
}

SEC("xdp")
int fdlinkd_xsk(struct xdp_md* ctx) {
  if (fdlinkd_mark_partials) {
    const __u32 check = may_hold_partial(ctx);
    // Without room or support for metadata the daemon finds no magic and checks the frame.
    if (bpf_xdp_adjust_meta(ctx, -FDLINKD_XDP_META_SIZE) == 0) {
      __u32* meta = (__u32*)(long)ctx->data_meta;
      if ((void*)(meta + 1) <= (void*)(long)ctx->data)
        *meta = FDLINKD_XDP_META_MAGIC | (check ? FDLINKD_XDP_META_CHECK : 0);
    }
  }
  // The lower bits of the flags are what happens when the queue has no socket (Linux 5.3+).
  return bpf_redirect_map(&fdlinkd_xsks, ctx->rx_queue_index, XDP_PASS);
}

char _license[] SEC("license") = "Dual MIT/GPL";
