// fdlinkd's XDP fast path (`offload = "xdp"` on a forward or bridge sink): on the interface of
// an offloaded link, frames whose way out needs nothing from userspace are sent on here, with
// bpf_redirect_map into a DEVMAP, and never reach fdlinkd; every other frame goes on to the
// kernel's stack (XDP_PASS), where the link's AF_PACKET socket reads it as before (the slow
// path). One instance per interface; they share the maps (fastpath_maps.h), which fdlinkd
// keeps in step with its config and with what its bridges learn.
//
//   forward  every frame goes to the `out` slot, if it fits there;
//   bridge   a unicast frame whose source is learned on this port and whose destination is
//            learned on another offloaded port of the same bridge, in a VLAN both carry, goes
//            there, its tag pushed or popped as the egress port wants. Broadcast, multicast,
//            unknown destinations, new or moved sources, and frames a port does not admit go
//            to fdlinkd, which floods, learns (and enters what it learns here) and counts.
//            The program notes when it last sent on a frame from each source, and fdlinkd asks
//            before it ages that MAC out.
// Frames the program does not understand, multi-buffer frames and frames too big for the way
// out go to fdlinkd as well, which handles or counts them as ever.
//
// A redirected frame loses what its skb said of its checksum: on a veth or TUN
// (FDLINKD_FP_PARTIALS), an unfinished TCP/UDP checksum (xdp_partial.h) is finished here first.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

#include "fastpath_maps.h"
#include "xdp_partial.h"

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, FDLINKD_FP_SLOTS);
  __type(key, __u32);
  __type(value, struct fdlinkd_fp_port);
} fdlinkd_fp_ports SEC(".maps");

// Slot -> the ifindex frames leave through.
struct {
  __uint(type, BPF_MAP_TYPE_DEVMAP);
  __uint(max_entries, FDLINKD_FP_SLOTS);
  __type(key, __u32);
  __type(value, __u32);
} fdlinkd_fp_tx SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, struct fdlinkd_fp_vlan_key);
  __type(value, __u8);
} fdlinkd_fp_vlans SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 262144);
  __type(key, struct fdlinkd_fp_fdb_key);
  __type(value, struct fdlinkd_fp_fdb_entry);
} fdlinkd_fp_fdb SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, FDLINKD_FP_SLOTS);
  __type(key, __u32);
  __type(value, struct fdlinkd_fp_stats);
} fdlinkd_fp_stats SEC(".maps");

// The largest frame the program sends on (see fdlinkd_fastpath).
#define FDLINKD_FP_MAX_FAST 3000

// Room to sum a checksum in: a frame's TCP/UDP segment, copied out.
#define SCRATCH 2048
struct scratch {
  __u8 b[SCRATCH];
};
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct scratch);
} fdlinkd_fp_scratch SEC(".maps");

// The slot of the link whose interface this instance is attached to (set before loading).
const volatile __u32 fdlinkd_fp_slot = 0;

// Finishes an unfinished checksum; 0 when there was none or it is done, -1 when the frame
// cannot be finished here (too long: fdlinkd does it).
static __always_inline int finish_checksum(struct xdp_md* ctx) {
  struct fdlinkd_l4 at;
  if (!fdlinkd_partial_at(ctx, &at)) return 0;
  const __u32 zero = 0;
  struct scratch* s = bpf_map_lookup_elem(&fdlinkd_fp_scratch, &zero);
  if (!s) return -1;
  __u32 len = at.len;
  if (len < 8 || len > SCRATCH - 8) return -1;
  asm volatile("" : "+r"(len));  // (keeps the mask below, which the verifier needs)
  len &= SCRATCH - 1;
  if (len < 8) return -1;
  // Zero the word the segment ends in, then copy the segment over it: the sum below runs
  // over whole words, and zeros add nothing.
  *(__u32*)&s->b[(len & ~3u) & (SCRATCH - 8)] = 0;
  if (bpf_xdp_load_bytes(ctx, at.l4, s->b, len)) return -1;
  const __u32 words = (len + 3) & ~3u;
  __s64 sum = 0;
  // Four chunks at constant offsets (a loop's variable offset into the map value is refused
  // without CAP_PERFMON). The field holds the pseudo-header sum: the sum over the segment is
  // what the checksum needs.
#define FDLINKD_SUM_CHUNK(OFF)                                                   \
  if (words > (OFF)) {                                                           \
    __u64 n = words - (OFF);                                                     \
    asm volatile("" : "+r"(n)); /* (so that the bound below is what is seen) */ \
    if (n > 512) n = 512;                                                        \
    sum = bpf_csum_diff(0, 0, (__be32*)&s->b[OFF], n, (__wsum)sum);             \
    if (sum < 0) return -1;                                                      \
  }
  FDLINKD_SUM_CHUNK(0)
  FDLINKD_SUM_CHUNK(512)
  FDLINKD_SUM_CHUNK(1024)
  FDLINKD_SUM_CHUNK(1536)
#undef FDLINKD_SUM_CHUNK
  __u32 folded = (__u32)sum;
  folded = (folded & 0xFFFF) + (folded >> 16);
  folded = (folded & 0xFFFF) + (folded >> 16);
  __u16 check = (__u16)~folded;
  if (at.udp && check == 0) check = 0xFFFF;
  return bpf_xdp_store_bytes(ctx, at.field, &check, 2) ? -1 : 0;
}

