//! The declarative job API (`tickwatch::stream`) against brute force: global running
//! aggregates, tumbling, sliding, count and session windows; overflow, lateness and build
//! errors; and a `push` loop that allocates nothing.

use std::collections::HashMap;

use proptest::prelude::*;
use tickwatch::stream::{BuildError, Job, Span, Window};
use tickwatch::window::{Added, Aggregate, Emit, FiringKind, Ts, WindowError};

#[derive(Debug, Clone, Copy, PartialEq)]
struct Txn {
    ts: u64,
    account: u64,
    balance: i64,
}

/// Sum and count of balances.
type SumCount = (i64, u64);

/// Pushes every record, then finishes; returns every emission.
macro_rules! run {
    ($job:expr, $recs:expr) => {{
        let mut out: Vec<(u64, Span, SumCount)> = Vec::new();
        for r in $recs.iter() {
            $job.push(r, |k, s, a| out.push((k, s, *a)));
        }
        $job.finish(|k, s, a| out.push((k, s, *a)));
        out
    }};
}

/// A windowed job with a (sum, count) closure aggregate.
macro_rules! sum_count_job {
    ($window:expr, $ooo:expr) => {
        Job::keyed(|t: &Txn| t.account)
            .event_time(|t| t.ts)
            .window($window)
            .aggregate(
                || (0i64, 0u64),
                |a: &mut SumCount, t: &Txn| {
                    a.0 += t.balance;
                    a.1 += 1;
                },
            )
            .merge(|a, b| {
                a.0 += b.0;
                a.1 += b.1;
            })
            .out_of_orderness($ooo)
            .sessions_per_key(64)
            .capacity(64)
            .build()
            .unwrap()
    };
}

/// Records with nondecreasing base times plus a jitter of at most `ooo`, so that a watermark
/// trailing the maximum by `ooo` never makes one late.
fn records(ooo: u64) -> impl Strategy<Value = Vec<Txn>> {
    prop::collection::vec((0u64..6, 0u64..40, 0..=ooo, -100i64..100), 0..120).prop_map(|raw| {
        let mut base = 0;
        raw.into_iter()
            .map(|(account, dt, jitter, balance)| {
                base += dt;
                Txn {
                    ts: base + jitter,
                    account: account * 1_000_003 + 17, // sparse keys
                    balance,
                }
            })
            .collect()
    })
}

fn sorted(mut v: Vec<(u64, Ts, Ts, SumCount)>) -> Vec<(u64, Ts, Ts, SumCount)> {
    v.sort_unstable();
    v
}

/// Final results only: (key, start, end, acc) of on-time firings.
fn finals(out: &[(u64, Span, SumCount)]) -> Vec<(u64, Ts, Ts, SumCount)> {
    sorted(
        out.iter()
            .filter(|(_, s, _)| s.kind == FiringKind::OnTime)
            .map(|&(k, s, a)| (k, s.start, s.end, a))
            .collect(),
    )
}

