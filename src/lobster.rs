//! Converts a LOBSTER message/order-book pair into an ITCH 5.0 BinaryFILE that rebuilds the same book.
//!
//! LOBSTER (lobsterdata.com) publishes each stock-day as two headerless CSV files. The message file
//! has one event per row: `time,type,order_id,size,price,direction`, with the time in decimal seconds
//! after midnight and the price in dollars × 10 000 (the same integer as ITCH `Price(4)`). Row *k* of
//! the order-book file is the book after message *k*: *N* repeats of `ask price, ask size, bid price,
//! bid size`, with empty levels shown as ask `9999999999` / bid `-9999999999` and size 0.
//!
//! # Output
//! [`convert`] writes a System Event `O` and a Stock Directory `R` (locate [`STOCK_LOCATE`]), one Add
//! Order `A` per seeded pre-sample price level (below), then **exactly one message per LOBSTER event,
//! in order**, each with tracking number [`TRACKING_EVENT`]. A replay compares the book with
//! order-book row *k* after the *k*-th such message. The header and the seeds carry
//! [`TRACKING_SEED`]; correction messages (below), placed just before an event's message, carry
//! [`TRACKING_CORRECTION`].
//!
//! | LOBSTER type | ITCH |
//! |---|---|
//! | 1 submit | `A`, order reference = LOBSTER id (2⁶⁴−1, which a book cannot key, gets a made-up one) |
//! | 2 partial cancel | `X` |
//! | 3 delete | `D`, or `X` when the ITCH order it maps to keeps shares after it (a pool order, below) |
//! | 4 visible execution | `E` |
//! | 5 hidden execution | `P` (no book change) |
//! | 6 cross trade | `Q` (no book change; cross type `O` before noon, `C` after, `H` after a halt) |
//! | 7 trading halt | `H`, state `H` (price −1), `Q` (0) or `T` (1) |
//!
//! Timestamps are the LOBSTER times converted to nanoseconds by exact decimal parsing; the header and
//! seed messages carry the first event's time. ITCH has no date field: the date is validated and
//! recorded in the [`ConvertReport`].
//!
//! # Orders the file never submitted
//! LOBSTER events often name orders submitted before the file starts, and the order-book file gives
//! only the total shares of each of the top *N* price levels — never the orders in them. The
//! converter therefore keeps, at each (side, price), **one "pool" ITCH order** for the shares that no
//! order submitted in the file explains, with references counting up from one above the largest
//! LOBSTER id in the file, past 2⁶⁴−1 round to 0 and skipping every id the file names (so they
//! cannot collide). Every event on an id the file never submitted
//! maps onto the pool order at its price and side: a partial cancel becomes `X`, an execution `E`,
//! and a delete `D` when it removes all the pool shares still left, otherwise `X` for its size.
//!
//! # Seeding the book that rested before the sample
//! The pool orders start as the seeds. The pre-sample size `P` of a (side, price) comes from the
//! book itself. Let `Δₖ` be the net effect of messages 1..=k at that price (+size for a submit,
//! −size for a partial cancel, delete or visible execution). Row *k* *covers* a price when it lies
//! at or better than the row's *N*-th level on that side, or when the side shows fewer than *N*
//! levels (the whole side is on show). There the book is known exactly: the shown size `Sₖ`, or zero
//! when the row has no level at that price, so `P = Sₖ − Δₖ`, computed at the first row covering
//! the price:
//! - prices covered by row 1 give row 1 with message 1 undone:
//!   [`seeded_levels`](ConvertReport::seeded_levels);
//! - a price first covered by a later row is a level that rested deeper than *N* when the sample
//!   began and moved into the top *N* later. Its size is its size when revealed minus the sample's
//!   own net effect there before then:
//!   [`deep_levels_seeded`](ConvertReport::deep_levels_seeded);
//! - a price never covered where events hit unknown ids gets the smallest size the sample proves,
//!   the shares those events remove:
//!   [`unrevealed_levels_seeded`](ConvertReport::unrevealed_levels_seeded). This happens only in
//!   files that record events beyond level *N*, which LOBSTER's do not.
//!
//! All seeds are written before the first event. Each price is settled once, so the pass costs
//! `O(events × log prices)`: the prices still unsettled on each side sit in a sorted set, and each
//! row settles everything from its *N*-th level up by splitting that set.
//!
//! # Changes LOBSTER does not record
//! LOBSTER keeps only the events that change the top *N* levels. Orders entered, cancelled or
//! deleted while their price is deeper than level *N* leave no message, yet they change the level
//! when it comes back into view. (In the AAPL sample, the 1,160 shares at ask 58.765 that row 1 shows
//! are gone when row 13 brings that price back, and no message names that price.) Seeds at the start
//! cannot express this, because the level was visible, with another size, earlier. So when row *k*
//! covers a price that row *k − 1* did not, the converter compares its book there with row *k*
//! (allowing for event *k*'s own change). Where needed it writes [`TRACKING_CORRECTION`] messages
//! just before event *k*'s message, while that price is still out of view:
//! - an order whose last event is a delete has lost, by then, whatever that delete will not find;
//!   those shares are cut first;
//! - the pool must hold what events on unknown ids will take there until the price next comes
//!   back into view (an order entered out of view and executed later, say);
//! - any other gain goes to the pool, through a `U` replace to the larger size (keeping one pool
//!   order per price), or through an `A` when the price has no pool order;
//! - any other loss comes first from what no later event needs: pool shares beyond that need,
//!   submitted orders no later event names, then the part of other submitted orders that later
//!   events leave untouched (newest first). Only after that does it come from the rest, by `X` or `D`.
//!
//! The level totals are what the order-book file proves. Which order gained or lost the shares out of
//! view is the reading the later events support best; LOBSTER does not record it. Corrections never
//! touch a price the previous row covered. They are counted in
//! [`corrected_levels`](ConvertReport::corrected_levels) and
//! [`correction_messages`](ConvertReport::correction_messages).
//!
//! # Errors
//! Malformed rows are reported as [`LobsterError::Row`] with the file name and 1-based line number;
//! a message/order-book row-count mismatch names the first line without a partner. Data that parse
//! but contradict each other (an execution larger than its order, a negative pre-sample size) are
//! converted as well as ITCH allows and counted in [`ConvertReport::inconsistencies`]. Nothing
//! panics on bad input.

use crate::itch::be::{BeU32, BeU64};
use crate::itch::encode::{header, FrameWriter};
use crate::itch::wire::{
    AddOrder, CrossTrade, OrderCancel, OrderDelete, OrderExecuted, OrderReplace, StockDirectory,
    StockTradingAction, SystemEvent, Trade,
};
use crate::itch::{symbol_field, Side};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use thiserror::Error;

/// The stock locate the converted symbol gets.
pub const STOCK_LOCATE: u16 = 1;
/// Messages written before the seeds: System Event `O` and Stock Directory `R`.
pub const HEADER_MESSAGES: u64 = 2;
/// Tracking number of the one message written for each LOBSTER event: compare the book with
/// order-book row *k* after the *k*-th message carrying it.
pub const TRACKING_EVENT: u16 = 0;
/// Tracking number of the start-up block: the header and the seeded pre-sample orders.
pub const TRACKING_SEED: u16 = 1;
/// Tracking number of a correction: a change beyond level *N* that LOBSTER did not record,
/// written just before the event whose order-book row first shows it.
pub const TRACKING_CORRECTION: u16 = 2;
/// LOBSTER's price for an empty ask level.
pub const EMPTY_ASK_PRICE: i64 = 9_999_999_999;
/// LOBSTER's price for an empty bid level.
pub const EMPTY_BID_PRICE: i64 = -9_999_999_999;

