//! Per-stock bars: OHLC, volume, VWAP, trade and message counts, and the order-to-trade ratio.

use super::stats::TouchStats;
use crate::book::Books;
use crate::itch::{Message, Side};
use std::io::{self, Write};

/// A stock's top of book: best bid and offer, price (1/10,000 dollars) and shares; 0 for an empty
/// side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Touch {
    /// Best bid price.
    pub bid: u32,
    /// Shares at the best bid.
    pub bid_shares: u64,
    /// Best offer price.
    pub ask: u32,
    /// Shares at the best offer.
    pub ask_shares: u64,
}

impl Touch {
    /// The touch of `locate` in `books`.
    #[inline(always)]
    pub fn of(books: &Books, locate: u16) -> Touch {
        let b = books.best(locate, Side::Buy);
        let a = books.best(locate, Side::Sell);
        Touch {
            bid: b.map_or(0, |l| l.price),
            bid_shares: b.map_or(0, |l| l.shares),
            ask: a.map_or(0, |l| l.price),
            ask_shares: a.map_or(0, |l| l.shares),
        }
    }

    /// The bid as (price, shares), `None` when the side is empty.
    pub fn bid(&self) -> Option<(u32, u64)> {
        (self.bid_shares > 0).then_some((self.bid, self.bid_shares))
    }

    /// The offer as (price, shares), `None` when the side is empty.
    pub fn ask(&self) -> Option<(u32, u64)> {
        (self.ask_shares > 0).then_some((self.ask, self.ask_shares))
    }
}

/// Message kinds counted per window ([`Bar::by_kind`]), indexed by [`kind_of`].
pub const KINDS: [&str; 8] = [
    "adds",
    "executions",
    "cancels",
    "deletes",
    "replaces",
    "prints",
    "crosses",
    "other",
];

/// The [`KINDS`] index of an ITCH type letter: adds (A, F), executions (E, C), cancels (X),
/// deletes (D), replaces (U), prints (P), crosses (Q), other.
#[inline(always)]
pub fn kind_of(t: u8) -> u8 {
    match t {
        b'A' | b'F' => 0,
        b'E' | b'C' => 1,
        b'X' => 2,
        b'D' => 3,
        b'U' => 4,
        b'P' => 5,
        b'Q' => 6,
        _ => 7,
    }
}

/// The market participant (MPID) a message is attributed to: an attributed add's (F), and for an
/// execution, cancel, delete or replace the attribution of the order it names (so a participant's
/// orders carry their MPID through their whole life). `None` for anonymous orders and other
/// messages. Call it *before* applying `msg` (the order may be gone after).
#[inline]
pub fn participant_of(msg: &Message<'_>, books: &Books) -> Option<[u8; 4]> {
    let locate = msg.stock_locate();
    let order = |r: u64| books.orders().get(r, locate).map(|o| o.mpid);
    let mpid = match *msg {
        Message::AddOrderMpid(m) => Some(m.attribution),
        Message::OrderExecuted(m) => order(m.order_ref.get()),
        Message::OrderExecutedWithPrice(m) => order(m.order_ref.get()),
        Message::OrderCancel(m) => order(m.order_ref.get()),
        Message::OrderDelete(m) => order(m.order_ref.get()),
        Message::OrderReplace(m) => order(m.original_order_ref.get()),
        _ => None,
    };
    mpid.filter(|m| *m != [0; 4])
}

/// What one message contributes to a [`Bar`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BarInput {
    /// [`BarInput::TRADE`], [`BarInput::ORDER`] or 0 (any other message of the stock).
    pub class: u8,
    /// Its [`KINDS`] index.
    pub kind: u8,
    /// Trade price, 1/10,000 dollars (trades only).
    pub price: u32,
    /// Traded shares (trades only).
    pub shares: u64,
    /// Shares of an order message (RTS 9 volume): a new order's or a replacement's size, the
    /// shares cancelled, the shares a delete removed.
    pub order_shares: u64,
    /// The stock's touch after this message, when the message changed it (set by the caller,
    /// which applies the message to the books).
    pub touch: Option<Touch>,
}

impl BarInput {
    /// A trade: an execution (E), a printable execution with price (C), a non-cross trade (P) or
    /// a cross (Q).
    pub const TRADE: u8 = 1;
    /// An order message in the sense of MiFID II RTS 9: a new order (A, F), a modification (U),
    /// a cancellation (X, D).
    pub const ORDER: u8 = 2;

