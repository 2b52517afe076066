//! Per-event cost of the event-time operators: keyed sliding windows ([`TimeWindows`]) against a
//! naive per-key buffer, the as-of join ([`AsOf`]) and the interval join ([`IntervalJoin`]).
//!
//! **Input shared by every group.** A stream of [`EVENTS`] = 1,000,000 events per iteration
//! (`TICKWATCH_BENCH_WINDOW_EVENTS` overrides), precomputed outside the timing from
//! [`SplitMix64`] seeded with [`SEED`]: timestamps in time order from 09:30 (ns since midnight),
//! gaps uniform in `1..2 * MEAN_GAP_NS` (mean 10 µs: 100,000 events/s, so 10 s of event time per
//! iteration, 10,000 events per 100 ms pane: one per key and pane on average); keys in
//! `0..KEYS` = 10,000, drawn either **uniform** or **zipf** (Zipf-like, `P(rank r) ∝ 1/r`, ranks
//! mapped to keys by a seeded permutation: the hottest key gets ~10% of the events).
//! `TICKWATCH_BENCH_WINDOW_GAP_NS` sets another mean gap (event rate) for the window group only;
//! its name then ends in `_gap<N>ns`, so its results do not overwrite the default's. The state is
//! built once per benchmark (outside the timing) and the stream is replayed on it again and again,
//! each replay shifted by a whole number of slides past the previous one, so every iteration sees
//! a warm, steady-state operator exactly as a long-running stream would (never a fresh one, never
//! a flush).
//!
//! **`window_sliding_1s_100ms_10k`**: 1 s windows sliding every 100 ms over 10,000 keys,
//! `Throughput::Elements(events)`. The driver does what a stream does (module docs of
//! [`tickwatch::window`]): when an event's time crosses the next slide boundary it calls
//! `advance(ts - 1)` (a watermark with no out-of-orderness, emitted once per slide), then
//! `add(key, ts, x, wm)` with the last watermark. Firings go to a consumer that passes each
//! `&Firing` to `black_box` (so every field is materialised and nothing is skipped). Ids:
//! - `tickwatch_small_<keys>`: [`TimeWindows`] with [`Stats`] (count, sum, min and max of an `i64`).
//! - `tickwatch_bar_<keys>`: [`TimeWindows`] with the crate's [`Bar`] (10% trades, 70% order
//!   messages, a quarter of them moving the touch, 20% other).
//! - `naive_small_<keys>`: [`Naive`], the peer a reasonable engineer writes without panes: a
//!   `std::collections::HashMap<u32, VecDeque<(Ts, i64)>>` of raw events per key; on each window
//!   end it walks every key, drops the events before the window start and folds the rest into a
//!   [`Stats`]. Same [`Firing`] output (in hash order, not key order), same consumer.
//! - `..._add_only`: the same replay, but the time spent inside `advance` (each call timed with
//!   `Instant`, 100 calls per iteration) is subtracted: the cost of `add` alone, in the cache state
//!   a real stream leaves it. The firing cost per event is the difference of the two ids.
//!
//! Before the group, both operators replay a prefix of the stream from scratch and
//! `advance(u64::MAX)`; their firings must agree (an order-independent digest of key, start, end
//! and aggregate) and every event must be counted in exactly `size / slide` windows. After each
//! benchmark the operator's ledger must show no lost event.
//!
//! **`join_asof_10k`**: [`AsOf`] of a 16-byte BBO, 10,000 keys, 16 versions each. Per event one
//! `update(key, ts, bbo)` then one `lookup(other_key, ts - lag)` with `other_key` drawn from the
//! same distribution and `lag` uniform in `0..=1 ms` (a trade looking up the quote in force a
//! little earlier); the found version is folded into a checksum. Ids `update_lookup_<keys>`;
//! `Throughput::Elements(events)`.
//!
//! **`join_interval_0_1ms`**: [`IntervalJoin`] of an add (left) with a cancel (right) of the same
//! key within `[0, 1 ms]`. Each pair is a left at `t` and a right at `t + d`, `d` uniform in
//! `0..=2 ms` (so about half the own pairs match, plus the chance matches with other adds of the
//! same key); the two streams are merged in time order. The watermark advances to `ts - 1` each
//! time event time crosses a 1 ms boundary (`advance` sweeps the key table). Room for 1,024 live
//! keys and 64 events per key and side. Ids `pair_<keys>`; `Throughput::Elements(pairs)`: one
//! element = one left push + one right push + their share of `advance`. The pairs emitted in a
//! from-scratch replay must equal a brute-force count, with nothing late, evicted or refused.
//!
//! Under `--test` (or `cargo test --benches`) the stream is [`TEST_EVENTS`] long.
//!
//! Run: `cargo bench --bench window -- --warm-up-time 1 --measurement-time 3`.