/// A LOBSTER input that cannot be converted.
#[derive(Debug, Error)]
pub enum LobsterError {
    /// One row is malformed. Fix or drop the row named.
    #[error("{file}:{line}: {reason}")]
    Row {
        /// File name as given.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: RowError,
    },
    /// The two files do not have one order-book row per message.
    #[error(
        "row count mismatch: {messages_file} has {messages} rows, {orderbook_file} has {orderbook}; \
         {file}:{line} has no partner row"
    )]
    RowCount {
        /// Message file name.
        messages_file: String,
        /// Rows in the message file.
        messages: usize,
        /// Order-book file name.
        orderbook_file: String,
        /// Rows in the order-book file.
        orderbook: usize,
        /// The file with the extra rows.
        file: String,
        /// Its first line without a partner (1-based).
        line: usize,
    },
    /// The message file has no events, so there is nothing to convert or to time the header by.
    #[error("{0}: no events")]
    Empty(String),
    /// The date is not a valid `YYYY-MM-DD`.
    #[error("date {0:?} is not a valid YYYY-MM-DD")]
    Date(String),
    /// The symbol does not fit the 8-byte ITCH alpha field (1..=8 printable ASCII bytes).
    #[error("symbol {0:?} must be 1 to 8 printable ASCII characters")]
    Symbol(String),
    /// Writing the output failed.
    #[error("writing ITCH output")]
    Io(#[from] io::Error),
    /// An input file cannot be read (or is not UTF-8).
    #[error("reading {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The output file cannot be created.
    #[error("creating {path}")]
    Create {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// What is wrong with one LOBSTER row.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RowError {
    /// A blank line before the last row.
    #[error("empty row")]
    Empty,
    /// A message row without six columns.
    #[error("expected 6 columns (time,type,id,size,price,direction), found {0}")]
    MessageColumns(usize),
    /// An order-book row whose columns are not whole levels.
    #[error("{0} columns is not a multiple of 4 (ask price, ask size, bid price, bid size)")]
    BookColumns(usize),
    /// An order-book row with another column count than the first.
    #[error("expected {expected} columns like line 1, found {found}")]
    ColumnCount {
        /// The first row's.
        expected: usize,
        /// This row's.
        found: usize,
    },
    /// A time that is not decimal seconds after midnight.
    #[error("time {0:?} is not decimal seconds after midnight")]
    Time(String),
    /// A field that is not an integer.
    #[error("{what} {field:?} is not an integer")]
    NotInteger {
        /// The field's name (and column).
        what: String,
        /// Its text.
        field: String,
    },
    /// An order id or size that is not a non-negative integer.
    #[error("{what} {field:?} is not a non-negative integer")]
    NotCount {
        /// The field's name.
        what: &'static str,
        /// Its text.
        field: String,
    },
    /// An event type outside 1..=7.
    #[error("unknown event type {0}")]
    EventType(i64),
    /// A direction other than ±1.
    #[error("direction {0} is neither 1 (buy) nor -1 (sell)")]
    Direction(i64),
    /// A time past ITCH's 48-bit timestamp.
    #[error("time {0} ns does not fit ITCH's 48-bit timestamp")]
    TimeRange(u64),
    /// An order event or cross without a side.
    #[error("direction is missing")]
    NoDirection,
    /// A halt state other than −1, 0, 1.
    #[error("halt state (price field) {0} is not -1, 0 or 1")]
    HaltState(i64),
    /// A cross price outside `u32`.
    #[error("cross price {0} does not fit ITCH Price(4)")]
    CrossPrice(i64),
    /// An order price outside `1..=u32::MAX`.
    #[error("price {0} is outside 1..=4294967295")]
    Price(i64),
    /// An order size outside `1..=u32::MAX`.
    #[error("size {0} is outside 1..=4294967295")]
    Size(u64),
    /// An empty level (LOBSTER's dummy price) with shares.
    #[error("empty {side} level {level} has size {shares}")]
    EmptyLevelSize {
        /// `ask` or `bid`.
        side: &'static str,
        /// 1-based level.
        level: usize,
        /// Its size.
        shares: i64,
    },
    /// A real level after an empty one.
    #[error("{side} level {level} follows an empty level")]
    AfterEmpty {
        /// `ask` or `bid`.
        side: &'static str,
        /// 1-based level.
        level: usize,
    },
    /// A level price outside `1..=u32::MAX`.
    #[error("{side} price {price} at level {level} is outside 1..=4294967295")]
    LevelPrice {
        /// `ask` or `bid`.
        side: &'static str,
        /// The price.
        price: i64,
        /// 1-based level.
        level: usize,
    },
    /// A real level with no shares.
    #[error("{side} level {level} at price {price} has size {shares}")]
    LevelSize {
        /// `ask` or `bid`.
        side: &'static str,
        /// 1-based level.
        level: usize,
        /// The price.
        price: i64,
        /// Its size.
        shares: i64,
    },
    /// Levels not strictly sorted best first.
    #[error("{side} level {level} at price {price} is not better-ordered after {prev}")]
    Unsorted {
        /// `ask` or `bid`.
        side: &'static str,
        /// 1-based level.
        level: usize,
        /// The price.
        price: i64,
        /// The level before's.
        prev: u32,
    },
}

/// The seven LOBSTER event types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum EventKind {
    /// 1: a new limit order rests in the book.
    Submit,
    /// 2: part of a resting order is cancelled.
    PartialCancel,
    /// 3: a resting order is removed entirely.
    Delete,
    /// 4: a visible resting order is executed (in part or in full).
    VisibleExecution,
    /// 5: a hidden order is executed; the visible book does not change.
    HiddenExecution,
    /// 6: a cross (auction) trade.
    Cross,
    /// 7: a trading halt indicator; the price field holds the state.
    Halt,
}

impl EventKind {
    /// The kind for a LOBSTER type number (1..=7).
    pub fn from_code(code: i64) -> Option<EventKind> {
        Some(match code {
            1 => EventKind::Submit,
            2 => EventKind::PartialCancel,
            3 => EventKind::Delete,
            4 => EventKind::VisibleExecution,
            5 => EventKind::HiddenExecution,
            6 => EventKind::Cross,
            7 => EventKind::Halt,
            _ => return None,
        })
    }

    /// The LOBSTER type number.
    pub fn code(self) -> u8 {
        match self {
            EventKind::Submit => 1,
            EventKind::PartialCancel => 2,
            EventKind::Delete => 3,
            EventKind::VisibleExecution => 4,
            EventKind::HiddenExecution => 5,
            EventKind::Cross => 6,
            EventKind::Halt => 7,
        }
    }

    /// True for the types that move an order in the visible book (1 to 4).
    pub fn changes_book(self) -> bool {
        matches!(
            self,
            EventKind::Submit
                | EventKind::PartialCancel
                | EventKind::Delete
                | EventKind::VisibleExecution
        )
    }
}

/// One row of a LOBSTER message file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// Nanoseconds since midnight.
    pub time_ns: u64,
    /// Event type.
    pub kind: EventKind,
    /// LOBSTER order id (0 for hidden executions, crosses and halts in the free samples).
    pub id: u64,
    /// Shares. For types 1 to 5 the parser guarantees `1..=u32::MAX`.
    pub size: u64,
    /// Price × 10 000; for a halt, −1 (halted), 0 (quoting) or 1 (trading). For types 1 to 5 the
    /// parser guarantees `1..=u32::MAX`.
    pub price: i64,
    /// Side of the order (for executions, of the resting order); `None` for halts.
    pub side: Option<Side>,
}

impl Event {
    /// The price as an ITCH `Price(4)`, clamped into `u32`.
    pub fn price4(&self) -> u32 {
        self.price.clamp(0, u32::MAX as i64) as u32
    }

    /// The size as ITCH shares, clamped into `u32`.
    pub fn shares(&self) -> u32 {
        self.size.min(u32::MAX as u64) as u32
    }

    /// Checks the ranges ITCH needs (the parser calls this; [`convert_parsed`] calls it again for
    /// events built by hand).
    ///
    /// # Errors
    /// What is out of range: a time past ITCH's 48 bits, a missing side on an order event or cross,
    /// a halt state other than −1, 0, 1, a cross price outside `u32`, or an order price or size
    /// outside `1..=u32::MAX`.
    pub fn validate(&self) -> Result<(), RowError> {
        let (price, size) = (self.price, self.size);
        if self.time_ns >= 1 << 48 {
            return Err(RowError::TimeRange(self.time_ns));
        }
        if self.kind != EventKind::Halt && self.side.is_none() {
            return Err(RowError::NoDirection);
        }
        match self.kind {
            EventKind::Halt if !(-1..=1).contains(&price) => Err(RowError::HaltState(price)),
            EventKind::Cross if !(0..=u32::MAX as i64).contains(&price) => {
                Err(RowError::CrossPrice(price))
            }
            EventKind::Halt | EventKind::Cross => Ok(()),
            _ if !(1..=u32::MAX as i64).contains(&price) => Err(RowError::Price(price)),
            _ if !(1..=u32::MAX as u64).contains(&size) => Err(RowError::Size(size)),
            _ => Ok(()),
        }
    }
}

