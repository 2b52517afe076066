//! The three joins applied to an ITCH feed, each with a brute-force twin to check it.
//!
//! [`run`] replays a feed through [`Books`] once and, on the fly:
//! - **as-of** ([`AsOf`] of each stock's [`Touch`], updated on every touch change): every add
//!   (A, F) is joined with the touch in force when it arrives (`t`, before the add itself is
//!   applied) and as of `t - latency` (what its sender could have seen) → [`AddRow`];
//! - **interval** ([`IntervalJoin`] on the order reference): every add with each of its
//!   executions (E, C), cancels (X), deletes (D) and replaces (U, on the original reference) in
//!   `[t, t + max(horizons)]` → [`EndPair`];
//! - **window** ([`WindowJoin`], kdb+ `wj`): every trade (E priced from the book, printable C,
//!   P) with its stock's touch changes in `[t - before, t + after]` (count, lowest and highest
//!   mid), plus the touch as of `t` from the as-of join for its effective spread → [`TradeRow`].
//!
//! It also records the plain event lists ([`MarketEvents`]: adds, ends, touch changes, trades) so
//! that [`brute_force`] can recompute every row by scanning them. With capacities large enough
//! that [`JoinCounters::losses`] is 0, both give the same [`JoinRows`]. [`Summary`] reduces the
//! rows to what `examples/joins.rs` prints.
//!
//! Stocks are mapped to dense keys `0..stocks` in order of first appearance. The books start
//! empty at the first message, so a feed cut from mid-day only knows the orders added in it: its
//! touches are those of those orders. The joins allocate only at construction; the recording of
//! events and rows (for the check and the summary) is what allocates here.

use super::{AsOf, AsOfCounters, IntervalCounters, IntervalJoin, Ts, WindowFold, WindowJoin};
use super::{WindowJoinCounters, WindowRow};
use crate::agg::Touch;
use crate::book::{BookConfig, Books};
use crate::inspect::InspectError;
use crate::itch::Message;
use crate::replay::{for_each_message, ReplayReport};
use core::fmt;
use std::collections::HashMap;

/// One millisecond in [`Ts`] units (ns).
pub const MS: Ts = 1_000_000;

/// Parameters and capacities of [`run`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarketJoinConfig {
    /// Δ of the lagged as-of lookup at `t - latency` (ns).
    pub latency: Ts,
    /// Horizons of the fleeting-order fractions (ns); the interval join's upper bound is the
    /// largest.
    pub horizons: [Ts; 3],
    /// Window join: quotes from `t - before` (ns).
    pub before: Ts,
    /// Window join: quotes up to `t + after` (ns).
    pub after: Ts,
    /// Stocks (dense keys) the as-of and window joins hold.
    pub stocks: usize,
    /// Touch versions the as-of join keeps per stock.
    pub touch_versions: usize,
    /// Order references with buffered events in the interval join.
    pub live_refs: usize,
    /// Events buffered per reference and side in the interval join.
    pub per_ref: usize,
    /// Quotes buffered per stock in the window join.
    pub quotes_per_stock: usize,
    /// Trades waiting for their window to close.
    pub pending_trades: usize,
    /// Messages between two watermark advances of the interval join (each costs O(`live_refs`)).
    pub advance_every: u32,
    /// Capacities of the books.
    pub books: BookConfig,
}

impl Default for MarketJoinConfig {
    /// Δ = 1 ms; horizons 1 ms, 10 ms, 1 s; windows 1 s before and after; capacities for the
    /// sample files and generated feeds of up to a few hundred thousand messages.
    fn default() -> Self {
        MarketJoinConfig {
            latency: MS,
            horizons: [MS, 10 * MS, 1_000 * MS],
            before: 1_000 * MS,
            after: 1_000 * MS,
            stocks: 1024,
            touch_versions: 64,
            live_refs: 1 << 15,
            per_ref: 8,
            quotes_per_stock: 512,
            pending_trades: 1 << 14,
            advance_every: 1024,
            books: BookConfig::small(),
        }
    }
}

/// How an order's life ends or changes, as the right side of the interval join.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EndKind {
    /// E: executed at its price.
    Executed,
    /// C: executed at another price.
    ExecutedWithPrice,
    /// X: partly cancelled.
    Cancelled,
    /// D: deleted.
    Deleted,
    /// U: replaced (cancel-replace; the original reference ends).
    Replaced,
}

impl EndKind {
    /// True for a removal by its owner: delete or replace.
    pub fn is_cancel(self) -> bool {
        matches!(self, EndKind::Deleted | EndKind::Replaced)
    }

    /// True for an execution (E or C).
    pub fn is_execution(self) -> bool {
        matches!(self, EndKind::Executed | EndKind::ExecutedWithPrice)
    }
}

