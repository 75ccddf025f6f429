#!/usr/bin/env bash
# ns1 (h1) --veth-- [pa] fdlinkd [pb] --veth-- ns2 (h2), both links af_packet (a: readv,
# b: recvmmsg), every veth at its default offloads (TX checksum offload and TSO on). 100 pings with 0% loss, 50 MiB over TCP with matching SHA-256, SIGTERM exit 0
# within 2 s, and final counters that account for every frame.
source "$(dirname "$0")/lib.sh"

mkns h1; mkns h2; mkns fw
veth "$ID-h1" h1 "$ID-fw" pa
veth "$ID-h2" h2 "$ID-fw" pb
ip -n "$ID-h1" addr add 10.77.1.1/24 dev h1
ip -n "$ID-h2" addr add 10.77.1.2/24 dev h2

cat > "$TMP/fdlinkd.toml" <<EOT
[daemon]
stats_interval = "1s"
$(afp_link a pa to-b)
$(afp_link b pb to-a 'dispatch = "recvmmsg"')
$(forward_sinks a b)
EOT
start_daemon "$TMP/fdlinkd.toml" "$ID-fw"

ping_ok "$ID-h1" 10.77.1.2 100
tcp_ok "$ID-h1" "$ID-h2" 10.77.1.2 50
tcp_ok "$ID-h2" "$ID-h1" 10.77.1.1 50
stop_daemon

logq check >/dev/null
a_rx=$(logq final a rx_packets); a_drops=$(logq final a drops); a_seg=$(logq final a gso_segments)
b_tx=$(logq final b tx_packets); b_drops=$(logq final b drops); b_seg=$(logq final b gso_segments)
b_rx=$(logq final b rx_packets); a_tx=$(logq final a tx_packets)
# The veths keep their default offloads: the senders hand over TSO super-frames with
# unfinished checksums, and af_packet links pass them on to the kernel whole by default (no
# qdisc_bypass, no tx_ring): no segments made, and far fewer frames than the 36209 that 50 MiB
# makes in 1448-byte segments. (tests/e2e/vnet_offloads.sh plain checks the software path.)
[ "$b_seg" -eq 0 ] && [ "$a_seg" -eq 0 ] || fail "fdlinkd segmented ($a_seg, $b_seg) although the kernel takes GSO"
[ "$b_tx" -lt 36209 ] || fail "link b sent $b_tx frames for 50 MiB of TCP: super-frames were not passed on"
[ $(( a_rx + b_seg )) -eq $(( b_tx + a_drops + b_drops )) ] || fail "a rx $a_rx + segments $b_seg != b tx $b_tx + drops"
[ $(( b_rx + a_seg )) -eq $(( a_tx + a_drops + b_drops )) ] || fail "b rx $b_rx + segments $a_seg != a tx $a_tx + drops"
# Nothing here should have been dropped: every super-frame is TCP and the path is idle.
[ "$a_drops" -eq 0 ] && [ "$b_drops" -eq 0 ] || fail "unexpected drops: a=$a_drops b=$b_drops"
pass "final counters: a rx=$a_rx tx=$a_tx, b rx=$b_rx tx=$b_tx, segments added $(( a_seg + b_seg )), no drops"
