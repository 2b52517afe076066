//! A keyed `stream::Job` on the pinned engine: from fixed-layout records or CSV rows, sharded
//! over 1–4 workers, its changelog equals the single-threaded job's, result for result; jobs
//! whose output would depend on the worker count are refused; bad record files are named.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};

use tickwatch::engine::{self, Config, Control, WaitStrategy};
use tickwatch::stream::{CsvSource, Job, RecordError, RecordSource, Sharded, Span, Window};

#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Txn {
    ts_ns: u64,
    account: u64,
    balance: i64,
}

/// `n` transactions over `accounts` accounts (a small LCG: the test needs no crate of ours).
fn txns(n: u64, accounts: u64, seed: u64) -> Vec<Txn> {
    let mut x = seed | 1;
    let mut next = move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        x >> 33
    };
    (0..n)
        .map(|i| Txn {
            ts_ns: i * 1_000 + next() % 500,
            account: 100_000 + next() % accounts * 37,
            balance: (next() % 200_000) as i64 - 50_000,
        })
        .collect()
}

type Changelog = Vec<(u64, Span, i64)>;

fn score_job(
    emit_on_close: bool,
) -> Result<impl tickwatch::stream::ShardJob<Txn, Value = i64>, tickwatch::stream::BuildError> {
    let b = Job::keyed(|t: &Txn| t.account)
        .event_time(|t| t.ts_ns)
        .window(Window::Global)
        .aggregate(|| 0i64, |acc: &mut i64, t: &Txn| *acc += t.balance)
        .capacity(1 << 12);
    if emit_on_close {
        b.on_close().build()
    } else {
        b.on_update().build()
    }
}

fn single(records: &[Txn], on_close: bool) -> Changelog {
    let mut job = Job::keyed(|t: &Txn| t.account)
        .event_time(|t| t.ts_ns)
        .window(Window::Global)
        .aggregate(|| 0i64, |acc: &mut i64, t: &Txn| *acc += t.balance)
        .capacity(1 << 12);
    job = if on_close {
        job.on_close()
    } else {
        job.on_update()
    };
    let mut job = job.build().unwrap();
    let mut out = Vec::new();
    for t in records {
        job.push(t, |k, s, v| out.push((k, s, *v)));
    }
    job.finish(|k, s, v| out.push((k, s, *v)));
    out
}

fn cfg(workers: usize) -> Config {
    with_wait(workers, WaitStrategy::SpinYield)
}

fn with_wait(workers: usize, wait: WaitStrategy) -> Config {
    Config {
        workers,
        wait,
        ring_capacity: 256,
        ..Config::default()
    }
}

fn ctl_run<S>(source: S, workers: usize, on_close: bool) -> Changelog
where
    S: engine::Source<Event = engine::Record<Txn>>,
{
    run_with(source, cfg(workers), on_close)
}

fn run_with<S>(source: S, cfg: Config, on_close: bool) -> Changelog
where
    S: engine::Source<Event = engine::Record<Txn>>,
{
    let (stop, progress) = (AtomicBool::new(false), AtomicU64::new(0));
    let ctl = Control {
        stop: &stop,
        progress: &progress,
    };
    let mut out = Vec::new();
    let job = Sharded::new(
        move || score_job(on_close),
        |k, s: Span, v: &i64| out.push((k, s, *v)),
    );
    let done = engine::run_job(source, job, &cfg, ctl).unwrap();
    assert!(done.error.is_none());
    assert_eq!(done.report.order_violations, 0);
    let lost: u64 = done.ops.iter().map(|o| o.lost).sum();
    assert_eq!(lost, 0);
    drop(done);
    out
}

#[test]
fn the_sharded_credit_score_equals_the_single_threaded_one_for_any_worker_count() {
    let records = txns(50_000, 700, 3);
    for on_close in [false, true] {
        let want = single(&records, on_close);
        assert!(want.len() >= 700);
        let waits = [
            WaitStrategy::BusySpin,
            WaitStrategy::SpinYield,
            WaitStrategy::Park,
        ];
        for (workers, wait) in (1..=4).flat_map(|w| waits.map(|s| (w, s))) {
            let src = RecordSource::new(&records, |t: &Txn| t.account, |t: &Txn| t.ts_ns);
            let got = run_with(src, with_wait(workers, wait), on_close);
            assert!(
                got == want,
                "on_close {on_close}, {workers} workers: {} vs {} results",
                got.len(),
                want.len()
            );
        }
    }
}

#[test]
fn csv_rows_give_the_same_changelog_as_binary_records() {
    let records = txns(5_000, 90, 8);
    let mut text = String::from("ts_ns,account,balance\n");
    for t in &records {
        text += &format!("{},{},{}\n", t.ts_ns, t.account, t.balance);
    }
    let want = single(&records, false);
    let parse = |r: &csv::ByteRecord| -> Result<Txn, String> {
        let field = |i: usize| -> Result<&str, String> {
            std::str::from_utf8(r.get(i).ok_or(format!("no field {i}"))?).map_err(|e| e.to_string())
        };
        Ok(Txn {
            ts_ns: field(0)?.parse().map_err(|e| format!("ts_ns: {e}"))?,
            account: field(1)?.parse().map_err(|e| format!("account: {e}"))?,
            balance: field(2)?.parse().map_err(|e| format!("balance: {e}"))?,
        })
    };
    for workers in [1, 3] {
        let src = CsvSource::new(
            text.as_bytes(),
            Path::new("txns.csv"),
            true,
            |t: &Txn| t.account,
            |t: &Txn| t.ts_ns,
            parse,
        );
        assert!(ctl_run(src, workers, false) == want, "{workers} workers");
    }
    // A bad row stops the run with the file, line and byte offset.
    let bad = "ts_ns,account,balance\n1,2,3\n4,five,6\n";
    let src = CsvSource::new(
        bad.as_bytes(),
        Path::new("bad.csv"),
        true,
        |t: &Txn| t.account,
        |t: &Txn| t.ts_ns,
        parse,
    );
    let (stop, progress) = (AtomicBool::new(false), AtomicU64::new(0));
    let ctl = Control {
        stop: &stop,
        progress: &progress,
    };
    let job = Sharded::new(|| score_job(false), |_, _: Span, _: &i64| {});
    let done = engine::run_job(src, job, &cfg(2), ctl).unwrap();
    let err = done.error.expect("the bad row ends the feed").to_string();
    assert!(
        err.contains("bad.csv: line 3, byte offset 28") && err.contains("account"),
        "{err}"
    );
}

#[test]
fn partial_record_files_are_named() {
    let records = txns(10, 5, 1);
    let bytes: &[u8] = bytemuck::cast_slice(&records);
    let cut = &bytes[..bytes.len() - 5];
    let err = RecordSource::from_bytes(
        cut,
        Path::new("t.bin"),
        |t: &Txn| t.account,
        |t: &Txn| t.ts_ns,
    )
    .unwrap_err();
    assert!(
        matches!(err, RecordError::Partial { offset: 216, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("t.bin") && err.to_string().contains("216"),
        "{err}"
    );
}
