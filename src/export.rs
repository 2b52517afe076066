//! `tickwatch export`: the feed as one CSV row per stock message, for engines that read text
//! (the Flink side of `tools/flink_compare.py`). Executions are priced from the books, so every
//! trade row carries its price and shares.

use crate::agg::BarInput;
use crate::book::Books;
use crate::inspect::InspectError;
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
    writeln!(w, "{HEADER}")?;
    let mut rep = ExportReport::default();
    let mut err: Option<io::Error> = None;
    let mut r = ReplayReport::default();
    for_each_message(feed, books, lenient, &mut r, |books, m, _| {
        let locate = m.stock_locate();
        if locate != 0 {
            let x = BarInput::classify(m, books);
            // The books' name of the locate (as the bars have it); a message before the stock's
            // directory entry may name it itself.
            let sym = books.symbol(locate).or_else(|| m.stock());
            let name = sym
                .and_then(|s| std::str::from_utf8(s).ok())
                .map(|s| s.trim_end_matches([' ', '\0']));
            rep.unnamed += name.is_none() as u64;
            let is_trade = x.class == BarInput::TRADE;
            rep.trades += is_trade as u64;
            rep.rows += 1;
            if let Err(e) = writeln!(
                w,
                "{},{},{},{},{},{}",
                m.timestamp(),
                name.unwrap_or("?"),
                m.msg_type() as char,
                is_trade as u8,
                x.shares,
                x.price
            ) {
                err = Some(e);
                return false;
            }
        }
        books.apply(m);
        true
    })?;
    if let Some(e) = err {
        return Err(e.into());
    }
    w.flush()?;
    rep.messages = r.messages;
    rep.replay = r;
    Ok(rep)
}