/// A parsed LOBSTER message file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Messages {
    /// File name, for errors.
    pub file: String,
    /// Events in file order.
    pub events: Vec<Event>,
}

/// One non-empty price level of an order-book row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Level {
    /// Price × 10 000.
    pub price: u32,
    /// Total shares.
    pub shares: u64,
}

/// One order-book row: the non-empty levels of each side, best first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BookRow {
    /// Ask levels, lowest price first.
    pub asks: Vec<Level>,
    /// Bid levels, highest price first.
    pub bids: Vec<Level>,
}

impl BookRow {
    /// The levels of one side, best first.
    pub fn side(&self, side: Side) -> &[Level] {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }
}

/// A parsed LOBSTER order-book file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderBook {
    /// File name, for errors.
    pub file: String,
    /// Levels per side (*N* = columns / 4).
    pub levels: usize,
    /// Row *k* (0-based) is the book after event *k*.
    pub rows: Vec<BookRow>,
}

/// How many events of each LOBSTER type a file holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TypeCounts {
    /// Type 1.
    pub submit: u64,
    /// Type 2.
    pub partial_cancel: u64,
    /// Type 3.
    pub delete: u64,
    /// Type 4.
    pub visible_execution: u64,
    /// Type 5.
    pub hidden_execution: u64,
    /// Type 6.
    pub cross: u64,
    /// Type 7.
    pub halt: u64,
}

impl TypeCounts {
    /// Counts the events of a file.
    pub fn of(events: &[Event]) -> TypeCounts {
        let mut c = TypeCounts::default();
        for e in events {
            *c.get_mut(e.kind) += 1;
        }
        c
    }

    /// The count of one type.
    pub fn get(&self, kind: EventKind) -> u64 {
        match kind {
            EventKind::Submit => self.submit,
            EventKind::PartialCancel => self.partial_cancel,
            EventKind::Delete => self.delete,
            EventKind::VisibleExecution => self.visible_execution,
            EventKind::HiddenExecution => self.hidden_execution,
            EventKind::Cross => self.cross,
            EventKind::Halt => self.halt,
        }
    }

    fn get_mut(&mut self, kind: EventKind) -> &mut u64 {
        match kind {
            EventKind::Submit => &mut self.submit,
            EventKind::PartialCancel => &mut self.partial_cancel,
            EventKind::Delete => &mut self.delete,
            EventKind::VisibleExecution => &mut self.visible_execution,
            EventKind::HiddenExecution => &mut self.hidden_execution,
            EventKind::Cross => &mut self.cross,
            EventKind::Halt => &mut self.halt,
        }
    }
}

/// What a conversion did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConvertReport {
    /// Symbol written to the Stock Directory.
    pub symbol: String,
    /// Trading date (validated `YYYY-MM-DD`; ITCH itself carries no date).
    pub date: String,
    /// Stock locate used for every message.
    pub stock_locate: u16,
    /// LOBSTER events converted (= order-book rows); one [`TRACKING_EVENT`] message each.
    pub events: u64,
    /// Levels per side in the order-book file (*N*).
    pub levels: usize,
    /// ITCH messages written in all: header + seeds + corrections + events.
    pub messages_written: u64,
    /// Messages before the seeds (`S` and `R`).
    pub header_messages: u64,
    /// Pre-sample levels seeded from order-book row 1 with message 1 undone.
    pub seeded_levels: u64,
    /// Pre-sample levels deeper than *N* at the start, seeded from the row that first revealed them.
    pub deep_levels_seeded: u64,
    /// Levels never covered by any row where events hit orders the file never submitted, seeded
    /// with the shares those events remove (a lower bound; only possible in files that, unlike
    /// LOBSTER's, record events beyond level *N*).
    pub unrevealed_levels_seeded: u64,
    /// Shares in all seeded orders.
    pub seeded_shares: u64,
    /// First reserved order reference (one above the largest LOBSTER id); seeds and corrections
    /// number up from here.
    pub seed_ref_base: u64,
    /// Events that named an order the file never submitted (it rested before the sample, or was
    /// entered beyond level *N*), mapped onto the level's unexplained-shares order.
    pub presample_events: u64,
    /// Type-3 deletes written as `X` because the ITCH order they map to keeps shares after them.
    pub deletes_as_cancels: u64,
    /// Level changes LOBSTER did not record (they happened beyond level *N*), found when a row
    /// first shows the level again.
    pub corrected_levels: u64,
    /// [`TRACKING_CORRECTION`] messages written for them.
    pub correction_messages: u64,
    /// Shares those corrections added.
    pub silent_shares_added: u64,
    /// Shares those corrections removed.
    pub silent_shares_removed: u64,
    /// Contradictions in the input, converted as well as ITCH allows: executions or cancels larger
    /// than what remains, events on a level with nothing left to take, negative sizes, duplicate
    /// live ids, ids reused at another price or side. Zero for consistent data.
    pub inconsistencies: u64,
    /// Events of each LOBSTER type.
    pub types: TypeCounts,
    /// Time of the first event, ns since midnight.
    pub first_ns: u64,
    /// Time of the last event, ns since midnight.
    pub last_ns: u64,
}

/// Parses a LOBSTER time (decimal seconds after midnight, e.g. `34200.00426064`) into nanoseconds,
/// exactly: digits beyond the ninth decimal must be zeros. `None` when it is not a plain decimal or
/// does not fit ITCH's 48-bit timestamp.
pub fn parse_seconds(s: &str) -> Option<u64> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    if int.is_empty() || int.len() > 15 || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut ns: u64 = int.parse::<u64>().ok()?.checked_mul(1_000_000_000)?;
    if let Some(f) = frac {
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (head, tail) = f.split_at(f.len().min(9));
        if tail.bytes().any(|b| b != b'0') {
            return None;
        }
        let digits: u64 = head.parse().ok()?;
        ns = ns.checked_add(digits * 10u64.pow(9 - head.len() as u32))?;
    }
    (ns < 1 << 48).then_some(ns)
}

/// Checks that `date` is a real calendar date written `YYYY-MM-DD`.
///
/// # Errors
/// [`LobsterError::Date`] otherwise.
pub fn validate_date(date: &str) -> Result<(), LobsterError> {
    let bad = || LobsterError::Date(date.to_string());
    let b = date.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = date.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return Err(bad());
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if d == 0 || d > days {
        return Err(bad());
    }
    Ok(())
}

/// The non-empty lines of a CSV text with their 1-based line numbers; blank lines are allowed only
/// at the end.
fn rows<'a>(text: &'a str, file: &str) -> Result<Vec<(usize, &'a str)>, LobsterError> {
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let end = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(0, |i| i + 1);
    let mut out = Vec::with_capacity(end);
    for (i, l) in lines[..end].iter().enumerate() {
        if l.trim().is_empty() {
            return Err(LobsterError::Row {
                file: file.to_string(),
                line: i + 1,
                reason: RowError::Empty,
            });
        }
        out.push((i + 1, *l));
    }
    Ok(out)
}

fn int_field(field: &str, what: &str) -> Result<i64, RowError> {
    field
        .trim()
        .parse::<i64>()
        .map_err(|_| RowError::NotInteger {
            what: what.to_string(),
            field: field.to_string(),
        })
}

/// A non-negative integer field (an order id, a size).
fn count_field(field: &str, what: &'static str) -> Result<u64, RowError> {
    field.trim().parse::<u64>().map_err(|_| RowError::NotCount {
        what,
        field: field.to_string(),
    })
}

