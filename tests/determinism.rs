//! Results never depend on the worker count, even for a corrupt feed: a message whose stock
//! locate disagrees with its order's, or an add that reuses a reference live in another stock,
//! means the same whichever stocks share a worker.

use std::sync::atomic::{AtomicBool, AtomicU64};

mod common;
use common::scenario::{assert_same_alerts, scenario_feed, Scenarios};
use common::shared::Shared;

use tickwatch::book::{BookConfig, Books};
use tickwatch::feed::Frames;
use tickwatch::pipeline::alerts::SurvJob;
use tickwatch::pipeline::{run, run_surv, shard_of, PipelineConfig, WaitStrategy};
use tickwatch::replay::replay;
use tickwatch::surv::event::party_of_name;
use tickwatch::surv::{surveil_feed, FlowRecord, Rules};

const SYMBOLS: u32 = 30;

/// What [`corrupt`] did.
#[derive(Debug, Default)]
struct Damage {
    moved: u64,
    reused: u64,
}

/// Every `every`-th E/C/X/D/U names the next stock instead of its own; every `every`-th add
/// takes the reference of the last add of another stock (often still live).
fn corrupt(feed: &mut [u8], every: u64) -> Damage {
    let mut d = Damage::default();
    let (mut at, mut n) = (0usize, 0u64);
    let mut last_add: Option<(u16, [u8; 8])> = None;
    while at + 2 <= feed.len() {
        let len = u16::from_be_bytes([feed[at], feed[at + 1]]) as usize;
        let body = &mut feed[at + 2..at + 2 + len];
        let locate = u16::from_be_bytes([body[1], body[2]]);
        n += 1;
        match body[0] {
            b'E' | b'C' | b'X' | b'D' | b'U' if n % every == 0 => {
                let other = locate % SYMBOLS as u16 + 1;
                body[1..3].copy_from_slice(&other.to_be_bytes());
                d.moved += 1;
            }
            b'A' | b'F' => {
                match last_add {
                    Some((l, r)) if l != locate && n % every == 1 => {
                        body[11..19].copy_from_slice(&r);
                        d.reused += 1;
                    }
                    _ => {}
                }
                last_add = Some((locate, body[11..19].try_into().unwrap()));
            }
            _ => {}
        }
        at += 2 + len;
    }
    d
}

fn config(workers: usize, wait: WaitStrategy) -> PipelineConfig {
    PipelineConfig {
        workers,
        wait,
        books: BookConfig::small(),
        ring_capacity: 1024,
        ..PipelineConfig::default()
    }
}

#[test]
fn a_corrupt_feed_builds_the_same_books_for_any_worker_count() {
    let mut feed = scenario_feed(80_000, SYMBOLS, 21).feed;
    let d = corrupt(&mut feed, 37);
    assert!(d.moved > 100 && d.reused > 100, "{d:?}");
    let mut single = Books::new(BookConfig::small());
    let rep = replay(&feed, &mut single, None, false).unwrap();
    // The damage shows: messages naming an order not live in their stock.
    assert!(
        single.stats().unknown_refs >= d.moved / 2,
        "{:?}",
        single.stats()
    );
    for workers in [1, 2, 3] {
        let out = run(
            &feed,
            &config(workers, WaitStrategy::SpinYield),
            &AtomicBool::new(false),
            &AtomicU64::new(0),
        )
        .unwrap();
        let r = &out.report;
        assert_eq!(r.messages, rep.messages);
        assert_eq!(r.book_stats, *single.stats(), "{workers} workers");
        assert_eq!(r.live_orders, single.live_orders(), "{workers} workers");
        for locate in single.active_locates() {
            let owner = &out.books[shard_of(locate, workers)];
            for side in [tickwatch::itch::Side::Buy, tickwatch::itch::Side::Sell] {
                let want: Vec<_> = single.depth(locate, side).collect();
                let got: Vec<_> = owner.depth(locate, side).collect();
                assert_eq!(got, want, "{workers} workers: locate {locate} {side:?}");
            }
        }
    }
}

#[test]
fn a_corrupt_feed_raises_the_same_alerts_for_any_worker_count() {
    let Scenarios { mut feed, flow, .. } = scenario_feed(150_000, SYMBOLS, 22);
    corrupt(&mut feed, 53);
    let mut books = Books::new(BookConfig::small());
    let (alerts, _) = surveil_feed(&feed, &mut books, Rules::default(), &flow, 1024).unwrap();
    let mut want = Vec::new();
    for a in &alerts {
        a.write_json(&mut want);
    }
    assert!(!alerts.is_empty());
    for (workers, wait) in [
        (1, WaitStrategy::BusySpin),
        (2, WaitStrategy::SpinYield),
        (3, WaitStrategy::Park),
    ] {
        let sink = Shared::default();
        let job = SurvJob {
            rules: Rules::default(),
            flow: flow.clone(),
            sink: sink.clone().into(),
            mark_every: 1024,
            reload: None,
            detectors: Vec::new(),
        };
        let cfg = config(workers, wait);
        run_surv(
            &feed,
            &cfg,
            job,
            &AtomicBool::new(false),
            &AtomicU64::new(0),
        )
        .unwrap();
        let got = sink.0.lock().unwrap().clone();
        assert_same_alerts(&format!("{workers} workers"), &got, &want);
    }
}

