#!/usr/bin/env bash
# Operating a running fdlinkd.
#
#   control  `fdlinkctl stats --json` equals what was sent (per link and per fd); the control
#            socket is mode 0600 and a non-root user's connect is refused (exit 3); exit codes
#            1 and 2; log-level at run time; a live Prometheus scrape passes `promtool check
#            metrics` and its counters equal `fdlinkctl stats`.
#   notify   a real NOTIFY_SOCKET listener sees READY=1, RELOADING=1 with MONOTONIC_USEC, READY=1,
#            WATCHDOG=1 every half interval that stops while a worker is stalled on purpose (a
#            test hook), STOPPING=1; a start that fails sends STATUS= and ERRNO=.
#   journal  with stderr the journal's stream (JOURNAL_STREAM), entries go to the journal's
#            native socket (a listener that checks the wire format stands in for journald, in a
#            mount namespace of the test's): PRIORITY=3 and LINK= for link_open_failed, EVENT=,
#            QUEUE=, SINK=; nothing on stderr.
#   instances  two daemons started at the same instant on one control socket, 10 times: exactly
#            one runs, the other exits 1 saying the socket is in use by the winner's pid; then
#            two named instances (--instance) side by side, each with its own runtime directory
#            /run/fdlinkd-NAME and control socket: `fdlinkctl -i NAME` reaches each, and their
#            metrics carry instance_name="NAME" (promtool check metrics).
#   nonroot  as the unit runs it (a user of its own with CAP_NET_ADMIN and CAP_NET_RAW ambient):
#            an af_packet and a TAP link forward, root's fdlinkctl reaches it; without the
#            capabilities the error names CAP_NET_RAW / CAP_NET_ADMIN and how to grant them.
source "$(dirname "$0")/lib.sh"
MODE=${1:-control}
FDLINKCTL=${FDLINKCTL:-$(dirname "$FDLINKD")/../ctl/fdlinkctl}
ctl() { "$FDLINKCTL" -s "$CTL" "$@"; }

mkns d; mkns a; mkns b
D=$ID-d A=$ID-a B=$ID-b
veth "$A" va "$D" da
veth "$B" vb "$D" db

if [ "$MODE" = control ]; then
  {
    printf '[daemon]\nmetrics = "127.0.0.1:19469"\n'
    afp_link a da to-b 'fds = 2' 'fanout = "rnd"'
    afp_link b db to-a
    forward_sinks a b
    # (a vxlan link, for its per-remote metrics in the scrape)
    printf '[[link]]\nname = "vx"\ntype = "vxlan"\nvni = 1\nlocal = "127.0.0.1"\nremotes = ["127.0.0.2"]\nsink = "to-nowhere"\n'
    printf '[[sink]]\nname = "to-nowhere"\ntype = "drop"\n'
  } > "$TMP/cfg.toml"
  start_daemon "$TMP/cfg.toml" "$D"

  chmod 755 "$TMP"  # only the socket's own mode keeps others out
  mode=$(stat -c %a "$CTL")
  [ "$mode" = 600 ] || fail "control socket mode $mode, want 600"
  rc=0; out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$FDLINKCTL" -s "$CTL" status 2>&1) || rc=$?
  [ $rc -eq 3 ] && grep -q "Permission denied" <<< "$out" || fail "a non-root connect: exit $rc: $out"
  pass "control socket mode 0600; a non-root user is refused: $out"

  # Exactly N frames of known size from A, nothing else (IPv6 is off; no ARP: raw frames).
  N=300 LEN=200
  ip netns exec "$A" "$PY" - <<PYEOF
from scapy.all import Ether, IP, UDP, Raw, sendp
import random
frames = [Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:0b") / IP(src="10.5.0.1", dst="10.5.0.2") /
          UDP(sport=random.randint(1024, 65000), dport=9) / Raw(b"x" * ($LEN - 42)) for _ in range($N)]
sendp(frames, iface="va", verbose=False)
PYEOF
  sleep 0.3
  ctl stats --json > "$TMP/stats.json"
  "$PY" - "$TMP/stats.json" $N $LEN <<'PYEOF' || fail "fdlinkctl stats does not match what was sent"