    /// Classifies `msg` for its stock's bar. Call it *before* applying `msg` to `books`: an
    /// execution (E) trades at the resting order's price, looked up here, and the order may be
    /// gone after the update. An execution of an order the books do not know is a trade of
    /// unknown price: it counts as a message only (the books count the unknown reference).
    #[inline]
    pub fn classify(msg: &Message<'_>, books: &Books) -> BarInput {
        let kind = kind_of(msg.msg_type());
        let trade = |price: u32, shares: u64| BarInput {
            class: Self::TRADE,
            kind,
            price,
            shares,
            ..BarInput::default()
        };
        let order = |shares: u64| BarInput {
            class: Self::ORDER,
            kind,
            order_shares: shares,
            ..BarInput::default()
        };
        let other = BarInput {
            kind,
            ..BarInput::default()
        };
        match *msg {
            Message::OrderExecuted(m) => match books
                .orders()
                .get(m.order_ref.get(), m.hdr.stock_locate.get())
            {
                Some(o) => trade(o.price, u64::from(m.executed_shares.get())),
                None => other,
            },
            Message::OrderExecutedWithPrice(m) if m.printable == b'Y' => {
                trade(m.execution_price.get(), u64::from(m.executed_shares.get()))
            }
            Message::Trade(m) => trade(m.price.get(), u64::from(m.shares.get())),
            Message::CrossTrade(m) => trade(m.cross_price.get(), m.shares.get()),
            Message::AddOrder(m) => order(u64::from(m.shares.get())),
            Message::AddOrderMpid(m) => order(u64::from(m.shares.get())),
            Message::OrderReplace(m) => order(u64::from(m.shares.get())),
            Message::OrderCancel(m) => order(u64::from(m.cancelled_shares.get())),
            Message::OrderDelete(m) => order(
                books
                    .orders()
                    .get(m.order_ref.get(), m.hdr.stock_locate.get())
                    .map_or(0, |o| u64::from(o.shares)),
            ),
            _ => other,
        }
    }
}

/// One stock's activity over a window. Open and close are the trades with the earliest and latest
/// event time (the first and last in feed order among equal times), so panes merge in any order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bar {
    /// Event time of the open trade (`u64::MAX` when no trade).
    pub open_ts: u64,
    /// Event time of the close trade.
    pub close_ts: u64,
    /// First trade price (1/10,000 dollars).
    pub open: u32,
    /// Highest trade price.
    pub high: u32,
    /// Lowest trade price (`u32::MAX` when no trade).
    pub low: u32,
    /// Last trade price.
    pub close: u32,
    /// Shares traded.
    pub volume: u64,
    /// Σ price × shares, in 1/10,000 dollars.
    pub notional: u128,
    /// Trades: E, printable C, P and Q.
    pub trades: u32,
    /// Every message of the stock.
    pub messages: u32,
    /// Order messages (A, F, U, X, D) for the order-to-trade ratio.
    pub orders: u32,
    /// Shares of those order messages, for the volume order-to-trade ratio.
    pub order_volume: u64,
    /// Messages by [`KINDS`].
    pub by_kind: [u32; 8],
    /// Spread, mid and size imbalance at each change of the touch.
    pub touch: TouchStats,
}

impl Default for Bar {
    fn default() -> Bar {
        Bar::EMPTY
    }
}

impl Bar {
    /// A bar with no messages.
    pub const EMPTY: Bar = Bar {
        open_ts: u64::MAX,
        close_ts: 0,
        open: 0,
        high: 0,
        low: u32::MAX,
        close: 0,
        volume: 0,
        notional: 0,
        trades: 0,
        messages: 0,
        orders: 0,
        order_volume: 0,
        by_kind: [0; 8],
        touch: TouchStats::EMPTY,
    };

    /// Adds one message stamped `ts`.
    #[inline(always)]
    pub fn add(&mut self, x: &BarInput, ts: u64) {
        self.messages += 1;
        self.orders += (x.class == BarInput::ORDER) as u32;
        self.order_volume += x.order_shares;
        self.by_kind[(x.kind & 7) as usize] += 1;
        if let Some(t) = &x.touch {
            self.touch.add(t.bid(), t.ask());
        }
        if x.class == BarInput::TRADE {
            self.trades += 1;
            self.volume += x.shares;
            self.notional += u128::from(x.price) * u128::from(x.shares);
            self.high = self.high.max(x.price);
            self.low = self.low.min(x.price);
            if ts < self.open_ts {
                self.open_ts = ts;
                self.open = x.price;
            }
            if ts >= self.close_ts {
                self.close_ts = ts;
                self.close = x.price;
            }
        }
    }

