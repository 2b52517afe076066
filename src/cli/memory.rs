//! Runs whose preallocated state would not fit are refused before anything is allocated: the
//! worker rings (`--workers` × `--ring-capacity`), and the bars windows and rows rings (the
//! window/slide ratio, lateness and out-of-orderness), against half of this machine's memory.

use anyhow::{anyhow, bail, Result};
use std::mem::size_of;
use std::time::Duration;
use tickwatch::agg::{Bar, BarKey};
use tickwatch::pipeline::bars::{BarRecord, BarsWorker};
use tickwatch::pipeline::event::{Done, Event};
use tickwatch::pipeline::{BarsConfig, PipelineConfig};
use tickwatch::window::TimeWindows;

const GIB: f64 = (1u64 << 30) as f64;

/// Half of this machine's physical memory (4 GiB when it cannot be read).
fn budget() -> u128 {
    // SAFETY: `sysconf` only reads system configuration.
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if pages > 0 && size > 0 {
        pages as u128 * size as u128 / 2
    } else {
        4 << 30
    }
}

/// Checks the rings, and the bars state when `bars` is the job.
pub fn check(cfg: &PipelineConfig, bars: Option<&BarsConfig>) -> Result<()> {
    check_rings(cfg)?;
    match bars {
        Some(b) => check_bars(cfg, b),
        None => Ok(()),
    }
}

/// Every worker's event ring and done ring, written through when built.
fn check_rings(cfg: &PipelineConfig) -> Result<()> {
    let slots = cfg.ring_capacity.max(2).next_power_of_two() as u128;
    let bytes =
        cfg.workers.max(1) as u128 * slots * (size_of::<Event>() + size_of::<Done>()) as u128;
    let limit = budget();
    if bytes > limit {
        bail!(
            "--workers {} with --ring-capacity {}: the rings would take {:.1} GiB, more than half this machine's memory ({:.1} GiB)",
            cfg.workers,
            cfg.ring_capacity,
            bytes as f64 / GIB,
            limit as f64 / GIB
        );
    }
    Ok(())
}

/// Every bars worker's windows (pane rings per key) and rows ring.
fn check_bars(cfg: &PipelineConfig, bars: &BarsConfig) -> Result<()> {
    let workers = cfg.workers.max(1);
    // At most: the pipeline sizes the books to the feed's highest locate, within this.
    let max_locates = cfg.books.max_locates;
    // As the pipeline's bars workers size them: their keys, and pane rings with a slide more of
    // out-of-orderness (messages run up to a slide ahead of the last mark).
    let keys = match bars.by {
        BarKey::Stock => max_locates.div_ceil(workers),
        BarKey::Participant => bars.max_participants.max(1),
    };
    let w = bars.window;
    let mut sized = w;
    sized.max_out_of_orderness = w.max_out_of_orderness.saturating_add(w.slide);
    let flags = || {
        format!(
            "--window {} / --slide {} (each message in {} windows), --lateness {}, --out-of-orderness {}",
            ns(w.size),
            ns(w.slide),
            w.size / w.slide.max(1),
            ns(w.allowed_lateness),
            ns(w.max_out_of_orderness)
        )
    };
    let state =
        TimeWindows::<Bar>::state_bytes(sized, keys).map_err(|e| anyhow!("{}: {e}", flags()))?;
    let rows = BarsWorker::ring_slots(bars, workers, max_locates)
        .checked_next_power_of_two()
        .map_or(u128::MAX, |s| s as u128 * size_of::<BarRecord>() as u128);
    let bytes = (state as u128)
        .saturating_add(rows)
        .saturating_mul(workers as u128);
    let limit = budget();
    if bytes > limit {
        bail!(
            "{}: the bars state would take {:.1} GiB on {workers} worker(s), more than half this machine's memory ({:.1} GiB); use a longer --slide, a shorter --window, or less lateness or out-of-orderness",
            flags(),
            bytes as f64 / GIB,
            limit as f64 / GIB
        );
    }
    Ok(())
}

/// `ns` nanoseconds as `1s`, `10ms`, …
fn ns(ns: u64) -> String {
    humantime::format_duration(Duration::from_nanos(ns)).to_string()
}