mod common;

use common::env_number;
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode, Throughput,
};
use std::collections::{HashMap, VecDeque};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tickwatch::agg::{kind_of, Bar, BarInput, Touch};
use tickwatch::join::{AsOf, IntervalJoin};
use tickwatch::rng::SplitMix64;
use tickwatch::window::{Aggregate, Firing, FiringKind, TimeWindowConfig, TimeWindows, Ts};

/// Events per iteration in bench mode (`TICKWATCH_BENCH_WINDOW_EVENTS` overrides).
const EVENTS: usize = 1_000_000;
/// Events per iteration in test mode.
const TEST_EVENTS: usize = 50_000;
/// Events replayed from scratch to check the window operators against each other.
const CHECK_EVENTS: usize = 200_000;
/// Dense keys (stocks).
const KEYS: u32 = 10_000;
/// Window size and slide.
const SIZE: Ts = 1_000_000_000;
const SLIDE: Ts = 100_000_000;
/// Mean gap between events: 100,000 events/s (`TICKWATCH_BENCH_WINDOW_GAP_NS` overrides).
const MEAN_GAP_NS: u64 = 10_000;
/// First event time: 09:30:00 in ns since midnight.
const OPEN: Ts = 34_200 * 1_000_000_000;
const SEED: u64 = 0x5EED_0001;
/// As-of join: versions kept per key, and the largest lookup lag.
const ASOF_VERSIONS: usize = 16;
const ASOF_MAX_LAG: Ts = 1_000_000;
/// Interval join: bounds, the largest left-to-right delay generated, the watermark period, the
/// key table capacity and the buffer per key and side.
const IJ_LOWER: i64 = 0;
const IJ_UPPER: i64 = 1_000_000;
const IJ_MAX_DELAY: Ts = 2_000_000;
const IJ_ADVANCE_EVERY: Ts = 1_000_000;
const IJ_KEY_SLOTS: usize = 1024;
const IJ_PER_KEY: usize = 64;
/// Criterion settings: short runs, the machine is small and shared.
const SAMPLE_SIZE: usize = 10;
const WARM_UP: Duration = Duration::from_secs(1);
const MEASUREMENT: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------------------------------------
// Aggregates and inputs

/// The small aggregate: count, sum, min and max of an `i64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stats {
    count: u64,
    sum: i64,
    min: i64,
    max: i64,
}

impl Aggregate for Stats {
    type Input = i64;

    fn empty() -> Self {
        Stats {
            count: 0,
            sum: 0,
            min: i64::MAX,
            max: i64::MIN,
        }
    }

    #[inline(always)]
    fn add(&mut self, x: &i64, _ts: Ts) {
        self.count += 1;
        self.sum = self.sum.wrapping_add(*x);
        self.min = self.min.min(*x);
        self.max = self.max.max(*x);
    }

    #[inline(always)]
    fn merge(&mut self, o: &Self) {
        self.count += o.count;
        self.sum = self.sum.wrapping_add(o.sum);
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }
}

