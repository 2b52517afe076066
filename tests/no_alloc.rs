//! The steady-state decode + book loop, and the whole pinned pipeline after its setup, allocate
//! nothing.
//!
//! This test binary installs a counting global allocator (the shape of rust-assert-no-alloc): a
//! thread-local flag arms counting, and an RAII guard arms it for the current thread only, so the
//! other test threads of the harness cannot disturb the count. Everything is built up front (the
//! feed in memory, the books, one warm-up pass); then, inside the guard, whole-file walks run and
//! must make zero allocations, reallocations or frees.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tickwatch::bench::{decode_fold, decode_fold_by_type};
use tickwatch::book::{BookConfig, Books};
use tickwatch::feed::Frames;
use tickwatch::gen::{generate, GenConfig};
use tickwatch::itch::{decode, DecodeErrorKind, Side};
use tickwatch::pipeline::{run, Backpressure, PipelineConfig, WaitStrategy};
use tickwatch::replay::{for_each_message, replay, ReplayReport};

mod common;
use common::allocations;

#[global_allocator]
static GLOBAL: common::Counting = common::Counting;

fn feed() -> Vec<u8> {
    let mut buf = Vec::new();
    generate(
        &GenConfig {
            messages: 100_000,
            symbols: 50,
            live_orders: 5_000,
            seed: 77,
        },
        &mut buf,
    )
    .unwrap();
    buf
}

#[test]
fn the_counter_counts() {
    // Without this the zero-allocation tests below could pass against a broken counter.
    let (_, n) = allocations(|| {
        let v = Vec::<u64>::with_capacity(16);
        black_box(&v);
        drop(v);
    });
    assert_eq!(n, 2, "an allocation and a free inside the guard");
    // A value allocated inside and returned: one allocation (its free comes after the guard).
    let (b, n) = allocations(|| Box::new(5u8));
    assert_eq!(n, 1);
    drop(b);
    let (_, n) = allocations(|| 2 + 2);
    assert_eq!(n, 0);
    // What was allocated before the guard is not counted.
    let outside = Box::new([0u8; 64]);
    let (_, n) = allocations(|| outside.len());
    assert_eq!(n, 0);
    // Another thread allocating while the guard is armed here is not counted here.
    let (go, done) = (AtomicBool::new(false), AtomicBool::new(false));
    std::thread::scope(|s| {
        s.spawn(|| {
            while !go.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
            for i in 0..1000 {
                black_box(vec![i as u8; 100]);
            }
            done.store(true, Ordering::Release);
        });
        let (_, n) = allocations(|| {
            go.store(true, Ordering::Release);
            while !done.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
        });
        assert_eq!(n, 0, "counted another thread's allocations");
    });
}

#[test]
fn replay_allocates_nothing() {
    let buf = feed();
    let mut books = Books::new(BookConfig::for_orders(16_384, 51));
    let warm = replay(&buf, &mut books, None, false).unwrap();
    let want_stats = *books.stats();
    for _ in 0..2 {
        let (r, n) = allocations(|| {
            books.clear();
            replay(&buf, &mut books, None, false).unwrap()
        });
        assert_eq!(n, 0, "replay allocated {n} times");
        assert_eq!(r, warm);
        assert_eq!(*books.stats(), want_stats);
    }
    // Stopping early at a time, too.
    let (r, n) = allocations(|| {
        books.clear();
        replay(&buf, &mut books, Some(40_000_000_000_000), false).unwrap()
    });
    assert_eq!(n, 0);
    assert!(r.stopped_early && r.messages < warm.messages);
    books.check().unwrap();
}

#[test]
fn hand_written_loop_allocates_nothing() {
    let buf = feed();
    let mut books = Books::new(BookConfig::for_orders(16_384, 51));
    let run = |books: &mut Books| -> (u64, u64) {
        books.clear();
        let (mut n, mut touch) = (0u64, 0u64);
        for f in Frames::new(&buf) {
            let f = f.unwrap();
            match decode(f.body, f.offset) {
                Ok(m) => {
                    books.apply(&m);
                    n += 1;
                    // Queries in the loop: the touch and top five of the message's stock.
                    let loc = m.stock_locate();
                    if let Some(b) = books.best(loc, Side::Buy) {
                        touch = touch.wrapping_add(b.price as u64);
                    }
                    for l in books.depth(loc, Side::Sell).take(5) {
                        touch = touch.wrapping_add(l.shares);
                    }
                }
                Err(e) => assert!(matches!(e.kind, DecodeErrorKind::UnknownType(_))),
            }
        }
        (n, touch)
    };
    let warm = run(&mut books);
    let (r, n) = allocations(|| run(&mut books));
    assert_eq!(n, 0, "decode + apply allocated {n} times");
    assert_eq!(r, warm);
    assert_eq!(r.0, 100_000);
}

