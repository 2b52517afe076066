//! The engine on its own and under the market jobs: bars and surveillance in one run write
//! exactly what each writes alone, for any worker count; a stage that panics stops every other
//! stage and the run returns an error at once; configuration values out of range are refused
//! with their name and range.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::mpsc;
use std::time::Duration;

mod common;
use common::scenario::{scenario_feed, Scenarios};
use common::shared::Shared;

use tickwatch::agg::{BarFormat, BarKey};
use tickwatch::book::BookConfig;
use tickwatch::engine::{
    self, Config, Control, EngineError, Plan, Route, ShardOp, Source, Tag, WaitStrategy,
};
use tickwatch::pipeline::alerts::SurvJob;
use tickwatch::pipeline::{run_market, BarsConfig, JobError, MarketJobs, PipelineConfig};
use tickwatch::surv::{FlowRecord, Rules};
use tickwatch::window::{Emit, TimeWindowConfig};

fn bars_job(sink: &Shared) -> BarsConfig {
    BarsConfig {
        window: TimeWindowConfig {
            size: 10_000_000_000,
            slide: 5_000_000_000,
            offset: 0,
            allowed_lateness: 0,
            max_out_of_orderness: 0,
            emit: Emit::OnClose,
        },
        mark_every: 1024,
        by: BarKey::Stock,
        max_participants: 1024,
        symbol: None,
        format: BarFormat::Csv,
        sink: Box::new(sink.clone()),
    }
}

fn surv_job(sink: &Shared, flow: &[FlowRecord]) -> SurvJob {
    SurvJob {
        rules: Rules::default(),
        flow: flow.to_vec(),
        sink: sink.clone().into(),
        mark_every: 1024,
        reload: None,
        detectors: Vec::new(),
    }
}

/// Runs the jobs asked for; returns (bars bytes, alerts bytes).
fn market(
    feed: &[u8],
    flow: &[FlowRecord],
    workers: usize,
    bars: bool,
    surv: bool,
) -> (Vec<u8>, Vec<u8>) {
    let (b, s) = (Shared::default(), Shared::default());
    let cfg = PipelineConfig {
        workers,
        wait: WaitStrategy::SpinYield,
        ring_capacity: 1024,
        books: BookConfig::small(),
        ..PipelineConfig::default()
    };
    let jobs = MarketJobs {
        bars: bars.then(|| bars_job(&b)),
        surv: surv.then(|| surv_job(&s, flow)),
    };
    let out = run_market(
        feed,
        &cfg,
        jobs,
        &AtomicBool::new(false),
        &AtomicU64::new(0),
    )
    .unwrap();
    out.report.check_conservation().unwrap();
    assert_eq!(out.report.bars.is_some(), bars);
    assert_eq!(out.report.surv.is_some(), surv);
    (b.bytes(), s.bytes())
}

#[test]
fn bars_and_surveillance_in_one_run_write_what_each_writes_alone() {
    let Scenarios { feed, flow, .. } = scenario_feed(60_000, 40, 11);
    let (bars_alone, none) = market(&feed, &flow, 1, true, false);
    assert!(none.is_empty());
    let (none, alerts_alone) = market(&feed, &flow, 1, false, true);
    assert!(none.is_empty());
    assert!(bars_alone.iter().filter(|&&c| c == b'\n').count() > 100);
    assert!(alerts_alone.iter().filter(|&&c| c == b'\n').count() > 10);
    for workers in [1, 2, 3] {
        let (bars, alerts) = market(&feed, &flow, workers, true, true);
        assert!(bars == bars_alone, "{workers} workers: bars differ");
        assert!(alerts == alerts_alone, "{workers} workers: alerts differ");
    }
}

/// A test event: a key, a value, and the engine's header.
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Ev {
    origin: u64,
    seq: u32,
    key: u16,
    mark: u16,
    value: u64,
}

impl engine::Event for Ev {
    fn origin(&self) -> u64 {
        self.origin
    }
    fn seq(&self) -> u32 {
        self.seq
    }
    fn set_header(&mut self, origin: u64, seq: u32) {
        self.origin = origin;
        self.seq = seq;
        self.mark = 0;
    }
    fn set_mark(&mut self, wm: u64, clock: u8, seq: u32) {
        *self = Ev {
            origin: 0,
            seq,
            key: 0,
            mark: 1 + clock as u16,
            value: wm,
        };
    }
    fn mark(&self) -> Option<(u64, u8)> {
        (self.mark != 0).then(|| (self.value, self.mark as u8 - 1))
    }
}

#[derive(Debug)]
struct NoError;
impl std::fmt::Display for NoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no error")
    }
}
impl std::error::Error for NoError {}

