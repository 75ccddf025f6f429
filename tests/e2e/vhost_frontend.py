#!/usr/bin/env python3
"""vhost_frontend.py SOCKET FDLINKCTL CTL: a vhost-user frontend written from the protocol
(QEMU's docs/interop/vhost-user.rst), as a guest's virtio-net driver and QEMU together would
be, to test fdlinkd's vhost_user link without a VM: first well-behaved, then hostile.

Guest memory is a 1 MiB memfd. Queue 0 (the guest's receive queue) and queue 1 (its transmit
queue) are split rings of 256 at fixed guest addresses; features VERSION_1 only (a 12-byte
virtio-net header, no mergeable buffers, no event index).

  good:    the frontend sends an ICMP echo request to 10.77.8.1 (h1, behind the link) and
           must find h1's echo reply in its receive queue;
  hostile: each case on a new connection; fdlinkd must close the connection and count the
           reset under its name (fdlinkctl stats: the link's "events"), the daemon going on:
             bad_address      a descriptor past the end of the memory
             bad_address      a length that runs past the end (the address is fine)
             chain_loop       two descriptors that point at each other
             bad_descriptor   a next index past the table
             bad_head         an available entry past the table
             bad_avail_index  the available index 1000 ahead of the device
             wrong_direction  a device-writable descriptor in the transmit queue
             bad_indirect     an indirect descriptor that was not negotiated
             memory_fault     the memfd truncated under the buffers
             bad_message      SET_VRING_KICK before the memory table and the ring's
                              addresses (out of order),
                              SET_VRING_NUM cut short (4 bytes), a header claiming 100000
                              bytes, an unknown request
           then a good frontend again: the echo request must be answered.
Prints one line per case; exits 1 on the first failure."""
import json
import mmap
import os
import select
import socket
import struct
import subprocess
import sys
import time

SOCK, FDLINKCTL, CTL = sys.argv[1:4]
MEM = 1 << 20
UVA = 0x7F0000000000  # the frontend's "own" address of guest address 0 (any value will do)
QSIZE = 256
RINGS = {0: (0x0000, 0x1000, 0x2000), 1: (0x4000, 0x5000, 0x6000)}  # desc, avail, used
RXBUF, TXBUF = 0x10000, 0x90000  # 2 KiB buffers
VERSION_1 = 1 << 32
GET_FEATURES, SET_FEATURES, SET_OWNER, SET_MEM_TABLE = 1, 2, 3, 5
SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE, SET_VRING_KICK, SET_VRING_CALL = 8, 9, 10, 12, 13
NEXT, WRITE, INDIRECT = 1, 2, 4
GUEST_MAC, H1_MAC_ANY = bytes.fromhex("02fd00000802"), b"\xff" * 6


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def events():
    out = subprocess.run([FDLINKCTL, "-s", CTL, "stats", "--json"], capture_output=True, check=True)
    link = [l for l in json.loads(out.stdout)["links"] if l["name"] == "vm"][0]
    return link.get("events", {})


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def echo_request(seq):
    payload = b"fdlinkd-vhost-%04d" % seq
    icmp = struct.pack("!BBHHH", 8, 0, 0, 0x4242, seq) + payload
    icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), seq, 0, 64, 1, 0,
                     socket.inet_aton("10.77.8.2"), socket.inet_aton("10.77.8.1"))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return H1_MAC_ANY + GUEST_MAC + b"\x08\x00" + ip + icmp


