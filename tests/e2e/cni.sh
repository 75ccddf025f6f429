#!/usr/bin/env bash
# cni.sh: fdlinkd-cni driven exactly as a container runtime drives it (CNI_* environment, the
# network config on stdin), with the host-local IPAM plugin of containernetworking-plugins.
#   runtime: three pods (two on VLAN 10, one on VLAN 20) ping and fail to ping as their VLANs
#            say; the result JSON field by field; CHECK, DEL, DEL again, CHECK; fdlinkd
#            restarted under running pods; 50 pods added and removed (no leaks, ADD times).
#   podman:  podman (CNI backend) runs two containers on an fdlinkd network; they ping.
. "$(dirname "$0")/lib.sh"
MODE=${1:-runtime}
CNI=${FDLINKD_CNI:?set FDLINKD_CNI to the fdlinkd-cni binary}
IPAM_DIR=/usr/lib/cni
[ -x $IPAM_DIR/host-local ] || { echo "containernetworking-plugins is not installed" >&2; exit 77; }

PORTS="$TMP/ports.d"
mkdir -p "$PORTS"
cat > "$TMP/fdlinkd.toml" <<TOML
[daemon]
include = ["$PORTS/*.toml"]

[[sink]]
name = "pods"
type = "bridge"
TOML

# netconf VLAN [MODE]: a network config as the runtime hands it over.
netconf() {
  cat <<JSON
{"cniVersion": "1.1.0", "name": "fdl-$ID", "type": "fdlinkd-cni", "bridge": "pods",
 "vlan": $1, "mtu": 1500, "mode": "${2:-veth}",
 "control_socket": "$CTL", "ports_dir": "$PORTS",
 "ipam": {"type": "host-local", "dataDir": "$TMP/ipam",
          "ranges": [[{"subnet": "10.77.$1.0/24"}]], "routes": [{"dst": "10.99.0.0/16"}]}}
JSON
}

# cni COMMAND CONTAINER NETNS VLAN [MODE]: runs the plugin; its stdout is the result.
cni() {
  CNI_COMMAND=$1 CNI_CONTAINERID=$2 CNI_NETNS=${3:+/run/netns/$3} CNI_IFNAME=eth0 \
    CNI_PATH="$IPAM_DIR" "$CNI" <<< "$(netconf "$4" "${5:-veth}")"
}

if [ "$MODE" = runtime ]; then
  start_daemon "$TMP/fdlinkd.toml"
  veths_before=$(ip -br link | grep -c '^fdl' || true)
  mkns pa; mkns pb; mkns pc
  pa="$ID-pa"; pb="$ID-pb"; pc="$ID-pc"

  t0=$(date +%s%N)
  cni ADD ctr-a "$pa" 10 > "$TMP/a.json" || { cat "$TMP/a.json" >&2; fail "ADD a"; }
  t1=$(date +%s%N)
  pass "ADD of pod a in $(( (t1 - t0) / 1000000 )) ms"
  cni ADD ctr-b "$pb" 10 > "$TMP/b.json" || { cat "$TMP/b.json" >&2; fail "ADD b"; }
  cni ADD ctr-c "$pc" 20 > "$TMP/c.json" || { cat "$TMP/c.json" >&2; fail "ADD c"; }

  # The result, field by field (CNI 1.1.0 "Success" result).
  "$PY" - "$TMP/a.json" "/run/netns/$pa" <<'PYEOF' || exit 1
import json, re, sys
r = json.load(open(sys.argv[1])); ns = sys.argv[2]
def check(cond, what):
    if not cond: sys.exit(f"FAIL: result {what}: {json.dumps(r)}")
check(r["cniVersion"] == "1.1.0", "cniVersion")
check(len(r["interfaces"]) == 2, "has the host and the pod interface")
host, pod = r["interfaces"]
mac = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")
check(host["name"].startswith("fdl") and len(host["name"]) == 15 and mac.match(host["mac"])
      and "sandbox" not in host, "host interface")
check(pod["name"] == "eth0" and mac.match(pod["mac"]) and pod["sandbox"] == ns, "pod interface")
check(len(r["ips"]) == 1, "one IP")
ip = r["ips"][0]
check(ip["address"] == "10.77.10.2/24" and ip["gateway"] == "10.77.10.1" and ip["interface"] == 1,
      "ips[0]")
