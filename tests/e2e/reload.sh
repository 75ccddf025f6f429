#!/usr/bin/env bash
# Live reload, as an operator does it: edit the file, `fdlinkctl reload` (or SIGHUP).
#
#   traffic  a UDP stream with sequence numbers and a ping flood go through links a <-> b,
#            which stay unchanged, while 10 reloads add and remove links c and d with their
#            sinks (and once change c, which is reopened): 0 datagrams lost or reordered, 0% ping loss; c <-> d
#            forward after each reload that adds them; an invalid file leaves the old config
#            running and fdlinkctl reload exits 1 with the errors; a change of `workers` is
#            refused; SIGHUP reloads too.
#   bridge   a bridge's learned MACs survive a reload that does not change it, and one that
#            adds a port to it: the next ping is not flooded.
#   bridge2  the same with two workers (each with its own table, and its own switch).
source "$(dirname "$0")/lib.sh"
MODE=${1:-traffic}
FDLINKCTL=${FDLINKCTL:-$(dirname "$FDLINKD")/../ctl/fdlinkctl}
ctl() { "$FDLINKCTL" -s "$CTL" "$@"; }

for n in d a b c e; do mkns $n; done
D=$ID-d A=$ID-a B=$ID-b C=$ID-c E=$ID-e
veth "$A" va "$D" da
veth "$B" vb "$D" db
veth "$C" vc "$D" dc
veth "$E" ve "$D" de
ip -n "$A" addr add 10.7.0.1/24 dev va
ip -n "$B" addr add 10.7.0.2/24 dev vb
ip -n "$C" addr add 10.7.0.3/24 dev vc
ip -n "$E" addr add 10.7.0.4/24 dev ve

base() {  # links a and b, and whatever "$@" adds
  [ "$MODE" = bridge2 ] && printf '[daemon]\nworkers = 2\n'
  if [ "$MODE" != traffic ]; then
    afp_link a da br; afp_link b db br
  else
    afp_link a da to-b; afp_link b db to-a; forward_sinks a b
  fi
  local line
  for line in "$@"; do printf '%s\n' "$line"; done
}
with_cd() {  # links c and d forwarding to each other ($1: an extra line for link c)
  afp_link c dc to-e ${1:+"$1"}
  afp_link e de to-c
  forward_sinks c e
}

if [ "$MODE" = traffic ]; then
  base > "$TMP/cfg.toml"
  start_daemon "$TMP/cfg.toml" "$D"
  ping_ok "$A" 10.7.0.2 3

  ip netns exec "$B" "$PY" "$HERE/udp_seq.py" recv 9000 "$TMP/seq.out" 2> "$TMP/seq.err" &
  RX=$!
  said "$TMP/seq.err" ready "the UDP receiver"
  ip netns exec "$A" "$PY" "$HERE/udp_seq.py" send 10.7.0.2 9000 3000 "$TMP/stop" &
  BACKGROUND+=($!)
  TX=$!
  ip netns exec "$A" ping -q -i 0.002 -c 4000 -W 2 10.7.0.2 > "$TMP/ping.out" 2>&1 &
  PING=$!

  for i in $(seq 1 10); do
    # Odd ones add c and e, even ones remove them; but 5 adds c with rx_batch = 32 and 6
    # changes it back (c is reopened).
    case $i in
      5) { base; with_cd 'rx_batch = 32'; } > "$TMP/cfg.toml" ;;
      6) { base; with_cd ''; } > "$TMP/cfg.toml" ;;
      7) base > "$TMP/cfg.toml" ;;
      *) if [ $((i % 2)) -eq 1 ]; then { base; with_cd ''; } > "$TMP/cfg.toml"; else base > "$TMP/cfg.toml"; fi ;;
    esac
    if [ "$i" -eq 4 ]; then  # by SIGHUP: the outcome is in the log
      n=$(logq count reload_done)
      kill -HUP "$DAEMON_PID"
      for _ in $(seq 100); do [ "$(logq count reload_done)" -gt "$n" ] && break; sleep 0.05; done
      [ "$(logq count reload_done)" -gt "$n" ] || fail "SIGHUP: no reload_done"
    else
      out=$(ctl reload) || fail "reload $i failed: $out"
    fi
    if grep -q 'name = "c"' "$TMP/cfg.toml"; then
      ip netns exec "$C" ping -q -c 2 -i 0.05 -W 1 10.7.0.4 > /dev/null ||
        fail "reload $i added links c and e, but c -> e does not forward"
    else
      ctl status --json | grep -q '"name":"c"' && fail "reload $i should have removed link c"
    fi
    case $i in
      3)  # an invalid file: rejected with its errors, the old config stays
        cp "$TMP/cfg.toml" "$TMP/good.toml"
        printf '[[link]]\nname = "a"\ntype = "tap"\n' >> "$TMP/cfg.toml"
        rc=0; out=$(ctl reload 2>&1) || rc=$?
        [ $rc -eq 1 ] || fail "an invalid config: fdlinkctl reload exited $rc, want 1"
        grep -q "cfg.toml:[0-9]*:[0-9]*: " <<< "$out" || fail "reload errors lack file:line:col: $out"
        grep -q "unchanged" <<< "$out" || fail "reload error does not say the config is unchanged: $out"
        ctl status --json | grep -q '"last_reload_ok":false' || fail "status does not show the failed reload"
        pass "invalid config refused: $(echo "$out" | head -2 | tr '\n' ' ')"
        cp "$TMP/good.toml" "$TMP/cfg.toml"
        ;;
      6)  # workers needs a restart: refused, nothing changes
        { printf '[daemon]\nworkers = 2\n'; cat "$TMP/cfg.toml"; } > "$TMP/w.toml"
        cp "$TMP/cfg.toml" "$TMP/good.toml"; cp "$TMP/w.toml" "$TMP/cfg.toml"
        rc=0; out=$(ctl reload 2>&1) || rc=$?
        [ $rc -eq 1 ] && grep -q "workers = 2 needs a restart" <<< "$out" ||
          fail "workers = 2 should be refused (rc $rc): $out"
        pass "a change of workers is refused: $out"
        cp "$TMP/good.toml" "$TMP/cfg.toml"
        ;;
    esac
    sleep 0.2
  done
  pass "10 reloads done ($(logq count reload_done) reload_done, $(logq count reload_failed) reload_failed)"
  logq has link_closed || fail "no link_closed logged"
  grep -q '"msg":"link reopened with its new settings","link":"c"' "$LOG" || fail "link c was not reopened with new settings"

  touch "$TMP/stop"
  wait "$TX"; wait "$RX" || fail "receiver failed"
  wait "$PING" || { cat "$TMP/ping.out" >&2; fail "the ping flood lost packets across the reloads"; }
  read -r _ got _ reord _ dups _ sent < "$TMP/seq.out"
  [ "$sent" -gt 1000 ] || fail "only $sent datagrams sent"
  [ "$got" -eq "$sent" ] || fail "UDP stream across 10 reloads: $got of $sent arrived"
  [ "$reord" -eq 0 ] && [ "$dups" -eq 0 ] || fail "UDP stream: $reord reordered, $dups duplicated"
  pass "UDP stream across 10 reloads: $got of $sent datagrams, 0 reordered"
  pass "ping flood: $(grep -o '[0-9]* received, [0-9.]*% packet loss' "$TMP/ping.out")"
  grep -q " 0% packet loss" "$TMP/ping.out" || fail "ping flood lost packets"
  stop_daemon
  exit 0
