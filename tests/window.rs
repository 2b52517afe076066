//! Event-time windows: hand-made streams for every rule, and property tests against a
//! brute-force reference over random streams with bounded disorder.

use std::collections::BTreeMap;

use proptest::prelude::*;
use tickwatch::window::{
    Added, Aggregate, BoundedOutOfOrderness, CountWindows, Emit, Firing, FiringKind, LateLedger,
    SessionConfig, SessionWindows, TimeWindowConfig, TimeWindows, Ts, Watermarks, WindowError,
};

/// Count, sum, min and max of `i64` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    fn add(&mut self, x: &i64, _ts: Ts) {
        self.count += 1;
        self.sum += x;
        self.min = self.min.min(*x);
        self.max = self.max.max(*x);
    }
    fn merge(&mut self, o: &Self) {
        self.count += o.count;
        self.sum += o.sum;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }
}

fn stats(xs: &[i64]) -> Stats {
    let mut s = Stats::empty();
    for x in xs {
        s.add(x, 0);
    }
    s
}

/// Everything one run produced: firings (with the index of the `advance` call that emitted
/// them, or `None` when emitted by `add`), what each add returned, and the ledger.
struct Run {
    firings: Vec<(Option<usize>, Firing<Stats>)>,
    added: Vec<Added>,
    /// The watermark in force when each event was added.
    wms: Vec<Option<Ts>>,
    ledger: LateLedger,
}

impl Run {
    fn simple(&self) -> Vec<(u32, Ts, Ts, i64, FiringKind)> {
        self.firings
            .iter()
            .map(|(_, f)| (f.key, f.start, f.end, f.agg.sum, f.kind))
            .collect()
    }
}

/// Drives time windows: bounded-out-of-orderness watermark, `advance` after every event, then
/// end of stream.
fn run_time(cfg: TimeWindowConfig, keys: usize, events: &[(u32, Ts, i64)]) -> Run {
    let mut win = TimeWindows::<Stats>::new(cfg, keys).unwrap();
    let mut gen = BoundedOutOfOrderness::new(cfg.max_out_of_orderness);
    let mut firings = Vec::new();
    let (mut added, mut wms) = (Vec::new(), Vec::new());
    let mut advances = 0;
    for &(key, ts, x) in events {
        // The recommended order: observe, advance to the new watermark, then add.
        let wm = gen.observe(ts);
        wms.push(wm);
        if let Some(wm) = wm {
            win.advance(wm, &mut |f| firings.push((Some(advances), *f)));
            advances += 1;
        }
        added.push(win.add(key, ts, &x, wm, &mut |f| firings.push((None, *f))));
    }
    win.advance(gen.finish(), &mut |f| firings.push((Some(advances), *f)));
    Run {
        firings,
        added,
        wms,
        ledger: *win.ledger(),
    }
}

fn run_sessions(cfg: SessionConfig, keys: usize, ooo: Ts, events: &[(u32, Ts, i64)]) -> Run {
    let mut win = SessionWindows::<Stats>::new(cfg, keys).unwrap();
    let mut gen = BoundedOutOfOrderness::new(ooo);
    let mut firings = Vec::new();
    let (mut added, mut wms) = (Vec::new(), Vec::new());
    let mut advances = 0;
    for &(key, ts, x) in events {
        // The recommended order: observe, advance to the new watermark, then add.
        let wm = gen.observe(ts);
        wms.push(wm);
        if let Some(wm) = wm {
            win.advance(wm, &mut |f| firings.push((Some(advances), *f)));
            advances += 1;
        }
        added.push(win.add(key, ts, &x, wm, &mut |f| firings.push((None, *f))));
    }
    win.advance(gen.finish(), &mut |f| firings.push((Some(advances), *f)));
    Run {
        firings,
        added,
        wms,
        ledger: *win.ledger(),
    }
}

use FiringKind::{Late, OnTime, Update};

// ---------------------------------------------------------------- time windows: hand-made

#[test]
fn tumbling_boundaries_end_is_exclusive() {
    let events = [
        (0, 0, 1),
        (0, 99, 2),
        (0, 100, 4),
        (0, 199, 8),
        (0, 200, 16),
    ];
    let run = run_time(TimeWindowConfig::tumbling(100), 1, &events);
    assert_eq!(
        run.simple(),
        [
            (0, 0, 100, 3, OnTime),
            (0, 100, 200, 12, OnTime),
            (0, 200, 300, 16, OnTime)
        ]
    );
    assert_eq!(run.ledger, LateLedger::default());
}

