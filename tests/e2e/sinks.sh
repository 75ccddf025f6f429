#!/usr/bin/env bash
# sinks.sh MODE: the filter, tee and pcap sinks with real traffic.
#   filter: h1 -> [tee: filter "icmp or arp" -> h2, and pcap] ; h2 -> h1. Pings pass, TCP is
#           dropped and counted; the capture, read by tshark, holds exactly the frames h1 sent
#           (count and bytes, as link a counted them). Then the reverse expression: TCP
#           passes, pings do not. A bad expression exits 2 with line:col and libpcap's message.
#   pcap:   rotation leaves at most rotate_count files of at most rotate_size; a full
#           filesystem (a 256 KiB tmpfs) is counted as write_errors and forwarding goes on.
source "$(dirname "$0")/lib.sh"
MODE=${1:?mode}

mkns h1; mkns h2; mkns fw
veth "$ID-h1" h1 "$ID-fw" pa
veth "$ID-h2" h2 "$ID-fw" pb
ip -n "$ID-h1" addr add 10.77.21.1/24 dev h1
ip -n "$ID-h2" addr add 10.77.21.2/24 dev h2

config() {  # config EXPR PCAP_PATH [PCAP_LINES...]
  local expr=$1 path=$2
  shift 2
  cat <<EOT
[daemon]
stats_interval = "0s"
$(afp_link a pa in)
$(afp_link b pb to-a)
[[sink]]
name = "in"
type = "tee"
to = ["f", "cap"]
[[sink]]
name = "f"
type = "filter"
expr = "$expr"
match = "b"
[[sink]]
name = "cap"
type = "pcap"
path = "$path"
$(printf '%s\n' "$@")
[[sink]]
name = "to-a"
type = "forward"
to = "a"
EOT
}
sink_stat() {  # sink_stat SINK COUNTER: from the final stats of the sink event
  grep '"event":"stats"' "$LOG" | grep "\"sink\":\"$1\"" | tail -1 | grep -o "\"$2\":[0-9]*" | cut -d: -f2
}
tcp_fails() {
  ip netns exec "$ID-h2" timeout 5 socat -u TCP-LISTEN:5003,reuseaddr - >/dev/null 2>&1 &
  local rx=$!
  wait_listen "$ID-h2" 5003  # (else a refused connect would pass for a filtered one)
  if ip netns exec "$ID-h1" timeout 3 socat -u - TCP:10.77.21.2:5003,connect-timeout=2 </dev/null 2>/dev/null; then
    kill $rx 2>/dev/null || true
    return 1
  fi
  kill $rx 2>/dev/null || true
  return 0
}

