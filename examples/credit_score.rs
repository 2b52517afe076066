//! A running credit score per account — `sum(balance) / 1000`, updated on every record — over a
//! memory-mapped file of fixed-layout records, declared with `tickwatch::stream`; then the same
//! job on the pinned engine (reader → N shard workers → output), its changelog checked equal to
//! the single-threaded one for every worker count; then the same records in per-account
//! 1-second tumbling windows, emitted on close.
//!
//! The stream is generated (200,000 transactions over 2,000 accounts, 10 seconds of event time,
//! up to 2 ms out of order), written as raw `#[repr(C)]` records to a temporary file and mapped;
//! the jobs read the records in place. Both results are checked against a brute-force
//! `HashMap`.
//!
//! `cargo run --example credit_score`

use std::collections::HashMap;
use std::error::Error;
use std::io::Write;
use std::time::Instant;

use std::sync::atomic::{AtomicBool, AtomicU64};
use tickwatch::engine::{self, Config, Control};
use tickwatch::feed::{MapOptions, MappedFile};
use tickwatch::rng::SplitMix64;
use tickwatch::stream::{Job, RecordSource, Sharded, Span, Window};

/// One transaction, as laid out in the file.
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Txn {
    /// Event time, ns.
    ts_ns: u64,
    account: u64,
    /// Balance change in thousandths.
    balance: i64,
}

const RECORDS: u64 = 200_000;
const ACCOUNTS: u64 = 2_000;
const SPAN_NS: u64 = 10_000_000_000;
const JITTER_NS: u64 = 2_000_000;
const SECOND: u64 = 1_000_000_000;

fn generate(seed: u64) -> Vec<Txn> {
    let mut rng = SplitMix64::new(seed);
    (0..RECORDS)
        .map(|i| Txn {
            ts_ns: i * (SPAN_NS / RECORDS) + rng.below(JITTER_NS),
            account: 100_000 + rng.below(ACCOUNTS) * 37,
            balance: rng.below(200_000) as i64 - 50_000,
        })
        .collect()
}