/// One keyed event.
#[derive(Clone, Copy, Debug)]
struct Event<X> {
    ts: Ts,
    key: u32,
    x: X,
}

/// How keys are drawn.
#[derive(Clone, Copy, Debug)]
enum Skew {
    Uniform,
    Zipf,
}

impl Skew {
    fn label(self) -> &'static str {
        match self {
            Skew::Uniform => "uniform",
            Skew::Zipf => "zipf",
        }
    }
}

/// Draws keys in `0..KEYS`: uniform, or Zipf-like (`P(rank r) ∝ 1/r`, ranks permuted to keys).
struct KeyGen {
    /// Cumulative rank probabilities (Zipf only).
    cdf: Vec<f64>,
    perm: Vec<u32>,
}

impl KeyGen {
    fn new(skew: Skew, rng: &mut SplitMix64) -> Self {
        let mut perm: Vec<u32> = (0..KEYS).collect();
        for i in (1..perm.len()).rev() {
            perm.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let cdf = match skew {
            Skew::Uniform => Vec::new(),
            Skew::Zipf => {
                let mut acc = 0.0;
                let mut cdf: Vec<f64> = (1..=KEYS)
                    .map(|r| {
                        acc += 1.0 / f64::from(r);
                        acc
                    })
                    .collect();
                cdf.iter_mut().for_each(|c| *c /= acc);
                cdf
            }
        };
        KeyGen { cdf, perm }
    }

    fn draw(&self, rng: &mut SplitMix64) -> u32 {
        if self.cdf.is_empty() {
            return rng.below(u64::from(KEYS)) as u32;
        }
        let u = rng.unit();
        let rank = self.cdf.partition_point(|&c| c <= u).min(KEYS as usize - 1);
        self.perm[rank]
    }
}

/// `n` time-ordered `(ts, key)` pairs from 09:30, mean gap `gap` ns, keys from `keys`.
fn times_and_keys(n: usize, gap: u64, keys: &KeyGen, rng: &mut SplitMix64) -> Vec<(Ts, u32)> {
    let mut ts = OPEN;
    (0..n)
        .map(|_| {
            ts += 1 + rng.below(2 * gap - 1);
            (ts, keys.draw(rng))
        })
        .collect()
}

fn small_events(n: usize, skew: Skew) -> Vec<Event<i64>> {
    let mut rng = SplitMix64::new(SEED ^ skew as u64);
    let keys = KeyGen::new(skew, &mut rng);
    times_and_keys(n, mean_gap(), &keys, &mut rng)
        .into_iter()
        .map(|(ts, key)| Event {
            ts,
            key,
            x: 1_000_000 + rng.below(10_000) as i64,
        })
        .collect()
}

fn bar_events(n: usize, skew: Skew) -> Vec<Event<BarInput>> {
    let mut rng = SplitMix64::new(SEED ^ skew as u64);
    let keys = KeyGen::new(skew, &mut rng);
    times_and_keys(n, mean_gap(), &keys, &mut rng)
        .into_iter()
        .map(|(ts, key)| {
            let price = 1_000_000 + rng.below(10_000) as u32;
            let x = match rng.below(20) {
                // Trades: executions and prints.
                0 | 1 => BarInput {
                    class: BarInput::TRADE,
                    kind: kind_of(if rng.below(4) == 0 { b'P' } else { b'E' }),
                    price,
                    shares: 1 + rng.below(1_000),
                    ..BarInput::default()
                },
                // Order messages; a quarter of them move the touch.
                2..=15 => BarInput {
                    class: BarInput::ORDER,
                    kind: kind_of(b"AAAAUXDD"[rng.below(8) as usize]),
                    order_shares: 100 * (1 + rng.below(10)),
                    touch: (rng.below(4) == 0).then(|| Touch {
                        bid: price,
                        bid_shares: 100 * (1 + rng.below(20)),
                        ask: price + 100,
                        ask_shares: 100 * (1 + rng.below(20)),
                    }),
                    ..BarInput::default()
                },
                _ => BarInput {
                    kind: kind_of(b'I'),
                    ..BarInput::default()
                },
            };
            Event { ts, key, x }
        })
        .collect()
}

/// Event time covered by one replay of `events`, rounded up to whole slides, so each replay can
/// start where the previous one ended with the same pane alignment.
fn span_of<X>(events: &[Event<X>]) -> Ts {
    let (first, last) = (events[0].ts, events[events.len() - 1].ts);
    (last - first + mean_gap()).div_ceil(SLIDE) * SLIDE
}

// ---------------------------------------------------------------------------------------------
// Window operators

/// What the driver needs from a keyed sliding-window operator.
trait Windows {
    type Agg: Copy;
    type In;
    fn advance(&mut self, wm: Ts, out: &mut impl FnMut(&Firing<Self::Agg>));
    fn add(
        &mut self,
        key: u32,
        ts: Ts,
        x: &Self::In,
        wm: Option<Ts>,
        out: &mut impl FnMut(&Firing<Self::Agg>),
    );
    /// Events that went into no window.
    fn lost(&self) -> u64;
}

impl<A: Aggregate> Windows for TimeWindows<A> {
    type Agg = A;
    type In = A::Input;