impl Messages {
    /// Parses the text of a message file; `file` names it in errors.
    ///
    /// # Errors
    /// [`LobsterError::Row`] for the first malformed row: wrong column count, a non-numeric field,
    /// an unknown type, a direction other than ±1, an order price or size outside `1..=u32::MAX`,
    /// or a halt state other than −1, 0, 1.
    pub fn parse(text: &str, file: &str) -> Result<Messages, LobsterError> {
        let mut events = Vec::new();
        for (line, row) in rows(text, file)? {
            let e = parse_event(row).map_err(|reason| LobsterError::Row {
                file: file.to_string(),
                line,
                reason,
            })?;
            events.push(e);
        }
        Ok(Messages {
            file: file.to_string(),
            events,
        })
    }
}

fn parse_event(row: &str) -> Result<Event, RowError> {
    let f: Vec<&str> = row.split(',').collect();
    if f.len() != 6 {
        return Err(RowError::MessageColumns(f.len()));
    }
    let time_ns = parse_seconds(f[0].trim()).ok_or_else(|| RowError::Time(f[0].to_string()))?;
    let code = int_field(f[1], "type")?;
    let kind = EventKind::from_code(code).ok_or(RowError::EventType(code))?;
    let id = count_field(f[2], "order id")?;
    let size = count_field(f[3], "size")?;
    let price = int_field(f[4], "price")?;
    let direction = int_field(f[5], "direction")?;
    let side = match (kind, direction) {
        (EventKind::Halt, _) => None,
        (_, 1) => Some(Side::Buy),
        (_, -1) => Some(Side::Sell),
        (_, d) => return Err(RowError::Direction(d)),
    };
    let e = Event {
        time_ns,
        kind,
        id,
        size,
        price,
        side,
    };
    e.validate()?;
    Ok(e)
}

impl OrderBook {
    /// Parses the text of an order-book file; `file` names it in errors. *N* is the first row's
    /// column count / 4.
    ///
    /// # Errors
    /// [`LobsterError::Row`] for the first malformed row: a column count that is not a positive
    /// multiple of 4 or differs from the first row's, a non-numeric field, a size of 0 at a real
    /// price, a non-empty level after an empty one, or levels not strictly sorted best first.
    pub fn parse(text: &str, file: &str) -> Result<OrderBook, LobsterError> {
        let mut levels = 0;
        let mut out = Vec::new();
        for (line, row) in rows(text, file)? {
            let err = |reason: RowError| LobsterError::Row {
                file: file.to_string(),
                line,
                reason,
            };
            let f: Vec<&str> = row.split(',').collect();
            if levels == 0 {
                if f.len() % 4 != 0 {
                    return Err(err(RowError::BookColumns(f.len())));
                }
                levels = f.len() / 4;
            } else if f.len() != levels * 4 {
                return Err(err(RowError::ColumnCount {
                    expected: levels * 4,
                    found: f.len(),
                }));
            }
            out.push(parse_book_row(&f).map_err(err)?);
        }
        Ok(OrderBook {
            file: file.to_string(),
            levels,
            rows: out,
        })
    }
}

fn parse_book_row(f: &[&str]) -> Result<BookRow, RowError> {
    let mut row = BookRow::default();
    for (side, off, empty) in [
        (Side::Sell, 0, EMPTY_ASK_PRICE),
        (Side::Buy, 2, EMPTY_BID_PRICE),
    ] {
        let name = if side == Side::Sell { "ask" } else { "bid" };
        let mut ended = false;
        for lv in 0..f.len() / 4 {
            let col = lv * 4 + off;
            let price = int_field(f[col], &format!("{name} price (column {})", col + 1))?;
            let shares = int_field(f[col + 1], &format!("{name} size (column {})", col + 2))?;
            if price == empty {
                if shares != 0 {
                    return Err(RowError::EmptyLevelSize {
                        side: name,
                        level: lv + 1,
                        shares,
                    });
                }
                ended = true;
                continue;
            }
            if ended {
                return Err(RowError::AfterEmpty {
                    side: name,
                    level: lv + 1,
                });
            }
            if !(1..=u32::MAX as i64).contains(&price) {
                return Err(RowError::LevelPrice {
                    side: name,
                    price,
                    level: lv + 1,
                });
            }
            if shares <= 0 {
                return Err(RowError::LevelSize {
                    side: name,
                    level: lv + 1,
                    price,
                    shares,
                });
            }
            let levels = if side == Side::Sell {
                &mut row.asks
            } else {
                &mut row.bids
            };
            if let Some(prev) = levels.last() {
                let sorted = if side == Side::Sell {
                    prev.price < price as u32
                } else {
                    prev.price > price as u32
                };
                if !sorted {
                    return Err(RowError::Unsorted {
                        side: name,
                        level: lv + 1,
                        price,
                        prev: prev.price,
                    });
                }
            }
            levels.push(Level {
                price: price as u32,
                shares: shares as u64,
            });
        }
    }
    Ok(row)
}

/// Side as an index: 0 bids, 1 asks (the convention of [`crate::book`]).
fn si(side: Side) -> usize {
    (side == Side::Sell) as usize
}

const SIDES: [Side; 2] = [Side::Buy, Side::Sell];

/// The inclusive price range on one side that row `cur` covers and row `prev` did not, if any.
/// A row covers everything at or better than its *N*-th level, or the whole side when it shows
/// fewer than *N* levels.
fn newly_covered(prev: &[Level], cur: &[Level], n: usize, side: Side) -> Option<(u32, u32)> {
    // `prev` showing fewer than N levels covered the whole side already.
    let prev_nth = prev.get(n.checked_sub(1)?)?.price;
    let cur_nth = cur.get(n - 1).map(|l| l.price);
    let (lo, hi) = match side {
        Side::Buy => (cur_nth.unwrap_or(0), prev_nth.checked_sub(1)?),
        Side::Sell => (prev_nth.checked_add(1)?, cur_nth.unwrap_or(u32::MAX)),
    };
    (lo <= hi).then_some((lo, hi))
}

/// Where a pre-sample level's size came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    /// Order-book row 1 with message 1 undone.
    FirstRow,
    /// A later row that first covered the price.
    Revealed,
    /// Never covered: the shares events on unknown ids removed there.
    Unrevealed,
}

/// The book that rested before the first event, and what the events will ask of it.
#[derive(Debug, Default)]
struct Seeds {
    /// One entry per (side, price) with a positive size.
    levels: [BTreeMap<u32, (u64, Origin)>; 2],
    /// Shares that events on ids the file never submitted remove at each price, in all.
    consumed: [HashMap<u32, u64>; 2],
    /// Which events name an id the file never submitted (before them).
    unknown: Vec<bool>,
    inconsistencies: u64,
}

/// Works out the book that rested before the first event (see the module doc).
fn derive_seeds(events: &[Event], book: &OrderBook) -> Seeds {
    let n = book.levels;
    // Every price that can matter: any event's or any row's.
    let mut pending: [BTreeSet<u32>; 2] = Default::default();
    for e in events.iter().filter(|e| e.kind.changes_book()) {
        if let Some(s) = e.side {
            pending[si(s)].insert(e.price4());
        }
    }
    for row in &book.rows {
        for s in SIDES {
            pending[si(s)].extend(row.side(s).iter().map(|l| l.price));
        }
    }

    let mut delta: [HashMap<u32, i64>; 2] = Default::default();
    let mut live: HashMap<u64, u64> = HashMap::new();
    let mut seeds = Seeds {
        unknown: vec![false; events.len()],
        ..Seeds::default()
    };
    let mut settled: [BTreeMap<u32, (i64, usize)>; 2] = Default::default();

    for (k, (e, row)) in events.iter().zip(&book.rows).enumerate() {
        if let (true, Some(side)) = (e.kind.changes_book(), e.side) {
            let s = si(side);
            let p = e.price4();
            let size = e.size as i64;
            if e.kind == EventKind::Submit {
                let d = delta[s].entry(p).or_default();
                *d = d.saturating_add(size);
                live.insert(e.id, e.size);
            } else {
                let d = delta[s].entry(p).or_default();
                *d = d.saturating_sub(size);
                match live.get_mut(&e.id) {
                    Some(rem) => {
                        *rem = rem.saturating_sub(e.size);
                        // As the writer does: an order leaves when nothing remains.
                        if *rem == 0 {
                            live.remove(&e.id);
                        }
                    }
                    None => {
                        seeds.unknown[k] = true;
                        *seeds.consumed[s].entry(p).or_default() += e.size;
                    }
                }
            }
        }
        for side in SIDES {
            let s = si(side);
            let shown = row.side(side);
            let covered = match shown.get(n.saturating_sub(1)).filter(|_| shown.len() >= n) {
                None => std::mem::take(&mut pending[s]),
                // Bids: everything at or above the N-th level.
                Some(nth) if side == Side::Buy => pending[s].split_off(&nth.price),
                // Asks: everything at or below the N-th level.
                Some(nth) => match nth.price.checked_add(1) {
                    Some(above) => {
                        let rest = pending[s].split_off(&above);
                        std::mem::replace(&mut pending[s], rest)
                    }
                    None => std::mem::take(&mut pending[s]),
                },
            };
            for p in covered {
                let now = shown
                    .iter()
                    .find(|l| l.price == p)
                    .map_or(0, |l| l.shares as i64);
                let size = now.saturating_sub(delta[s].get(&p).copied().unwrap_or(0));
                settled[s].insert(p, (size, k));
            }
        }
    }

    for (s, settled) in settled.iter().enumerate() {
        for (&p, &(size, k)) in settled {
            if size < 0 {
                seeds.inconsistencies += 1;
            } else if size > 0 {
                let origin = if k == 0 {
                    Origin::FirstRow
                } else {
                    Origin::Revealed
                };
                seeds.levels[s].insert(p, (size as u64, origin));
            }
        }
        for (&p, &c) in &seeds.consumed[s] {
            if !settled.contains_key(&p) {
                seeds.levels[s].insert(p, (c, Origin::Unrevealed));
            }
        }
    }
    seeds
}

