# Shared helpers for fdlinkd's end-to-end tests. Each test sources this file, builds its own
# network namespaces (names unique to the test's PID), starts the real daemon, sends real
# traffic, and checks what a user would check. Everything it made is removed on exit.
set -euo pipefail
# Under pipefail, `producer | grep -q` fails when grep stops at its first match while the
# producer is still writing (SIGPIPE): keep it for short outputs written at once, and read a long
# one (a capture, a journal) to its end with `grep PATTERN >/dev/null`.

FDLINKD=${FDLINKD:?set FDLINKD to the fdlinkd binary}
PY=/usr/bin/python3   # Debian's python3 (it has scapy), whatever else is on PATH
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ID="f$$"              # prefix of every namespace and interface name this test makes
TMP=$(mktemp -d "/tmp/fdlinkd-e2e.XXXXXX")
LOG="$TMP/daemon.log"
# The daemon's control socket (and fdlinkctl's default) go here, as systemd's RuntimeDirectory=
# would set it: tests running at once do not share one.
export RUNTIME_DIRECTORY="$TMP"
CTL="$TMP/control.sock"
NAMESPACES=()
BACKGROUND=()
REMOVE=()             # more paths to remove on exit (outside $TMP)
DAEMON_PID=""

cleanup() {
  local rc=$?
  if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
    kill -KILL "$DAEMON_PID" 2>/dev/null || true
  fi
  for p in "${BACKGROUND[@]}"; do kill "$p" 2>/dev/null || true; done
  for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  for p in "${REMOVE[@]}"; do rm -rf "$p"; done
  if [ $rc -ne 0 ] && [ -s "$LOG" ]; then
    echo "--- daemon log ($LOG) ---" >&2
    tail -n 40 "$LOG" >&2
  fi
  [ -n "${KEEP_TMP:-}" ] && echo "kept $TMP" >&2 || rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

if [ "$(id -u)" -ne 0 ]; then echo "end-to-end tests need root (network namespaces)" >&2; exit 77; fi

# mkns SHORT: creates namespace "$ID-SHORT" with lo up and IPv6 off (no RS/DAD/MLD chatter,
# so the frames counted are the ones the test sent). Prints the full name.
mkns() {
  local ns="$ID-$1"
  ip netns add "$ns"
  NAMESPACES+=("$ns")
  ip -n "$ns" link set lo up
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

# veth NS_A IF_A NS_B IF_B: a veth pair between two namespaces, both ends up.
veth() {
  ip link add "$2" netns "$1" type veth peer name "$4" netns "$3"
  ip -n "$1" link set "$2" up
  ip -n "$3" link set "$4" up
}

# afp_link NAME IFACE SINK [LINE...]: an af_packet [[link]] table for a config's heredoc;
# each LINE is one more TOML line, e.g. 'dispatch = "packet_mmap"'.
afp_link() {
  printf '[[link]]\nname = "%s"\ntype = "af_packet"\ninterface = "%s"\nsink = "%s"\n' "$1" "$2" "$3"
  shift 3
  local line
  for line in "$@"; do printf '%s\n' "$line"; done
}

# forward_sinks A B: the [[sink]] tables "to-B" and "to-A" that forward each way between
# links A and B, for a config's heredoc: $(forward_sinks a b)
forward_sinks() {
  printf '[[sink]]\nname = "to-%s"\ntype = "forward"\nto = "%s"\n' "$2" "$2" "$1" "$1"
}

# start_daemon CONFIG [NS]: runs fdlinkd (inside NS if given) with JSON logs into $LOG and
# waits until it logs `ready`.
start_daemon() {
  local cfg=$1 ns=${2:-}
  if [ -n "$ns" ]; then
    ip netns exec "$ns" "$FDLINKD" -c "$cfg" --log-format json 2>"$LOG" &
  else
    "$FDLINKD" -c "$cfg" --log-format json 2>"$LOG" &
  fi
  DAEMON_PID=$!
  for _ in $(seq 100); do
    grep -q '"event":"ready"' "$LOG" 2>/dev/null && return 0
    kill -0 "$DAEMON_PID" 2>/dev/null || { wait "$DAEMON_PID" || true; fail "fdlinkd exited before it was ready"; }
    sleep 0.05
  done
  fail "fdlinkd not ready after 5 s"
}

# stop_daemon: SIGTERM; fdlinkd must exit 0 within 2 s.
stop_daemon() {
  local start end rc=0
  start=$(date +%s%N)
  kill -TERM "$DAEMON_PID"
  for _ in $(seq 40); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.05; done
  kill -0 "$DAEMON_PID" 2>/dev/null && fail "fdlinkd still running 2 s after SIGTERM"
  wait "$DAEMON_PID" || rc=$?
  end=$(date +%s%N)
  DAEMON_PID=""
  [ $rc -eq 0 ] || fail "fdlinkd exited with status $rc after SIGTERM"
  pass "SIGTERM: exit 0 after $(( (end - start) / 1000000 )) ms"
}

# logq ARGS...: queries the daemon's JSON log (every line must be valid JSON).
logq() { "$PY" "$HERE/logq.py" "$LOG" "$@"; }

# ping_ok NS ADDR COUNT: COUNT pings, 10 ms apart, must all be answered.
ping_ok() {
  local out
  out=$(ip netns exec "$1" ping -c "$3" -i 0.01 -W 2 "$2") && grep -q " 0% packet loss" <<< "$out" || {
    echo "$out" >&2
    echo "no reply to icmp_seq: $(seq "$3" | grep -vxFf <(grep -o 'icmp_seq=[0-9]*' <<< "$out" | cut -d= -f2) | tr '\n' ' ')" >&2
    where_lost "$1" "$1"
    fail "ping $2 from $1 lost packets"
  }
  pass "$3 pings $1 -> $2, 0% loss ($(echo "$out" | tail -1))"
}

# udp_flows_ok SRC_NS DST_NS DST_ADDR FLOWS COUNT PPS: FLOWS sequence-numbered UDP flows of COUNT
# datagrams each, interleaved at PPS, must all arrive, each flow in order, none twice.
udp_flows_ok() {
  local src=$1 dst=$2 addr=$3 flows=$4 count=$5 pps=$6
  ip netns exec "$dst" "$PY" "$HERE/udp_flows.py" recv 7000 "$flows" "$count" 3 > "$TMP/flows.json" 2>"$TMP/flows.err" &
  local rx=$!
  said "$TMP/flows.err" ready "the UDP receiver"
  ip netns exec "$src" "$PY" "$HERE/udp_flows.py" send "$addr" 7000 "$flows" "$count" "$pps" >/dev/null
  wait $rx
  "$PY" - "$TMP/flows.json" "$flows flows $src -> $dst" <<'PYEOF' || { where_lost "$src" "$dst"; exit 1; }
import json, sys
r = json.load(open(sys.argv[1]))
if r["lost"] or r["reordered"] or r["duplicates"]:
    sys.exit(f"FAIL: UDP {sys.argv[2]}: {r}")
print(f"ok: {r['received']} datagrams in {sys.argv[2]}: none lost, none reordered")
PYEOF
}

# where_lost SRC_NS DST_NS: after lost traffic, what each layer counted: fdlinkd's counters,
# every interface's drops in the test's namespaces, the kernel's backlog drops and the
# receiver's UDP errors.
where_lost() {
  echo "--- where frames were lost ---" >&2
  [ -n "$DAEMON_PID" ] && "${FDLINKCTL:-false}" -s "$CTL" stats >&2 2>&1 || true
  for ns in "${NAMESPACES[@]}"; do
    echo "$ns:" >&2
    ip -n "$ns" -s link show >&2 2>&1 || true
  done
  echo "softnet_stat (processed dropped squeezed):" >&2
  awk '{print "  " $1, $2, $3}' /proc/net/softnet_stat >&2
  ip netns exec "$2" nstat -asz 2>/dev/null | grep -E "Udp(RcvbufErrors|InErrors|InCsumErrors|NoPorts)" >&2 || true
}

# wait_listen NS PORT: returns once something in NS listens on TCP port PORT; fails after 5 s.
# (A fixed sleep after starting a listener races with a slow start on a busy machine: the
# connect is refused.)
wait_listen() {
  for _ in $(seq 100); do
    ip netns exec "$1" ss -Hltn "sport = :$2" | grep -q . && return 0
    sleep 0.05
  done
  fail "nothing listens on TCP port $2 in $1 after 5 s"
}

# said FILE REGEX WHAT: returns once a process writing FILE has said REGEX (a receiver "ready"
# once bound); fails after 5 s naming WHAT. (A fixed sleep after starting a receiver or a
# capture races with a slow start on a busy machine: the first frames go uncounted.)
said() {
  for _ in $(seq 100); do
    grep -qE "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  fail "$3 did not start within 5 s: $(cat "$1" 2>/dev/null)"
}
# capturing FILE: the tcpdump or tshark whose stderr goes to FILE captures.
capturing() { said "$1" "listening on|Capturing on" "the capture"; }

# median_rtt: the median (the lower one of an even count) of the times ping printed on stdin.
median_rtt() {
  grep -o "time=[0-9.]*" | cut -d= -f2 | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# tcp_ok SRC_NS DST_NS DST_ADDR MB: sends MB MiB of random bytes over TCP and compares the
# SHA-256 of what arrived with what was sent.
tcp_ok() {
  local src=$1 dst=$2 addr=$3 mb=$4 port=5001
  head -c "${mb}M" /dev/urandom > "$TMP/blob"
  local want got t0 t1
  want=$(sha256sum < "$TMP/blob" | cut -d' ' -f1)
  ip netns exec "$dst" timeout 60 socat -u "TCP-LISTEN:$port,reuseaddr" - 2>"$TMP/socat-rx.err" | sha256sum > "$TMP/got" &
  local rx=$!
  wait_listen "$dst" "$port"
  t0=$(date +%s%N)
  ip netns exec "$src" timeout 60 socat -u "FILE:$TMP/blob" "TCP:$addr:$port" || fail "TCP send to $addr failed"
  wait $rx || fail "TCP receiver failed: $(cat "$TMP/socat-rx.err")"
  t1=$(date +%s%N)
  got=$(cut -d' ' -f1 < "$TMP/got")
  [ "$got" = "$want" ] || fail "TCP $src -> $dst: sha256 of received bytes $got, sent $want"
  pass "TCP ${mb} MiB $src -> $dst: sha256 matches ($(( (t1 - t0) / 1000000 )) ms)"
}