/// An add order (A, F).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddEvent {
    /// Index of the message in the feed.
    pub seq: u32,
    /// Event time.
    pub ts: Ts,
    /// Dense stock key.
    pub stock: u32,
    /// Order reference.
    pub order_ref: u64,
    /// `b'B'` or `b'S'`.
    pub side: u8,
    /// Limit price (1/10,000 dollars).
    pub price: u32,
    /// Shares.
    pub shares: u32,
}

/// An execution, cancel, delete or replace of an order reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndEvent {
    /// Index of the message in the feed.
    pub seq: u32,
    /// Event time.
    pub ts: Ts,
    /// Order reference (the original one for a replace).
    pub order_ref: u64,
    /// What happened.
    pub kind: EndKind,
}

/// A change of a stock's touch (price or size of either side).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TouchEvent {
    /// Index of the message that changed it.
    pub seq: u32,
    /// Event time.
    pub ts: Ts,
    /// Dense stock key.
    pub stock: u32,
    /// The touch after the message.
    pub touch: Touch,
}

/// A trade: E (at the resting order's price), printable C, or P.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TradeEvent {
    /// Index of the message in the feed.
    pub seq: u32,
    /// Event time.
    pub ts: Ts,
    /// Dense stock key.
    pub stock: u32,
    /// Price (1/10,000 dollars).
    pub price: u32,
    /// Shares.
    pub shares: u64,
    /// ITCH type letter.
    pub kind: u8,
}

/// The event streams of a feed, in feed order, as the brute force reads them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MarketEvents {
    /// Adds.
    pub adds: Vec<AddEvent>,
    /// Executions, cancels, deletes, replaces.
    pub ends: Vec<EndEvent>,
    /// Touch changes.
    pub touches: Vec<TouchEvent>,
    /// Trades.
    pub trades: Vec<TradeEvent>,
}

/// An add with the touch in force when it arrived and as of `t - latency`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddRow {
    /// The add.
    pub add: AddEvent,
    /// `(version time, touch)` at `t`, before the add itself; `None` if no touch yet.
    pub at_t: Option<(Ts, Touch)>,
    /// `(version time, touch)` as of `t - latency`; `None` if no touch that early.
    pub lagged: Option<(Ts, Touch)>,
}

/// An add joined with one of its ends within `[t, t + max(horizons)]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct EndPair {
    /// Feed index of the end.
    pub end_seq: u32,
    /// Feed index of the add.
    pub add_seq: u32,
    /// Time of the add.
    pub add_ts: Ts,
    /// Time of the end.
    pub end_ts: Ts,
    /// Order reference.
    pub order_ref: u64,
    /// What the end was.
    pub kind: EndKind,
}

/// The fold of a trade's window of touch changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuoteWindow {
    /// Touch changes in the window.
    pub quotes: u64,
    /// Lowest `bid + ask` (twice the mid) over the two-sided touches in the window.
    pub min_mid2: Option<u64>,
    /// Highest `bid + ask`.
    pub max_mid2: Option<u64>,
}

impl QuoteWindow {
    /// Adds one touch.
    pub fn add(&mut self, t: &Touch) {
        self.quotes += 1;
        if let Some(m) = mid2(t) {
            self.min_mid2 = Some(self.min_mid2.map_or(m, |x| x.min(m)));
            self.max_mid2 = Some(self.max_mid2.map_or(m, |x| x.max(m)));
        }
    }
}

/// The [`WindowFold`] behind [`QuoteWindow`].
#[derive(Clone, Copy, Debug, Default)]
pub struct QuoteFold;

impl WindowFold<Touch> for QuoteFold {
    type Acc = QuoteWindow;
    type Out = QuoteWindow;
    fn init(&self) -> QuoteWindow {
        QuoteWindow::default()
    }
    fn add(&self, acc: &mut QuoteWindow, _: Ts, t: &Touch) {
        acc.add(t);
    }
    fn finish(&self, acc: &QuoteWindow) -> QuoteWindow {
        *acc
    }
}

/// A trade with its window of quotes and the touch as of its time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TradeRow {
    /// The trade.
    pub trade: TradeEvent,
    /// The window `[t - before, t + after]` of its stock's touch changes.
    pub window: QuoteWindow,
    /// The touch in force at `t`, before the trade's own message.
    pub at_t: Option<Touch>,
    /// False if a quote of the window may have been evicted from a full ring (never with
    /// adequate capacities; always true from [`brute_force`]).
    pub complete: bool,
}

/// All rows of the three joins, in a canonical order (adds and trades by feed index, pairs by
/// end then add).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JoinRows {
    /// As-of join rows.
    pub adds: Vec<AddRow>,
    /// Interval join rows.
    pub pairs: Vec<EndPair>,
    /// Window join rows.
    pub trades: Vec<TradeRow>,
}

