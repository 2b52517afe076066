//! `tickwatch export`: one CSV row per stock message.

use super::args::{ExportArgs, ExportFormat};
use super::feed::{Feed, StreamFeed};
use super::files::{open_feed_in_place, output_writer};
use anyhow::Result;
use std::time::Instant;
use tickwatch::book::{BookConfig, Books};
use tickwatch::capture::Replaying;
use tickwatch::export::{CsvRows, ExportReport};
use tickwatch::feed::MapOptions;

pub fn cmd_export(a: ExportArgs) -> Result<()> {
    let ExportFormat::Csv = a.format;
    let map = open_feed_in_place(&a.input, MapOptions::default())?;
    let t0 = Instant::now();
    let r = match map.stream() {
        Some(c) => export_capture(&a, &map, c)?,
        None => {
            let mut books = Books::new(BookConfig::full_day());
            let mut w = output_writer(a.out.as_deref())?;
            tickwatch::export::export_csv(map.bytes(), &mut books, a.input.lenient, &mut w)
                .map_err(|e| map.explain(e))?
        }
    };
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

/// A capture's rows, written as its messages are read in place (after a first read that finds
/// its A/B lines and gaps: the output is never started over).
fn export_capture(a: &ExportArgs, feed: &Feed, c: &StreamFeed) -> Result<ExportReport> {
    let read = c.read_twice(&feed.name, || {
        let rows = CsvRows::new(output_writer(a.out.as_deref())?)?;
        let books = Books::new(BookConfig::full_day());
        Ok(Replaying::with_books(
            (books, rows),
            a.input.lenient,
            |s| &s.0,
            |(books, rows), m, _| rows.message(books, m),
        ))
    })?;
    let mut r = read.sink;
    r.finish();
    if let Some((e, place)) = &r.error {
        return Err(feed.explain_at(e, *place));
    }
    let (_, rows) = r.state;
    Ok(rows.finish(r.report)?)
}
