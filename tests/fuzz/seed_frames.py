#!/usr/bin/python3
"""Writes the seed corpora of the frame, vlan, bridge, filter and coalesce fuzz targets
(tests/fuzz/corpus/<target>/) from a few real frames made with scapy: TCP and UDP over IPv4
and IPv6, ICMP, ARP, 802.1Q, QinQ, a VXLAN-encapsulated TCP frame, an IPv4 fragment, LLDP.
Each file is in its target's input format (see the target's comment). The files are committed."""
import pathlib
import struct

from scapy.all import (ARP, ICMP, IP, TCP, UDP, VXLAN, Dot1AD, Dot1Q, Ether, IPv6, Raw)

root = pathlib.Path(__file__).resolve().parent / "corpus"
A, B, C = "02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"
frames = {
    "tcp4": Ether(src=A, dst=B) / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40000, dport=443, flags="S"),
    "udp4": Ether(src=B, dst=A) / IP(src="10.0.0.2", dst="10.0.0.1") / UDP(sport=1500, dport=53) / Raw(b"q" * 20),
    "tcp6": Ether(src=A, dst=C) / IPv6(src="fd00::1", dst="fd00::2") / TCP(sport=1, dport=80) / Raw(b"x" * 30),
    "icmp": Ether(src=C, dst="ff:ff:ff:ff:ff:ff") / IP(src="10.0.0.3", dst="10.0.0.255") / ICMP(),
    "arp": Ether(src=A, dst="ff:ff:ff:ff:ff:ff") / ARP(hwsrc=A, psrc="10.0.0.1", pdst="10.0.0.2"),
    "vlan10": Ether(src=A, dst=B) / Dot1Q(vlan=10, prio=5) / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(dport=80),
    "vlan20": Ether(src=C, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=20) / ARP(psrc="10.0.1.3"),
    "qinq": Ether(src=B, dst=A) / Dot1AD(vlan=100) / Dot1Q(vlan=20) / IP() / UDP(dport=4000),
    "vxlan": Ether(src=A, dst=B) / IP(src="192.168.0.1", dst="192.168.0.2") / UDP(sport=5555, dport=4789)
             / VXLAN(vni=42) / Ether(src=C, dst=A) / IP(src="10.1.0.1", dst="10.1.0.2") / TCP(dport=22) / Raw(b"y" * 40),
    "frag": Ether(src=A, dst=B) / IP(src="10.0.0.1", dst="10.0.0.2", flags="MF", frag=0, proto=17) / Raw(b"z" * 64),
    "lldp": Ether(src=A, dst="01:80:c2:00:00:0e", type=0x88CC) / Raw(b"\x02\x07\x04" + b"\x00" * 40),
}
raw = {k: bytes(v) for k, v in frames.items()}
zero_hdr = bytes(10)
gso_hdr = struct.pack("<BBHHHH", 1, 1, 54, 1448, 34, 16)  # NEEDS_CSUM, TCPv4, hdr_len, gso_size, csum


def write(target, name, data):
    d = root / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


for n, (name, f) in enumerate(raw.items()):
    for pick in (0, 2, 6, 9):
        write("frame", f"{name}-{pick}", bytes([pick]) + (gso_hdr if pick == 6 and name == "tcp4" else zero_hdr) + f)
    write("vlan", f"{name}", bytes([0, 0x20, 0x0A]) + f)
    write("vlan", f"{name}-ad-vnet", bytes([3, 0x00, 0x64]) + gso_hdr + f)
    write("filter", name, bytes([n % 12, len(f)]) + f)

# Bridge: a conversation over four ports: a broadcast, an answer, a unicast, a MAC moving, tags.
def rec(port, f):
    return bytes([port, len(f)]) + f

conv = rec(0, raw["arp"]) + rec(1, raw["udp4"]) + rec(0, raw["tcp4"]) + rec(2, raw["icmp"]) + rec(3, raw["tcp4"])
for choice in (0, 1, 2):
    write("bridge", f"conversation-{choice}", bytes([choice]) + conv)
write("bridge", "vlans", bytes([1]) + rec(3, raw["vlan10"]) + rec(3, raw["vlan20"]) + rec(0, raw["udp4"]) + rec(2, raw["arp"]))
write("bridge", "reserved", bytes([0]) + rec(1, raw["lldp"]) + rec(2, raw["qinq"]))
for i in range(12):
    write("filter", f"all-{i}", bytes([i]) + b"".join(bytes([len(f)]) + f for f in list(raw.values())[:8]))
# coalesce: [flags][u16 length][frame]...: runs of TCP segments of one flow (IPv4 and IPv6,
# with timestamps), a second flow between them, a PSH at the end.
def seg(v6, seq, n, flags="A", sport=40000):
    ip = IPv6(src="fd00::1", dst="fd00::2") if v6 else IP(src="10.0.0.1", dst="10.0.0.2", flags="DF")
    return bytes(Ether(src=A, dst=B) / ip / TCP(sport=sport, dport=5201, seq=seq, ack=1, flags=flags,
                                                 options=[("NOP", None), ("NOP", None), ("Timestamp", (1, 2))])
                 / Raw(bytes((seq + i) & 0xFF for i in range(n))))
def rec16(f):
    return struct.pack(">H", len(f)) + f
for v6 in (False, True):
    run = [seg(v6, 1000 * i, 1000) for i in range(5)] + [seg(v6, 5000, 300, "PA")]
    mixed = [seg(v6, 0, 500), seg(v6, 0, 500, sport=1), seg(v6, 500, 500), seg(v6, 1000, 500, "FA")]
    for flags in (0, 1, 2):
        write("coalesce", f"run{'6' if v6 else '4'}-{flags}", bytes([flags]) + b"".join(rec16(f) for f in run))
        write("coalesce", f"mixed{'6' if v6 else '4'}-{flags}", bytes([flags]) + b"".join(rec16(f) for f in mixed))
print("seed_frames: written under", root)