impl JoinRows {
    fn canonical(mut self) -> Self {
        self.adds.sort_by_key(|r| r.add.seq);
        self.pairs.sort();
        self.trades.sort_by_key(|r| r.trade.seq);
        self
    }

    /// The first row that differs from `other`, described (`None` if equal).
    pub fn first_difference(&self, other: &JoinRows) -> Option<String> {
        fn diff<T: PartialEq + fmt::Debug>(what: &str, a: &[T], b: &[T]) -> Option<String> {
            if let Some(i) = (0..a.len().min(b.len())).find(|&i| a[i] != b[i]) {
                return Some(format!("{what} row {i}: {:?} != {:?}", a[i], b[i]));
            }
            (a.len() != b.len()).then(|| format!("{what}: {} rows != {}", a.len(), b.len()))
        }
        diff("as-of", &self.adds, &other.adds)
            .or_else(|| diff("interval", &self.pairs, &other.pairs))
            .or_else(|| diff("window", &self.trades, &other.trades))
    }
}

/// The counters of the three joins and of the stock map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JoinCounters {
    /// The as-of join.
    pub asof: AsOfCounters,
    /// The interval join.
    pub interval: IntervalCounters,
    /// The window join.
    pub window: WindowJoinCounters,
    /// Messages skipped because the stock map was full.
    pub stocks_full: u64,
    /// Executions (E) of orders the books do not know: no price, so no trade row.
    pub unpriced_executions: u64,
}

impl JoinCounters {
    /// Everything that makes a join differ from brute force: as-of `too_old` and
    /// `out_of_range`; interval `late`, `keys_full` and evictions; window `late`, `queue_full`,
    /// `out_of_range`, `evicted` and `incomplete`; and `stocks_full`. 0 when capacities suffice.
    pub fn losses(&self) -> u64 {
        let (a, i, w) = (&self.asof, &self.interval, &self.window);
        a.too_old
            + a.out_of_range
            + i.late
            + i.keys_full
            + i.evicted_left
            + i.evicted_right
            + w.late
            + w.queue_full
            + w.out_of_range
            + w.evicted
            + w.incomplete
            + self.stocks_full
    }
}

impl fmt::Display for JoinCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  as-of:    {}", self.asof)?;
        writeln!(f, "  interval: {}", self.interval)?;
        writeln!(f, "  window:   {}", self.window)?;
        write!(
            f,
            "  stocks_full={} unpriced_executions={} → losses={}",
            self.stocks_full,
            self.unpriced_executions,
            self.losses()
        )
    }
}

/// What [`run`] produced.
#[derive(Clone, Debug)]
pub struct MarketRun {
    /// The joins' rows.
    pub rows: JoinRows,
    /// The recorded event streams (input of [`brute_force`]).
    pub events: MarketEvents,
    /// The joins' counters.
    pub counters: JoinCounters,
    /// Symbol of each dense stock key (space-padded; zeros if the feed never named it).
    pub symbols: Vec<[u8; 8]>,
    /// Messages replayed.
    pub messages: u64,
    /// First and last event time (0, 0 for an empty feed).
    pub span: (Ts, Ts),
}

/// Twice the mid (`bid + ask`) of a two-sided touch.
#[inline]
pub fn mid2(t: &Touch) -> Option<u64> {
    match (t.bid(), t.ask()) {
        (Some((b, _)), Some((a, _))) => Some(u64::from(b) + u64::from(a)),
        _ => None,
    }
}

/// Where a new order sits relative to the touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Its own side of the touch is empty (and it does not cross the other side).
    NoTouch,
    /// It reaches the other side (a buy at or above the offer, a sell at or below the bid).
    Crossing,
    /// Distance in price units (1/10,000 dollars) from its side's best: 0 at the touch,
    /// negative inside the spread, positive behind.
    Distance(i64),
}

/// The [`Placement`] of an order of `side` (`b'B'`/`b'S'`) at `price` against `touch`.
pub fn placement(side: u8, price: u32, touch: &Touch) -> Placement {
    let p = i64::from(price);
    if side == b'B' {
        if touch.ask().is_some_and(|(a, _)| price >= a) {
            return Placement::Crossing;
        }
        touch.bid().map_or(Placement::NoTouch, |(b, _)| {
            Placement::Distance(i64::from(b) - p)
        })
    } else {
        if touch.bid().is_some_and(|(b, _)| price <= b) {
            return Placement::Crossing;
        }
        touch.ask().map_or(Placement::NoTouch, |(a, _)| {
            Placement::Distance(p - i64::from(a))
        })
    }
}

/// The tick at `price`: a cent from $1 up, 1/10,000 dollar below (Reg NMS rule 612).
pub fn tick(price: u32) -> u32 {
    if price >= 10_000 {
        100
    } else {
        1
    }
}