#[test]
fn decode_fold_and_pipelined_walk_allocate_nothing() {
    let buf = feed();
    let warm = decode_fold(&buf).unwrap();
    let (w, n) = allocations(|| decode_fold(&buf).unwrap());
    assert_eq!(n, 0, "decode_fold allocated {n} times");
    assert_eq!(w, warm);
    assert_eq!(w.messages, 100_000);
    let (by_type, n) = allocations(|| decode_fold_by_type(&buf).unwrap());
    assert_eq!(n, 0, "decode_fold_by_type allocated {n} times");
    assert_eq!(
        by_type, warm,
        "batching by type changes neither count nor checksum"
    );

    let mut books = Books::new(BookConfig::for_orders(16_384, 51));
    let mut rep = ReplayReport::default();
    for_each_message(&buf, &mut books, false, &mut rep, |b, m, _| {
        b.apply(m);
        true
    })
    .unwrap();
    let (live, n) = allocations(|| {
        books.clear();
        let mut rep = ReplayReport::default();
        for_each_message(&buf, &mut books, false, &mut rep, |b, m, _| {
            b.apply(m);
            true
        })
        .unwrap();
        books.live_orders()
    });
    assert_eq!(n, 0, "for_each_message allocated {n} times");
    assert!(live > 0);
}

#[test]
fn errors_allocate_nothing() {
    // The error paths of the hot loop build their errors without allocating too.
    let buf = feed();
    let cut = &buf[..buf.len() - 3];
    let mut books = Books::new(BookConfig::for_orders(16_384, 51));
    replay(cut, &mut books, None, false).unwrap_err();
    let (e, n) = allocations(|| {
        books.clear();
        replay(cut, &mut books, None, false).unwrap_err()
    });
    assert_eq!(n, 0);
    assert!(e.offset().is_some());
    let (_, n) = allocations(|| decode_fold(cut).unwrap_err());
    assert_eq!(n, 0);
}