#[test]
fn fires_when_watermark_reaches_end_minus_one() {
    let mut win = TimeWindows::<Stats>::new(TimeWindowConfig::tumbling(100), 1).unwrap();
    let mut got = Vec::new();
    win.add(0, 50, &1, None, &mut |f| got.push(*f));
    win.advance(98, &mut |f| got.push(*f));
    assert!(got.is_empty());
    win.advance(99, &mut |f| got.push(*f));
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].start, got[0].end, got[0].kind), (0, 100, OnTime));
    win.advance(10_000, &mut |f| got.push(*f));
    assert_eq!(got.len(), 1, "fires once");
}

#[test]
fn empty_windows_never_fire() {
    let events = [(1, 10, 1), (1, 510, 2)];
    let run = run_time(TimeWindowConfig::tumbling(100), 3, &events);
    assert_eq!(
        run.simple(),
        [(1, 0, 100, 1, OnTime), (1, 500, 600, 2, OnTime)]
    );
}

#[test]
fn sliding_event_lands_in_size_over_slide_windows() {
    let run = run_time(TimeWindowConfig::sliding(30, 10), 1, &[(0, 25, 7)]);
    assert_eq!(
        run.simple(),
        [
            (0, 0, 30, 7, OnTime),
            (0, 10, 40, 7, OnTime),
            (0, 20, 50, 7, OnTime)
        ]
    );
    // Windows that begin before midnight report start 0 and their exact end.
    let run = run_time(TimeWindowConfig::sliding(30, 10), 1, &[(0, 5, 7)]);
    assert_eq!(
        run.simple(),
        [
            (0, 0, 10, 7, OnTime),
            (0, 0, 20, 7, OnTime),
            (0, 0, 30, 7, OnTime)
        ]
    );
}

#[test]
fn sliding_sums_overlap() {
    let cfg = TimeWindowConfig::sliding(20, 10);
    let run = run_time(cfg, 1, &[(0, 5, 1), (0, 15, 2), (0, 25, 4)]);
    let got: Vec<_> = run.simple().iter().map(|f| (f.2, f.3)).collect();
    assert_eq!(got, [(10, 1), (20, 3), (30, 6), (40, 4)]);
}

#[test]
fn offset_shifts_window_starts() {
    let cfg = TimeWindowConfig {
        offset: 30,
        ..TimeWindowConfig::tumbling(100)
    };
    let run = run_time(cfg, 1, &[(0, 29, 1), (0, 30, 2), (0, 129, 4), (0, 130, 8)]);
    assert_eq!(
        run.simple(),
        [
            (0, 0, 30, 1, OnTime), // really [-70, 30)
            (0, 30, 130, 6, OnTime),
            (0, 130, 230, 8, OnTime)
        ]
    );
}

#[test]
fn firing_order_is_start_then_key() {
    let mut win = TimeWindows::<Stats>::new(TimeWindowConfig::sliding(20, 10), 4).unwrap();
    let mut got = Vec::new();
    for (key, ts) in [(3, 15), (1, 12), (2, 3), (0, 25), (1, 1)] {
        win.add(key, ts, &1, None, &mut |f| got.push(*f));
    }
    win.advance(u64::MAX, &mut |f| got.push(*f));
    let order: Vec<_> = got.iter().map(|f| (f.end, f.key)).collect();
    assert_eq!(
        order,
        [
            (10, 1),
            (10, 2),
            (20, 1),
            (20, 2),
            (20, 3),
            (30, 0),
            (30, 1),
            (30, 3),
            (40, 0)
        ]
    );
}