import json, sys
s = json.load(open(sys.argv[1])); n = int(sys.argv[2]); size = int(sys.argv[3])
links = {l["name"]: l for l in s["links"]}
a, b = links["a"], links["b"]
assert a["rx_packets"] == n and a["rx_bytes"] == n * size, ("a", a["rx_packets"], a["rx_bytes"])
assert b["tx_packets"] == n and b["tx_bytes"] == n * size, ("b", b["tx_packets"], b["tx_bytes"])
assert len(a["fds"]) == 2, a["fds"]
assert sum(f["rx_packets"] for f in a["fds"]) == n
assert all(f["rx_packets"] > 0 for f in a["fds"]), "fanout rnd left an fd idle"
assert a["drops_total"] == 0 and b["drops_total"] == 0
print("ok: fdlinkctl stats --json: a rx %d frames / %d bytes (fds %s), b tx %d / %d" % (
    a["rx_packets"], a["rx_bytes"], [f["rx_packets"] for f in a["fds"]], b["tx_packets"], b["tx_bytes"]))
PYEOF
  got=$(ip netns exec "$B" cat /sys/class/net/vb/statistics/rx_packets)
  [ "$got" -ge $N ] || fail "B's interface received $got frames, want $N"
  ctl stats | grep -q "^a  *all  *up  *$N " || { ctl stats; fail "the human stats table does not show a with $N frames"; }
  ctl status | grep -q "^a  *af_packet  *up" || fail "status does not list link a up"
  pass "fdlinkctl stats and status tables show the links"

  rc=0; ctl stats nosuch > /dev/null 2>&1 || rc=$?
  [ $rc -eq 1 ] || fail "stats of an unknown link: exit $rc, want 1"
  rc=0; ctl frobnicate > /dev/null 2>&1 || rc=$?
  [ $rc -eq 2 ] || fail "an unknown subcommand: exit $rc, want 2"
  rc=0; "$FDLINKCTL" -s "$TMP/none.sock" status > /dev/null 2>&1 || rc=$?
  [ $rc -eq 3 ] || fail "no daemon: exit $rc, want 3"
  pass "exit codes: 1 error reply, 2 usage, 3 unreachable"
  ctl log-level debug > /dev/null || fail "log-level debug"
  logq has log_level || fail "no log_level event"
  ctl list-commands | grep -q "^reload" || fail "list-commands lacks reload"
  pass "log-level and list-commands"

  ip netns exec "$D" curl -sf http://127.0.0.1:19469/metrics > "$TMP/metrics.txt" || fail "scrape failed"
  ctl stats --json > "$TMP/stats.json"
  promtool check metrics < "$TMP/metrics.txt" || fail "promtool check metrics failed"
  "$PY" - "$TMP/metrics.txt" "$TMP/stats.json" <<'PYEOF' || fail "metrics and fdlinkctl stats differ"
import json, re, sys
m = {}
for line in open(sys.argv[1]):
    if line.startswith("#"):
        continue
    name, value = line.rsplit(" ", 1)
    m[name] = float(value)
s = json.load(open(sys.argv[2]))
n = 0
for l in s["links"]:
    for f in l["fds"]:
        for key, metric in (("rx_packets", "receive_packets"), ("rx_bytes", "receive_bytes"),
                            ("tx_packets", "transmit_packets"), ("tx_bytes", "transmit_bytes")):
            k = 'fdlinkd_link_%s_total{link="%s",queue="%d"}' % (metric, l["name"], f["queue"])
            assert m[k] == f[key], (k, m[k], f[key])
            n += 1
    for reason, v in l["drops"].items():
        k = 'fdlinkd_link_drops_total{link="%s",reason="%s"}' % (l["name"], reason)
        assert m[k] == v, (k, m[k], v)
assert m['fdlinkd_up'] == 1 and m['fdlinkd_config_last_reload_successful'] == 1
print("ok: %d per-fd counters of the scrape equal fdlinkctl stats; promtool check metrics passes" % n)
PYEOF
  code=$(ip netns exec "$D" curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:19469/nope)
  [ "$code" = 404 ] || fail "GET /nope: $code"
  stop_daemon
  exit 0
fi