    /// Folds in a bar of the same stock (another pane of the window); `other` is later in feed
    /// order on ties of event time.
    #[inline]
    pub fn merge(&mut self, other: &Bar) {
        self.messages += other.messages;
        self.orders += other.orders;
        self.order_volume += other.order_volume;
        for (a, b) in self.by_kind.iter_mut().zip(&other.by_kind) {
            *a += b;
        }
        self.touch.merge(&other.touch);
        if other.trades == 0 {
            return;
        }
        self.trades += other.trades;
        self.volume += other.volume;
        self.notional += other.notional;
        self.high = self.high.max(other.high);
        self.low = self.low.min(other.low);
        if other.open_ts < self.open_ts {
            self.open_ts = other.open_ts;
            self.open = other.open;
        }
        if other.close_ts >= self.close_ts {
            self.close_ts = other.close_ts;
            self.close = other.close;
        }
    }

    /// VWAP in millionths of a dollar, rounded half up (`None` without volume).
    pub fn vwap_e6(&self) -> Option<u128> {
        (self.volume > 0).then(|| {
            let v = u128::from(self.volume);
            (self.notional * 200 + v) / (2 * v)
        })
    }

    /// Order-to-trade ratio (RTS 9, number of orders ÷ trades) in ten-thousandths, rounded half
    /// up (`None` without trades).
    pub fn otr_e4(&self) -> Option<u64> {
        (self.trades > 0).then(|| {
            let t = u64::from(self.trades);
            (u64::from(self.orders) * 20_000 + t) / (2 * t)
        })
    }

    /// Volume order-to-trade ratio (RTS 9: shares of order messages ÷ shares traded) in
    /// ten-thousandths, rounded half up (`None` without volume).
    pub fn otr_volume_e4(&self) -> Option<u128> {
        (self.volume > 0).then(|| {
            let v = u128::from(self.volume);
            (u128::from(self.order_volume) * 20_000 + v) / (2 * v)
        })
    }
}

impl crate::window::Aggregate for Bar {
    type Input = BarInput;

    fn empty() -> Bar {
        Bar::EMPTY
    }

    #[inline(always)]
    fn add(&mut self, x: &BarInput, ts: u64) {
        Bar::add(self, x, ts);
    }

    #[inline]
    fn merge(&mut self, other: &Bar) {
        Bar::merge(self, other);
    }
}

/// How `tickwatch bars` writes rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum BarFormat {
    /// Comma-separated, one header line.
    #[default]
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// What a bar row is about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum BarKey {
    /// One row per stock and window.
    #[default]
    Stock,
    /// One row per market participant (MPID of attributed orders) and window: their order
    /// messages, order volume, the executions of their resting orders (trades, volume, VWAP
    /// of their fills), and order-to-trade ratios. Touch statistics do not apply (empty).
    Participant,
}

/// The CSV header of [`write_bar`] for participant rows (the first column differs).
pub const CSV_HEADER_PARTICIPANT: &str = "participant,window_start_ns,open,high,low,close,\
volume,vwap,trades,messages,otr,otr_volume,adds,executions,cancels,deletes,replaces,prints,\
crosses,other,touch_changes,spread_mean,spread_sd,mid_mean,imbalance_mean,locked_crossed,late";

/// The CSV header of [`write_bar`].
pub const CSV_HEADER: &str = "symbol,window_start_ns,open,high,low,close,volume,vwap,trades,\
messages,otr,otr_volume,adds,executions,cancels,deletes,replaces,prints,crosses,other,\
touch_changes,spread_mean,spread_sd,mid_mean,imbalance_mean,locked_crossed,late";

/// Most bytes one row takes (27 short fields, JSON keys included, are well under it): a caller
/// that keeps this much spare capacity in its buffer never makes [`write_bar`] allocate.
pub const MAX_ROW: usize = 2048;

/// One output row, appended to the caller's buffer: integers by `itoa`, decimals and floats as
/// fixed-point integers (no `core::fmt`: its exact float formatting alone cost more than a
/// microsecond per row).
struct Row<'a> {
    buf: &'a mut Vec<u8>,
    json: bool,
}

