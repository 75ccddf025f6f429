#!/usr/bin/python3
"""send_frames.py IFACE COUNT [SIZE]: sends COUNT Ethernet frames of SIZE bytes (default 100)
out of IFACE with an AF_PACKET socket, numbered in their payload. Prints how many were sent."""
import socket
import struct
import sys

iface, count = sys.argv[1], int(sys.argv[2])
size = int(sys.argv[3]) if len(sys.argv) > 3 else 100
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
dst = bytes.fromhex("02fd00000002")
src = bytes.fromhex("02fd00000001")
sent = 0
for i in range(count):
    # EtherType 0x88b5 (IEEE local experimental): nothing in the kernel answers it.
    frame = dst + src + struct.pack("!HI", 0x88B5, i)
    frame += bytes(size - len(frame))
    sent += s.send(frame) == size
print(sent)
