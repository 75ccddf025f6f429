#!/usr/bin/python3
"""A stand-in for journald's native socket: receives sd_journal_send datagrams and writes each
entry as one JSON object per line (field -> value), parsed per the native protocol
(systemd's "Native Journal Protocol": KEY=VALUE lines, or KEY, a little-endian 64-bit length
and the raw value for values with newlines).

  journal_listener.py SOCKET_PATH OUT
"""
import json
import socket
import struct
import sys


def parse(data):
    entry, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:
            k = line
            (n,) = struct.unpack("<Q", data[nl + 1:nl + 9])
            v = data[nl + 9:nl + 9 + n]
            assert data[nl + 9 + n:nl + 10 + n] == b"\n", "binary field not ended by newline"
            i = nl + 10 + n
        k = k.decode()
        assert k and (k[0].isupper() or k[0] == "_") and all(c.isupper() or c.isdigit() or c == "_" for c in k), k
        entry[k] = v.decode(errors="replace")
    return entry


path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
with open(out, "w", buffering=1) as f:
    while True:
        f.write(json.dumps(parse(s.recv(1 << 20))) + "\n")
