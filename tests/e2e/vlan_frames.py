#!/usr/bin/python3
"""VLAN-tagged frames for the end-to-end tests.

vlan_frames.py send IFACE   sends the frames below, in order, out of IFACE
vlan_frames.py check PCAP   exit 0 when the capture holds exactly those frames, byte for byte,
                            in order (frames of other kinds in it are ignored)
"""
import sys

from scapy.all import Dot1AD, Dot1Q, Ether, IP, Raw, UDP, rdpcap, sendp

DST, SRC = "02:00:00:00:07:02", "02:00:00:00:07:01"


def frames():
    base = Ether(dst=DST, src=SRC)
    udp = IP(src="10.77.14.1", dst="10.77.14.2") / UDP(sport=4000, dport=4001)
    return [
        base / Dot1Q(vlan=100, prio=5) / udp / Raw(b"a" * 40),  # 802.1Q, priority set
        base / Dot1AD(vlan=7) / Dot1Q(vlan=200) / udp / Raw(b"b" * 40),  # 802.1ad QinQ
        base / Dot1Q(vlan=7) / Dot1Q(vlan=201) / udp / Raw(b"c" * 40),  # 802.1Q in 802.1Q
        base / Dot1Q(vlan=0, prio=3) / udp / Raw(b"d" * 40),  # priority-tagged, VLAN 0
        base / udp / Raw(b"e" * 40),  # untagged
        base / Dot1Q(vlan=4094) / udp / Raw(b"f" * 1472),  # tagged, full 1500-byte payload
    ]


def main():
    if sys.argv[1] == "send":
        sendp(frames(), iface=sys.argv[2], verbose=0)
        return
    want = [bytes(f) for f in frames()]
    got = [bytes(p) for p in rdpcap(sys.argv[2]) if bytes(p)[6:12] == bytes(want[0])[6:12]]
    if got != want:
        for i, (w, g) in enumerate(zip(want, got)):
            if w != g:
                print("frame %d differs: sent %s, got %s" % (i, w[:20].hex(), g[:20].hex()))
        print("sent %d frames, captured %d" % (len(want), len(got)))
        sys.exit(1)
    print("%d frames arrived byte for byte" % len(got))


main()
