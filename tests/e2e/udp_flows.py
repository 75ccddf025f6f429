#!/usr/bin/python3
"""Sequence-numbered UDP flows, to check that a forwarder loses nothing and keeps every flow
in order.

  udp_flows.py recv PORT FLOWS COUNT TIMEOUT   prints one JSON line: received, lost, reordered
  udp_flows.py send ADDR PORT FLOWS COUNT PPS  sends COUNT datagrams on each of FLOWS flows
                                               (source ports 20000+i), interleaved, at PPS

Each datagram carries (flow, seq). The receiver counts a datagram as reordered when its seq is
lower than the highest seq already seen on its flow."""
import json
import socket
import struct
import sys
import time


def recv(port, flows, count, timeout):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE
    s.bind(("0.0.0.0", port))
    print("ready", file=sys.stderr, flush=True)
    highest = [-1] * flows
    got = [0] * flows
    reordered = 0
    dup = 0
    seen = [bytearray(count) for _ in range(flows)]
    s.settimeout(timeout)
    total = flows * count
    n = 0
    try:
        while n < total:
            data = s.recv(2048)
            flow, seq = struct.unpack_from("!II", data)
            if seen[flow][seq]:
                dup += 1
                continue
            seen[flow][seq] = 1
            n += 1
            got[flow] += 1
            if seq < highest[flow]:
                reordered += 1
            else:
                highest[flow] = seq
    except socket.timeout:
        pass
    print(json.dumps({"received": n, "expected": total, "lost": total - n,
                      "reordered": reordered, "duplicates": dup, "per_flow": got}))


def send(addr, port, flows, count, pps, size=200):
    socks = []
    for i in range(flows):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", 20000 + i))
        s.connect((addr, port))
        socks.append(s)
    pad = bytes(size - 8)
    burst = 64
    start = time.monotonic()
    sent = 0
    for seq in range(count):
        for i, s in enumerate(socks):
            s.send(struct.pack("!II", i, seq) + pad)
            sent += 1
            if sent % burst == 0:  # pace: stay at `pps` on average
                ahead = sent / pps - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)
    print(sent)


if sys.argv[1] == "recv":
    recv(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
else:
    send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
