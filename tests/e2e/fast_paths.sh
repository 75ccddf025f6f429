#!/usr/bin/env bash
# fast_paths.sh MODE: one receive/transmit combination, with fds = 2 (fanout "hash" on
# AF_PACKET, a multi-queue TAP) and two workers. 16 sequence-numbered UDP flows cross fdlinkd
# at a moderate rate in each direction: every datagram must arrive and every flow in order.
# Then a ping and 20 MiB of TCP must go through as well.
#
#   readv_sendmmsg     af_packet readv       <-> af_packet readv,      sendmmsg out
#   recvmmsg_txring    af_packet recvmmsg    <-> af_packet recvmmsg,   TX rings out
#   mmap_sendmmsg      af_packet packet_mmap <-> af_packet packet_mmap, sendmmsg out
#   mmap_txring        af_packet packet_mmap <-> af_packet packet_mmap, TX rings + qdisc bypass
#   tap_mq             multi-queue TAP (readv, write per frame) <-> af_packet packet_mmap
source "$(dirname "$0")/lib.sh"
MODE=${1:?mode}
FLOWS=16 COUNT=2000 PPS=20000

mkns h1; mkns h2; mkns fw
veth "$ID-h2" h2 "$ID-fw" pb
ip -n "$ID-h2" addr add 10.77.6.2/24 dev h2

afp() {  # afp NAME IFACE DISPATCH TX_RING QDISC_BYPASS SINK
  afp_link "$1" "$2" "$6" 'fds = 2' 'fanout = "hash"' "dispatch = \"$3\"" "tx_ring = $4" \
    "qdisc_bypass = $5"
}
case "$MODE" in
  readv_sendmmsg)  A=$(afp a pa readv false false to-b);        B=$(afp b pb readv false false to-a) ;;
  recvmmsg_txring) A=$(afp a pa recvmmsg true false to-b);      B=$(afp b pb recvmmsg true false to-a) ;;
  mmap_sendmmsg)   A=$(afp a pa packet_mmap false false to-b);  B=$(afp b pb packet_mmap false false to-a) ;;
  mmap_txring)     A=$(afp a pa packet_mmap true true to-b);    B=$(afp b pb packet_mmap true true to-a) ;;
  tap_mq)          A=$(printf '[[link]]\nname = "a"\ntype = "tap"\ninterface = "t0"\nfds = 2\nnetns = "%s"\nsink = "to-b"\n' "$ID-h1")
                   B=$(afp b pb packet_mmap false false to-a) ;;
  *) fail "unknown mode $MODE" ;;
esac
if [ "$MODE" != tap_mq ]; then
  veth "$ID-h1" h1 "$ID-fw" pa
  ip -n "$ID-h1" addr add 10.77.6.1/24 dev h1
fi

cat > "$TMP/fdlinkd.toml" <<EOT
[daemon]
workers = 2
stats_interval = "0s"
$A
$B
$(forward_sinks a b)
EOT
start_daemon "$TMP/fdlinkd.toml" "$ID-fw"
if [ "$MODE" = tap_mq ]; then
  ip -n "$ID-h1" addr add 10.77.6.1/24 dev t0
  q=$(ip netns exec "$ID-h1" sh -c 'ls -d /sys/class/net/t0/queues/tx-* | wc -l')
  [ "$q" -eq 2 ] || fail "TAP t0 has $q TX queues, expected 2 (multi-queue)"
  pass "TAP t0 is multi-queue ($q queues)"
fi
ping_ok "$ID-h1" 10.77.6.2 20

udp_flows_ok "$ID-h1" "$ID-h2" 10.77.6.2 $FLOWS $COUNT $PPS
udp_flows_ok "$ID-h2" "$ID-h1" 10.77.6.1 $FLOWS $COUNT $PPS
tcp_ok "$ID-h1" "$ID-h2" 10.77.6.2 20
stop_daemon

# The load really was spread: every fd of both links received frames, and with sendmmsg the
# flow hash sent frames out of every fd (with TX rings, frames leave through the rings).
for l in a b; do
  for q in 0 1; do
    n=$(logq queue $l $q rx_packets)
    [ "$n" -gt 0 ] || fail "fd $q of link $l received nothing: no fanout/multi-queue spread"
  done
done
case "$MODE" in
  readv_sendmmsg|mmap_sendmmsg)
    for q in 0 1; do [ "$(logq queue b $q tx_packets)" -gt 0 ] || fail "fd $q of link b sent nothing"; done ;;
esac
pass "both fds of both links carried frames (a: $(logq queue a 0 rx_packets)/$(logq queue a 1 rx_packets), b: $(logq queue b 0 rx_packets)/$(logq queue b 1 rx_packets))"
drops=$(( $(logq final a drops) + $(logq final b drops) ))
[ "$drops" -eq 0 ] || fail "$drops frames dropped"
pass "$MODE: final counters a rx=$(logq final a rx_packets) b rx=$(logq final b rx_packets), no drops"