/// Replays `buf` through the books and the three joins (see the module docs).
///
/// # Errors
/// The first framing or decoding error of the feed.
pub fn run(buf: &[u8], cfg: &MarketJoinConfig) -> Result<MarketRun, InspectError> {
    let upper = *cfg.horizons.iter().max().unwrap_or(&0);
    let upper = i64::try_from(upper).unwrap_or(i64::MAX);
    let mut books = Books::new(cfg.books);
    let mut asof: AsOf<Touch> = AsOf::new(cfg.stocks, cfg.touch_versions);
    let mut ij: IntervalJoin<u32, (u32, EndKind)> =
        IntervalJoin::new(0, upper, cfg.live_refs, cfg.per_ref);
    let mut wj: WindowJoin<(TradeEvent, Option<Touch>), Touch, QuoteFold> = WindowJoin::new(
        cfg.before,
        cfg.after,
        cfg.stocks,
        cfg.quotes_per_stock,
        cfg.pending_trades,
        QuoteFold,
    );
    let mut key_of = vec![u32::MAX; 1 << 16];
    let mut locates: Vec<u16> = Vec::new();
    let mut last_touch: Vec<Touch> = Vec::new();
    let mut ev = MarketEvents::default();
    let mut rows = JoinRows::default();
    let mut counters = JoinCounters::default();
    let mut seq: u32 = 0;
    let mut wm_ts: Option<Ts> = None;
    let mut since_advance = 0u32;
    let mut span: Option<(Ts, Ts)> = None;
    let mut report = ReplayReport::default();

    let wj_emit = |rows: &mut Vec<TradeRow>,
                   r: WindowRow<(TradeEvent, Option<Touch>), QuoteWindow>| {
        rows.push(TradeRow {
            trade: r.left.0,
            window: r.out,
            at_t: r.left.1,
            complete: r.complete,
        })
    };

    for_each_message(buf, &mut books, false, &mut report, |books, m, _| {
        let ts = m.timestamp();
        let s = seq;
        seq += 1;
        span = Some(span.map_or((ts, ts), |(a, _)| (a, ts)));
        // Watermark: every later event has ts >= this one's.
        if ts > 0 && wm_ts.map_or(true, |w| ts > w) {
            wj.advance(ts - 1, |r| wj_emit(&mut rows.trades, r));
            wm_ts = Some(ts);
            since_advance += 1;
            if since_advance >= cfg.advance_every {
                ij.advance(ts - 1);
                since_advance = 0;
            }
        }
        let locate = m.stock_locate();
        let mut assign = |counters: &mut JoinCounters| -> Option<u32> {
            let k = key_of[locate as usize];
            if k != u32::MAX {
                return Some(k);
            }
            if locates.len() >= cfg.stocks {
                counters.stocks_full += 1;
                return None;
            }
            let k = locates.len() as u32;
            key_of[locate as usize] = k;
            locates.push(locate);
            last_touch.push(Touch::default());
            Some(k)
        };
        let mut end = |order_ref: u64, kind: EndKind| {
            ev.ends.push(EndEvent {
                seq: s,
                ts,
                order_ref,
                kind,
            });
            ij.push_right(order_ref, ts, (s, kind), |p| {
                rows.pairs.push(EndPair {
                    end_seq: p.right.0,
                    add_seq: p.left,
                    add_ts: p.left_ts,
                    end_ts: p.right_ts,
                    order_ref: p.key,
                    kind: p.right.1,
                })
            });
        };
        let mut trade = None;
        let add = match *m {
            Message::AddOrder(a) => {
                Some((a.order_ref.get(), a.side, a.price.get(), a.shares.get()))
            }
            Message::AddOrderMpid(a) => {
                Some((a.order_ref.get(), a.side, a.price.get(), a.shares.get()))
            }
            Message::OrderExecuted(e) => {
                let r = e.order_ref.get();
                match books.orders().get(r, e.hdr.stock_locate.get()) {
                    Some(o) => trade = Some((o.price, u64::from(e.executed_shares.get()))),
                    None => counters.unpriced_executions += 1,
                }
                end(r, EndKind::Executed);
                None
            }
            Message::OrderExecutedWithPrice(c) => {
                if c.printable == b'Y' {
                    trade = Some((c.execution_price.get(), u64::from(c.executed_shares.get())));
                }
                end(c.order_ref.get(), EndKind::ExecutedWithPrice);
                None
            }
            Message::OrderCancel(x) => {
                end(x.order_ref.get(), EndKind::Cancelled);
                None
            }
            Message::OrderDelete(d) => {
                end(d.order_ref.get(), EndKind::Deleted);
                None
            }
            Message::OrderReplace(u) => {
                end(u.original_order_ref.get(), EndKind::Replaced);
                None
            }
            Message::Trade(p) => {
                trade = Some((p.price.get(), u64::from(p.shares.get())));
                None
            }
            _ => None,
        };
        if let Some((order_ref, side, price, shares)) = add {
            if let Some(stock) = assign(&mut counters) {
                let a = AddEvent {
                    seq: s,
                    ts,
                    stock,
                    order_ref,
                    side,
                    price,
                    shares,
                };
                ev.adds.push(a);
                let at_t = asof.lookup(stock, ts).map(|(t, v)| (t, *v));
                let lagged = asof
                    .lookup(stock, ts.saturating_sub(cfg.latency))
                    .map(|(t, v)| (t, *v));
                rows.adds.push(AddRow {
                    add: a,
                    at_t,
                    lagged,
                });
                ij.push_left(order_ref, ts, s, |p| {
                    rows.pairs.push(EndPair {
                        end_seq: p.right.0,
                        add_seq: p.left,
                        add_ts: p.left_ts,
                        end_ts: p.right_ts,
                        order_ref: p.key,
                        kind: p.right.1,
                    })
                });
            }
        }
        if let Some((price, shares)) = trade {
            if let Some(stock) = assign(&mut counters) {
                let t = TradeEvent {
                    seq: s,
                    ts,
                    stock,
                    price,
                    shares,
                    kind: m.msg_type(),
                };
                ev.trades.push(t);
                let at_t = asof.lookup(stock, ts).map(|(_, v)| *v);
                // Refusals are counted by the join.
                let _ = wj.push_left(stock, ts, (t, at_t));
            }
        }
        books.apply(m);
        if matches!(m.msg_type(), b'A' | b'F' | b'E' | b'C' | b'X' | b'D' | b'U') {
            let k = key_of[locate as usize];
            if k != u32::MAX {
                let now = Touch::of(books, locate);
                if now != last_touch[k as usize] {
                    last_touch[k as usize] = now;
                    ev.touches.push(TouchEvent {
                        seq: s,
                        ts,
                        stock: k,
                        touch: now,
                    });
                    asof.update(k, ts, now);
                    let _ = wj.push_right(k, ts, now);
                }
            }
        }
        true
    })?;
    wj.advance(Ts::MAX, |r| wj_emit(&mut rows.trades, r));
    ij.advance(Ts::MAX);
    counters.asof = asof.counters();
    counters.interval = ij.counters();
    counters.window = wj.counters();
    let symbols = locates
        .iter()
        .map(|&l| books.symbol(l).copied().unwrap_or([0; 8]))
        .collect();
    Ok(MarketRun {
        rows: rows.canonical(),
        events: ev,
        counters,
        symbols,
        messages: report.messages,
        span: span.unwrap_or((0, 0)),
    })
}

