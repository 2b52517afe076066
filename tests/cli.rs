//! The `tickwatch` command line, run as a process: JSON output parsed and compared with the
//! library and with the test's own reading of the files; error cases exit non-zero and name the
//! byte offset; `gen` is deterministic; `demo`, `bench` and every `--help` work.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tickwatch::book::{BookConfig, Books};
use tickwatch::gen::symbol_of_locate;
use tickwatch::itch::{parse_time, symbol_str, Side};
use tickwatch::replay::replay;

const BIN: &str = env!("CARGO_BIN_EXE_tickwatch");
const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");
const SAMPLE: &str = "12302019_SNIPPET.NASDAQ_ITCH50";

fn sample_path() -> PathBuf {
    Path::new(DATA).join(SAMPLE)
}

fn sample() -> Vec<u8> {
    std::fs::read(sample_path()).unwrap()
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("running tickwatch")
}

fn ok(args: &[&str]) -> Output {
    let o = run(args);
    assert!(
        o.status.success(),
        "tickwatch {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    o
}

/// Runs and expects failure; returns stderr.
fn fails(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        !o.status.success(),
        "tickwatch {args:?} succeeded: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "{args:?}: a clean error exit, not a crash"
    );
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(err.starts_with("tickwatch: error:"), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// Runs with a deadline and expects a clean error exit (as [`fails`]) within a few seconds, not
/// a hang or a crash; returns stderr.
fn fails_fast(args: &[&str]) -> String {
    let t0 = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running tickwatch");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if t0.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("tickwatch {args:?} still running after 20 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = t0.elapsed();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{args:?}: {err}");
    assert!(err.starts_with("tickwatch: error:"), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(took < Duration::from_secs(5), "{args:?} took {took:?}");
    err
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// (offset, body) of every frame, from the test's own walk.
fn frames(buf: &[u8]) -> Vec<(usize, &[u8])> {
    let mut out = Vec::new();
    let mut p = 0;
    while p < buf.len() {
        let n = u16::from_be_bytes([buf[p], buf[p + 1]]) as usize;
        out.push((p, &buf[p + 2..p + 2 + n]));
        p += 2 + n;
    }
    out
}

fn counts(buf: &[u8]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for (_, b) in frames(buf) {
        *m.entry((b[0] as char).to_string()).or_insert(0u64) += 1;
    }
    m
}

#[test]
fn inspect_json_on_the_sample() {
    let mine = counts(&sample());
    assert_eq!(mine.values().sum::<u64>(), 1000);
    let mut seen = Vec::new();
    for threads in ["1", "3"] {
        let o = ok(&["inspect", s(&sample_path()), "--json", "--threads", threads]);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["messages"], 1000);
        assert_eq!(v["bytes"], 35_570);
        let by_type: BTreeMap<String, u64> = serde_json::from_value(v["by_type"].clone()).unwrap();
        assert_eq!(by_type, mine);
        assert_eq!(v["skipped_bad_lengths"], 0);
        assert_eq!(v["first_unknown_offset"], Value::Null);
        assert_eq!(v["timestamp_regressions"], 0);
        let raw = sample();
        let first = &frames(&raw)[0].1[5..11];
        let ts = first.iter().fold(0u64, |a, &b| a << 8 | b as u64);
        assert_eq!(v["first_timestamp_ns"], ts);
        seen.push(by_type);
    }
    // Text output.
    let text = stdout(&ok(&["inspect", s(&sample_path())]));
    assert!(text.contains("messages    1000"), "{text}");
    assert!(
        text.contains("skipped     0 unknown-type frame(s); 0 bad-length frame(s)"),
        "{text}"
    );
    for (t, n) in &seen[0] {
        assert!(
            text.lines().any(|l| l
                .split_whitespace()
                .take(2)
                .eq([t.as_str(), &n.to_string()])),
            "{t} {n}: {text}"
        );
    }
}

/// A generated file in a temp dir, written by the CLI.
fn generated(dir: &Path, messages: u64, symbols: u32, seed: u64) -> PathBuf {
    let p = dir.join(format!("gen-{messages}-{symbols}-{seed}.itch"));
    let (m, k, sd) = (messages.to_string(), symbols.to_string(), seed.to_string());
    let o = ok(&[
        "gen",
        "--messages",
        &m,
        "--symbols",
        &k,
        "--seed",
        &sd,
        "--out",
        s(&p),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("wrote {messages} messages")), "{err}");
    p
}

type Lv = (u64, u64, u64);

fn levels(v: &Value) -> Vec<Lv> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let o = l.as_object().unwrap();
            let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
            keys.sort();
            assert_eq!(keys, ["orders", "price", "shares"]);
            (
                l["price"].as_u64().unwrap(),
                l["shares"].as_u64().unwrap(),
                l["orders"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn lib_levels(books: &Books, loc: u16, side: Side, depth: usize) -> Vec<Lv> {
    books
        .depth(loc, side)
        .take(depth)
        .map(|l| (l.price as u64, l.shares, l.orders as u64))
        .collect()
}

/// Runs `book --json` and checks the shape and ordering; returns (timestamp, bids, asks).
fn book_json(file: &Path, symbol: &str, extra: &[&str]) -> (u64, Vec<Lv>, Vec<Lv>) {
    let mut args = vec!["book", s(file), "--symbol", symbol, "--json"];
    args.extend_from_slice(extra);
    let v: Value = serde_json::from_slice(&ok(&args).stdout).unwrap();
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["asks", "bids", "symbol", "timestamp_ns"]);
    assert_eq!(v["symbol"], symbol);
    let (bids, asks) = (levels(&v["bids"]), levels(&v["asks"]));
    assert!(
        bids.windows(2).all(|w| w[0].0 > w[1].0),
        "bids not strictly descending: {bids:?}"
    );
    assert!(
        asks.windows(2).all(|w| w[0].0 < w[1].0),
        "asks not strictly ascending: {asks:?}"
    );
    if let (Some(b), Some(a)) = (bids.first(), asks.first()) {
        assert!(b.0 < a.0, "crossed: bid {b:?} ask {a:?}");
    }
    assert!(bids.iter().chain(&asks).all(|l| l.1 > 0 && l.2 > 0));
    (v["timestamp_ns"].as_u64().unwrap(), bids, asks)
}

#[test]
fn book_json_equals_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let file = generated(dir.path(), 30_000, 6, 5);
    let buf = std::fs::read(&file).unwrap();
    let mut books = Books::new(BookConfig::small());
    replay(&buf, &mut books, None, false).unwrap();
    for loc in 1..=3u16 {
        let sym = symbol_str(&symbol_of_locate(loc));
        let (ts, bids, asks) = book_json(&file, &sym, &[]);
        assert_eq!(ts, books.last_timestamp());
        assert_eq!(bids, lib_levels(&books, loc, Side::Buy, 10));
        assert_eq!(asks, lib_levels(&books, loc, Side::Sell, 10));
        assert!(
            !bids.is_empty() && !asks.is_empty(),
            "{sym}: a generated stock has both sides"
        );
        let (_, b3, a3) = book_json(&file, &sym, &["--depth", "3"]);
        assert_eq!(
            (b3.as_slice(), a3.as_slice()),
            (&bids[..bids.len().min(3)], &asks[..asks.len().min(3)])
        );
    }
    // At earlier times: the library's replay up to that time.
    let sym = symbol_str(&symbol_of_locate(1));
    let mut differs = false;
    for at in ["09:45:00", "11:00:00.5", "13:15:30.123456789"] {
        let t = parse_time(at).unwrap();
        let (ts, bids, asks) = book_json(&file, &sym, &["--at", at, "--depth", "50"]);
        assert_eq!(ts, t);
        let mut then = Books::new(BookConfig::small());
        let r = replay(&buf, &mut then, Some(t), false).unwrap();
        assert!(r.stopped_early && then.last_timestamp() <= t);
        assert_eq!(bids, lib_levels(&then, 1, Side::Buy, 50), "--at {at}");
        assert_eq!(asks, lib_levels(&then, 1, Side::Sell, 50), "--at {at}");
        differs |= bids != lib_levels(&books, 1, Side::Buy, 50);
    }
    assert!(
        differs,
        "the book at earlier times should not all equal the closing book"
    );
    // Text output names the stock and its locate.
    let text = stdout(&ok(&["book", s(&file), "--symbol", &sym, "--depth", "2"]));
    assert!(text.starts_with(&format!("{sym} (locate 1) at ")), "{text}");
    assert_eq!(text.lines().count(), 2 + 2, "{text}");
    // Unknown symbol, bad time.
    assert!(fails(&["book", s(&file), "--symbol", "NOSUCH"]).contains("NOSUCH not found"));
    assert!(fails(&["book", s(&file), "--symbol", &sym, "--at", "25:00:00"]).contains("--at"));
    assert!(fails(&["book", s(&file), "--symbol", "WAYTOOLONGSYM"]).contains("--symbol"));
}

/// Writes `bytes` as a file in `dir`.
fn file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn errors_name_the_byte_offset() {
    let dir = tempfile::tempdir().unwrap();
    let raw = sample();
    let fr = frames(&raw);

    // Truncated: the last frame loses 5 bytes.
    let last = fr.last().unwrap().0;
    let cut = file(dir.path(), "cut.itch", &raw[..raw.len() - 5]);
    for args in [
        vec!["inspect", s(&cut)],
        vec!["inspect", s(&cut), "--json"],
        vec!["book", s(&cut), "--symbol", "VIXM"],
    ] {
        let e = fails(&args);
        assert!(
            e.contains(&format!("at byte offset {last}:")),
            "{args:?}: {e}"
        );
        assert!(e.contains("cut short"), "{e}");
    }
    // Cut inside a length prefix.
    let at = fr[500].0;
    let cut2 = file(dir.path(), "cut2.itch", &raw[..at + 1]);
    assert!(fails(&["inspect", s(&cut2)]).contains(&format!("at byte offset {at}:")));

    // Bad length: the first ten frames, then an 'A' of 35 bytes, then the rest.
    let at = fr[10].0;
    let mut bad = raw[..at].to_vec();
    let mut a = fr.iter().find(|(_, b)| b[0] == b'A').unwrap().1.to_vec();
    a.pop();
    bad.extend_from_slice(&(a.len() as u16).to_be_bytes());
    bad.extend_from_slice(&a);
    bad.extend_from_slice(&raw[at..]);
    let badp = file(dir.path(), "badlen.itch", &bad);
    for args in [
        vec!["inspect", s(&badp)],
        vec!["book", s(&badp), "--symbol", "VIXM"],
    ] {
        let e = fails(&args);
        assert!(
            e.contains(&format!("at byte offset {at}:")),
            "{args:?}: {e}"
        );
        assert!(e.contains("'A' must be 36 bytes, frame holds 35"), "{e}");
    }
    // --lenient counts and skips it.
    let v: Value =
        serde_json::from_slice(&ok(&["inspect", s(&badp), "--json", "--lenient"]).stdout).unwrap();
    assert_eq!(v["messages"], 1000);
    assert_eq!(v["skipped_bad_lengths"], 1);
    assert!(v["first_bad_length"]
        .as_str()
        .unwrap()
        .contains(&format!("byte offset {at}")));
    ok(&["book", s(&badp), "--symbol", "VIXM", "--lenient"]);

    // Not ITCH at all: text. Its first two bytes announce a frame longer than the file.
    let text = file(
        dir.path(),
        "notes.txt",
        b"This is a plain text file, not a market data feed.\n",
    );
    let e = fails(&["inspect", s(&text)]);
    assert!(e.contains("at byte offset 0:"), "{e}");
    assert!(e.contains("not an ITCH 5.0 BinaryFILE"), "{e}");
    assert!(fails(&["book", s(&text), "--symbol", "AAPL"]).contains("at byte offset 0:"));

    // Empty.
    let empty = file(dir.path(), "empty.itch", b"");
    assert!(fails(&["inspect", s(&empty)]).contains("empty file"));
    assert!(fails(&["book", s(&empty), "--symbol", "AAPL"]).contains("empty file"));

    // Missing.
    let missing = dir.path().join("missing.itch");
    assert!(fails(&["inspect", s(&missing)]).contains("missing.itch"));
}

#[test]
fn unknown_types_are_reported_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let raw = sample();
    let at = frames(&raw)[100].0;
    let mut buf = raw[..at].to_vec();
    for body in [&b"Zzzz"[..], &[0xF0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]] {
        buf.extend_from_slice(&(body.len() as u16).to_be_bytes());
        buf.extend_from_slice(body);
    }
    buf.extend_from_slice(&raw[at..]);
    let p = file(dir.path(), "unknown.itch", &buf);
    let text = stdout(&ok(&["inspect", s(&p)]));
    assert!(
        text.contains(&format!(
            "skipped     2 unknown-type frame(s) (first at byte {at})"
        )),
        "{text}"
    );
    let v: Value = serde_json::from_slice(&ok(&["inspect", s(&p), "--json"]).stdout).unwrap();
    assert_eq!(v["messages"], 1000);
    assert_eq!(v["first_unknown_offset"], at);
    assert_eq!(
        v["skipped_unknown_types"],
        serde_json::json!({"0x5a": 1, "0xf0": 1})
    );
    let o = ok(&["book", s(&p), "--symbol", "VIXM", "--json"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("2 unknown-type frame(s)"));
}

#[test]
fn gen_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let a = generated(dir.path(), 20_000, 15, 3);
    let a_bytes = std::fs::read(&a).unwrap();
    std::fs::rename(&a, dir.path().join("first.itch")).unwrap();
    let b = generated(dir.path(), 20_000, 15, 3);
    assert_eq!(
        std::fs::read(&b).unwrap(),
        a_bytes,
        "same seed, different bytes"
    );
    let c = generated(dir.path(), 20_000, 15, 4);
    assert_ne!(
        std::fs::read(&c).unwrap(),
        a_bytes,
        "different seed, same bytes"
    );
    assert_eq!(frames(&a_bytes).len(), 20_000);
    // Arguments that cannot make a feed are refused.
    let out = dir.path().join("x.itch");
    let e = fails(&[
        "gen",
        "--messages",
        "10",
        "--symbols",
        "50",
        "--out",
        s(&out),
    ]);
    assert!(e.contains("too few"), "{e}");
    assert!(fails(&[
        "gen",
        "--messages",
        "1000",
        "--symbols",
        "0",
        "--out",
        s(&out)
    ])
    .contains("--symbols"));
}

#[test]
fn mlock_modes_run_and_a_bad_one_is_refused() {
    let snippet = sample_path().display().to_string();
    for m in ["auto", "always", "never"] {
        let o = ok(&["run", &snippet, "--mlock", m]);
        assert!(stdout(&o).contains("1000 messages"), "{m}");
    }
    let o = run(&["run", &snippet, "--mlock", "sometimes"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--mlock"));
}

#[test]
fn surveillance_without_flow_says_account_wash_is_inactive() {
    let snippet = sample_path().display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let alerts = dir.path().join("a.jsonl");
    let a = alerts.to_str().unwrap();
    let o = ok(&["run", &snippet, "--alerts", a]);
    assert!(stdout(&o).contains("account-level wash detection is inactive"));
    let o = ok(&["surveil", &snippet, "--alerts", a]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("wash detection is inactive"));
}

#[test]
fn a_kept_demo_scores_wash_when_surveilled_again() {
    // `demo --keep` writes the firm's flow beside the feed, so a second surveillance of the
    // kept feed finds the wash trades the demo itself found.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    ok(&[
        "demo",
        "--messages",
        "30000",
        "--symbols",
        "10",
        "--keep",
        d,
    ]);
    let feed = dir.path().join("demo.itch");
    assert!(dir.path().join("demo.itch.flow.csv").exists());
    let alerts = dir.path().join("a.jsonl");
    ok(&[
        "run",
        feed.to_str().unwrap(),
        "--alerts",
        alerts.to_str().unwrap(),
    ]);
    let o = ok(&[
        "eval",
        feed.to_str().unwrap(),
        "--alerts",
        alerts.to_str().unwrap(),
        "--json",
    ]);
    let rows: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let wash = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["detector"] == "wash_trade")
        .expect("a wash row");
    assert!(wash["episodes"].as_u64().unwrap() > 0, "{wash}");
    assert!(wash["recall"].as_f64().unwrap() > 0.5, "{wash}");
}

#[test]
fn demo_runs_and_is_consistent() {
    let o = ok(&["demo", "--messages", "50000", "--symbols", "20"]);
    let text = stdout(&o);
    // 50,000 background messages plus the injected episodes'.
    let inspected: u64 = text
        .split("inspect: ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("an inspect line");
    assert!(
        inspected > 50_000 && text.contains(" messages, 20 stocks"),
        "{text}"
    );
    assert!(text.contains("labelled manipulation episodes"), "{text}");
    // The confusion matrix under the scores: a row per scenario with its expected detector.
    assert!(
        text.contains("confusion: episodes of each scenario"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.len() > 3 && w[0] == "ignition" && w[1] == "momentum_ignition"
        }),
        "{text}"
    );
    // Surveillance ran and was scored: every scenario's detector has a row with its recall.
    for det in [
        "spoofing",
        "layering",
        "quote_stuffing",
        "momentum_ignition",
        "marking_the_close",
        "wash_trade",
    ] {
        let row = text
            .lines()
            .find(|l| l.trim_start().starts_with(det))
            .unwrap_or_else(|| panic!("no {det} row: {text}"));
        let recall: f64 = row.split_whitespace().nth(3).unwrap().parse().unwrap();
        assert!(recall > 0.5, "{row}");
    }
    assert!(text.contains("event to alert"), "{text}");
    assert!(
        text.contains("consistency: every level equals the sum of its orders; 0 crossed books"),
        "{text}"
    );
    assert!(text.contains("book skips: 0 "), "{text}");
    assert!(
        text.contains("books identical to the single-threaded replay"),
        "{text}"
    );
    for stage in [
        "reader",
        "worker queue",
        "book update",
        "output hop",
        "end to end",
    ] {
        assert!(text.contains(stage), "latency table lacks {stage}: {text}");
    }
}

#[test]
fn run_json_counters_and_latency_artefacts() {
    let dir = tempfile::tempdir().unwrap();
    let f = generated(dir.path(), 30_000, 12, 21);
    let hgrm = dir.path().join("lat.hgrm");
    let o = ok(&[
        "run",
        s(&f),
        "--workers",
        "2",
        "--wait",
        "spin-yield",
        "--max-orders",
        "100000",
        "--latency-out",
        s(&hgrm),
        "--json",
    ]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["messages"], 30_000);
    assert_eq!(v["dropped"], 0);
    assert_eq!(v["processed"], v["offered"]);
    assert_eq!(v["output_received"], v["processed"]);
    assert_eq!(v["order_violations"], 0);
    assert_eq!(v["workers"], 2);
    let mut books = Books::new(BookConfig::for_orders(100_000, 1 << 16));
    replay(&std::fs::read(&f).unwrap(), &mut books, None, false).unwrap();
    assert_eq!(v["live_orders"], books.live_orders() as u64);
    assert_eq!(v["book_stats"]["adds"], books.stats().adds);
    let stages: Vec<&str> = v["latency"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        [
            "reader",
            "worker queue",
            "book update",
            "output hop",
            "end to end"
        ]
    );
    let e2e = &v["latency"][4];
    assert_eq!(e2e["count"], v["processed"]);
    for k in ["p50", "p90", "p99", "p999", "p9999", "max"] {
        assert!(e2e[k].as_u64().is_some(), "{k}");
    }
    assert!(e2e["p50"].as_u64() <= e2e["p99"].as_u64());
    assert!(e2e["p99"].as_u64() <= e2e["max"].as_u64());
    // The .hgrm is a percentile distribution whose total count is every event.
    let text = std::fs::read_to_string(&hgrm).unwrap();
    assert!(
        text.starts_with("       Value     Percentile TotalCount"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "Total count    = {:>12}",
            v["processed"].as_u64().unwrap()
        )),
        "{text}"
    );
    let svg = std::fs::read_to_string(dir.path().join("lat.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("end to end"));
    // Text mode prints the table and the ring counters.
    let text = stdout(&ok(&["run", s(&f), "--speed", "max", "--cores", "none"]));
    assert!(text.contains("30000 messages"), "{text}");
    assert!(text.contains("in-0") && text.contains("out-0"), "{text}");
    assert!(text.contains("p99.99"), "{text}");
    // Bad options are clean errors.
    assert!(!run(&["run", s(&f), "--speed", "fast"]).status.success());
    assert!(fails(&["run", s(&f), "--cores", "4096"]).contains("not available"));
    assert!(fails(&["run", s(&dir.path().join("missing.itch"))]).contains("missing.itch"));
}

#[test]
fn bench_runs_once() {
    let dir = tempfile::tempdir().unwrap();
    let f = generated(dir.path(), 20_000, 10, 8);
    let o = ok(&[
        "bench",
        s(&f),
        "--repeat",
        "1",
        "--json",
        "--threads",
        "2",
        "--max-orders",
        "100000",
    ]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["messages"], 20_000);
    let kernels = v["kernels"].as_array().unwrap();
    assert!(kernels.len() >= 5, "{kernels:?}");
    for k in kernels {
        assert_eq!(k["messages"], 20_000, "{k}");
    }
    assert_eq!(v["book_stats"]["unknown_refs"], 0);
    // Text output too.
    let text = stdout(&ok(&[
        "bench",
        s(&f),
        "--repeat",
        "1",
        "--max-orders",
        "100000",
    ]));
    assert!(text.contains("20000 messages"), "{text}");
}

#[test]
fn help_works_for_every_subcommand() {
    let subs: [&[&str]; 11] = [
        &[],
        &["inspect"],
        &["book"],
        &["gen"],
        &["convert"],
        &["convert", "lobster"],
        &["demo"],
        &["bench"],
        &["run"],
        &["bars"],
        &["export"],
    ];
    for sub in subs {
        let mut args = sub.to_vec();
        args.push("--help");
        let text = stdout(&ok(&args));
        assert!(text.contains("Usage: tickwatch"), "{args:?}: {text}");
        if let Some(name) = sub.last() {
            assert!(
                text.contains(&format!("Usage: tickwatch {}", sub.join(" "))),
                "{name}: {text}"
            );
        }
    }
    // The options the brief's users rely on are documented.
    let book = stdout(&ok(&["book", "--help"]));
    for opt in [
        "--symbol",
        "--at",
        "--depth",
        "--json",
        "--lenient",
        "--cache",
    ] {
        assert!(book.contains(opt), "book --help lacks {opt}");
    }
    let run_help = stdout(&ok(&["run", "--help"]));
    for opt in [
        "--workers",
        "--cores",
        "--wait",
        "--backpressure",
        "--speed",
        "--latency-out",
    ] {
        assert!(run_help.contains(opt), "run --help lacks {opt}");
    }
    let inspect = stdout(&ok(&["inspect", "--help"]));
    for opt in ["--json", "--threads", "--lenient"] {
        assert!(inspect.contains(opt), "inspect --help lacks {opt}");
    }
    // No subcommand, or an unknown one: a usage error.
    assert!(!run(&[]).status.success());
    assert!(!run(&["frobnicate"]).status.success());
}

#[test]
fn bars_and_export_agree_and_do_not_depend_on_workers() {
    let dir = tempfile::tempdir().unwrap();
    let feed = generated(dir.path(), 40_000, 20, 5);
    let a = dir.path().join("a.csv");
    let b = dir.path().join("b.csv");
    let o = ok(&["bars", s(&feed), "--workers", "1", "--json", "-o", s(&a)]);
    // The report is JSON on standard error; the rows are in the file.
    let report: Value = serde_json::from_slice(&o.stderr).expect("JSON report on stderr");
    assert!(o.stdout.is_empty());
    ok(&[
        "bars",
        s(&feed),
        "--workers",
        "3",
        "--window",
        "1s",
        "-o",
        s(&b),
    ]);
    let rows = std::fs::read_to_string(&a).unwrap();
    assert_eq!(rows, std::fs::read_to_string(&b).unwrap());
    let n = rows.lines().count() - 1;
    assert_eq!(report["bars"]["rows"].as_u64(), Some(n as u64));
    assert!(n > 100);
    // Rows on standard output when no file is given: the same rows.
    let o = ok(&["bars", s(&feed), "--workers", "2"]);
    assert_eq!(stdout(&o), rows);
    // The export's trades add up to the bars' volume and trade count.
    let csv = stdout(&ok(&["export", s(&feed)]));
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("ts_ns,symbol,msg_type,is_trade,shares,price_e4")
    );
    let (mut trades, mut volume, mut rows_out) = (0u64, 0u64, 0u64);
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        rows_out += 1;
        if f[3] == "1" {
            trades += 1;
            volume += f[4].parse::<u64>().unwrap();
        }
    }
    let (mut bar_trades, mut bar_volume, mut bar_messages) = (0u64, 0u64, 0u64);
    for l in rows.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        bar_volume += f[6].parse::<u64>().unwrap();
        bar_trades += f[8].parse::<u64>().unwrap();
        bar_messages += f[9].parse::<u64>().unwrap();
    }
    assert!(trades > 0);
    assert_eq!(
        (bar_trades, bar_volume, bar_messages),
        (trades, volume, rows_out)
    );
    // A slide that does not divide the window is refused, saying why.
    let e = fails(&["bars", s(&feed), "--window", "1s", "--slide", "300ms"]);
    assert!(e.contains("multiple of slide"), "{e}");
}