class Frontend:
    def __init__(self):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(SOCK)
        self.memfd = os.memfd_create("guest", os.MFD_CLOEXEC)
        os.ftruncate(self.memfd, MEM)
        self.mem = mmap.mmap(self.memfd, MEM)
        self.kick = {q: os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC) for q in RINGS}
        self.call = {q: os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC) for q in RINGS}
        self.avail_idx = {0: 0, 1: 0}
        self.used_seen = {0: 0, 1: 0}

    def close(self):
        self.s.close()
        for fd in list(self.kick.values()) + list(self.call.values()) + [self.memfd]:
            os.close(fd)
        self.mem.close()

    def send(self, req, payload=b"", fds=(), size=None):
        hdr = struct.pack("<III", req, 1, len(payload) if size is None else size)
        if fds:
            self.s.sendmsg([hdr + payload], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                              struct.pack("%di" % len(fds), *fds))])
        else:
            self.s.sendall(hdr + payload)

    def reply(self):
        hdr = self.s.recv(12, socket.MSG_WAITALL)
        if len(hdr) < 12:
            fail("fdlinkd closed the connection during set-up")
        _, _, size = struct.unpack("<III", hdr)
        return self.s.recv(size, socket.MSG_WAITALL)

    def setup(self, upto=None):
        self.send(GET_FEATURES)
        offered = struct.unpack("<Q", self.reply())[0]
        if not offered & VERSION_1:
            fail("fdlinkd does not offer VERSION_1: %#x" % offered)
        self.send(SET_FEATURES, struct.pack("<Q", VERSION_1))
        self.send(SET_OWNER)
        self.send(SET_MEM_TABLE, struct.pack("<II", 1, 0) + struct.pack("<QQQQ", 0, MEM, UVA, 0),
                  [self.memfd])
        for q, (desc, avail, used) in RINGS.items():
            self.send(SET_VRING_NUM, struct.pack("<II", q, QSIZE))
            self.send(SET_VRING_ADDR, struct.pack("<IIQQQQ", q, 0, UVA + desc, UVA + used,
                                                  UVA + avail, 0))
            self.send(SET_VRING_BASE, struct.pack("<II", q, 0))
            self.send(SET_VRING_CALL, struct.pack("<Q", q), [self.call[q]])
            self.send(SET_VRING_KICK, struct.pack("<Q", q), [self.kick[q]])
        # A request with a reply: fdlinkd handles messages in order, so once it answers, the
        # set-up above is done (before a test truncates the memfd, say).
        self.send(GET_FEATURES)
        self.reply()
        # The receive queue gets every buffer at once.
        for i in range(QSIZE):
            self.desc(0, i, RXBUF + 2048 * i, 2048, WRITE)
            self.offer(0, i)
        self.kick_queue(0)

    def desc(self, q, i, addr, length, flags=0, nxt=0):
        struct.pack_into("<QIHH", self.mem, RINGS[q][0] + 16 * i, addr, length, flags, nxt)

    def offer(self, q, head):
        avail = RINGS[q][1]
        struct.pack_into("<H", self.mem, avail + 4 + 2 * (self.avail_idx[q] % QSIZE), head)
        self.avail_idx[q] = (self.avail_idx[q] + 1) & 0xFFFF
        struct.pack_into("<H", self.mem, avail + 2, self.avail_idx[q])

    def kick_queue(self, q):
        os.eventfd_write(self.kick[q], 1)

    def transmit(self, frame, head=0):
        """Sends `frame` (a 12-byte header of zeros first) in one descriptor."""
        self.mem[TXBUF:TXBUF + 12 + len(frame)] = bytes(12) + frame
        self.desc(1, head, TXBUF, 12 + len(frame))
        self.offer(1, head)
        self.kick_queue(1)

    def used_idx(self, q):
        return struct.unpack_from("<H", self.mem, RINGS[q][2] + 2)[0]

    def received(self, timeout):
        """Frames fdlinkd put into the receive queue within `timeout` s, headers dropped."""
        frames, end = [], time.time() + timeout
        while time.time() < end:
            while self.used_seen[0] != self.used_idx(0):
                at = RINGS[0][2] + 4 + 8 * (self.used_seen[0] % QSIZE)
                head, length = struct.unpack_from("<II", self.mem, at)
                buf = RXBUF + 2048 * head
                frames.append(bytes(self.mem[buf + 12:buf + length]))
                self.used_seen[0] = (self.used_seen[0] + 1) & 0xFFFF
            if frames:
                return frames
            select.select([self.call[0]], [], [], 0.05)
        return frames

    def closed_by_fdlinkd(self, timeout=5):
        self.s.settimeout(timeout)
        try:
            while True:
                if self.s.recv(4096) == b"":
                    return True
        except (socket.timeout, ConnectionResetError):
            return False