/// The rows of the three joins recomputed by scanning the event lists: the last touch change
/// of the stock before the add (and at or before `t - latency`); every end of the add's
/// reference in `[t, t + max(horizons)]`; every touch change of the trade's stock in
/// `[t - before, t + after]`. Also returns the most touch versions a lagged lookup needed (the
/// as-of join's `touch_versions` must be at least that for `too_old` to stay 0).
pub fn brute_force(ev: &MarketEvents, cfg: &MarketJoinConfig) -> (JoinRows, usize) {
    let upper = *cfg.horizons.iter().max().unwrap_or(&0);
    let stocks = ev
        .touches
        .iter()
        .map(|t| t.stock as usize + 1)
        .max()
        .unwrap_or(0);
    let mut by_stock: Vec<Vec<&TouchEvent>> = vec![Vec::new(); stocks];
    for t in &ev.touches {
        by_stock[t.stock as usize].push(t);
    }
    let none: Vec<&TouchEvent> = Vec::new();
    let changes = |stock: u32| by_stock.get(stock as usize).unwrap_or(&none);
    // The last change of `stock` before feed index `seq` with ts <= `at`.
    let as_of = |stock: u32, seq: u32, at: Ts| {
        changes(stock)
            .iter()
            .rev()
            .find(|c| c.seq < seq && c.ts <= at)
            .map(|c| (c.ts, c.touch))
    };
    let mut needed = 0;
    let mut rows = JoinRows::default();
    for a in &ev.adds {
        let lag_at = a.ts.saturating_sub(cfg.latency);
        let later = changes(a.stock)
            .iter()
            .filter(|c| c.seq < a.seq && c.ts > lag_at)
            .count();
        needed = needed.max(later + 1);
        rows.adds.push(AddRow {
            add: *a,
            at_t: as_of(a.stock, a.seq, a.ts),
            lagged: as_of(a.stock, a.seq, lag_at),
        });
    }
    let mut adds: HashMap<u64, Vec<&AddEvent>> = HashMap::new();
    for a in &ev.adds {
        adds.entry(a.order_ref).or_default().push(a);
    }
    for e in &ev.ends {
        for a in adds.get(&e.order_ref).into_iter().flatten() {
            if a.ts <= e.ts && e.ts <= a.ts.saturating_add(upper) {
                rows.pairs.push(EndPair {
                    end_seq: e.seq,
                    add_seq: a.seq,
                    add_ts: a.ts,
                    end_ts: e.ts,
                    order_ref: e.order_ref,
                    kind: e.kind,
                });
            }
        }
    }
    for t in &ev.trades {
        let (lo, hi) = (
            t.ts.saturating_sub(cfg.before),
            t.ts.saturating_add(cfg.after),
        );
        let mut window = QuoteWindow::default();
        for c in changes(t.stock) {
            if lo <= c.ts && c.ts <= hi {
                window.add(&c.touch);
            }
        }
        rows.trades.push(TradeRow {
            trade: *t,
            window,
            at_t: as_of(t.stock, t.seq, t.ts).map(|(_, v)| v),
            complete: true,
        });
    }
    (rows.canonical(), needed)
}

