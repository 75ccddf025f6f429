#!/usr/bin/env bash
# What the kernel forbids an af_xdp link, said clearly: each case starts fdlinkd, which must
# exit 1 with a message that names the interface and the way out, and leave no XDP program of
# its own on any interface. Then: mode = "skb" works, and a SIGKILLed fdlinkd leaves nothing
# attached either (the program hangs on a BPF link that dies with the process).
source "$(dirname "$0")/lib.sh"

mkns h1; mkns fw
veth "$ID-h1" h1 "$ID-fw" xa
ip -n "$ID-h1" addr add 10.79.1.1/24 dev h1
ip -n "$ID-fw" addr add 10.79.1.2/24 dev xa

config() {  # config [LINE...]: one af_xdp link on xa that reflects frames back
  printf '[[link]]\nname = "a"\ntype = "af_xdp"\ninterface = "xa"\nsink = "back"\n'
  local line
  for line in "$@"; do printf '%s\n' "$line"; done
  printf '[[sink]]\nname = "back"\ntype = "forward"\nto = "a"\n'
}

programs() {  # how many interfaces of fw have an XDP program
  ip -n "$ID-fw" -d link show | grep -c "prog/xdp" || true
}

refused() {  # refused NAME PATTERN [PREFIX...] -- [LINE...]: fdlinkd exits 1 saying PATTERN
  local name=$1 pattern=$2; shift 2
  local prefix=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do prefix+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  config "$@" > "$TMP/$name.toml"
  local rc=0
  timeout 20 ip netns exec "$ID-fw" "${prefix[@]}" "$FDLINKD" -c "$TMP/$name.toml" 2>"$TMP/$name.err" >/dev/null || rc=$?
  [ $rc -eq 1 ] || { cat "$TMP/$name.err" >&2; fail "$name: exit status $rc, expected 1"; }
  grep -q -- "$pattern" "$TMP/$name.err" || { cat "$TMP/$name.err" >&2; fail "$name: the error does not say \"$pattern\""; }
  grep -q "xa" "$TMP/$name.err" || fail "$name: the error does not name the interface"
  pass "$name: exit 1: $(grep -o "link_open_failed.*" "$TMP/$name.err" | head -c 300)"
}

# 1. The veth peer's MTU is larger than XDP allows without multi-buffer.
ip -n "$ID-h1" link set h1 mtu 9000
refused peer_mtu "lower it"
[ "$(programs)" -eq 0 ] || fail "peer_mtu: an XDP program was left attached"
ip -n "$ID-h1" link set h1 mtu 1500

# 2. A queue that does not exist (a veth takes AF_XDP on queue 0 only).
refused queue "xa has no queue 1" -- "queues = 2"
[ "$(programs)" -eq 0 ] || fail "queue: the XDP program was left attached after the failed start"

# 3. Zero copy required where the driver cannot.
refused zero_copy 'zero_copy = "auto"' -- 'zero_copy = "on"'
[ "$(programs)" -eq 0 ] || fail "zero_copy: the XDP program was left attached"

# 4. BPF not permitted: no CAP_BPF, no CAP_SYS_ADMIN.
refused no_bpf "CAP_BPF" setpriv --bounding-set -bpf,-sys_admin --inh-caps -bpf,-sys_admin --
[ "$(programs)" -eq 0 ] || fail "no_bpf: an XDP program was left attached"

# 5. Someone else's XDP program on the interface: refused, and theirs stays.
OBJ=$(dirname "$FDLINKD")/../lib/af_xdp.bpf.o
[ -f "$OBJ" ] || fail "no BPF object at $OBJ to play the other program"
ip -n "$ID-fw" link set dev xa xdpgeneric obj "$OBJ" sec xdp
other=$(ip -n "$ID-fw" -d link show dev xa | grep -o "prog/xdp id [0-9]*")
refused other_program "already has an XDP program"
[ "$(ip -n "$ID-fw" -d link show dev xa | grep -o "prog/xdp id [0-9]*")" = "$other" ] ||
  fail "other_program: the program that was there ($other) was touched"
ip -n "$ID-fw" link set dev xa xdpgeneric off
[ "$(programs)" -eq 0 ] || fail "other_program: an XDP program is still attached"
pass "other_program: theirs ($other) stayed as it was"

# 6. mode = "skb" (generic XDP) forwards; SIGKILL leaves nothing attached.
config 'mode = "skb"' > "$TMP/skb.toml"
ip -n "$ID-fw" addr del 10.79.1.2/24 dev xa
ip -n "$ID-h1" neigh add 10.79.1.9 lladdr 02:00:00:00:00:09 dev h1
start_daemon "$TMP/skb.toml" "$ID-fw"
ip -n "$ID-fw" -d link show dev xa | grep -q "xdpgeneric" || fail "skb: no generic XDP program on xa"
# The link reflects frames: h1's pings to a made-up neighbour come back to h1 as they left.
ip netns exec "$ID-h1" timeout 10 tcpdump -c 10 -nli h1 -Q in icmp > "$TMP/skb.cap" 2>"$TMP/skb.err" &
capture=$!
capturing "$TMP/skb.err"
ip netns exec "$ID-h1" ping -q -c 10 -i 0.05 -W 1 10.79.1.9 >/dev/null || true
wait $capture || fail "skb: fewer than 10 echo requests came back through fdlinkd"
pass "skb: 10 echo requests reflected through generic XDP"
kill -KILL "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true; DAEMON_PID=""
for _ in $(seq 50); do [ "$(programs)" -eq 0 ] && break; sleep 0.1; done
[ "$(programs)" -eq 0 ] || fail "SIGKILL: an XDP program stayed attached"
pass "SIGKILL: no XDP program left (the BPF link went with the process)"

# 7. What systemd/af_xdp.conf grants is enough: as an unprivileged user (as DynamicUser= runs
# it) with only CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF and CAP_IPC_LOCK, fdlinkd starts.
caps=$(sed -n 's/^AmbientCapabilities=//p' "$HERE/../../systemd/af_xdp.conf" | tr 'A-Z' 'a-z' |
       sed 's/cap_/+/g; s/ /,/g')
[ -n "$caps" ] || fail "no AmbientCapabilities in systemd/af_xdp.conf"
config > "$TMP/user.toml"
printf '[daemon]\ncontrol_socket = ""\n' >> "$TMP/user.toml"
chmod 755 "$TMP"; chmod 644 "$TMP/user.toml"
ip netns exec "$ID-fw" setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps="$caps" \
  --ambient-caps="$caps" "$FDLINKD" -c "$TMP/user.toml" 2>"$TMP/user.err" &
user_pid=$!
BACKGROUND+=("$user_pid")
for _ in $(seq 50); do grep -q "ready" "$TMP/user.err" && break; sleep 0.1; done
grep -q "ready" "$TMP/user.err" || { cat "$TMP/user.err" >&2; fail "as a user with $caps: fdlinkd did not start"; }
kill -TERM "$user_pid"; wait "$user_pid" || fail "as a user: exit status $? after SIGTERM"
[ "$(programs)" -eq 0 ] || fail "user: an XDP program was left attached"
pass "unprivileged user with $caps (systemd/af_xdp.conf): starts, stops, leaves nothing"
