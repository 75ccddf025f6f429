#!/usr/bin/python3
"""A NOTIFY_SOCKET listener, as systemd is: records each sd_notify message with its arrival
time (CLOCK_MONOTONIC, seconds) as one JSON line.

  notify_listener.py SOCKET_PATH OUT
"""
import json
import os
import socket
import sys
import time

path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
with open(out, "w", buffering=1) as f:
    while True:
        data = s.recv(65536)
        f.write(json.dumps({"t": time.monotonic(), "msg": data.decode(errors="replace")}) + "\n")