#[test]
fn late_events_fire_late_or_are_counted() {
    let cfg = TimeWindowConfig {
        allowed_lateness: 50,
        ..TimeWindowConfig::tumbling(100)
    };
    let events = [
        (0, 10, 1),
        (0, 120, 2),
        (0, 20, 4),
        (0, 160, 8),
        (0, 30, 16),
    ];
    let run = run_time(cfg, 1, &events);
    assert_eq!(
        run.added,
        [
            Added::OnTime,
            Added::OnTime,
            Added::Late,
            Added::OnTime,
            Added::Dropped
        ]
    );
    assert_eq!(
        run.simple(),
        [
            (0, 0, 100, 1, OnTime),
            (0, 0, 100, 5, Late),
            (0, 100, 200, 10, OnTime)
        ]
    );
    assert_eq!(run.ledger.dropped_late, 1);
    assert_eq!(run.ledger.max_lateness_ns, 159 - 30);
    assert_eq!(run.ledger.late_accepted, 1);
    assert_eq!(run.ledger.late_firings, 1);
    assert_eq!(run.ledger.lost(), 1);
}

#[test]
fn lateness_limit_is_end_minus_one_plus_lateness() {
    let cfg = TimeWindowConfig {
        allowed_lateness: 50,
        ..TimeWindowConfig::tumbling(100)
    };
    let mut win = TimeWindows::<Stats>::new(cfg, 1).unwrap();
    let mut got = Vec::new();
    win.add(0, 10, &1, None, &mut |f| got.push(*f));
    win.advance(148, &mut |f| got.push(*f));
    assert_eq!(
        win.add(0, 11, &1, Some(148), &mut |f| got.push(*f)),
        Added::Late
    );
    assert_eq!(
        win.add(0, 12, &1, Some(149), &mut |f| got.push(*f)),
        Added::Dropped
    );
    assert_eq!(got.iter().map(|f| f.agg.count).collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn late_event_into_empty_fired_window_fires_late() {
    let cfg = TimeWindowConfig {
        allowed_lateness: 1000,
        ..TimeWindowConfig::tumbling(100)
    };
    let run = run_time(cfg, 1, &[(0, 500, 1), (0, 50, 2)]);
    assert_eq!(run.added, [Added::OnTime, Added::Late]);
    assert_eq!(
        run.simple(),
        [(0, 0, 100, 2, Late), (0, 500, 600, 1, OnTime)]
    );
}

#[test]
fn sliding_partially_late_event_goes_where_accepted() {
    let mut win = TimeWindows::<Stats>::new(TimeWindowConfig::sliding(20, 10), 1).unwrap();
    let mut got = Vec::new();
    win.add(0, 25, &1, Some(24), &mut |f| got.push(*f));
    win.advance(24, &mut |f| got.push(*f));
    assert!(got.is_empty(), "[10, 30) needs wm 29; [0, 20) had no data");
    // ts 15 belongs to [0, 20) (closed, lateness 0) and [10, 30) (open).
    assert_eq!(
        win.add(0, 15, &2, Some(24), &mut |f| got.push(*f)),
        Added::OnTime
    );
    assert_eq!(win.ledger().partial_late, 1);
    assert_eq!(win.ledger().dropped_late, 0);
    win.advance(u64::MAX, &mut |f| got.push(*f));
    let got: Vec<_> = got.iter().map(|f| (f.end, f.agg.sum)).collect();
    assert_eq!(got, [(30, 3), (40, 1)]);
}

#[test]
fn emit_on_update_shows_partials() {
    let cfg = TimeWindowConfig {
        emit: Emit::OnUpdate,
        allowed_lateness: 100,
        ..TimeWindowConfig::tumbling(100)
    };
    let run = run_time(cfg, 1, &[(0, 10, 1), (0, 20, 2), (0, 150, 4), (0, 30, 8)]);
    assert_eq!(
        run.simple(),
        [
            (0, 0, 100, 1, Update),
            (0, 0, 100, 3, Update),
            (0, 0, 100, 3, OnTime),
            (0, 100, 200, 4, Update),
            (0, 0, 100, 11, Late),
            (0, 100, 200, 4, OnTime)
        ]
    );
}

#[test]
fn full_ring_is_counted_overflow() {
    let mut win = TimeWindows::<Stats>::new(TimeWindowConfig::tumbling(10), 2).unwrap();
    let slots = win.pane_slots() as u64;
    let mut got = Vec::new();
    assert_eq!(
        win.add(0, 0, &1, None, &mut |f| got.push(*f)),
        Added::OnTime
    );
    // Same ring slot, `slots` panes later, while pane 0 is unfired: no room.
    assert_eq!(
        win.add(1, 10 * slots, &1, None, &mut |f| got.push(*f)),
        Added::Overflow
    );
    assert_eq!(
        win.add(5, 0, &1, None, &mut |f| got.push(*f)),
        Added::Overflow
    );
    assert_eq!(
        win.add(0, u64::MAX - 5, &1, None, &mut |f| got.push(*f)),
        Added::Overflow
    );
    assert_eq!(win.ledger().overflow, 1);
    assert_eq!(win.ledger().out_of_range, 2);
    // Once the watermark passes pane 0, its slot is reused.
    win.advance(9, &mut |f| got.push(*f));
    assert_eq!(
        win.add(1, 10 * slots, &1, Some(9), &mut |f| got.push(*f)),
        Added::OnTime
    );
    assert_eq!(got.len(), 1);
}

#[test]
fn watermark_never_goes_backwards_in_operator() {
    let mut win = TimeWindows::<Stats>::new(TimeWindowConfig::tumbling(100), 1).unwrap();
    let mut got = Vec::new();
    win.advance(500, &mut |f| got.push(*f));
    win.advance(10, &mut |f| got.push(*f));
    assert_eq!(win.watermark(), Some(500));
    assert_eq!(
        win.add(0, 50, &1, Some(3), &mut |f| got.push(*f)),
        Added::Dropped
    );
}

#[test]
fn config_validation() {
    let new = |cfg| TimeWindows::<Stats>::new(cfg, 1).map(|_| ());
    assert_eq!(
        new(TimeWindowConfig::tumbling(0)),
        Err(WindowError::ZeroSize)
    );
    assert_eq!(
        new(TimeWindowConfig::sliding(10, 0)),
        Err(WindowError::ZeroSlide)
    );
    assert_eq!(
        new(TimeWindowConfig::sliding(10, 3)),
        Err(WindowError::SizeNotMultipleOfSlide { size: 10, slide: 3 })
    );
    let off = TimeWindowConfig {
        offset: 5,
        ..TimeWindowConfig::sliding(10, 5)
    };
    assert_eq!(
        new(off),
        Err(WindowError::OffsetTooLarge {
            offset: 5,
            slide: 5
        })
    );
    let late = TimeWindowConfig {
        allowed_lateness: 1 << 40,
        ..TimeWindowConfig::tumbling(10)
    };
    assert!(matches!(new(late), Err(WindowError::TooManyPanes { .. })));
    assert_eq!(
        TimeWindows::<Stats>::new(TimeWindowConfig::tumbling(10), 0).map(|_| ()),
        Err(WindowError::BadKeyCount { keys: 0 })
    );
    assert!(CountWindows::<Stats>::new(5, 2, 1, Emit::OnClose).is_err());
    assert!(SessionWindows::<Stats>::new(SessionConfig::new(0), 1).is_err());
    assert!(Watermarks::new(0, 0, 0).is_err());
}

// ---------------------------------------------------------------- sessions: hand-made

#[test]
fn sessions_merge_within_gap() {
    let events = [(0, 0, 1), (0, 5, 2), (0, 14, 4), (0, 30, 8), (1, 25, 16)];
    let run = run_sessions(SessionConfig::new(10), 2, 0, &events);
    assert_eq!(
        run.simple(),
        [
            (0, 0, 24, 7, OnTime),
            (1, 25, 35, 16, OnTime),
            (0, 30, 40, 8, OnTime)
        ]
    );
}

#[test]
fn events_exactly_gap_apart_are_two_sessions() {
    let run = run_sessions(SessionConfig::new(10), 1, 0, &[(0, 0, 1), (0, 10, 2)]);
    assert_eq!(
        run.simple(),
        [(0, 0, 10, 1, OnTime), (0, 10, 20, 2, OnTime)]
    );
}

#[test]
fn out_of_order_event_bridges_two_sessions() {
    let mut win = SessionWindows::<Stats>::new(SessionConfig::new(10), 1).unwrap();
    let mut got = Vec::new();
    win.add(0, 0, &1, None, &mut |f| got.push(*f));
    win.add(0, 18, &2, None, &mut |f| got.push(*f));
    assert_eq!(win.open_sessions(0), 2);
    win.add(0, 9, &4, None, &mut |f| got.push(*f));
    assert_eq!(win.open_sessions(0), 1);
    win.advance(u64::MAX, &mut |f| got.push(*f));
    assert_eq!(
        got.iter()
            .map(|f| (f.start, f.end, f.agg.sum))
            .collect::<Vec<_>>(),
        [(0, 28, 7)]
    );
    assert_eq!(win.open_sessions(0), 0);
}

#[test]
fn session_fires_at_last_plus_gap_minus_one() {
    let mut win = SessionWindows::<Stats>::new(SessionConfig::new(10), 1).unwrap();
    let mut got = Vec::new();
    win.add(0, 5, &1, None, &mut |f| got.push(*f));
    win.advance(13, &mut |f| got.push(*f));
    assert!(got.is_empty());
    win.advance(14, &mut |f| got.push(*f));
    assert_eq!((got[0].start, got[0].end, got[0].kind), (5, 15, OnTime));
}

#[test]
fn session_lateness_late_firings_and_drops() {
    let cfg = SessionConfig {
        allowed_lateness: 20,
        ..SessionConfig::new(10)
    };
    let mut win = SessionWindows::<Stats>::new(cfg, 1).unwrap();
    let mut got = Vec::new();
    win.add(0, 0, &1, None, &mut |f| got.push(*f));
    win.advance(15, &mut |f| got.push(*f)); // [0, 10) fires
    assert_eq!(
        win.add(0, 2, &2, Some(15), &mut |f| got.push(*f)),
        Added::Late
    );
    // Extends the fired session past the watermark: re-fires (Late) from a later advance.
    assert_eq!(
        win.add(0, 8, &4, Some(15), &mut |f| got.push(*f)),
        Added::Late
    );
    win.advance(16, &mut |f| got.push(*f));
    win.advance(17, &mut |f| got.push(*f));
    // [0, 18): 17 + 20 <= 37 closes it.
    win.advance(37, &mut |f| got.push(*f));
    assert_eq!(
        win.add(0, 1, &8, Some(37), &mut |f| got.push(*f)),
        Added::Dropped
    );
    let got: Vec<_> = got
        .iter()
        .map(|f| (f.start, f.end, f.agg.sum, f.kind))
        .collect();
    assert_eq!(
        got,
        [(0, 10, 1, OnTime), (0, 12, 3, Late), (0, 18, 7, Late)]
    );
    assert_eq!(win.ledger().dropped_late, 1);
    assert_eq!(win.ledger().max_lateness_ns, 36);
    assert_eq!(win.ledger().late_firings, 2);
}

#[test]
fn session_slots_full_is_counted_overflow() {
    let cfg = SessionConfig {
        max_sessions_per_key: 2,
        ..SessionConfig::new(10)
    };
    let mut win = SessionWindows::<Stats>::new(cfg, 1).unwrap();
    let mut got = Vec::new();
    assert_eq!(
        win.add(0, 0, &1, None, &mut |f| got.push(*f)),
        Added::OnTime
    );
    assert_eq!(
        win.add(0, 100, &1, None, &mut |f| got.push(*f)),
        Added::OnTime
    );
    assert_eq!(
        win.add(0, 200, &1, None, &mut |f| got.push(*f)),
        Added::Overflow
    );
    // Joining an open session needs no slot.
    assert_eq!(
        win.add(0, 105, &1, None, &mut |f| got.push(*f)),
        Added::OnTime
    );
    assert_eq!(win.ledger().overflow, 1);
    win.advance(50, &mut |f| got.push(*f));
    assert_eq!(
        win.add(0, 200, &1, Some(50), &mut |f| got.push(*f)),
        Added::OnTime
    );
}

#[test]
fn session_emit_on_update() {
    let cfg = SessionConfig {
        emit: Emit::OnUpdate,
        ..SessionConfig::new(10)
    };
    let run = run_sessions(cfg, 1, 100, &[(0, 0, 1), (0, 5, 2)]);
    assert_eq!(
        run.simple(),
        [
            (0, 0, 10, 1, Update),
            (0, 0, 15, 3, Update),
            (0, 0, 15, 3, OnTime)
        ]
    );
}

// ---------------------------------------------------------------- count windows

#[test]
fn count_windows_slide_over_last_n() {
    let mut win = CountWindows::<Stats>::new(4, 2, 2, Emit::OnClose).unwrap();
    let mut got = Vec::new();
    for x in 1..=7 {
        win.add(0, 0, &x, &mut |f| got.push(*f));
        win.add(1, 0, &(10 * x), &mut |f| got.push(*f));
    }
    let got: Vec<_> = got
        .iter()
        .map(|f| (f.key, f.start, f.end, f.agg.sum))
        .collect();
    assert_eq!(
        got,
        [
            (0, 0, 2, 3),
            (1, 0, 2, 30),
            (0, 0, 4, 10),
            (1, 0, 4, 100),
            (0, 2, 6, 18),
            (1, 2, 6, 180)
        ]
    );
    assert_eq!(win.count(0), 7);
}

#[test]
fn count_windows_tumbling_and_updates() {
    let mut win = CountWindows::<Stats>::new(3, 3, 1, Emit::OnUpdate).unwrap();
    let mut got = Vec::new();
    for x in 1..=4 {
        win.add(0, 0, &x, &mut |f| got.push(*f));
    }
    assert_eq!(win.add(9, 0, &1, &mut |f| got.push(*f)), Added::Overflow);
    let got: Vec<_> = got
        .iter()
        .map(|f| (f.start, f.end, f.agg.sum, f.kind))
        .collect();
    assert_eq!(
        got,
        [
            (0, 1, 1, Update),
            (0, 2, 3, Update),
            (0, 3, 6, OnTime),
            (3, 4, 4, Update)
        ]
    );
}

// ---------------------------------------------------------------- watermarks

#[test]
fn idle_input_does_not_stall_and_watermark_never_decreases() {
    let mut w = Watermarks::new(2, 0, 100).unwrap();
    assert_eq!(
        w.observe(0, 10),
        None,
        "input 1 (no events yet) holds it back"
    );
    assert!(!w.is_idle(1));
    assert_eq!(w.observe(0, 200), Some(199), "input 1 idle: 200 ns behind");
    assert!(w.is_idle(1));
    assert_eq!(w.observe(1, 50), Some(199), "still idle (150 behind)");
    assert_eq!(
        w.observe(1, 150),
        Some(199),
        "active again, but never backwards"
    );
    assert!(!w.is_idle(1));
    assert_eq!(w.observe(0, 250), Some(199), "input 1 (wm 149) holds it");
    assert_eq!(w.observe(1, 240), Some(239));
    assert_eq!(w.observe(0, 400), Some(399), "input 1 idle again");
    assert_eq!(w.observe(1, 390), Some(399));
    assert_eq!(w.input_watermark(1), Some(389));
    assert_eq!(w.observe(7, 1000), Some(399));
    assert_eq!(w.rejected(), 1);
    assert_eq!(w.finish(), u64::MAX);
    assert_eq!(w.watermark(), Some(u64::MAX));
}

#[test]
fn watermarks_use_out_of_orderness() {
    let mut w = Watermarks::new(3, 10, 1_000).unwrap();
    w.observe(0, 100);
    w.observe(1, 120);
    assert_eq!(w.observe(2, 130), Some(89));
    assert_eq!(w.observe(0, 200), Some(109));
}

// ---------------------------------------------------------------- properties

/// Random stream: `(key, ts, value)` with timestamps rising by `0..=step` and each shifted back
/// by up to `disorder`.
fn stream(keys: u32, disorder: u64) -> impl Strategy<Value = Vec<(u32, Ts, i64)>> {
    proptest::collection::vec((0..keys, 0u64..=15, 0..=disorder, -100i64..100), 0..150).prop_map(
        |raw| {
            let mut base = 0u64;
            raw.into_iter()
                .map(|(k, step, back, x)| {
                    base += step;
                    (k, (base + 40).saturating_sub(back), x)
                })
                .collect()
        },
    )
}

/// Brute force: every `(key, end)` window that receives an event, with `accept(ts, end)`
/// deciding whether the event counts for that window.
fn brute_time(
    cfg: &TimeWindowConfig,
    events: &[(u32, Ts, i64)],
    accept: impl Fn(usize, Ts) -> bool,
) -> BTreeMap<(u32, Ts), Stats> {
    let (size, slide, offset) = (cfg.size as i64, cfg.slide as i64, cfg.offset as i64);
    let mut out: BTreeMap<(u32, Ts), Vec<i64>> = BTreeMap::new();
    for (i, &(key, ts, x)) in events.iter().enumerate() {
        let last = (ts as i64 - offset).div_euclid(slide);
        for k in last - size / slide + 1..=last {
            let start = k * slide + offset;
            assert!(start <= ts as i64 && (ts as i64) < start + size);
            let end = (start + size) as Ts;
            if accept(i, end) {
                out.entry((key, end)).or_default().push(x);
            }
        }
    }
    out.into_iter().map(|(k, xs)| (k, stats(&xs))).collect()
}

/// The last OnTime/Late firing of every window, checking that `advance` emits in
/// (start, key) order and that each window fires on time at most once.
fn final_time(run: &Run, size: Ts) -> BTreeMap<(u32, Ts), Stats> {
    let mut last = BTreeMap::new();
    let mut on_time = BTreeMap::new();
    let mut prev: Option<(Option<usize>, Ts, u32)> = None;
    for &(call, f) in &run.firings {
        assert_eq!(f.start, f.end.saturating_sub(size));
        if f.kind == Update {
            continue;
        }
        if let (Some(c), Some((pc, pend, pkey))) = (call, prev) {
            if pc == Some(c) {
                assert!(
                    (pend, pkey) < (f.end, f.key),
                    "order {pend}/{pkey} then {}/{}",
                    f.end,
                    f.key
                );
            }
        }
        prev = Some((call, f.end, f.key));
        if f.kind == OnTime {
            *on_time.entry((f.key, f.end)).or_insert(0) += 1;
        }
        last.insert((f.key, f.end), f.agg);
    }
    assert!(on_time.values().all(|&n| n == 1));
    last
}

fn time_cfg() -> impl Strategy<Value = TimeWindowConfig> {
    (1u64..=20, 1u64..=4, 0u64..20, 0u64..=30, any::<bool>()).prop_map(
        |(slide, n, offset, ooo, update)| TimeWindowConfig {
            size: slide * n,
            slide,
            offset: offset % slide,
            allowed_lateness: 0,
            max_out_of_orderness: ooo,
            emit: if update {
                Emit::OnUpdate
            } else {
                Emit::OnClose
            },
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// With lateness above the disorder nothing is dropped and every window's last firing
    /// equals the brute force.
    #[test]
    fn time_windows_match_brute_force(cfg in time_cfg(), events in stream(4, 60)) {
        let cfg = TimeWindowConfig { allowed_lateness: 61, ..cfg };
        let run = run_time(cfg, 4, &events);
        prop_assert_eq!(run.ledger.lost(), 0);
        prop_assert!(run.added.iter().all(|a| matches!(a, Added::OnTime | Added::Late)));
        let want = brute_time(&cfg, &events, |_, _| true);
        prop_assert_eq!(final_time(&run, cfg.size), want);
    }

    /// With small lateness: accepted + dropped = total, and every window's last firing equals
    /// the brute force over the events its own lateness rule accepts.
    #[test]
    fn time_windows_account_for_every_event(
        cfg in time_cfg(), lateness in 0u64..40, events in stream(3, 60),
    ) {
        let cfg = TimeWindowConfig { allowed_lateness: lateness, ..cfg };
        let run = run_time(cfg, 3, &events);
        let accepted = run.added.iter().filter(|a| matches!(a, Added::OnTime | Added::Late)).count();
        let dropped = run.added.iter().filter(|a| **a == Added::Dropped).count();
        prop_assert_eq!(run.ledger.overflow + run.ledger.out_of_range, 0);
        prop_assert_eq!(accepted + dropped, events.len());
        prop_assert_eq!(run.ledger.dropped_late as usize, dropped);
        let want = brute_time(&cfg, &events, |i, end| {
            run.wms[i].map_or(true, |wm| end - 1 + lateness > wm)
        });
        prop_assert_eq!(final_time(&run, cfg.size), want);
    }

    /// Sessions: with lateness above the disorder, the surviving firings (each replacing the
    /// earlier firings of its key it overlaps) equal the brute-force sessions.
    #[test]
    fn sessions_match_brute_force(
        gap in 1u64..30, ooo in 0u64..30, update in any::<bool>(), events in stream(3, 60),
    ) {
        let cfg = SessionConfig {
            gap,
            allowed_lateness: 61,
            max_sessions_per_key: 256,
            emit: if update { Emit::OnUpdate } else { Emit::OnClose },
        };
        let run = run_sessions(cfg, 3, ooo, &events);
        prop_assert_eq!(run.ledger.lost(), 0);
        let mut alive: Vec<(u32, Ts, Ts, Stats)> = Vec::new();
        for (_, f) in &run.firings {
            if f.kind != Update {
                alive.retain(|&(k, s, e, _)| !(k == f.key && s < f.end && f.start < e));
                alive.push((f.key, f.start, f.end, f.agg));
            }
        }
        alive.sort_by_key(|a| (a.0, a.1));
        let mut want = Vec::new();
        for key in 0..3 {
            let mut evs: Vec<_> = events.iter().filter(|e| e.0 == key).map(|e| (e.1, e.2)).collect();
            evs.sort();
            let mut i = 0;
            while i < evs.len() {
                let mut j = i + 1;
                while j < evs.len() && evs[j].0 - evs[j - 1].0 < gap {
                    j += 1;
                }
                let xs: Vec<i64> = evs[i..j].iter().map(|e| e.1).collect();
                want.push((key, evs[i].0, evs[j - 1].0 + gap, stats(&xs)));
                i = j;
            }
        }
        prop_assert_eq!(alive, want);
    }

    /// Sessions with small lateness: every event is accepted or dropped, and counted.
    #[test]
    fn sessions_account_for_every_event(
        gap in 1u64..30, lateness in 0u64..30, events in stream(3, 60),
    ) {
        let cfg = SessionConfig { gap, allowed_lateness: lateness, max_sessions_per_key: 256, emit: Emit::OnClose };
        let run = run_sessions(cfg, 3, 0, &events);
        let dropped = run.added.iter().filter(|a| **a == Added::Dropped).count();
        let accepted = run.added.iter().filter(|a| matches!(a, Added::OnTime | Added::Late)).count();
        prop_assert_eq!(run.ledger.overflow, 0);
        prop_assert_eq!(accepted + dropped, events.len());
        prop_assert_eq!(run.ledger.dropped_late as usize, dropped);
    }

    /// Count windows: the k-th firing of a key covers its elements
    /// `max(0, k * slide - size) .. k * slide`.
    #[test]
    fn count_windows_match_brute_force(
        slide in 1u64..6, m in 1u64..5, keys in proptest::collection::vec(0u32..3, 0..100),
    ) {
        let size = slide * m;
        let mut win = CountWindows::<Stats>::new(size, slide, 3, Emit::OnClose).unwrap();
        let mut got = Vec::new();
        for (i, &k) in keys.iter().enumerate() {
            win.add(k, 0, &(i as i64), &mut |f| got.push(*f));
        }
        let mut want = Vec::new();
        let mut seen: Vec<Vec<i64>> = vec![Vec::new(); 3];
        for (i, &k) in keys.iter().enumerate() {
            let s = &mut seen[k as usize];
            s.push(i as i64);
            let c = s.len() as u64;
            if c % slide == 0 {
                let first = c.saturating_sub(size);
                want.push((k, first, c, stats(&s[first as usize..])));
            }
        }
        let got: Vec<_> = got.iter().map(|f| (f.key, f.start, f.end, f.agg)).collect();
        prop_assert_eq!(got, want);
    }

    /// The combined watermark never decreases and never passes any active input's bound.
    #[test]
    fn watermarks_monotonic(
        inputs in 1usize..4, ooo in 0u64..20, idle in 0u64..100,
        obs in proptest::collection::vec((0usize..4, 0u64..1000), 0..100),
    ) {
        let mut w = Watermarks::new(inputs, ooo, idle).unwrap();
        let mut prev = None;
        let mut global = 0;
        for (i, ts) in obs {
            let wm = w.observe(i % inputs, ts);
            global = global.max(ts);
            prop_assert!(wm >= prev);
            if let Some(wm) = wm {
                prop_assert!(wm < global.saturating_sub(ooo));
            }
            prev = wm;
        }
    }
}
