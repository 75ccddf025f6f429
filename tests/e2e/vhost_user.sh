#!/usr/bin/env bash
# vhost_user.sh frontend|testpmd|packed|activated: a vhost_user link with a frontend that is not QEMU
# (vm.sh has QEMU guests):
#   frontend: vhost_frontend.py, a frontend written from the protocol: an ICMP echo from its
#             transmit queue to h1 and the reply into its receive queue; then 13 hostile
#             frontends, each reset with its counter (descriptors outside memory, loops,
#             lengths past the end, a truncated memfd, messages out of order or cut short);
#             then a good one again. The daemon must go on throughout: the fault of each is
#             logged (vhost_user_frontend_fault, vhost_user_frontend_reset) and h2 keeps
#             reaching h1 through another pair of links.
#   testpmd:  DPDK's dpdk-testpmd with virtio-user (--no-huge --no-pci) as the frontend, two
#             queue pairs (MQ; fdlinkd with two workers), in macswap mode: both pairs come up
#             (fdlinkctl status), 50 frames h1 sends to it come back to h1 (tcpdump counts
#             them), and testpmd's own counters agree.
#   packed:   the same over the packed ring (virtio-user's packed_vq=1): RING_PACKED negotiated.
#   activated: the same, with the socket made by systemd-socket-activate (as a .socket unit
#             would): fdlinkd starts when testpmd connects, takes the passed socket
#             (vhost_user_socket_from_systemd) and leaves the file in place when it stops.
# h1 (10.77.8.1) --veth-- [af_packet wire] fdlinkd [vhost_user vm] -- frontend (10.77.8.2)
# h2 (10.77.9.1) --veth-- [af_packet p2] fdlinkd [af_packet p3] --veth-- h3 (10.77.9.2)
source "$(dirname "$0")/lib.sh"
MODE=${1:?frontend, testpmd, packed or activated}
if [ "$MODE" != frontend ]; then
  command -v dpdk-testpmd >/dev/null ||
    { echo "vhost_user: needs dpdk-testpmd (dpdk-dev, librte-net-virtio23); skipped" >&2; exit 77; }
fi
FDLINKCTL=${FDLINKCTL:-$(dirname "$FDLINKD")/../ctl/fdlinkctl}
mkns h1; mkns h2; mkns h3; mkns fw
veth "$ID-h1" h1 "$ID-fw" pa
veth "$ID-h2" h2 "$ID-fw" p2
veth "$ID-h3" h3 "$ID-fw" p3
ip -n "$ID-h1" addr add 10.77.8.1/24 dev h1
ip -n "$ID-h2" addr add 10.77.9.1/24 dev h2
ip -n "$ID-h3" addr add 10.77.9.2/24 dev h3
# The frontend answers no ARP: h1 knows its address.
ip -n "$ID-h1" neigh add 10.77.8.2 lladdr 02:fd:00:00:08:02 dev h1
SOCK="$TMP/vm.sock"
cat > "$TMP/fdlinkd.toml" <<EOT
[daemon]
stats_interval = "0s"
workers = 2
$(afp_link wire pa to-vm)
[[link]]
name = "vm"
type = "vhost_user"
path = "$SOCK"
queues = $([ "$MODE" != frontend ] && echo 2 || echo 1)
sink = "to-wire"
$(forward_sinks wire vm)
$(afp_link p2 p2 to-p3)
$(afp_link p3 p3 to-p2)
$(forward_sinks p2 p3)
EOT
if [ "$MODE" = activated ]; then
  command -v systemd-socket-activate >/dev/null ||
    { echo "vhost_user: needs systemd-socket-activate (systemd); skipped" >&2; exit 77; }
  # It listens on SOCK and execs fdlinkd (same pid, LISTEN_FDS=1, and only the environment
  # named with -E) once a frontend connects.
  ip netns exec "$ID-fw" systemd-socket-activate -l "$SOCK" -E RUNTIME_DIRECTORY -- \
    sh -c "exec \"\$0\" \"\$@\" 2>'$LOG'" "$FDLINKD" -c "$TMP/fdlinkd.toml" --log-format json \
    2>"$TMP/activate.log" &
  DAEMON_PID=$!
  for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
  [ -S "$SOCK" ] || fail "systemd-socket-activate made no socket: $(cat "$TMP/activate.log")"
  [ -s "$LOG" ] && fail "fdlinkd started before a frontend connected"
else
  start_daemon "$TMP/fdlinkd.toml" "$ID-fw"
fi

case $MODE in
frontend)
  # h2 pings h3 all along (1 s: longer than the frontends take), through the other links.
  ip netns exec "$ID-h2" ping -q -i 0.01 -c 100 -W 1 10.77.9.2 > "$TMP/ping-aside" 2>&1 &
  aside=$!
  BACKGROUND+=("$aside")
  "$PY" "$HERE/vhost_frontend.py" "$SOCK" "$FDLINKCTL" "$CTL" || fail "vhost frontend"
  for f in bad_address chain_loop bad_descriptor bad_head bad_avail_index wrong_direction \
           bad_indirect memory_fault; do
    grep '"event":"vhost_user_frontend_fault"' "$LOG" | grep -q "\"fault\":\"$f\"" ||
      fail "no vhost_user_frontend_fault logged for $f"
  done
  [ "$(logq count vhost_user_frontend_reset)" -ge 4 ] ||
    fail "bad messages: $(logq count vhost_user_frontend_reset) vhost_user_frontend_reset logged, expected 4"
  pass "each fault logged by name (vhost_user_frontend_fault), each bad message as vhost_user_frontend_reset"
  wait "$aside" || true
  grep -q " 0% packet loss" "$TMP/ping-aside" ||
    fail "h2 -> h3 lost pings while the hostile frontends came and went: $(grep transmitted "$TMP/ping-aside")"
  pass "h2 -> h3 through other links all along: $(grep transmitted "$TMP/ping-aside")"
  ;;
