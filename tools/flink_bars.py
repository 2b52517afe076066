#!/usr/bin/env python3
"""Per-stock 1-second tumbling-window bars computed by Apache Flink (PyFlink, Table API / SQL).

The same job as `tickwatch bars FEED --window 1s`, restricted to the columns both engines share:

    symbol, window_start_ns, messages, trades, volume, vwap

Input: the event CSV written by `tickwatch export FEED --format csv` with the header

    ts_ns,symbol,msg_type,is_trade,shares,price_e4

Flink reads it with the filesystem connector and the `csv` format (its natural source), event
time is `TO_TIMESTAMP_LTZ(ts_ns / 1000000, 3)` with a watermark 1 s behind, and the window TVF
`TUMBLE(TABLE events, DESCRIPTOR(rowtime), INTERVAL '1' SECOND)` groups per symbol and window.
The job runs in streaming mode on the local MiniCluster with `table.local-time-zone` = UTC.

VWAP is computed inside the SQL with integer math only, rounded half up to 6 decimals; it is
the same number as `q = (notional_e4 * 200 + volume) // (2 * volume)` but split so that nothing
can overflow a BIGINT: with notional = a * volume + b,
q = 100 * a + (200 * b + volume) // (2 * volume).

Flink writes its result as part files into a directory (one or more per sink subtask). After
the job this script concatenates them under a header into --output (in no particular order;
--sort orders them by window_start_ns, symbol). Timing is reported separately for: JVM / gateway startup (creating the
TableEnvironment), the job itself (from submission to completion, time.perf_counter around
execute_sql(...).wait(), which includes the local MiniCluster start and stop), and the merge.

Usage:
    /work/flink-venv/bin/python tools/flink_bars.py --input events.csv --output flink_bars.csv \
        [--parallelism 2] [--json stats.json]
"""

import argparse
import glob
import json
import os
import shutil
import sys
import tempfile
import time

OUT_HEADER = ["symbol", "window_start_ns", "messages", "trades", "volume", "vwap"]
IN_HEADER = "ts_ns,symbol,msg_type,is_trade,shares,price_e4"


def sql_quote(s):
    return "'" + s.replace("'", "''") + "'"


def count_data_rows(path):
    """Rows in the input CSV, header excluded (counted by lines, outside the timed job)."""
    n = 0
    with open(path, "rb") as f:
        first = f.readline()
        if not first:
            return 0
        if not first.startswith(b"ts_ns"):
            n += 1
        while True:
            buf = f.read(1 << 24)
            if not buf:
                break
            n += buf.count(b"\n")
        # a last line without a trailing newline
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size:
            f.seek(size - 1)
            if f.read(1) != b"\n":
                n += 1
    return n


