#!/usr/bin/env python3
"""One line per run of listen.sh: wire → book / wire → alert p50 and p99 (µs), host hiccups."""
import glob, json, sys

d = sys.argv[1]
for f in sorted(glob.glob(f"{d}/books-*.json") + glob.glob(f"{d}/alerts-*.json")):
    r = json.load(open(f))
    e2e = r["latency"][-1]
    row = [f.split("/")[-1], f"msgs {r['messages']}", f"gaps lost {len(r['live']['lost'])}",
           f"drops {r['live']['recv']['kernel_drops']}", f"ts {r['live']['timestamps']}",
           f"wire→book p50 {e2e['p50']/1e3:.1f} p99 {e2e['p99']/1e3:.1f} max {e2e['max']/1e3:.1f}"]
    if r.get("surv"):
        a = [x for x in r["surv"]["latency"] if x["stage"] == "event to alert"][0]
        row.append(f"wire→alert n {a['count']} p50 {a['p50']/1e3:.1f} p99 {a['p99']/1e3:.1f}")
    for t in r["threads"]:
        row.append(f"[{t['name']}: hiccups {t['hiccups']} p50 {t['hiccup_p50_ns']/1e3:.1f} "
                   f"p99 {t['hiccup_p99_ns']/1e3:.1f} max {t['hiccup_max_ns']/1e3:.1f} µs, "
                   f"{t['stalls']} ≥1ms in {t['observed_ns']/1e9:.2f} s]")
    print("; ".join(row))