impl Row<'_> {
    #[inline]
    fn raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    #[inline]
    fn key(&mut self, k: &str) {
        if !self.json {
            self.buf.push(b',');
        } else {
            self.raw(b",\"");
            self.raw(k.as_bytes());
            self.raw(b"\":");
        }
    }

    #[inline]
    fn uint(&mut self, v: impl itoa::Integer) {
        self.raw(itoa::Buffer::new().format(v).as_bytes());
    }

    /// `v / 10^places` with exactly `places` decimals (u64 arithmetic whenever `v` fits: 128-bit
    /// division is a library call).
    fn dec(&mut self, v: u128, places: u32) {
        match u64::try_from(v) {
            Ok(v) => {
                let s = 10u64.pow(places);
                self.uint(v / s);
                self.frac(v % s, places);
            }
            Err(_) => {
                let s = 10u128.pow(places);
                self.uint(v / s);
                self.frac((v % s) as u64, places);
            }
        }
    }

    /// The fraction digits of [`Row::dec`], zero-padded to `places` (none when 0).
    fn frac(&mut self, f: u64, places: u32) {
        if places == 0 {
            return;
        }
        self.raw(b".");
        let mut b = itoa::Buffer::new();
        let digits = b.format(f).as_bytes();
        for _ in digits.len()..places as usize {
            self.raw(b"0");
        }
        self.raw(digits);
    }

    /// `v` rounded to `places` decimals (half away from zero), no sign on zero.
    fn fixed(&mut self, v: f64, places: u32) {
        let x = (v * 10f64.powi(places as i32)).round();
        if !x.is_finite() {
            self.null();
            return;
        }
        if x < 0.0 {
            self.raw(b"-");
        }
        self.dec(x.abs() as u128, places);
    }

    fn null(&mut self) {
        if self.json {
            self.raw(b"null");
        }
    }

    fn opt_dec(&mut self, v: Option<u128>, places: u32) {
        match v {
            Some(v) => self.dec(v, places),
            None => self.null(),
        }
    }

    fn opt_fixed(&mut self, v: Option<f64>, places: u32) {
        match v {
            Some(v) => self.fixed(v, places),
            None => self.null(),
        }
    }
}

/// Appends one bar row, newline included, to `out` (allocation-free while `out` has
/// [`MAX_ROW`] bytes of spare capacity). `late` marks an updated result of a window that had
/// already fired. Prices are decimals (4 places), VWAP 6 places, OTR 4 places, touch statistics
/// 4 places (prices in dollars); fields that need a trade (or a touch sample) are empty (CSV) or
/// `null` (JSONL) in a window without one.
pub fn format_bar(
    out: &mut Vec<u8>,
    format: BarFormat,
    key: BarKey,
    symbol: &[u8; 8],
    start: u64,
    bar: &Bar,
    late: bool,
) {
    let json = format == BarFormat::Jsonl;
    let mut r = Row { buf: out, json };
    let mut label = [0u8; 8];
    let mut n = 0;
    for &c in symbol.iter().take_while(|&&c| c != b' ' && c != 0) {
        // ITCH alphas are printable ASCII; anything else (or a JSON metacharacter) is shown as `?`.
        label[n] = if c.is_ascii_graphic() && c != b'"' && c != b'\\' {
            c
        } else {
            b'?'
        };
        n += 1;
    }
    if json {
        r.raw(match key {
            BarKey::Stock => b"{\"symbol\":\"",
            BarKey::Participant => b"{\"participant\":\"",
        });
        r.raw(&label[..n]);
        r.raw(b"\"");
        r.key("window_start_ns");
    } else {
        r.raw(&label[..n]);
        r.raw(b",");
    }
    r.uint(start);
    let traded = bar.trades > 0;
    for (k, p) in [
        ("open", bar.open),
        ("high", bar.high),
        ("low", bar.low),
        ("close", bar.close),
    ] {
        r.key(k);
        r.opt_dec(traded.then_some(u128::from(p)), 4);
    }
    r.key("volume");
    r.uint(bar.volume);
    r.key("vwap");
    r.opt_dec(bar.vwap_e6(), 6);
    r.key("trades");
    r.uint(bar.trades);
    r.key("messages");
    r.uint(bar.messages);
    r.key("otr");
    r.opt_dec(bar.otr_e4().map(u128::from), 4);
    r.key("otr_volume");
    r.opt_dec(bar.otr_volume_e4(), 4);
    for (k, n) in KINDS.iter().zip(&bar.by_kind) {
        r.key(k);
        r.uint(*n);
    }
    let t = &bar.touch;
    r.key("touch_changes");
    r.uint(t.samples());
    r.key("spread_mean");
    r.opt_fixed((t.spread.n > 0).then(|| t.spread.mean / 1e4), 4);
    r.key("spread_sd");
    r.opt_fixed(t.spread.stddev().map(|s| s / 1e4), 4);
    r.key("mid_mean");
    r.opt_fixed((t.mid.n > 0).then(|| t.mid.mean / 1e4), 4);
    r.key("imbalance_mean");
    r.opt_fixed((t.imbalance.n > 0).then_some(t.imbalance.mean), 4);
    r.key("locked_crossed");
    r.uint(t.locked_or_crossed);
    r.key("late");
    r.raw(match (json, late) {
        (true, true) => b"true}\n",
        (true, false) => b"false}\n",
        (false, true) => b"1\n",
        (false, false) => b"0\n",
    });
}