def build_sql(events_path, sink_dir):
    source = f"""
CREATE TEMPORARY TABLE events (
    ts_ns     BIGINT,
    symbol    STRING,
    msg_type  STRING,
    is_trade  INT,
    shares    BIGINT,
    price_e4  BIGINT,
    -- COALESCE: the header line comes through as a row of NULLs (filtered out below)
    rowtime AS TO_TIMESTAMP_LTZ(COALESCE(ts_ns, 0) / 1000000, 3),
    WATERMARK FOR rowtime AS rowtime - INTERVAL '1' SECOND
) WITH (
    'connector' = 'filesystem',
    'path' = {sql_quote(events_path)},
    'format' = 'csv',
    -- the header line does not parse as BIGINT: with this it becomes a row of NULLs, which the
    -- view below drops (checked after the job: rows in the file == SUM(messages))
    'csv.ignore-parse-errors' = 'true'
)"""
    view = """
CREATE TEMPORARY VIEW stock_events AS
SELECT * FROM events WHERE ts_ns IS NOT NULL"""
    sink = f"""
CREATE TEMPORARY TABLE bars (
    symbol           STRING,
    window_start_ns  BIGINT,
    messages         BIGINT,
    trades           BIGINT,
    volume           BIGINT,
    vwap             STRING
) WITH (
    'connector' = 'filesystem',
    'path' = {sql_quote(sink_dir)},
    'format' = 'csv'
)"""
    # Inner query: the window aggregate. Outer query: ns window start and the VWAP string.
    insert = """
INSERT INTO bars
SELECT
    symbol,
    window_start_ms * 1000000 AS window_start_ns,
    messages,
    trades,
    volume,
    CASE WHEN volume = 0 THEN CAST(NULL AS STRING) ELSE
        CAST(q / 1000000 AS STRING) || '.' || LPAD(CAST(MOD(q, 1000000) AS STRING), 6, '0')
    END AS vwap
FROM (
    SELECT
        symbol, window_start_ms, messages, trades, volume,
        CASE WHEN volume = 0 THEN CAST(0 AS BIGINT) ELSE
            (notional_e4 / volume) * 100
            + (MOD(notional_e4, volume) * 200 + volume) / (2 * volume)
        END AS q
    FROM (
        SELECT
            symbol,
            -- window_start is TIMESTAMP(3) in the session zone (UTC); 1-s windows start on whole
            -- seconds, so epoch ms = whole seconds * 1000
            CAST(TIMESTAMPDIFF(SECOND, TIMESTAMP '1970-01-01 00:00:00', window_start) AS BIGINT)
                * 1000                             AS window_start_ms,
            COUNT(*)                               AS messages,
            CAST(SUM(is_trade) AS BIGINT)          AS trades,
            CAST(SUM(shares) AS BIGINT)            AS volume,
            CAST(SUM(shares * price_e4) AS BIGINT) AS notional_e4
        FROM TABLE(TUMBLE(TABLE stock_events, DESCRIPTOR(rowtime), INTERVAL '1' SECOND))
        GROUP BY symbol, window_start, window_end
    )
)"""
    return [source, view, sink], insert