if [ "$MODE" = filter ]; then
  config "icmp or arp" "$TMP/cap.pcap" > "$TMP/a.toml"
  start_daemon "$TMP/a.toml" "$ID-fw"
  ping_ok "$ID-h1" 10.77.21.2 20
  tcp_fails || fail "TCP got through a filter that passes only icmp and arp"
  pass "filter \"icmp or arp\": TCP does not get through"
  stop_daemon
  unmatched=$(sink_stat f unmatched)
  [ "${unmatched:-0}" -gt 0 ] && [ "$(sink_stat f dropped)" = "$unmatched" ] || fail "unmatched=$unmatched dropped=$(sink_stat f dropped)"
  pass "filter counted $unmatched unmatched frames, all dropped"
  rx=$(logq final a rx_packets); rx_bytes=$(logq final a rx_bytes)
  n=$(tshark -r "$TMP/cap.pcap" -T fields -e frame.len 2>/dev/null | wc -l)
  bytes=$(tshark -r "$TMP/cap.pcap" -T fields -e frame.len 2>/dev/null | awk '{s += $1} END {print s + 0}')
  [ "$n" = "$rx" ] && [ "$bytes" = "$rx_bytes" ] || fail "capture: $n frames, $bytes bytes; link a received $rx frames, $rx_bytes bytes"
  tshark -r "$TMP/cap.pcap" -Y tcp.flags.syn==1 2>/dev/null | grep . >/dev/null || fail "the capture holds no TCP SYN"
  pass "tshark reads $n frames, $bytes bytes: exactly what link a received (TCP SYNs included)"
  [ "$(stat -c %a "$TMP/cap.pcap")" = 640 ] || fail "capture file mode $(stat -c %a "$TMP/cap.pcap")"

  config "not icmp" "$TMP/cap2.pcap" > "$TMP/b.toml"
  start_daemon "$TMP/b.toml" "$ID-fw"
  ip netns exec "$ID-h1" ping -c 3 -i 0.2 -W 1 10.77.21.2 >/dev/null && fail "ping got through \"not icmp\""
  tcp_ok "$ID-h1" "$ID-h2" 10.77.21.2 1
  pass "filter \"not icmp\": pings dropped, TCP passes"
  stop_daemon

  config "tcp port" "$TMP/cap3.pcap" > "$TMP/bad.toml"
  rc=0
  "$FDLINKD" --check-config -c "$TMP/bad.toml" 2>"$TMP/err" || rc=$?
  [ $rc -eq 2 ] || fail "bad expression: exit $rc"
  grep -qE "bad.toml:[0-9]+:8: expr \"tcp port\" in sink \"f\" is not a filter libpcap can compile: .*syntax error" "$TMP/err" || fail "bad expression: $(cat "$TMP/err")"
  pass "bad expression: exit 2, $(head -1 "$TMP/err" | sed "s|$TMP/||")"
  exit 0
fi

# pcap: rotation.
config "icmp or arp" "$TMP/rot/cap.pcap" 'rotate_size = "64KiB"' 'rotate_count = 3' > "$TMP/r.toml"
mkdir "$TMP/rot"
start_daemon "$TMP/r.toml" "$ID-fw"
ip netns exec "$ID-h1" ping -q -c 400 -i 0.002 -s 1000 10.77.21.2 >/dev/null
stop_daemon
files=$(ls "$TMP/rot" | wc -l)
[ "$files" -le 3 ] && [ "$files" -ge 2 ] || fail "rotation left $files files: $(ls "$TMP/rot")"
for f in "$TMP"/rot/*; do
  [ "$(stat -c %s "$f")" -le 65536 ] || fail "$f is $(stat -c %s "$f") bytes, over rotate_size"
  tshark -r "$f" >/dev/null 2>&1 || fail "tshark cannot read $f"
done
pass "rotation: $files files ($(ls "$TMP/rot" | tr '\n' ' ')), each at most 64 KiB, all readable; $(sink_stat cap files) opened"

# A full filesystem: counted, forwarding unaffected.
mkdir "$TMP/small"
mount -t tmpfs -o size=256k tmpfs "$TMP/small"
trap 'umount "$TMP/small" 2>/dev/null || true; cleanup' EXIT
config "icmp or arp" "$TMP/small/cap.pcap" > "$TMP/f.toml"
start_daemon "$TMP/f.toml" "$ID-fw"
out=$(ip netns exec "$ID-h1" ping -q -c 300 -i 0.005 -s 1400 -W 2 10.77.21.2) || true
grep -q " 0% packet loss" <<< "$out" || { echo "$out"; fail "pings lost while the capture disk was full"; }
stop_daemon
errors=$(sink_stat cap write_errors)
[ "${errors:-0}" -gt 0 ] || fail "no write_errors counted on a full filesystem"
grep -q '"event":"pcap_write_failed"' "$LOG" || fail "the write failure was not logged"
[ "$(logq count pcap_write_failed)" -le 2 ] || fail "pcap_write_failed logged $(logq count pcap_write_failed) times"
pass "full filesystem: write_errors=$errors, written=$(sink_stat cap written), logged once; 300 pings of 1400 bytes, 0% loss"