#[test]
fn inspect_refs_names_what_the_corruption_did() {
    let mut feed = scenario_feed(40_000, SYMBOLS, 23).feed;
    let d = corrupt(&mut feed, 41);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.itch");
    std::fs::write(&path, &feed).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tickwatch"))
        .args(["inspect", "--refs", "--json"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &v["references"];
    let n = |k: &str| r[k].as_u64().unwrap();
    // Some moved messages name an order already gone, some an order live in the next stock.
    assert!(n("other_stock") > 0 && n("other_stock") <= d.moved, "{r}");
    assert!(
        n("reused_other_stock") > 0 && n("reused_other_stock") <= d.reused,
        "{r} {d:?}"
    );
    assert!(r["first_other_stock_offset"].as_u64().is_some(), "{r}");
    // Without --refs the pass does not run, and the text says so.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tickwatch"))
        .arg("inspect")
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("references  not followed"), "{text}");
    // The clean feed has no corruption line.
    let clean = scenario_feed(40_000, SYMBOLS, 23).feed;
    std::fs::write(&path, &clean).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tickwatch"))
        .args(["inspect", "--refs"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("references  ") && !text.contains("\ncorrupt "),
        "{text}"
    );
}

/// The stock directory's symbols.
fn symbols(feed: &[u8]) -> Vec<[u8; 8]> {
    Frames::new(feed)
        .map(|f| f.unwrap().body)
        .filter(|b| b[0] == b'R')
        .map(|b| b[11..19].try_into().unwrap())
        .collect()
}

/// Dense flow: every 20 s, `per` records for every stock within 1 µs, from 7 accounts (news,
/// cancels and fills): a mark then applies far more risk inputs than one step's buffer held.
fn dense(feed: &[u8], per: u64) -> Vec<FlowRecord> {
    use tickwatch::surv::flow::FlowEvent;
    let mut out = Vec::new();
    let t0 = 34_300_000_000_000u64;
    for burst in 0..20u64 {
        for (k, stock) in symbols(feed).into_iter().enumerate() {
            for i in 0..per {
                let event = [FlowEvent::New, FlowEvent::Cancel, FlowEvent::Fill][(i % 3) as usize];
                out.push(FlowRecord {
                    ts: t0 + burst * 20_000_000_000 + k as u64 * 10 + i,
                    account: party_of_name(&format!("ACCT{}", i % 7)).unwrap(),
                    mpid: [0; 4],
                    stock,
                    event,
                    side: if i % 2 == 0 {
                        tickwatch::itch::Side::Buy
                    } else {
                        tickwatch::itch::Side::Sell
                    },
                    order_ref: 0,
                    price: 1_000_000,
                    shares: 100,
                    match_number: 0,
                });
            }
        }
    }
    out.sort_by_key(|f| f.ts);
    out
}

/// The alerts of surveillance over `feed` with `flow` and `rules`: single-threaded, then for 1,
/// 2 and 3 workers, which must write the same bytes and count the same overflow. The
/// single-threaded risk-input overflow is returned.
fn same_alerts_for_any_workers(
    feed: &[u8],
    flow: &[FlowRecord],
    rules: &Rules,
) -> (usize, u64, u64) {
    let mut books = Books::new(BookConfig::small());
    let (alerts, counters) = surveil_feed(feed, &mut books, *rules, flow, 1024).unwrap();
    let mut want = Vec::new();
    for a in &alerts {
        a.write_json(&mut want);
    }
    let mut waits = 0;
    for workers in [1, 2, 3] {
        let sink = Shared::default();
        let job = SurvJob {
            rules: *rules,
            flow: flow.to_vec(),
            sink: sink.clone().into(),
            mark_every: 1024,
            reload: None,
            detectors: Vec::new(),
        };
        let cfg = config(workers, WaitStrategy::SpinYield);
        let out = run_surv(feed, &cfg, job, &AtomicBool::new(false), &AtomicU64::new(0)).unwrap();
        out.report.check_conservation().unwrap();
        let sv = out.report.surv.as_ref().unwrap();
        waits += sv.mark_waits;
        assert_eq!(
            sv.counters.risk_overflow, counters.risk_overflow,
            "{workers} workers: risk inputs over a step's buffer"
        );
        let got = sink.0.lock().unwrap().clone();
        assert!(
            got == want,
            "{workers} workers: {} lines vs {}",
            got.iter().filter(|&&c| c == b'\n').count(),
            alerts.len()
        );
    }
    (alerts.len(), counters.risk_overflow, waits)
}

fn strict_risk() -> Rules {
    let mut rules = Rules::default();
    rules.risk.max_order_rate = 5.0;
    rules.risk.max_cancel_rate = 5.0;
    rules.risk.max_net_notional_per_stock_usd = 10_000.0;
    rules.risk.max_loss_usd = 1_000.0;
    rules.risk.cooldown_ns = 1_000_000_000;
    rules
}

#[test]
fn dense_flow_with_strict_risk_limits_raises_the_same_alerts_for_any_worker_count() {
    let feed = scenario_feed(150_000, SYMBOLS, 24).feed;
    // 200 records per stock at each burst: ≈ 6,000 risk inputs at one mark, more than a
    // worker's ring holds, so the mark waits for room step by step; none is dropped.
    let (alerts, overflow, waits) =
        same_alerts_for_any_workers(&feed, &dense(&feed, 200), &strict_risk());
    assert!(alerts > 50, "{alerts} alerts");
    assert_eq!(overflow, 0);
    assert!(waits > 0, "some mark waited for ring room");
}

#[test]
fn one_stocks_flow_over_a_step_overflows_alike_for_any_worker_count() {
    let feed = scenario_feed(60_000, SYMBOLS, 25).feed;
    // 400 records of one stock within 1 µs: more than one step buffers. The overflow is counted
    // and, since a step concerns one stock, the same whatever the sharding.
    let (_, overflow, _) = same_alerts_for_any_workers(&feed, &dense(&feed, 400), &strict_risk());
    assert!(overflow > 0);
}

/// The time of every message, in feed order.
fn times(feed: &[u8]) -> Vec<u64> {
    Frames::new(feed)
        .map(|f| {
            let b = f.unwrap().body;
            u64::from_be_bytes([0, 0, b[5], b[6], b[7], b[8], b[9], b[10]])
        })
        .collect()
}

/// Alerts' times, from JSON lines.
fn alert_times(jsonl: &[u8]) -> Vec<u64> {
    String::from_utf8_lossy(jsonl)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["ts_ns"].as_u64().unwrap()
        })
        .collect()
}

