#!/usr/bin/python3
"""Frames for the bridge's end-to-end test.

bridge_frames.py send IFACE TAG SRCMAC [VLAN]   one broadcast frame out of IFACE whose payload
                                                is TAG (VLAN: 802.1Q-tagged with it)
bridge_frames.py count PCAP TAG                 prints how many frames of the capture carry TAG
                                                and the VLAN of each ("-" untagged), e.g. "1 10"
"""
import sys

from scapy.all import Dot1Q, Ether, Raw, rdpcap, sendp

ETHERTYPE = 0x88B5  # IEEE local experimental: nothing in the kernel answers it


def main():
    if sys.argv[1] == "send":
        iface, tag, src = sys.argv[2], sys.argv[3].encode(), sys.argv[4]
        f = Ether(dst="ff:ff:ff:ff:ff:ff", src=src)
        if len(sys.argv) > 5:
            f = f / Dot1Q(vlan=int(sys.argv[5]), type=ETHERTYPE)
        else:
            f.type = ETHERTYPE
        sendp(f / Raw(tag + b"." * 40), iface=iface, verbose=0)
        return
    pcap, tag = sys.argv[2], sys.argv[3].encode()
    vlans = []
    for p in rdpcap(pcap):
        if tag in bytes(p):
            vlans.append(str(p[Dot1Q].vlan) if Dot1Q in p else "-")
    print(len(vlans), " ".join(vlans))


main()