static __always_inline int slow(struct fdlinkd_fp_stats* mine) {
  if (mine) ++mine->to_slow_path;
  return XDP_PASS;
}

static __always_inline int is_zero_or_multicast(const __u8* mac) {
  return (mac[0] & 1) || (mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]) == 0;
}

// Bridge: decides the egress slot of a frame and fixes its tag; -1: fdlinkd decides.
// `edit`: 0 none, 1 pop the tag, 2 push `vlan`, 3 set the tag's VLAN id to `vlan`.
static __always_inline int bridge_out(const struct fdlinkd_fp_port* port, __u32 slot,
                                      const __u8* d, const __u8* end, __u32* out, int* edit,
                                      __u16* vlan_out) {
  if (d + 18 > end) return -1;
  if (is_zero_or_multicast(d + 6) || (d[0] & 1)) return -1;  // (broadcast, multicast: flood)
  const int tagged = d[12] == 0x81 && d[13] == 0x00;
  const __u16 id = tagged ? (((__u16)(d[14] & 0x0F) << 8) | d[15]) : 0;
  __u16 vlan = 0;
  if (port->flags & FDLINKD_FP_VLAN_AWARE) {
    if (!(port->flags & FDLINKD_FP_TRUNK)) {
      vlan = (!tagged || id == 0) ? port->pvid : 0;
    } else if (tagged && id != 0) {
      struct fdlinkd_fp_vlan_key vk = {.slot = slot, .vlan = id};
      vlan = bpf_map_lookup_elem(&fdlinkd_fp_vlans, &vk) ? id : 0;
    } else {
      vlan = port->native;
    }
    if (vlan == 0) return -1;  // not admitted: fdlinkd counts it (vlan_filtered)
  }
  struct fdlinkd_fp_fdb_key k = {.bridge = port->bridge, .vlan = vlan};
  __builtin_memcpy(k.mac, d + 6, 6);
  struct fdlinkd_fp_fdb_entry* src = bpf_map_lookup_elem(&fdlinkd_fp_fdb, &k);
  if (!src || src->slot != slot) return -1;  // a new or moved source: fdlinkd learns it
  __builtin_memcpy(k.mac, d, 6);
  const struct fdlinkd_fp_fdb_entry* dst = bpf_map_lookup_elem(&fdlinkd_fp_fdb, &k);
  if (!dst || dst->slot == slot) return -1;  // unknown (flood) or hairpin
  const __u32 q = dst->slot;
  const struct fdlinkd_fp_port* egress = bpf_map_lookup_elem(&fdlinkd_fp_ports, &q);
  if (!egress || egress->mode != FDLINKD_FP_BRIDGE || egress->bridge != port->bridge) return -1;
  // The source talks, though fdlinkd will not see it: say so, for its aging (a write every
  // FDLINKD_FP_SEEN_STEP, so that CPUs forwarding from one MAC do not trade the line per frame).
  const __u64 now = bpf_ktime_get_ns();
  if (now - src->seen_ns >= FDLINKD_FP_SEEN_STEP) src->seen_ns = now;
  *out = q;
  *edit = 0;
  *vlan_out = vlan;
  if (!(port->flags & FDLINKD_FP_VLAN_AWARE)) return 0;
  int want_tag;
  if (egress->flags & FDLINKD_FP_TRUNK) {
    want_tag = vlan != egress->native;
    if (want_tag) {
      struct fdlinkd_fp_vlan_key vk = {.slot = q, .vlan = vlan};
      if (!bpf_map_lookup_elem(&fdlinkd_fp_vlans, &vk)) return -1;
    }
  } else {
    if (egress->pvid != vlan) return -1;
    want_tag = 0;
  }
  if (tagged && !want_tag)
    *edit = 1;
  else if (!tagged && want_tag)
    *edit = 2;
  else if (tagged && id != vlan)
    *edit = 3;
  return 0;
}

