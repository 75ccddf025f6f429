/* The maps of fdlinkd's XDP fast path (fastpath.bpf.c), as the program and the daemon
 * (fastpath.cpp) both see them. C, for the BPF program and the daemon alike.
 *
 * A "slot" is a link's index in the running config (LinkSet): it names the link's row in
 * fdlinkd_fp_ports, its egress device in fdlinkd_fp_tx and its counters in fdlinkd_fp_stats. */
#ifndef FDLINKD_FASTPATH_MAPS_H
#define FDLINKD_FASTPATH_MAPS_H

#include <linux/types.h>

/* Rows of fdlinkd_fp_ports, fdlinkd_fp_tx and fdlinkd_fp_stats: the most links offloaded. */
#define FDLINKD_FP_SLOTS 4096

/* What the program does with a frame received on a slot's interface. */
enum fdlinkd_fp_mode {
  FDLINKD_FP_OFF = 0,     /* nothing: every frame goes on to fdlinkd (XDP_PASS) */
  FDLINKD_FP_FORWARD = 1, /* every frame it can send goes to `out` */
  FDLINKD_FP_BRIDGE = 2,  /* a port of bridge `bridge`: known unicast goes to its port */
};

/* Port flags. */
#define FDLINKD_FP_VLAN_AWARE 0x1u /* the bridge has VLANs (otherwise tags are ignored) */
#define FDLINKD_FP_TRUNK 0x2u      /* a trunk port (otherwise an access port of `pvid`) */
#define FDLINKD_FP_PARTIALS 0x4u   /* a veth or TUN: frames may hold unfinished checksums */

struct fdlinkd_fp_port {
  __u32 mode;
  __u32 flags;
  __u32 out;     /* FORWARD: the slot frames go to */
  __u32 bridge;  /* BRIDGE: which bridge (fdb keys) */
  __u32 max_len; /* largest frame this slot may send (its MTU plus 18); 0: none */
  __u16 pvid;    /* access: its VLAN */
  __u16 native;  /* trunk: VLAN of untagged frames; 0: none */
};

/* A trunk port's tagged VLANs: present = carried. */
struct fdlinkd_fp_vlan_key {
  __u32 slot;
  __u32 vlan;
};

/* A learned MAC of a bridge: (bridge, VLAN, MAC) -> the slot of its port, and when the program
 * last sent on a frame from it. */
struct fdlinkd_fp_fdb_key {
  __u32 bridge;
  __u16 vlan;
  __u8 mac[6];
};
struct fdlinkd_fp_fdb_entry {
  __u32 slot;
  __u32 pad;
  /* CLOCK_MONOTONIC (bpf_ktime_get_ns), written at most every FDLINKD_FP_SEEN_STEP; 0: the
   * program has not forwarded a frame from this MAC since fdlinkd entered it. fdlinkd asks
   * before it ages the MAC out: frames it never sees keep the MAC alive. */
  __u64 seen_ns;
};
#define FDLINKD_FP_SEEN_STEP 100000000ull /* 100 ms: one write a MAC at most, not per frame */

/* Per CPU and slot: what the program redirected. rx: frames received on the slot's interface
 * and sent on by the program; tx: frames the program sent out of the slot. */
struct fdlinkd_fp_stats {
  __u64 rx_packets;
  __u64 rx_bytes;
  __u64 tx_packets;
  __u64 tx_bytes;
  __u64 to_slow_path; /* frames left to fdlinkd (XDP_PASS) on an offloaded slot */
  __u64 dropped;      /* frames a tag could not be pushed or popped on (no headroom) */
  /* Of tx_packets, frames the kernel could not send after the program redirected them: the
   * way out no longer took redirected frames (a veth whose peer lost GRO), or its queue was
   * full, or it was down. Counted by fastpath_trace.bpf.c from the kernel's XDP tracepoints. */
  __u64 tx_failed;
};

/* A way out as the kernel's tracepoints name it: a device by its network namespace's cookie
 * (SO_NETNS_COOKIE) and its ifindex there. fdlinkd_fp_egress maps it to its slot. */
struct fdlinkd_fp_egress_key {
  __u64 netns_cookie;
  __u32 ifindex;
  __u32 pad;
};

#endif