    #[inline(always)]
    fn advance(&mut self, wm: Ts, out: &mut impl FnMut(&Firing<A>)) {
        TimeWindows::advance(self, wm, out);
    }

    #[inline(always)]
    fn add(
        &mut self,
        key: u32,
        ts: Ts,
        x: &A::Input,
        wm: Option<Ts>,
        out: &mut impl FnMut(&Firing<A>),
    ) {
        TimeWindows::add(self, key, ts, x, wm, out);
    }

    fn lost(&self) -> u64 {
        self.ledger().lost()
    }
}

fn window_config() -> TimeWindowConfig {
    TimeWindowConfig::sliding(SIZE, SLIDE)
}

/// The naive peer: raw events per key in a `HashMap<u32, VecDeque<_>>`, every window recomputed
/// from them when it closes (no panes, no touched-key lists).
#[derive(Default)]
struct Naive {
    events: HashMap<u32, VecDeque<(Ts, i64)>>,
    /// End of the next window to fire (0 before the first event).
    next_end: Ts,
    max_ts: Ts,
}

impl Windows for Naive {
    type Agg = Stats;
    type In = i64;

    fn advance(&mut self, wm: Ts, out: &mut impl FnMut(&Firing<Stats>)) {
        // Every window with `end - 1 <= wm` that can hold data (start <= the latest event).
        while self.next_end != 0
            && self.next_end - 1 <= wm
            && self.next_end.saturating_sub(SIZE) <= self.max_ts
        {
            let end = self.next_end;
            let start = end.saturating_sub(SIZE);
            for (&key, q) in self.events.iter_mut() {
                while q.front().is_some_and(|&(t, _)| t < start) {
                    q.pop_front();
                }
                let mut agg = Stats::empty();
                let mut any = false;
                for &(t, x) in q.iter().take_while(|&&(t, _)| t < end) {
                    agg.add(&x, t);
                    any = true;
                }
                if any {
                    out(&Firing {
                        key,
                        start,
                        end,
                        agg,
                        kind: FiringKind::OnTime,
                    });
                }
            }
            self.next_end += SLIDE;
        }
    }

    #[inline(always)]
    fn add(
        &mut self,
        key: u32,
        ts: Ts,
        x: &i64,
        _wm: Option<Ts>,
        _out: &mut impl FnMut(&Firing<Stats>),
    ) {
        if self.next_end == 0 {
            self.next_end = (ts / SLIDE + 1) * SLIDE;
        }
        self.max_ts = self.max_ts.max(ts);
        self.events.entry(key).or_default().push_back((ts, *x));
    }

