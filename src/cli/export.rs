//! `tickwatch export`: one CSV row per stock message.

use super::args::{ExportArgs, ExportFormat};
use super::files::{open_feed, output_writer};
use anyhow::Result;
use std::time::Instant;
use tickwatch::book::{BookConfig, Books};
use tickwatch::feed::MapOptions;

pub fn cmd_export(a: ExportArgs) -> Result<()> {
    let ExportFormat::Csv = a.format;
    let map = open_feed(&a.input, MapOptions::default())?;
    let mut books = Books::new(BookConfig::full_day());
    let mut w = output_writer(a.out.as_deref())?;
    let t0 = Instant::now();
    let r = tickwatch::export::export_csv(map.bytes(), &mut books, a.input.lenient, &mut w)
        .map_err(|e| map.explain(e))?;
    eprintln!(
        "exported {} rows ({} trades, {} before their stock's directory entry) of {} messages in {:.2} s; skipped {} unknown types, {} bad lengths",
        r.rows,
        r.trades,
        r.unnamed,
        r.messages,
        t0.elapsed().as_secs_f64(),
        r.replay.skipped_unknown_types,
        r.replay.skipped_bad_lengths
    );
    Ok(())
}
