#!/usr/bin/python3
"""Writes the seed corpora of the vhost and virtq fuzz targets (tests/fuzz/corpus/<target>/):
 - vhost: a frontend's whole set-up as QEMU sends it (features, protocol features, a memory
   table, then size, addresses, base, call and kick of both queues), in the target's chunk
   format, once in one chunk per message and once cut into small writes;
 - virtq: guest memory images (rings at the GuestRig addresses) with a few chains: single
   descriptors, a chain of three, an indirect table, writable buffers for the receive side;
 - virtq_packed: the same over a packed ring (its descriptors at gpa 0), a chain across the
   ring's end among them.
The files are committed."""
import hashlib
import pathlib
import struct

root = pathlib.Path(__file__).resolve().parent / "corpus"

# --- vhost -----------------------------------------------------------------------------------
UVA = 0x7F0000000000
DESC, AVAIL, USED = 0x0, 0x1000, 0x2000
FEATURES = (1 << 32) | (1 << 15) | (1 << 28) | (1 << 29) | 1 | 2 | (1 << 11) | (1 << 12)


def msg(req, payload=b"", flags=1):
    return struct.pack("<III", req, flags, len(payload)) + payload


def u64(v):
    return struct.pack("<Q", v)


def state(i, n):
    return struct.pack("<II", i, n)


session = [
    (0, msg(1)),                                    # GET_FEATURES
    (0, msg(15)),                                   # GET_PROTOCOL_FEATURES
    (0, msg(16, u64((1 << 0) | (1 << 3) | (1 << 15)))),  # SET_PROTOCOL_FEATURES
    (0, msg(3)),                                    # SET_OWNER
    (0, msg(2, u64(FEATURES))),                     # SET_FEATURES
    (1, msg(5, struct.pack("<II", 1, 0) + struct.pack("<QQQQ", 0, 65536, UVA, 0))),  # SET_MEM_TABLE
]
for q in (0, 1):
    session += [
        (0, msg(8, state(q, 16))),                                         # SET_VRING_NUM
        (0, msg(9, struct.pack("<IIQQQQ", q, 0, UVA + DESC + q * 0x4000,   # SET_VRING_ADDR
                                UVA + USED + q * 0x4000, UVA + AVAIL + q * 0x4000, 0))),
        (0, msg(10, state(q, 0))),                                         # SET_VRING_BASE
        (5, msg(13, u64(q))),                                              # SET_VRING_CALL
        (5, msg(12, u64(q))),                                              # SET_VRING_KICK
        (0, msg(18, state(q, 1), flags=1 | 8)),                            # SET_VRING_ENABLE
    ]
session += [(0, msg(11, state(1, 0)))]  # GET_VRING_BASE


def chunks(whole, cut):
    out = b""
    for fds, m in whole:
        for k in range(0, len(m), cut):
            piece = m[k:k + cut]
            out += bytes([fds if k == 0 else 0, len(piece)]) + piece
    return out


def write(target, data):
    d = root / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


write("vhost", chunks(session, 255))
write("vhost", chunks(session, 7))
write("vhost", chunks(session[:6], 255))


# --- virtq -------------------------------------------------------------------------------------
def image(descs, heads, indirect=None):
    mem = bytearray(0x6000)
    for i, (addr, length, flags, nxt) in enumerate(descs):
        struct.pack_into("<QIHH", mem, DESC + 16 * i, addr, length, flags, nxt)
    for i, h in enumerate(heads):
        struct.pack_into("<H", mem, AVAIL + 4 + 2 * i, h)
    struct.pack_into("<H", mem, AVAIL + 2, len(heads))
    if indirect:  # (at 0x3000 or beyond: only those bytes reach the target)
        at, table = indirect
        for i, (addr, length, flags, nxt) in enumerate(table):
            struct.pack_into("<QIHH", mem, at + 16 * i, addr, length, flags, nxt)
    for k in range(0x3000, 0x6000):
        mem[k] = k & 0xFF
    # the target's input: table (4096), available ring (1024), then from 0x3000 on
    return bytes(mem[DESC:DESC + 4096] + mem[AVAIL:AVAIL + 1024] + mem[0x3000:0x3000 + 3068])


NEXT, WRITE, INDIRECT = 1, 2, 4
write("virtq", bytes([4 | 0x80, 12]) + image([(0x3000, 72, 0, 0), (0x3100, 112, 0, 0)], [0, 1]))
write("virtq", bytes([4 | 0x80 | 0x10, 12]) + image(
    [(0x3000, 5, NEXT, 1), (0x3005, 7, NEXT, 2), (0x300C, 200, 0, 0)], [0]))
write("virtq", bytes([4 | 0x80 | 0x20, 12]) + image(
    [(0x3800, 32, INDIRECT, 0)], [0], (0x3800, [(0x3000, 12, NEXT, 1), (0x300C, 80, 0, 0)])))
write("virtq", bytes([4 | 0x80 | 0x40, 40]) + image(
    [(0x3000 + 0x100 * i, 128, WRITE, 0) for i in range(8)], list(range(8))))


# --- virtq_packed ------------------------------------------------------------------------------
AVAIL_F, USED_F = 1 << 7, 1 << 15


def packed_image(descs, table=None):
    """descs: {position: (addr, len, id, flags)}; table: (at, [(addr, len, id, flags)])."""
    mem = bytearray(0x6000)
    for i, (addr, length, ident, flags) in descs.items():
        struct.pack_into("<QIHH", mem, DESC + 16 * i, addr, length, ident, flags)
    if table:
        at, entries = table
        for i, (addr, length, ident, flags) in enumerate(entries):
            struct.pack_into("<QIHH", mem, at + 16 * i, addr, length, ident, flags)
    for k in range(0x3000, 0x6000):
        if not table or not table[0] <= k < table[0] + 16 * len(table[1]):
            mem[k] = k & 0xFF
    # the target's input: ring (4096), the driver's event area (4), then from 0x3000 on
    return bytes(mem[DESC:DESC + 4096] + mem[AVAIL:AVAIL + 4] + mem[0x3000:0x3000 + 3068])


# (byte 0: size - 1; byte 1: event_idx 1, indirect 2, wrap 4, mergeable 8, 12-byte header 16,
# frame length / 200 in bits 5-7; byte 2: the starting position)
A1 = AVAIL_F  # available on a lap with wrap counter 1
write("virtq_packed", bytes([3, 4 | 16 | 32, 0]) + packed_image(
    {0: (0x3000, 72, 0, A1), 1: (0x3100, 112, 1, A1)}))
write("virtq_packed", bytes([3, 4 | 16, 2]) + packed_image(
    {2: (0x3000, 5, 7, A1 | NEXT), 3: (0x3005, 7, 7, A1 | NEXT), 0: (0x300C, 200, 7, USED_F)}))
write("virtq_packed", bytes([3, 2 | 4 | 16, 0]) + packed_image(
    {0: (0x3800, 32, 3, A1 | INDIRECT)}, (0x3800, [(0x3000, 12, 0, 0), (0x300C, 80, 0, 0)])))
write("virtq_packed", bytes([7, 4 | 8 | 16 | 32, 0]) + packed_image(
    {i: (0x3000 + 0x100 * i, 128, i, A1 | WRITE) for i in range(8)}))