fn main() -> Result<(), Box<dyn Error>> {
    // Write the records to a file and map it: the jobs read them where they lie.
    let mut file = tempfile::NamedTempFile::new()?;
    file.write_all(bytemuck::cast_slice(&generate(7)))?;
    file.flush()?;
    let map = MappedFile::open(file.path(), MapOptions::default())?;
    let txns: &[Txn] = bytemuck::try_cast_slice(map.bytes())
        .map_err(|e| format!("not a whole number of aligned records: {e:?}"))?;
    println!(
        "{} records ({} bytes, {} per record) mapped from {}",
        txns.len(),
        map.bytes().len(),
        std::mem::size_of::<Txn>(),
        file.path().display()
    );

    // Job 1: the running credit score per account, updated on every record.
    let t0 = Instant::now();
    let mut scores = Job::keyed(|t: &Txn| t.account)
        .event_time(|t| t.ts_ns)
        .window(Window::Global)
        .aggregate(|| 0i64, |acc: &mut i64, t: &Txn| *acc += t.balance)
        .on_update()
        .capacity(1 << 12)
        .build()?;
    let (mut updates, mut last) = (0u64, (0u64, 0.0f64));
    let mut changelog = Vec::with_capacity(txns.len());
    for t in txns {
        scores.push(t, |account, _, acc| {
            updates += 1;
            last = (account, *acc as f64 / 1000.0);
            changelog.push((account, *acc));
        });
    }
    scores.finish(|_, _, _| {});
    let elapsed = t0.elapsed();
    println!("\njob 1: credit score = sum(balance) / 1000 per account, on every record");
    println!(
        "  {updates} updates in {elapsed:.1?}; the last: account {} score {:.3}",
        last.0, last.1
    );
    let mut top: Vec<(u64, i64)> = scores.running().map(|(k, v)| (k, *v)).collect();
    top.sort_unstable_by_key(|&(account, sum)| (std::cmp::Reverse(sum), account));
    println!("  top 5:");
    for (account, sum) in &top[..5] {
        println!("    account {account}  score {:10.3}", *sum as f64 / 1000.0);
    }
    println!("  stats: {}", scores.stats());

    let mut want: HashMap<u64, i64> = HashMap::new();
    for t in txns {
        *want.entry(t.account).or_default() += t.balance;
    }
    let got: HashMap<u64, i64> = top.iter().copied().collect();
    assert_eq!(got, want, "running scores differ from brute force");
    assert_eq!(updates, txns.len() as u64);
    assert_eq!(scores.stats().lost(), 0);
    println!(
        "  verified: {} accounts equal the brute-force sums",
        want.len()
    );

    pinned(map.bytes(), file.path(), &changelog)?;

    // Job 2: per-account 1-second tumbling windows (sum and count), emitted on close.
    let t0 = Instant::now();
    let mut windows = Job::keyed(|t: &Txn| t.account)
        .event_time(|t| t.ts_ns)
        .window(Window::Tumbling(SECOND))
        .aggregate(
            || (0i64, 0u32),
            |acc: &mut (i64, u32), t: &Txn| *acc = (acc.0 + t.balance, acc.1 + 1),
        )
        .merge(|a, b| *a = (a.0 + b.0, a.1 + b.1))
        .on_close()
        .out_of_orderness(JITTER_NS)
        .capacity(1 << 12)
        .build()?;
    let mut fired = Vec::with_capacity(32_000);
    for t in txns {
        windows.push(t, |account, span, acc| {
            fired.push((account, span.start, span.end, *acc))
        });
    }
    windows.finish(|account, span, acc| fired.push((account, span.start, span.end, *acc)));
    let elapsed = t0.elapsed();
    println!("\njob 2: 1-second tumbling windows per account (sum, count), on close");
    println!(
        "  {} windows fired in {elapsed:.1?}; the first 3:",
        fired.len()
    );
    for (account, start, end, (sum, n)) in &fired[..3] {
        println!(
            "    account {account} [{:.0} s, {:.0} s): {n} txns, sum {:.3}",
            *start as f64 / 1e9,
            *end as f64 / 1e9,
            *sum as f64 / 1000.0
        );
    }
    println!("  stats: {}", windows.stats());

    let mut want: HashMap<(u64, u64), (i64, u32)> = HashMap::new();
    for t in txns {
        let w = want.entry((t.account, t.ts_ns / SECOND)).or_default();
        *w = (w.0 + t.balance, w.1 + 1);
    }
    let got: HashMap<(u64, u64), (i64, u32)> = fired
        .iter()
        .map(|&(account, start, end, acc)| {
            assert_eq!(end - start, SECOND);
            ((account, start / SECOND), acc)
        })
        .collect();
    assert_eq!(got.len(), fired.len(), "a window fired twice");
    assert_eq!(got, want, "window results differ from brute force");
    assert_eq!(windows.stats().lost(), 0);
    println!(
        "  verified: {} windows equal the brute-force sums",
        want.len()
    );
    Ok(())
}

/// Job 1 again on the pinned engine: records routed by account to N shard workers, each
/// running its own job, the results merged back in feed order; equal to `want` for every N.
fn pinned(bytes: &[u8], path: &std::path::Path, want: &[(u64, i64)]) -> Result<(), Box<dyn Error>> {
    println!("\njob 1 on the pinned engine (reader → N workers → output)");
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    for workers in 1..=cores.max(3) {
        let source = RecordSource::from_bytes(bytes, path, |t: &Txn| t.account, |t: &Txn| t.ts_ns)?;
        let mut got = Vec::with_capacity(want.len());
        let job = Sharded::new(
            || {
                Job::keyed(|t: &Txn| t.account)
                    .event_time(|t| t.ts_ns)
                    .window(Window::Global)
                    .aggregate(|| 0i64, |acc: &mut i64, t: &Txn| *acc += t.balance)
                    .on_update()
                    .capacity(1 << 12)
                    .build()
            },
            |account, _: Span, acc: &i64| got.push((account, *acc)),
        );
        let (stop, progress) = (AtomicBool::new(false), AtomicU64::new(0));
        let ctl = Control {
            stop: &stop,
            progress: &progress,
        };
        let cfg = Config {
            workers,
            ..Config::default()
        };
        let done = engine::run_job(source, job, &cfg, ctl)?;
        let r = &done.report;
        println!(
            "  {workers} workers: {} records in {:.1} ms ({:.1} M records/s), end to end p50 {} ns p99 {} ns",
            r.messages,
            r.elapsed_ns as f64 / 1e6,
            r.messages_per_s / 1e6,
            r.latency.last().map_or(0, |l| l.percentiles.p50),
            r.latency.last().map_or(0, |l| l.percentiles.p99),
        );
        drop(done);
        assert!(
            got == want,
            "{workers} workers: the changelog differs from the single-threaded one"
        );
    }
    println!("  verified: the changelog equals the single-threaded job's for every worker count");
    Ok(())
}
