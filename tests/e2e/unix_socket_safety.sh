#!/usr/bin/env bash
# fdlinkd never takes over a live unix socket: a second daemon with the same `path` exits 1
# naming it, and the first one keeps serving (a peer still connects and frames flow). A stale
# socket file (nobody listening) is replaced. The socket file is 0600 even under umask 000,
# or socket_mode when set.
source "$(dirname "$0")/lib.sh"

mkns h1; mkns fw
veth "$ID-h1" h1 "$ID-fw" pa
SOCK="$TMP/peer.sock"

config() {  # config MODE_LINE
  cat <<EOT
[daemon]
stats_interval = "0s"
$(afp_link wire pa to-peer)
[[link]]
name = "peer"
type = "unix"
path = "$SOCK"
$1
sink = "to-wire"
$(forward_sinks wire peer)
EOT
}
config "" > "$TMP/a.toml"

# A stale socket file: bound by a process that is gone.
"$PY" -c "import socket,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.bind(sys.argv[1])" "$SOCK"
[ -S "$SOCK" ] || fail "could not make a stale socket file"
old_umask=$(umask)
umask 000
start_daemon "$TMP/a.toml" "$ID-fw"
umask "$old_umask"
pass "a stale socket file was replaced"
mode=$(stat -c %a "$SOCK")
[ "$mode" = 600 ] || fail "socket mode $mode under umask 000, expected 600"
pass "socket file mode 0600 under umask 000"

# A second daemon with the same path (and a control socket of its own, so that its link is
# what meets the first one): exit 1, naming the path; the first socket untouched.
inode=$(stat -c %i "$SOCK")
rc=0
sed "s|^\[daemon\]$|[daemon]\ncontrol_socket = \"$TMP/second.sock\"|" "$TMP/a.toml" > "$TMP/second.toml"
ip netns exec "$ID-fw" timeout 10 "$FDLINKD" -c "$TMP/second.toml" --log-format json 2>"$TMP/second.log" || rc=$?
[ $rc -eq 1 ] || fail "second daemon: exit $rc, expected 1: $(tail -3 "$TMP/second.log")"
grep -q "\"event\":\"link_open_failed\".*$SOCK is in use" "$TMP/second.log" || fail "second daemon did not name the path: $(tail -3 "$TMP/second.log")"
[ "$(stat -c %i "$SOCK")" = "$inode" ] || fail "the first daemon's socket file was replaced"
pass "second daemon: exit 1, '$(grep -o "$SOCK is in use[^\"]*" "$TMP/second.log" | head -1)'"

# The first daemon still serves: a peer connects and answers pings through it.
ip -n "$ID-h1" addr add 10.77.9.1/24 dev h1
"$PY" "$HERE/unix_peer.py" "$SOCK" 10.77.9.2 02:fd:00:00:09:02 "$TMP/peer.count" > "$TMP/peer.out" &
BACKGROUND+=($!)
for _ in $(seq 50); do grep -q connected "$TMP/peer.out" && break; sleep 0.05; done
grep -q connected "$TMP/peer.out" || fail "a peer could not connect to the first daemon"
ping_ok "$ID-h1" 10.77.9.2 20
stop_daemon

# socket_mode and socket_group, explicitly.
config $'socket_mode = "0660"\nsocket_group = "0"' > "$TMP/b.toml"
start_daemon "$TMP/b.toml" "$ID-fw"
[ "$(stat -c %a:%g "$SOCK")" = "660:0" ] || fail "socket_mode 0660: got $(stat -c %a:%g "$SOCK")"
pass "socket_mode = \"0660\", socket_group = \"0\": $(stat -c %A "$SOCK")"
stop_daemon