    fn lost(&self) -> u64 {
        0
    }
}

/// The stream's watermark: raised to `ts - 1` when event time crosses the next slide boundary.
struct Clock {
    next: Ts,
    wm: Option<Ts>,
    every: Ts,
}

impl Clock {
    fn new(every: Ts) -> Self {
        Clock {
            next: 0,
            wm: None,
            every,
        }
    }

    /// The new watermark if `ts` crossed a boundary.
    #[inline(always)]
    fn tick(&mut self, ts: Ts) -> Option<Ts> {
        if ts < self.next {
            return None;
        }
        self.next = (ts / self.every + 1) * self.every;
        self.wm = Some(ts - 1);
        self.wm
    }
}

/// Replays `events` shifted by `offset` into `op` (advance on each slide boundary, then add);
/// returns the time spent in `advance`.
#[inline(never)]
fn drive<O: Windows>(
    op: &mut O,
    clock: &mut Clock,
    events: &[Event<O::In>],
    offset: Ts,
    out: &mut impl FnMut(&Firing<O::Agg>),
) -> Duration {
    let mut firing = Duration::ZERO;
    for e in events {
        let ts = e.ts + offset;
        if let Some(wm) = clock.tick(ts) {
            let t0 = Instant::now();
            op.advance(wm, out);
            firing += t0.elapsed();
        }
        op.add(e.key, ts, &e.x, clock.wm, out);
    }
    firing
}

/// An order-independent digest of firings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Digest {
    firings: u64,
    counted: u64,
    hash: u64,
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Digest {
    fn add(&mut self, f: &Firing<Stats>) {
        assert_eq!(f.kind, FiringKind::OnTime, "unexpected firing {f:?}");
        self.firings += 1;
        self.counted += f.agg.count;
        let mut h = mix(u64::from(f.key));
        for v in [
            f.start,
            f.end,
            f.agg.count,
            f.agg.sum as u64,
            f.agg.min as u64,
            f.agg.max as u64,
        ] {
            h = mix(h ^ v);
        }
        self.hash = self.hash.wrapping_add(h);
    }
}

/// Replays `events` from scratch into `op`, flushes it, and digests every firing.
fn digest_of<O: Windows<Agg = Stats, In = i64>>(mut op: O, events: &[Event<i64>]) -> Digest {
    let mut d = Digest::default();
    let mut out = |f: &Firing<Stats>| d.add(f);
    drive(&mut op, &mut Clock::new(SLIDE), events, 0, &mut out);
    op.advance(Ts::MAX, &mut out);
    assert_eq!(op.lost(), 0, "events lost in the check replay");
    d
}

fn check_windows(events: &[Event<i64>], skew: Skew) {
    let events = &events[..events.len().min(CHECK_EVENTS)];
    let ours = digest_of(
        TimeWindows::<Stats>::new(window_config(), KEYS as usize).expect("config"),
        events,
    );
    let naive = digest_of(Naive::default(), events);
    assert_eq!(
        ours,
        naive,
        "{}: TimeWindows and Naive disagree",
        skew.label()
    );
    assert_eq!(
        ours.counted,
        events.len() as u64 * (SIZE / SLIDE),
        "{}: every event belongs to size / slide windows",
        skew.label()
    );
    eprintln!(
        "window check ({}, {} events): {} firings agree",
        skew.label(),
        events.len(),
        ours.firings
    );
}

/// Two benchmarks of a window operator (with firing, then add only): a warm operator fed the
/// stream again and again, each replay starting where the previous one ended.
fn bench_windows<O: Windows>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    mut op: O,
    events: &[Event<O::In>],
) {
    let span = span_of(events);
    let mut clock = Clock::new(SLIDE);
    let mut offset = 0;
    let mut sink = |f: &Firing<O::Agg>| {
        black_box(f);
    };
    for add_only in [false, true] {
        let id = if add_only {
            format!("{id}_add_only")
        } else {
            id.to_string()
        };
        g.bench_function(&id, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t0 = Instant::now();
                    let firing = drive(&mut op, &mut clock, events, offset, &mut sink);
                    let all = t0.elapsed();
                    total += if add_only {
                        all.saturating_sub(firing)
                    } else {
                        all
                    };
                    offset += span;
                }
                total
            })
        });
        assert_eq!(op.lost(), 0, "{id}: events lost");
    }
}