/// Brute force sliding windows `[k * slide, k * slide + size)` (start reported saturated at 0).
fn brute_sliding(recs: &[Txn], size: u64, slide: u64) -> Vec<(u64, Ts, Ts, SumCount)> {
    let mut m: HashMap<(u64, i128), SumCount> = HashMap::new();
    for t in recs {
        let ts = i128::from(t.ts);
        let (size, slide) = (i128::from(size), i128::from(slide));
        let lo = (ts - size).div_euclid(slide) + 1; // first k with k * slide + size > ts
        for k in lo..=ts.div_euclid(slide) {
            let e = m.entry((t.account, k * slide)).or_default();
            e.0 += t.balance;
            e.1 += 1;
        }
    }
    sorted(
        m.into_iter()
            .map(|((key, start), a)| {
                let end = (start + i128::from(size)) as u64;
                (key, start.max(0) as u64, end, a)
            })
            .collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn global_running_matches_brute_force(
        raw in prop::collection::vec((0u64..30, -1000i64..1000), 0..400),
        dense in any::<bool>(),
    ) {
        let recs: Vec<Txn> = raw
            .iter()
            .enumerate()
            .map(|(i, &(account, balance))| Txn { ts: i as u64, account, balance })
            .collect();
        let mut out = Vec::new();
        let mut want: HashMap<u64, i64> = HashMap::new();
        macro_rules! check {
            ($builder:expr) => {{
                let mut job = $builder
                    .aggregate(|| 0i64, |acc: &mut i64, t: &Txn| *acc += t.balance)
                    .capacity(32)
                    .build()
                    .unwrap();
                for t in &recs {
                    let added = job.push(t, |k, s, acc| out.push((k, s, *acc)));
                    prop_assert_eq!(added, Added::OnTime);
                    *want.entry(t.account).or_default() += t.balance;
                    let (k, s, acc) = *out.last().unwrap();
                    prop_assert_eq!((k, s.kind), (t.account, FiringKind::Update));
                    prop_assert_eq!(acc, want[&t.account]);
                }
                let n = out.len();
                job.finish(|k, s, acc| out.push((k, s, *acc)));
                prop_assert_eq!(out.len(), n, "on update: finish emits nothing more");
                let got: HashMap<u64, i64> = job.running().map(|(k, v)| (k, *v)).collect();
                prop_assert_eq!(&got, &want);
                let st = job.stats();
                prop_assert_eq!(
                    (st.records, st.keys, st.emitted, st.lost()),
                    (recs.len() as u64, want.len(), recs.len() as u64, 0)
                );
            }};
        }
        if dense {
            check!(Job::dense(|t: &Txn| t.account));
        } else {
            check!(Job::keyed(|t: &Txn| t.account));
        }
    }

    #[test]
    fn tumbling_matches_brute_force(recs in records(30), size in 1u64..120, ooo in 30u64..60) {
        let mut job = sum_count_job!(Window::Tumbling(size), ooo);
        let out = run!(job, recs);
        prop_assert_eq!(finals(&out), brute_sliding(&recs, size, size));
        prop_assert_eq!(out.len() as u64, job.stats().emitted);
        prop_assert_eq!(job.stats().lost(), 0);
    }

    #[test]
    fn sliding_matches_brute_force(recs in records(20), slide in 1u64..40, n in 1u64..5) {
        let mut job = sum_count_job!(Window::Sliding { size: slide * n, slide }, 20);
        let out = run!(job, recs);
        prop_assert_eq!(finals(&out), brute_sliding(&recs, slide * n, slide));
        prop_assert_eq!(job.stats().lost(), 0);
    }

    #[test]
    fn count_matches_brute_force(recs in records(0), slide in 1u64..5, n in 1u64..4) {
        let size = slide * n;
        let mut job = sum_count_job!(Window::Count { size, slide }, 0);
        let out = run!(job, recs);
        // Per key in arrival order: after every `slide`-th record, its last `size` records.
        let mut seen: HashMap<u64, Vec<i64>> = HashMap::new();
        let mut want = Vec::new();
        for t in &recs {
            let v = seen.entry(t.account).or_default();
            v.push(t.balance);
            let c = v.len() as u64;
            if c % slide == 0 {
                let first = c.saturating_sub(size);
                let w = &v[first as usize..];
                want.push((t.account, first, c, (w.iter().sum::<i64>(), w.len() as u64)));
            }
        }
        let got: Vec<_> = out.iter().map(|&(k, s, a)| (k, s.start, s.end, a)).collect();
        prop_assert_eq!(got, want);
        prop_assert!(out.iter().all(|(_, s, _)| s.kind == FiringKind::OnTime));
    }

    #[test]
    fn session_matches_brute_force(recs in records(10), gap in 1u64..80) {
        let mut job = sum_count_job!(Window::Session { gap }, 10);
        let out = run!(job, recs);
        let mut by_key: HashMap<u64, Vec<&Txn>> = HashMap::new();
        for t in &recs {
            by_key.entry(t.account).or_default().push(t);
        }
        let mut want = Vec::new();
        for (key, mut ts) in by_key {
            ts.sort_by_key(|t| t.ts);
            let (mut start, mut last, mut acc) = (ts[0].ts, ts[0].ts, (0i64, 0u64));
            for t in ts {
                if t.ts - last >= gap {
                    want.push((key, start, last + gap, acc));
                    (start, acc) = (t.ts, (0, 0));
                }
                last = t.ts;
                acc = (acc.0 + t.balance, acc.1 + 1);
            }
            want.push((key, start, last + gap, acc));
        }
        prop_assert_eq!(finals(&out), sorted(want));
        prop_assert_eq!(job.stats().lost(), 0);
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct MaxBalance(i64);

impl Aggregate for MaxBalance {
    type Input = i64;
    fn empty() -> Self {
        MaxBalance(i64::MIN)
    }
    fn add(&mut self, x: &i64, _ts: Ts) {
        self.0 = self.0.max(*x);
    }
    fn merge(&mut self, other: &Self) {
        self.0 = self.0.max(other.0);
    }
}

fn txn(ts: u64, account: u64, balance: i64) -> Txn {
    Txn {
        ts,
        account,
        balance,
    }
}

#[test]
fn any_window_aggregate_over_sliding_windows() {
    let mut job = Job::keyed(|t: &Txn| t.account)
        .event_time(|t| t.ts)
        .window(Window::Sliding {
            size: 100,
            slide: 50,
        })
        .aggregate_with::<MaxBalance, _>(|t| t.balance)
        .capacity(4)
        .build()
        .unwrap();
    let mut out = Vec::new();
    for t in [txn(10, 1, 5), txn(60, 1, 9), txn(120, 1, 2), txn(130, 2, 7)] {
        job.push(&t, |k, s, a| out.push((k, s.start, s.end, a.0)));
    }
    job.finish(|k, s, a| out.push((k, s.start, s.end, a.0)));
    assert_eq!(
        out,
        [
            (1, 0, 50, 5),
            (1, 0, 100, 9),
            (1, 50, 150, 9),
            (2, 50, 150, 7),
            (1, 100, 200, 2),
            (2, 100, 200, 7)
        ]
    );
}

#[test]
fn on_update_windows_emit_partials_then_finals() {
    let mut job = Job::keyed(|t: &Txn| t.account)
        .event_time(|t| t.ts)
        .window(Window::Tumbling(100))
        .aggregate(|| 0i64, |a: &mut i64, t: &Txn| *a += t.balance)
        .merge(|a, b| *a += *b)
        .on_update()
        .capacity(4)
        .build()
        .unwrap();
    assert_eq!(job.emit(), Emit::OnUpdate);
    let mut out = Vec::new();
    for t in [txn(10, 1, 5), txn(20, 1, 7), txn(150, 1, 1)] {
        job.push(&t, |k, s, a| out.push((k, s.start, s.kind, *a)));
    }
    job.finish(|k, s, a| out.push((k, s.start, s.kind, *a)));
    use FiringKind::{OnTime, Update};
    assert_eq!(
        out,
        [
            (1, 0, Update, 5),
            (1, 0, Update, 12),
            (1, 0, OnTime, 12), // the watermark 149 closes [0, 100) before the add
            (1, 100, Update, 1),
            (1, 100, OnTime, 1),
        ]
    );
}

#[test]
fn global_on_close_emits_finals_from_finish() {
    let mut job = Job::dense(|t: &Txn| t.account)
        .aggregate(|| 0u32, |n: &mut u32, _: &Txn| *n += 1)
        .on_close()
        .capacity(8)
        .build()
        .unwrap();
    let mut out = Vec::new();
    for t in [txn(0, 5, 0), txn(0, 2, 0), txn(0, 5, 0), txn(0, 9, 0)] {
        job.push(&t, |k, _, n| out.push((k, *n)));
    }
    assert!(out.is_empty());
    assert_eq!(job.stats().key_overflow, 1, "dense key 9 >= capacity 8");
    job.finish(|k, s, n| {
        assert_eq!((s.start, s.end, s.kind), (0, Ts::MAX, FiringKind::OnTime));
        out.push((k, *n));
    });
    assert_eq!(out, [(2, 1), (5, 2)], "dense keys in key order");
}

#[test]
fn keys_beyond_capacity_are_counted_overflow() {
    let mut job = Job::keyed(|t: &Txn| t.account)
        .aggregate(|| 0i64, |a: &mut i64, t: &Txn| *a += t.balance)
        .capacity(4)
        .build()
        .unwrap();
    let mut overflowed = 0;
    for i in 0..100u64 {
        let account = (i % 10) << 40;
        if job.push(&txn(i, account, 1), |_, _, _| {}) == Added::Overflow {
            overflowed += 1;
        }
    }
    let st = job.stats();
    assert_eq!((st.keys, st.capacity, st.key_overflow), (4, 4, 60));
    assert_eq!((overflowed, st.lost(), st.records), (60, 60, 100));
    let mut got: Vec<_> = job.running().map(|(k, v)| (k >> 40, *v)).collect();
    got.sort_unstable();
    assert_eq!(got, [(0, 10), (1, 10), (2, 10), (3, 10)]);

    // Windowed: the same refusal, and the admitted keys' windows are intact.
    let mut job = Job::keyed(|t: &Txn| t.account)
        .event_time(|t| t.ts)
        .window(Window::Tumbling(1_000))
        .aggregate(|| 0i64, |a: &mut i64, t: &Txn| *a += t.balance)
        .merge(|a, b| *a += *b)
        .capacity(2)
        .build()
        .unwrap();
    let mut out = Vec::new();
    for i in 0..30u64 {
        job.push(&txn(i, i % 3, 1), |k, _, a| out.push((k, *a)));
    }
    job.finish(|k, _, a| out.push((k, *a)));
    assert_eq!(out, [(0, 10), (1, 10)]);
    assert_eq!(job.stats().key_overflow, 10);
}

#[test]
fn late_records_are_dropped_and_counted() {
    let build = |lateness| {
        Job::keyed(|t: &Txn| t.account)
            .event_time(|t| t.ts)
            .window(Window::Tumbling(100))
            .aggregate(|| 0i64, |a: &mut i64, t: &Txn| *a += t.balance)
            .merge(|a, b| *a += *b)
            .out_of_orderness(10)
            .allowed_lateness(lateness)
            .capacity(4)
            .build()
            .unwrap()
    };
    let stream = [txn(10, 1, 1), txn(250, 1, 2), txn(20, 1, 4), txn(95, 1, 8)];

    // No lateness: the watermark 239 closed [0, 100); both old records are dropped.
    let mut job = build(0);
    let mut out = Vec::new();
    let added: Vec<_> = stream
        .iter()
        .map(|t| job.push(t, |k, s, a| out.push((k, s.start, s.kind, *a))))
        .collect();
    job.finish(|k, s, a| out.push((k, s.start, s.kind, *a)));
    use Added::{Dropped, OnTime};
    assert_eq!(added, [OnTime, OnTime, Dropped, Dropped]);
    let st = job.stats();
    assert_eq!(
        (st.window.dropped_late, st.window.max_lateness_ns),
        (2, 219)
    );
    assert_eq!(st.lost(), 2);
    assert_eq!(
        out,
        [
            (1, 0, FiringKind::OnTime, 1),
            (1, 200, FiringKind::OnTime, 2)
        ]
    );

    // Lateness 150: [0, 100) accepts until the watermark reaches 249; each late record
    // re-emits the updated window.
    let mut job = build(150);
    let mut out = Vec::new();
    for t in &stream {
        job.push(t, |k, s, a| out.push((k, s.start, s.kind, *a)));
    }
    job.finish(|k, s, a| out.push((k, s.start, s.kind, *a)));
    use FiringKind::{Late, OnTime as T};
    assert_eq!(
        out,
        [
            (1, 0, T, 1),
            (1, 0, Late, 5),
            (1, 0, Late, 13),
            (1, 200, T, 2)
        ]
    );
    let st = job.stats();
    assert_eq!((st.window.late_accepted, st.window.late_firings), (2, 2));
    assert_eq!(st.lost(), 0);

    // After finish every time window is closed: a new record is late.
    assert_eq!(job.push(&txn(300, 1, 1), |_, _, _| {}), Dropped);
}

#[test]
fn session_slots_full_is_counted_overflow() {
    let mut job = Job::keyed(|t: &Txn| t.account)
        .event_time(|t| t.ts)
        .window(Window::Session { gap: 10 })
        .aggregate(|| 0i64, |a: &mut i64, t: &Txn| *a += t.balance)
        .merge(|a, b| *a += *b)
        .out_of_orderness(1_000)
        .sessions_per_key(2)
        .capacity(1)
        .build()
        .unwrap();
    let added: Vec<_> = [0, 100, 200, 105]
        .map(|ts| job.push(&txn(ts, 7, 1), |_, _, _| {}))
        .into();
    assert_eq!(
        added,
        [Added::OnTime, Added::OnTime, Added::Overflow, Added::OnTime]
    );
    assert_eq!(job.stats().window.overflow, 1);
    let mut out = Vec::new();
    job.finish(|k, s, a| out.push((k, s.start, s.end, *a)));
    assert_eq!(out, [(7, 0, 10, 1), (7, 100, 115, 2)]);
}

#[test]
fn invalid_configurations_are_build_errors() {
    fn job(window: Window) -> Result<(), BuildError> {
        Job::keyed(|t: &Txn| t.account)
            .event_time(|t| t.ts)
            .window(window)
            .aggregate(|| 0i64, |a: &mut i64, t: &Txn| *a += t.balance)
            .merge(|a, b| *a += *b)
            .capacity(8)
            .build()
            .map(drop)
    }
    let sum = |a: &mut i64, t: &Txn| *a += t.balance;
    let base = || Job::keyed(|t: &Txn| t.account).event_time(|t| t.ts);

    for cap in [None, Some(0), Some(u32::MAX as usize)] {
        let b = base().aggregate(|| 0i64, sum);
        let b = match cap {
            Some(c) => b.capacity(c),
            None => b,
        };
        let capacity = cap.unwrap_or(0);
        assert_eq!(b.build().unwrap_err(), BuildError::BadCapacity { capacity });
    }
    let w = Window::Tumbling(10);
    let no_time = Job::keyed(|t: &Txn| t.account)
        .window(w)
        .aggregate(|| 0i64, sum)
        .merge(|a, b| *a += *b)
        .capacity(8)
        .build();
    assert_eq!(
        no_time.unwrap_err(),
        BuildError::EventTimeRequired { window: w }
    );
    for window in [
        Window::Tumbling(10),
        Window::Sliding { size: 10, slide: 5 },
        Window::Session { gap: 10 },
        Window::Count { size: 4, slide: 4 },
    ] {
        let err = base()
            .window(window)
            .aggregate(|| 0i64, sum)
            .capacity(8)
            .build()
            .unwrap_err();
        assert_eq!(err, BuildError::MergeRequired { window });
        assert!(err.to_string().contains(".merge("), "{err}");
    }
    use WindowError as W;
    let cases = [
        (Window::Tumbling(0), W::ZeroSize),
        (Window::Sliding { size: 10, slide: 0 }, W::ZeroSlide),
        (
            Window::Sliding { size: 10, slide: 3 },
            W::SizeNotMultipleOfSlide { size: 10, slide: 3 },
        ),
        (Window::Session { gap: 0 }, W::ZeroGap),
        (
            Window::Count { size: 0, slide: 1 },
            W::BadCountWindow { size: 0, slide: 1 },
        ),
        (
            Window::Count { size: 5, slide: 2 },
            W::BadCountWindow { size: 5, slide: 2 },
        ),
    ];
    for (window, want) in cases {
        assert_eq!(job(window), Err(BuildError::Window(want)), "{window:?}");
    }
    let too_many_sessions = base()
        .window(Window::Session { gap: 5 })
        .aggregate(|| 0i64, sum)
        .merge(|a, b| *a += *b)
        .sessions_per_key(0)
        .capacity(8)
        .build();
    assert_eq!(
        too_many_sessions.unwrap_err(),
        BuildError::Window(W::BadSessionSlots { sessions: 0 })
    );
    // Global and count windows need no event time; everything valid builds.
    assert!(Job::keyed(|t: &Txn| t.account)
        .window(Window::Count { size: 4, slide: 2 })
        .aggregate(|| 0i64, sum)
        .merge(|a, b| *a += *b)
        .capacity(8)
        .build()
        .is_ok());
    assert_eq!(job(Window::Global), Ok(()));
}

// ---- no allocation in `push`/`finish` --------------------------------------------------------

mod common;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

/// Allocation events on this thread while `f` runs.
fn allocations(f: impl FnOnce()) -> u64 {
    common::allocations(f).1
}

#[test]
fn push_and_finish_never_allocate() {
    let recs: Vec<Txn> = (0..20_000u64)
        .map(|i| txn(i * 1_000 + (i * 7919) % 500, (i * 2_654_435_761) % 300, 1))
        .collect();
    let mut global = Job::keyed(|t: &Txn| t.account)
        .aggregate(|| 0i64, |a: &mut i64, t: &Txn| *a += t.balance)
        .capacity(256) // 300 accounts: overflow on the hot path too
        .build()
        .unwrap();
    let mut sliding = Job::keyed(|t: &Txn| t.account)
        .event_time(|t| t.ts)
        .window(Window::Sliding {
            size: 100_000,
            slide: 25_000,
        })
        .aggregate(|| 0i64, |a: &mut i64, t: &Txn| *a += t.balance)
        .merge(|a, b| *a += *b)
        .out_of_orderness(500)
        .on_update()
        .capacity(512)
        .build()
        .unwrap();
    let mut session = Job::dense(|t: &Txn| t.account)
        .event_time(|t| t.ts)
        .window(Window::Session { gap: 150_000 })
        .aggregate_with::<MaxBalance, _>(|t| t.balance)
        .out_of_orderness(500)
        .capacity(512)
        .build()
        .unwrap();
    let mut total = 0i64;
    let n = allocations(|| {
        for t in &recs {
            global.push(t, |_, _, a| total += *a);
            sliding.push(t, |_, _, a| total += *a);
            session.push(t, |_, _, a| total += a.0);
        }
        global.finish(|_, _, a| total += *a);
        sliding.finish(|_, _, a| total += *a);
        session.finish(|_, _, a| total += a.0);
    });
    assert_eq!(n, 0, "allocations in push/finish");
    assert!(total > 0);
    assert!(global.stats().key_overflow > 0);
    assert!(sliding.stats().emitted > 0 && session.stats().emitted > 0);
    assert_eq!(sliding.stats().lost() + session.stats().lost(), 0);
}
