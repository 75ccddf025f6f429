/* For fdlinkd's XDP programs (af_xdp.bpf.c, fastpath.bpf.c): whether a frame's TCP/UDP
 * checksum field holds just the pseudo-header sum, an offloaded checksum its sender left to
 * "hardware" (a veth or TUN peer with checksum offload on). Such a frame keeps that note as an
 * skb; a frame redirected in XDP or read through AF_XDP loses it, so the checksum must be
 * finished before the frame goes on.
 *
 * Headers are copied out with bpf_xdp_load_bytes, at offsets that are plain numbers: the
 * verifier lets a program add a variable offset to a packet pointer only with CAP_PERFMON,
 * which fdlinkd is not given (systemd/af_xdp.conf). */
#ifndef FDLINKD_XDP_PARTIAL_H
#define FDLINKD_XDP_PARTIAL_H

#include <bpf/bpf_helpers.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>

/* Where a frame's transport checksum lies. */
struct fdlinkd_l4 {
  __u32 l4;    /* offset of the TCP/UDP header */
  __u32 len;   /* bytes from there to the end of the IP packet */
  __u32 field; /* offset of the checksum field */
  __u32 udp;   /* 1: UDP (a sum of 0 is sent as 0xFFFF) */
};

static __always_inline __u32 fdlinkd_load16(const __u8* p) {
  return ((__u32)p[0] << 8) | p[1];
}

/* 1 when the frame is IPv4 or IPv6 (after up to two VLAN tags) carrying TCP or UDP, not a
 * fragment, whose checksum field equals the folded pseudo-header sum (and then `at` says
 * where it is); else 0. It errs one way: a frame whose checksum is complete may match (one in
 * 65536), and finishing it again leaves it as it is (fastpath.bpf.c). */
static __always_inline __u32 fdlinkd_partial_at(struct xdp_md* ctx, struct fdlinkd_l4* at) {
  __u8 h[40];
  const __u32 len = bpf_xdp_get_buff_len(ctx);
  if (bpf_xdp_load_bytes(ctx, 12, h, 2)) return 0;
  __u32 type = fdlinkd_load16(h), l3 = 14;
#pragma unroll
  for (int tags = 0; tags < 2; ++tags) {
    if (type != ETH_P_8021Q && type != ETH_P_8021AD) break;
    if (bpf_xdp_load_bytes(ctx, l3 + 2, h, 2)) return 0;
    type = fdlinkd_load16(h);
    l3 += 4;
  }
  __u32 sum = 0, proto = 0, l4 = 0, ip_end = 0;
  if (type == ETH_P_IP) {
    if (bpf_xdp_load_bytes(ctx, l3, h, 20) || (h[0] >> 4) != 4) return 0;
    const __u32 ihl = (h[0] & 0x0F) * 4u;
    const __u32 total = fdlinkd_load16(h + 2);
    if (ihl < 20 || l3 + ihl > len || total < ihl) return 0;
    if (fdlinkd_load16(h + 6) & 0x3FFF) return 0; /* a fragment */
    proto = h[9];
    sum = fdlinkd_load16(h + 12) + fdlinkd_load16(h + 14) + fdlinkd_load16(h + 16) +
          fdlinkd_load16(h + 18);
    l4 = l3 + ihl;
    ip_end = l3 + total;
  } else if (type == ETH_P_IPV6) {
    if (bpf_xdp_load_bytes(ctx, l3, h, 40) || (h[0] >> 4) != 6) return 0;
    proto = h[6];
#pragma unroll
    for (int i = 8; i < 40; i += 2)
      sum += fdlinkd_load16(h + i);
    l4 = l3 + 40;
    const __u32 payload = fdlinkd_load16(h + 4);
    ip_end = payload ? l4 + payload : len;
  } else {
    return 0;
  }
  __u32 seen, field; /* (read at constant offsets: a variable one into the stack needs
                        CAP_PERFMON) */
  if (proto == IPPROTO_TCP) {
    if (bpf_xdp_load_bytes(ctx, l4, h, 20)) return 0;
    field = 16;
    seen = fdlinkd_load16(h + 16);
  } else if (proto == IPPROTO_UDP) {
    if (bpf_xdp_load_bytes(ctx, l4, h, 8)) return 0;
    field = 6;
    seen = fdlinkd_load16(h + 6);
  } else {
    return 0;
  }
  if (seen == 0 && proto == IPPROTO_UDP && type == ETH_P_IP) return 0; /* no UDP checksum */
  if (ip_end > len) ip_end = len;
  const __u32 l4_len = ip_end - l4; /* (ip_end >= l4: total >= ihl, and the header is in) */
  sum += proto + (l4_len & 0xFFFF) + (l4_len >> 16);
  sum = (sum & 0xFFFF) + (sum >> 16);
  sum = (sum & 0xFFFF) + (sum >> 16);
  if (seen != sum) return 0;
  at->l4 = l4;
  at->len = l4_len;
  at->field = l4 + field;
  at->udp = proto == IPPROTO_UDP;
  return 1;
}

#endif
