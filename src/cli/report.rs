//! The text report of a pipeline run (`run`, `bars`).

use anyhow::Result;
use std::io::Write;
use std::path::Path;
use tickwatch::pipeline;

/// Writes `r`, the run of the feed at `path`, as text: throughput, threads, latency per stage,
/// rings, counters, and the bars or surveillance summary.
pub fn print_run_report(out: &mut dyn Write, path: &Path, r: &pipeline::RunReport) -> Result<()> {
    let speed = r.speed.map_or("max".to_string(), |s| format!("{s}x"));
    // After a resume the counts cover the whole run, the time only this process's part.
    let at = r.checkpoints.as_ref().and_then(|c| c.resumed_at_message);
    let read = r.messages - at.unwrap_or(0);
    writeln!(
        out,
        "{}: {} messages{} in {:.3} s = {:.2} M msg/s ({:.1} ns/msg); {} worker(s), wait {:?}, {:?}, speed {}{}",
        path.display(),
        r.messages,
        at.map_or(String::new(), |at| format!(
            " ({read} read since resuming at message {at})"
        )),
        r.elapsed_ns as f64 / 1e9,
        r.messages_per_s / 1e6,
        r.elapsed_ns as f64 / read.max(1) as f64,
        r.workers,
        r.wait,
        r.backpressure,
        speed,
        if r.interrupted { " — interrupted by Ctrl-C" } else { "" },
    )?;
    for t in &r.threads {
        let core = t
            .core
            .map_or("unpinned".to_string(), |c| format!("core {c}"));
        writeln!(
            out,
            "  thread {:<28} {:<9} idle polls {}; {}",
            t.name,
            core,
            t.idle_polls,
            hiccups(t)
        )?;
        if let Some(h) = host_share(&t.host) {
            writeln!(out, "  {:<38} {h}", "")?;
        }
    }
    tickwatch::latency::write_table(&mut &mut *out, &r.latency)?;
    if r.stage_timing && r.stage_sample > 1 {
        writeln!(
            out,
            "(stages timed on 1 event in {} by feed position; end to end on every event; --timing stages for all)",
            r.stage_sample
        )?;
    }
    writeln!(
        out,
        "{:<10} {:>9} {:>12} {:>12} {:>12} {:>10}",
        "ring", "capacity", "pushed", "popped", "full", "dropped"
    )?;
    let n = r.workers;
    for (i, c) in r.rings.iter().enumerate() {
        let name = if i < n {
            format!("in-{i}")
        } else {
            format!("out-{}", i - n)
        };
        writeln!(
            out,
            "{:<10} {:>9} {:>12} {:>12} {:>12} {:>10}",
            name, c.capacity, c.pushed, c.popped, c.full, c.dropped
        )?;
    }
    let st = &r.book_stats;
    writeln!(
        out,
        "events: offered {} = processed {} + dropped {} + marks {}; output got {}; top-of-book changes {}; order violations {}",
        r.offered, r.processed, r.dropped, r.marks, r.output_received, r.top_changes, r.order_violations
    )?;
    if let Some(b) = &r.bars {
        writeln!(
            out,
            "bars: {} rows written ({} late firings); {} watermark marks; late ledger: {} events dropped as too late (max lateness {} ns), {} refused for lack of room",
            b.rows, b.late_rows, b.marks, b.dropped_late, b.max_lateness_ns, b.overflow
        )?;
    }
    if let Some(sv) = &r.surv {
        let by: Vec<String> = sv
            .alerts
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(d, n)| format!("{d} {n}"))
            .collect();
        writeln!(
            out,
            "surveillance: {} alerts ({}); {} marks; flow records applied {}, never applied {}; overflow: alerts {}, accounts {}, risk inputs {}",
            sv.total,
            if by.is_empty() { "none".to_string() } else { by.join(", ") },
            sv.marks,
            sv.counters.flow_applied,
            sv.flow_unapplied,
            sv.alert_overflow,
            sv.counters.account_overflow,
            sv.counters.risk_overflow
        )?;
        if sv.counters.flow_applied == 0 && sv.flow_unapplied == 0 {
            writeln!(out, "{}", super::surv::NO_FLOW)?;
        }
        let pressed: Vec<String> = sv
            .tables
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(t, n)| format!("{t} {n}"))
            .collect();
        writeln!(
            out,
            "detector tables: {}",
            if pressed.is_empty() {
                "no overflow, eviction or collision (every detector saw the whole feed)".to_string()
            } else {
                pressed.join(", ")
            }
        )?;
        if sv.total > 0 {
            tickwatch::latency::write_table(&mut &mut *out, &sv.latency)?;
        }
    }
    writeln!(
        out,
        "books: {} live orders at end; skips {} (unknown refs {}{}); feed skips: {} unknown types, {} bad lengths; {} out-of-order timestamps{}",
        r.live_orders,
        st.skipped(),
        st.unknown_refs,
        if st.unknown_refs + st.duplicate_refs > 0 {
            " — orders never seen, or live in another stock: `inspect --refs` tells a mid-day start from a corrupt feed"
        } else {
            ""
        },
        r.skipped_unknown,
        r.skipped_bad_lengths,
        r.out_of_order_ts,
        if r.stopped_at_until { "; stopped at --until" } else { "" }
    )?;
    Ok(())
}

