#!/usr/bin/env bash
# While fdlinkd is frozen (SIGSTOP), 20000 frames arrive: far more than its socket buffer
# holds, so the kernel drops some. fdlinkd must account for every one of them: received =
# forwarded + dropped, with the kernel's drops under rx_queue_full.
# MODE: afp (link a is af_packet: its socket buffer) | af_xdp (link a is af_xdp: its RX ring of
# 2048 and fill ring of 4096 frames; XDP_STATISTICS says what the kernel dropped).
source "$(dirname "$0")/lib.sh"
N=20000
MODE=${1:-afp}

mkns h1; mkns h2; mkns fw
veth "$ID-h1" h1 "$ID-fw" pa
veth "$ID-h2" h2 "$ID-fw" pb
cat > "$TMP/fdlinkd.toml" <<EOT
[daemon]
stats_interval = "0s"
$(afp_link a pa to-b | sed "s/type = \"af_packet\"/type = \"$([ "$MODE" = af_xdp ] && echo af_xdp || echo af_packet)\"/")
$(afp_link b pb to-a)
$(forward_sinks a b)
EOT
start_daemon "$TMP/fdlinkd.toml" "$ID-fw"
kill -STOP "$DAEMON_PID"
sent=$(ip netns exec "$ID-h1" "$PY" "$HERE/send_frames.py" h1 $N)
kill -CONT "$DAEMON_PID"
[ "$sent" -eq $N ] || fail "sent only $sent of $N frames"
sleep 0.5
stop_daemon

a_rx=$(logq final a rx_packets); b_tx=$(logq final b tx_packets)
full=$(logq final a drop_rx_queue_full); drops=$(( $(logq final a drops) + $(logq final b drops) ))
[ "$full" -gt 0 ] || fail "no rx_queue_full drops counted although $N frames met a frozen daemon"
[ "$a_rx" -eq $N ] || fail "link a rx_packets=$a_rx, sent $N (forwarded $b_tx, dropped $drops)"
[ "$a_rx" -eq $(( b_tx + drops )) ] || fail "a rx $a_rx != b tx $b_tx + drops $drops"
pass "$MODE: $N frames in: $b_tx forwarded, $full dropped by the kernel (rx_queue_full), none unaccounted"
