#!/usr/bin/python3
"""unix_peer.py SOCKET IP MAC [COUNT_FILE] [seqpacket|stream|stream-listen]: a tiny host on the
far side of a unix link. It answers ARP requests and ICMP echo requests for IP with Ethernet
frames from MAC. seqpacket (default): it connects to fdlinkd's socket, one frame per message.
stream: it connects, and frames go as QEMU's -netdev stream sends them (a 32-bit big-endian
length, then the frame); stream-listen: the same, but it listens on SOCKET and fdlinkd connects.
On SIGTERM it writes "<frames received> <frames sent>" to COUNT_FILE."""
import signal
import socket
import struct
import sys

path, my_ip, my_mac = sys.argv[1], socket.inet_aton(sys.argv[2]), bytes.fromhex(sys.argv[3].replace(":", ""))
count_file = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else None
kind = sys.argv[5] if len(sys.argv) > 5 else "seqpacket"
rx = tx = 0


def done(*_):
    if count_file:
        with open(count_file, "w") as f:
            f.write(f"{rx} {tx}\n")
    sys.exit(0)


signal.signal(signal.SIGTERM, done)


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def reply(frame):
    dst, src, etype = frame[0:6], frame[6:12], struct.unpack("!H", frame[12:14])[0]
    if etype == 0x0806 and len(frame) >= 42:  # ARP request for my_ip
        op = struct.unpack("!H", frame[20:22])[0]
        sha, spa, tpa = frame[22:28], frame[28:32], frame[38:42]
        if op == 1 and tpa == my_ip:
            arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + my_mac + my_ip + sha + spa
            return src + my_mac + b"\x08\x06" + arp
    if etype == 0x0800 and len(frame) >= 34:  # IPv4
        ihl = (frame[14] & 0x0F) * 4
        ip = frame[14:14 + ihl]
        total = struct.unpack("!H", ip[2:4])[0]
        if ip[9] == 1 and ip[16:20] == my_ip:  # ICMP to me
            icmp = bytearray(frame[14 + ihl:14 + total])
            if icmp[0] == 8:  # echo request
                icmp[0] = 0
                icmp[2:4] = b"\0\0"
                icmp[2:4] = struct.pack("!H", csum(bytes(icmp)))
                hdr = bytearray(ip)
                hdr[12:16], hdr[16:20] = ip[16:20], ip[12:16]
                hdr[8] = 64
                hdr[10:12] = b"\0\0"
                hdr[10:12] = struct.pack("!H", csum(bytes(hdr)))
                return src + my_mac + b"\x08\x00" + bytes(hdr) + bytes(icmp)
    return None


if kind == "seqpacket":
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    print("connected", flush=True)
    while True:
        frame = s.recv(65536)
        if not frame:
            done()
        rx += 1
        out = reply(frame)
        if out:
            s.send(out)
            tx += 1

if kind == "stream-listen":
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(path)
    ls.listen(1)
    print("listening", flush=True)
    s, _ = ls.accept()
else:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
print("connected", flush=True)
buf = b""
while True:
    data = s.recv(65536)
    if not data:
        done()
    buf += data
    while len(buf) >= 4:
        n = struct.unpack("!I", buf[:4])[0]
        if len(buf) < 4 + n:
            break
        frame, buf = buf[4:4 + n], buf[4 + n:]
        rx += 1
        out = reply(frame)
        if out:
            s.sendall(struct.pack("!I", len(out)) + out)
            tx += 1
