#!/usr/bin/env python3
"""Medians of ceiling.sh's and drain.sh's outputs: summary.py DIR (sweep/, drain-ab/*/, drain-record/)."""
import glob, json, os, statistics, sys

d = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
load = lambda f: open(f).read().split("load average:")[1].split(",")[0].strip()
med = statistics.median

print("sweep: send --blast=RATE into run --listen (A/B on lo)")
by = {}
for f in sorted(glob.glob(f"{d}/sweep/run-*-?.json")):
    rate = f.split("/")[-1].split("-")[1]
    r, s = json.load(open(f)), json.load(open(f[:-5] + ".send.json"))["blast"]
    l = r["live"]
    lost = sum(g["last"] - g["first"] + 1 for g in l["lost"])
    by.setdefault(rate, []).append((s["rate_per_line"], s["late_batches"], s["datagrams"],
                                    l["recv"]["datagrams"], l["recv"]["kernel_drops"], lost, load(f[:-5] + ".load")))
for rate, v in by.items():
    print(f"  asked {rate or 'max'}/line: achieved {[round(x[0]) for x in v]} (median {med(x[0] for x in v):.0f}),"
          f" late batches {[x[1] for x in v]}, sent {v[0][2]}, received {[x[3] for x in v]},"
          f" kernel drops {[x[4] for x in v]}, lost {[x[5] for x in v]}, load {[x[6] for x in v]}")

for variant in sorted(glob.glob(f"{d}/drain-ab/*/")):
    runs = sorted(glob.glob(f"{variant}r*.json"))
    rows = []
    for f in runs:
        r = json.load(open(f))
        rd = r["live"]["reader"]
        rows.append((rd["cpu_ns"] / 1e9, rd["wall_ns"] / 1e9, rd["datagrams"], r["live"]["recv"]["kernel_drops"],
                     len(r["live"]["lost"]), load(f[:-5] + ".load")))
    cpu, wall = med(x[0] for x in rows), med(x[1] for x in rows)
    n = rows[0][2]
    print(f"drain run --listen {os.path.basename(variant.rstrip('/'))}: {n} datagrams; reader CPU {[round(x[0], 3) for x in rows]} s"
          f" (median {cpu:.3f}: {n / cpu:,.0f} datagrams per CPU-second, {cpu / n * 1e9:.0f} ns each);"
          f" wall {[round(x[1], 2) for x in rows]} s (median {n / wall:,.0f}/s); drops {[x[3] for x in rows]},"
          f" lost ranges {[x[4] for x in rows]}, load {[x[5] for x in rows]}")

rows = []
for f in sorted(glob.glob(f"{d}/drain-record/*.json")):
    if f.endswith(".send.json"):
        continue
    r = json.load(open(f))
    ns = int(open(f[:-5] + ".ns").read())
    rows.append((r["packets"], ns / 1e9, r["kernel_drops"], load(f[:-5] + ".load")))
if rows:
    w = med(x[1] for x in rows)
    print(f"drain record: {rows[0][0]} datagrams; SIGCONT → exit {[round(x[1], 3) for x in rows]} s"
          f" (median {rows[0][0] / w:,.0f}/s); drops {[x[2] for x in rows]}, load {[x[3] for x in rows]}")
