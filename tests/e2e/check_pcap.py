#!/usr/bin/python3
"""check_pcap.py PCAP MAXLEN: every TCP frame in PCAP must have correct IPv4 header and TCP
checksums (recomputed by scapy) and, when MAXLEN > 0, be at most MAXLEN bytes. Prints counts;
exits 1 on the first kind of failure found. With MAXLEN < 0, prints the largest frame only."""
import sys

from scapy.all import IP, IPv6, TCP, rdpcap

path, maxlen = sys.argv[1], int(sys.argv[2])
frames = rdpcap(path)
tcp = [p for p in frames if TCP in p]
largest = max((len(p) for p in tcp), default=0)
if maxlen < 0:
    print(largest)
    sys.exit(0)
bad_csum = too_big = 0
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
    if q[TCP].chksum != got or (IP in q and q[IP].chksum != ip_got):
        bad_csum += 1
print(f"{len(tcp)} TCP frames, largest {largest} B, {bad_csum} bad checksums, {too_big} over {maxlen} B")
sys.exit(1 if (bad_csum or too_big or not tcp) else 0)
