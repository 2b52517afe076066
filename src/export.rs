//! `tickwatch export`: the feed as one CSV row per stock message, for engines that read text
//! (the Flink side of `tools/flink_compare.py`). Executions are priced from the books, so every
//! trade row carries its price and shares.

use crate::agg::BarInput;
use crate::book::Books;
use crate::inspect::InspectError;
use crate::itch::Message;
use crate::replay::{for_each_message, ReplayReport};
use std::io::{self, Write};

/// The header of [`export_csv`].
pub const HEADER: &str = "ts_ns,symbol,msg_type,is_trade,shares,price_e4";

/// What an export wrote.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct ExportReport {
    /// Messages decoded.
    pub messages: u64,
    /// Rows written: messages naming a stock (locate ≠ 0).
    pub rows: u64,
    /// Rows that are trades (E, printable C, P, Q).
    pub trades: u64,
    /// Stock messages written before the stock's directory message (symbol `?`).
    pub unnamed: u64,
    /// The replay's skip counts.
    pub replay: ReplayReport,
}

/// Errors of [`export_csv`].
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The feed is malformed at a byte offset.
    #[error(transparent)]
    Feed(#[from] InspectError),
    /// Writing failed.
    #[error("writing the CSV: {0}")]
    Io(#[from] io::Error),
}

/// Writes every message of `feed` that names a stock as `ts_ns,symbol,msg_type,is_trade,shares,
/// price_e4` (trade columns 0 unless a trade; the classification of [`BarInput::classify`]).
///
/// # Errors
/// The feed's first framing or decode error (bad lengths are skipped when `lenient`), or a
/// write error.
pub fn export_csv(
    feed: &[u8],
    books: &mut Books,
    lenient: bool,
    w: &mut impl Write,
) -> Result<ExportReport, ExportError> {
    let mut rows = CsvRows::new(w)?;
    let mut r = ReplayReport::default();
    for_each_message(feed, books, lenient, &mut r, |books, m, _| {
        rows.message(books, m)
    })?;
    rows.finish(r)
}

/// The rows of [`export_csv`], a message at a time (a capture's messages, read in place).
#[derive(Debug)]
pub struct CsvRows<W: Write> {
    w: W,
    rep: ExportReport,
    err: Option<io::Error>,
}

impl<W: Write> CsvRows<W> {
    /// Rows to `w`, after the header.
    ///
    /// # Errors
    /// Writing the header failed.
    pub fn new(mut w: W) -> io::Result<CsvRows<W>> {
        writeln!(w, "{HEADER}")?;
        Ok(CsvRows {
            w,
            rep: ExportReport::default(),
            err: None,
        })
    }

    /// The row of `m` (when it names a stock), then `m` applied to `books`; false when writing
    /// failed (the error is kept for [`CsvRows::finish`]).
    pub fn message(&mut self, books: &mut Books, m: &Message<'_>) -> bool {
        let locate = m.stock_locate();
        if locate != 0 {
            let x = BarInput::classify(m, books);
            // The books' name of the locate (as the bars have it); a message before the stock's
            // directory entry may name it itself.
            let sym = books.symbol(locate).or_else(|| m.stock());
            let name = sym
                .and_then(|s| std::str::from_utf8(s).ok())
                .map(|s| s.trim_end_matches([' ', '\0']));
            self.rep.unnamed += name.is_none() as u64;
            let is_trade = x.class == BarInput::TRADE;
            self.rep.trades += is_trade as u64;
            self.rep.rows += 1;
            if let Err(e) = writeln!(
                self.w,
                "{},{},{},{},{},{}",
                m.timestamp(),
                name.unwrap_or("?"),
                m.msg_type() as char,
                is_trade as u8,
                x.shares,
                x.price
            ) {
                self.err = Some(e);
                return false;
            }
        }
        books.apply(m);
        true
    }

    /// What was written, the replay's counts `r` beside it; the output flushed.
    ///
    /// # Errors
    /// A write error.
    pub fn finish(mut self, r: ReplayReport) -> Result<ExportReport, ExportError> {
        if let Some(e) = self.err {
            return Err(e.into());
        }
        self.w.flush()?;
        self.rep.messages = r.messages;
        self.rep.replay = r;
        Ok(self.rep)
    }
}
