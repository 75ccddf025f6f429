#!/usr/bin/python3
"""unix_peer.py SOCKET IP MAC [COUNT_FILE]: a tiny host on the far side of a unix seqpacket
link. It connects to fdlinkd's socket and answers ARP requests and ICMP echo requests for IP
with Ethernet frames from MAC, one frame per message. On SIGTERM it writes
"<frames received> <frames sent>" to COUNT_FILE."""
import signal
import socket
import struct
import sys

path, my_ip, my_mac = sys.argv[1], socket.inet_aton(sys.argv[2]), bytes.fromhex(sys.argv[3].replace(":", ""))
count_file = sys.argv[4] if len(sys.argv) > 4 else None
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
