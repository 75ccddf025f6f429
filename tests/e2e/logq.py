#!/usr/bin/python3
"""Reads fdlinkd's JSON log for the end-to-end tests.

  logq.py LOG check                  every line is a JSON object with ts, level, event, msg
  logq.py LOG final LINK FIELD       FIELD of the final `stats` event of LINK (0 if absent)
  logq.py LOG queue LINK Q FIELD     FIELD of the final `queue_stats` event of LINK's fd Q
  logq.py LOG has EVENT              exit 0 if an event of that name was logged
  logq.py LOG count EVENT            how many times EVENT was logged
"""
import json
import sys


def records(path):
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            try:
                r = json.loads(line)
            except ValueError as e:
                sys.exit(f"{path}:{n}: not JSON ({e}): {line!r}")
            for k in ("ts", "level", "event", "msg"):
                if k not in r:
                    sys.exit(f"{path}:{n}: no {k!r}: {line!r}")
            out.append(r)
    return out


def main():
    path, cmd, *args = sys.argv[1:]
    recs = records(path)
    if cmd == "check":
        print(len(recs))
    elif cmd == "final":
        link, field = args
        finals = [r for r in recs if r["event"] == "stats" and r.get("final") and r.get("link") == link]
        if len(finals) != 1:
            sys.exit(f"expected one final stats event for link {link}, found {len(finals)}")
        print(finals[0].get(field, 0))
    elif cmd == "queue":
        link, q, field = args
        finals = [r for r in recs if r["event"] == "queue_stats" and r.get("final")
                  and r.get("link") == link and r.get("queue") == int(q)]
        if len(finals) != 1:
            sys.exit(f"expected one final queue_stats event for {link} queue {q}, found {len(finals)}")
        print(finals[0].get(field, 0))
    elif cmd == "has":
        sys.exit(0 if any(r["event"] == args[0] for r in recs) else 1)
    elif cmd == "count":
        print(sum(1 for r in recs if r["event"] == args[0]))
    else:
        sys.exit(f"unknown command {cmd}")


main()
