//! The pinned, sharded pipeline gives the single-threaded replay's results, for any worker count
//! and wait strategy; its counters balance exactly (events offered = processed + dropped) under
//! both backpressure policies; paced replay keeps feed order and never runs ahead of the feed's
//! clock; errors name the same byte offset as the single-threaded path.
//!
//! Timing is only ever asserted as a lower bound that the pacing guarantees (the reader does not
//! send a message before it is due), never as a wall-clock upper bound.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Instant;

use tickwatch::book::{BookConfig, Books};
use tickwatch::gen::{generate, GenConfig};
use tickwatch::itch::be::{BeU32, BeU64};
use tickwatch::itch::encode::{header, push_frame};
use tickwatch::itch::{AddOrder, Side, SystemEvent};
use tickwatch::pipeline::{
    run, shard_of, Backpressure, FeedOptions, JobError, PipelineConfig, RunOutcome, WaitStrategy,
};
use tickwatch::replay::replay;

fn feed(messages: u64, symbols: u32, seed: u64) -> Vec<u8> {
    let mut v = Vec::new();
    generate(
        &GenConfig {
            messages,
            symbols,
            live_orders: (messages / 20).max(1),
            seed,
        },
        &mut v,
    )
    .unwrap();
    v
}

fn books_cfg() -> BookConfig {
    BookConfig::for_orders(1 << 16, 1 << 16)
}

fn config(workers: usize, wait: WaitStrategy) -> PipelineConfig {
    PipelineConfig {
        workers,
        cores: Vec::new(),
        wait,
        ring_capacity: 256,
        books: books_cfg(),
        ..PipelineConfig::default()
    }
}

fn run_cfg(buf: &[u8], cfg: &PipelineConfig) -> RunOutcome {
    let stop = AtomicBool::new(false);
    let progress = AtomicU64::new(0);
    run(buf, cfg, &stop, &progress).expect("pipeline run")
}

/// Every stock's whole book, both sides, and the summed counters equal the single-threaded
/// replay's; each stock lives on the worker `shard_of` names, and no other worker has it.
fn assert_same_books(buf: &[u8], out: &RunOutcome, label: &str) {
    let mut single = Books::new(books_cfg());
    let rep = replay(buf, &mut single, None, false).unwrap();
    let r = &out.report;
    assert_eq!(r.messages, rep.messages, "{label}: messages");
    assert_eq!(r.skipped_unknown, rep.skipped_unknown_types, "{label}");
    assert_eq!(r.book_stats, *single.stats(), "{label}: book counters");
    assert_eq!(r.live_orders, single.live_orders(), "{label}: live orders");
    let n = out.books.len();
    let mut locates = 0;
    for locate in single.active_locates() {
        locates += 1;
        let owner = &out.books[shard_of(locate, n)];
        for side in [Side::Buy, Side::Sell] {
            let want: Vec<_> = single.depth(locate, side).collect();
            let got: Vec<_> = owner.depth(locate, side).collect();
            assert_eq!(got, want, "{label}: locate {locate} {side:?}");
        }
    }
    assert!(locates > 0, "{label}: the feed built some books");
    for (i, b) in out.books.iter().enumerate() {
        b.check().unwrap();
        for locate in b.active_locates() {
            assert_eq!(
                shard_of(locate, n),
                i,
                "{label}: locate {locate} on worker {i}"
            );
        }
    }
    r.check_conservation().unwrap();
    assert_eq!(r.dropped, 0, "{label}: block policy drops nothing");
    assert_eq!(r.order_violations, 0, "{label}");
    // Every market-wide (locate 0) message reaches every worker.
    assert!(r.offered >= r.messages, "{label}");
}

#[test]
fn same_books_as_single_threaded_for_any_workers_and_wait() {
    let buf = feed(60_000, 40, 7);
    for workers in [1, 2, 3, 5] {
        for wait in [
            WaitStrategy::BusySpin,
            WaitStrategy::SpinYield,
            WaitStrategy::Park,
        ] {
            let out = run_cfg(&buf, &config(workers, wait));
            assert_same_books(&buf, &out, &format!("{workers} workers, {wait:?}"));
            let e2e = out.report.end_to_end();
            assert_eq!(
                e2e.percentiles.count, out.report.processed,
                "every event is timed end to end"
            );
        }
    }
}