static __always_inline int edit_tag(struct xdp_md* ctx, int edit, __u16 vlan) {
  __u8* d = (void*)(long)ctx->data;
  __u8* end = (void*)(long)ctx->data_end;
  if (d + 18 > end) return -1;
  if (edit == 3) {
    d[14] = (d[14] & 0xF0) | (__u8)(vlan >> 8);
    d[15] = (__u8)vlan;
    return 0;
  }
  __u8 macs[12];
  __builtin_memcpy(macs, d, 12);
  if (bpf_xdp_adjust_head(ctx, edit == 1 ? 4 : -4)) return -1;
  d = (void*)(long)ctx->data;
  end = (void*)(long)ctx->data_end;
  if (d + 18 > end) return -1;
  __builtin_memcpy(d, macs, 12);
  if (edit == 2) {
    d[12] = 0x81;
    d[13] = 0x00;
    d[14] = (__u8)(vlan >> 8);
    d[15] = (__u8)vlan;
  }
  return 0;
}

SEC("xdp.frags")
int fdlinkd_fastpath(struct xdp_md* ctx) {
  const __u32 slot = fdlinkd_fp_slot;
  const struct fdlinkd_fp_port* port = bpf_map_lookup_elem(&fdlinkd_fp_ports, &slot);
  if (!port || port->mode == FDLINKD_FP_OFF) return XDP_PASS;
  struct fdlinkd_fp_stats* mine = bpf_map_lookup_elem(&fdlinkd_fp_stats, &slot);
  const __u8* d = (void*)(long)ctx->data;
  const __u8* end = (void*)(long)ctx->data_end;
  // Multi-buffer frames go to fdlinkd. The length of the linear part would be end - d, which
  // the verifier refuses without CAP_PERFMON (fdlinkd has CAP_BPF only): a veth makes a frame
  // multi-buffer only above about 3.5 KB, and so do drivers with page-sized buffers, so frames
  // above FDLINKD_FP_MAX_FAST go up whole.
  const __u32 len = bpf_xdp_get_buff_len(ctx);
  if (len < ETH_HLEN || len > FDLINKD_FP_MAX_FAST || d + ETH_HLEN > end) return slow(mine);
  __u32 out = 0;
  int edit = 0;
  __u16 vlan = 0;
  if (port->mode == FDLINKD_FP_FORWARD) {
    out = port->out;
  } else if (port->mode == FDLINKD_FP_BRIDGE) {
    if (bridge_out(port, slot, d, end, &out, &edit, &vlan)) return slow(mine);
  } else {
    return slow(mine);
  }
  const struct fdlinkd_fp_port* egress = bpf_map_lookup_elem(&fdlinkd_fp_ports, &out);
  const __u32 sent_len = len + (edit == 2 ? 4 : 0) - (edit == 1 ? 4 : 0);
  if (!egress || sent_len > egress->max_len) return slow(mine);  // fdlinkd counts too_big
  if ((port->flags & FDLINKD_FP_PARTIALS) && finish_checksum(ctx)) return slow(mine);
  if (edit && edit_tag(ctx, edit, vlan)) {  // (its checksum is finished: too late for the stack)
    if (mine) ++mine->dropped;
    return XDP_DROP;
  }
  struct fdlinkd_fp_stats* theirs = bpf_map_lookup_elem(&fdlinkd_fp_stats, &out);
  const int r = bpf_redirect_map(&fdlinkd_fp_tx, out, XDP_PASS);
  if (r != XDP_REDIRECT) return slow(mine);
  if (mine) {
    ++mine->rx_packets;
    mine->rx_bytes += len;
  }
  if (theirs) {
    ++theirs->tx_packets;
    theirs->tx_bytes += sent_len;
  }
  return r;
}

char _license[] SEC("license") = "Dual MIT/GPL";
