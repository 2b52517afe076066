#!/usr/bin/env python3
"""Checkpoint cost (PERF.md, issue 15): size and stall per checkpoint, throughput with a
checkpoint every second against none (median of 5, alternating), and time to resume (restore +
catch up) against replaying from the start.

usage: perf/ckpt.py TICKWATCH FEED WORKDIR  (FEED: gen --messages 6000000 --symbols 8000
--live-orders 2000000 --seed 1 --session 30m --scenarios spoofing,layering,stuffing,ignition,close,wash)
"""
import json, os, shutil, statistics, subprocess, sys, time

tw, feed, work = sys.argv[1:4]
os.makedirs(work, exist_ok=True)
base = [tw, "run", feed, "--workers", "2", "--timing", "e2e", "--json"]


def run(extra, alerts):
    t0 = time.monotonic()
    p = subprocess.run(base + ["--alerts", alerts] + extra, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(p.stderr)
    return json.loads(p.stdout), wall, p.stderr


def ms(ns):
    return ns / 1e6


ref = os.path.join(work, "ref.jsonl")
r, wall, _ = run([], ref)
rate = r["messages_per_s"]
every = str(int(rate))  # ≈ one checkpoint per second of run time
print(f"feed {feed}: {r['messages']} messages, {r['live_orders']} live orders at end")
print(f"calibration: {rate/1e6:.2f} M msg/s -> --checkpoint-every {every} (messages)")

rows = {"none": [], "every 1 s": []}
ck = None
for i in range(5):
    for name in rows:
        a = os.path.join(work, f"{name[:4]}.jsonl")
        d = os.path.join(work, "D")
        extra = [] if name == "none" else ["--checkpoint-dir", d, "--checkpoint-every", every]
        r, wall, _ = run(extra, a)
        rows[name].append((r["messages_per_s"], wall))
        if name != "none":
            ck = r["checkpoints"]
            assert open(a, "rb").read() == open(ref, "rb").read(), "alerts differ"
for name, v in rows.items():
    mps = statistics.median(x[0] for x in v) / 1e6
    w = statistics.median(x[1] for x in v)
    print(f"{name:>10}: median {mps:.2f} M msg/s (runs {', '.join(f'{x[0]/1e6:.2f}' for x in v)}), wall {w:.2f} s")
print(f"last run: {ck['written']} checkpoints, {ck['bytes']/1e6:.1f} MB each (last)")
ws, os_ = ck["worker_stall_ns"], ck["output_stall_ns"]
print(f"worker stall per checkpoint: median {ms(statistics.median(ws)):.1f} ms, max {ms(max(ws)):.1f} ms (n={len(ws)})")
print(f"output stall per checkpoint: median {ms(statistics.median(os_)):.1f} ms, max {ms(max(os_)):.1f} ms (n={len(os_)})")
for d in os.listdir(os.path.join(work, "D")):
    p = os.path.join(work, "D", d)
    print(d, {f: os.path.getsize(os.path.join(p, f)) for f in sorted(os.listdir(p))})

# Resume: checkpoints every 40 % of the feed, so the newest is at 80 %; resume from it.
d = os.path.join(work, "R")
a = os.path.join(work, "resume.jsonl")
n = r["messages"]
k = ["--checkpoint-every", str(int(n * 0.4))]
run(["--checkpoint-dir", d] + k, a)
m = json.load(open(os.path.join(d, sorted(os.listdir(d))[-1], "manifest.json")))
full = []
res = []
for i in range(3):
    _, w, _ = run([], os.path.join(work, "full.jsonl"))
    full.append(w)
    shutil.copy(a, a + ".copy")
    _, w, err = run(["--resume", d] + k, a + ".copy")
    res.append(w)
    assert open(a + ".copy", "rb").read() == open(ref, "rb").read(), "resumed alerts differ"
print(f"resume from checkpoint {m['checkpoint']} at message {m['input']['message']} of {n} "
      f"({100*m['input']['message']/n:.0f} %): wall median {statistics.median(res):.2f} s "
      f"(runs {', '.join(f'{x:.2f}' for x in res)}) vs replay from the start {statistics.median(full):.2f} s "
      f"(runs {', '.join(f'{x:.2f}' for x in full)})")
