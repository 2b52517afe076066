//! `tickwatch bench`: whole-file decode and book throughput, per-message latency.

use super::args::BenchArgs;
use super::files::open_feed;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::io;
use std::time::Instant;
use tickwatch::bench;
use tickwatch::feed::mmap::evict_page_cache;
use tickwatch::feed::{gz, Frame, Frames, MapOptions};
use tickwatch::filebench::{self, FileBenchOptions, KernelResult};
use tickwatch::inspect::InspectError;
use tickwatch::itch::{decode, DecodeErrorKind};
use tickwatch::policy::threads_or_all;

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
        let map = open_feed(&a.input, lazy)?;
        if a.input.lenient
            && lenient_copy(map.bytes())
                .map_err(|e| map.explain(e))?
                .is_some()
        {
            bail!("--cold times the file as it is, and it holds messages of a wrong length: drop --cold, or --lenient");
        }
        let w = bench::decode_fold(map.bytes()).map_err(|e| map.explain(e))?;
        let dt = t0.elapsed().as_nanos() as f64;
        let what = match map.capture() {
            Some(_) => "decode (cold: evicted, lazy map, capture extracted)",
            None => "decode (cold: evicted, lazy map)",
        };
        cold = Some(KernelResult::single(what, w.messages, dt));
    }
    let opts = MapOptions {
        populate: !a.no_populate,
        sequential: true,
        huge_pages: a.huge_pages,
    };
    let map = open_feed(&a.input, opts)?;
    if map.bytes().is_empty() {
        bail!("{}: empty file", path.display());
    }
    // The kernels stop at the first message of a wrong length: with --lenient they time a copy
    // of the feed without those.
    let copy = match a.input.lenient {
        true => lenient_copy(map.bytes()).map_err(|e| map.explain(e))?,
        false => None,
    };
    if a.input.lenient {
        let n = copy.as_ref().map_or(0, |c| c.1);
        eprintln!("--lenient: {n} messages of a known type and a wrong length skipped (the kernels time a copy of the feed without them)");
    }
    let feed = copy.as_ref().map_or(map.bytes(), |c| &c.0[..]);
    let mut rep = filebench::run(
        feed,
        FileBenchOptions {
            repeat: a.repeat,
            threads: threads_or_all(a.threads),
            books: a.caps.config(),
            latency_sample_every: a.latency_sample,
        },
    )
    .map_err(|e| map.explain(e))?;
    rep.kernels.splice(0..0, cold);
    if a.json {
        #[derive(Serialize)]
        struct Out<'a> {
            file: String,
            populate: bool,
            huge_pages: bool,
            #[serde(flatten)]
            report: &'a filebench::FileBenchReport,
        }
        let o = Out {
            file: path.display().to_string(),
            populate: opts.populate,
            huge_pages: opts.huge_pages,
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
    println!(
        "{:<40} {:>12} {:>10} {:>10} {:>9}",
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
            "{:<40} {:>12.1} {:>10.2} {:>10.2} {:>8.2}x",
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