#[test]
fn same_books_on_the_real_sample_and_tiny_rings() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/12302019_SNIPPET.NASDAQ_ITCH50"
    );
    let buf = std::fs::read(path).expect("the shared real ITCH sample");
    for workers in [1, 2, 4] {
        let mut cfg = config(workers, WaitStrategy::SpinYield);
        cfg.ring_capacity = 2; // every batch boundary and full ring is exercised
        let out = run_cfg(&buf, &cfg);
        assert_same_books(&buf, &out, &format!("real sample, {workers} workers"));
        assert!(
            out.report.rings.iter().any(|r| r.full > 0),
            "2-slot rings fill up"
        );
    }
}

#[test]
fn pinned_threads_when_cores_are_given() {
    let buf = feed(20_000, 10, 3);
    let cores: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let mut cfg = config(2, WaitStrategy::SpinYield);
    cfg.cores = cores.clone();
    let out = run_cfg(&buf, &cfg);
    assert_same_books(&buf, &out, "pinned");
    let threads = &out.report.threads;
    assert_eq!(threads.len(), cores.len().clamp(1, 4));
    for t in threads {
        assert!(t.name.starts_with("tw-"), "{}", t.name);
        if let Some(c) = t.core {
            assert!(cores.contains(&c));
        }
    }
    // Every stage runs on exactly one thread.
    let names: Vec<&str> = threads
        .iter()
        .flat_map(|t| t.name.trim_start_matches("tw-").split('+'))
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, ["output", "reader", "worker-0", "worker-1"]);
}

