#!/usr/bin/python3
"""vhost_summary.py CSV: medians per forwarder of a vhost.sh run, and each one's ratio to the
first forwarder's (per CPU-second and plain pps)."""
import csv
import statistics
import sys

rows = list(csv.DictReader(open(sys.argv[1])))
names = list(dict.fromkeys(r["forwarder"] for r in rows))
# Rounds whose middle box did not use its quota measured idling, not a frame's cost (vhost.sh).
left_out = [r for r in rows if r.get("saturated", "1") != "1"]
rows = [r for r in rows if r.get("saturated", "1") == "1"]
for r in left_out:
    print(f"left out, not saturated: round {r['round']} {r['forwarder']} ({r['cpu']} CPU)")
med = {}
for n in names:
    mine = [r for r in rows if r["forwarder"] == n]
    if not mine:
        print(f"{n}: no saturated round")
        continue
    # Per CPU-second of the capped (forwarding) threads alone, where the CSV has it: testpmd's
    # vhost-events thread is not capped, and its CPU comes and goes between runs.
    capped = [float(r["pps"]) / float(r["cpu_capped"]) for r in mine
              if r.get("cpu_capped") and float(r["cpu_capped"]) > 0]
    med[n] = (statistics.median(float(r["pps"]) for r in mine),
              statistics.median(float(r["cpu"]) for r in mine),
              statistics.median(float(r["pps_per_cpu_s"]) for r in mine), len(mine),
              statistics.median(capped) if capped else None)
if not med:
    sys.exit("no saturated round")
names = [n for n in names if n in med]
base = med[names[0]]
print("| forwarder | rounds | median pps | CPU (of one core) | frames per CPU-second | ratio per CPU-s | ratio pps | per CPU-s of the capped threads | ratio |")
print("|---|---|---|---|---|---|---|---|---|")
for n in names:
    pps, cpu, per, k, capped = med[n]
    c = f"{capped:.0f} | {capped / base[4]:.2f}" if capped and base[4] else "- | -"
    print(f"| {n} | {k} | {pps:.0f} | {cpu:.3f} | {per:.0f} | {per / base[2]:.2f} | {pps / base[0]:.2f} | {c} |")