/// What each price's pool must hold when it comes back into view. For every price where events
/// hit unknown ids, this lists the rows that newly cover it (row 0 first), each with the shares
/// those events take there from that row until the next one. Past that row the price leaves view
/// again, and the next row that brings it back settles its pool afresh.
fn pool_needs(
    events: &[Event],
    book: &OrderBook,
    unknown: &[bool],
) -> [HashMap<u32, Vec<(usize, u64)>>; 2] {
    let mut needs: [HashMap<u32, Vec<(usize, u64)>>; 2] = Default::default();
    let mut prices: [BTreeSet<u32>; 2] = Default::default();
    for (e, _) in events.iter().zip(unknown).filter(|(_, &u)| u) {
        if let Some(side) = e.side {
            prices[si(side)].insert(e.price4());
            needs[si(side)].insert(e.price4(), vec![(0, 0)]);
        }
    }
    for (k, (e, &u)) in events.iter().zip(unknown).enumerate() {
        if k > 0 {
            for side in SIDES {
                let s = si(side);
                let (prev, cur) = (book.rows[k - 1].side(side), book.rows[k].side(side));
                if let Some((lo, hi)) = newly_covered(prev, cur, book.levels, side) {
                    for p in prices[s].range(lo..=hi) {
                        if let Some(v) = needs[s].get_mut(p) {
                            v.push((k, 0));
                        }
                    }
                }
            }
        }
        if let (true, Some(side)) = (u, e.side) {
            if let Some(last) = needs[si(side)]
                .get_mut(&e.price4())
                .and_then(|v| v.last_mut())
            {
                last.1 += e.size;
            }
        }
    }
    needs
}

/// The ITCH references of the orders the converter makes up (seeds, pool replacements): counting
/// up from one above the largest LOBSTER id, past 2^64 − 1 round to 0, never an id the file names
/// and never 2^64 − 1 (a book keys an order by its reference + 1, so it cannot hold that one).
#[derive(Debug)]
struct Refs {
    next: u64,
    /// Every LOBSTER id of the file.
    ids: HashSet<u64>,
    /// The reference standing in for a submitted id of 2^64 − 1, once needed.
    max_id: Option<u64>,
}

impl Refs {
    fn new(events: &[Event]) -> Refs {
        let ids: HashSet<u64> = events.iter().map(|e| e.id).collect();
        let next = ids.iter().max().map_or(0, |m| m.wrapping_add(1));
        let mut refs = Refs {
            next,
            ids,
            max_id: None,
        };
        refs.skip_taken();
        refs
    }

    /// The reference [`Refs::take`] gives next.
    fn peek(&self) -> u64 {
        self.next
    }

    fn take(&mut self) -> u64 {
        let r = self.next;
        self.next = self.next.wrapping_add(1);
        self.skip_taken();
        r
    }

    fn skip_taken(&mut self) {
        while self.next == u64::MAX || self.ids.contains(&self.next) {
            self.next = self.next.wrapping_add(1);
        }
    }

    /// The ITCH reference of a submitted LOBSTER id: the id itself, except 2^64 − 1.
    fn itch_ref(&mut self, id: u64) -> u64 {
        if id != u64::MAX {
            return id;
        }
        if self.max_id.is_none() {
            self.max_id = Some(self.take());
        }
        self.max_id.unwrap_or_default()
    }
}

/// An ITCH order the converter has written and not yet removed.
#[derive(Clone, Copy, Debug)]
struct Live {
    order_ref: u64,
    side: Side,
    price: u32,
    remaining: u64,
}

/// Writes the messages while keeping the book they build: the orders the file submitted, and at
/// each price one "pool" order for the shares no submitted order explains.
#[derive(Debug)]
struct Emitter<W: Write> {
    w: FrameWriter<W>,
    stock: [u8; 8],
    match_number: u64,
    refs: Refs,
    /// Orders the file submitted, by LOBSTER id.
    live: HashMap<u64, Live>,
    /// Their ids per price, oldest first.
    at_price: [BTreeMap<u32, Vec<u64>>; 2],
    /// The pool order of each price.
    pool: [BTreeMap<u32, Live>; 2],
    /// Per price, the rows that bring it back into view and what its pool must then hold
    /// (see [`pool_needs`]).
    needs: [HashMap<u32, Vec<(usize, u64)>>; 2],
    /// Shares later events (types 2 to 4) will still take from each id.
    future_use: HashMap<u64, u64>,
    /// Ids whose last event is a delete.
    closes: HashSet<u64>,
    report: ConvertReport,
}

impl<W: Write> Emitter<W> {
    fn add(
        &mut self,
        ts: u64,
        tracking: u16,
        order_ref: u64,
        side: Side,
        shares: u64,
        price: u32,
    ) -> io::Result<()> {
        self.w.write(&AddOrder {
            hdr: header(AddOrder::TYPE, STOCK_LOCATE, tracking, ts),
            order_ref: BeU64::new(order_ref),
            side: side.as_byte(),
            shares: BeU32::new(clamp_shares(shares)),
            stock: self.stock,
            price: BeU32::new(price),
        })
    }

    fn cancel(&mut self, ts: u64, tracking: u16, order_ref: u64, shares: u64) -> io::Result<()> {
        self.w.write(&OrderCancel {
            hdr: header(OrderCancel::TYPE, STOCK_LOCATE, tracking, ts),
            order_ref: BeU64::new(order_ref),
            cancelled_shares: BeU32::new(clamp_shares(shares)),
        })
    }

    fn delete(&mut self, ts: u64, tracking: u16, order_ref: u64) -> io::Result<()> {
        self.w.write(&OrderDelete {
            hdr: header(OrderDelete::TYPE, STOCK_LOCATE, tracking, ts),
            order_ref: BeU64::new(order_ref),
        })
    }

    fn next_match(&mut self) -> BeU64 {
        self.match_number += 1;
        BeU64::new(self.match_number)
    }

    /// Shares resting at a price: its pool order plus the submitted orders there.
    fn total(&self, s: usize, p: u32) -> u64 {
        let pool = self.pool[s].get(&p).map_or(0, |o| o.remaining);
        let ids = self.at_price[s].get(&p).map_or(&[][..], |v| v.as_slice());
        pool + ids
            .iter()
            .filter_map(|id| self.live.get(id))
            .map(|o| o.remaining)
            .sum::<u64>()
    }

    fn forget_live(&mut self, id: u64) {
        if let Some(o) = self.live.remove(&id) {
            let s = si(o.side);
            if let Some(v) = self.at_price[s].get_mut(&o.price) {
                v.retain(|&x| x != id);
                if v.is_empty() {
                    self.at_price[s].remove(&o.price);
                }
            }
        }
    }