#[test]
fn a_stopped_run_joins_no_flow_past_its_stop_point() {
    let Scenarios { feed, flow, .. } = scenario_feed(200_000, SYMBOLS, 26);
    let ts = times(&feed);
    assert!(
        flow.iter().any(|f| f.ts > ts[ts.len() / 3]),
        "flow past the stop"
    );
    // Ctrl-C at about a third of the feed.
    let stop = AtomicBool::new(false);
    let progress = AtomicU64::new(0);
    let sink = Shared::default();
    let job = SurvJob {
        rules: Rules::default(),
        flow: flow.clone(),
        sink: sink.clone().into(),
        mark_every: 1024,
        reload: None,
        detectors: Vec::new(),
    };
    let mut cfg = config(2, WaitStrategy::SpinYield);
    // Paced (the 10-minute session in ≈ 3 s; the pre-open at full speed), so the stop lands
    // mid-feed.
    cfg.speed = Some(200.0);
    cfg.pace_from = 34_200_000_000_000;
    let third = ts.len() as u64 / 3;
    let out = std::thread::scope(|s| {
        s.spawn(|| {
            while progress.load(std::sync::atomic::Ordering::Relaxed) < third {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        run_surv(&feed, &cfg, job, &stop, &progress).unwrap()
    });
    let read = out.report.messages as usize;
    assert!(read < ts.len(), "stopped early: {read} of {}", ts.len());
    let last = ts[..read].iter().copied().max().unwrap();
    let got = sink.0.lock().unwrap().clone();
    let late: Vec<u64> = alert_times(&got)
        .into_iter()
        .filter(|&t| t > last)
        .collect();
    assert!(
        late.is_empty(),
        "alerts stamped after the stop ({last}): {late:?}"
    );
    // And a stopped run is a cut feed: the same alerts as the feed and the flow cut where it
    // stopped.
    let at = Frames::new(&feed)
        .nth(read)
        .map_or(feed.len(), |f| f.unwrap().offset as usize);
    let cut: Vec<FlowRecord> = flow.iter().filter(|f| f.ts <= last).copied().collect();
    assert!(cut.len() < flow.len());
    let mut books = Books::new(BookConfig::small());
    let (alerts, c) = surveil_feed(&feed[..at], &mut books, Rules::default(), &cut, 1024).unwrap();
    let mut want = Vec::new();
    for a in &alerts {
        a.write_json(&mut want);
    }
    assert!(c.flow_applied <= cut.len() as u64);
    assert!(
        got == want,
        "{} alerts vs {} on the cut feed",
        alert_times(&got).len(),
        alerts.len()
    );
}