/// [`format_bar`] straight to a writer (one `write_all`; allocates its row buffer).
pub fn write_bar(
    w: &mut impl Write,
    format: BarFormat,
    key: BarKey,
    symbol: &[u8; 8],
    start: u64,
    bar: &Bar,
    late: bool,
) -> io::Result<()> {
    let mut row = Vec::with_capacity(MAX_ROW);
    format_bar(&mut row, format, key, symbol, start, bar, late);
    w.write_all(&row)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trade(price: u32, shares: u64) -> BarInput {
        BarInput {
            class: BarInput::TRADE,
            kind: 5,
            price,
            shares,
            ..BarInput::default()
        }
    }

    #[test]
    fn merge_equals_adding_everything_in_one_bar() {
        let xs = [
            (10, trade(100_0000, 10)),
            (11, BarInput::default()),
            (12, trade(101_5000, 5)),
            (
                13,
                BarInput {
                    class: BarInput::ORDER,
                    ..BarInput::default()
                },
            ),
            (14, trade(99_0000, 1)),
        ];
        let mut whole = Bar::EMPTY;
        for (ts, x) in &xs {
            whole.add(x, *ts);
        }
        // Panes merged out of order give the same bar.
        let (mut a, mut b) = (Bar::EMPTY, Bar::EMPTY);
        for (ts, x) in &xs[..2] {
            a.add(x, *ts);
        }
        for (ts, x) in &xs[2..] {
            b.add(x, *ts);
        }
        let mut m = b;
        m.merge(&a);
        assert_eq!(m, whole);
        assert_eq!((whole.open, whole.close), (100_0000, 99_0000));
        assert_eq!((whole.high, whole.low), (101_5000, 99_0000));
        assert_eq!((whole.trades, whole.messages, whole.orders), (3, 5, 1));
        // VWAP = (1000000·10 + 1015000·5 + 990000·1) / 16 e-4 = 100.40625
        assert_eq!(whole.vwap_e6(), Some(100_406_250));
        assert_eq!(whole.otr_e4(), Some(3333));
    }

    #[test]
    fn fixed_point_fields_round_and_sign_like_decimals() {
        let mut out = Vec::new();
        let mut r = Row {
            buf: &mut out,
            json: false,
        };
        for (v, p) in [
            (-0.25, 4),
            (-0.00004, 4),
            (0.00005, 4),
            (12.34567, 4),
            (3.0, 0),
        ] {
            r.fixed(v, p);
            r.raw(b" ");
        }
        r.dec(1_000_007, 6);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "-0.2500 0.0000 0.0001 12.3457 3 1.000007"
        );
    }

    #[test]
    fn rows_print_decimals_and_empty_trade_fields() {
        let mut b = Bar::EMPTY;
        b.add(&trade(12_3400, 3), 5);
        b.add(&trade(12_3500, 1), 6);
        let mut out = Vec::new();
        write_bar(
            &mut out,
            BarFormat::Csv,
            BarKey::Stock,
            b"AAPL    ",
            0,
            &b,
            false,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "AAPL,0,12.3400,12.3500,12.3400,12.3500,4,12.342500,2,2,0.0000,0.0000,0,0,0,0,0,2,0,0,0,,,,,0,0\n"
        );
        let mut q = Bar::EMPTY;
        let other = BarInput {
            kind: 7,
            ..BarInput::default()
        };
        q.add(&other, 1);
        let mut out = Vec::new();
        write_bar(
            &mut out,
            BarFormat::Csv,
            BarKey::Stock,
            b"ZZ      ",
            1_000,
            &q,
            true,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ZZ,1000,,,,,0,,0,1,,,0,0,0,0,0,0,0,1,0,,,,,0,1\n"
        );
        let mut out = Vec::new();
        write_bar(
            &mut out,
            BarFormat::Jsonl,
            BarKey::Stock,
            b"ZZ      ",
            1_000,
            &q,
            false,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["symbol"], "ZZ");
        assert_eq!(v["messages"], 1);
        assert!(v["vwap"].is_null());
        assert_eq!(v["late"], false);
    }
}
