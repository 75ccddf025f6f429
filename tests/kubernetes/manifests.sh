#!/usr/bin/env bash
# manifests.sh: deploy/kubernetes as far as it can be checked without a cluster.
#   - kubectl builds the kustomization (every file parses as Kubernetes objects);
#   - the DaemonSet has host networking, only its capabilities, /run/fdlinkd from the host;
#   - its init container's script, run here against a copy of the ConfigMap, renders a main
#     file that fdlinkd --check-config accepts and a conflist with this node's IPAM slice;
#   - the NetworkAttachmentDefinition's config is one fdlinkd-cni takes.
# No cluster is needed or contacted (docs/kubernetes.md says what was tried where).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FDLINKD=${FDLINKD:?set FDLINKD}
CNI=${FDLINKD_CNI:?set FDLINKD_CNI}
command -v kubectl >/dev/null || { echo "kubectl is not installed" >&2; exit 77; }
TMP=$(mktemp -d /tmp/fdlinkd-k8s.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

kubectl kustomize "$ROOT/deploy/kubernetes" > "$TMP/all.yaml"
echo "ok: kubectl kustomize deploy/kubernetes: $(grep -c '^kind:' "$TMP/all.yaml") objects"

/usr/bin/python3 - "$TMP" "$FDLINKD" "$CNI" <<'PYEOF'
import json, os, subprocess, sys, yaml
tmp, fdlinkd, cni = sys.argv[1:4]
docs = [d for d in yaml.safe_load_all(open(f"{tmp}/all.yaml")) if d]
by_kind = {d["kind"]: d for d in docs}
def check(cond, what):
    if not cond:
        sys.exit(f"FAIL: {what}")
check(set(by_kind) == {"Namespace", "ConfigMap", "DaemonSet", "NetworkAttachmentDefinition"},
      f"kinds: {sorted(by_kind)}")

ds = by_kind["DaemonSet"]["spec"]["template"]["spec"]
check(ds["hostNetwork"] is True, "DaemonSet: hostNetwork")
main = ds["containers"][0]
caps = main["securityContext"]["capabilities"]
check(caps["drop"] == ["ALL"] and sorted(caps["add"]) == ["NET_ADMIN", "NET_RAW", "SYS_ADMIN"],
      f"DaemonSet: capabilities {caps}")
check(main["securityContext"].get("privileged") is not True, "DaemonSet: not privileged")
vols = {v["name"]: v for v in ds["volumes"]}
mounts = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}
check(vols[mounts["/run/fdlinkd"]]["hostPath"]["path"] == "/run/fdlinkd", "/run/fdlinkd from the host")
print("ok: DaemonSet: host network, capabilities NET_ADMIN NET_RAW SYS_ADMIN only, /run/fdlinkd from the host")

# The init container's script, with its paths moved under tmp, for node 192.0.2.12.
cm = by_kind["ConfigMap"]["data"]
os.makedirs(f"{tmp}/config")
for k, v in cm.items():
    open(f"{tmp}/config/{k}", "w").write(v)
for d in ("etc", "opt/cni/bin", "net.d", "run", "bin"):
    os.makedirs(f"{tmp}/{d}", exist_ok=True)
os.symlink(fdlinkd, f"{tmp}/bin/fdlinkd")
init = ds["initContainers"][0]
script = init["command"][2]
for a, b in (("/config/", f"{tmp}/config/"), ("/etc/fdlinkd/", f"{tmp}/etc/"),
             ("/host/opt/cni/bin/", f"{tmp}/opt/cni/bin/"), ("/host/etc/cni/net.d/", f"{tmp}/net.d/"),
             ("/run/fdlinkd/", f"{tmp}/run/"), ("/usr/lib/cni/fdlinkd-cni", cni)):
    script = script.replace(a, b)
env = dict(os.environ, NODE_IP="192.0.2.12", PATH=f"{tmp}/bin:" + os.environ["PATH"])
r = subprocess.run(["/bin/sh", "-ec", script], env=env, capture_output=True, text=True)
check(r.returncode == 0, f"init container script: {r.stdout}{r.stderr}")
toml = open(f"{tmp}/etc/fdlinkd.toml").read()
check('local = "192.0.2.12"' in toml and 'remotes = ["192.0.2.11","192.0.2.13"]' in toml,
      f"rendered main file:\n{toml}")
conf = json.load(open(f"{tmp}/net.d/10-fdlinkd.conflist"))
rng = conf["plugins"][0]["ipam"]["ranges"][0][0]
check(rng["rangeStart"] == "10.244.2.1" and rng["rangeEnd"] == "10.244.2.254", f"IPAM slice {rng}")
check(os.access(f"{tmp}/opt/cni/bin/fdlinkd-cni", os.X_OK), "plugin installed")
print("ok: init container: main file passes fdlinkd --check-config (local 192.0.2.12, the other "
      "two nodes as remotes); conflist with this node's slice 10.244.2.1-254; plugin installed")

nad = json.loads(by_kind["NetworkAttachmentDefinition"]["spec"]["config"])
check(nad["type"] == "fdlinkd-cni" and nad["bridge"] == "pods" and nad["vlan"] == 20, f"NAD {nad}")
# The plugin takes it: STATUS reads the whole config and then finds no daemon (code 100), not a
# config error (code 7) or a version error (code 1).
r = subprocess.run([cni], input=json.dumps(dict(nad, control_socket=f"{tmp}/none.sock")),
                   env=dict(os.environ, CNI_COMMAND="STATUS"), capture_output=True, text=True)
err = json.loads(r.stdout)
check(r.returncode == 1 and err["code"] == 100, f"NAD config with fdlinkd-cni STATUS: {err}")
print("ok: NetworkAttachmentDefinition: fdlinkd-cni reads its config (VLAN 20 on bridge pods)")
PYEOF
