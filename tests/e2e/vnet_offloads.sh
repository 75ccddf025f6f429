#!/usr/bin/env bash
# vnet_offloads.sh MODE: a namespace behind a TAP with virtio-net headers and TSO (t0, made by
# fdlinkd with vnet_hdr = true) talks TCP over IPv4 and IPv6, both directions, to a namespace
# behind a veth whose offloads stay at their defaults (checksum offload and TSO on), through
# fdlinkd's af_packet link on that veth.
#   MODE=plain: the af_packet link has no vnet_hdr, so fdlinkd must finish checksums and cut
#               super-frames: a capture in ns2 must show no TCP frame over 1514 bytes and no
#               bad checksum.
#   MODE=vnet:  the af_packet link has vnet_hdr = true: super-frames pass through whole, so
#               the capture in ns2 must show frames over the MTU.
#   MODE=default: no vnet_hdr key: an af_packet link without qdisc_bypass or tx_ring passes
#               offloads to the kernel by default, so the same as vnet.
source "$(dirname "$0")/lib.sh"
MODE=${1:?mode}

mkns h1; mkns h2; mkns fw
for ns in h1 h2; do  # this test wants IPv6
  ip netns exec "$ID-$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0
done
veth "$ID-h2" h2 "$ID-fw" pb
ip -n "$ID-h2" addr add 10.77.9.2/24 dev h2
ip -n "$ID-h2" addr add fd77:9::2/64 dev h2 nodad

cat > "$TMP/fdlinkd.toml" <<EOT
[daemon]
stats_interval = "0s"
[[link]]
name = "a"
type = "tap"
interface = "t0"
netns = "$ID-h1"
vnet_hdr = true
sink = "to-b"
$(case $MODE in plain) afp_link b pb to-a "vnet_hdr = false" ;; vnet) afp_link b pb to-a "vnet_hdr = true" ;; *) afp_link b pb to-a ;; esac)
$(forward_sinks a b)
EOT
start_daemon "$TMP/fdlinkd.toml" "$ID-fw"
ip -n "$ID-h1" addr add 10.77.9.1/24 dev t0
ip -n "$ID-h1" addr add fd77:9::1/64 dev t0 nodad
ip netns exec "$ID-h1" ethtool -k t0 | grep -q "tcp-segmentation-offload: on" ||
  fail "t0 does not offer TSO: fdlinkd's TUNSETOFFLOAD did not take"
ping_ok "$ID-h1" 10.77.9.2 5

ip netns exec "$ID-h2" tcpdump -i h2 -Q in -s 0 -c 4000 -w "$TMP/h2.pcap" tcp 2>"$TMP/h2.cap.err" &
CAP=$!
BACKGROUND+=("$CAP")
capturing "$TMP/h2.cap.err"
iperf() {  # iperf ADDR [-R]
  ip netns exec "$ID-h2" iperf3 -s -1 -B "$1" >/dev/null 2>&1 &
  local srv=$!
  wait_listen "$ID-h2" 5201
  local out
  out=$(ip netns exec "$ID-h1" timeout 20 iperf3 -c "$1" -n 100M $2 -J) || fail "iperf3 to $1 $2 failed"
  wait $srv || true
  echo "$out" | "$PY" -c 'import json,sys; j=json.load(sys.stdin); print("%.2f" % (j["end"]["sum_received"]["bits_per_second"]/1e9))'
}
for addr in 10.77.9.2 fd77:9::2; do
  up=$(iperf "$addr" "")
  # What fdlinkd writes into the TAP while data flows towards it, as ns1's stack receives it.
  ip netns exec "$ID-h1" tcpdump -i t0 -Q in -s 0 -c 600 -w "$TMP/t0-$addr.pcap" tcp 2>"$TMP/t0.cap.err" &
  CAP1=$!
  BACKGROUND+=("$CAP1")
  capturing "$TMP/t0.cap.err"
  down=$(iperf "$addr" -R)
  kill -INT "$CAP1" 2>/dev/null || true
  wait "$CAP1" 2>/dev/null || true
  pass "$MODE: iperf3 $addr: $up Gbit/s TAP -> veth, $down Gbit/s veth -> TAP"
done
sleep 0.5
kill -INT "$CAP" 2>/dev/null || true
wait "$CAP" 2>/dev/null || true
stop_daemon

drops=$(( $(logq final a drops) + $(logq final b drops) ))
[ "$drops" -eq 0 ] || fail "$drops frames dropped"
# The TAP side takes checksum offload: frames there may carry a partial checksum, but never a
# wrong one.
for addr in 10.77.9.2 fd77:9::2; do
  "$PY" "$HERE/check_pcap.py" "$TMP/t0-$addr.pcap" 0 partial-ok ||
    fail "a frame fdlinkd wrote into the TAP ($addr) has a bad checksum"
done
if [ "$MODE" = plain ]; then
  "$PY" "$HERE/check_pcap.py" "$TMP/h2.pcap" 1514 || fail "frames fdlinkd sent into ns2 are over the MTU or have bad checksums"
  [ "$(logq final b gso_segments)" -gt 0 ] || fail "no super-frame was segmented"
  pass "plain: every TCP frame fdlinkd sent into ns2 fits the MTU with correct checksums; $(logq final b gso_segments) segments made"
else
  largest=$("$PY" "$HERE/check_pcap.py" "$TMP/h2.pcap" -1)
  [ "$largest" -gt 1514 ] || fail "no frame over the MTU reached ns2: super-frames were not passed through"
  [ "$(logq final b gso_segments)" -eq 0 ] || fail "fdlinkd segmented frames although the egress takes GSO"
  pass "$MODE: super-frames passed through whole (largest frame in ns2: $largest B), none segmented"
fi