def merge_parts(sink_dir, output, sort=False):
    """Write the finished part files under a header into `output`.

    Flink's CSV writer quotes nothing here (symbols have no commas or quotes; a NULL vwap is an
    empty field), so the part files are concatenated as they are; with `sort` the rows are
    ordered by (window_start_ns, symbol) first (slow in Python for millions of windows).
    Returns (part files, unfinished part files, windows, SUM(messages))."""
    files = [p for p in glob.glob(os.path.join(sink_dir, "**", "*"), recursive=True) if os.path.isfile(p)]
    hidden = [p for p in glob.glob(os.path.join(sink_dir, "**", ".*"), recursive=True) if os.path.isfile(p)]
    parts = sorted(p for p in files if not os.path.basename(p).startswith("."))
    windows = 0
    messages = 0
    with open(output, "w", newline="") as out:
        out.write(",".join(OUT_HEADER) + "\n")
        if sort:
            rows = []
            for p in parts:
                with open(p, "r", newline="") as f:
                    rows.extend(line.rstrip("\r\n") for line in f if line.strip())
            rows.sort(key=lambda r: (int(r.split(",", 2)[1]), r.split(",", 1)[0]))
            for r in rows:
                out.write(r + "\n")
                messages += int(r.split(",", 3)[2])
            windows = len(rows)
        else:
            for p in parts:
                with open(p, "r", newline="") as f:
                    for line in f:
                        if not line.strip():
                            continue
                        if not line.endswith("\n"):
                            line += "\n"
                        out.write(line)
                        messages += int(line.split(",", 3)[2])
                        windows += 1
    return len(parts), len(hidden), windows, messages


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", required=True, help="events CSV (tickwatch export --format csv)")
    ap.add_argument("--output", required=True, help="bars CSV to write")
    ap.add_argument("--parallelism", type=int, default=2)
    ap.add_argument("--json", help="also write the stats as JSON here")
    ap.add_argument("--sink-dir", help="directory for Flink's part files (default: a temp dir, removed after)")
    ap.add_argument("--keep-sink-dir", action="store_true")
    ap.add_argument("--sort", action="store_true",
                    help="sort the output by (window_start_ns, symbol) (default: part files concatenated)")
    ap.add_argument("--no-count", action="store_true",
                    help="skip counting the input's lines (then rows_in is SUM(messages) only)")
    args = ap.parse_args(argv)

    events_path = os.path.abspath(args.input)
    if not os.path.isfile(events_path):
        sys.exit(f"no such input: {events_path}")
    with open(events_path, "r") as f:
        head = f.readline().strip()
    if head != IN_HEADER:
        print(f"warning: header is {head!r}, expected {IN_HEADER!r}", file=sys.stderr)

    own_tmp = args.sink_dir is None
    sink_dir = os.path.abspath(args.sink_dir) if args.sink_dir else tempfile.mkdtemp(prefix="flink-bars-")
    if os.path.isdir(sink_dir) and os.listdir(sink_dir):
        sys.exit(f"--sink-dir {sink_dir} exists and is not empty: give a new or empty directory")

    t0 = time.perf_counter()
    from pyflink.table import EnvironmentSettings, TableEnvironment  # noqa: E402
    import pyflink  # noqa: E402

    t_import = time.perf_counter()
    settings = EnvironmentSettings.in_streaming_mode()
    t_env = TableEnvironment.create(settings)  # starts the JVM and the py4j gateway
    cfg = t_env.get_config()
    cfg.set("parallelism.default", str(args.parallelism))
    cfg.set("table.local-time-zone", "UTC")
    cfg.set("table.exec.resource.default-parallelism", str(args.parallelism))
    t_env_ready = time.perf_counter()

    ddl, insert = build_sql(events_path, sink_dir)
    for stmt in ddl:
        t_env.execute_sql(stmt)
    t_ddl = time.perf_counter()

    # The job: from submission (planning included) to completion.
    t_submit = time.perf_counter()
    result = t_env.execute_sql(insert)
    result.wait()
    t_done = time.perf_counter()

    net_runtime_ms = None
    try:
        jc = result.get_job_client()
        if jc is not None:
            jer = jc.get_job_execution_result().result()
            net_runtime_ms = jer.get_net_runtime()
    except Exception as e:  # informational only
        print(f"note: could not read Flink's net runtime: {e}", file=sys.stderr)

    n_parts, n_hidden, n_windows, sum_messages = merge_parts(sink_dir, args.output, args.sort)
    t_merged = time.perf_counter()
    if own_tmp and not args.keep_sink_dir:
        shutil.rmtree(sink_dir, ignore_errors=True)

    rows_in_file = None if args.no_count else count_data_rows(events_path)
    rows_in = rows_in_file if rows_in_file is not None else sum_messages
    job_s = t_done - t_submit
    stats = {
        "engine": "flink",
        "pyflink_version": getattr(pyflink, "__version__", None) or _pkg_version("apache-flink"),
        "python": sys.version.split()[0],
        "parallelism": args.parallelism,
        "mode": "streaming",
        "input": events_path,
        "output": os.path.abspath(args.output),
        "rows_in": rows_in,
        "rows_in_file": rows_in_file,
        "sum_messages": sum_messages,
        "windows_out": n_windows,
        "part_files": n_parts,
        "unfinished_part_files": n_hidden,
        "import_s": round(t_import - t0, 3),
        "jvm_gateway_startup_s": round(t_env_ready - t_import, 3),
        "ddl_s": round(t_ddl - t_env_ready, 3),
        "job_wall_s": round(job_s, 3),
        "flink_net_runtime_s": None if net_runtime_ms is None else round(net_runtime_ms / 1000.0, 3),
        "merge_s": round(t_merged - t_done, 3),
        "total_s": round(t_merged - t0, 3),
        "events_per_s": round(rows_in / job_s, 1) if job_s > 0 else None,
    }
    if stats["flink_net_runtime_s"]:
        stats["events_per_s_net"] = round(rows_in / stats["flink_net_runtime_s"], 1)
    ok = rows_in_file is None or rows_in_file == sum_messages
    stats["rows_accounted"] = ok

    for k, v in stats.items():
        print(f"{k:24s} {v}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(stats, f, indent=2)
            f.write("\n")
    if not ok:
        print(f"error: the input has {rows_in_file} rows but the windows count {sum_messages}"
              " (rows dropped or late?)", file=sys.stderr)
        return 1
    if n_hidden:
        print(f"error: {n_hidden} part files were never finished", file=sys.stderr)
        return 1
    return 0


def _pkg_version(name):
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return None


if __name__ == "__main__":
    sys.exit(main())