check(r["routes"] == [{"dst": "10.99.0.0/16"}], "routes")
check(r["dns"] == {}, "dns")
print("ok: ADD result: cniVersion, interfaces (host, pod with sandbox), ips, routes, dns as the spec says")
PYEOF
  ip -n "$pa" -br addr show eth0 | grep -q "10.77.10.2/24" || fail "pod a has no address"
  ip -n "$pa" route show 10.99.0.0/16 | grep -q eth0 || fail "pod a has no route from IPAM"
  [ "$(ls "$PORTS"/*.toml | wc -l)" -eq 3 ] || fail "expected 3 drop-ins"
  "$FDLINKCTL" -s "$CTL" status > "$TMP/status.txt"
  grep -E "^cni-[0-9a-f]{12} +af_packet +up .*$PORTS/[0-9a-f]{12}\.toml" "$TMP/status.txt" >/dev/null ||
    { cat "$TMP/status.txt" >&2; fail "fdlinkctl status does not list the pods' links with their files"; }
  pass "fdlinkctl status lists each pod's link with the drop-in it came from"

  ping_ok "$pa" 10.77.10.3 20
  ping_ok "$pb" 10.77.10.2 20
  # Pod c is on VLAN 20: give it an address in a's subnet too; the bridge must still keep it apart.
  ip -n "$pc" addr add 10.77.10.50/24 dev eth0
  ! ip netns exec "$pc" ping -c 3 -i 0.2 -W 1 10.77.10.2 >/dev/null 2>&1 ||
    fail "pod c (VLAN 20) reached pod a (VLAN 10)"
  pass "pod c on VLAN 20 cannot reach pod a on VLAN 10 (same subnet, same bridge)"

  # CHECK with the ADD result as prevResult.
  check_conf=$("$PY" -c 'import json,sys; c=json.loads(sys.argv[1]); c["prevResult"]=json.load(open(sys.argv[2])); print(json.dumps(c))' "$(netconf 10)" "$TMP/a.json")
  CNI_COMMAND=CHECK CNI_CONTAINERID=ctr-a CNI_NETNS=/run/netns/$pa CNI_IFNAME=eth0 CNI_PATH=$IPAM_DIR \
    "$CNI" <<< "$check_conf" > "$TMP/check.json" || { cat "$TMP/check.json" >&2; fail "CHECK of a live pod"; }
  [ ! -s "$TMP/check.json" ] || fail "CHECK printed output on success: $(cat "$TMP/check.json")"
  pass "CHECK of pod a: success, no output"

  # fdlinkd restarted under running pods: ports come back from the drop-ins.
  ip netns exec "$pa" ping -i 0.05 -W 1 10.77.10.3 > "$TMP/restart-ping.txt" 2>&1 &
  pinger=$!
  BACKGROUND+=("$pinger")
  sleep 0.5
  stop_daemon
  sleep 0.3
  start_daemon "$TMP/fdlinkd.toml"
  restarted=$(date +%s%N)
  for _ in $(seq 100); do
    ip netns exec "$pa" ping -c 1 -W 0.05 10.77.10.3 >/dev/null 2>&1 && break
  done
  back=$(date +%s%N)
  resume_ms=$(( (back - restarted) / 1000000 ))
  kill "$pinger" 2>/dev/null || true
  [ "$resume_ms" -lt 1000 ] || fail "ping resumed $resume_ms ms after fdlinkd was ready (goal: 1 s)"
  pass "fdlinkd restarted under 3 pods: ports back from the drop-ins, ping resumed $resume_ms ms after ready"
  ping_ok "$pb" 10.77.10.2 10

  # DEL, DEL again, then CHECK.
  host_a=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["interfaces"][0]["name"])' "$TMP/a.json")
  cni DEL ctr-a "$pa" 10 > "$TMP/del.json" || { cat "$TMP/del.json" >&2; fail "DEL a"; }
  [ ! -s "$TMP/del.json" ] || fail "DEL printed output on success"
  ip link show "$host_a" >/dev/null 2>&1 && fail "DEL left veth $host_a"
  ip -n "$pa" link show eth0 >/dev/null 2>&1 && fail "DEL left eth0 in pod a"
  [ "$(ls "$PORTS"/*.toml | wc -l)" -eq 2 ] || fail "DEL left the drop-in"
  [ ! -e "$TMP/ipam/fdl-$ID/10.77.10.2" ] || fail "DEL did not release 10.77.10.2 in host-local"
  pass "DEL: veth, drop-in, fdlinkd link and the IPAM lease are gone"
  cni DEL ctr-a "$pa" 10 > "$TMP/del2.json" || { cat "$TMP/del2.json" >&2; fail "a second DEL must succeed"; }
  pass "DEL again: success (the port is already gone)"
  if CNI_COMMAND=CHECK CNI_CONTAINERID=ctr-a CNI_NETNS=/run/netns/$pa CNI_IFNAME=eth0 CNI_PATH=$IPAM_DIR \
       "$CNI" <<< "$check_conf" > "$TMP/check2.json"; then
    fail "CHECK after DEL succeeded"
  fi
  "$PY" - "$TMP/check2.json" <<'PYEOF' || exit 1
