//! `tickwatch inspect`: a feed's messages by type, stocks, time span and skips.

use super::args::InspectArgs;
use super::files::open_feed_in_place;
use anyhow::Result;
use serde::Serialize;
use std::io::{self, Write};
use std::time::Instant;
use tickwatch::feed::MapOptions;
use tickwatch::inspect::refs::RefSummary;
use tickwatch::inspect::{inspect, InspectOptions};
use tickwatch::itch::fmt_time;
use tickwatch::policy::threads_or_all;

pub fn cmd_inspect(a: InspectArgs) -> Result<()> {
    if let Some(lines) = &a.live.lines.listen {
        return super::inspect_live::cmd_inspect_live(&a, lines);
    }
    let map = open_feed_in_place(&a.input, MapOptions::default())?;
    if let Some(c) = map.stream() {
        return super::inspect_capture::cmd_inspect_capture(&a, &map, c);
    }
    let t0 = Instant::now();
    let s = inspect(
        map.bytes(),
        InspectOptions {
            threads: threads_or_all(a.threads),
            lenient: a.input.lenient,
            refs: a.refs,
        },
    )
    .map_err(|e| map.explain(e))?;
    let secs = t0.elapsed().as_secs_f64();
    #[derive(Serialize)]
    struct Out<'a> {
        file: String,
        #[serde(flatten)]
        summary: &'a tickwatch::inspect::Summary,
        decode_seconds: f64,
        messages_per_second: f64,
    }
    let rate = s.messages as f64 / secs.max(1e-9);
    let mut out = io::stdout().lock();
    if a.json {
        let o = Out {
            file: a.input.file.display().to_string(),
            summary: &s,
            decode_seconds: secs,
            messages_per_second: rate,
        };
        serde_json::to_writer_pretty(&mut out, &o)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "file        {}", a.input.file.display())?;
    writeln!(out, "messages    {}", s.messages)?;
    writeln!(out, "bytes       {}", s.bytes)?;
    let span = match (s.first_timestamp_ns, s.last_timestamp_ns) {
        (Some(f), Some(l)) => format!("{} .. {}", fmt_time(f), fmt_time(l)),
        _ => "-".into(),
    };
    writeln!(out, "time span   {span}")?;
    writeln!(
        out,
        "stocks      {} in the directory (R){}",
        s.stocks,
        sample(&s.symbols_sample)
    )?;
    writeln!(
        out,
        "locates     {} distinct stock locates named by messages",
        s.locates_seen
    )?;
    writeln!(
        out,
        "decode      {:.3} s, {:.1} M msg/s on {} chunk(s)",
        secs,
        rate / 1e6,
        s.chunks
    )?;
    writeln!(out, "by type")?;
    for (t, n) in &s.by_type {
        writeln!(
            out,
            "  {t}  {n:>12}  {:5.1} %",
            100.0 * *n as f64 / s.messages.max(1) as f64
        )?;
    }
    let unknown: u64 = s.skipped_unknown_types.values().sum();
    writeln!(
        out,
        "skipped     {unknown} unknown-type frame(s){}; {} bad-length frame(s){}",
        s.first_unknown_offset
            .map(|o| format!(" (first at byte {o})"))
            .unwrap_or_default(),
        s.skipped_bad_lengths,
        s.first_bad_length
            .as_ref()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    )?;
    writeln!(
        out,
        "timestamps  {} regression(s){}",
        s.timestamp_regressions,
        s.first_regression_offset
            .map(|o| format!(" (first at byte {o})"))
            .unwrap_or_default()
    )?;
    match &s.references {
        Some(r) => write_refs(&mut out, r)?,
        None => writeln!(
            out,
            "references  not followed (--refs follows every order: corrupt references)"
        )?,
    }
    if s.resync_fallbacks > 0 {
        writeln!(
            out,
            "note        {} chunk boundary guess(es) failed the proof and were re-walked serially",
            s.resync_fallbacks
        )?;
    }
    Ok(())
}

/// The order-reference pass: unknown references are normal for a mid-day start; the rest
/// mean a corrupt feed.
pub(super) fn write_refs(out: &mut impl Write, r: &RefSummary) -> io::Result<()> {
    let at = |o: Option<u64>| {
        o.map(|o| format!(" (first at byte {o})"))
            .unwrap_or_default()
    };
    writeln!(
        out,
        "references  {} unknown (never live); at most {} orders live",
        r.unknown, r.peak_live
    )?;
    if r.is_corrupt() {
        writeln!(
            out,
            "corrupt     {} message(s) naming an order live in another stock{}; {} add(s) reusing a live reference ({} of another stock){} — books key orders by (reference, stock), so these are unknown references and new orders, the same for any worker count",
            r.other_stock,
            at(r.first_other_stock_offset),
            r.reused_same_stock + r.reused_other_stock,
            r.reused_other_stock,
            at(r.first_reuse_offset),
        )?;
    }
    Ok(())
}

fn sample(syms: &[String]) -> String {
    if syms.is_empty() {
        String::new()
    } else {
        format!(": {} ...", syms.join(" "))
    }
}
