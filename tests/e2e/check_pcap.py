#!/usr/bin/python3
"""check_pcap.py PCAP MAXLEN [partial-ok]: every TCP frame in PCAP must have correct IPv4 header
and TCP checksums (recomputed by scapy) and, when MAXLEN > 0, be at most MAXLEN bytes. Prints
counts; exits 1 on any failure. With MAXLEN < 0, prints the largest frame only.

partial-ok: a frame handed to a TAP with NEEDS_CSUM (checksum offload) legitimately carries a
partial checksum: exactly the folded pseudo-header sum for its length. Such frames are counted
as partial, not bad; any other wrong checksum is still bad."""
import sys

from scapy.all import IP, IPv6, TCP, rdpcap

path, maxlen = sys.argv[1], int(sys.argv[2])
partial_ok = len(sys.argv) > 3 and sys.argv[3] == "partial-ok"


def pseudo_sum(p):
    """Folded (not complemented) pseudo-header sum of p's TCP segment: a partial checksum."""
    l4 = bytes(p[TCP])
    if IP in p:
        src, dst = bytes(p[IP])[12:16], bytes(p[IP])[16:20]
        l4 = bytes(p[IP])[p[IP].ihl * 4:p[IP].len]
    else:
        src, dst = bytes(p[IPv6])[8:24], bytes(p[IPv6])[24:40]
    b = src + dst + bytes([0, 6]) + len(l4).to_bytes(2, "big")
    s = sum(int.from_bytes(b[i:i + 2], "big") for i in range(0, len(b), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s
frames = rdpcap(path)
tcp = [p for p in frames if TCP in p]
largest = max((len(p) for p in tcp), default=0)
if maxlen < 0:
    print(largest)
    sys.exit(0)
bad_csum = too_big = partial = 0
for p in tcp:
    if maxlen and len(p) > maxlen:
        too_big += 1
    got = p[TCP].chksum
    q = p.copy()
    del q[TCP].chksum
    if IP in q:
        ip_got = p[IP].chksum
        del q[IP].chksum
    q = q.__class__(bytes(q))
    if IP in q and q[IP].chksum != ip_got:
        bad_csum += 1
    elif q[TCP].chksum != got:
        if partial_ok and got == pseudo_sum(p):
            partial += 1
        else:
            bad_csum += 1
print(f"{len(tcp)} TCP frames, largest {largest} B, {bad_csum} bad checksums, "
      f"{partial} partial (offloaded), {too_big} over {maxlen} B")
sys.exit(1 if (bad_csum or too_big or not tcp) else 0)
