//! `tickwatch bench`: timing the [`bench`](mod@crate::bench) kernels over one whole file.
//!
//! Each kernel runs `repeat` times and reports its median and best ns/message. Every decode run
//! is checked against a reference checksum (a parallel decode that disagreed with the serial one
//! would be a bug, not a speed-up). The book kernels reuse one preallocated [`Books`], cleared
//! between runs outside the timed region, so page faults of fresh tables are not timed. The
//! per-message latency of decode + book comes from the TSC, into a bounded HdrHistogram, with the
//! timer's own cost measured and reported beside it.

use crate::bench::{self, Walked};
use crate::book::{BookConfig, BookStats, Books};
use crate::capture::{read_messages, ExtractError, ExtractOptions, Nothing, Place, Replaying};
use crate::inspect::InspectError;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::time::Instant;
use thiserror::Error;

/// What to run.
#[derive(Clone, Copy, Debug)]
pub struct FileBenchOptions {
    /// Timed repetitions of each decode kernel (book kernels: at most 3).
    pub repeat: usize,
    /// Threads for the parallel decode.
    pub threads: usize,
    /// Capacities of the books.
    pub books: BookConfig,
    /// Time every this-many-th message for the latency percentiles (1 = every message).
    pub latency_sample_every: u64,
}

/// Why a benchmark run failed.
#[derive(Debug, Error)]
pub enum FileBenchError {
    /// The file cannot be decoded (framing or decode error with its offset).
    #[error(transparent)]
    Feed(#[from] InspectError),
    /// Two runs that must agree did not: a bug, reported rather than timed.
    #[error("{0}")]
    Mismatch(&'static str),
    /// The latency histogram could not be created.
    #[error("histogram: {0}")]
    Histogram(#[from] hdrhistogram::CreationError),
    /// The capture is malformed (the error names the byte offset).
    #[error(transparent)]
    Capture(#[from] ExtractError),
    /// A capture's message does not decode.
    #[error("{error}")]
    Placed {
        /// The error (its offset: the message's in a BinaryFILE of the capture's messages).
        error: InspectError,
        /// The message's packet and index in it.
        place: Place,
    },
}

/// One kernel's timings.
#[derive(Clone, Debug, Serialize)]
pub struct KernelResult {
    /// What was timed.
    pub kernel: String,
    /// Messages per run.
    pub messages: u64,
    /// Median ns per message.
    pub median_ns_per_msg: f64,
    /// Best ns per message.
    pub min_ns_per_msg: f64,
    /// Messages per second at the median.
    pub median_msgs_per_s: f64,
}

impl KernelResult {
    fn from_samples(kernel: &str, messages: u64, mut ns_per_msg: Vec<f64>) -> KernelResult {
        ns_per_msg.sort_by(|a, b| a.total_cmp(b));
        let med = ns_per_msg[ns_per_msg.len() / 2];
        KernelResult {
            kernel: kernel.into(),
            messages,
            median_ns_per_msg: med,
            min_ns_per_msg: ns_per_msg[0],
            median_msgs_per_s: 1e9 / med,
        }
    }

    /// A single timed run (the cold-cache decode).
    pub fn single(kernel: &str, messages: u64, elapsed_ns: f64) -> KernelResult {
        Self::from_samples(kernel, messages, vec![elapsed_ns / messages.max(1) as f64])
    }
}

/// Per-message decode + book latency percentiles, in nanoseconds.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct LatencyNs {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// 99.99th percentile.
    pub p9999: f64,
    /// Largest sample.
    pub max: f64,
    /// Median cost of the timer itself (two back-to-back TSC reads).
    pub timer_overhead_p50: f64,
    /// TSC ticks per nanosecond used for the conversion.
    pub tsc_ghz: f64,
    /// One message in this many was timed.
    pub sample_every: u64,
    /// Messages timed.
    pub samples: u64,
}

/// Everything one `tickwatch bench` run measured.
#[derive(Clone, Debug, Serialize)]
pub struct FileBenchReport {
    /// Bytes in the file.
    pub bytes: usize,
    /// Messages decoded.
    pub messages: u64,
    /// Threads of the parallel decode.
    pub threads: usize,
    /// Timings, in the order run.
    pub kernels: Vec<KernelResult>,
    /// Decode + book latency per message.
    pub book_latency_ns: LatencyNs,
    /// The books' counters after the last run.
    pub book_stats: BookStats,
    /// Live orders at the end of the file.
    pub live_orders_at_end: usize,
}

fn time<F: FnMut() -> Result<u64, FileBenchError>>(
    name: &str,
    repeat: usize,
    mut f: F,
) -> Result<KernelResult, FileBenchError> {
    let mut samples = Vec::with_capacity(repeat.max(1));
    let mut messages = 0;
    for _ in 0..repeat.max(1) {
        let t0 = Instant::now();
        messages = f()?;
        samples.push(t0.elapsed().as_nanos() as f64 / messages.max(1) as f64);
    }
    Ok(KernelResult::from_samples(name, messages, samples))
}

/// Times every kernel over `buf` (already mapped and prepared by the caller).
///
/// # Errors
/// [`FileBenchError`]: an undecodable file, or runs that disagree.
pub fn run(buf: &[u8], opts: FileBenchOptions) -> Result<FileBenchReport, FileBenchError> {
    let reference: Walked = bench::decode_fold(buf)?; // also warms the page cache
    let check = |w: Walked, what: &'static str| {
        if w == reference {
            Ok(w.messages)
        } else {
            Err(FileBenchError::Mismatch(what))
        }
    };
    let r = opts.repeat;
    let mut kernels = vec![
        time("naive length-prefix walk", r, || {
            Ok(bench::naive_walk(buf).messages)
        })?,
        time("prefetching length-prefix walk", r, || {
            Ok(bench::prefetch_walk(buf).messages)
        })?,
        time("decode, every field folded", r, || {
            check(
                bench::decode_fold(buf)?,
                "decode checksum changed between runs",
            )
        })?,
        time("decode, every field, batched by type", r, || {
            check(
                bench::decode_fold_by_type(buf)?,
                "type-batched decode disagrees with the in-order decode",
            )
        })?,
        time(
            &format!("parallel decode, {} threads", opts.threads),
            r,
            || {
                check(
                    bench::par_decode_fold(buf, opts.threads)?,
                    "parallel decode disagrees with the serial decode",
                )
            },
        )?,
    ];
    // Allocate and fault in the tables once, untimed; clear them (untimed) before each run.
    let mut books = Books::new(opts.books);
    bench::decode_book(buf, &mut books)?;
    let book_repeat = r.clamp(1, 3);
    for (name, pipelined) in [
        ("decode + books, no look-ahead", false),
        ("decode + books, pipelined", true),
    ] {
        let mut samples = Vec::with_capacity(book_repeat);
        let mut messages = 0;
        for _ in 0..book_repeat {
            books.clear();
            let t0 = Instant::now();
            messages = if pipelined {
                bench::decode_book(buf, &mut books)?
            } else {
                bench::decode_book_unpipelined(buf, &mut books)?
            };
            samples.push(t0.elapsed().as_nanos() as f64 / messages.max(1) as f64);
        }
        kernels.push(KernelResult::from_samples(name, messages, samples));
    }

    let tpn = bench::ticks_per_ns(200);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 1 << 40, 3)?;
    books.clear();
    bench::decode_book_latency(buf, &mut books, &mut hist, opts.latency_sample_every)?;
    let mut over = Histogram::<u64>::new_with_bounds(1, 1 << 40, 3)?;
    bench::timer_overhead(&mut over, 1_000_000);
    let q = |h: &Histogram<u64>, p: f64| h.value_at_quantile(p) as f64 / tpn;
    let book_latency_ns = LatencyNs {
        p50: q(&hist, 0.5),
        p90: q(&hist, 0.9),
        p99: q(&hist, 0.99),
        p999: q(&hist, 0.999),
        p9999: q(&hist, 0.9999),
        max: hist.max() as f64 / tpn,
        timer_overhead_p50: q(&over, 0.5),
        tsc_ghz: tpn,
        sample_every: opts.latency_sample_every.max(1),
        samples: hist.len(),
    };
    Ok(FileBenchReport {
        bytes: buf.len(),
        messages: reference.messages,
        threads: opts.threads,
        kernels,
        book_latency_ns,
        book_stats: *books.stats(),
        live_orders_at_end: books.live_orders(),
    })
}

/// Times the kernels that read the capture `buf` in place, as `run` reads it: its records,
/// link, IPv4 and UDP headers, MoldUDP64 arbitration (with `opts`), then the messages (with
/// `lenient`, known types of a wrong length skipped). `reference`: the decode of the same
/// messages framed as a BinaryFILE, which the in-place decode must agree with.
///
/// # Errors
/// A malformed capture; a message that does not decode, with its place; a decode that
/// disagrees with `reference`.
pub fn capture_kernels(
    buf: &[u8],
    opts: &ExtractOptions,
    lenient: bool,
    fo: FileBenchOptions,
) -> Result<Vec<KernelResult>, FileBenchError> {
    // An untimed first read finds the A/B lines (no timed read starts over) and warms the cache.
    let options = read_messages(buf, opts, None, || Nothing)?.options;
    let r = fo.repeat;
    let mut kernels = vec![time(
        "capture in place: records + MoldUDP64, no decode",
        r,
        || {
            let w = read_messages(buf, &options, None, || Nothing)?.walked;
            Ok(w.report.sessions.iter().map(|s| s.counters.delivered).sum())
        },
    )?];
    let mut reference = None;
    kernels.push(time(
        "capture in place: decode, every field folded",
        r,
        || {
            let w = capture_fold(buf, &options, lenient)?;
            match reference.get_or_insert(w) {
                x if *x == w => Ok(w.messages),
                _ => Err(FileBenchError::Mismatch(
                    "in-place capture decode changed between runs",
                )),
            }
        },
    )?);
    let mut books = Some(Books::new(fo.books));
    let mut samples = Vec::new();
    let mut messages = 0;
    for _ in 0..r.clamp(1, 3) {
        let mut b = books.take().expect("the books come back after each run");
        b.clear();
        let t0 = Instant::now();
        let mut slot = Some(b);
        let read = read_messages(buf, &options, None, || {
            let b = slot
                .take()
                .expect("a read with the A/B lines found never starts over");
            Replaying::with_books(
                b,
                lenient,
                |b| b,
                |b, m, _| {
                    b.apply(m);
                    true
                },
            )
        })?;
        let mut sink = read.sink;
        sink.finish();
        samples.push(t0.elapsed().as_nanos() as f64);
        let rep = placed(sink)?;
        messages = rep.report.messages;
        books = Some(rep.state);
    }
    let per = |s: Vec<f64>| {
        s.into_iter()
            .map(|ns| ns / messages.max(1) as f64)
            .collect()
    };
    kernels.push(KernelResult::from_samples(
        "capture in place: decode + books, pipelined",
        messages,
        per(samples),
    ));
    Ok(kernels)
}

/// Every message of the capture decoded in place, every field folded (as [`bench::decode_fold`]
/// folds a BinaryFILE).
///
/// # Errors
/// As [`capture_kernels`].
pub fn capture_fold(
    buf: &[u8],
    opts: &ExtractOptions,
    lenient: bool,
) -> Result<Walked, FileBenchError> {
    let read = read_messages(buf, opts, None, || {
        Replaying::new(Walked::default(), lenient, |w, m, _| {
            w.messages += 1;
            w.checksum = w.checksum.wrapping_add(bench::fold(m));
            true
        })
    })?;
    Ok(placed(read.sink)?.state)
}

/// The replay, or the error that stopped it.
fn placed<T>(r: Replaying<T>) -> Result<Replaying<T>, FileBenchError> {
    match r.error {
        Some((error, place)) => Err(FileBenchError::Placed { error, place }),
        None => Ok(r),
    }
}