fn window_benches(c: &mut Criterion) {
    let n = events_per_iteration();
    let mut name = "window_sliding_1s_100ms_10k".to_string();
    if mean_gap() != MEAN_GAP_NS {
        name += &format!("_gap{}ns", mean_gap());
    }
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(n as u64))
        .sample_size(SAMPLE_SIZE)
        .warm_up_time(WARM_UP)
        .measurement_time(MEASUREMENT)
        .sampling_mode(SamplingMode::Flat);
    for skew in [Skew::Uniform, Skew::Zipf] {
        let small = small_events(n, skew);
        check_windows(&small, skew);
        let s = skew.label();
        bench_windows(
            &mut g,
            &format!("tickwatch_small_{s}"),
            TimeWindows::<Stats>::new(window_config(), KEYS as usize).expect("config"),
            &small,
        );
        bench_windows(
            &mut g,
            &format!("naive_small_{s}"),
            Naive::default(),
            &small,
        );
        drop(small);
        let bars = bar_events(n, skew);
        bench_windows(
            &mut g,
            &format!("tickwatch_bar_{s}"),
            TimeWindows::<Bar>::new(window_config(), KEYS as usize).expect("config"),
            &bars,
        );
    }
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// Joins

/// A best bid and offer, 16 bytes.
#[derive(Clone, Copy, Debug)]
struct Bbo {
    bid: u32,
    ask: u32,
    bid_size: u32,
    ask_size: u32,
}

/// A BBO update of `key` at `ts`, then a lookup of `look_key` at `ts - lag`.
#[derive(Clone, Copy, Debug)]
struct AsOfEvent {
    ts: Ts,
    key: u32,
    look_key: u32,
    lag: Ts,
    bbo: Bbo,
}

fn asof_events(n: usize, skew: Skew) -> Vec<AsOfEvent> {
    let mut rng = SplitMix64::new(SEED ^ 0xA5 ^ skew as u64);
    let keys = KeyGen::new(skew, &mut rng);
    times_and_keys(n, MEAN_GAP_NS, &keys, &mut rng)
        .into_iter()
        .map(|(ts, key)| {
            let bid = 1_000_000 + rng.below(10_000) as u32;
            AsOfEvent {
                ts,
                key,
                look_key: keys.draw(&mut rng),
                lag: rng.below(ASOF_MAX_LAG + 1),
                bbo: Bbo {
                    bid,
                    ask: bid + 100 * (1 + rng.below(3) as u32),
                    bid_size: 100 * (1 + rng.below(20) as u32),
                    ask_size: 100 * (1 + rng.below(20) as u32),
                },
            }
        })
        .collect()
}

#[inline(never)]
fn drive_asof(asof: &mut AsOf<Bbo>, events: &[AsOfEvent], offset: Ts) -> u64 {
    let mut acc = 0u64;
    for e in events {
        let ts = e.ts + offset;
        asof.update(e.key, ts, e.bbo);
        if let Some((t, v)) = asof.lookup(e.look_key, ts - e.lag) {
            let px = u64::from(v.bid) ^ (u64::from(v.ask) << 32);
            let qty = u64::from(v.bid_size) ^ (u64::from(v.ask_size) << 32);
            acc = acc.wrapping_add(t ^ px ^ qty.rotate_left(16));
        }
    }
    acc
}

