//! `tickwatch book`: one stock's book at a time of day.

use super::args::BookArgs;
use super::feed::{Feed, StreamFeed};
use super::files::open_feed_in_place;
use anyhow::{anyhow, bail, Result};
use serde::Serialize;
use std::io::{self, Write};
use tickwatch::book::{Books, LevelView};
use tickwatch::capture::Replaying;
use tickwatch::feed::MapOptions;
use tickwatch::itch::{fmt_time, parse_time, price4, symbol_field, Message, Side};
use tickwatch::replay::{self, ReplayReport};

#[derive(Serialize)]
struct BookJson<'a> {
    symbol: &'a str,
    timestamp_ns: u64,
    bids: Vec<LevelView>,
    asks: Vec<LevelView>,
}

pub fn cmd_book(a: BookArgs) -> Result<()> {
    let stock =
        symbol_field(&a.symbol).ok_or_else(|| anyhow!("--symbol must be 1 to 8 characters"))?;
    let at = match &a.at {
        Some(t) => Some(
            parse_time(t).ok_or_else(|| anyhow!("--at {t:?}: expected HH:MM:SS[.fffffffff]"))?,
        ),
        None => None,
    };
    let map = open_feed_in_place(&a.input, MapOptions::default())?;
    let (books, rep) = match map.stream() {
        Some(c) => capture_books(&a, &map, c, at)?,
        None => {
            if map.bytes().is_empty() {
                bail!("{}: empty file: no ITCH messages", a.input.file.display());
            }
            let mut books = Books::new(a.caps.config());
            let rep = replay::replay(map.bytes(), &mut books, at, a.input.lenient)
                .map_err(|e| map.explain(e))?;
            (books, rep)
        }
    };
    let Some(locate) = books.locate_of(&stock) else {
        bail!(
            "symbol {} not found in {}{}",
            a.symbol,
            a.input.file.display(),
            if at.is_some() {
                " before that time"
            } else {
                ""
            }
        );
    };
    let ts = at.unwrap_or(books.last_timestamp());
    let bids: Vec<LevelView> = books.depth(locate, Side::Buy).take(a.depth).collect();
    let asks: Vec<LevelView> = books.depth(locate, Side::Sell).take(a.depth).collect();
    let st = books.stats();
    if st.skipped() > 0 || rep.skipped_unknown_types > 0 || rep.skipped_bad_lengths > 0 {
        eprintln!(
            "tickwatch: note: {} message(s) named orders never added (file starts mid-day?), {} other book skip(s), {} unknown-type frame(s), {} bad-length frame(s)",
            st.unknown_refs,
            st.skipped() - st.unknown_refs,
            rep.skipped_unknown_types,
            rep.skipped_bad_lengths
        );
    }
    print_book(&a, locate, ts, bids, asks)
}

/// The books of a capture's messages, read in place, up to `at` (as a replay of its messages
/// framed as a BinaryFILE gives them).
fn capture_books(
    a: &BookArgs,
    feed: &Feed,
    c: &StreamFeed,
    at: Option<u64>,
) -> Result<(Books, ReplayReport)> {
    let until = at.unwrap_or(u64::MAX);
    let read = c.read(&feed.name, || {
        let books = Books::new(a.caps.config());
        let step = |(books, until): &mut (Books, u64), m: &Message<'_>, r: &mut ReplayReport| {
            if m.timestamp() > *until {
                r.stopped_early = true;
                return false;
            }
            books.apply(m);
            true
        };
        Replaying::with_books((books, until), a.input.lenient, |s| &s.0, step)
    })?;
    if read.image_len == 0 {
        bail!("{}: empty file: no ITCH messages", a.input.file.display());
    }
    let mut r = read.sink;
    r.finish();
    if let Some((e, place)) = &r.error {
        return Err(feed.explain_at(e, *place));
    }
    Ok((r.state.0, r.report))
}

fn print_book(
    a: &BookArgs,
    locate: u16,
    ts: u64,
    bids: Vec<LevelView>,
    asks: Vec<LevelView>,
) -> Result<()> {
    let mut out = io::stdout().lock();
    if a.json {
        serde_json::to_writer(
            &mut out,
            &BookJson {
                symbol: &a.symbol,
                timestamp_ns: ts,
                bids,
                asks,
            },
        )?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "{} (locate {}) at {}", a.symbol, locate, fmt_time(ts))?;
    writeln!(
        out,
        "{:>8} {:>10} {:>12} | {:<12} {:<10} {:<8}",
        "orders", "shares", "bid", "ask", "shares", "orders"
    )?;
    for i in 0..bids.len().max(asks.len()) {
        let b = bids
            .get(i)
            .map(|l| format!("{:>8} {:>10} {:>12}", l.orders, l.shares, price4(l.price)));
        let s = asks
            .get(i)
            .map(|l| format!("{:<12} {:<10} {:<8}", price4(l.price), l.shares, l.orders));
        writeln!(
            out,
            "{} | {}",
            b.unwrap_or_else(|| " ".repeat(32)),
            s.unwrap_or_default()
        )?;
    }
    Ok(())
}
