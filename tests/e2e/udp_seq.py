#!/usr/bin/python3
"""A sequence-numbered UDP stream, to count loss and reordering across something.

  udp_seq.py recv PORT OUT          counts until an END datagram (or 30 s idle); writes
                                     "received N reordered R duplicates D sent S" to OUT
  udp_seq.py send ADDR PORT PPS STOPFILE
                                     sends datagrams "SEQ n" at PPS until STOPFILE exists, then
                                     "END n" (n = how many were sent) a few times
"""
import os
import socket
import sys
import time


def recv(port, out):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE (SO_RCVBUF stops at rmem_max)
    s.bind(("0.0.0.0", port))
    print("ready", file=sys.stderr, flush=True)  # (the sender waits for it)
    s.settimeout(30)
    last, received, reordered, dups, sent = -1, 0, 0, 0, -1
    seen = set()
    while True:
        try:
            data = s.recv(2048)
        except socket.timeout:
            break
        kind, n = data.split()[:2]
        n = int(n)
        if kind == b"END":
            sent = n
            break
        if n in seen:
            dups += 1
            continue
        seen.add(n)
        received += 1
        if n < last:
            reordered += 1
        last = max(last, n)
    with open(out, "w") as f:
        f.write(f"received {received} reordered {reordered} duplicates {dups} sent {sent}\n")


def send(addr, port, pps, stopfile):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    gap = 1.0 / pps
    n = 0
    t = time.monotonic()
    pad = b"x" * 64
    while not os.path.exists(stopfile):
        s.sendto(b"SEQ %d " % n + pad, (addr, port))
        n += 1
        t += gap
        d = t - time.monotonic()
        if d > 0:
            time.sleep(d)
    time.sleep(0.2)  # the last ones arrive before END
    for _ in range(5):
        s.sendto(b"END %d" % n, (addr, port))
        time.sleep(0.05)


if __name__ == "__main__":
    if sys.argv[1] == "recv":
        recv(int(sys.argv[2]), sys.argv[3])
    else:
        send(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
