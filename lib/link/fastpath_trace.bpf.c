// What becomes of the frames fdlinkd's XDP fast path (fastpath.bpf.c) redirects: the program
// counts a frame as sent when bpf_redirect_map() accepts it, but the kernel may still drop it
// after the program has returned, and says so only in its tracepoints:
//   xdp_redirect_err  the redirect itself failed (the way out no longer takes redirected
//                     frames: a veth whose peer has lost GRO); it names the DEVMAP and the
//                     entry, which is the slot of the way out;
//   xdp_devmap_xmit   a DEVMAP's queued frames were handed to a device, which took `sent` and
//                     dropped `drops` (its ring was full, or it was down); it names the device,
//                     which fdlinkd_fp_egress maps to its slot.
// Both add to that slot's tx_failed, so that every frame the program counted is accounted for.
// Raw tracepoints: no tracefs, and an attachment that goes away with its fd. Loading them
// takes CAP_PERFMON besides CAP_BPF; without it fdlinkd says such drops go uncounted.
#include <linux/bpf.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "fastpath_maps.h"

// The kernel's types, as far as this reads them (CO-RE: libbpf finds the offsets in the
// running kernel's BTF).
struct net {
  __u64 net_cookie;
} __attribute__((preserve_access_index));
typedef struct {
  struct net* net;
} __attribute__((preserve_access_index)) possible_net_t;
struct net_device {
  int ifindex;
  possible_net_t nd_net;
} __attribute__((preserve_access_index));

// Shared with the fast path (fdlinkd hands this object the fast path's map).
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, FDLINKD_FP_SLOTS);
  __type(key, __u32);
  __type(value, struct fdlinkd_fp_stats);
} fdlinkd_fp_stats SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, FDLINKD_FP_SLOTS);
  __type(key, struct fdlinkd_fp_egress_key);
  __type(value, __u32);
} fdlinkd_fp_egress SEC(".maps");

// The id of the fast path's DEVMAP (fdlinkd_fp_tx), set before loading.
const volatile __u32 fdlinkd_fp_tx_map_id = 0;

static __always_inline void failed(__u32 slot, __u64 n) {
  struct fdlinkd_fp_stats* s = bpf_map_lookup_elem(&fdlinkd_fp_stats, &slot);
  if (s) s->tx_failed += n;
}

// xdp_redirect_err(dev, xdp, tgt, err, map_type, map_id, index)
SEC("raw_tp/xdp_redirect_err")
int fdlinkd_fp_redirect_err(struct bpf_raw_tracepoint_args* ctx) {
  if ((__u32)ctx->args[5] != fdlinkd_fp_tx_map_id || fdlinkd_fp_tx_map_id == 0) return 0;
  const __u32 slot = (__u32)ctx->args[6];
  if (slot < FDLINKD_FP_SLOTS) failed(slot, 1);
  return 0;
}

// xdp_devmap_xmit(from_dev, to_dev, sent, drops, err)
SEC("raw_tp/xdp_devmap_xmit")
int fdlinkd_fp_devmap_xmit(struct bpf_raw_tracepoint_args* ctx) {
  const int drops = (int)ctx->args[3];
  if (drops <= 0) return 0;
  const struct net_device* to = (const struct net_device*)ctx->args[1];
  struct fdlinkd_fp_egress_key k = {};
  k.ifindex = (__u32)BPF_CORE_READ(to, ifindex);
  k.netns_cookie = BPF_CORE_READ(to, nd_net.net, net_cookie);
  const __u32* slot = bpf_map_lookup_elem(&fdlinkd_fp_egress, &k);
  if (slot && *slot < FDLINKD_FP_SLOTS) failed(*slot, (__u64)drops);
  return 0;
}

char _license[] SEC("license") = "Dual MIT/GPL";
