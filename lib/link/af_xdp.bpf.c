// fdlinkd's XDP program for af_xdp links: every frame that arrives on a receive queue with an
// AF_XDP socket of fdlinkd's goes to that socket; on a queue without one, the frame goes on to
// the kernel's stack as if there were no program (XDP_PASS).
//
// Compiled with clang -target bpf at build time and embedded in the daemon (af_xdp.cpp loads
// it from memory): nothing is read from disk at run time, and no BPF filesystem is needed.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

// Queue index -> AF_XDP socket. af_xdp.cpp sizes it to the link's queues before loading.
struct {
  __uint(type, BPF_MAP_TYPE_XSKMAP);
  __uint(max_entries, 64);
  __type(key, __u32);
  __type(value, __u32);
} fdlinkd_xsks SEC(".maps");

SEC("xdp")
int fdlinkd_xsk(struct xdp_md* ctx) {
  // The lower bits of the flags are what happens when the queue has no socket (Linux 5.3+).
  return bpf_redirect_map(&fdlinkd_xsks, ctx->rx_queue_index, XDP_PASS);
}

char _license[] SEC("license") = "Dual MIT/GPL";