fn asof_benches(c: &mut Criterion) {
    let n = events_per_iteration();
    let mut g = c.benchmark_group("join_asof_10k");
    g.throughput(Throughput::Elements(n as u64))
        .sample_size(SAMPLE_SIZE)
        .warm_up_time(WARM_UP)
        .measurement_time(MEASUREMENT)
        .sampling_mode(SamplingMode::Flat);
    for skew in [Skew::Uniform, Skew::Zipf] {
        let events = asof_events(n, skew);
        let span =
            (events[n - 1].ts - events[0].ts + MEAN_GAP_NS + ASOF_MAX_LAG).div_ceil(SLIDE) * SLIDE;
        let mut asof = AsOf::<Bbo>::new(KEYS as usize, ASOF_VERSIONS);
        // One untimed replay so the counters below describe the steady state.
        black_box(drive_asof(&mut asof, &events, 0));
        let before = asof.counters();
        let mut offset = span;
        g.bench_function(format!("update_lookup_{}", skew.label()), |b| {
            b.iter_custom(|iters| {
                let t0 = Instant::now();
                for _ in 0..iters {
                    black_box(drive_asof(&mut asof, black_box(&events), offset));
                    offset += span;
                }
                t0.elapsed()
            })
        });
        let after = asof.counters();
        assert_eq!(after.out_of_range, 0);
        let looks = (after.hits + after.misses + after.too_old)
            - (before.hits + before.misses + before.too_old);
        eprintln!(
            "join_asof_10k/{}: lookups {looks}: hits {:.1}%, too_old {:.2}%, misses {:.3}%; \
             updates out of order {}",
            skew.label(),
            100.0 * (after.hits - before.hits) as f64 / looks as f64,
            100.0 * (after.too_old - before.too_old) as f64 / looks as f64,
            100.0 * (after.misses - before.misses) as f64 / looks as f64,
            after.out_of_order
        );
    }
    g.finish();
}

/// One side of an add/cancel pair.
#[derive(Clone, Copy, Debug)]
struct IjEvent {
    ts: Ts,
    key: u64,
    left: bool,
    value: u32,
}

/// `n` pairs, merged in time order (stable: a left before its own right on equal times).
fn interval_events(n: usize, skew: Skew) -> Vec<IjEvent> {
    let mut rng = SplitMix64::new(SEED ^ 0x1F ^ skew as u64);
    let mut out = Vec::with_capacity(2 * n);
    let keys = KeyGen::new(skew, &mut rng);
    for (i, (ts, key)) in times_and_keys(n, MEAN_GAP_NS, &keys, &mut rng)
        .into_iter()
        .enumerate()
    {
        let key = u64::from(key);
        out.push(IjEvent {
            ts,
            key,
            left: true,
            value: i as u32,
        });
        out.push(IjEvent {
            ts: ts + rng.below(IJ_MAX_DELAY + 1),
            key,
            left: false,
            value: i as u32,
        });
    }
    out.sort_by_key(|e| e.ts);
    out
}

/// Brute-force number of matching pairs: for each right, the lefts of its key in
/// `[r.ts - upper, r.ts - lower]`.
fn brute_force_pairs(events: &[IjEvent]) -> u64 {
    let mut lefts: HashMap<u64, Vec<Ts>> = HashMap::new();
    for e in events.iter().filter(|e| e.left) {
        lefts.entry(e.key).or_default().push(e.ts); // already in time order
    }
    events
        .iter()
        .filter(|e| !e.left)
        .map(|r| {
            let ts = lefts.get(&r.key).map_or(&[][..], |v| v.as_slice());
            let lo = (r.ts as i128 - i128::from(IJ_UPPER)).max(0) as Ts;
            let hi = (r.ts as i128 - i128::from(IJ_LOWER)).max(-1);
            if hi < 0 {
                return 0;
            }
            let hi = hi as Ts;
            (ts.partition_point(|&t| t <= hi) - ts.partition_point(|&t| t < lo)) as u64
        })
        .sum()
}