/// Placements of a set of adds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PlacementStats {
    /// Adds.
    pub adds: u64,
    /// At the touch (distance 0).
    pub at: u64,
    /// Inside the spread (negative distance).
    pub inside: u64,
    /// Behind the touch (positive distance).
    pub behind: u64,
    /// Reaching the other side.
    pub crossing: u64,
    /// No touch on its side.
    pub none: u64,
    /// Σ distance in ticks (over at + inside + behind).
    pub ticks: f64,
}

impl PlacementStats {
    /// Adds one order's placement.
    pub fn add(&mut self, side: u8, price: u32, touch: Option<&Touch>) {
        self.adds += 1;
        match touch.map_or(Placement::NoTouch, |t| placement(side, price, t)) {
            Placement::NoTouch => self.none += 1,
            Placement::Crossing => self.crossing += 1,
            Placement::Distance(d) => {
                match d.signum() {
                    0 => self.at += 1,
                    -1 => self.inside += 1,
                    _ => self.behind += 1,
                }
                self.ticks += d as f64 / f64::from(tick(price));
            }
        }
    }

    /// Mean distance in ticks (`None` without a distance).
    pub fn mean_ticks(&self) -> Option<f64> {
        let n = self.at + self.inside + self.behind;
        (n > 0).then(|| self.ticks / n as f64)
    }
}

impl fmt::Display for PlacementStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "at {:>3}  inside {:>3}  behind {:>3}  crossing {:>2}  none {:>3}  mean ",
            self.at, self.inside, self.behind, self.crossing, self.none
        )?;
        match self.mean_ticks() {
            Some(m) => write!(f, "{m:+7.2} ticks"),
            None => write!(f, "    n/a"),
        }
    }
}

/// The fleeting-order statistics for one horizon.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HorizonStats {
    /// The horizon (ns).
    pub horizon: Ts,
    /// Adds with at least `horizon` of feed after them (the others are censored).
    pub observable: u64,
    /// Of those, deleted or replaced within the horizon.
    pub cancelled: u64,
    /// Of those, deleted within the horizon.
    pub deleted: u64,
    /// Of those, replaced within the horizon.
    pub replaced: u64,
    /// Of those, executed (at least partly) within the horizon.
    pub executed: u64,
}

/// Time-to-cancel buckets: upper bounds (ns) of [`Summary::ttc_buckets`].
pub const TTC_BOUNDS: [Ts; 7] = [1_000, 10_000, 100_000, MS, 10 * MS, 100 * MS, 1_000 * MS];

/// What `examples/joins.rs` prints, reduced from [`JoinRows`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Messages replayed.
    pub messages: u64,
    /// First and last event time.
    pub span: (Ts, Ts),
    /// Δ of the lagged lookup.
    pub latency: Ts,
    /// The window join's `(before, after)`.
    pub window: (Ts, Ts),
    /// Placements against the touch at arrival.
    pub at_t: PlacementStats,
    /// Placements against the touch as of `t - latency`.
    pub lagged: PlacementStats,
    /// Adds whose touch at `t - latency` differs from the touch at `t`.
    pub lag_differs: u64,
    /// Per stock (symbol, at `t`, lagged), most adds first.
    pub per_stock: Vec<(String, PlacementStats, PlacementStats)>,
    /// Interval-join pairs.
    pub pairs: u64,
    /// Fleeting-order fractions by horizon.
    pub horizons: Vec<HorizonStats>,
    /// Adds cancelled (first D or U) within each of [`TTC_BOUNDS`] (not cumulative).
    pub ttc_buckets: [u64; 7],
    /// Median and 90th percentile time to cancel (ns), over cancelled adds.
    pub ttc_p50_p90: Option<(Ts, Ts)>,
    /// Trades by type letter (E, C, P).
    pub trades: [u64; 3],
    /// Σ quotes over the trades' windows.
    pub window_quotes: u64,
    /// Trades whose window had a two-sided touch, and Σ (max mid − min mid) in price units.
    pub mid_range: (u64, f64),
    /// Trades with a two-sided touch at `t`; Σ effective spread (2|p − mid|, price units);
    /// Σ effective spread in bps of the mid; Σ quoted spread (price units).
    pub spreads: (u64, f64, f64, f64),
}

