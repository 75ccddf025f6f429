#!/usr/bin/python3
"""UDP GSO sender and checking receiver for the end-to-end tests.

udp_gso.py send ADDR PORT SENDS SEG   each send is one sendto() of 10 datagrams of SEG bytes
                                      with UDP_SEGMENT = SEG: the kernel keeps them as one
                                      UDP GSO super-frame as far as the device allows
udp_gso.py recv ADDR PORT SENDS SEG TIMEOUT
                                      prints "received N bad M": M datagrams whose size or
                                      contents differ from what the sender put in them
"""
import socket
import struct
import sys
import time

SOL_UDP, UDP_SEGMENT = 17, 103
PER_SEND = 10


def payload(i, j, seg):
    return struct.pack("!II", i, j) + bytes([(i * 7 + j) & 0xFF]) * (seg - 8)


def main():
    mode, addr, port, sends, seg = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    if mode == "send":
        s.setsockopt(SOL_UDP, UDP_SEGMENT, seg)
        for i in range(sends):
            s.sendto(b"".join(payload(i, j, seg) for j in range(PER_SEND)), (addr, port))
            time.sleep(0.002)
        return
    s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE: a slow reader loses nothing
    s.bind((addr, port))
    print("ready", file=sys.stderr, flush=True)  # (the sender waits for it)
    s.settimeout(float(sys.argv[6]))
    seen, bad = set(), 0
    try:
        while len(seen) < sends * PER_SEND:
            d = s.recv(65536)
            if len(d) < 8:
                bad += 1
                continue
            i, j = struct.unpack("!II", d[:8])
            if d != payload(i, j, seg):
                bad += 1
            else:
                seen.add((i, j))
    except socket.timeout:
        pass
    print("received %d bad %d" % (len(seen), bad))


main()