#[inline(never)]
fn drive_interval(
    join: &mut IntervalJoin<u32, u32>,
    clock: &mut Clock,
    events: &[IjEvent],
    offset: Ts,
) {
    for e in events {
        let ts = e.ts + offset;
        if let Some(wm) = clock.tick(ts) {
            join.advance(wm);
        }
        let emit = |p| {
            black_box(p);
        };
        if e.left {
            black_box(join.push_left(e.key, ts, e.value, emit));
        } else {
            black_box(join.push_right(e.key, ts, e.value, emit));
        }
    }
}

fn interval_join() -> IntervalJoin<u32, u32> {
    IntervalJoin::new(IJ_LOWER, IJ_UPPER, IJ_KEY_SLOTS, IJ_PER_KEY)
}

fn interval_benches(c: &mut Criterion) {
    let n = events_per_iteration();
    let mut g = c.benchmark_group("join_interval_0_1ms");
    g.throughput(Throughput::Elements(n as u64))
        .sample_size(SAMPLE_SIZE)
        .warm_up_time(WARM_UP)
        .measurement_time(MEASUREMENT)
        .sampling_mode(SamplingMode::Flat);
    for skew in [Skew::Uniform, Skew::Zipf] {
        let events = interval_events(n, skew);
        let span = (events[events.len() - 1].ts - events[0].ts + MEAN_GAP_NS + IJ_MAX_DELAY)
            .div_ceil(SLIDE)
            * SLIDE;
        // From scratch: exactly the brute-force pairs, nothing refused.
        let mut check = interval_join();
        drive_interval(&mut check, &mut Clock::new(IJ_ADVANCE_EVERY), &events, 0);
        let k = check.counters();
        let want = brute_force_pairs(&events);
        assert_eq!(
            (
                k.pairs,
                k.late,
                k.keys_full,
                k.evicted_left,
                k.evicted_right
            ),
            (want, 0, 0, 0, 0),
            "{}: interval join counters {k}",
            skew.label()
        );
        eprintln!(
            "join_interval_0_1ms/{}: {} pairs pushed, {} joined (brute force agrees)",
            skew.label(),
            n,
            k.pairs
        );
        let mut join = interval_join();
        let mut clock = Clock::new(IJ_ADVANCE_EVERY);
        let mut offset = 0;
        g.bench_function(format!("pair_{}", skew.label()), |b| {
            b.iter_custom(|iters| {
                let t0 = Instant::now();
                for _ in 0..iters {
                    drive_interval(&mut join, &mut clock, black_box(&events), offset);
                    offset += span;
                }
                t0.elapsed()
            })
        });
        let k = join.counters();
        assert_eq!(
            (k.late, k.keys_full, k.evicted_left, k.evicted_right),
            (0, 0, 0, 0),
            "{}: interval join counters {k}",
            skew.label()
        );
    }
    g.finish();
}

// ---------------------------------------------------------------------------------------------

/// Mean gap between events in ns: [`MEAN_GAP_NS`] unless `TICKWATCH_BENCH_WINDOW_GAP_NS` is set.
fn mean_gap() -> u64 {
    let gap = env_number("TICKWATCH_BENCH_WINDOW_GAP_NS").unwrap_or(MEAN_GAP_NS);
    assert!(gap >= 1, "TICKWATCH_BENCH_WINDOW_GAP_NS must be >= 1");
    gap
}

/// Events per iteration: [`TEST_EVENTS`] under `--test` or without `--bench`.
fn events_per_iteration() -> usize {
    let args: Vec<String> = std::env::args().collect();
    let test_mode = !args.iter().any(|a| a == "--bench") || args.iter().any(|a| a == "--test");
    if test_mode {
        TEST_EVENTS
    } else {
        env_number("TICKWATCH_BENCH_WINDOW_EVENTS").unwrap_or(EVENTS)
    }
}

criterion_group!(benches, window_benches, asof_benches, interval_benches);
criterion_main!(benches);
