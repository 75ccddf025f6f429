#!/usr/bin/python3
"""unix_drops.py FDLINKCTL CONTROL_SOCKET DIR: the unix part of drop_reasons.sh. fdlinkd runs
link "u" (seqpacket, readv, mtu 1500) at DIR/u.sock and link "d" (dgram, recvmmsg, mtu 9000)
at DIR/d.sock with peer DIR/dpeer.sock, forwarding to each other. Each case sends real messages
and checks, with `fdlinkctl stats --json`, that the reason grew on the link the README names and
not on the other one."""
import json
import os
import socket
import subprocess
import sys
import time

ctl, control, d = sys.argv[1], sys.argv[2], sys.argv[3]


def links():
    out = subprocess.check_output([ctl, "-s", control, "stats", "--json"])
    return {l["name"]: l for l in json.loads(out)["links"]}


def value(link, name):
    l = links()[link]
    return l[name] if name in l else l["drops"][name]


def expect(link, reason, n, other, what, action, at_least=False):
    before, other_before = value(link, reason), value(other, reason)
    action()
    now = before
    for _ in range(40):
        now = value(link, reason)
        if now - before >= n:
            break
        time.sleep(0.05)
    grew = now - before
    ok = grew >= n if at_least else grew == n
    assert ok, f"{what}: {link} {reason} grew by {grew}, want {'at least ' if at_least else ''}{n}"
    assert value(other, reason) == other_before, f"{what}: counted on {other} too"
    print(f"ok: {what}: {reason} +{grew} on {link}, none on {other}", flush=True)


def frame(size):
    f = bytes.fromhex("02fd0000000202fd0000000188b5")
    return f + bytes(size - len(f))


dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)


def to_d(*sizes):
    for s in sizes:
        dgram.sendto(frame(s) if s >= 14 else b"\x01" * s, f"{d}/d.sock")


# No one is connected to u yet: what d forwards to it has nowhere to go.
expect("u", "no_peer", 5, "d", "frames to u before any peer connects", lambda: to_d(*[100] * 5))

# d's peer is a seqpacket socket: sendto() from a dgram socket fails with EPROTOTYPE.
wrong = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
wrong.bind(f"{d}/dpeer.sock")
wrong.listen(1)
peer = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
peer.connect(f"{d}/u.sock")
for _ in range(40):  # until fdlinkd has accepted it
    if links()["u"]["drops"]["no_peer"] == 5 and value("u", "state") == "up":
        break
    time.sleep(0.05)
time.sleep(0.2)
expect("d", "tx_error", 3, "u", "frames to d, whose peer is a seqpacket socket (EPROTOTYPE)",
       lambda: [peer.send(frame(100)) for _ in range(3)])

# Runts: a 5-byte message and an empty one; the connection goes on.
expect("u", "runt", 2, "d", "a 5-byte and a 0-byte message into u",
       lambda: (peer.send(b"\x01" * 5), peer.send(b"")))
rx = value("u", "rx_packets")
peer.send(frame(60))
time.sleep(0.3)
assert value("u", "rx_packets") == rx + 1, "u stopped reading after the runts"
print("ok: u reads on after a zero-length message", flush=True)

# Oversize: whole length in rx_bytes.
b0 = value("u", "rx_bytes")
expect("u", "oversize", 1, "d", "a 3000-byte message into u (mtu 1500)", lambda: peer.send(frame(3000)))
assert value("u", "rx_bytes") - b0 == 3000, f"u rx_bytes grew by {value('u', 'rx_bytes') - b0}, want 3000"
expect("d", "runt", 2, "u", "a 5-byte and a 0-byte datagram into d (recvmmsg)", lambda: to_d(5, 0))
b0 = value("d", "rx_bytes")
expect("d", "oversize", 1, "u", "a 10000-byte datagram into d (mtu 9000, recvmmsg)", lambda: to_d(10000))
assert value("d", "rx_bytes") - b0 == 10000, f"d rx_bytes grew by {value('d', 'rx_bytes') - b0}, want 10000"
print("ok: rx_bytes counts oversize messages whole in both modes", flush=True)

# Too big for u: d (mtu 9000) takes a 3000-byte frame, u (mtu 1500) cannot send it.
expect("u", "too_big", 1, "d", "a 3000-byte frame from d to u (mtu 1500)", lambda: to_d(3000))

# The peer stops reading: u's socket fills up.
expect("u", "tx_queue_full", 1, "d", "frames to u while its peer reads nothing",
       lambda: to_d(*[1000] * 3000), at_least=True)
