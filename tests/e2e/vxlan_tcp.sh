#!/usr/bin/env bash
# vxlan_tcp.sh MODE: two hosts joined by a VXLAN overlay whose underlay runs through fdlinkd
# (af_packet on both veths, default offloads everywhere). The sender's stack hands its veth
# TCP super-frames inside VXLAN with the inner TCP checksum left to finish; the kernel's
# virtio header describes them as plain TCP GSO. TCP over the overlay must carry 20 MiB each
# way with the sha256 of what arrives equal to what was sent.
#   MODE=v4: IPv4 underlay, plain egress link (fdlinkd segments along the inner TCP header)
#   MODE=v6: IPv6 underlay (outer UDP checksum required), egress with vnet_hdr = true (such
#            frames cannot be passed on whole: fdlinkd segments them there too)
source "$(dirname "$0")/lib.sh"
MODE=${1:?mode}

mkns h1; mkns h2; mkns fw
veth "$ID-h1" h1 "$ID-fw" pa
veth "$ID-h2" h2 "$ID-fw" pb
for n in 1 2; do
  o=$((3 - n))
  if [ "$MODE" = v6 ]; then
    ip netns exec "$ID-h$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 "net.ipv6.conf.h$n.disable_ipv6=0"
    ip -n "$ID-h$n" addr add "fd77:12::$n/64" dev "h$n" nodad
    ip -n "$ID-h$n" link add vx0 type vxlan id 42 local "fd77:12::$n" remote "fd77:12::$o" dstport 4789 dev "h$n"
  else
    ip -n "$ID-h$n" addr add "10.77.12.$n/24" dev "h$n"
    ip -n "$ID-h$n" link add vx0 type vxlan id 42 local "10.77.12.$n" remote "10.77.12.$o" dstport 4789 dev "h$n"
  fi
  ip -n "$ID-h$n" addr add "192.168.77.$n/24" dev vx0
  ip -n "$ID-h$n" link set vx0 up
  ip netns exec "$ID-h$n" ethtool -k "h$n" | grep -q "tx-udp_tnl-segmentation: on" ||
    fail "h$n does not pass tunnel GSO on: the test would not exercise it"
done
cat > "$TMP/fdlinkd.toml" <<EOT
[daemon]
stats_interval = "0s"
$(afp_link a pa to-b)
$(afp_link b pb to-a "vnet_hdr = $([ "$MODE" = v6 ] && echo true || echo false)")
$(forward_sinks a b)
EOT
start_daemon "$TMP/fdlinkd.toml" "$ID-fw"
ping_ok "$ID-h1" 192.168.77.2 5
tcp_ok "$ID-h1" "$ID-h2" 192.168.77.2 20
tcp_ok "$ID-h2" "$ID-h1" 192.168.77.1 20
stop_daemon
segs=$(( $(logq final a gso_segments) + $(logq final b gso_segments) ))
drops=$(( $(logq final a drops) + $(logq final b drops) ))
[ "$drops" = 0 ] || fail "$MODE: fdlinkd dropped $drops frames"
[ "$segs" -gt 0 ] || fail "$MODE: no tunnel super-frame reached fdlinkd (0 segments made)"
pass "$MODE: TCP over VXLAN through fdlinkd, $segs segments made, 0 drops"
