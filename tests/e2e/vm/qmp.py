#!/usr/bin/env python3
"""qmp.py SOCKET COMMAND [ARGUMENTS-JSON]: runs one QMP command on a QEMU's monitor socket and
prints its answer as JSON: {"return": ...} or {"error": {"class": ..., "desc": ...}}. For
"migrate", it then waits for the migration to end and prints the last query-migrate answer
(QEMU refuses some migrations only once they start)."""
import json
import socket
import sys
import time


def main():
    path, command = sys.argv[1], sys.argv[2]
    arguments = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    for _ in range(100):
        try:
            s.connect(path)
            break
        except OSError:
            time.sleep(0.1)
    f = s.makefile("rw")

    def answer():
        while True:
            m = json.loads(f.readline())
            if "return" in m or "error" in m:
                return m

    json.loads(f.readline())  # the greeting
    f.write(json.dumps({"execute": "qmp_capabilities"}) + "\n")
    f.flush()
    answer()
    request = {"execute": command}
    if arguments is not None:
        request["arguments"] = arguments
    f.write(json.dumps(request) + "\n")
    f.flush()
    result = answer()
    if command == "migrate" and "return" in result:
        for _ in range(100):
            f.write(json.dumps({"execute": "query-migrate"}) + "\n")
            f.flush()
            result = answer()
            if result.get("return", {}).get("status") not in ("setup", "active", None):
                break
            time.sleep(0.1)
    print(json.dumps(result))


main()
