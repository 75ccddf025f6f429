/* What fdlinkd's XDP program (af_xdp.bpf.c) leaves in front of a frame, as XDP metadata, for
 * the af_xdp link that reads it (xsk.hpp). C, for the BPF program and the daemon alike.
 *
 * On a veth or TUN, the program looks at each frame where it lands and says whether its
 * TCP/UDP checksum field holds just the pseudo-header sum (an offloaded checksum the sender
 * left to "hardware": offload/checksum.hpp, complete_unmarked_partial). The daemon then
 * completes only the frames so marked, instead of parsing every frame a second time on its
 * own CPU. A frame without the magic (no metadata) is checked as before. */
#ifndef FDLINKD_AF_XDP_META_H
#define FDLINKD_AF_XDP_META_H

/* The metadata: one 32-bit word in host byte order, just in front of the frame. */
#define FDLINKD_XDP_META_SIZE 4
/* Its upper bits: set by fdlinkd's program, so a word it did not write is not read as one. */
#define FDLINKD_XDP_META_MAGIC 0xfd1c5a00u
#define FDLINKD_XDP_META_MAGIC_MASK 0xffffff00u
/* The frame may hold an unfinished checksum: the daemon checks it (otherwise it does not). */
#define FDLINKD_XDP_META_CHECK 0x1u

#endif