fi

# bridge, bridge2
flooded() { ctl sinks --json | "$PY" -c 'import json,sys; print([s for s in json.load(sys.stdin)["sinks"] if s["name"]=="br"][0]["counters"]["flooded"])'; }
bridge_sink() {  # $1: the ports
  printf '[[sink]]\nname = "br"\ntype = "bridge"\nports = [%s]\n' "$1"
}
{ base; bridge_sink '"a", "b"'; } > "$TMP/cfg.toml"
start_daemon "$TMP/cfg.toml" "$D"
ping_ok "$A" 10.7.0.2 2
f0=$(flooded)
ip netns exec "$A" ping -q -c 1 -W 1 10.7.0.2 > /dev/null || fail "ping"
[ "$(flooded)" -eq "$f0" ] || fail "a ping between learned MACs was flooded before any reload"

# 1: an unrelated link and sink come; the bridge is unchanged and kept.
{ base; bridge_sink '"a", "b"'; afp_link c dc drop; printf '[[sink]]\nname = "drop"\ntype = "drop"\n'; } > "$TMP/cfg.toml"
out=$(ctl reload --json) || fail "reload: $out"
grep -q '"sinks_kept":1' <<< "$out" || fail "the unchanged bridge was not kept: $out"
ip netns exec "$A" ping -q -c 1 -W 1 10.7.0.2 > /dev/null || fail "ping after the reload"
[ "$(flooded)" -eq "$f0" ] || fail "after a reload that left the bridge alone, a ping was flooded ($f0 -> $(flooded))"
pass "bridge kept across a reload: its table has $(ctl fdb --json | grep -o '"mac"' | wc -l) MACs, the next ping was not flooded"

# 2: the bridge gets port c: rebuilt, and it takes the learned MACs over.
{ base; bridge_sink '"a", "b", "c"'; afp_link c dc br; } > "$TMP/cfg.toml"
out=$(ctl reload --json) || fail "reload: $out"
grep -q '"sinks_built":1' <<< "$out" || fail "the changed bridge was not rebuilt: $out"
f1=$(flooded)
ip netns exec "$A" ping -q -c 1 -W 1 10.7.0.2 > /dev/null || fail "ping after the bridge changed"
[ "$(flooded)" -eq "$f1" ] || fail "after the bridge gained a port, a ping was flooded: its MACs were lost"
ping_ok "$C" 10.7.0.1 2
pass "bridge rebuilt with a new port kept its MACs: the next ping was not flooded; c reaches a"
ctl fdb flush br | grep -q "flushed" || fail "fdb flush"
[ "$(ctl fdb --json | grep -o '"mac"' | wc -l)" -eq 0 ] || fail "fdb flush left entries"
pass "fdb flush empties the table"
stop_daemon
