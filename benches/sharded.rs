//! A keyed `stream::Job` single-threaded against the same job sharded over the pinned engine
//! (`stream::Sharded`, 2 workers): what sharding costs or gains per window kind, and what the
//! session windows' mark at every rising watermark costs against tumbling windows' marks at
//! window ends.
//!
//! **Input.** [`RECORDS`] = 1,000,000 `(ts, key, value)` records (20,000 under
//! `cargo test --benches`) over [`KEYS`] = 10,000 keys, ≈ 1 µs apart with up to 2 µs of jitter
//! (so out of order by up to 2 µs), keys uniform from a [`SplitMix64`]. Every job sums the
//! values per key: `global` emits on every record, `tumbling_1ms` and `session_5ms` emit on
//! close (2 µs out-of-orderness). A key's records come ≈ 10 ms apart, so 5 ms sessions close
//! all the time (about one per µs): the case where an operator that scans its open keys on
//! every close spends O(keys) per record. Ids: `<window>/single` runs `Job::push` in a loop on this
//! thread; `<window>/sharded_2w` runs the whole engine (reader, 2 workers, output; threads
//! started and joined inside the timing), the changelog counted by the sink.

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;
use tickwatch::engine::{self, Config, Control, WaitStrategy};
use tickwatch::rng::SplitMix64;
use tickwatch::stream::{BuildError, Job, RecordSource, ShardJob, Sharded, Span, Window};

const RECORDS: u64 = 1_000_000;
const TEST_RECORDS: u64 = 20_000;
const KEYS: u64 = 10_000;

type Rec = [u64; 3];

fn records() -> Vec<Rec> {
    let n = match std::env::args().any(|a| a == "--bench") {
        true => RECORDS,
        false => TEST_RECORDS,
    };
    let mut rng = SplitMix64::new(5);
    (0..n)
        .map(|i| {
            [
                1_000_000 + i * 1_000 + rng.below(2_000),
                rng.below(KEYS),
                i % 97,
            ]
        })
        .collect()
}

fn build(window: Window) -> Result<impl ShardJob<Rec, Value = u64>, BuildError> {
    let b = Job::keyed(|r: &Rec| r[1])
        .event_time(|r| r[0])
        .window(window)
        .out_of_orderness(2_000)
        .aggregate(|| 0u64, |acc: &mut u64, r: &Rec| *acc += r[2])
        .merge(|a, b| *a += *b)
        .capacity(KEYS as usize * 2);
    match window {
        Window::Global => b.on_update().build(),
        _ => b.on_close().build(),
    }
}

fn single(records: &[Rec], window: Window) -> u64 {
    let mut job = build(window).unwrap();
    let mut n = 0u64;
    for r in records {
        job.push(r, |_, _, _, v| n = n.wrapping_add(*v));
    }
    job.finish(|_, _, _, v| n = n.wrapping_add(*v));
    n
}

fn sharded(records: &[Rec], window: Window, workers: usize) -> u64 {
    let cfg = Config {
        workers,
        wait: WaitStrategy::SpinYield,
        ..Config::default()
    };
    let src = RecordSource::new(records, |r: &Rec| r[1], |r: &Rec| r[0]);
    let mut n = 0u64;
    let job = Sharded::new(
        move || build(window),
        |_, _: Span, v: &u64| n = n.wrapping_add(*v),
    );
    let (stop, progress) = (AtomicBool::new(false), AtomicU64::new(0));
    let ctl = Control {
        stop: &stop,
        progress: &progress,
    };
    let done = engine::run_job(src, job, &cfg, ctl).unwrap();
    assert!(done.error.is_none());
    drop(done);
    n
}

fn bench(c: &mut Criterion) {
    let records = records();
    let windows = [
        ("global", Window::Global),
        ("tumbling_1ms", Window::Tumbling(1_000_000)),
        ("session_5ms", Window::Session { gap: 5_000_000 }),
    ];
    for (name, window) in windows {
        // Both sum the same values: nothing is skipped.
        assert_eq!(single(&records, window), sharded(&records, window, 2));
        let mut g = c.benchmark_group(format!("sharded_job/{name}"));
        g.sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .measurement_time(Duration::from_secs(5))
            .throughput(Throughput::Elements(records.len() as u64));
        g.bench_function("single", |b| b.iter(|| single(&records, window)));
        g.bench_function("sharded_2w", |b| b.iter(|| sharded(&records, window, 2)));
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
