#!/usr/bin/env python3
"""Worker and output stall per checkpoint (PERF.md, issue 15): N runs of FEED with 2 workers and
a checkpoint every K messages, each run's stalls, then the medians over all checkpoints.
usage: perf/ckpt_stall.py TICKWATCH FEED N K  (FEED as in perf/ckpt.py; K = 1500000 gives 4)"""
import json, shutil, statistics, subprocess, sys, tempfile
tw, feed, n, k = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
work = tempfile.mkdtemp(prefix="ckpt-stall-")
ws, os_, rates = [], [], []
for i in range(n):
    shutil.rmtree(work + "/S", ignore_errors=True)
    p = subprocess.run([tw, "run", feed, "--workers", "2", "--timing", "e2e", "--json", "--alerts",
                        work + "/s.jsonl", "--checkpoint-dir", work + "/S", "--checkpoint-every", k],
                       capture_output=True, text=True, check=True)
    r = json.loads(p.stdout)
    c = r["checkpoints"]
    ws += c["worker_stall_ns"]; os_ += c["output_stall_ns"]; rates.append(r["messages_per_s"])
    print(f"run {i}: {c['written']} checkpoints, {c['bytes']/1e6:.1f} MB; worker stall ms {[round(x/1e6) for x in c['worker_stall_ns']]}, output {[round(x/1e6) for x in c['output_stall_ns']]}, {r['messages_per_s']/1e6:.2f} M msg/s", flush=True)
print(f"worker stall: median {statistics.median(ws)/1e6:.0f} ms, max {max(ws)/1e6:.0f} ms (n={len(ws)}); output stall: median {statistics.median(os_)/1e6:.0f} ms (n={len(os_)}); rate median {statistics.median(rates)/1e6:.2f} M msg/s")
shutil.rmtree(work, ignore_errors=True)
