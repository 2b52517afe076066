#!/usr/bin/env python3
"""Side-by-side: tickwatch vs Apache Flink on per-stock 1-second tumbling-window bars.

Full run (the default mode):

    python3 tools/flink_compare.py --messages 10000000 [--symbols 8000] \
        [--workdir bench-data/flink] [--tickwatch target/release/tickwatch] \
        [--flink-python /work/flink-venv/bin/python] [--flink-repeat 1] [--tickwatch-repeat 3] \
        [--reference] [--out perf/runs/DATE/flink_compare.json]

  1. `tickwatch gen --messages N --symbols S --seed SEED --out FEED.itch` (kept and reused when
     it exists already; --regen to rewrite it)
  2. `tickwatch export FEED.itch --format csv -o events.csv` (timed, not part of either score)
  3. `tickwatch bars FEED.itch --window 1s --format csv -o tickwatch_bars.csv`, --tickwatch-repeat
     times (default 3), wall time of the process, median taken; its stderr is kept in the JSON
  4. tools/flink_bars.py on events.csv under --flink-python, --flink-repeat times (default 1)
  5. both bar files compared as sets keyed by (symbol, window_start_ns) on
     messages, trades, volume, vwap; with --reference both are also checked against a pure-Python
     computation from events.csv
  6. summary: events/s of both (the same event count, the rows of events.csv, for both) and the
     ratio tickwatch / Flink; the JSON goes to --out. Exit status 1 when the results differ.

Other modes (standard library only, for development and small inputs):

    --make-synthetic OUT.csv [--rows 100000] [--symbols 8] [--seed 1] [--seconds 60]
        write a synthetic events CSV with the export's schema (monotonic timestamps, trades of all
        kinds, timestamps on and just before second boundaries, zero-share crosses, big prices)
    --check-reference EVENTS.csv BARS.csv
        compute the bars of EVENTS.csv in pure Python and compare them with BARS.csv (either
        engine's format: only the shared columns are read)
    --compare BARS_A.csv BARS_B.csv
        compare two bar files (either engine's format)
"""

import argparse
import csv
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time

NS_PER_S = 1_000_000_000
KEY_COLS = ("symbol", "window_start_ns")
VAL_COLS = ("messages", "trades", "volume", "vwap")
EVENTS_HEADER = ["ts_ns", "symbol", "msg_type", "is_trade", "shares", "price_e4"]
TRADE_TYPES = {"E", "C", "P", "Q"}

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------------------------------------
# The computation itself, in pure Python (the reference)
# ---------------------------------------------------------------------------------------------

def vwap_str(notional_e4, volume):
    """notional_e4 / volume / 10^4 with 6 decimals, rounded half up, integer math only."""
    if volume == 0:
        return ""
    q = (notional_e4 * 100 * 2 + volume) // (2 * volume)
    return f"{q // 10**6}.{q % 10**6:06d}"


def reference_bars(events_csv, window_ns=NS_PER_S):
    """{(symbol, window_start_ns): (messages, trades, volume, vwap)} computed from the events."""
    acc = {}
    with open(events_csv, newline="") as f:
        r = csv.reader(f)
        header = next(r)
        if header != EVENTS_HEADER:
            raise SystemExit(f"{events_csv}: header {header} is not {EVENTS_HEADER}")
        for ts, sym, _t, is_trade, shares, price in r:
            ts = int(ts)
            key = (sym, ts - ts % window_ns)
            a = acc.get(key)
            if a is None:
                a = acc[key] = [0, 0, 0, 0]
            a[0] += 1
            if is_trade != "0":
                a[1] += int(is_trade)
            if shares != "0":
                s = int(shares)
                a[2] += s
                a[3] += s * int(price)
    return {k: (m, t, v, vwap_str(n, v)) for k, (m, t, v, n) in acc.items()}


# ---------------------------------------------------------------------------------------------
# Reading and comparing bar files
# ---------------------------------------------------------------------------------------------

