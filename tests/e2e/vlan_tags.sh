#!/usr/bin/env bash
# vlan_tags.sh MODE: VLAN-tagged frames keep their tags through fdlinkd. The kernel takes the
# outermost tag out of every frame before a packet socket sees it (it travels as metadata), so
# fdlinkd must put it back: 802.1Q with a priority, 802.1ad QinQ, 802.1Q in 802.1Q,
# priority-tagged VLAN 0, untagged, and a full-size tagged frame must reach the far side byte
# for byte, in order, in both directions.
#   MODE = readv | recvmmsg | packet_mmap | ring2 (the receive mode of both links; packet_mmap
#          with the TX ring, ring2 the same with a TPACKET_V2 receive ring, recvmmsg with
#          vnet_hdr on the egress, so the header moves with the tag) | af_xdp (both links af_xdp:
#          XDP sees a frame's tags in its bytes, and a full-size tagged frame fits a UMEM frame)
source "$(dirname "$0")/lib.sh"
MODE=${1:?mode}

mkns h1; mkns h2; mkns fw
veth "$ID-h1" h1 "$ID-fw" pa
veth "$ID-h2" h2 "$ID-fw" pb
case $MODE in
  readv) extra=() ;;
  recvmmsg) extra=('dispatch = "recvmmsg"' 'vnet_hdr = true') ;;
  packet_mmap) extra=('dispatch = "packet_mmap"' 'tx_ring = true') ;;
  ring2) extra=('dispatch = "packet_mmap"' 'tx_ring = true' $'[link.ring]\nversion = 2') ;;
  af_xdp) extra=() ;;
  *) fail "unknown mode $MODE" ;;
esac
ltype=$([ "$MODE" = af_xdp ] && echo af_xdp || echo af_packet)
cat > "$TMP/fdlinkd.toml" <<EOT
[daemon]
stats_interval = "0s"
$(afp_link a pa to-b "${extra[@]}" | sed "s/\"af_packet\"/\"$ltype\"/")
$(afp_link b pb to-a "${extra[@]}" | sed "s/\"af_packet\"/\"$ltype\"/")
$(forward_sinks a b)
EOT
start_daemon "$TMP/fdlinkd.toml" "$ID-fw"

through() {  # through SRC_NS SRC_IF DST_NS DST_IF
  ip netns exec "$3" tcpdump -i "$4" -Q in -s 0 --immediate-mode -U -w "$TMP/$4.pcap" 2>"$TMP/$4.tcpdump" &
  local cap=$!
  BACKGROUND+=("$cap")
  capturing "$TMP/$4.tcpdump"
  ip netns exec "$1" "$PY" "$HERE/vlan_frames.py" send "$2"
  sleep 0.5
  kill -INT "$cap" 2>/dev/null || true
  wait "$cap" 2>/dev/null || true
  local out
  out=$("$PY" "$HERE/vlan_frames.py" check "$TMP/$4.pcap") || { cat "$TMP/$4.tcpdump"; tcpdump -r "$TMP/$4.pcap" -e -n 2>/dev/null | head -5; fail "$MODE: $2 -> $4: $out"; }
  pass "$MODE: $2 -> $4: $out"
}
through "$ID-h1" h1 "$ID-h2" h2
through "$ID-h2" h2 "$ID-h1" h1
stop_daemon
