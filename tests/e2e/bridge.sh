#!/usr/bin/env bash
# bridge.sh MODE: four hosts on a four-port `bridge` sink: three af_packet ports (veths into
# namespaces h1..h3) and a TAP that fdlinkd creates, which the daemon's own namespace uses as
# host 4.
#   MODE = plain: every pair pings with 0% loss; TCP between two pairs at once, sha256-checked;
#          a broadcast reaches every other host once and never its sender; a MAC that moves to
#          another port is reached there within a second; SIGUSR1 logs the MAC table.
#   MODE = workers2: plain with `workers = 2`: ports a and c on one worker thread, b and d on
#          the other, so frames cross workers and learned MACs are shared between them. Run
#          with a ThreadSanitizer build (tests/sanitizers/run.sh tsan) it must report nothing.
#   MODE = vlan:  ports 1 and 2 access VLAN 10, port 3 access VLAN 20, port 4 a trunk (a veth
#          to h4 carrying tags 10 and 20, native 1): no frame crosses VLANs, and on the trunk
#          side tcpdump -e shows the right tag. (This kernel has no 8021q module: tagged frames
#          are made and read with scapy.)
source "$(dirname "$0")/lib.sh"
MODE=${1:?mode}
WORKERS=1
[ "$MODE" = workers2 ] && { WORKERS=2; MODE=plain; }

mkns h1; mkns h2; mkns h3; mkns fw
veth "$ID-h1" h1 "$ID-fw" pa
veth "$ID-h2" h2 "$ID-fw" pb
veth "$ID-h3" h3 "$ID-fw" pc
for i in 1 2 3; do ip -n "$ID-h$i" addr add "10.77.20.$i/24" dev "h$i"; done

if [ "$MODE" = plain ]; then
  port4='[[link]]
name = "d"
type = "tap"
interface = "t4"
sink = "sw"'
  vlans=""
else
  mkns h4
  veth "$ID-h4" h4 "$ID-fw" pd
  port4=$(afp_link d pd sw)
  vlans='[sink.vlans]
a = { access = 10 }
b = { access = 10 }
c = { access = 20 }
d = { trunk = [10, 20], native = 1 }'
fi
cat > "$TMP/fdlinkd.toml" <<EOT
[daemon]
stats_interval = "0s"
workers = $WORKERS
$(afp_link a pa sw)
$(afp_link b pb sw 'dispatch = "packet_mmap"')
$(afp_link c pc sw 'dispatch = "recvmmsg"')
$port4
[[sink]]
name = "sw"
type = "bridge"
ports = ["a", "b", "c", "d"]
aging = "300s"
$vlans
EOT
start_daemon "$TMP/fdlinkd.toml" "$ID-fw"

# capture NS IFACE NAME: tcpdump of frames arriving on IFACE into $TMP/NAME.pcap, once it
# says it is listening.
CAPS=()
capture() {
  ip netns exec "$1" tcpdump -i "$2" -Q in -s 0 --immediate-mode -U -w "$TMP/$3.pcap" 2>"$TMP/$3.cap.err" &
  CAPS+=($!)
  BACKGROUND+=($!)
  capturing "$TMP/$3.cap.err"
}
stop_captures() {
  sleep 0.5
  for c in "${CAPS[@]}"; do kill -INT "$c" 2>/dev/null || true; wait "$c" 2>/dev/null || true; done
  CAPS=()
}
seen() { "$PY" "$HERE/bridge_frames.py" count "$TMP/$1.pcap" "$2"; }  # seen NAME TAG

