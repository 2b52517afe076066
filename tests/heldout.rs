//! Held-out evaluation (issue 14): feeds of the independent generator (`tickwatch gen-indep`,
//! `src/indep/`) on seeds ≥ 1000 — never used for tuning — including the held-out regime
//! `halt`, run through `surveil` and scored by `eval` with the default rules. The floors below
//! are the figures measured when this test was written minus a small margin; a floor of 0
//! marks a detector that really fails on these feeds today (QUALITY.md, "held-out"). The test
//! also checks the generator's own invariants.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tickwatch::indep::{self, check::check, regime::REGIMES, Config};

const BIN: &str = env!("CARGO_BIN_EXE_tickwatch");

/// The held-out feeds: (seed, regime). A drawn regime where `None`; the penny regime (sub-penny
/// ticks) and the held-out regime are named so that every run has them.
const FEEDS: [(u64, Option<&str>); 6] = [
    (1000, None),
    (1001, None),
    (1002, None),
    (1003, None),
    (1004, Some("penny")),
    (1005, Some("halt")),
];

/// Per family: (detector, recall floor, precision floor): the figures measured on FEEDS
/// (detected/episodes, true positives/alerts in the comments) minus about one episode's (or one
/// alert's) worth. Low floors are today's truth, not a goal. Raised where the scale-free
/// detectors (stop 20) measured higher; spoofing recall was 6/8 before them and keeps its floor.
const FLOORS: [(&str, f64, f64); 7] = [
    ("spoofing", 0.62, 0.4),           // 5/8, 5/11 (was 6/8, 6/24)
    ("layering", 0.6, 0.9),            // 10/15, 10/10
    ("quote_stuffing", 0.81, 0.7),     // 10/11, 15/19
    ("momentum_ignition", 0.25, 0.65), // 4/12, 4/5 (was 3/12, 3/5)
    ("marking_the_close", 0.22, 0.5),  // 3/9, 3/4
    ("abnormal_move", 0.75, 0.17),     // 7/8, 7/34
    ("wash_trade", 0.81, 0.9),         // 10/11, 10/10 (the miss: a feed without flow)
];

/// At most this many manipulation-family alerts on the hard negatives (measured: 1 alert, on
/// 1 of 33 negatives; 2 before the scale-free detectors).
const MAX_FALSE_ON_NEGATIVES: u64 = 2;