/// Items `next..end` keyed by value mod 16.
struct Counting {
    next: u64,
    end: u64,
}

impl Source for Counting {
    type Event = Ev;
    type Error = NoError;
    fn advance(&mut self) -> Option<Result<(), NoError>> {
        (self.next < self.end).then(|| {
            self.next += 1;
            Ok(())
        })
    }
    fn time(&self) -> u64 {
        self.next
    }
    fn route(&self, shards: usize) -> Route {
        Route::One(self.next as usize % 16 % shards)
    }
    fn write(&self, slot: &mut Ev) {
        slot.key = (self.next % 16) as u16;
        slot.value = self.next;
    }
}

/// Panics at the event whose value is `at`.
struct Bomb {
    at: u64,
}

impl ShardOp for Bomb {
    type Event = Ev;
    fn on_event(&mut self, ev: &Ev) -> Tag {
        assert!(ev.value != self.at, "boom at {}", ev.value);
        Tag::default()
    }
}

/// Runs `f` on its own thread; its result, or `None` if it took longer than `limit`.
fn within<R: Send + 'static>(limit: Duration, f: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).ok()
}

#[test]
fn a_panicking_operator_stops_every_stage_and_the_run_fails_at_once() {
    for (workers, wait) in [
        (1, WaitStrategy::BusySpin),
        (2, WaitStrategy::Park),
        (3, WaitStrategy::SpinYield),
    ] {
        // The source never ends on its own: only the panic can stop the run.
        let r = within(Duration::from_secs(20), move || {
            let cfg = Config {
                workers,
                wait,
                ring_capacity: 64,
                ..Config::default()
            };
            let ops = (0..workers).map(|_| Bomb { at: 5_000 }).collect();
            let plan = Plan {
                ops,
                collector: (),
                clocks: vec![],
            };
            let (stop, progress) = (AtomicBool::new(false), AtomicU64::new(0));
            let ctl = Control {
                stop: &stop,
                progress: &progress,
            };
            let src = Counting {
                next: 0,
                end: u64::MAX,
            };
            engine::run(src, plan, &cfg, ctl).map(|f| f.report.messages)
        });
        match r {
            Some(Err(EngineError::Panicked { thread, message })) => {
                assert!(thread.contains("worker"), "{thread}");
                assert!(message.contains("boom at 5000"), "{message}");
            }
            Some(other) => panic!("{workers} workers: expected a panic error, got {other:?}"),
            None => panic!("{workers} workers, {wait:?}: the run did not stop"),
        }
    }
}

#[test]
fn configuration_out_of_range_is_refused_naming_the_value_and_range() {
    let base = Config::default();
    for (cfg, want) in [
        (
            Config {
                workers: 0,
                ..base.clone()
            },
            "workers is 0, allowed 1..=1024",
        ),
        (
            Config {
                workers: 100_000,
                ..base.clone()
            },
            "workers is 100000, allowed 1..=1024",
        ),
        (
            Config {
                ring_capacity: usize::MAX,
                ..base.clone()
            },
            "ring capacity",
        ),
        (
            Config {
                speed: Some(0.0),
                ..base.clone()
            },
            "speed is 0",
        ),
        (
            Config {
                speed: Some(f64::NAN),
                ..base.clone()
            },
            "speed is NaN",
        ),
    ] {
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains(want), "{err} should say {want}");
    }
    // The market run refuses the same, before allocating anything.
    let cfg = PipelineConfig {
        workers: 100_000,
        ..PipelineConfig::default()
    };
    let err = run_market(
        &[],
        &cfg,
        MarketJobs::default(),
        &AtomicBool::new(false),
        &AtomicU64::new(0),
    )
    .unwrap_err();
    assert!(
        matches!(err, JobError::Engine(EngineError::Config(_))),
        "{err}"
    );
}

/// Sums its events and notes every mark it sees.
struct Marks {
    sum: u64,
    marks: Vec<(u8, u32, u64)>,
}

impl ShardOp for Marks {
    type Event = Ev;
    fn on_event(&mut self, ev: &Ev) -> Tag {
        self.sum += ev.value;
        Tag {
            key: ev.key,
            kind: 0,
            flags: (ev.value % 3 == 0) as u8 * Tag::FLAGGED,
        }
    }
    fn on_mark(&mut self, wm: u64, clock: u8, seq: u32) {
        self.marks.push((clock, seq, wm));
    }
}