if [ "$MODE" = plain ]; then
  ip -n "$ID-fw" addr add 10.77.20.4/24 dev t4
  hosts=("$ID-h1" "$ID-h2" "$ID-h3" "$ID-fw")
  for i in 0 1 2 3; do
    for j in 0 1 2 3; do
      [ $i -lt $j ] && ping_ok "${hosts[$i]}" "10.77.20.$((j + 1))" 20
    done
  done

  # TCP h1 -> h2 and h3 -> host 4 at the same time.
  head -c 20M /dev/urandom > "$TMP/blob"
  want=$(sha256sum < "$TMP/blob" | cut -d' ' -f1)
  ip netns exec "$ID-h2" timeout 60 socat -u TCP-LISTEN:5001,reuseaddr - | sha256sum > "$TMP/got1" &
  r1=$!
  ip netns exec "$ID-fw" timeout 60 socat -u TCP-LISTEN:5002,reuseaddr - | sha256sum > "$TMP/got2" &
  r2=$!
  wait_listen "$ID-h2" 5001
  wait_listen "$ID-fw" 5002
  ip netns exec "$ID-h1" timeout 60 socat -u "FILE:$TMP/blob" TCP:10.77.20.2:5001 &
  s1=$!
  ip netns exec "$ID-h3" timeout 60 socat -u "FILE:$TMP/blob" TCP:10.77.20.4:5002 &
  s2=$!
  wait $s1 && wait $s2 && wait $r1 && wait $r2 || fail "a TCP transfer failed"
  [ "$(cut -d' ' -f1 < "$TMP/got1")" = "$want" ] || fail "TCP h1 -> h2: sha256 differs"
  [ "$(cut -d' ' -f1 < "$TMP/got2")" = "$want" ] || fail "TCP h3 -> host 4: sha256 differs"
  pass "TCP 20 MiB h1 -> h2 and h3 -> host 4 at the same time: sha256 matches both"

  # A broadcast from h1 reaches h2, h3 and host 4 once each, and not h1.
  capture "$ID-h1" h1 h1; capture "$ID-h2" h2 h2; capture "$ID-h3" h3 h3; capture "$ID-fw" t4 h4
  sleep 1
  ip netns exec "$ID-h1" "$PY" "$HERE/bridge_frames.py" send h1 02:00:00:00:20:01 bcast-one
  stop_captures
  for h in h2 h3 h4; do
    [ "$(seen $h bcast-one)" = "1 -" ] || fail "broadcast seen '$(seen $h bcast-one)' on $h, expected once"
  done
  [ "$(seen h1 bcast-one)" = "0 " ] || fail "the broadcast came back to its sender"
  pass "a broadcast from h1 reached h2, h3 and host 4 once each, and not h1"

  # h2's MAC and address move to h3's port: reached there within a second once it speaks.
  mac2=$(ip -n "$ID-h2" -o link show h2 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
  ip -n "$ID-h2" link set h2 down
  ip -n "$ID-h3" link set h3 down
  ip -n "$ID-h3" link set h3 address "$mac2"
  ip -n "$ID-h3" addr add 10.77.20.22/24 dev h3
  ip -n "$ID-h3" link set h3 up
  ip netns exec "$ID-h3" ping -c 1 -W 1 10.77.20.1 >/dev/null || fail "h3 (with h2's MAC) cannot reach h1"
  t0=$(date +%s%N)
  ip netns exec "$ID-h1" ping -c 1 -W 1 10.77.20.22 >/dev/null || fail "the moved MAC was not reached within 1 s"
  t1=$(date +%s%N)
  pass "the MAC moved from port b to port c was reached there in $(( (t1 - t0) / 1000000 )) ms"

  kill -USR1 "$DAEMON_PID"
  for _ in $(seq 40); do logq has fdb_end && break; sleep 0.05; done
  grep -q "\"event\":\"fdb\".*\"mac\":\"$mac2\".*\"port\":\"c\"" "$LOG" || fail "SIGUSR1: the fdb events do not show $mac2 on port c"
  pass "SIGUSR1: fdb events list $(logq count fdb) entries, $mac2 on port c"
  stop_daemon
  grep -q '"event":"stats".*"sink":"sw".*"moved":[1-9]' "$LOG" || fail "the final stats of the sink of sw count no move"
  pass "final stats of the sink: $(grep '"event":"stats".*"sink":' "$LOG" | tail -1 | grep -o '"learned":[0-9]*,"moved":[0-9]*')"
  exit 0
fi

# VLANs. Hosts 1 and 2 (VLAN 10) ping each other; host 3 (VLAN 20) is unreachable from them.
ping_ok "$ID-h1" 10.77.20.2 20
ip netns exec "$ID-h1" ping -c 3 -i 0.2 -W 1 10.77.20.3 >/dev/null 2>&1 && fail "h1 (VLAN 10) reached h3 (VLAN 20)"
pass "h1 (VLAN 10) cannot reach h3 (VLAN 20)"

# One broadcast from each place, each with its own tag in the payload, captured everywhere at
# once: send NS IFACE TAG[@VLAN]...
send() {
  local ns=$1 ifc=$2
  shift 2
  ip netns exec "$ns" "$PY" "$HERE/bridge_frames.py" send "$ifc" 02:00:00:00:20:09 "$@"
}
TAGS=(from-access10 from-access20 trunk-tag10 trunk-tag20 trunk-untagged trunk-tag30)
declare -A SEEN
expect() {  # expect TAG h1 h2 h3 h4: what each host saw ("1 -" untagged, "1 10", "0 ")
  local tag=$1; shift
  local h
  for h in h1 h2 h3 h4; do
    [ "${SEEN[$h:$tag]}" = "$1" ] || fail "$tag: $h saw '${SEEN[$h:$tag]}', expected '$1'"
    shift
  done
  pass "$tag: h1..h4 saw as expected"
}
capture "$ID-h1" h1 h1; capture "$ID-h2" h2 h2; capture "$ID-h3" h3 h3; capture "$ID-h4" h4 h4
sleep 1
send "$ID-h1" h1 from-access10
send "$ID-h3" h3 from-access20
send "$ID-h4" h4 trunk-tag10@10 trunk-tag20@20 trunk-untagged trunk-tag30@30
stop_captures
for h in h1 h2 h3 h4; do
  mapfile -t lines < <("$PY" "$HERE/bridge_frames.py" count "$TMP/$h.pcap" "${TAGS[@]}")
  for i in "${!TAGS[@]}"; do SEEN[$h:${TAGS[$i]}]=${lines[$i]}; done
done
expect from-access10 "0 " "1 -" "0 " "1 10"
expect from-access20 "0 " "0 " "0 " "1 20"
expect trunk-tag10 "1 -" "1 -" "0 " "0 "
expect trunk-tag20 "0 " "0 " "1 -" "0 "
expect trunk-untagged "0 " "0 " "0 " "0 "
expect trunk-tag30 "0 " "0 " "0 " "0 "

# tcpdump -e on the trunk side shows the tag of VLAN 10 on h1's ARP.
capture "$ID-h4" h4 arp
sleep 1
ip -n "$ID-h1" neigh flush dev h1
ip netns exec "$ID-h1" ping -c 1 -W 1 10.77.20.2 >/dev/null || true
stop_captures
tcpdump -r "$TMP/arp.pcap" -e -nn 2>/dev/null | grep "vlan 10, p 0, ethertype ARP.*Request who-has 10.77.20.2" >/dev/null || { tcpdump -r "$TMP/arp.pcap" -e -nn; fail "no ARP tagged 10 on the trunk"; }
pass "tcpdump -e on the trunk: $(tcpdump -r "$TMP/arp.pcap" -e -nn 2>/dev/null | grep -m1 -o 'vlan 10, p [0-9], ethertype ARP')"
stop_daemon
grep -q '"event":"stats".*"sink":"sw".*"vlan_filtered":[1-9]' "$LOG" || fail "no vlan_filtered counted"
pass "final stats of the sink: $(grep '"event":"stats".*"sink":' "$LOG" | tail -1 | grep -o '"vlan_filtered":[0-9]*')"