    /// Removes up to `want` shares from a submitted order as a correction; returns shares removed.
    fn trim_live(&mut self, ts: u64, id: u64, want: u64) -> io::Result<u64> {
        let Some(o) = self.live.get_mut(&id) else {
            return Ok(0);
        };
        let take = o.remaining.min(want);
        if take == 0 {
            return Ok(0);
        }
        o.remaining -= take;
        let (r, gone) = (o.order_ref, o.remaining == 0);
        if gone {
            self.forget_live(id);
        }
        self.write_trim(ts, r, take, gone)
    }

    /// Removes up to `want` shares from a price's pool order as a correction; returns shares removed.
    fn trim_pool(&mut self, ts: u64, s: usize, p: u32, want: u64) -> io::Result<u64> {
        let Some(o) = self.pool[s].get_mut(&p) else {
            return Ok(0);
        };
        let take = o.remaining.min(want);
        if take == 0 {
            return Ok(0);
        }
        o.remaining -= take;
        let (r, gone) = (o.order_ref, o.remaining == 0);
        if gone {
            self.pool[s].remove(&p);
        }
        self.write_trim(ts, r, take, gone)
    }

    /// Writes the correction that took `take` shares off order `r`: a delete when nothing is
    /// left (`gone`), a cancel otherwise; returns `take`.
    fn write_trim(&mut self, ts: u64, r: u64, take: u64, gone: bool) -> io::Result<u64> {
        if gone {
            self.delete(ts, TRACKING_CORRECTION, r)?;
        } else {
            self.cancel(ts, TRACKING_CORRECTION, r, take)?;
        }
        self.report.correction_messages += 1;
        Ok(take)
    }

    /// Adds shares no order explains to a price's pool: a replace of the pool order by a larger one
    /// (keeping one pool order per price), or a new one.
    fn grow(&mut self, ts: u64, side: Side, p: u32, add: u64) -> io::Result<()> {
        let s = si(side);
        let new_ref = self.refs.take();
        match self.pool[s].get_mut(&p) {
            Some(o) => {
                let shares = o.remaining + add;
                if shares > u32::MAX as u64 {
                    self.report.inconsistencies += 1;
                }
                let old = o.order_ref;
                *o = Live {
                    order_ref: new_ref,
                    side,
                    price: p,
                    remaining: shares.min(u32::MAX as u64),
                };
                self.w.write(&OrderReplace {
                    hdr: header(OrderReplace::TYPE, STOCK_LOCATE, TRACKING_CORRECTION, ts),
                    original_order_ref: BeU64::new(old),
                    new_order_ref: BeU64::new(new_ref),
                    shares: BeU32::new(clamp_shares(shares)),
                    price: BeU32::new(p),
                })?;
            }
            None => {
                self.pool[s].insert(
                    p,
                    Live {
                        order_ref: new_ref,
                        side,
                        price: p,
                        remaining: add.min(u32::MAX as u64),
                    },
                );
                self.add(ts, TRACKING_CORRECTION, new_ref, side, add, p)?;
            }
        }
        self.report.correction_messages += 1;
        Ok(())
    }

    /// Submitted orders at a price, newest first, with their remaining shares, the shares later
    /// events take from them, and whether their last event is a delete.
    fn orders_at(&self, s: usize, p: u32) -> Vec<(u64, u64, u64, bool)> {
        let ids = self.at_price[s].get(&p).map_or(&[][..], |v| v.as_slice());
        ids.iter()
            .rev()
            .filter_map(|id| {
                let o = self.live.get(id)?;
                let fut = self.future_use.get(id).copied().unwrap_or(0);
                Some((*id, o.remaining, fut, self.closes.contains(id)))
            })
            .collect()
    }

    /// Brings a price to `target` shares after unrecorded changes. The split matters for later
    /// events. An order whose last event deletes it has lost, somewhere out of view, whatever that
    /// delete will not find: those shares go first, always. The pool must keep at least what later
    /// events on unknown ids take there. Any other gain goes to the pool. Any other loss comes first
    /// from what no later event needs, in this order: pool shares beyond that need, submitted
    /// orders no later event names, then the part of the other submitted orders that later events
    /// leave untouched (orders newest first). Only after that does it come from the rest of the pool
    /// and of the orders. The cuts to submitted orders are written first, then one change to the
    /// pool order.
    fn rebalance(&mut self, k: usize, ts: u64, side: Side, p: u32, target: u64) -> io::Result<()> {
        let s = si(side);
        let pool = self.pool[s].get(&p).map_or(0, |o| o.remaining);
        let need = self.need(s, p, k);
        let orders = self.orders_at(s, p);
        let mut cut: Vec<u64> = orders
            .iter()
            .map(|&(_, rem, fut, closes)| if closes { rem.saturating_sub(fut) } else { 0 })
            .collect();
        let live_total: u64 = orders.iter().map(|o| o.1).sum::<u64>() - cut.iter().sum::<u64>();

        let mut pool_final = pool.max(need);
        let mut excess = match (pool_final + live_total).checked_sub(target) {
            Some(x) => x,
            None => {
                pool_final = target - live_total;
                0
            }
        };
        let mut from_orders = |excess: &mut u64, cap: &dyn Fn(u64, u64) -> u64| {
            for (c, &(_, rem, fut, _)) in cut.iter_mut().zip(&orders) {
                let take = cap(rem, fut).saturating_sub(*c).min(*excess);
                *c += take;
                *excess -= take;
            }
        };
        let spare = pool_final.saturating_sub(need).min(excess);
        pool_final -= spare;
        excess -= spare;
        from_orders(&mut excess, &|rem, fut| if fut == 0 { rem } else { 0 });
        from_orders(&mut excess, &|rem, fut| rem.saturating_sub(fut));
        let more = pool_final.min(excess);
        pool_final -= more;
        excess -= more;
        from_orders(&mut excess, &|rem, _| rem);
        if excess > 0 {
            self.report.inconsistencies += 1;
        }

        for (&(id, ..), take) in orders.iter().zip(cut) {
            self.trim_live(ts, id, take)?;
        }
        if pool_final > pool {
            self.grow(ts, side, p, pool_final - pool)?;
        } else {
            self.trim_pool(ts, s, p, pool - pool_final)?;
        }
        Ok(())
    }

    /// Shares the pool at `p` must hold when row `k` brings the price back into view.
    fn need(&self, s: usize, p: u32, k: usize) -> u64 {
        let Some(v) = self.needs[s].get(&p) else {
            return 0;
        };
        v.binary_search_by_key(&k, |&(row, _)| row)
            .map_or(0, |i| v[i].1)
    }

    /// Before event `k` (whose row is `cur`), brings every price that `cur` covers and `prev` did
    /// not to what `cur` shows there, minus the event's own effect.
    fn correct(
        &mut self,
        k: usize,
        e: &Event,
        prev: &BookRow,
        cur: &BookRow,
        n: usize,
    ) -> io::Result<()> {
        for side in SIDES {
            let s = si(side);
            let Some((lo, hi)) = newly_covered(prev.side(side), cur.side(side), n, side) else {
                continue;
            };
            let shown = cur.side(side);
            let mut prices: BTreeSet<u32> = shown
                .iter()
                .map(|l| l.price)
                .filter(|p| (lo..=hi).contains(p))
                .collect();
            prices.extend(self.pool[s].range(lo..=hi).map(|(&p, _)| p));
            prices.extend(self.at_price[s].range(lo..=hi).map(|(&p, _)| p));
            for p in prices {
                let now = shown
                    .iter()
                    .find(|l| l.price == p)
                    .map_or(0, |l| l.shares as i64);
                let own = match (e.side == Some(side) && e.price4() == p, e.kind) {
                    (true, EventKind::Submit) => e.size as i64,
                    (true, k) if k.changes_book() => -(e.size as i64),
                    _ => 0,
                };
                let target = now.saturating_sub(own);
                if target < 0 {
                    self.report.inconsistencies += 1;
                }
                let (target, total) = (target.max(0) as u64, self.total(s, p));
                let pool = self.pool[s].get(&p).map_or(0, |o| o.remaining);
                let need = self.need(s, p, k);
                // A changed total, or a pool short of what later events take here, means orders
                // came and went out of view.
                let doomed = self.orders_at(s, p).iter().any(|o| o.3 && o.1 > o.2);
                if target == total && pool >= need.min(target) && !doomed {
                    continue;
                }
                let written = self.report.correction_messages;
                self.rebalance(k, e.time_ns, side, p, target)?;
                if self.report.correction_messages > written {
                    self.report.corrected_levels += 1;
                    self.report.silent_shares_added += target.saturating_sub(total);
                    self.report.silent_shares_removed += total.saturating_sub(target);
                }
            }
        }
        Ok(())
    }

