#!/usr/bin/env bash
# drop_reasons.sh MODE: every drop reason of the README that can happen on this kind of link in
# this mode, caused by real traffic, counted under its name on the link the README names (and
# not on the other one), as `fdlinkctl stats --json` shows it.
#   readv | recvmmsg | packet_mmap: af_packet links read in that mode, sending with sendmmsg
#       (the egress with vnet_hdr and qdisc_bypass):
#       oversize (receiving), too_big, link_down, tx_nobufs (sending), rx_queue_full (receiving);
#   ring: packet_mmap with TX rings: the same but tx_nobufs (a TX ring passes no super-frames);
#   tap: a TAP link: oversize (receiving), too_big and link_down (sending);
#   unix: seqpacket and dgram links: runt and oversize (receiving; a zero-length message too),
#       too_big, no_peer, tx_queue_full, tx_error (sending).
# (The vnet_* reasons need a virtio header the kernel did not write: no fd here gives one; the
# unit tests and fuzz_frame/fuzz_offload check them. no_buffer: unit test.)
source "$(dirname "$0")/lib.sh"
MODE=${1:?mode}
FDLINKCTL=${FDLINKCTL:-$(dirname "$FDLINKD")/../ctl/fdlinkctl}

# count LINK REASON|rx_bytes|tx_packets: the link's counter now.
count() {
  "$FDLINKCTL" -s "$CTL" stats --json > "$TMP/stats.json"
  "$PY" - "$TMP/stats.json" "$1" "$2" <<'PYEOF'
import json, sys
s = json.load(open(sys.argv[1]))
l = {l["name"]: l for l in s["links"]}[sys.argv[2]]
print(l[sys.argv[3]] if sys.argv[3] in l else l["drops"][sys.argv[3]])
PYEOF
}
# expect LINK REASON N OTHER WHAT CMD...: runs CMD; within 2 s LINK's REASON grows by N (at least
# N when N is "+N"), and link OTHER's does not grow at all.
expect() {
  local link=$1 reason=$2 n=$3 other=$4 what=$5
  shift 5
  local before other_before now
  before=$(count "$link" "$reason"); other_before=$(count "$other" "$reason")
  "$@"
  for _ in $(seq 40); do
    now=$(count "$link" "$reason")
    if [ "${n:0:1}" = + ]; then [ $((now - before)) -ge "${n:1}" ] && break
    else [ $((now - before)) -ge "$n" ] && break; fi
    sleep 0.05
  done
  if [ "${n:0:1}" = + ]; then
    [ $((now - before)) -ge "${n:1}" ] || fail "$what: $link $reason grew by $((now - before)), want at least ${n:1}"
  else
    [ $((now - before)) -eq "$n" ] || fail "$what: $link $reason grew by $((now - before)), want $n"
  fi
  [ "$(count "$other" "$reason")" -eq "$other_before" ] || fail "$what: counted on $other too"
  pass "$what: $reason +$((now - before)) on $link, none on $other"
}

# frozen_burst IFACE: 20000 frames of 1400 bytes (28 MB) out of h1's IFACE while the daemon is
# stopped (SIGSTOP): more than the link's socket buffer (8 MiB) or receive ring (64 blocks of
# 128 KiB, 8 MiB) can hold, however fast they come. (With 100-byte frames a full TPACKET_V3 block
# holds about 700, so 20000 of them fit in the ring when the sender fills each block before its
# 1 ms timeout retires it, and overflowed it only when a slower sender left blocks part-empty.)
frozen_burst() {
  kill -STOP "$DAEMON_PID"
  ip netns exec "$ID-h1" "$PY" "$HERE/send_frames.py" "$1" 20000 1400 >/dev/null
  kill -CONT "$DAEMON_PID"
}

afpacket() {
  local rx=() tx=()
  case $MODE in
    readv) tx=('vnet_hdr = true' 'qdisc_bypass = true') ;;
    recvmmsg) rx=('dispatch = "recvmmsg"'); tx=('vnet_hdr = true' 'qdisc_bypass = true') ;;
    packet_mmap) rx=('dispatch = "packet_mmap"'); tx=('vnet_hdr = true' 'qdisc_bypass = true') ;;
    ring) rx=('dispatch = "packet_mmap"'); tx=('tx_ring = true' 'qdisc_bypass = true') ;;
  esac
  mkns h1; mkns h2; mkns fw
  veth "$ID-h1" h1 "$ID-fw" pa     # a: link mtu 1500 on a 9000-byte interface
  veth "$ID-h1" h1c "$ID-fw" pc    # c: mtu 12000, teed to b and e
  veth "$ID-h2" h2 "$ID-fw" pb     # b: mtu 1500
  veth "$ID-h2" h2e "$ID-fw" pe    # e: link mtu 9000 on a 1500-byte interface
  ip -n "$ID-h1" link set h1 mtu 9000; ip -n "$ID-fw" link set pa mtu 9000
  ip -n "$ID-h1" link set h1c mtu 12000; ip -n "$ID-fw" link set pc mtu 12000
  ip -n "$ID-h1" addr add 10.77.41.1/24 dev h1
  ip -n "$ID-h2" addr add 10.77.41.2/24 dev h2
  cat > "$TMP/fdlinkd.toml" <<EOT
