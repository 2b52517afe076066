//! Windowed `stream::Job`s sharded over the engine: tumbling, sliding, count and session
//! windows, on update and on close, sparse and dense keys, with out-of-order, late and too-late
//! records and jumps in time — the changelog equals the single-threaded job's for 1–4 workers
//! and every wait strategy.

use std::sync::atomic::{AtomicBool, AtomicU64};

use tickwatch::engine::{self, Config, Control, WaitStrategy};
use tickwatch::stream::{BuildError, Job, RecordSource, ShardJob, Sharded, Span, Window};

#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Txn {
    ts_ns: u64,
    account: u64,
    balance: i64,
}

/// `n` records over `accounts` keys: ≈ 1 µs apart with up to 0.8 µs of jitter, one in 97
/// stamped 20–60 µs late, and a jump of ≈ 0.5 ms every 5,000 records.
fn txns(n: u64, accounts: u64, seed: u64) -> Vec<Txn> {
    let mut x = seed | 1;
    let mut next = move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        x >> 33
    };
    (0..n)
        .map(|i| {
            let mut ts = 100_000 + i * 1_000 + (i / 5_000) * 500_000 + next() % 800;
            if next() % 97 == 0 {
                ts -= 20_000 + next() % 40_000;
            }
            Txn {
                ts_ns: ts,
                account: next() % accounts,
                balance: (next() % 2_000) as i64 - 500,
            }
        })
        .collect()
}

/// One windowed job to shard.
#[derive(Clone, Copy, Debug)]
struct Spec {
    window: Window,
    on_close: bool,
    dense: bool,
    ooo: u64,
    lateness: u64,
}

fn build(s: Spec) -> Result<impl ShardJob<Txn, Value = i64>, BuildError> {
    let key = |t: &Txn| t.account;
    let b = if s.dense {
        Job::dense(key)
    } else {
        Job::keyed(key)
    };
    let b = b
        .event_time(|t| t.ts_ns)
        .window(s.window)
        .out_of_orderness(s.ooo)
        .allowed_lateness(s.lateness)
        .aggregate(|| 0i64, |acc: &mut i64, t: &Txn| *acc += t.balance)
        .merge(|a, b| *a += *b)
        .capacity(512);
    if s.on_close {
        b.on_close().build()
    } else {
        b.on_update().build()
    }
}

type Changelog = Vec<(u64, Span, i64)>;

fn single(records: &[Txn], s: Spec) -> Changelog {
    let mut job = build(s).unwrap();
    let mut out = Vec::new();
    for t in records {
        job.push(t, |_, k, sp, v| out.push((k, sp, *v)));
    }
    job.finish(|_, k, sp, v| out.push((k, sp, *v)));
    out
}

fn sharded(records: &[Txn], s: Spec, workers: usize, wait: WaitStrategy) -> Changelog {
    let (stop, progress) = (AtomicBool::new(false), AtomicU64::new(0));
    let ctl = Control {
        stop: &stop,
        progress: &progress,
    };
    let cfg = Config {
        workers,
        wait,
        ring_capacity: 256,
        ..Config::default()
    };
    let src = RecordSource::new(records, |t: &Txn| t.account, |t: &Txn| t.ts_ns);
    let mut out = Vec::new();
    let job = Sharded::new(
        move || build(s),
        |k, sp: Span, v: &i64| out.push((k, sp, *v)),
    );
    let done = engine::run_job(src, job, &cfg, ctl).unwrap();
    assert!(done.error.is_none());
    assert_eq!(done.report.order_violations, 0);
    assert_eq!(done.ops.iter().map(|o| o.lost).sum::<u64>(), 0);
    drop(done);
    out
}

#[test]
fn windowed_jobs_sharded_equal_the_single_threaded_job() {
    let records = txns(30_000, 300, 11);
    let spec = |window, on_close, dense, ooo, lateness| Spec {
        window,
        on_close,
        dense,
        ooo,
        lateness,
    };
    let specs = [
        spec(Window::Tumbling(50_000), true, false, 300, 0),
        spec(Window::Tumbling(10_000), true, true, 0, 25_000),
        spec(
            Window::Sliding {
                size: 60_000,
                slide: 20_000,
            },
            false,
            false,
            200,
            7_000,
        ),
        spec(
            Window::Sliding {
                size: 40_000,
                slide: 10_000,
            },
            true,
            false,
            900,
            33_000,
        ),
        spec(Window::Count { size: 6, slide: 3 }, true, false, 0, 0),
        spec(Window::Count { size: 4, slide: 4 }, false, true, 0, 0),
    ];
    matches_single(&records, &specs);
}

/// Sessions take a mark at every rising watermark: fewer records, so the test stays short.
#[test]
fn session_windows_sharded_equal_the_single_threaded_job() {
    // A key's record every ≈ 80 µs, so gaps near that split and merge sessions.
    let records = txns(8_000, 80, 23);
    let spec = |gap, on_close, dense, ooo, lateness| Spec {
        window: Window::Session { gap },
        on_close,
        dense,
        ooo,
        lateness,
    };
    let specs = [
        spec(60_000, true, false, 300, 0),
        spec(100_000, false, true, 0, 30_000),
        spec(40_000, false, false, 900, 7_000),
    ];
    matches_single(&records, &specs);
}

/// Every spec, sharded over 1–4 workers and every wait strategy, equals the single job.
fn matches_single(records: &[Txn], specs: &[Spec]) {
    let waits = [
        WaitStrategy::BusySpin,
        WaitStrategy::SpinYield,
        WaitStrategy::Park,
    ];
    for &s in specs {
        let want = single(records, s);
        assert!(want.len() > 1_000, "{s:?}: only {} results", want.len());
        for (workers, wait) in (1..=4).flat_map(|w| waits.map(|x| (w, x))) {
            let got = sharded(records, s, workers, wait);
            if got != want {
                let at = got.iter().zip(&want).position(|(a, b)| a != b);
                panic!(
                    "{s:?}, {workers} workers, {wait:?}: {} vs {} results, first difference at {at:?}",
                    got.len(),
                    want.len()
                );
            }
        }
    }
}

#[test]
fn the_fixture_has_late_and_dropped_records() {
    // The windowed test above means something only if records arrive late and too late.
    let records = txns(30_000, 300, 11);
    let s = Spec {
        window: Window::Tumbling(10_000),
        on_close: true,
        dense: true,
        ooo: 0,
        lateness: 25_000,
    };
    let late = single(&records, s)
        .iter()
        .filter(|(_, sp, _)| sp.kind == tickwatch::window::FiringKind::Late)
        .count();
    assert!(late > 50, "{late} late firings");
}