def read_bars(path):
    """Read a bars CSV of either engine: {(symbol, window_start_ns): (messages, trades, volume, vwap)}.

    Returns (bars, duplicates): duplicate keys are counted, the last one kept."""
    bars = {}
    dups = 0
    with open(path, newline="") as f:
        r = csv.reader(f)
        header = next(r)
        try:
            idx = [header.index(c) for c in KEY_COLS + VAL_COLS]
        except ValueError:
            raise SystemExit(f"{path}: header {header} lacks one of {KEY_COLS + VAL_COLS}")
        i_sym, i_ws, i_m, i_t, i_v, i_w = idx
        for row in r:
            if not row:
                continue
            key = (row[i_sym], int(row[i_ws]))
            if key in bars:
                dups += 1
            # a count left empty (a window without trades) reads as 0
            bars[key] = (int(row[i_m] or 0), int(row[i_t] or 0), int(row[i_v] or 0), row[i_w].strip())
    return bars, dups


def compare_bars(a, b, name_a="a", name_b="b", examples=5):
    """Compare two {key: values} maps as sets keyed by (symbol, window_start_ns)."""
    keys_a, keys_b = set(a), set(b)
    both = keys_a & keys_b
    only_a = sorted(keys_a - keys_b, key=lambda k: (k[1], k[0]))
    only_b = sorted(keys_b - keys_a, key=lambda k: (k[1], k[0]))
    mismatched = sorted((k for k in both if a[k] != b[k]), key=lambda k: (k[1], k[0]))
    per_field = {c: 0 for c in VAL_COLS}
    for k in mismatched:
        for i, c in enumerate(VAL_COLS):
            if a[k][i] != b[k][i]:
                per_field[c] += 1

    def ex(k, src):
        return {"symbol": k[0], "window_start_ns": k[1],
                **{n: dict(zip(VAL_COLS, s[k])) for n, s in src}}

    return {
        "windows_" + name_a: len(a),
        "windows_" + name_b: len(b),
        "windows_in_both": len(both),
        "mismatches": len(mismatched),
        "mismatches_by_field": per_field,
        "mismatch_examples": [ex(k, [(name_a, a), (name_b, b)]) for k in mismatched[:examples]],
        "only_in_" + name_a: len(only_a),
        "only_in_" + name_a + "_examples": [ex(k, [(name_a, a)]) for k in only_a[:examples]],
        "only_in_" + name_b: len(only_b),
        "only_in_" + name_b + "_examples": [ex(k, [(name_b, b)]) for k in only_b[:examples]],
        "sum_messages_" + name_a: sum(v[0] for v in a.values()),
        "sum_messages_" + name_b: sum(v[0] for v in b.values()),
        "identical": not mismatched and not only_a and not only_b,
    }


def print_comparison(c, name_a, name_b):
    print(f"  windows: {name_a} {c['windows_' + name_a]}, {name_b} {c['windows_' + name_b]}, "
          f"in both {c['windows_in_both']}")
    print(f"  mismatches: {c['mismatches']} {c['mismatches_by_field']}")
    for e in c["mismatch_examples"]:
        print(f"    {e}")
    for n in (name_a, name_b):
        print(f"  only in {n}: {c['only_in_' + n]}")
        for e in c["only_in_" + n + "_examples"]:
            print(f"    {e}")
    print(f"  identical: {c['identical']}")


# ---------------------------------------------------------------------------------------------
# Synthetic events (to develop and test against without a feed)
# ---------------------------------------------------------------------------------------------