fn run(args: &[&str]) -> Output {
    let o = Command::new(BIN)
        .args(args)
        .output()
        .expect("run tickwatch");
    assert!(
        o.status.success(),
        "tickwatch {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Generates, checks and surveils one feed; returns (feed, alerts).
fn prepare(dir: &Path, seed: u64, regime: Option<&str>) -> (PathBuf, PathBuf) {
    let feed = dir.join(format!("h{seed}.itch"));
    let alerts = dir.join(format!("h{seed}.jsonl"));
    let seed_arg = seed.to_string();
    let mut args = vec!["gen-indep", "--seed", &seed_arg, "--out", s(&feed)];
    if let Some(r) = regime {
        args.extend(["--regime", r]);
    }
    run(&args);
    let bytes = std::fs::read(&feed).unwrap();
    if let Err(e) = check(&bytes) {
        panic!("seed {seed}: {e}");
    }
    run(&["surveil", s(&feed), "-o", s(&alerts)]);
    (feed, alerts)
}

#[test]
fn held_out_feeds_hold_their_floors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Two feeds at a time (CI has two cores).
    let pairs: Vec<(PathBuf, PathBuf)> = FEEDS
        .chunks(2)
        .flat_map(|c| {
            std::thread::scope(|sc| {
                let hs: Vec<_> = c
                    .iter()
                    .map(|&(seed, r)| sc.spawn(move || prepare(d, seed, r)))
                    .collect();
                hs.into_iter()
                    .map(|h| h.join().unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    // The pipeline's alerts are the reference's on an independent feed too (a halt-cross one).
    let (feed, alerts) = &pairs[5];
    let piped = d.join("piped.jsonl");
    run(&["run", s(feed), "--alerts", s(&piped)]);
    let cut = |p: &Path| {
        let b = std::fs::read(p).unwrap();
        let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        b[..n].to_vec()
    };
    assert!(
        cut(&piped) == cut(alerts),
        "run --alerts differs from surveil"
    );
    let mut args = vec!["eval".to_string()];
    args.extend(pairs.iter().map(|p| s(&p.0).to_string()));
    for p in &pairs {
        args.extend(["--alerts".to_string(), s(&p.1).to_string()]);
    }
    args.extend(["--json".to_string(), "--confusion".to_string()]);
    let o = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let table = run(&args[..args.len() - 2]
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    println!("{}", String::from_utf8_lossy(&table.stdout));
    let c = &v["confusion"];
    let episodes: u64 = c["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["episodes"].as_u64().unwrap())
        .sum();
    let negatives = c["negatives"].as_u64().unwrap();
    assert!(episodes >= 80, "only {episodes} episodes");
    assert!(negatives >= 15, "only {negatives} hard negatives");
    for (det, recall, precision) in FLOORS {
        let row = v["scores"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["detector"] == det)
            .unwrap_or_else(|| panic!("no {det} row"));
        assert!(row["episodes"].as_u64().unwrap() >= 5, "{det}: {row}");
        let r = row["recall"].as_f64().unwrap();
        let p = row["precision"].as_f64().unwrap_or(0.0);
        assert!(r >= recall, "{det}: recall {r:.3} < floor {recall}");
        assert!(
            p >= precision,
            "{det}: precision {p:.3} < floor {precision}"
        );
    }
    let false_alerts = c["false_alerts_on_negatives"].as_u64().unwrap();
    assert!(
        false_alerts <= MAX_FALSE_ON_NEGATIVES,
        "{false_alerts} manipulation alerts on hard negatives"
    );
}

#[test]
fn a_sub_penny_stock_swept_to_the_lowest_price_keeps_its_book_uncrossed() {
    // Seed 71 broke the invariant (a locked book at $0.0001) and wrote no feed.
    let cfg = Config {
        seed: 71,
        regime: None,
        clean: false,
    };
    let out = indep::generate(&cfg).unwrap();
    check(&out.itch).unwrap();
}

#[test]
fn every_regime_keeps_the_generators_invariants() {
    for (i, name) in REGIMES.iter().enumerate() {
        let cfg = Config {
            seed: 2000 + i as u64,
            regime: Some(name.to_string()),
            clean: false,
        };
        let out = indep::generate(&cfg).unwrap();
        let c = check(&out.itch).unwrap_or_else(|e| panic!("regime {name}: {e}"));
        assert!(c.executions > 100 && c.adds > 1000, "regime {name}: {c:?}");
        if *name == "penny" {
            assert!(out.regime.prices.iter().all(|&p| p < 10_000));
            assert!(c.sub_penny > 100, "penny: {c:?}");
        }
        if *name == "halt" {
            // One halt cross per stock, nothing else crosses before the close.
            assert!(c.crosses >= out.regime.stocks as u64, "halt: {c:?}");
        }
        if *name == "nocross" {
            assert_eq!(c.crosses, 0, "nocross: {c:?}");
        }
        let negatives = out.episodes.iter().filter(|e| e.detector == "none").count();
        assert!(negatives > 0 && out.episodes.len() > negatives, "{name}");
        // The same seed gives the same bytes.
        assert_eq!(indep::generate(&cfg).unwrap().itch, out.itch, "{name}");
        // Its clean feed keeps the hard negatives and nothing else.
        let clean = indep::generate(&Config { clean: true, ..cfg }).unwrap();
        check(&clean.itch).unwrap_or_else(|e| panic!("clean {name}: {e}"));
        assert!(
            clean.episodes.iter().all(|e| e.detector == "none"),
            "{name}"
        );
        assert_eq!(clean.episodes.len(), negatives, "{name}");
    }
    assert!(indep::generate(&Config {
        seed: 1,
        regime: Some("nope".into()),
        clean: false,
    })
    .is_err());
}

#[test]
fn the_invariant_check_catches_what_it_claims_to() {
    use tickwatch::itch::be::{BeU32, BeU64};
    use tickwatch::itch::encode::{header, push_frame};
    use tickwatch::itch::wire::{AddOrder, OrderExecuted};
    let add = |r: u64, side: u8, px: u32, ts: u64| AddOrder {
        hdr: header(b'A', 1, 0, ts),
        order_ref: BeU64::new(r),
        side,
        shares: BeU32::new(100),
        stock: *b"ABC     ",
        price: BeU32::new(px),
    };
    let exec = |r: u64, ts: u64| OrderExecuted {
        hdr: header(b'E', 1, 0, ts),
        order_ref: BeU64::new(r),
        executed_shares: BeU32::new(100),
        match_number: BeU64::new(1),
    };
    let feed = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut v = Vec::new();
        f(&mut v);
        check(&v)
    };
    // A clean sequence passes.
    assert!(feed(&|v| {
        push_frame(v, &add(1, b'B', 100_000, 10));
        push_frame(v, &add(2, b'S', 100_100, 11));
        push_frame(v, &exec(2, 12));
    })
    .is_ok());
    // An aggressive order shown as an add: the book locks.
    let e = feed(&|v| {
        push_frame(v, &add(1, b'S', 100_000, 10));
        push_frame(v, &add(2, b'B', 100_000, 11));
    })
    .unwrap_err();
    assert!(e.contains("locked or crossed"), "{e}");
    // An execution of an order that does not rest.
    let e = feed(&|v| push_frame(v, &exec(9, 10))).unwrap_err();
    assert!(e.contains("dead order"), "{e}");
    // Executed in the nanosecond it was added.
    let e = feed(&|v| {
        push_frame(v, &add(1, b'B', 100_000, 10));
        push_frame(v, &exec(1, 10));
    })
    .unwrap_err();
    assert!(e.contains("nanosecond"), "{e}");
    // Off the Rule 612 grid: a $10.005 quote.
    let e = feed(&|v| push_frame(v, &add(1, b'B', 100_050, 10))).unwrap_err();
    assert!(e.contains("grid"), "{e}");
    // Time going back.
    let e = feed(&|v| {
        push_frame(v, &add(1, b'B', 100_000, 10));
        push_frame(v, &add(2, b'B', 100_000, 9));
    })
    .unwrap_err();
    assert!(e.contains("time goes back"), "{e}");
}

#[test]
fn gen_indep_and_eval_refuse_what_they_cannot_do() {
    let fail = |args: &[&str]| {
        let o = Command::new(BIN).args(args).output().unwrap();
        assert!(!o.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let e = fail(&["gen-indep", "--regime", "nope", "--out", "/dev/null"]);
    assert!(
        e.contains("unknown regime `nope`") && e.contains("penny"),
        "{e}"
    );
    let e = fail(&["eval", "a.itch", "b.itch", "--alerts", "a.jsonl"]);
    assert!(e.contains("2 feeds but 1 --alerts"), "{e}");
    let e = fail(&[
        "eval", "a.itch", "b.itch", "--truth", "t", "--alerts", "a", "--alerts", "b",
    ]);
    assert!(e.contains("--truth names one feed"), "{e}");
}
