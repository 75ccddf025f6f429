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

static __always_inline __u32 load16(const __u8* p) {
  return ((__u32)p[0] << 8) | p[1];
}

// 1 when the frame is IPv4 or IPv6 (after up to two VLAN tags) carrying TCP or UDP, not a
// fragment, whose checksum field equals the folded pseudo-header sum; else 0.
//
// Headers are copied out with bpf_xdp_load_bytes, at offsets that are plain numbers: the
// verifier lets a program add a variable offset to a packet pointer only with CAP_PERFMON,
// which fdlinkd is not given (systemd/af_xdp.conf).
static __always_inline __u32 may_hold_partial(struct xdp_md* ctx) {
  __u8 h[40];
  const __u32 len = bpf_xdp_get_buff_len(ctx);
  if (bpf_xdp_load_bytes(ctx, 12, h, 2)) return 0;
  __u32 type = load16(h), l3 = 14;
#pragma unroll
  for (int tags = 0; tags < 2; ++tags) {
    if (type != ETH_P_8021Q && type != ETH_P_8021AD) break;
    if (bpf_xdp_load_bytes(ctx, l3 + 2, h, 2)) return 0;
    type = load16(h);
    l3 += 4;
  }
  __u32 sum = 0, proto = 0, l4 = 0, ip_end = 0;
  if (type == ETH_P_IP) {
    if (bpf_xdp_load_bytes(ctx, l3, h, 20) || (h[0] >> 4) != 4) return 0;
    const __u32 ihl = (h[0] & 0x0F) * 4u;
    const __u32 total = load16(h + 2);
    if (ihl < 20 || l3 + ihl > len || total < ihl) return 0;
    if (load16(h + 6) & 0x3FFF) return 0;  // a fragment
    proto = h[9];
    sum = load16(h + 12) + load16(h + 14) + load16(h + 16) + load16(h + 18);
    l4 = l3 + ihl;
    ip_end = l3 + total;
  } else if (type == ETH_P_IPV6) {
    if (bpf_xdp_load_bytes(ctx, l3, h, 40) || (h[0] >> 4) != 6) return 0;
    proto = h[6];
#pragma unroll
    for (int i = 8; i < 40; i += 2)
      sum += load16(h + i);
    l4 = l3 + 40;
    const __u32 payload = load16(h + 4);
    ip_end = payload ? l4 + payload : len;
  } else {
    return 0;
  }
  __u32 seen;
  if (proto == IPPROTO_TCP) {
    if (bpf_xdp_load_bytes(ctx, l4, h, 20)) return 0;
    seen = load16(h + 16);
  } else if (proto == IPPROTO_UDP) {
    if (bpf_xdp_load_bytes(ctx, l4, h, 8)) return 0;
    seen = load16(h + 6);
    if (seen == 0 && type == ETH_P_IP) return 0;  // IPv4 UDP without a checksum
  } else {
    return 0;
  }
  if (ip_end > len) ip_end = len;
  const __u32 l4_len = ip_end - l4;  // (ip_end >= l4: total >= ihl, and the header is in)
  sum += proto + (l4_len & 0xFFFF) + (l4_len >> 16);
  sum = (sum & 0xFFFF) + (sum >> 16);
  sum = (sum & 0xFFFF) + (sum >> 16);
  return seen == sum;
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