testpmd | packed | activated)
  ip netns exec "$ID-h1" tcpdump -i h1 -n -c 50 -Q in -w "$TMP/back.pcap" \
    "icmp and ether src 02:fd:00:00:08:02" 2>/dev/null &
  dump=$!
  BACKGROUND+=("$dump")
  # macswap: each frame goes back with its MAC addresses swapped (so to h1, from the frontend's
  # address when h1 sent to it).
  timeout 60 dpdk-testpmd --no-huge --no-pci -m 512 --file-prefix "$ID" --log-level=user1,info \
    --vdev "net_virtio_user0,path=$SOCK,queues=2,mac=02:fd:00:00:08:02$([ "$MODE" = packed ] && echo ,packed_vq=1)" -- \
    --rxq=2 --txq=2 --total-num-mbufs=8192 --stats-period 1 --forward-mode=macswap -a > "$TMP/testpmd.log" 2>&1 &
  pmd=$!
  BACKGROUND+=("$pmd")
  if [ "$MODE" = activated ]; then
    for _ in $(seq 100); do grep -q '"event":"ready"' "$LOG" 2>/dev/null && break; sleep 0.05; done
    grep -q '"event":"ready"' "$LOG" 2>/dev/null || { cat "$TMP/activate.log" "$LOG" >&2; tail -5 "$TMP/testpmd.log" >&2; fail "fdlinkd not ready 5 s after testpmd connected"; }
    logq has vhost_user_socket_from_systemd || fail "fdlinkd did not take the socket systemd-socket-activate passed"
    pass "started on testpmd's connection; $(grep -o '"msg":"listening on the socket systemd made"' "$LOG")"
  fi
  for _ in $(seq 100); do logq has vhost_user_features && break; sleep 0.1; done
  logq has vhost_user_features || { tail -20 "$TMP/testpmd.log" >&2; fail "testpmd did not set up the device"; }
  features=$(grep '"event":"vhost_user_features"' "$LOG" | sed 's/.*"features":"\([^"]*\)".*/\1/')
  pass "testpmd (virtio-user) connected: $features"
  # virtio-user takes IN_ORDER when offered: the frames below then cross its in-order paths.
  [[ " $features " == *" IN_ORDER "* ]] || fail "IN_ORDER not negotiated with testpmd"
  if [ "$MODE" = packed ]; then
    [[ " $features " == *" RING_PACKED "* ]] || fail "RING_PACKED not negotiated with packed_vq=1"
  else
    [[ " $features " != *" RING_PACKED "* ]] || fail "RING_PACKED negotiated without packed_vq=1"
  fi
  queues=""
  for _ in $(seq 50); do
    queues=$("$FDLINKCTL" -s "$CTL" status --json | "$PY" -c '
import json, sys
l = [l for l in json.load(sys.stdin)["links"] if l["name"] == "vm"][0]
print(" ".join("%s/%s" % (q["rx"], q["tx"]) for q in l["queues"]))')
    [ "$queues" = "enabled/enabled enabled/enabled" ] && break
    sleep 0.1
  done
  [ "$queues" = "enabled/enabled enabled/enabled" ] || fail "queue pairs: $queues, not both enabled"
  pass "two queue pairs (MQ) enabled: $queues"
  ip netns exec "$ID-h1" ping -q -i 0.02 -c 50 -W 1 10.77.8.2 >/dev/null 2>&1 || true
  for _ in $(seq 50); do kill -0 "$dump" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$dump" 2>/dev/null && fail "h1 got fewer than 50 of its frames back through testpmd"
  back=$(tcpdump -r "$TMP/back.pcap" -n 2>/dev/null | grep -c "ICMP echo request")
  [ "$back" -eq 50 ] || fail "h1 got $back echo requests back through testpmd, not 50"
  pass "50 frames h1 -> fdlinkd -> testpmd (macswap) -> fdlinkd -> h1, checked by tcpdump on h1"
  kill -INT "$pmd"
  wait "$pmd" || true
  # Its last statistics (printed as it stops): what it received and sent back.
  rx=$(grep "RX-packets:" "$TMP/testpmd.log" | tail -1 | awk '{print $2}')
  tx=$(grep "TX-packets:" "$TMP/testpmd.log" | tail -1 | awk '{print $2}')
  [ -n "$rx" ] || { tail -20 "$TMP/testpmd.log" >&2; fail "no statistics from testpmd"; }
  [ "$rx" -ge 50 ] && [ "$tx" -ge 50 ] || fail "testpmd counted RX $rx TX $tx, not at least 50 each"
  pass "testpmd's own counters: RX-packets $rx, TX-packets $tx (h1's 50 and whatever else h1 sent it)"
  ;;
*) fail "unknown mode $MODE" ;;
esac
stop_daemon
if [ "$MODE" = activated ]; then
  [ -S "$SOCK" ] || fail "fdlinkd removed the socket systemd made"
  pass "the socket systemd made is still there after fdlinkd stopped"
fi