/// Summarises the rows of `run` (or of [`brute_force`] on its events).
pub fn summarize(run: &MarketRun, rows: &JoinRows, cfg: &MarketJoinConfig) -> Summary {
    let mut s = Summary {
        messages: run.messages,
        span: run.span,
        latency: cfg.latency,
        window: (cfg.before, cfg.after),
        pairs: rows.pairs.len() as u64,
        ..Summary::default()
    };
    let mut per: Vec<(PlacementStats, PlacementStats)> =
        vec![Default::default(); run.symbols.len()];
    for r in &rows.adds {
        let a = &r.add;
        let (now, lag) = (r.at_t.map(|x| x.1), r.lagged.map(|x| x.1));
        s.at_t.add(a.side, a.price, now.as_ref());
        s.lagged.add(a.side, a.price, lag.as_ref());
        s.lag_differs += u64::from(now != lag);
        if let Some(p) = per.get_mut(a.stock as usize) {
            p.0.add(a.side, a.price, now.as_ref());
            p.1.add(a.side, a.price, lag.as_ref());
        }
    }
    let mut per: Vec<_> = per
        .into_iter()
        .enumerate()
        .filter(|(_, p)| p.0.adds > 0)
        .map(|(k, (n, l))| (symbol(&run.symbols[k]), n, l))
        .collect();
    per.sort_by(|a, b| b.1.adds.cmp(&a.1.adds).then_with(|| a.0.cmp(&b.0)));
    s.per_stock = per;

    // First cancel and first execution of each add, by feed index of the add.
    type FirstEnds = (Option<(Ts, EndKind)>, Option<Ts>);
    let mut first: HashMap<u32, FirstEnds> = HashMap::new();
    for p in &rows.pairs {
        let e = first.entry(p.add_seq).or_default();
        let dt = p.end_ts - p.add_ts;
        if p.kind.is_cancel() && e.0.map_or(true, |(t, _)| dt < t) {
            e.0 = Some((dt, p.kind));
        }
        if p.kind.is_execution() && e.1.map_or(true, |t| dt < t) {
            e.1 = Some(dt);
        }
    }
    for &h in &cfg.horizons {
        let mut hs = HorizonStats {
            horizon: h,
            ..HorizonStats::default()
        };
        for r in &rows.adds {
            if r.add.ts.saturating_add(h) > run.span.1 {
                continue;
            }
            hs.observable += 1;
            let (c, x) = first.get(&r.add.seq).copied().unwrap_or_default();
            if let Some((_, k)) = c.filter(|&(dt, _)| dt <= h) {
                hs.cancelled += 1;
                hs.deleted += u64::from(k == EndKind::Deleted);
                hs.replaced += u64::from(k == EndKind::Replaced);
            }
            hs.executed += u64::from(x.is_some_and(|dt| dt <= h));
        }
        s.horizons.push(hs);
    }
    let mut ttc: Vec<Ts> = first.values().filter_map(|v| v.0.map(|c| c.0)).collect();
    ttc.sort_unstable();
    for &t in &ttc {
        if let Some(i) = TTC_BOUNDS.iter().position(|&b| t <= b) {
            s.ttc_buckets[i] += 1;
        }
    }
    if !ttc.is_empty() {
        let pct = |p: usize| ttc[((ttc.len() - 1) * p) / 100];
        s.ttc_p50_p90 = Some((pct(50), pct(90)));
    }

    for r in &rows.trades {
        let t = &r.trade;
        match t.kind {
            b'E' => s.trades[0] += 1,
            b'C' => s.trades[1] += 1,
            _ => s.trades[2] += 1,
        }
        s.window_quotes += r.window.quotes;
        if let (Some(lo), Some(hi)) = (r.window.min_mid2, r.window.max_mid2) {
            s.mid_range.0 += 1;
            s.mid_range.1 += (hi - lo) as f64 / 2.0;
        }
        if let Some((m2, at)) = r.at_t.as_ref().and_then(|a| mid2(a).map(|m| (m, a))) {
            let eff = (2 * i64::from(t.price) - m2 as i64).unsigned_abs() as f64;
            s.spreads.0 += 1;
            s.spreads.1 += eff;
            s.spreads.2 += eff / (m2 as f64 / 2.0) * 1e4;
            s.spreads.3 += f64::from(at.ask) - f64::from(at.bid);
        }
    }
    s
}