def echo_through(tag):
    f = Frontend()
    f.setup()
    for seq in range(1, 4):
        f.transmit(echo_request(seq), head=seq % QSIZE)
        replies = [x for x in f.received(3) if len(x) > 34 and x[12:14] == b"\x08\x00" and x[23] == 1]
        ok = any(x[34] == 0 and x[38:40] == b"\x42\x42" for x in replies)
        if ok:
            print("ok: %s: h1's echo reply arrived in the frontend's receive queue (try %d)" % (tag, seq))
            f.close()
            return
    fail("%s: no echo reply from h1 in the receive queue" % tag)


def hostile(name, expect, spoil, after_setup=True):
    before = events().get("reset_" + expect, 0)
    f = Frontend()
    if after_setup:
        f.setup()
    spoil(f)
    if not f.closed_by_fdlinkd():
        fail("%s: fdlinkd did not reset the connection" % name)
    for _ in range(50):
        now = events().get("reset_" + expect, 0)
        if now == before + 1:
            break
        time.sleep(0.1)
    else:
        fail("%s: reset_%s went from %d to %d, not +1" % (name, expect, before, now))
    f.close()
    print("ok: %s: reset, reset_%s %d -> %d" % (name, expect, before, now))


def tx_chain(*descs, head=0, extra=None):
    def spoil(f):
        for i, d in enumerate(descs):
            f.desc(1, i, *d)
        if extra:
            extra(f)
        f.offer(1, head)
        f.kick_queue(1)
    return spoil


def raw(*messages):
    def spoil(f):
        for m in messages:
            f.s.sendall(m)
    return spoil


echo_through("a good frontend")
hostile("a descriptor past the end of memory", "bad_address", tx_chain((MEM + 4096, 64)))
hostile("a length past the end of memory", "bad_address", tx_chain((MEM - 100, 200)))
hostile("a chain that loops", "chain_loop", tx_chain((TXBUF, 64, NEXT, 1), (TXBUF, 64, NEXT, 0)))
hostile("a next index past the table", "bad_descriptor", tx_chain((TXBUF, 64, NEXT, 300)))
hostile("an available entry past the table", "bad_head", tx_chain(head=999))


def jump(f):
    struct.pack_into("<H", f.mem, RINGS[1][1] + 2, 1000)
    f.kick_queue(1)


hostile("the available index 1000 ahead", "bad_avail_index", jump)
hostile("a device-writable descriptor to send", "wrong_direction", tx_chain((TXBUF, 64, WRITE)))
hostile("an indirect descriptor not negotiated", "bad_indirect", tx_chain((TXBUF, 64, INDIRECT)))
hostile("the memfd truncated under the buffers", "memory_fault",
        tx_chain((TXBUF, 64), extra=lambda f: os.ftruncate(f.memfd, 0x10000)))


def out_of_order(f):
    # (a ring of size 0 may be kicked: DPDK's virtio-user does so for a queue it leaves unused;
    # a ring with a size but no memory and no addresses may not)
    f.send(SET_OWNER)
    f.send(SET_VRING_NUM, struct.pack("<II", 1, QSIZE))
    f.send(SET_VRING_KICK, struct.pack("<Q", 1), [f.kick[1]])


hostile("SET_VRING_KICK before the memory and the ring's addresses", "bad_message", out_of_order,
        after_setup=False)
hostile("SET_VRING_NUM cut short", "bad_message",
        raw(struct.pack("<III", SET_VRING_NUM, 1, 4) + b"\0\0\0\0"), after_setup=False)
hostile("a header claiming 100000 bytes", "bad_message",
        raw(struct.pack("<III", SET_MEM_TABLE, 1, 100000)), after_setup=False)
hostile("an unknown request", "bad_message", raw(struct.pack("<III", 77, 1, 0)), after_setup=False)
echo_through("a good frontend after 13 hostile ones")