/// Makes the worker threads start late, so a small ring must overflow while the reader runs.
fn slow_worker_start(steady: bool) {
    let name = std::thread::current().name().unwrap_or("").to_string();
    if steady && !name.contains("reader") {
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

#[test]
fn drop_policy_counts_every_dropped_event() {
    let buf = feed(50_000, 20, 11);
    for workers in [1, 2] {
        let mut cfg = config(workers, WaitStrategy::SpinYield);
        cfg.backpressure = Backpressure::Drop;
        cfg.ring_capacity = 4;
        cfg.cores = vec![]; // two unpinned threads: reader (+output) and the workers
        cfg.thread_hook = Some(slow_worker_start);
        let out = run_cfg(&buf, &cfg);
        let r = &out.report;
        assert!(r.dropped > 0, "{workers}: a stalled 4-slot ring drops");
        assert_eq!(r.messages, 50_000, "the reader reads everything");
        r.check_conservation().unwrap();
        assert_eq!(r.offered, r.processed + r.dropped);
        let per_ring: u64 = r.rings[..workers].iter().map(|c| c.dropped).sum();
        assert_eq!(per_ring, r.dropped);
        for c in &r.rings[..workers] {
            assert_eq!(c.pushed, c.popped, "whatever was pushed was processed");
        }
        // Dropped events are missing from the books, and the books say so in their counters
        // rather than breaking: every level still equals the sum of its orders.
        for b in &out.books {
            b.check().unwrap();
        }
        assert_eq!(r.order_violations, 0);
    }
}

#[test]
fn block_policy_loses_nothing_when_workers_stall() {
    let buf = feed(30_000, 20, 12);
    let mut cfg = config(2, WaitStrategy::SpinYield);
    cfg.ring_capacity = 4;
    cfg.thread_hook = Some(slow_worker_start);
    let out = run_cfg(&buf, &cfg);
    assert_same_books(&buf, &out, "stalled workers, block");
    assert!(out.report.rings[..2].iter().any(|r| r.full > 0));
}

/// `n` adds on locate 1, `gap_ns` apart from 10:00, after a system event.
fn spaced_feed(n: u64, gap_ns: u64) -> (Vec<u8>, u64) {
    let t0 = 36_000_000_000_000;
    let mut v = Vec::new();
    push_frame(
        &mut v,
        &SystemEvent {
            hdr: header(b'S', 0, 0, t0),
            event_code: b'Q',
        },
    );
    for i in 0..n {
        push_frame(
            &mut v,
            &AddOrder {
                hdr: header(b'A', 1 + (i % 3) as u16, 0, t0 + i * gap_ns),
                order_ref: BeU64::new(i + 1),
                side: if i % 2 == 0 { b'B' } else { b'S' },
                shares: BeU32::new(100),
                stock: *b"TEST    ",
                price: BeU32::new(if i % 2 == 0 { 1_000_000 } else { 1_010_000 }),
            },
        );
    }
    (v, t0)
}

#[test]
fn paced_replay_keeps_order_and_never_runs_ahead_of_the_feed_clock() {
    let (buf, t0) = spaced_feed(200, 100_000); // 19.9 ms of feed time
    let span_ns = 199 * 100_000;
    for (speed, workers) in [(1.0, 1), (10.0, 2), (4.0, 3)] {
        let mut cfg = config(workers, WaitStrategy::SpinYield);
        cfg.speed = Some(speed);
        let t = Instant::now();
        let out = run_cfg(&buf, &cfg);
        let wall = t.elapsed().as_nanos() as f64;
        assert_same_books(&buf, &out, &format!("paced {speed}x"));
        let r = &out.report;
        assert!(
            wall >= span_ns as f64 / speed,
            "{speed}x: finished in {wall} ns, before the feed's {span_ns} ns / {speed} had passed"
        );
        assert_eq!(r.end_to_end().percentiles.count, r.processed);
        assert_eq!(r.order_violations, 0);
    }
    // Fast-forward: untimed up to `pace_from`, paced (and timed) after.
    let mut cfg = config(1, WaitStrategy::SpinYield);
    cfg.speed = Some(1.0);
    cfg.pace_from = t0 + 150 * 100_000;
    let t = Instant::now();
    let out = run_cfg(&buf, &cfg);
    let wall = t.elapsed().as_nanos();
    assert!(wall >= 49 * 100_000, "the last 50 adds are paced");
    let r = &out.report;
    assert_eq!(r.messages, 201);
    assert_eq!(
        r.end_to_end().percentiles.count,
        50,
        "only the paced part is timed"
    );
}

#[test]
fn until_stops_the_feed_at_a_time_of_day() {
    let (buf, t0) = spaced_feed(100, 1_000);
    let mut cfg = config(2, WaitStrategy::BusySpin);
    cfg.feed = FeedOptions {
        until: Some(t0 + 41 * 1_000),
        lenient: false,
    };
    let out = run_cfg(&buf, &cfg);
    let r = &out.report;
    assert!(r.stopped_at_until);
    assert_eq!(r.messages, 1 + 42, "the system event and adds 0..=41");
    r.check_conservation().unwrap();
}

#[test]
fn stop_flag_ends_the_run_cleanly_with_counters() {
    let buf = feed(50_000, 20, 5);
    let stop = AtomicBool::new(true); // Ctrl-C before the first batch
    let progress = AtomicU64::new(0);
    let out = run(&buf, &config(2, WaitStrategy::Park), &stop, &progress).unwrap();
    assert!(out.report.interrupted);
    assert_eq!(out.report.messages, 0);
    out.report.check_conservation().unwrap();
}

#[test]
fn feed_errors_name_the_offset_like_the_single_threaded_path() {
    let buf = feed(5_000, 5, 9);
    let mut books = Books::new(books_cfg());
    for cut in [buf.len() - 1, buf.len() / 2 + 1, 3] {
        let t = &buf[..cut];
        books.clear();
        let want = replay(t, &mut books, None, false).unwrap_err();
        let stop = AtomicBool::new(false);
        let progress = AtomicU64::new(0);
        for workers in [1, 2] {
            let got = run(
                t,
                &config(workers, WaitStrategy::SpinYield),
                &stop,
                &progress,
            )
            .unwrap_err();
            match got {
                JobError::Feed(got) => assert_eq!(got, want, "cut at {cut}, {workers} workers"),
                other => panic!("cut at {cut}, {workers} workers: {other}"),
            }
        }
    }
    // A known type with a bad length: an error naming its offset, or a counted skip if lenient.
    let mut bad = buf[..].to_vec();
    let (off, _) = first_frame_of(&bad, b'A');
    bad[off + 2] = b'F'; // a 36-byte frame typed F (40 bytes): framing intact, length wrong
    let stop = AtomicBool::new(false);
    let progress = AtomicU64::new(0);
    let err = run(&bad, &config(2, WaitStrategy::SpinYield), &stop, &progress).unwrap_err();
    assert!(err.to_string().contains(&off.to_string()), "{err}");
    let mut cfg = config(2, WaitStrategy::SpinYield);
    cfg.feed.lenient = true;
    let out = run(&bad, &cfg, &stop, &progress).unwrap();
    assert!(out.report.skipped_bad_lengths >= 1);
    out.report.check_conservation().unwrap();
}

/// Offset and length of the first frame of type `t`.
fn first_frame_of(buf: &[u8], t: u8) -> (usize, usize) {
    let mut pos = 0;
    while pos + 2 < buf.len() {
        let len = u16::from_be_bytes([buf[pos], buf[pos + 1]]) as usize;
        if buf[pos + 2] == t {
            return (pos, len);
        }
        pos += 2 + len;
    }
    panic!("no {} frame", t as char);
}

#[test]
fn end_to_end_only_timing_times_every_event_and_no_stage() {
    let buf = feed(40_000, 20, 17);
    for workers in [1, 2] {
        let mut cfg = config(workers, WaitStrategy::BusySpin);
        cfg.stage_timing = false;
        let out = run_cfg(&buf, &cfg);
        assert_same_books(&buf, &out, &format!("e2e timing, {workers} workers"));
        let r = &out.report;
        let count = |stage: &str| {
            r.latency
                .iter()
                .find(|l| l.stage == stage)
                .unwrap_or_else(|| panic!("no {stage} row"))
                .percentiles
                .count
        };
        assert_eq!(count("end to end"), r.processed);
        assert_eq!(count("reader"), 0);
        assert_eq!(count("worker queue"), 0);
        assert_eq!(count("book update"), 0);
        assert_eq!(count("output hop"), 0);
    }
}

#[test]
fn sampled_stage_timing_times_one_event_in_n_and_every_event_end_to_end() {
    let buf = feed(64_000, 20, 19);
    for workers in [1, 2] {
        let mut cfg = config(workers, WaitStrategy::BusySpin);
        cfg.stage_sample = 16;
        let out = run_cfg(&buf, &cfg);
        assert_same_books(&buf, &out, &format!("sampled timing, {workers} workers"));
        let r = &out.report;
        let count = |stage: &str| {
            r.latency
                .iter()
                .find(|l| l.stage == stage)
                .unwrap_or_else(|| panic!("no {stage} row"))
                .percentiles
                .count
        };
        assert_eq!(count("end to end"), r.processed);
        // A hash of the feed position picks the sample: close to 1 in 16 of the messages.
        let (lo, hi) = (r.processed / 20, r.processed / 12);
        for stage in ["reader", "worker queue", "book update", "output hop"] {
            let n = count(stage);
            assert!(
                (lo..=hi).contains(&n),
                "{stage}: {n} of {} timed with 1 in 16",
                r.processed
            );
        }
    }
    let mut bad = config(1, WaitStrategy::BusySpin);
    bad.stage_sample = 12;
    let err = bad.engine().validate().unwrap_err().to_string();
    assert!(
        err.contains("stage sample") && err.contains("power of two"),
        "{err}"
    );
}

#[test]
fn one_core_runs_every_stage_on_one_thread_with_the_same_results() {
    let buf = feed(30_000, 15, 23);
    let Some(first) = core_affinity::get_core_ids()
        .unwrap_or_default()
        .first()
        .map(|c| c.id)
    else {
        return; // the platform cannot list cores: nothing to pin to
    };
    for workers in [1, 3] {
        let mut cfg = config(workers, WaitStrategy::BusySpin);
        cfg.cores = vec![first];
        let out = run_cfg(&buf, &cfg);
        assert_same_books(&buf, &out, &format!("one core, {workers} workers"));
        let threads = &out.report.threads;
        assert_eq!(threads.len(), 1, "{threads:?}");
        assert_eq!(threads[0].core, Some(first));
        assert_eq!(
            threads[0].name.matches('+').count(),
            workers + 1,
            "reader, workers and output share the thread: {}",
            threads[0].name
        );
    }
}