[daemon]
stats_interval = "0s"
$(afp_link a pa to-b "${rx[@]}")
$(afp_link b pb to-a "${rx[@]}" "${tx[@]}")
$(afp_link c pc both "${rx[@]}" 'mtu = 12000')
$(afp_link e pe none "${rx[@]}" "${tx[@]}" 'mtu = 9000')
$(forward_sinks a b)
[[sink]]
name = "both"
type = "tee"
to = ["b", "e"]
[[sink]]
name = "none"
type = "drop"
EOT
  start_daemon "$TMP/fdlinkd.toml" "$ID-fw"
  grep -q '"event":"link_mtu".*"link":"e"' "$LOG" || fail "no link_mtu warning for e (mtu 9000 on a 1500-byte interface)"

  local bytes0
  bytes0=$(count a rx_bytes)
  expect a oversize 10 b "3000-byte frames into a (mtu 1500)" \
    ip netns exec "$ID-h1" "$PY" "$HERE/send_frames.py" h1 10 3000
  [ $(( $(count a rx_bytes) - bytes0 )) -eq 30000 ] || fail "a rx_bytes grew by $(( $(count a rx_bytes) - bytes0 )), want 30000 (10 whole frames)"
  pass "a rx_bytes counts the oversize frames whole (+30000)"

  expect b too_big 10 a "3000-byte frames from c (mtu 12000) to b (mtu 1500)" \
    ip netns exec "$ID-h1" "$PY" "$HERE/send_frames.py" h1c 10 3000
  # e's mtu (9000) lets them through; its interface's (1500) does not: the kernel's EMSGSIZE,
  # or the TX ring's own check (the kernel does not check ring frames that have a virtio header).
  [ "$(count e too_big)" -eq 10 ] || fail "e too_big $(count e too_big), want 10"
  [ "$(count e tx_packets)" -eq 0 ] || fail "e counted $(count e tx_packets) frames over its interface's MTU as sent"
  pass "the same frames to e (mtu 9000 on a 1500-byte interface): too_big +10, none sent"

  if [ "$MODE" != ring ]; then
    # A TCP sender's TSO super-frames, passed whole (vnet_hdr) through the qdisc bypass to an
    # interface without TSO: the kernel refuses them with ENOBUFS.
    ip netns exec "$ID-fw" ethtool -K pb tso off gso off >/dev/null
    ip netns exec "$ID-h2" timeout 5 socat -u TCP-LISTEN:5001,reuseaddr - >/dev/null 2>&1 &
    BACKGROUND+=($!)
    sleep 0.3
    expect b tx_nobufs +1 a "TCP super-frames to b without TSO, qdisc bypassed" \
      bash -c "head -c 2M /dev/zero | ip netns exec $ID-h1 timeout 2 socat -u - TCP:10.77.41.2:5001 2>/dev/null || true"
  fi

  ip -n "$ID-fw" link set pb down
  for _ in $(seq 40); do grep -q '"event":"link_down".*"link":"b"' "$LOG" && break; sleep 0.05; done
  # (at least: the TCP sender above may still retransmit)
  expect b link_down +10 a "frames to b while its interface is down" \
    ip netns exec "$ID-h1" "$PY" "$HERE/send_frames.py" h1 10 100
  ip -n "$ID-fw" link set pb up

  expect a rx_queue_full +1 b "20000 frames into a while fdlinkd is stopped" frozen_burst h1
  stop_daemon
}

tap() {
  mkns h1; mkns fw
  veth "$ID-h1" h1 "$ID-fw" pa
  ip -n "$ID-h1" link set h1 mtu 9000; ip -n "$ID-fw" link set pa mtu 9000
  ip -n "$ID-h1" addr add 10.77.42.1/24 dev h1
  cat > "$TMP/fdlinkd.toml" <<EOT
[daemon]
stats_interval = "0s"
[[link]]
name = "t"
type = "tap"
interface = "tt"
sink = "to-a"
$(afp_link a pa to-t 'mtu = 9000')
$(forward_sinks t a)
EOT
  start_daemon "$TMP/fdlinkd.toml" "$ID-fw"
  ip -n "$ID-fw" addr add 10.77.42.2/24 dev tt
  ping_ok "$ID-fw" 10.77.42.1 3
  # Someone raises the TAP's MTU behind fdlinkd's back: the kernel sends it bigger frames.
  ip -n "$ID-fw" link set tt mtu 9000
  expect t oversize 3 a "3000-byte pings out of the TAP (link mtu 1500)" \
    bash -c "ip netns exec $ID-fw ping -q -c 3 -i 0.1 -W 0.2 -M dont -s 3000 10.77.42.1 >/dev/null || true"
  expect t too_big 10 a "3000-byte frames from a (mtu 9000) to the TAP (mtu 1500)" \
    ip netns exec "$ID-h1" "$PY" "$HERE/send_frames.py" h1 10 3000
  ip -n "$ID-fw" link set tt down
  for _ in $(seq 40); do grep -q '"event":"link_down".*"link":"t"' "$LOG" && break; sleep 0.05; done
  expect t link_down 10 a "frames to the TAP while it is down" \
    ip netns exec "$ID-h1" "$PY" "$HERE/send_frames.py" h1 10 100
  stop_daemon
}

unix() {
  cat > "$TMP/fdlinkd.toml" <<EOT
[daemon]
stats_interval = "0s"
[[link]]
name = "u"
type = "unix"
path = "$TMP/u.sock"
tx_backlog = 0  # drops when full, as a wire (tx_backlog_full: backpressure.sh)
sink = "to-d"
[[link]]
name = "d"
type = "unix"
socket = "dgram"
path = "$TMP/d.sock"
peer = "$TMP/dpeer.sock"
dispatch = "recvmmsg"
mtu = 9000
sink = "to-u"
$(forward_sinks u d)
EOT
  start_daemon "$TMP/fdlinkd.toml"
  "$PY" "$HERE/unix_drops.py" "$FDLINKCTL" "$CTL" "$TMP" || fail "unix drop reasons"
  stop_daemon
}

case $MODE in
  readv | recvmmsg | packet_mmap | ring) afpacket ;;
  tap) tap ;;
  unix) unix ;;
  *) fail "unknown mode $MODE" ;;
esac