    /// Writes the one message of event `e`.
    fn event(&mut self, e: &Event, halted: &mut bool) -> io::Result<()> {
        let ts = e.time_ns;
        let side = e.side.unwrap_or(Side::Buy);
        let s = si(side);
        let p = e.price4();
        match e.kind {
            EventKind::Submit => {
                let order_ref = self.refs.itch_ref(e.id);
                let order = Live {
                    order_ref,
                    side,
                    price: p,
                    remaining: e.size,
                };
                if self.live.contains_key(&e.id) {
                    self.report.inconsistencies += 1;
                    self.forget_live(e.id);
                }
                self.live.insert(e.id, order);
                self.at_price[s].entry(p).or_default().push(e.id);
                self.add(ts, TRACKING_EVENT, order_ref, side, e.size, p)?;
            }
            EventKind::PartialCancel | EventKind::Delete | EventKind::VisibleExecution => {
                let (target, pool) = match self.live.get_mut(&e.id) {
                    Some(o) => (Some(o), false),
                    None => (self.pool[s].get_mut(&p), true),
                };
                let (order_ref, gone) = match target {
                    Some(o) => {
                        if o.price != p || o.side != side || o.remaining < e.size {
                            self.report.inconsistencies += 1;
                        }
                        o.remaining -= o.remaining.min(e.size);
                        (o.order_ref, o.remaining == 0)
                    }
                    // Nothing rests there to take from: still one message, naming a reference
                    // no order has (0), so a replay counts it as unknown.
                    None => {
                        self.report.inconsistencies += 1;
                        (0, false)
                    }
                };
                if let Some(f) = self.future_use.get_mut(&e.id) {
                    *f = f.saturating_sub(e.size);
                }
                if pool {
                    self.report.presample_events += 1;
                }
                match e.kind {
                    EventKind::VisibleExecution => {
                        let match_number = self.next_match();
                        self.w.write(&OrderExecuted {
                            hdr: header(OrderExecuted::TYPE, STOCK_LOCATE, TRACKING_EVENT, ts),
                            order_ref: BeU64::new(order_ref),
                            executed_shares: BeU32::new(e.shares()),
                            match_number,
                        })?;
                    }
                    EventKind::Delete if gone => self.delete(ts, TRACKING_EVENT, order_ref)?,
                    EventKind::Delete => {
                        // A total delete of a submitted order must remove all of it.
                        if !pool {
                            self.report.inconsistencies += 1;
                        }
                        self.report.deletes_as_cancels += 1;
                        self.cancel(ts, TRACKING_EVENT, order_ref, e.size)?;
                    }
                    _ => self.cancel(ts, TRACKING_EVENT, order_ref, e.size)?,
                }
                if gone {
                    if pool {
                        self.pool[s].remove(&p);
                    } else {
                        self.forget_live(e.id);
                    }
                }
            }
            EventKind::HiddenExecution => {
                let match_number = self.next_match();
                self.w.write(&Trade {
                    hdr: header(Trade::TYPE, STOCK_LOCATE, TRACKING_EVENT, ts),
                    order_ref: BeU64::new(e.id),
                    side: side.as_byte(),
                    shares: BeU32::new(e.shares()),
                    stock: self.stock,
                    price: BeU32::new(p),
                    match_number,
                })?;
            }
            EventKind::Cross => {
                let cross_type = if *halted {
                    b'H'
                } else if ts < NOON_NS {
                    b'O'
                } else {
                    b'C'
                };
                let match_number = self.next_match();
                self.w.write(&CrossTrade {
                    hdr: header(CrossTrade::TYPE, STOCK_LOCATE, TRACKING_EVENT, ts),
                    shares: BeU64::new(e.size),
                    stock: self.stock,
                    cross_price: BeU32::new(p),
                    match_number,
                    cross_type,
                })?;
            }
            EventKind::Halt => {
                let trading_state = match e.price {
                    -1 => b'H',
                    0 => b'Q',
                    _ => b'T',
                };
                *halted |= trading_state == b'H';
                self.w.write(&StockTradingAction {
                    hdr: header(StockTradingAction::TYPE, STOCK_LOCATE, TRACKING_EVENT, ts),
                    stock: self.stock,
                    trading_state,
                    reserved: b' ',
                    reason: *b"    ",
                })?;
            }
        }
        Ok(())
    }
}

const NOON_NS: u64 = 12 * 3600 * 1_000_000_000;

fn clamp_shares(shares: u64) -> u32 {
    shares.min(u32::MAX as u64) as u32
}

/// Converts parsed LOBSTER data and writes the ITCH messages to `out` (see the module doc).
/// Returns the writer, flushed, and the report.
///
/// # Errors
/// [`LobsterError::RowCount`] when the files' row counts differ, [`LobsterError::Empty`] for no
/// events, [`LobsterError::Date`] / [`LobsterError::Symbol`] for a bad date or symbol, and
/// [`LobsterError::Io`] when writing fails.
pub fn convert_parsed<W: Write>(
    messages: &Messages,
    book: &OrderBook,
    symbol: &str,
    date: &str,
    out: W,
) -> Result<(W, ConvertReport), LobsterError> {
    validate_date(date)?;
    let stock = symbol_field(symbol)
        .filter(|_| symbol.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| LobsterError::Symbol(symbol.to_string()))?;
    let events = &messages.events;
    let (first, last) = check_rows(messages, book)?;
    let t0 = first.time_ns;

    let seeds = derive_seeds(events, book);
    let refs = Refs::new(events);
    let seed_ref_base = refs.peek();
    let report = ConvertReport {
        symbol: symbol.to_string(),
        date: date.to_string(),
        stock_locate: STOCK_LOCATE,
        events: events.len() as u64,
        levels: book.levels,
        messages_written: 0,
        header_messages: HEADER_MESSAGES,
        seeded_levels: 0,
        deep_levels_seeded: 0,
        unrevealed_levels_seeded: 0,
        seeded_shares: 0,
        seed_ref_base,
        presample_events: 0,
        deletes_as_cancels: 0,
        corrected_levels: 0,
        correction_messages: 0,
        silent_shares_added: 0,
        silent_shares_removed: 0,
        inconsistencies: seeds.inconsistencies,
        types: TypeCounts::of(events),
        first_ns: t0,
        last_ns: last.time_ns,
    };
    let mut future_use: HashMap<u64, u64> = HashMap::new();
    let mut closes = HashSet::new();
    for e in events
        .iter()
        .filter(|e| e.kind.changes_book() && e.kind != EventKind::Submit)
    {
        *future_use.entry(e.id).or_default() += e.size;
        if e.kind == EventKind::Delete {
            closes.insert(e.id);
        } else {
            closes.remove(&e.id);
        }
    }
    let mut em = Emitter {
        w: FrameWriter::new(out),
        stock,
        match_number: 0,
        refs,
        live: HashMap::new(),
        at_price: Default::default(),
        pool: Default::default(),
        needs: pool_needs(events, book, &seeds.unknown),
        future_use,
        closes,
        report,
    };

    em.w.write(&SystemEvent {
        hdr: header(SystemEvent::TYPE, 0, TRACKING_SEED, t0),
        event_code: b'O',
    })?;
    em.w.write(&StockDirectory {
        hdr: header(StockDirectory::TYPE, STOCK_LOCATE, TRACKING_SEED, t0),
        stock,
        market_category: b' ',
        financial_status: b' ',
        round_lot_size: BeU32::new(100),
        round_lots_only: b'N',
        issue_classification: b' ',
        issue_subtype: *b"  ",
        authenticity: b'P',
        short_sale_threshold: b' ',
        ipo_flag: b' ',
        luld_tier: b' ',
        etp_flag: b' ',
        etp_leverage_factor: BeU32::new(0),
        inverse_indicator: b' ',
    })?;

    em.seed(&seeds, t0)?;

    let mut halted = false;
    for (k, e) in events.iter().enumerate() {
        if k > 0 {
            em.correct(k, e, &book.rows[k - 1], &book.rows[k], book.levels)?;
        }
        em.event(e, &mut halted)?;
    }
    em.report.messages_written = em.w.messages();
    let w = em.w.finish()?;
    Ok((w, em.report))
}