#[test]
fn a_user_operator_sees_the_same_marks_of_every_clock_for_any_worker_count() {
    use tickwatch::engine::{Clock, MarkGen};
    let mut want: Option<Vec<(u8, u32, u64)>> = None;
    for workers in 1..=3 {
        let cfg = Config {
            workers,
            wait: WaitStrategy::SpinYield,
            ring_capacity: 64,
            ..Config::default()
        };
        let ops = (0..workers)
            .map(|_| Marks {
                sum: 0,
                marks: Vec::with_capacity(1 << 12),
            })
            .collect();
        // Clock 0: windows of 100 ns of event time; clock 1: every 250 items.
        let clocks = vec![
            Clock {
                gen: MarkGen::windows(100, 0, 0, u32::MAX),
                size: 100,
            },
            Clock {
                gen: MarkGen::periodic(250),
                size: 0,
            },
        ];
        let plan = Plan {
            ops,
            collector: (),
            clocks,
        };
        let (stop, progress) = (AtomicBool::new(false), AtomicU64::new(0));
        let ctl = Control {
            stop: &stop,
            progress: &progress,
        };
        let src = Counting {
            next: 0,
            end: 2_000,
        };
        let done = engine::run(src, plan, &cfg, ctl).unwrap();
        let r = &done.report;
        assert_eq!((r.messages, r.processed), (2_000, 2_000));
        assert_eq!(
            r.flagged,
            (1..=2_000u64).filter(|v| v % 3 == 0).count() as u64
        );
        assert_eq!(
            done.ops.iter().map(|o| o.sum).sum::<u64>(),
            (1..=2_000u64).sum::<u64>()
        );
        // Every shard saw every mark, in the same order, at the same feed positions.
        for o in &done.ops {
            assert_eq!(o.marks, done.ops[0].marks);
        }
        let marks = done.ops[0].marks.clone();
        assert_eq!(r.marks, marks.len() as u64 * workers as u64);
        assert_eq!(r.marks_sent.iter().sum::<u64>(), marks.len() as u64);
        // Window ends every 100 ns of event time (1 ns per item), then the final marks.
        assert!(marks.iter().filter(|m| m.0 == 0).count() >= 20);
        assert!(marks.iter().filter(|m| m.0 == 1).count() >= 8);
        match &want {
            None => want = Some(marks),
            Some(w) => assert_eq!(&marks, w, "{workers} workers"),
        }
    }
}

#[test]
fn the_engine_imports_nothing_of_markets() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine");
    let market = [
        "itch", "book", "surv", "agg", "join", "lobster", "gen", "scenario", "pipeline",
    ];
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        files += 1;
        for m in market {
            let needle = format!("crate::{m}");
            assert!(
                !text.contains(&needle),
                "{} mentions {needle}",
                path.display()
            );
        }
    }
    assert!(files >= 10, "read {files} files of src/engine");
}

/// A live-like source: nothing yet on every other call, each item stamped as having arrived
/// `early` ticks before it was read.
struct Trickle {
    inner: Counting,
    idle: bool,
    ended: bool,
    early: u64,
}

impl Source for Trickle {
    type Event = Ev;
    type Error = NoError;
    fn advance(&mut self) -> Option<Result<(), NoError>> {
        self.idle = !self.idle;
        if self.idle {
            return None; // nothing yet
        }
        let r = self.inner.advance();
        self.ended = r.is_none();
        r
    }
    fn ended(&self) -> bool {
        self.ended
    }
    fn time(&self) -> u64 {
        self.inner.time()
    }
    fn route(&self, shards: usize) -> Route {
        self.inner.route(shards)
    }
    fn write(&self, slot: &mut Ev) {
        self.inner.write(slot)
    }
    fn arrival(&self) -> Option<u64> {
        Some(tickwatch::clock::ticks() - self.early)
    }
}

#[test]
fn a_source_with_nothing_yet_is_asked_again_and_its_arrival_starts_the_latency() {
    let scale = tickwatch::clock::TickScale::cached();
    let cfg = Config {
        workers: 2,
        wait: WaitStrategy::SpinYield,
        ..Config::default()
    };
    let plan = Plan {
        ops: vec![Bomb { at: u64::MAX }, Bomb { at: u64::MAX }],
        collector: (),
        clocks: vec![],
    };
    let (stop, progress) = (AtomicBool::new(false), AtomicU64::new(0));
    let ctl = Control {
        stop: &stop,
        progress: &progress,
    };
    let src = Trickle {
        inner: Counting {
            next: 0,
            end: 5_000,
        },
        idle: false,
        ended: false,
        early: scale.to_ticks(2_000_000), // 2 ms
    };
    let f = engine::run(src, plan, &cfg, ctl).unwrap();
    assert_eq!(f.report.messages, 5_000);
    assert_eq!(f.report.processed, 5_000);
    assert!(!f.report.interrupted);
    let e2e = f.report.latency.last().unwrap();
    assert!(e2e.histogram.min() >= 1_900_000, "{}", e2e.histogram.min());
}