#[test]
fn run_alerts_file_equals_the_reference_and_scores() {
    // `run --alerts FILE` writes through the memory-mapped journal: the file must end up cut to
    // exactly the alerts (no NUL tail), byte-identical to the single-threaded `surveil`, and
    // readable by `eval`.
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("s.itch");
    ok(&[
        "gen",
        "--messages",
        "300000",
        "--symbols",
        "40",
        "--session",
        "10m",
        "--seed",
        "5",
        "--scenarios",
        "spoofing,layering,stuffing,ignition,close,wash",
        "--scenario-rate",
        "1",
        "--out",
        s(&feed),
    ]);
    let (a, r) = (dir.path().join("a.jsonl"), dir.path().join("r.jsonl"));
    let o = ok(&["run", s(&feed), "--workers", "2", "--alerts", s(&a)]);
    let report = stdout(&o);
    assert!(report.contains("detector tables:"), "{report}");
    assert!(report.contains("event to alert"), "{report}");
    ok(&["surveil", s(&feed), "-o", s(&r)]);
    let (got, want) = (std::fs::read(&a).unwrap(), std::fs::read(&r).unwrap());
    assert!(!want.is_empty());
    assert!(!got.contains(&0), "no NUL tail");
    assert!(got == want, "run's alerts differ from surveil's");
    // Bars and surveillance in one run (`run --bars`, or `bars --alerts`): each file equals
    // what each job writes alone, for any worker count.
    let b = dir.path().join("b.csv");
    ok(&["bars", s(&feed), "--workers", "1", "-o", s(&b)]);
    let bars_alone = std::fs::read(&b).unwrap();
    assert!(bars_alone.len() > 1_000);
    for (i, workers) in ["1", "3"].into_iter().enumerate() {
        let (a2, b2) = (
            dir.path().join(format!("a{i}.jsonl")),
            dir.path().join(format!("b{i}.csv")),
        );
        let o = ok(&[
            "run",
            s(&feed),
            "--workers",
            workers,
            "--alerts",
            s(&a2),
            "--bars",
            s(&b2),
        ]);
        let report = stdout(&o);
        assert!(
            report.contains("bars:") && report.contains("surveillance:"),
            "{report}"
        );
        assert!(report.contains("host hiccups"), "{report}");
        // Every thread, idle or not, has the kernel's account of what the host took.
        let threads = report.matches("  thread tw-").count();
        assert!(threads > 0, "{report}");
        assert_eq!(report.matches("host took: ").count(), threads, "{report}");
        assert!(
            std::fs::read(&a2).unwrap() == want,
            "{workers} workers: alerts differ"
        );
        assert!(
            std::fs::read(&b2).unwrap() == bars_alone,
            "{workers} workers: bars differ"
        );
        let (a3, b3) = (
            dir.path().join(format!("c{i}.jsonl")),
            dir.path().join(format!("d{i}.csv")),
        );
        ok(&[
            "bars",
            s(&feed),
            "--workers",
            workers,
            "-o",
            s(&b3),
            "--alerts",
            s(&a3),
        ]);
        assert!(
            std::fs::read(&a3).unwrap() == want,
            "bars --alerts, {workers} workers: alerts differ"
        );
        assert!(
            std::fs::read(&b3).unwrap() == bars_alone,
            "bars --alerts, {workers} workers: bars differ"
        );
    }
    // A device cannot be mapped: it is written to instead.
    ok(&["run", s(&feed), "--alerts", "/dev/null"]);
    let o = ok(&["eval", s(&feed), "--alerts", s(&a), "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v.to_string().contains("spoofing"), "{v}");
}

#[test]
fn flags_out_of_range_are_refused_at_once_naming_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let feed = sample_path();
    let (f, out) = (s(&feed), dir.path().join("x.itch"));
    // Each once panicked, hung, spun or tried to allocate terabytes.
    let cases: [(&[&str], &str, &str); 6] = [
        (
            &["run", f, "--ring-capacity", "18446744073709551615"],
            "--ring-capacity",
            "2..=16777216",
        ),
        (&["run", f, "--workers", "100000"], "--workers", "1..=1024"),
        (
            &["run", f, "--max-orders", "18446744073709551615"],
            "--max-orders",
            "1..=67108864",
        ),
        (&["bars", f, "--slide", "1ns"], "--slide", "1ms..=24h"),
        (&["bars", f, "--window", "1ns"], "--window", "1ms..=24h"),
        (
            &[
                "gen",
                "--messages",
                "100000",
                "--symbols",
                "10",
                "--scenarios",
                "spoofing",
                "--scenario-rate",
                "1e9",
                "--out",
                s(&out),
            ],
            "--scenario-rate",
            "(0, 10]",
        ),
    ];
    for (args, flag, range) in cases {
        let err = fails_fast(args);
        assert!(err.contains(flag) && err.contains(range), "{args:?}: {err}");
    }
    assert!(!out.exists(), "nothing generated");
}

#[test]
fn flag_combinations_too_big_for_memory_are_refused_at_once() {
    let f = sample_path();
    let f = s(&f);
    // Lateness a day long in 1 s panes: 86,404 panes per stock, terabytes of windows.
    let err = fails_fast(&["bars", f, "--window", "1s", "--lateness", "24h"]);
    assert!(
        err.contains("--lateness") && err.contains("memory"),
        "{err}"
    );
    // A 1 h window sliding every 1 ms: 3.6 M panes per stock, beyond the pane ring's limit.
    let err = fails_fast(&["bars", f, "--window", "1h", "--slide", "1ms"]);
    assert!(
        err.contains("--slide") && err.contains("pane slots"),
        "{err}"
    );
    // 1,024 workers with 2^24-slot rings: 1.4 TB of rings.
    let err = fails_fast(&["run", f, "--workers", "1024", "--ring-capacity", "16777216"]);
    assert!(
        err.contains("--ring-capacity") && err.contains("memory"),
        "{err}"
    );
}

#[test]
fn inspect_reads_a_capture_its_moldudp64_gaps_and_the_itch_inside() {
    let dir = tempfile::tempdir().unwrap();
    let want = counts(&sample());
    let sample = sample_path();
    // Every 7th packet left out: the gaps are reported with their exact ranges.
    let (pcap, pcapng) = (dir.path().join("s.pcap"), dir.path().join("s.pcapng"));
    ok(&[
        "convert",
        "itch",
        s(&sample),
        "--out",
        s(&pcap),
        "--vlan",
        "100",
        "--drop-every",
        "7",
    ]);
    ok(&[
        "convert",
        "itch",
        s(&sample),
        "--out",
        s(&pcapng),
        "--pcapng",
        "--linktype",
        "sll2",
    ]);
    let o = ok(&["inspect", s(&pcapng), "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let session = &v["mold"]["sessions"][0];
    assert_eq!(v["itch"]["messages"], 1000, "{v}");
    assert_eq!(session["counters"]["gaps"], 0, "{v}");
    assert_eq!(session["end_of_session"], true, "{v}");
    for (t, n) in &want {
        assert_eq!(v["itch"]["by_type"][t].as_u64(), Some(*n), "type {t}: {v}");
    }
    let o = ok(&["inspect", s(&pcap), "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let session = &v["mold"]["sessions"][0];
    let gaps = session["gaps"].as_array().unwrap();
    let lost: u64 = gaps.iter().map(|g| g["lost"].as_u64().unwrap()).sum();
    assert_eq!(gaps.len(), 4, "{v}");
    assert_eq!(v["itch"]["messages"].as_u64().unwrap() + lost, 1000, "{v}");
    // The gaps are the dropped packets' messages: they tile the missing sequence numbers.
    for g in gaps {
        assert!(
            g["first"].as_u64().unwrap() <= g["last"].as_u64().unwrap(),
            "{g}"
        );
    }
    let text = stdout(&ok(&["inspect", s(&pcap)]));
    assert!(
        text.contains("gap") && text.contains("end of session seen"),
        "{text}"
    );
}

/// Runs and expects a clean error exit (1) whose last line is the error; returns stderr (which
/// may start with notes, unlike [`fails`]).
fn fails_after_notes(args: &[&str]) -> String {
    let o = run(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("tickwatch: error:"), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// A generated feed with spoofing episodes (so with alerts).
fn generated_with_alerts(dir: &Path) -> PathBuf {
    let p = dir.join("spoof.itch");
    ok(&[
        "gen",
        "--messages",
        "100000",
        "--symbols",
        "5",
        "--scenarios",
        "spoofing",
        "--scenario-rate",
        "10",
        "--session",
        "2m",
        "--out",
        s(&p),
    ]);
    p
}

/// `feed` with an 'A' one byte short inserted before frame 10; the new frame's offset.
fn with_bad_length(feed: &[u8]) -> (Vec<u8>, usize) {
    let fr = frames(feed);
    let at = fr[10].0;
    let mut a = fr.iter().find(|(_, b)| b[0] == b'A').unwrap().1.to_vec();
    a.pop();
    let mut bad = feed[..at].to_vec();
    bad.extend_from_slice(&(a.len() as u16).to_be_bytes());
    bad.extend_from_slice(&a);
    bad.extend_from_slice(&feed[at..]);
    (bad, at)
}

// Regression: `surveil --lenient` and `bench --lenient` ignored --lenient (stopped at the first
// message of a wrong length).
#[test]
fn surveil_and_bench_honour_lenient() {
    let dir = tempfile::tempdir().unwrap();
    let good = generated_with_alerts(dir.path());
    let good_bytes = std::fs::read(&good).unwrap();
    let messages = frames(&good_bytes).len();
    let (bad, at) = with_bad_length(&good_bytes);
    let badp = file(dir.path(), "badlen.itch", &bad);
    let (want, got) = (dir.path().join("want.jsonl"), dir.path().join("got.jsonl"));

    let e = fails_after_notes(&["surveil", s(&badp), "--alerts", s(&got)]);
    assert!(e.contains(&format!("at byte offset {at}:")), "{e}");
    ok(&["surveil", s(&good), "--alerts", s(&want)]);
    let o = ok(&["surveil", s(&badp), "--alerts", s(&got), "--lenient"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--lenient: 1 messages"), "{err}");
    let want = std::fs::read_to_string(&want).unwrap();
    assert!(want.lines().count() > 0, "the feed raises alerts");
    assert_eq!(std::fs::read_to_string(&got).unwrap(), want);

    let bench = [
        "bench",
        s(&badp),
        "--repeat",
        "1",
        "--json",
        "--threads",
        "2",
    ];
    let e = fails(&bench);
    assert!(e.contains(&format!("at byte offset {at}:")), "{e}");
    let o = ok(&[&bench[..], &["--lenient"]].concat());
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["messages"], messages);
    for k in v["kernels"].as_array().unwrap() {
        assert_eq!(k["messages"], messages, "{k}");
    }
    assert!(String::from_utf8_lossy(&o.stderr).contains("--lenient: 1 messages"));
}

// Regression: a failed alerts write named no alerts (surveil: only the OS error; the pipeline
// once said "writing the bars").
#[test]
fn alerts_write_errors_say_writing_the_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let feed = generated_with_alerts(dir.path());
    for cmd in ["surveil", "run"] {
        let e = fails_after_notes(&[cmd, s(&feed), "--alerts", "/dev/full"]);
        assert!(e.contains("writing the alerts"), "{cmd}: {e}");
        assert!(!e.contains("bars"), "{cmd}: {e}");
    }
    let e = fails(&["bars", s(&feed), "-o", "/dev/null", "--alerts", "/dev/full"]);
    assert!(e.contains("writing the alerts"), "{e}");
}

/// A tmpfs of `size` mounted on `dir` until dropped (needs root).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .ok()?;
        o.status.success().then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

// Regression: `run --alerts` reserved 16 MiB before the first alert, so it failed on a 1 MiB file
// system with few alerts to write.
#[test]
fn run_alerts_fits_on_a_1_mib_file_system() {
    let dir = tempfile::tempdir().unwrap();
    let feed = generated_with_alerts(dir.path());
    let small = dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let Some(_fs) = Tmpfs::mount(&small, "1m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root); the journal's unit test checks the growth policy");
        return;
    };
    let alerts = small.join("alerts.jsonl");
    ok(&["run", s(&feed), "--alerts", s(&alerts)]);
    let want = dir.path().join("want.jsonl");
    ok(&["surveil", s(&feed), "--alerts", s(&want)]);
    let got = std::fs::read_to_string(&alerts).unwrap();
    assert!(got.lines().count() > 0);
    assert_eq!(got, std::fs::read_to_string(&want).unwrap());
}

/// Starts a paced `run` of `feed` (1x from the open: it lasts minutes) with alerts to `alerts`,
/// waits until the journal exists, truncates `victim` to 0 and returns the run's stderr, after
/// checking it ended with exit status 1 within 20 s.
fn truncate_while_running(feed: &Path, alerts: &Path, victim: &Path) -> String {
    let mut child = Command::new(BIN)
        .args([
            "run",
            s(feed),
            "--speed",
            "1",
            "--from",
            "09:30:00",
            "--alerts",
            s(alerts),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while std::fs::metadata(alerts).map_or(true, |m| m.len() == 0) {
        assert!(t0.elapsed() < Duration::from_secs(20), "no journal");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    std::fs::File::options()
        .write(true)
        .open(victim)
        .unwrap()
        .set_len(0)
        .unwrap();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t0.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("still running 30 s after truncating {}", victim.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{status:?}: {err}");
    err
}

// Regression: a feed or alerts file truncated while `run` mapped it killed the process with
// SIGBUS (exit 135) and no word of which file.
#[test]
fn truncated_feed_or_alerts_file_is_an_error_naming_it_not_sigbus() {
    let dir = tempfile::tempdir().unwrap();
    let feed = generated_with_alerts(dir.path());
    let alerts = dir.path().join("alerts.jsonl");
    for victim in ["feed", "alerts"] {
        let copy = dir.path().join(format!("{victim}-victim.itch"));
        std::fs::copy(&feed, &copy).unwrap();
        let _ = std::fs::remove_file(&alerts);
        let target = if victim == "feed" { &copy } else { &alerts };
        let err = truncate_while_running(&copy, &alerts, target);
        let line = err.lines().last().unwrap_or_default();
        assert!(line.starts_with("tickwatch: error: "), "{err}");
        assert!(line.contains(s(target)), "{victim}: {err}");
        assert!(
            line.contains("truncated while mapped: no byte at offset "),
            "{victim}: {err}"
        );
    }
}