/// The pair's rows agree in number, there is at least one, and each event is valid: the first
/// and last events.
fn check_rows<'a>(
    messages: &'a Messages,
    book: &OrderBook,
) -> Result<(&'a Event, &'a Event), LobsterError> {
    let events = &messages.events;
    if events.len() != book.rows.len() {
        let (file, line) = if events.len() > book.rows.len() {
            (&messages.file, book.rows.len() + 1)
        } else {
            (&book.file, events.len() + 1)
        };
        return Err(LobsterError::RowCount {
            messages_file: messages.file.clone(),
            messages: events.len(),
            orderbook_file: book.file.clone(),
            orderbook: book.rows.len(),
            file: file.clone(),
            line,
        });
    }
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return Err(LobsterError::Empty(messages.file.clone()));
    };
    for (k, e) in events.iter().enumerate() {
        e.validate().map_err(|reason| LobsterError::Row {
            file: messages.file.clone(),
            line: k + 1,
            reason,
        })?;
    }
    Ok((first, last))
}

impl<W: Write> Emitter<W> {
    /// The seeded book at `t0`: asks from the touch up, then bids from the touch down.
    fn seed(&mut self, seeds: &Seeds, t0: u64) -> Result<(), LobsterError> {
        for side in [Side::Sell, Side::Buy] {
            let s = si(side);
            let levels: Vec<(u32, (u64, Origin))> = match side {
                Side::Sell => seeds.levels[s].iter().map(|(&p, &v)| (p, v)).collect(),
                Side::Buy => seeds.levels[s]
                    .iter()
                    .rev()
                    .map(|(&p, &v)| (p, v))
                    .collect(),
            };
            for (price, (size, origin)) in levels {
                // An ITCH order holds at most u32::MAX shares.
                let shares = size.min(u32::MAX as u64);
                if shares < size {
                    self.report.inconsistencies += 1;
                }
                let r = self.refs.take();
                self.add(t0, TRACKING_SEED, r, side, shares, price)?;
                self.pool[s].insert(
                    price,
                    Live {
                        order_ref: r,
                        side,
                        price,
                        remaining: shares,
                    },
                );
                self.report.seeded_shares += shares;
                match origin {
                    Origin::FirstRow => self.report.seeded_levels += 1,
                    Origin::Revealed => self.report.deep_levels_seeded += 1,
                    Origin::Unrevealed => self.report.unrevealed_levels_seeded += 1,
                }
            }
        }
        Ok(())
    }
}

/// Converts a LOBSTER message/order-book file pair for `symbol` on `date` (`YYYY-MM-DD`) into an
/// ITCH 5.0 BinaryFILE at `out` (see the module doc for the mapping and the seeding method).
///
/// # Errors
/// Unreadable or non-UTF-8 input, any [`LobsterError`] (malformed rows name the file and line), and
/// failure to create or write `out`.
///
/// # Examples
/// ```no_run
/// use std::path::Path;
/// let report = tickwatch::lobster::convert(
///     Path::new("AAPL_2012-06-21_34200000_57600000_message_10.csv"),
///     Path::new("AAPL_2012-06-21_34200000_57600000_orderbook_10.csv"),
///     "AAPL",
///     "2012-06-21",
///     Path::new("aapl.itch"),
/// )?;
/// println!("{} events, {} deep levels", report.events, report.deep_levels_seeded);
/// # Ok::<(), tickwatch::lobster::LobsterError>(())
/// ```
pub fn convert(
    messages: &Path,
    orderbook: &Path,
    symbol: &str,
    date: &str,
    out: &Path,
) -> Result<ConvertReport, LobsterError> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|source| LobsterError::Read {
            path: p.display().to_string(),
            source,
        })
    };
    let msgs = Messages::parse(&read(messages)?, &messages.display().to_string())?;
    let book = OrderBook::parse(&read(orderbook)?, &orderbook.display().to_string())?;
    validate_date(date)?;
    let file = File::create(out).map_err(|source| LobsterError::Create {
        path: out.display().to_string(),
        source,
    })?;
    let (_, report) = convert_parsed(&msgs, &book, symbol, date, BufWriter::new(file))?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_parse_exactly() {
        assert_eq!(parse_seconds("34200.004241176"), Some(34_200_004_241_176));
        assert_eq!(parse_seconds("34200.00426064"), Some(34_200_004_260_640));
        assert_eq!(parse_seconds("34200"), Some(34_200_000_000_000));
        assert_eq!(parse_seconds("1.1234567890"), Some(1_123_456_789));
        assert_eq!(parse_seconds("1.1234567891"), None);
        assert_eq!(parse_seconds("1."), None);
        assert_eq!(parse_seconds("-1.5"), None);
        assert_eq!(parse_seconds("1e3"), None);
        assert_eq!(parse_seconds("999999999"), None);
    }

    #[test]
    fn dates() {
        assert!(validate_date("2012-06-21").is_ok());
        assert!(validate_date("2012-02-29").is_ok());
        assert!(validate_date("1900-02-29").is_err());
        assert!(validate_date("2012-13-01").is_err());
        assert!(validate_date("2012-6-21").is_err());
        assert!(validate_date("2012-06-2x").is_err());
        assert!(validate_date("2012-06-00").is_err());
    }

    fn lv(prices: &[u32]) -> Vec<Level> {
        prices
            .iter()
            .map(|&price| Level { price, shares: 1 })
            .collect()
    }

    #[test]
    fn newly_covered_ranges() {
        // Bids, N = 2: the 2nd level drops from 98 to 95, so 95..=97 come into view.
        assert_eq!(
            newly_covered(&lv(&[99, 98]), &lv(&[98, 95]), 2, Side::Buy),
            Some((95, 97))
        );
        // Moving the other way reveals nothing.
        assert_eq!(
            newly_covered(&lv(&[98, 95]), &lv(&[99, 98]), 2, Side::Buy),
            None
        );
        // The side runs short of N levels: everything below the old 2nd level is in view.
        assert_eq!(
            newly_covered(&lv(&[99, 98]), &lv(&[99]), 2, Side::Buy),
            Some((0, 97))
        );
        // A previous row short of N levels covered everything already.
        assert_eq!(
            newly_covered(&lv(&[99]), &lv(&[99, 90]), 2, Side::Buy),
            None
        );
        // Asks mirror bids.
        assert_eq!(
            newly_covered(&lv(&[101, 102]), &lv(&[102, 105]), 2, Side::Sell),
            Some((103, 105))
        );
        assert_eq!(
            newly_covered(&lv(&[101, 102]), &[], 2, Side::Sell),
            Some((103, u32::MAX))
        );
        assert_eq!(newly_covered(&[], &[], 0, Side::Sell), None);
    }

    #[test]
    fn events_are_validated() {
        let ok = Event {
            time_ns: 1,
            kind: EventKind::Submit,
            id: 1,
            size: 10,
            price: 100,
            side: Some(Side::Buy),
        };
        assert!(ok.validate().is_ok());
        assert!(Event { size: 0, ..ok }.validate().is_err());
        assert!(Event { price: -5, ..ok }.validate().is_err());
        assert!(Event { side: None, ..ok }.validate().is_err());
        assert!(Event {
            time_ns: 1 << 48,
            ..ok
        }
        .validate()
        .is_err());
        let halt = Event {
            kind: EventKind::Halt,
            side: None,
            price: 1,
            size: 0,
            ..ok
        };
        assert!(halt.validate().is_ok());
        assert!(Event { price: 2, ..halt }.validate().is_err());
    }
}
