//! `tickwatch bench`: whole-file decode and book throughput, per-message latency.

use super::args::BenchArgs;
use super::feed::{warn_gaps, Feed, StreamFeed};
use super::files::open_feed_streamed;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::io;
use std::time::Instant;
use tickwatch::bench::{self, Walked};
use tickwatch::capture::extract;
use tickwatch::feed::mmap::evict_page_cache;
use tickwatch::feed::{gz, Frame, Frames, MapOptions};
use tickwatch::filebench::{self, FileBenchError, FileBenchOptions, FileBenchReport, KernelResult};
use tickwatch::inspect::InspectError;
use tickwatch::itch::{decode, DecodeErrorKind};
use tickwatch::policy::threads_or_all;

/// What a capture's kernels measure, said beside them.
const CAPTURE_KERNELS: &str = "\"capture in place\" kernels read the mapped capture as run does (records, link/IPv4/UDP headers, MoldUDP64 arbitration, then the messages); \"(extracted image)\" kernels read its messages copied first (untimed) into a BinaryFILE image in memory, for comparison with a BinaryFILE";

pub fn cmd_bench(a: BenchArgs) -> Result<()> {
    let path = gz::resolve(&a.input.file, a.input.cache.as_deref())?;
    let mut cold = None;
    if a.cold {
        evict_page_cache(&path)
            .with_context(|| format!("evicting {} from the page cache", path.display()))?;
        let t0 = Instant::now();
        let lazy = MapOptions {
            populate: false,
            sequential: true,
            huge_pages: false,
        };
        let map = open_feed_streamed(&a.input, lazy)?;
        let (what, w) = match map.stream() {
            Some(c) => (
                "decode (cold: evicted, lazy map, capture read in place)",
                cold_capture(&a, &map, c)?,
            ),
            None => ("decode (cold: evicted, lazy map)", cold_binary(&a, &map)?),
        };
        let dt = t0.elapsed().as_nanos() as f64;
        cold = Some(KernelResult::single(what, w.messages, dt));
    }
    let opts = MapOptions {
        populate: !a.no_populate,
        sequential: true,
        huge_pages: a.huge_pages,
    };
    let map = open_feed_streamed(&a.input, opts)?;
    let fo = FileBenchOptions {
        repeat: a.repeat,
        threads: threads_or_all(a.threads),
        books: a.caps.config(),
        latency_sample_every: a.latency_sample,
    };
    let (mut rep, in_place) = match map.stream() {
        Some(c) => capture_bench(&a, &map, c, fo)?,
        None => {
            let rep = binary_bench(&a, map.bytes(), fo, |e| map.explain(e))?;
            (rep, Vec::new())
        }
    };
    rep.kernels.splice(0..0, cold.into_iter().chain(in_place));
    let measured = map.stream().map(|_| CAPTURE_KERNELS);
    if a.json {
        #[derive(Serialize)]
        struct Out<'a> {
            file: String,
            populate: bool,
            huge_pages: bool,
            /// A capture's kernels: what they measure.
            #[serde(skip_serializing_if = "Option::is_none")]
            capture: Option<&'a str>,
            #[serde(flatten)]
            report: &'a filebench::FileBenchReport,
        }
        let o = Out {
            file: path.display().to_string(),
            populate: opts.populate,
            huge_pages: opts.huge_pages,
            capture: measured,
            report: &rep,
        };
        serde_json::to_writer_pretty(io::stdout().lock(), &o)?;
        println!();
        return Ok(());
    }
    println!(
        "file {} ({} bytes, {} messages); map: populate={} huge_pages={}; median of {} runs",
        path.display(),
        rep.bytes,
        rep.messages,
        opts.populate,
        opts.huge_pages,
        a.repeat
    );
    if let Some(m) = measured {
        println!("capture: {m}");
    }
    // The kernel column as wide as its longest name (a capture's are longer).
    let width = rep
        .kernels
        .iter()
        .map(|k| k.kernel.len())
        .max()
        .unwrap_or(0)
        .max(40);
    println!(
        "{:<width$} {:>12} {:>10} {:>10} {:>9}",
        "kernel", "M msg/s", "ns/msg", "best", "vs naive"
    );
    let naive = rep
        .kernels
        .iter()
        .find(|r| r.kernel.starts_with("naive"))
        .map(|r| r.median_ns_per_msg)
        .unwrap_or(1.0);
    for r in &rep.kernels {
        println!(
            "{:<width$} {:>12.1} {:>10.2} {:>10.2} {:>8.2}x",
            r.kernel,
            r.median_msgs_per_s / 1e6,
            r.median_ns_per_msg,
            r.min_ns_per_msg,
            naive / r.median_ns_per_msg
        );
    }
    let l = rep.book_latency_ns;
    println!(
        "decode + book update per message (ns; {} samples, 1 in {}; TSC at {:.3} GHz): p50 {:.0}  p90 {:.0}  p99 {:.0}  p99.9 {:.0}  p99.99 {:.0}  max {:.0}  (timer pair alone: p50 {:.0})",
        l.samples, l.sample_every, l.tsc_ghz, l.p50, l.p90, l.p99, l.p999, l.p9999, l.max, l.timer_overhead_p50
    );
    let st = rep.book_stats;
    println!(
        "book: {} live orders at end; skips {} (unknown refs {})",
        rep.live_orders_at_end,
        st.skipped(),
        st.unknown_refs
    );
    Ok(())
}