if [ "$MODE" = nonroot ]; then
  chmod 755 "$TMP"
  as_user() { ip netns exec "$D" setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
  { afp_link a da to-t; printf '[[link]]\nname = "t"\ntype = "tap"\ninterface = "tp0"\nsink = "to-a"\n'
    printf '[[sink]]\nname = "to-t"\ntype = "forward"\nto = "t"\n[[sink]]\nname = "to-a"\ntype = "forward"\nto = "a"\n'
  } > "$TMP/cfg.toml"
  chmod 644 "$TMP/cfg.toml"
  # Its runtime directory is its own, as systemd's RuntimeDirectory= makes it for the unit.
  mkdir -m 750 "$TMP/run"; chown 65534:65534 "$TMP/run"
  export RUNTIME_DIRECTORY="$TMP/run"; CTL="$TMP/run/control.sock"
  rc=0; out=$(as_user "$FDLINKD" -c "$TMP/cfg.toml" 2>&1) || rc=$?
  [ $rc -eq 1 ] && grep -q "needs CAP_NET_RAW" <<< "$out" || fail "without capabilities: exit $rc: $out"
  pass "without capabilities: $(echo "$out" | grep -o 'AF_PACKET socket: .*CAP_NET_RAW)' | head -1)"
  sed 's/^type = "af_packet"/type = "tap"/; s/^interface = "da"/interface = "tq0"/' "$TMP/cfg.toml" > "$TMP/tap.toml"
  rc=0; out=$(as_user "$FDLINKD" -c "$TMP/tap.toml" 2>&1) || rc=$?
  [ $rc -eq 1 ] && grep -q "needs CAP_NET_ADMIN" <<< "$out" || fail "TAP without CAP_NET_ADMIN: exit $rc: $out"
  pass "TAP without capabilities names CAP_NET_ADMIN"
  ip netns exec "$D" setpriv --reuid=65534 --regid=65534 --clear-groups \
    --inh-caps=+net_admin,+net_raw --ambient-caps=+net_admin,+net_raw \
    "$FDLINKD" -c "$TMP/cfg.toml" --log-format json 2>"$LOG" &
  DAEMON_PID=$!
  for _ in $(seq 100); do logq has ready 2>/dev/null && break; sleep 0.05; done
  logq has ready || fail "fdlinkd as a user with ambient capabilities did not start"
  [ "$(stat -c %u "$CTL")" = 65534 ] || fail "the control socket is not the daemon user's"
  # The TAP's kernel side gets A's peer address: A pings it through fdlinkd.
  ip -n "$D" addr add 10.6.0.2/24 dev tp0
  ip -n "$A" addr add 10.6.0.1/24 dev va
  ping_ok "$A" 10.6.0.2 5
  ctl status | grep -q "^t  *tap  *up" || fail "root's fdlinkctl cannot read the daemon's status"
  pass "as uid 65534 with CAP_NET_ADMIN and CAP_NET_RAW ambient: af_packet <-> TAP forwards; root's fdlinkctl works"
  stop_daemon
  exit 0
fi

if [ "$MODE" = instances ]; then
  { afp_link a da to-b; afp_link b db to-a; forward_sinks a b; } > "$TMP/cfg.toml"
  for round in $(seq 10); do
    : > "$TMP/one.log"; : > "$TMP/two.log"
    ip netns exec "$D" "$FDLINKD" -c "$TMP/cfg.toml" 2>"$TMP/one.log" &
    p1=$!
    ip netns exec "$D" "$FDLINKD" -c "$TMP/cfg.toml" 2>"$TMP/two.log" &
    p2=$!
    # One of them exits at once; the other keeps running and answers.
    for _ in $(seq 100); do
      { ! kill -0 $p1 2>/dev/null || ! kill -0 $p2 2>/dev/null; } && grep -qh " ready: " "$TMP/one.log" "$TMP/two.log" && break
      sleep 0.05
    done
    alive=() gone=()
    for p in $p1 $p2; do if kill -0 $p 2>/dev/null; then alive+=($p); else gone+=($p); fi; done
    [ ${#alive[@]} -eq 1 ] && [ ${#gone[@]} -eq 1 ] ||
      { kill ${alive[@]} 2>/dev/null; cat "$TMP/one.log" "$TMP/two.log" >&2; fail "round $round: ${#alive[@]} daemons running, ${#gone[@]} exited (want 1 and 1)"; }
    rc=0; wait ${gone[0]} || rc=$?
    loser_log=$TMP/two.log; [ ${gone[0]} = $p1 ] && loser_log=$TMP/one.log
    [ $rc -eq 1 ] || { kill ${alive[0]}; cat "$loser_log" >&2; fail "round $round: the second daemon exited $rc, want 1"; }
    grep -q "control_socket $CTL is in use: another fdlinkd is running (pid ${alive[0]})" "$loser_log" ||
      { kill ${alive[0]}; cat "$loser_log" >&2; fail "round $round: the loser's message does not name the socket and pid ${alive[0]}"; }
    ctl status >/dev/null || fail "round $round: the winner does not answer on $CTL"
    kill -TERM ${alive[0]}; rc=0; wait ${alive[0]} || rc=$?
    [ $rc -eq 0 ] || fail "round $round: the winner exited $rc after SIGTERM"
  done
  pass "10 rounds of two daemons started together: each time one ran, the other exited 1 ($(grep -o 'control_socket.*' "$loser_log" | head -1))"

  # Two named instances, each on its own runtime directory and socket (run by hand, as the
  # template unit runs them, but without systemd's RUNTIME_DIRECTORY).
  unset RUNTIME_DIRECTORY
  i1=$ID-t1 i2=$ID-t2
  REMOVE+=("/run/fdlinkd-$i1" "/run/fdlinkd-$i2")
  { afp_link a da to-b; afp_link b db to-a; forward_sinks a b; printf '[daemon]\nmetrics = "127.0.0.1:19471"\n'; } > "$TMP/t1.toml"
  { printf '[[link]]\nname = "x"\ntype = "tap"\ninterface = "%s"\nsink = "drop"\n' "$ID-tx"
    printf '[[sink]]\nname = "drop"\ntype = "drop"\n[daemon]\nmetrics = "127.0.0.1:19472"\n'; } > "$TMP/t2.toml"
  ip netns exec "$D" "$FDLINKD" --instance "$i1" -c "$TMP/t1.toml" --log-format json 2>"$TMP/i1.log" &
  P1=$!; BACKGROUND+=($P1)
  ip netns exec "$D" "$FDLINKD" --instance "$i2" -c "$TMP/t2.toml" --log-format json 2>"$TMP/i2.log" &
  P2=$!; BACKGROUND+=($P2)
  for _ in $(seq 100); do grep -q '"event":"ready"' "$TMP/i1.log" "$TMP/i2.log" 2>/dev/null &&
    [ "$(grep -l '"event":"ready"' "$TMP/i1.log" "$TMP/i2.log" | wc -l)" = 2 ] && break; sleep 0.05; done
  for n in 1 2; do
    i=$ID-t$n
    [ -S "/run/fdlinkd-$i/control.sock" ] || fail "instance $i has no /run/fdlinkd-$i/control.sock"
    out=$("$FDLINKCTL" -i "$i" status) || fail "fdlinkctl -i $i status failed"
    grep -q "(instance $i)" <<< "$out" || fail "fdlinkctl -i $i status does not name the instance: $out"
  done
  "$FDLINKCTL" -i "$i1" status | grep -q "^a  *af_packet" || fail "instance $i1 does not list its link a"
  "$FDLINKCTL" -i "$i2" status | grep -q "^x  *tap" || fail "instance $i2 does not list its link x"
  for n in 1 2; do
    ip netns exec "$D" curl -sf "http://127.0.0.1:1947$n/metrics" > "$TMP/m$n.txt" || fail "no metrics from instance $n"
    grep -q "^fdlinkd_build_info{instance_name=\"$ID-t$n\",version=" "$TMP/m$n.txt" || fail "instance $n's metrics do not carry instance_name"
    ! grep -v '^#' "$TMP/m$n.txt" | grep -qv "instance_name=\"$ID-t$n\"" || fail "a sample of instance $n without its instance_name"
    promtool check metrics < "$TMP/m$n.txt" || fail "promtool check metrics on instance $n"
  done
  pass "two instances side by side: /run/fdlinkd-NAME/control.sock each, fdlinkctl -i NAME reaches each, metrics labelled instance_name (promtool passes)"
  kill -TERM $P1 $P2
  wait $P1 || fail "instance 1 exited non-zero"
  wait $P2 || fail "instance 2 exited non-zero"
  exit 0
fi

if [ "$MODE" = journal ]; then
  J="$TMP/journal"; mkdir -p "$J"
  "$PY" "$HERE/journal_listener.py" "$J/socket" "$TMP/entries.json" &
  BACKGROUND+=($!)
  for _ in $(seq 50); do [ -S "$J/socket" ] && break; sleep 0.05; done
  # as_service CONFIG: runs fdlinkd as systemd would, stderr the journal stream.
  as_service() {
    : > "$TMP/stderr.log"
    JOURNAL_STREAM=$(stat -c '%d:%i' "$TMP/stderr.log") ip netns exec "$D" unshare -m --propagation private \
      sh -c 'mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal &&
             mount --bind "$1" /run/systemd/journal && exec "$2" -c "$3"' - "$J" "$FDLINKD" "$1" \
      2>>"$TMP/stderr.log" &
    DAEMON_PID=$!
  }
  { afp_link a da to-b 'fds = 2'; afp_link b db to-a; forward_sinks a b
    printf '[[sink]]\nname = "unused-bridge"\ntype = "bridge"\nports = ["a"]\n'; } > "$TMP/cfg.toml"
  as_service "$TMP/cfg.toml"
  for _ in $(seq 100); do grep -q '"EVENT": "ready"' "$TMP/entries.json" 2>/dev/null && break; sleep 0.05; done
  grep -q '"EVENT": "ready"' "$TMP/entries.json" || fail "no ready entry reached the journal socket"
  kill -USR1 "$DAEMON_PID"; sleep 0.3
  stop_daemon
  afp_link x no-such-if to-x > "$TMP/bad.toml"; printf '[[sink]]\nname = "to-x"\ntype = "drop"\n' >> "$TMP/bad.toml"
  as_service "$TMP/bad.toml"
  rc=0; wait "$DAEMON_PID" || rc=$?; DAEMON_PID=""
  [ $rc -eq 1 ] || fail "a link that cannot open: exit $rc"
  printf '[daemon]\nworkers = 0\n' > "$TMP/invalid.toml"
  as_service "$TMP/invalid.toml"
  rc=0; wait "$DAEMON_PID" || rc=$?; DAEMON_PID=""
  [ $rc -eq 2 ] || fail "an invalid config: exit $rc"
  [ ! -s "$TMP/stderr.log" ] || { cat "$TMP/stderr.log" >&2; fail "lines went to stderr, not to the journal"; }
  "$PY" - "$TMP/entries.json" <<'PYEOF' || fail "journal entries are not as documented"
import json, sys
es = [json.loads(l) for l in open(sys.argv[1])]
def one(**want):
    for e in es:
        if all(e.get(k) == v for k, v in want.items()):
            return e
    raise SystemExit("no entry with %s" % want)
f = one(EVENT="link_open_failed")
assert f["PRIORITY"] == "3" and f["LINK"] == "x" and "no-such-if" in f["MESSAGE"], f
assert f["SYSLOG_IDENTIFIER"] == "fdlinkd", f
# The code location is the place that logged, named relative to the source tree.
assert f["CODE_FILE"] == "lib/runtime/runtime.cpp" and "open_links" in f["CODE_FUNC"], f
assert int(f["CODE_LINE"]) > 0, f
for e in es:
    assert not e["CODE_FILE"].startswith("/") and e["CODE_FILE"] != "lib/core/log.cpp", e
assert one(EVENT="ready")["PRIORITY"] == "6"
c = one(EVENT="config_error", LINE="2")
assert c["PRIORITY"] == "3" and c["LINE"] == "2" and c["COLUMN"] == "11" and "workers" in c["MESSAGE"], c
q = one(EVENT="queue_stats", LINK="a", QUEUE="1")
s = one(EVENT="stats", SINK="unused-bridge")
assert one(EVENT="fdb_end", SINK="unused-bridge")
print("ok: %d journal entries; link_open_failed PRIORITY=3 LINK=x CODE_FILE=lib/runtime/runtime.cpp; "
      "config_error PRIORITY=3 LINE=2 COLUMN=11; ready PRIORITY=6; QUEUE=, SINK= fields" % len(es))
PYEOF
  # Nothing built names the machine it was built on (Debian's reproducible builds).
  src=$(cd "$HERE/../.." && pwd); bld=$(cd "$(dirname "$FDLINKD")/.." && pwd)
  for b in "$FDLINKD" "${FDLINKCTL:-}"; do
    [ -n "$b" ] || continue
    n=$(grep -c -a -F -e "$src/" -e "$bld/" "$b" || true)
    [ "$n" -eq 0 ] || fail "$b embeds the build path ($src or $bld) $n times"
  done
  pass "no build path in fdlinkd or fdlinkctl (-ffile-prefix-map)"
  exit 0
fi

# notify
afp_link a da to-b > "$TMP/cfg.toml"; afp_link b db to-a >> "$TMP/cfg.toml"; forward_sinks a b >> "$TMP/cfg.toml"
"$PY" "$HERE/notify_listener.py" "$TMP/notify.sock" "$TMP/notify.log" &
BACKGROUND+=($!)
for _ in $(seq 50); do [ -S "$TMP/notify.sock" ] && break; sleep 0.05; done
export NOTIFY_SOCKET="$TMP/notify.sock" WATCHDOG_USEC=400000 FDLINKD_TEST_HOOKS=1
start_daemon "$TMP/cfg.toml" "$D"
sleep 1
kill -HUP "$DAEMON_PID"
for _ in $(seq 50); do logq has reload_done && break; sleep 0.05; done
sleep 0.5
ctl call debug-stall-worker 0 2 > /dev/null || fail "the stall hook failed"
sleep 3
stop_daemon
unset WATCHDOG_USEC FDLINKD_TEST_HOOKS
"$PY" - "$TMP/notify.log" <<'PYEOF' || { cat "$TMP/notify.log" >&2; fail "the notify messages are not what systemd expects"; }
import json, sys
msgs = [json.loads(l) for l in open(sys.argv[1])]
def first(prefix, after=-1.0):
    for m in msgs:
        if m["t"] > after and any(line.startswith(prefix) for line in m["msg"].split("\n")):
            return m
    raise SystemExit("no %s after %.3f" % (prefix, after))
ready = first("READY=1")
rel = first("RELOADING=1", ready["t"])
assert "MONOTONIC_USEC=" in rel["msg"], rel
ready2 = first("READY=1", rel["t"])
stop = first("STOPPING=1", ready2["t"])
dogs = [m["t"] for m in msgs if "WATCHDOG=1" in m["msg"].split("\n")]
gaps = [b - a for a, b in zip(dogs, dogs[1:])]
normal = sorted(gaps)[len(gaps) // 2]
assert 0.1 < normal < 0.35, "watchdog period %.3f s, want 0.2 s" % normal
assert max(gaps) > 1.5, "WATCHDOG=1 did not stop while the worker was stalled (largest gap %.2f s)" % max(gaps)
after = [t for t in dogs if t > ready2["t"] + 3]
assert after, "WATCHDOG=1 did not resume after the stall"
print("ok: READY=1, RELOADING=1 + MONOTONIC_USEC, READY=1, STOPPING=1; WATCHDOG=1 every %.2f s, "
      "none for %.2f s while worker 0 was stalled" % (normal, max(gaps)))
PYEOF
logq has worker_stalled || fail "no worker_stalled logged"
grep -q '"event":"worker_stalled".*"level":"error"\|"level":"error","event":"worker_stalled"' "$LOG" || fail "worker_stalled is not an error"
pass "the stall was logged as worker_stalled (error)"

# A start that fails: STATUS= says why, ERRNO= is set.
n0=$(wc -l < "$TMP/notify.log")
afp_link x no-such-if to-x > "$TMP/bad.toml"; printf '[[sink]]\nname = "to-x"\ntype = "drop"\n' >> "$TMP/bad.toml"
rc=0; ip netns exec "$D" "$FDLINKD" -c "$TMP/bad.toml" 2>/dev/null || rc=$?
[ $rc -eq 1 ] || fail "a link that cannot open: exit $rc, want 1"
sleep 0.2
tail -n +$((n0 + 1)) "$TMP/notify.log" > "$TMP/failed.log"
grep -q 'STATUS=failed to start' "$TMP/failed.log" && grep -q 'ERRNO=[1-9]' "$TMP/failed.log" ||
  { cat "$TMP/failed.log" >&2; fail "a failed start sent no STATUS=/ERRNO="; }
pass "a failed start tells systemd: $(grep -o 'STATUS=[^\\]*' "$TMP/failed.log" | head -1)"
