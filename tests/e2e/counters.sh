#!/usr/bin/env bash
# Exactly N frames go in on one side; the final counters logged at SIGTERM must say N received
# on link a, N sent on link b, and the far end's interface must have received N.
source "$(dirname "$0")/lib.sh"
N=5000

mkns h1; mkns h2; mkns fw
veth "$ID-h1" h1 "$ID-fw" pa
veth "$ID-h2" h2 "$ID-fw" pb

cat > "$TMP/fdlinkd.toml" <<EOT
[daemon]
stats_interval = "0s"
$(afp_link a pa to-b)
$(afp_link b pb to-a)
$(forward_sinks a b)
EOT
start_daemon "$TMP/fdlinkd.toml" "$ID-fw"

rx_before=$(ip netns exec "$ID-h2" cat /sys/class/net/h2/statistics/rx_packets)
# Paced in bursts so no socket queue overflows: this test is about counting, not speed.
sent=0
for _ in $(seq 10); do
  sent=$(( sent + $(ip netns exec "$ID-h1" "$PY" "$HERE/send_frames.py" h1 $(( N / 10 ))) ))
  sleep 0.05
done
[ "$sent" -eq $N ] || fail "sent only $sent of $N frames"
for _ in $(seq 40); do
  rx_after=$(ip netns exec "$ID-h2" cat /sys/class/net/h2/statistics/rx_packets)
  [ $(( rx_after - rx_before )) -ge $N ] && break
  sleep 0.05
done
stop_daemon

got=$(( rx_after - rx_before ))
a_rx=$(logq final a rx_packets); b_tx=$(logq final b tx_packets)
b_rx=$(logq final b rx_packets); drops=$(( $(logq final a drops) + $(logq final b drops) ))
[ "$a_rx" -eq $N ] || fail "final counters: link a rx_packets=$a_rx, sent $N"
[ "$b_tx" -eq $N ] || fail "final counters: link b tx_packets=$b_tx, sent $N"
[ "$got" -eq $N ] || fail "h2 received $got frames, sent $N"
[ "$b_rx" -eq 0 ] || fail "link b received $b_rx frames though nothing was sent its way"
[ "$drops" -eq 0 ] || fail "$drops frames dropped"
[ "$(logq final a rx_bytes)" -eq $(( N * 100 )) ] || fail "rx_bytes of a is not $N x 100"
pass "sent $N, link a rx=$a_rx, link b tx=$b_tx, h2 got $got, no drops"
