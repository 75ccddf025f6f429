#!/usr/bin/python3
"""backpressure.py FDLINKCTL CONTROL_SOCKET DIR: the unix part of backpressure.sh. fdlinkd
forwards datagrams from link "in" (DIR/in.sock, peer DIR/sender.sock) to link "out"
(DIR/out.sock, peer DIR/reader.sock, tx_backlog 64, tx_stall_timeout 500ms)."""
import json
import socket
import subprocess
import sys
import threading
import time

ctl, control, d = sys.argv[1], sys.argv[2], sys.argv[3]
HDR = bytes.fromhex("02fd0000000202fd0000000188b5")  # dst, src, a local experimental type


def links():
    out = subprocess.check_output([ctl, "-s", control, "stats", "--json"])
    return {l["name"]: l for l in json.loads(out)["links"]}


def frame(seq):
    return HDR + seq.to_bytes(4, "big") + bytes(100)


def seq_of(f):
    assert f[:14] == HDR and len(f) == 118, f"a frame that was not sent: {f[:20].hex()}"
    return int.from_bytes(f[14:18], "big")


with open("/proc/sys/net/unix/max_dgram_qlen") as f:
    qlen = int(f.read())
sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sender.bind(f"{d}/sender.sock")
reader = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
reader.bind(f"{d}/reader.sock")

# 1. A slow reader: every frame arrives, in order, none dropped.
N = 4000
got = []


def read_slowly():
    reader.settimeout(5)
    while len(got) < N:
        got.append(seq_of(reader.recv(2048)))
        time.sleep(0.0005)


t = threading.Thread(target=read_slowly)
t.start()
t0 = time.monotonic()
for i in range(N):
    sender.sendto(frame(i), f"{d}/in.sock")  # blocks while fdlinkd does not read `in`
t.join()
took = time.monotonic() - t0
assert got == list(range(N)), f"frames lost or out of order: got {len(got)}, first gap at " \
    f"{next((i for i, s in enumerate(got) if s != i), None)}"
l = links()
dropped = {n: {k: v for k, v in l[n]["drops"].items() if v} for n in ("in", "out")}
assert not dropped["in"] and not dropped["out"], f"fdlinkd dropped frames: {dropped}"
print(f"ok: {N} frames to a reader taking one per 0.5 ms (max_dgram_qlen {qlen}): all arrived, "
      f"in order, in {took:.1f} s; fdlinkd dropped none", flush=True)

# 2. The reader stops reading. fdlinkd holds `in` back for tx_stall_timeout, then drops what
# does not fit in the backlog.
sender.setblocking(False)
sent = N
stalled_at = time.monotonic()
deadline = stalled_at + 8
while time.monotonic() < deadline:
    # Up to 50 ms of sending between two looks at the counters (fdlinkctl takes a while,
    # more so in a sanitizer build).
    until = time.monotonic() + 0.05
    while time.monotonic() < until:
        try:
            sender.sendto(frame(sent), f"{d}/in.sock")
            sent += 1
        except BlockingIOError:
            time.sleep(0.001)
    if links()["out"]["drops"].get("tx_backlog_full", 0) >= 100:
        break
full = links()["out"]["drops"].get("tx_backlog_full", 0)
assert full >= 100, f"tx_backlog_full on out is {full} after 8 s of a stalled reader"
waited = time.monotonic() - stalled_at
assert waited >= 0.4, f"fdlinkd stopped waiting for the reader after {waited:.2f} s (timeout 0.5 s)"
print(f"ok: the reader stalled: fdlinkd stopped holding `in` back after {waited:.1f} s; "
      f"tx_backlog_full {full} on out (backlog 64)", flush=True)

# 3. The reader reads again: what waited arrives, in order, right after what it had read.
reader.settimeout(1)
late = []
try:
    while True:
        late.append(seq_of(reader.recv(2048)))
except socket.timeout:
    pass
assert late and late == list(range(N, N + len(late))), \
    f"after the stall: {len(late)} frames, {late[:3]}..{late[-3:]}; want {N}, {N + 1}, ... in order"
assert len(late) >= 64, f"only {len(late)} frames after the stall; the backlog held 64"
l = links()["out"]
print(f"ok: the reader reads again: {len(late)} frames that waited arrive in order "
      f"(its queue {qlen} + the backlog 64 + a batch being sent); out sent {l['tx_packets']}, "
      f"tx_backlog_full {l['drops'].get('tx_backlog_full', 0)}", flush=True)
