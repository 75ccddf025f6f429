#!/usr/bin/python3
"""stream_slow_peer.py SOCKET OUT: connects to fdlinkd's stream socket with a 4 KiB receive
buffer, reads nothing for 1.5 s (fdlinkd's writes are cut short), then reads everything and
checks the framing. Writes "<whole frames> <bad lengths> <bytes left over>" to OUT."""
import socket
import struct
import sys
import time

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(sys.argv[1])
print("connected", flush=True)
time.sleep(1.5)
s.settimeout(1.0)
buf, n, bad = b"", 0, 0
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        buf += d
        while len(buf) >= 4:
            length = struct.unpack("!I", buf[:4])[0]
            if length == 0 or length > 1518:
                bad += 1
                buf = b""
                break
            if len(buf) < 4 + length:
                break
            n += 1
            buf = buf[4 + length:]
except socket.timeout:
    pass
open(sys.argv[2], "w").write(f"{n} {bad} {len(buf)}\n")