import json, sys
e = json.load(open(sys.argv[1]))
if not (e["cniVersion"] == "1.1.0" and isinstance(e["code"], int) and e["code"] >= 100 and e["msg"]):
    sys.exit(f"FAIL: CHECK after DEL: not a CNI error: {e}")
print(f"ok: CHECK after DEL: error code {e['code']}: {e['msg']}")
PYEOF

  # VERSION, STATUS, a bad config, GC.
  CNI_COMMAND=VERSION "$CNI" <<< '{"cniVersion":"1.1.0"}' | "$PY" -c '
import json, sys
v = json.load(sys.stdin)
assert v["supportedVersions"] == ["1.0.0", "1.1.0"], v
print("ok: VERSION lists 1.0.0 and 1.1.0")'
  CNI_COMMAND=STATUS CNI_PATH=$IPAM_DIR "$CNI" <<< "$(netconf 10)" > "$TMP/status.json" ||
    fail "STATUS with fdlinkd running: $(cat "$TMP/status.json")"
  if CNI_COMMAND=STATUS CNI_PATH=$IPAM_DIR "$CNI" <<< "$(netconf 10 | sed 's/"pods"/"nope"/')" > "$TMP/status2.json"; then
    fail "STATUS succeeded for a bridge fdlinkd does not have"
  fi
  grep -q '"code":50' "$TMP/status2.json" || fail "STATUS without the bridge: $(cat "$TMP/status2.json")"
  pass "STATUS: ok with the bridge, code 50 (not available) without it"
  if CNI_COMMAND=ADD CNI_CONTAINERID=x CNI_NETNS=/run/netns/$pa CNI_IFNAME=eth0 CNI_PATH=$IPAM_DIR \
       "$CNI" <<< '{"cniVersion":"1.1.0","name":"n","type":"fdlinkd-cni"}' > "$TMP/bad.json"; then
    fail "ADD without bridge succeeded"
  fi
  grep -q '"code":7,"msg":"the network config has no \\"bridge\\"' "$TMP/bad.json" ||
    fail "ADD without bridge: $(cat "$TMP/bad.json")"
  pass "ADD without \"bridge\": error 7 naming the key"
  gc_conf=$("$PY" -c 'import json,sys; c=json.loads(sys.argv[1]); c["cniVersion"]="1.1.0"; c["cni.dev/valid-attachments"]=[{"containerID":"ctr-b","ifname":"eth0"}]; print(json.dumps(c))' "$(netconf 10)")
  CNI_COMMAND=GC CNI_PATH=$IPAM_DIR "$CNI" <<< "$gc_conf" > "$TMP/gc.json" || fail "GC: $(cat "$TMP/gc.json")"
  [ "$(ls "$PORTS"/*.toml | wc -l)" -eq 1 ] || fail "GC kept more than pod b's port"
  ip -n "$pc" link show eth0 >/dev/null 2>&1 && fail "GC left pod c's veth"
  [ ! -e "$TMP/ipam/fdl-$ID/10.77.20.2" ] || fail "GC left pod c's lease in host-local"
  pass "GC: pod c (not in valid-attachments) removed with its lease, pod b kept"

  # Two ADDs at once: the lock takes them in turn; both ports work.
  mkns pd; mkns pe
  cni ADD ctr-d "$ID-pd" 10 > "$TMP/d.json" & add_d=$!
  cni ADD ctr-e "$ID-pe" 10 > "$TMP/e.json" & add_e=$!
  wait $add_d || { cat "$TMP/d.json" >&2; fail "concurrent ADD d"; }
  wait $add_e || { cat "$TMP/e.json" >&2; fail "concurrent ADD e"; }
  ip_e=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["ips"][0]["address"].split("/")[0])' "$TMP/e.json")
  ping_ok "$ID-pd" "$ip_e" 5
  pass "two ADDs at once: both ports up, pods d and e reach each other"
  cni DEL ctr-b "$pb" 10 >/dev/null || fail "DEL b"

  # "mode": "tap": fdlinkd makes a persistent TAP in the pod; "vhost-user": a socket for a VM.
  mkns pf
  cni ADD ctr-f "$ID-pf" 10 tap > "$TMP/f.json" || { cat "$TMP/f.json" >&2; fail "ADD f (tap)"; }
  ip_f=$("$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); assert len(r["interfaces"]) == 1 and r["interfaces"][0]["sandbox"] and r["ips"][0]["interface"] == 0, r; print(r["ips"][0]["address"].split("/")[0])' "$TMP/f.json")
  ip -n "$ID-pf" -d link show eth0 | grep -q "tun type tap" || fail "pod f's eth0 is not a TAP"
  ping_ok "$ID-pd" "$ip_f" 5
  cni DEL ctr-f "$ID-pf" 10 tap >/dev/null || fail "DEL f (tap)"
  ip -n "$ID-pf" link show eth0 >/dev/null 2>&1 && fail "DEL left pod f's TAP"
  pass "tap mode: a TAP in the pod, reached from a veth pod; DEL removes it"
  CNI_COMMAND=ADD CNI_CONTAINERID=vm-1 CNI_NETNS=/run/netns/$ID-pf CNI_IFNAME=eth0 CNI_PATH=$IPAM_DIR "$CNI" \
    <<< "$(netconf 10 vhost-user)" > "$TMP/vm.json" || { cat "$TMP/vm.json" >&2; fail "ADD vhost-user"; }
  sock=$("$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["interfaces"][0]["socketPath"])' "$TMP/vm.json")
  [ -S "$sock" ] || fail "vhost-user: no socket at $sock"
  CNI_COMMAND=DEL CNI_CONTAINERID=vm-1 CNI_NETNS=/run/netns/$ID-pf CNI_IFNAME=eth0 CNI_PATH=$IPAM_DIR "$CNI" \
    <<< "$(netconf 10 vhost-user)" >/dev/null || fail "DEL vhost-user"
  [ ! -e "$sock" ] || fail "vhost-user: DEL left $sock"
  pass "vhost-user mode: the result's socketPath is fdlinkd's listening socket; DEL removes it"

  # 50 pods added and removed while pods d and e keep pinging: nothing is lost on their ports
  # while each reload adds and removes another; nothing leaks; each ADD's time.
  ip netns exec "$ID-pd" ping -i 0.01 -W 1 "$ip_e" > "$TMP/steady.txt" 2>&1 &
  steady=$!
  BACKGROUND+=("$steady")

  : > "$TMP/add_ms"
  for i in $(seq 50); do
    ns="$ID-loop"
    ip netns add "$ns"; NAMESPACES+=("$ns")
    t0=$(date +%s%N)
    cni ADD "loop-$i" "$ns" 10 > "$TMP/loop.json" || { cat "$TMP/loop.json" >&2; fail "loop ADD $i"; }
    t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000000 )) >> "$TMP/add_ms"
    cni DEL "loop-$i" "$ns" 10 > "$TMP/loop.json" || { cat "$TMP/loop.json" >&2; fail "loop DEL $i"; }
    ip netns del "$ns"
  done
  kill -INT "$steady"; wait "$steady" || true
  grep -q " 0% packet loss" "$TMP/steady.txt" || { cat "$TMP/steady.txt" >&2; fail "pings between d and e were lost while other pods came and went"; }
  pass "pods d and e: $(grep -o '[0-9]* packets transmitted, [0-9]* received' "$TMP/steady.txt"), 0% loss through 100 reloads for other pods"
  for c in d e; do
    cni DEL "ctr-$c" "$ID-p$c" 10 >/dev/null || fail "DEL $c"
  done
  [ "$(ls "$PORTS" | grep -c toml || true)" -eq 0 ] || fail "drop-ins left after the loop: $(ls "$PORTS")"
  [ "$(ip -br link | grep -c '^fdl' || true)" -eq "$veths_before" ] || fail "veths left after the loop"
  "$FDLINKCTL" -s "$CTL" status | grep -q '^cni-' && fail "fdlinkd links left after the loop"
  [ "$(ls "$TMP/ipam/fdl-$ID" | grep -c '^10\.' || true)" -eq 0 ] || fail "IPAM leases left after the loop"
  sort -n "$TMP/add_ms" | awk '{a[NR]=$1} END {printf "ok: 50 pods added and removed, nothing left (links, drop-ins, veths, leases); ADD ms: min %d median %d max %d\n", a[1], a[int((NR+1)/2)], a[NR]}'
  stop_daemon
  exit 0