/// Allocator calls made on pipeline threads between their setup and the end of their loops,
/// summed over threads, and how many threads reported.
static PIPELINE_CALLS: AtomicU64 = AtomicU64::new(0);
static PIPELINE_THREADS: AtomicU64 = AtomicU64::new(0);
/// The tests that read those counters take turns (the harness runs tests in parallel).
static PIPELINE_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The pipeline's thread hook: arms this thread's counter for its steady state.
fn count_steady_state(start: bool) {
    if start {
        common::arm();
    } else {
        // SeqCst: read by the test thread after joining (join already orders it).
        PIPELINE_CALLS.fetch_add(common::disarm(), Ordering::SeqCst);
        PIPELINE_THREADS.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn the_whole_pipeline_allocates_nothing_after_setup() {
    let _turn = PIPELINE_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    let buf = feed();
    for (workers, wait, backpressure) in [
        (1, WaitStrategy::BusySpin, Backpressure::Block),
        (2, WaitStrategy::Park, Backpressure::Block),
        (3, WaitStrategy::SpinYield, Backpressure::Drop),
    ] {
        PIPELINE_CALLS.store(0, Ordering::SeqCst);
        PIPELINE_THREADS.store(0, Ordering::SeqCst);
        let cfg = PipelineConfig {
            workers,
            wait,
            backpressure,
            ring_capacity: 64,
            books: BookConfig::for_orders(16_384, 51),
            thread_hook: Some(count_steady_state),
            ..PipelineConfig::default()
        };
        let (stop, progress) = (AtomicBool::new(false), AtomicU64::new(0));
        let out = run(&buf, &cfg, &stop, &progress).unwrap();
        out.report.check_conservation().unwrap();
        assert_eq!(out.report.messages, 100_000);
        assert!(PIPELINE_THREADS.load(Ordering::SeqCst) >= 1);
        assert_eq!(
            PIPELINE_CALLS.load(Ordering::SeqCst),
            0,
            "{workers} workers, {wait:?}, {backpressure:?}: allocator calls on pipeline threads"
        );
    }
    // The hook really counts on those threads: a stage thread that allocates is caught.
    fn allocating_hook(start: bool) {
        count_steady_state(start);
        if start {
            black_box(vec![1u8; 10]);
        }
    }
    PIPELINE_CALLS.store(0, Ordering::SeqCst);
    let cfg = PipelineConfig {
        books: BookConfig::for_orders(16_384, 51),
        thread_hook: Some(allocating_hook),
        ..PipelineConfig::default()
    };
    let (stop, progress) = (AtomicBool::new(false), AtomicU64::new(0));
    run(&buf, &cfg, &stop, &progress).unwrap();
    assert!(PIPELINE_CALLS.load(Ordering::SeqCst) >= 2);
}

#[test]
fn the_bars_job_allocates_nothing_after_setup() {
    use tickwatch::agg::BarFormat;
    use tickwatch::pipeline::{run_job, BarsConfig};
    use tickwatch::window::{Emit, TimeWindowConfig};
    let _turn = PIPELINE_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    let buf = feed();
    for (workers, size, slide, lateness) in [
        (1, 1_000_000_000, 1_000_000_000, 0),
        (3, 2_000_000_000, 500_000_000, 1_000_000_000),
    ] {
        PIPELINE_CALLS.store(0, Ordering::SeqCst);
        PIPELINE_THREADS.store(0, Ordering::SeqCst);
        let cfg = PipelineConfig {
            workers,
            wait: WaitStrategy::SpinYield,
            ring_capacity: 64,
            books: BookConfig::for_orders(16_384, 51),
            thread_hook: Some(count_steady_state),
            ..PipelineConfig::default()
        };
        let job = BarsConfig {
            window: TimeWindowConfig {
                size,
                slide,
                offset: 0,
                allowed_lateness: lateness,
                max_out_of_orderness: 0,
                emit: Emit::OnClose,
            },
            mark_every: 1024,
            by: tickwatch::agg::BarKey::Stock,
            max_participants: 1024,
            symbol: None,
            format: BarFormat::Csv,
            // Rows are formatted into the writer's buffer and flushed to a sink: the output
            // stage's own work, without the file system's.
            sink: Box::new(std::io::BufWriter::with_capacity(1 << 16, std::io::sink())),
        };
        let (stop, progress) = (AtomicBool::new(false), AtomicU64::new(0));
        let out = run_job(&buf, &cfg, Some(job), &stop, &progress).unwrap();
        out.report.check_conservation().unwrap();
        assert!(out.report.bars.unwrap().rows > 1_000);
        assert!(PIPELINE_THREADS.load(Ordering::SeqCst) >= 1);
        assert_eq!(
            PIPELINE_CALLS.load(Ordering::SeqCst),
            0,
            "{workers} workers, {size}/{slide}: allocator calls on pipeline threads"
        );
    }
}

#[test]
fn surveillance_allocates_nothing_after_setup() {
    use tickwatch::gen::{generate_scenarios, ScenarioPlan};
    use tickwatch::pipeline::alerts::SurvJob;
    use tickwatch::pipeline::run_surv;
    use tickwatch::scenario::ScenarioKind;
    let _turn = PIPELINE_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    // Every scenario injected, with the firm's participant flow: every detector and the risk
    // book have work, and alerts are written.
    let mut buf = Vec::new();
    let (_, _, flow) = generate_scenarios(
        &GenConfig {
            messages: 200_000,
            symbols: 60,
            live_orders: 10_000,
            seed: 4,
        },
        600_000_000_000,
        &ScenarioPlan {
            kinds: ScenarioKind::ALL.to_vec(),
            rate: 1.0,
        },
        &mut buf,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for workers in [1, 3] {
        PIPELINE_CALLS.store(0, Ordering::SeqCst);
        PIPELINE_THREADS.store(0, Ordering::SeqCst);
        let cfg = PipelineConfig {
            workers,
            wait: WaitStrategy::SpinYield,
            ring_capacity: 64,
            books: BookConfig::for_orders(65_536, 61),
            thread_hook: Some(count_steady_state),
            ..PipelineConfig::default()
        };
        let job = SurvJob {
            rules: tickwatch::surv::Rules::default(),
            flow: flow.clone().unwrap_or_default(),
            // The production sink: the memory-mapped journal (its first chunk is mapped and
            // faulted in here, before the threads start).
            sink: tickwatch::pipeline::alerts::AlertSink::Journal(
                tickwatch::pipeline::journal::Journal::create(&dir.path().join("alerts.jsonl"))
                    .unwrap(),
            ),
            mark_every: 1024,
            reload: None,
            detectors: Vec::new(),
        };
        let (stop, progress) = (AtomicBool::new(false), AtomicU64::new(0));
        let out = run_surv(&buf, &cfg, job, &stop, &progress).unwrap();
        out.report.check_conservation().unwrap();
        assert!(out.report.surv.unwrap().total > 0, "alerts were written");
        assert!(PIPELINE_THREADS.load(Ordering::SeqCst) >= 1);
        assert_eq!(
            PIPELINE_CALLS.load(Ordering::SeqCst),
            0,
            "{workers} workers: allocator calls on pipeline threads"
        );
    }
}

#[test]
fn bars_with_surveillance_in_one_run_allocate_nothing_after_setup() {
    use tickwatch::agg::BarFormat;
    use tickwatch::pipeline::alerts::SurvJob;
    use tickwatch::pipeline::{run_market, BarsConfig, MarketJobs};
    use tickwatch::window::{Emit, TimeWindowConfig};
    let _turn = PIPELINE_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    let buf = feed();
    for workers in [1, 2] {
        PIPELINE_CALLS.store(0, Ordering::SeqCst);
        PIPELINE_THREADS.store(0, Ordering::SeqCst);
        let cfg = PipelineConfig {
            workers,
            wait: WaitStrategy::SpinYield,
            ring_capacity: 64,
            books: BookConfig::for_orders(16_384, 51),
            thread_hook: Some(count_steady_state),
            ..PipelineConfig::default()
        };
        let bars = BarsConfig {
            window: TimeWindowConfig {
                size: 1_000_000_000,
                slide: 1_000_000_000,
                offset: 0,
                allowed_lateness: 0,
                max_out_of_orderness: 0,
                emit: Emit::OnClose,
            },
            mark_every: 1024,
            by: tickwatch::agg::BarKey::Stock,
            max_participants: 1024,
            symbol: None,
            format: BarFormat::Csv,
            sink: Box::new(std::io::BufWriter::with_capacity(1 << 16, std::io::sink())),
        };
        let surv = SurvJob {
            rules: tickwatch::surv::Rules::default(),
            flow: Vec::new(),
            sink: std::io::BufWriter::with_capacity(1 << 16, std::io::sink()).into(),
            mark_every: 1024,
            reload: None,
            detectors: Vec::new(),
        };
        let jobs = MarketJobs {
            bars: Some(bars),
            surv: Some(surv),
        };
        let (stop, progress) = (AtomicBool::new(false), AtomicU64::new(0));
        let out = run_market(&buf, &cfg, jobs, &stop, &progress).unwrap();
        out.report.check_conservation().unwrap();
        assert!(out.report.bars.unwrap().rows > 1_000);
        assert_eq!(
            PIPELINE_CALLS.load(Ordering::SeqCst),
            0,
            "{workers} workers: allocator calls on pipeline threads"
        );
    }
}

#[test]
fn a_sharded_keyed_job_allocates_nothing_after_setup() {
    use tickwatch::engine::{self, Config, Control};
    use tickwatch::stream::{Job, RecordSource, Sharded, Span, Window};
    let _turn = PIPELINE_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    // (time, key, value) records over 500 keys.
    let records: Vec<[u64; 3]> = (0..100_000u64)
        .map(|i| [i, i * 7919 % 500, i % 13])
        .collect();
    let sliding = Window::Sliding {
        size: 400,
        slide: 100,
    };
    for (window, workers) in [
        (Window::Global, 1),
        (Window::Global, 3),
        (sliding, 1),
        (sliding, 3),
        (Window::Session { gap: 600 }, 3),
    ] {
        PIPELINE_CALLS.store(0, Ordering::SeqCst);
        PIPELINE_THREADS.store(0, Ordering::SeqCst);
        let cfg = Config {
            workers,
            wait: WaitStrategy::SpinYield,
            ring_capacity: 64,
            thread_hook: Some(count_steady_state),
            ..Config::default()
        };
        let src = RecordSource::new(&records, |r: &[u64; 3]| r[1], |r: &[u64; 3]| r[0]);
        // The sink sums what it receives: no allocation of its own.
        let mut total = 0u64;
        let job = Sharded::new(
            || {
                Job::keyed(|r: &[u64; 3]| r[1])
                    .event_time(|r| r[0])
                    .window(window)
                    .allowed_lateness(150)
                    .aggregate(|| 0u64, |acc: &mut u64, r: &[u64; 3]| *acc += r[2])
                    .merge(|a, b| *a += *b)
                    .on_update()
                    .capacity(1024)
                    .build()
            },
            |_, _: Span, v: &u64| total = total.wrapping_add(*v),
        );
        let (stop, progress) = (AtomicBool::new(false), AtomicU64::new(0));
        let ctl = Control {
            stop: &stop,
            progress: &progress,
        };
        let done = engine::run_job(src, job, &cfg, ctl).unwrap();
        // Global and sessions: one update per record at least; sliding: one per window a
        // record enters, and the final results.
        let updates = if matches!(window, Window::Sliding { .. }) {
            4
        } else {
            1
        };
        assert!(done.collector.emitted >= 100_000 * updates, "{window:?}");
        assert_eq!(
            PIPELINE_CALLS.load(Ordering::SeqCst),
            0,
            "{window:?}, {workers} workers: allocator calls on engine threads"
        );
    }
}
