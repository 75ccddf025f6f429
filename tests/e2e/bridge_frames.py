#!/usr/bin/python3
"""Frames for the bridge's end-to-end test.

bridge_frames.py send IFACE SRCMAC TAG[@VLAN]...  a broadcast frame out of IFACE for each TAG,
                                                   its payload TAG (@VLAN: 802.1Q-tagged with it)
bridge_frames.py count PCAP TAG...                 a line for each TAG: how many frames of the
                                                   capture carry it, and the VLAN of each ("-"
                                                   untagged), e.g. "1 10"
"""
import sys

from scapy.all import Dot1Q, Ether, Raw, rdpcap, sendp

ETHERTYPE = 0x88B5  # IEEE local experimental: nothing in the kernel answers it


def main():
    if sys.argv[1] == "send":
        iface, src = sys.argv[2], sys.argv[3]
        frames = []
        for arg in sys.argv[4:]:
            tag, _, vlan = arg.partition("@")
            f = Ether(dst="ff:ff:ff:ff:ff:ff", src=src)
            if vlan:
                f = f / Dot1Q(vlan=int(vlan), type=ETHERTYPE)
            else:
                f.type = ETHERTYPE
            frames.append(f / Raw(tag.encode() + b"." * 40))
        sendp(frames, iface=iface, verbose=0)
        return
    packets = [(bytes(p), str(p[Dot1Q].vlan) if Dot1Q in p else "-") for p in rdpcap(sys.argv[2])]
    for tag in sys.argv[3:]:
        vlans = [vlan for raw, vlan in packets if tag.encode() in raw]
        print(len(vlans), " ".join(vlans))

main()