/// The whole-file kernels over the BinaryFILE `bytes`, errors explained by `explain`.
fn binary_bench(
    a: &BenchArgs,
    bytes: &[u8],
    fo: FileBenchOptions,
    explain: impl Fn(FileBenchError) -> anyhow::Error,
) -> Result<FileBenchReport> {
    if bytes.is_empty() {
        bail!("{}: empty file", a.input.file.display());
    }
    // The kernels stop at the first message of a wrong length: with --lenient they time a copy
    // of the feed without those.
    let copy = match a.input.lenient {
        true => lenient_copy(bytes).map_err(|e| explain(e.into()))?,
        false => None,
    };
    if a.input.lenient {
        let n = copy.as_ref().map_or(0, |c| c.1);
        eprintln!("--lenient: {n} messages of a known type and a wrong length skipped (the kernels time a copy of the feed without them)");
    }
    let feed = copy.as_ref().map_or(bytes, |c| &c.0[..]);
    filebench::run(feed, fo).map_err(explain)
}

/// A capture's kernels: those that read it in place, then the whole-file kernels over its
/// messages extracted into an image (which they need: the parallel decode and the look-ahead
/// read it at random), labelled so.
fn capture_bench(
    a: &BenchArgs,
    feed: &Feed,
    c: &StreamFeed,
    fo: FileBenchOptions,
) -> Result<(FileBenchReport, Vec<KernelResult>)> {
    let x = extract(c.map.bytes(), &c.opts).with_context(|| feed.name.display().to_string())?;
    warn_gaps(&feed.name, &x.report, &x.lost);
    let in_place = filebench::capture_kernels(c.map.bytes(), &x.options, a.input.lenient, fo)
        .map_err(|e| explain_bench(feed, e))?;
    let mut rep = binary_bench(a, &x.image, fo, |e| {
        let place = match &e {
            FileBenchError::Feed(ie) => ie.offset().and_then(|o| x.place(o)).zip(Some(*ie)),
            _ => None,
        };
        match place {
            Some((p, ie)) => feed.explain_at(&ie, p),
            None => explain_bench(feed, e),
        }
    })?;
    for k in &mut rep.kernels {
        k.kernel.push_str(" (extracted image)");
    }
    Ok((rep, in_place))
}

/// The cold decode of a capture, in place; with --lenient, refused if it holds messages of a
/// wrong length (as for a BinaryFILE).
fn cold_capture(a: &BenchArgs, feed: &Feed, c: &StreamFeed) -> Result<Walked> {
    let w = filebench::capture_fold(c.map.bytes(), &c.opts, false);
    match w {
        // Any message that stops a strict decode is one --lenient skips.
        Err(FileBenchError::Placed { .. }) if a.input.lenient => {
            bail!("--cold times the file as it is, and it holds messages of a wrong length: drop --cold, or --lenient")
        }
        w => w.map_err(|e| explain_bench(feed, e)),
    }
}

/// The cold decode of a BinaryFILE.
fn cold_binary(a: &BenchArgs, map: &Feed) -> Result<Walked> {
    if a.input.lenient
        && lenient_copy(map.bytes())
            .map_err(|e| map.explain(e))?
            .is_some()
    {
        bail!("--cold times the file as it is, and it holds messages of a wrong length: drop --cold, or --lenient");
    }
    bench::decode_fold(map.bytes()).map_err(|e| map.explain(e))
}

/// A capture kernel's error in the capture's terms.
fn explain_bench(feed: &Feed, e: FileBenchError) -> anyhow::Error {
    match e {
        FileBenchError::Placed { error, place } => feed.explain_at(&error, place),
        FileBenchError::Capture(e) => {
            anyhow::Error::from(e).context(feed.name.display().to_string())
        }
        e => feed.explain(e),
    }
}

/// The feed without its messages of a known type and a wrong length (or empty), and how many
/// were dropped; `None` when it holds none.
///
/// # Errors
/// The first framing error, with its offset.
fn lenient_copy(feed: &[u8]) -> Result<Option<(Vec<u8>, u64)>, InspectError> {
    let bad = |f: &Frame<'_>| match decode(f.body, f.offset) {
        Err(e) => !matches!(e.kind, DecodeErrorKind::UnknownType(_)),
        Ok(_) => false,
    };
    let mut dropped = 0u64;
    for f in Frames::new(feed) {
        dropped += bad(&f?) as u64;
    }
    if dropped == 0 {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(feed.len());
    for f in Frames::new(feed).flatten().filter(|f| !bad(f)) {
        let start = f.offset as usize;
        out.extend_from_slice(&feed[start..start + 2 + f.body.len()]);
    }
    Ok(Some((out, dropped)))
}