/// A thread's host hiccups: gaps of ≥ 1 µs between its idle polls (time the host took the core
/// away while the thread had nothing to do), over the idle time watched.
fn hiccups(t: &pipeline::ThreadReport) -> String {
    if t.observed_ns == 0 {
        return "host hiccups not watched between idle polls (never idle)".into();
    }
    let us = |ns: u64| ns as f64 / 1e3;
    format!(
        "host hiccups ≥ 1 µs: {} in {:.3} s idle (p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs), {} ≥ 1 ms",
        t.hiccups,
        t.observed_ns as f64 / 1e9,
        us(t.hiccup_p50_ns),
        us(t.hiccup_p99_ns),
        us(t.hiccup_max_ns),
        t.stalls
    )
}

/// What the kernel's accounts say the host took from a thread, idle or not: run-queue wait
/// (another task on its core), preemptions, and its core's stolen and interrupt time.
fn host_share(h: &tickwatch::engine::HostTime) -> Option<String> {
    let ms = |ns: Option<u64>| ns.map_or("?".into(), |n| format!("{:.3} ms", n as f64 / 1e6));
    if h.run_delay_ns.is_none() && h.preemptions.is_none() {
        return None;
    }
    let mut s = format!(
        "host took: {} waiting for the core, {} preemptions",
        ms(h.run_delay_ns),
        h.preemptions.map_or("?".into(), |n| n.to_string())
    );
    if h.steal_ns.is_some() {
        s += &format!(
            "; its core: {} stolen by the hypervisor, {} in interrupts (10 ms ticks)",
            ms(h.steal_ns),
            ms(h.irq_ns)
        );
    }
    Some(s)
}

/// Gap lines printed (the `--json` report has them all).
const GAPS_SHOWN: usize = 10;
/// Damaged stocks printed (the `--json` report has them all).
const STOCKS_SHOWN: usize = 50;

/// The unfilled gaps of a feed and what they mean for its books and alerts; `unknown_refs` is
/// the books' count of messages naming an order they did not know (all stocks).
pub fn print_book_gap(
    out: &mut dyn Write,
    g: &pipeline::gap::GapSummary,
    unknown_refs: u64,
) -> Result<()> {
    for l in g.gaps.iter().take(GAPS_SHOWN) {
        writeln!(
            out,
            "book gap: stream {} sequence {}..={} lost ({} message(s)), noticed at feed position {}",
            l.stream,
            l.first,
            l.last,
            l.last - l.first + 1,
            l.position
        )?;
    }
    if g.gaps.len() > GAPS_SHOWN {
        writeln!(out, "book gap: … {} more", g.gaps.len() - GAPS_SHOWN)?;
    }
    writeln!(
        out,
        "books after feed position {} may be inexact ({} messages lost): a lost message's stock is unknowable, so every stock's book may be wrong; alerts from that position on carry \"book_gap\": true",
        g.inexact_from, g.lost_messages
    )?;
    if !g.damaged_stocks_listed {
        writeln!(
            out,
            "stocks that showed damage after the gap: not listed (the books count messages naming an unknown order per worker, not per stock: {unknown_refs} in all)"
        )?;
        return Ok(());
    }
    let named: Vec<String> = g
        .damaged_stocks
        .iter()
        .take(STOCKS_SHOWN)
        .map(|d| format!("{} ({})", d.symbol, d.orphan_refs))
        .collect();
    let more = match g.damaged_stocks.len().saturating_sub(STOCKS_SHOWN) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    writeln!(
        out,
        "stocks that showed damage after the gap: {} (messages naming an order the books did not know): {}{more}",
        g.damaged_stocks.len(),
        match named.is_empty() {
            true => "none".to_string(),
            false => named.join(", "),
        }
    )?;
    Ok(())
}