fi

if [ "$MODE" = podman ]; then
  command -v podman >/dev/null || { echo "podman is not installed" >&2; exit 77; }
  start_daemon "$TMP/fdlinkd.toml"
  # The image: busybox from Debian's busybox-static, imported from a rootfs (no registry here).
  root="$TMP/rootfs"; mkdir -p "$root/bin"
  cp /bin/busybox "$root/bin/busybox"
  for a in sh ping ip sleep cat; do ln -s busybox "$root/bin/$a"; done
  tar -C "$root" -cf "$TMP/rootfs.tar" .
  image="localhost/fdlinkd-e2e-$ID"
  podman import -q "$TMP/rootfs.tar" "$image" >/dev/null
  REMOVE+=("/etc/cni/net.d/90-fdl-$ID.conflist")
  net="fdl-$ID"
  cat > "/etc/cni/net.d/90-fdl-$ID.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "$net", "plugins": [
  {"type": "fdlinkd-cni", "bridge": "pods", "vlan": 30, "control_socket": "$CTL",
   "ports_dir": "$PORTS",
   "ipam": {"type": "host-local", "dataDir": "$TMP/ipam", "ranges": [[{"subnet": "10.78.0.0/24"}]]}}]}
JSON
  # podman finds plugins in cni_plugin_dirs; put ours beside Debian's through a private dir.
  mkdir -p "$TMP/cni-bin"
  ln -s "$CNI" "$TMP/cni-bin/fdlinkd-cni"
  for p in "$IPAM_DIR"/*; do ln -s "$p" "$TMP/cni-bin/"; done
  # runc, not crun: Debian 12's crun 1.8 refuses this machine's hybrid cgroups; no default
  # ulimits: raising them needs CAP_SYS_RESOURCE, which a CI sandbox may not give root.
  cat > "$TMP/containers.conf" <<CONF
[containers]
default_ulimits = []

[engine]
runtime = "runc"

[network]
network_backend = "cni"
cni_plugin_dirs = ["$TMP/cni-bin"]
CONF
  export CONTAINERS_CONF="$TMP/containers.conf"
  c1="fdl1-$ID"; c2="fdl2-$ID"
  cleanup_podman() { podman rm -f -t 0 "$c1" "$c2" >/dev/null 2>&1 || true; podman rmi -f "$image" >/dev/null 2>&1 || true; }
  trap 'rc=$?; cleanup_podman; (exit $rc); cleanup' EXIT
  podman run -d --name "$c1" --network "$net" "$image" /bin/sleep 60 >/dev/null
  podman run -d --name "$c2" --network "$net" "$image" /bin/sleep 60 >/dev/null
  [ "$(ls "$PORTS"/*.toml | wc -l)" -eq 2 ] || fail "podman's two containers did not get two ports"
  ip1=$(podman exec "$c1" ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1)
  ip2=$(podman exec "$c2" ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1)
  [ -n "$ip1" ] && [ -n "$ip2" ] || fail "containers have no addresses"
  podman exec "$c1" ping -c 5 -i 0.2 -W 2 "$ip2" > "$TMP/podping.txt" || { cat "$TMP/podping.txt" >&2; fail "container 1 cannot ping container 2"; }
  grep -q " 0% packet loss" "$TMP/podping.txt" || fail "pings lost between containers"
  pass "podman: container $ip1 pings container $ip2 through fdlinkd's bridge (VLAN 30), 0% loss"
  podman rm -f -t 0 "$c1" "$c2" >/dev/null
  [ "$(ls "$PORTS" | grep -c toml || true)" -eq 0 ] || fail "podman rm left drop-ins"
  "$FDLINKCTL" -s "$CTL" status | grep -q '^cni-' && fail "podman rm left fdlinkd links"
  pass "podman rm: both ports removed"
  stop_daemon
  exit 0
fi
fail "unknown mode $MODE"