def make_synthetic(out, rows, symbols, seed=1, seconds=60.0, start_ns=34_200 * NS_PER_S):
    """A synthetic events CSV with the export's schema, timestamps non-decreasing."""
    rnd = random.Random(seed)
    syms = []
    for i in range(symbols):
        s, n = "", i
        while True:
            s = chr(ord("A") + n % 26) + s
            n //= 26
            if n == 0:
                break
        syms.append(("Z" + s)[:8] if i % 3 == 0 else ("SYM" + s)[:8])
    price = [rnd.randint(1, 500) * 10_000 + rnd.randint(0, 9999) for _ in syms]
    weights = [1.0 / (i + 1) for i in range(symbols)]  # skewed activity, like a real day
    types = ["A", "F", "D", "U", "X", "E", "C", "P", "Q", "I", "H"]
    tweights = [34, 2, 28, 8, 5, 10, 2, 4, 0.6, 0.3, 0.1]
    mean_gap = seconds * NS_PER_S / max(rows, 1)
    ts = start_ns
    sym_idx = rnd.choices(range(symbols), weights=weights, k=rows)
    tps = rnd.choices(types, weights=tweights, k=rows)
    with open(out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(EVENTS_HEADER)
        for i in range(rows):
            ts += int(rnd.expovariate(1.0 / mean_gap)) if mean_gap > 0 else 0
            nxt = (ts // NS_PER_S + 1) * NS_PER_S
            if nxt - ts < 3 * mean_gap:  # close to a second boundary: sometimes land on it
                u = rnd.random()
                if u < 0.2:  # exactly on the boundary (first ns of the next window)
                    ts = nxt
                elif u < 0.4:  # its last ns before
                    ts = nxt - 1
            si = sym_idx[i]
            t = tps[i]
            shares = p = 0
            trade = 1 if t in TRADE_TYPES else 0
            if trade:
                price[si] = max(100, price[si] + rnd.randint(-500, 500))
                p = price[si]
                shares = rnd.choice((100, 100, 100, 200, 300, 500, 1000)) if rnd.random() < 0.8 \
                    else rnd.randint(1, 5000)
                if t == "Q":
                    if rnd.random() < 0.2:
                        shares = 0  # a cross that matched nothing: a trade without volume
                    else:
                        shares = rnd.randint(1, 2_000_000)
                if rnd.random() < 0.001:  # near the top of ITCH's u32 price range
                    p = 4_000_000_000 + rnd.randint(0, 200_000_000)
                    shares = rnd.randint(1, 1_000_000)
            w.writerow((ts, syms[si], t, trade, shares, p))
    return rows


# ---------------------------------------------------------------------------------------------
# The full run
# ---------------------------------------------------------------------------------------------

def run(cmd, **kw):
    print("+ " + " ".join(str(c) for c in cmd), file=sys.stderr, flush=True)
    return subprocess.run([str(c) for c in cmd], **kw)


def timed(cmd):
    t0 = time.perf_counter()
    p = run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.stderr.write(p.stdout + p.stderr)
        raise SystemExit(f"failed ({p.returncode}): {' '.join(map(str, cmd))}")
    return dt, p.stdout, p.stderr


def count_rows(path):
    n = 0
    with open(path, "rb") as f:
        while True:
            buf = f.read(1 << 24)
            if not buf:
                break
            n += buf.count(b"\n")
    return n - 1  # header (tickwatch's CSV ends its last line with a newline)


def machine_info(tickwatch, flink_python):
    info = {"python_driver": sys.version.split()[0], "platform": platform.platform(),
            "nproc": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    for key, cmd in (("tickwatch_version", [tickwatch, "--version"]),
                     ("java", ["java", "-version"]),
                     ("pyflink", [flink_python, "-c",
                                  "import importlib.metadata as m; print(m.version('apache-flink'))"])):
        try:
            p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=60)
            info[key] = (p.stdout + p.stderr).strip().splitlines()[0] if (p.stdout + p.stderr).strip() else None
        except Exception as e:
            info[key] = f"unavailable: {e}"
    return info


def full_run(args):
    tw = os.path.abspath(args.tickwatch)
    if not os.access(tw, os.X_OK):
        raise SystemExit(f"no tickwatch binary at {tw} (cargo build --release, or --tickwatch PATH)")
    if not os.access(args.flink_python, os.X_OK):
        raise SystemExit(f"no Python at {args.flink_python}: install PyFlink as tools/README.md says "
                         "(or --flink-python PATH)")
    workdir = os.path.abspath(args.workdir)
    os.makedirs(workdir, exist_ok=True)
    session = f"-session{args.session}" if args.session else ""
    feed = os.path.join(workdir, f"gen-{args.messages}-{args.symbols}sym-seed{args.seed}{session}.itch")
    events = os.path.join(workdir, f"events-{args.messages}-{args.symbols}sym-seed{args.seed}{session}.csv")
    tw_bars = os.path.join(workdir, "tickwatch_bars.csv")
    fl_bars = os.path.join(workdir, "flink_bars.csv")
    out = args.out or os.path.join(REPO, "perf", "runs", time.strftime("%Y-%m-%d"), "flink_compare.json")

    report = {"params": {"messages": args.messages, "symbols": args.symbols, "seed": args.seed,
                         "window": "1s", "tickwatch_repeat": args.tickwatch_repeat,
                         "flink_repeat": args.flink_repeat,
                         "flink_parallelism": args.parallelism},
              "machine": machine_info(tw, args.flink_python)}

    # 1. feed
    if args.regen or not os.path.exists(feed):
        dt, so, se = timed([tw, "gen", "--messages", args.messages, "--symbols", args.symbols,
                            "--seed", args.seed, "--out", feed]
                           + (["--session", args.session] if args.session else []))
        report["gen"] = {"wall_s": round(dt, 3), "stdout": so, "stderr": se}
    report["feed"] = {"path": feed, "bytes": os.path.getsize(feed)}

    # 2. events CSV
    if args.regen or not os.path.exists(events) or os.path.getmtime(events) < os.path.getmtime(feed):
        dt, so, se = timed([tw, "export", feed, "--format", "csv", "-o", events])
        report["export"] = {"wall_s": round(dt, 3), "stdout": so, "stderr": se}
    n_events = count_rows(events)
    report["events"] = {"path": events, "rows": n_events, "bytes": os.path.getsize(events)}
    print(f"events: {n_events} rows in {events}", file=sys.stderr)

    # 3. tickwatch bars
    tw_runs = []
    for i in range(args.tickwatch_repeat):
        dt, so, se = timed([tw, "bars", feed, "--window", "1s", "--format", "csv", "-o", tw_bars])
        tw_runs.append({"wall_s": round(dt, 4), "events_per_s": round(n_events / dt, 1),
                        "stdout": so, "stderr": se})
        print(f"tickwatch bars run {i + 1}: {dt:.3f} s", file=sys.stderr)
    tw_med = statistics.median(r["wall_s"] for r in tw_runs)
    report["tickwatch"] = {"runs": tw_runs, "median_wall_s": tw_med,
                           "events_per_s": round(n_events / tw_med, 1)}

    # 4. Flink
    fl_runs = []
    for i in range(args.flink_repeat):
        stats_path = os.path.join(workdir, f"flink_stats_{i + 1}.json")
        dt, so, se = timed([args.flink_python, os.path.join(REPO, "tools", "flink_bars.py"),
                            "--input", events, "--output", fl_bars,
                            "--parallelism", args.parallelism, "--json", stats_path])
        with open(stats_path) as f:
            st = json.load(f)
        st["process_wall_s"] = round(dt, 3)
        fl_runs.append(st)
        print(f"flink run {i + 1}: job {st['job_wall_s']} s, process {dt:.1f} s", file=sys.stderr)
    fl_med = statistics.median(r["job_wall_s"] for r in fl_runs)
    report["flink"] = {"runs": fl_runs, "median_job_wall_s": fl_med,
                       "events_per_s": round(n_events / fl_med, 1)}

    # 5. compare
    a, dup_a = read_bars(tw_bars)
    b, dup_b = read_bars(fl_bars)
    cmp = compare_bars(a, b, "tickwatch", "flink", examples=args.examples)
    cmp["duplicate_keys_tickwatch"] = dup_a
    cmp["duplicate_keys_flink"] = dup_b
    report["comparison"] = cmp
    ok = cmp["identical"] and not dup_a and not dup_b
    if args.reference:
        ref = reference_bars(events)
        report["reference"] = {
            "tickwatch": compare_bars(ref, a, "reference", "tickwatch", examples=args.examples),
            "flink": compare_bars(ref, b, "reference", "flink", examples=args.examples),
        }
        ok = ok and all(v["identical"] for v in report["reference"].values())

    ratio = report["tickwatch"]["events_per_s"] / report["flink"]["events_per_s"]
    report["summary"] = {
        "events": n_events,
        "windows": len(set(a) | set(b)),
        "tickwatch_events_per_s": report["tickwatch"]["events_per_s"],
        "flink_events_per_s": report["flink"]["events_per_s"],
        "flink_jvm_gateway_startup_s": statistics.median(r["jvm_gateway_startup_s"] for r in fl_runs),
        "flink_events_per_s_net_runtime": (
            round(n_events / statistics.median(r["flink_net_runtime_s"] for r in fl_runs), 1)
            if all(r.get("flink_net_runtime_s") for r in fl_runs) else None),
        "ratio_tickwatch_over_flink": round(ratio, 2),
        "results_identical": ok,
    }

    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")

    print()
    print(f"tickwatch vs Flink, 1 s bars: {args.messages} messages, {args.symbols} symbols, "
          f"{n_events} events, {report['summary']['windows']} windows")
    print(f"  tickwatch bars : median {tw_med:.3f} s over {len(tw_runs)} runs, "
          f"{report['tickwatch']['events_per_s']:,.0f} events/s")
    print(f"  Flink (p={args.parallelism})  : job {fl_med:.3f} s (JVM/gateway start "
          f"{report['summary']['flink_jvm_gateway_startup_s']} s not included), "
          f"{report['flink']['events_per_s']:,.0f} events/s")
    if report["summary"]["flink_events_per_s_net_runtime"]:
        print(f"  Flink on its own clock (net runtime, no MiniCluster start/stop): "
              f"{report['summary']['flink_events_per_s_net_runtime']:,.0f} events/s")
    print(f"  ratio tickwatch / Flink: {ratio:.1f}x")
    print_comparison(cmp, "tickwatch", "flink")
    if args.reference:
        for n, c in report["reference"].items():
            print(f"  reference vs {n}: identical={c['identical']} mismatches={c['mismatches']} "
                  f"only_ref={c['only_in_reference']} only_{n}={c['only_in_' + n]}")
    print(f"  report: {out}")
    return 0 if ok else 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, help="messages to generate (full run)")
    ap.add_argument("--symbols", type=int, default=None, help="stocks (full run: 8000; synthetic: 8)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--session", default=None,
                    help="gen --session: compress the continuous session (e.g. 10m) for dense windows")
    ap.add_argument("--workdir", default=os.path.join(REPO, "bench-data", "flink"))
    ap.add_argument("--tickwatch", default=os.path.join(REPO, "target", "release", "tickwatch"))
    ap.add_argument("--flink-python", default="/work/flink-venv/bin/python")
    ap.add_argument("--parallelism", type=int, default=2, help="Flink parallelism")
    ap.add_argument("--flink-repeat", type=int, default=1)
    ap.add_argument("--tickwatch-repeat", type=int, default=3)
    ap.add_argument("--regen", action="store_true", help="rewrite the feed and the events CSV")
    ap.add_argument("--reference", action="store_true",
                    help="also check both engines against the pure-Python computation")
    ap.add_argument("--examples", type=int, default=5, help="examples of each kind of difference")
    ap.add_argument("--out", help="report JSON (default perf/runs/DATE/flink_compare.json)")
    ap.add_argument("--make-synthetic", metavar="OUT_CSV")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--check-reference", nargs=2, metavar=("EVENTS_CSV", "BARS_CSV"))
    ap.add_argument("--compare", nargs=2, metavar=("BARS_A", "BARS_B"))
    args = ap.parse_args(argv)

    if args.make_synthetic:
        n = make_synthetic(args.make_synthetic, args.rows, args.symbols or 8, args.seed, args.seconds)
        print(f"wrote {n} events to {args.make_synthetic}")
        return 0
    if args.check_reference:
        events, bars = args.check_reference
        t0 = time.perf_counter()
        ref = reference_bars(events)
        t1 = time.perf_counter()
        got, dups = read_bars(bars)
        c = compare_bars(ref, got, "reference", "bars", examples=args.examples)
        print(f"reference computed in {t1 - t0:.2f} s")
        print_comparison(c, "reference", "bars")
        if dups:
            print(f"  duplicate keys in {bars}: {dups}")
        return 0 if c["identical"] and not dups else 1
    if args.compare:
        a, da = read_bars(args.compare[0])
        b, db = read_bars(args.compare[1])
        c = compare_bars(a, b, "a", "b", examples=args.examples)
        print_comparison(c, "a", "b")
        return 0 if c["identical"] and not da and not db else 1
    if args.messages is None:
        ap.error("--messages is required for a full run")
    if args.symbols is None:
        args.symbols = 8000
    return full_run(args)


if __name__ == "__main__":
    sys.exit(main())