/// A space-padded symbol as a trimmed string (`?` if unnamed).
pub fn symbol(s: &[u8; 8]) -> String {
    let t = String::from_utf8_lossy(s)
        .trim_end()
        .trim_end_matches('\0')
        .to_string();
    if t.is_empty() {
        "?".into()
    } else {
        t
    }
}

/// `hh:mm:ss.nnnnnnnnn`.
pub fn clock(ts: Ts) -> String {
    let s = ts / 1_000_000_000;
    format!(
        "{:02}:{:02}:{:02}.{:09}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        ts % 1_000_000_000
    )
}

/// A duration in ns as `µs`, `ms` or `s`.
pub fn span_str(ns: Ts) -> String {
    if ns >= 1_000 * MS {
        format!("{}s", ns as f64 / 1e9)
    } else if ns >= MS {
        format!("{}ms", ns as f64 / 1e6)
    } else {
        format!("{}µs", ns as f64 / 1e3)
    }
}

fn pct(n: u64, d: u64) -> String {
    if d == 0 {
        "n/a".into()
    } else {
        format!("{:.1}%", 100.0 * n as f64 / d as f64)
    }
}

impl Summary {
    /// Prints the summary, with the `top` stocks by adds.
    pub fn write(&self, f: &mut impl fmt::Write, top: usize) -> fmt::Result {
        let adds = self.at_t.adds;
        let lat = span_str(self.latency);
        writeln!(
            f,
            "{} messages, {} – {} ({})",
            self.messages,
            clock(self.span.0),
            clock(self.span.1),
            span_str(self.span.1 - self.span.0)
        )?;
        writeln!(
            f,
            "1. as-of join: {adds} adds × touch (distance in ticks; buy at the bid = 0, inside < 0, behind > 0)"
        )?;
        writeln!(f, "   at arrival t: {}", self.at_t)?;
        writeln!(f, "   as of t−{lat:<4} {}", self.lagged)?;
        writeln!(
            f,
            "   touch at t−{lat} ≠ touch at t for {} adds ({})",
            self.lag_differs,
            pct(self.lag_differs, adds)
        )?;
        for (sym, now, lag) in self.per_stock.iter().take(top) {
            writeln!(f, "   {sym:<6} {:>4} adds  t: {now}", now.adds)?;
            writeln!(f, "   {:<16}t−{lat}: {lag}", "")?;
        }
        if self.per_stock.len() > top {
            writeln!(f, "   … {} more stocks", self.per_stock.len() - top)?;
        }
        writeln!(
            f,
            "2. interval join: adds × E/C/X/D/U of the same ref in [t, t+{}]: {} pairs \
             (fractions over adds with at least the horizon of feed after them)",
            span_str(self.horizons.iter().map(|h| h.horizon).max().unwrap_or(0)),
            self.pairs
        )?;
        for h in &self.horizons {
            writeln!(
                f,
                "   within {:>6}: {:>5} adds observable; cancelled {:>4} ({:>6}: D {}, U {}); executed {} ({})",
                span_str(h.horizon),
                h.observable,
                h.cancelled,
                pct(h.cancelled, h.observable),
                h.deleted,
                h.replaced,
                h.executed,
                pct(h.executed, h.observable)
            )?;
        }
        write!(f, "   time to cancel:")?;
        for (b, n) in TTC_BOUNDS.iter().zip(self.ttc_buckets) {
            write!(f, " ≤{} {n}", span_str(*b))?;
        }
        match self.ttc_p50_p90 {
            Some((p50, p90)) => writeln!(f, "; p50 {} p90 {}", span_str(p50), span_str(p90))?,
            None => writeln!(f)?,
        }
        let trades: u64 = self.trades.iter().sum();
        writeln!(
            f,
            "3. window join: {trades} trades (E {}, C {}, P {}) × touch changes in [t−{}, t+{}]",
            self.trades[0],
            self.trades[1],
            self.trades[2],
            span_str(self.window.0),
            span_str(self.window.1)
        )?;
        if trades > 0 {
            write!(
                f,
                "   mean {:.1} quote changes per window",
                self.window_quotes as f64 / trades as f64
            )?;
            if self.mid_range.0 > 0 {
                write!(
                    f,
                    "; mean mid range {:.2}¢ ({} windows with a mid)",
                    self.mid_range.1 / self.mid_range.0 as f64 / 100.0,
                    self.mid_range.0
                )?;
            }
            writeln!(f)?;
            let n = self.spreads.0;
            if n > 0 {
                writeln!(
                    f,
                    "   {n} trades with a mid at t: effective spread {:.2}¢ ({:.1} bps) vs quoted {:.2}¢",
                    self.spreads.1 / n as f64 / 100.0,
                    self.spreads.2 / n as f64,
                    self.spreads.3 / n as f64 / 100.0
                )?;
            } else {
                writeln!(f, "   no trade had a two-sided touch at t")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, 5)
    }
}
