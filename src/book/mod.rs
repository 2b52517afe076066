//! Full-depth order books for every stock of a feed, rebuilt from ITCH order messages.
//!
//! [`Books`] applies A F E C X D U to per-order state ([`orders::OrderTable`]) and per-price state
//! ([`levels::LevelArena`]), both allocated once from a [`BookConfig`]; P Q B are counted as trades
//! and leave the book alone. Nothing allocates after construction. Every way a feed can disagree
//! with the book — a reference never added (a file that starts mid-day), a duplicate reference,
//! an execution larger than the order, a full table — is counted in [`BookStats`] and skipped; none
//! panics.
//!
//! ```
//! use tickwatch::book::{BookConfig, Books};
//! use tickwatch::itch::{decode, Side};
//! let mut books = Books::new(BookConfig::small());
//! let mut add = [0u8; 36];
//! add[0] = b'A';
//! add[1..3].copy_from_slice(&7u16.to_be_bytes());
//! add[11..19].copy_from_slice(&1u64.to_be_bytes());
//! add[19] = b'B';
//! add[20..24].copy_from_slice(&100u32.to_be_bytes());
//! add[24..32].copy_from_slice(b"AAPL    ");
//! add[32..36].copy_from_slice(&1_500_000u32.to_be_bytes());
//! books.apply(&decode(&add, 0)?);
//! let bid = books.best(7, Side::Buy).unwrap();
//! assert_eq!((bid.price, bid.shares, bid.orders), (1_500_000, 100, 1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod levels;
pub mod orders;

use crate::itch::{Message, Side};
use levels::{LadderPair, Level, LevelArena, Slot};
use orders::{InsertError, Order, OrderTable};
use serde::Serialize;

/// Capacities, fixed at construction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BookConfig {
    /// Most orders live at once.
    pub max_orders: usize,
    /// Stock locates `0..max_locates` are tracked (at most 65,536: the locate is a `u16`).
    pub max_locates: usize,
    /// Price-level slots in the arena shared by all ladders.
    pub max_levels: usize,
}

impl BookConfig {
    /// A whole NASDAQ day: 4 M live orders, every locate, 4 M level slots (≈ 330 MB, touched
    /// lazily: untouched pages of the zeroed allocations cost nothing).
    pub fn full_day() -> BookConfig {
        BookConfig {
            max_orders: 4 << 20,
            max_locates: 1 << 16,
            max_levels: 4 << 20,
        }
    }

    /// Small capacities for tests and examples.
    pub fn small() -> BookConfig {
        BookConfig {
            max_orders: 1 << 16,
            max_locates: 1 << 16,
            max_levels: 1 << 18,
        }
    }

    /// Capacities sized for `max_orders` live orders: the level arena gets twice as many slots
    /// (ladders double, so up to half a segment can be slack) plus a first segment per stock side.
    pub fn for_orders(max_orders: usize, max_locates: usize) -> BookConfig {
        let max_locates = max_locates.clamp(1, 1 << 16);
        BookConfig {
            max_orders,
            max_locates,
            max_levels: max_orders * 2 + max_locates * 2 * levels::MIN_LADDER,
        }
    }
}

impl Default for BookConfig {
    fn default() -> Self {
        BookConfig::full_day()
    }
}

/// What the books did with the feed, and everything they had to skip.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BookStats {
    /// Orders added (A, F, and the new half of U).
    pub adds: u64,
    /// Executions applied (E, C).
    pub executions: u64,
    /// Partial cancels applied (X).
    pub cancels: u64,
    /// Deletes applied (D).
    pub deletes: u64,
    /// Replaces applied (U).
    pub replaces: u64,
    /// Non-cross trades against hidden orders (P).
    pub trades: u64,
    /// Cross trades (Q).
    pub crosses: u64,
    /// Broken trades (B).
    pub broken_trades: u64,
    /// E/C/X/D/U naming an order the book never saw, or one live in another stock (normal for a
    /// file that starts mid-day).
    pub unknown_refs: u64,
    /// Adds whose reference is already live in the same stock.
    pub duplicate_refs: u64,
    /// Executions or cancels of more shares than remained (clamped to what remained).
    pub overfills: u64,
    /// Adds with a side byte other than `B`/`S`.
    pub bad_sides: u64,
    /// Adds (A, F, or the new half of U) with zero shares: no order can rest with nothing, so
    /// they are refused (the replaced order of such a U is still removed).
    pub zero_share_adds: u64,
    /// Order messages whose locate is at or past `max_locates`.
    pub locate_overflows: u64,
    /// Adds refused because `max_orders` orders were live.
    pub order_overflows: u64,
    /// Adds refused because the level arena had no room.
    pub level_overflows: u64,
}

impl BookStats {
    /// Messages skipped for any reason.
    pub fn skipped(&self) -> u64 {
        self.unknown_refs
            + self.duplicate_refs
            + self.bad_sides
            + self.zero_share_adds
            + self.locate_overflows
            + self.order_overflows
            + self.level_overflows
    }

    /// Adds `other`'s counters to these (summing shards).
    pub fn add(&mut self, other: &BookStats) {
        let BookStats {
            adds,
            executions,
            cancels,
            deletes,
            replaces,
            trades,
            crosses,
            broken_trades,
            unknown_refs,
            duplicate_refs,
            overfills,
            bad_sides,
            zero_share_adds,
            locate_overflows,
            order_overflows,
            level_overflows,
        } = *other;
        self.adds += adds;
        self.executions += executions;
        self.cancels += cancels;
        self.deletes += deletes;
        self.replaces += replaces;
        self.trades += trades;
        self.crosses += crosses;
        self.broken_trades += broken_trades;
        self.unknown_refs += unknown_refs;
        self.duplicate_refs += duplicate_refs;
        self.overfills += overfills;
        self.bad_sides += bad_sides;
        self.zero_share_adds += zero_share_adds;
        self.locate_overflows += locate_overflows;
        self.order_overflows += order_overflows;
        self.level_overflows += level_overflows;
    }
}

/// A price level as queries return it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LevelView {
    /// Price(4) integer.
    pub price: u32,
    /// Total shares.
    pub shares: u64,
    /// Number of orders.
    pub orders: u32,
}

impl From<&Level> for LevelView {
    fn from(l: &Level) -> Self {
        LevelView {
            price: l.price,
            shares: l.shares,
            orders: l.orders,
        }
    }
}

/// The books of every stock.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Books {
    orders: OrderTable,
    arena: LevelArena,
    /// `[bid, ask]` per locate.
    ladders: Box<[LadderPair]>,
    symbols: Box<[[u8; 8]]>,
    stats: BookStats,
    last_ts: u64,
    cfg: BookConfig,
}

/// Message types whose bytes 11..19 are an order reference the book looks up: A F E C X D U.
static NAMES_ORDER: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    let types = *b"AFECXDU";
    while i < types.len() {
        t[types[i] as usize] = true;
        i += 1;
    }
    t
};

/// Why shares come off an order.
#[derive(Clone, Copy, Debug)]
enum Reduce {
    Execute,
    Cancel,
}

#[inline(always)]
fn side_index(side: u8) -> Option<usize> {
    match side {
        b'B' => Some(0),
        b'S' => Some(1),
        _ => None,
    }
}

impl Books {
    /// Allocates every table for `cfg`; nothing allocates after this.
    pub fn new(cfg: BookConfig) -> Books {
        let n = cfg.max_locates.clamp(1, 1 << 16);
        Books {
            orders: OrderTable::new(cfg.max_orders),
            arena: LevelArena::new(cfg.max_levels),
            ladders: vec![LadderPair::new(); n].into_boxed_slice(),
            symbols: vec![[0u8; 8]; n].into_boxed_slice(),
            stats: BookStats::default(),
            last_ts: 0,
            cfg: BookConfig {
                max_locates: n,
                ..cfg
            },
        }
    }

    /// Backs every page of the tables now, so that no page fault lands on the hot path (a
    /// startup cost). Long-running engines call this once after [`Books::new`]; the pipeline's
    /// workers do.
    pub fn prefault(&mut self) {
        self.orders.prefault();
        self.arena.prefault();
    }

    /// Empties every book and counter, keeping the allocations (and their faulted-in pages).
    pub fn clear(&mut self) {
        self.orders.clear();
        self.arena.clear();
        for l in self.ladders.iter_mut() {
            *l = LadderPair::new();
        }
        self.symbols.fill([0; 8]);
        self.stats = BookStats::default();
        self.last_ts = 0;
    }

    /// The capacities in force.
    pub fn config(&self) -> BookConfig {
        self.cfg
    }

    /// Counters so far.
    pub fn stats(&self) -> &BookStats {
        &self.stats
    }

    /// Timestamp of the last message applied.
    pub fn last_timestamp(&self) -> u64 {
        self.last_ts
    }

    /// Orders live now.
    pub fn live_orders(&self) -> usize {
        self.orders.len()
    }

    /// The order table, for lookups by reference.
    pub fn orders(&self) -> &OrderTable {
        &self.orders
    }

    /// Level slots the arena has handed out (high-water mark) and its capacity.
    pub fn level_usage(&self) -> (usize, usize) {
        (self.arena.used(), self.arena.capacity())
    }

    /// First prefetch stage, on a raw message (type byte first, no decoding): hints the
    /// order-table slots of the order references it names, and its stock's ladder headers. Every
    /// order message — A F E C X D U — carries its (original) order reference at bytes 11..19 and
    /// U its new one at 19..27, so this needs no per-type dispatch: one table lookup and a branch
    /// that real feeds take ≈ 90 % of the time. Call it a few messages ahead of [`Books::apply`]
    /// (see [`replay`](crate::replay)) so a large book's random accesses overlap instead of
    /// queueing. A hint only: reads nothing from the tables, changes nothing.
    #[inline(always)]
    pub fn prefetch_frame(&self, body: &[u8]) {
        let Some(head) = body.get(..19) else {
            return;
        };
        let t = head[0];
        if NAMES_ORDER[t as usize] {
            self.orders
                .prefetch(u64::from_be_bytes(head[11..19].try_into().unwrap()));
            if t == b'U' {
                if let Some(new) = body.get(19..27) {
                    self.orders
                        .prefetch(u64::from_be_bytes(new.try_into().unwrap()));
                }
            }
        }
        let locate = u16::from_be_bytes([head[1], head[2]]) as usize;
        if let Some(l) = self.ladders.get(locate) {
            crate::feed::frame::prefetch(l as *const LadderPair as *const u8);
        }
    }

    /// Second, nearer prefetch stage, on a raw message: by now the stock's ladder headers (asked
    /// for by [`Books::prefetch_frame`]) have arrived, so the touch of both of its ladders can be
    /// hinted — both, because a delete or execution does not say its side. No per-type dispatch.
    #[inline(always)]
    pub fn prefetch_frame_levels(&self, body: &[u8]) {
        let Some(head) = body.get(..3) else {
            return;
        };
        if let Some(l) = self
            .ladders
            .get(u16::from_be_bytes([head[1], head[2]]) as usize)
        {
            self.arena.prefetch_touch(&l[0]);
            self.arena.prefetch_touch(&l[1]);
        }
    }

    /// Applies one message. Non-order messages only update the symbol map and the clock.
    #[inline]
    pub fn apply(&mut self, msg: &Message<'_>) {
        self.last_ts = msg.timestamp();
        match *msg {
            Message::AddOrder(m) => self.add(
                m.hdr.stock_locate.get(),
                m.order_ref.get(),
                m.side,
                m.shares.get(),
                m.price.get(),
                [0; 4],
                &m.stock,
            ),
            Message::AddOrderMpid(m) => self.add(
                m.hdr.stock_locate.get(),
                m.order_ref.get(),
                m.side,
                m.shares.get(),
                m.price.get(),
                m.attribution,
                &m.stock,
            ),
            Message::OrderExecuted(m) => self.reduce(
                m.hdr.stock_locate.get(),
                m.order_ref.get(),
                m.executed_shares.get(),
                Reduce::Execute,
            ),
            Message::OrderExecutedWithPrice(m) => self.reduce(
                m.hdr.stock_locate.get(),
                m.order_ref.get(),
                m.executed_shares.get(),
                Reduce::Execute,
            ),
            Message::OrderCancel(m) => self.reduce(
                m.hdr.stock_locate.get(),
                m.order_ref.get(),
                m.cancelled_shares.get(),
                Reduce::Cancel,
            ),
            Message::OrderDelete(m) => match self
                .orders
                .remove(m.order_ref.get(), m.hdr.stock_locate.get())
            {
                Some(o) => {
                    self.unlevel(&o, o.shares, true);
                    self.stats.deletes += 1;
                }
                None => self.stats.unknown_refs += 1,
            },
            Message::OrderReplace(m) => match self
                .orders
                .remove(m.original_order_ref.get(), m.hdr.stock_locate.get())
            {
                Some(o) => {
                    self.unlevel(&o, o.shares, true);
                    self.stats.replaces += 1;
                    self.add(
                        o.locate,
                        m.new_order_ref.get(),
                        o.side,
                        m.shares.get(),
                        m.price.get(),
                        o.mpid,
                        &[0; 8],
                    );
                }
                None => self.stats.unknown_refs += 1,
            },
            Message::Trade(_) => self.stats.trades += 1,
            Message::CrossTrade(_) => self.stats.crosses += 1,
            Message::BrokenTrade(_) => self.stats.broken_trades += 1,
            Message::StockDirectory(m) => {
                let l = m.hdr.stock_locate.get() as usize;
                if let Some(s) = self.symbols.get_mut(l) {
                    *s = m.stock;
                }
            }
            _ => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn add(
        &mut self,
        locate: u16,
        order_ref: u64,
        side: u8,
        shares: u32,
        price: u32,
        mpid: [u8; 4],
        stock: &[u8; 8],
    ) {
        let l = locate as usize;
        if l >= self.ladders.len() {
            self.stats.locate_overflows += 1;
            return;
        }
        let Some(si) = side_index(side) else {
            self.stats.bad_sides += 1;
            return;
        };
        if shares == 0 {
            self.stats.zero_share_adds += 1;
            return;
        }
        if self.symbols[l][0] == 0 && stock[0] != 0 {
            self.symbols[l] = *stock;
        }
        match self
            .orders
            .insert(Order::new(order_ref, locate, side, price, shares, mpid))
        {
            Ok(()) => {}
            Err(InsertError::Duplicate) => {
                self.stats.duplicate_refs += 1;
                return;
            }
            Err(InsertError::Full | InsertError::Unrepresentable) => {
                self.stats.order_overflows += 1;
                return;
            }
        }
        let ladder = &mut self.ladders[l][si];
        match self.arena.find(ladder, price) {
            Slot::Found(i) => {
                let lv = self.arena.at_mut(i);
                lv.orders += 1;
                lv.shares += shares as u64;
            }
            Slot::Vacant(pos) => {
                if self
                    .arena
                    .insert(
                        ladder,
                        pos,
                        Level {
                            price,
                            orders: 1,
                            shares: shares as u64,
                        },
                    )
                    .is_none()
                {
                    self.orders.remove(order_ref, locate);
                    self.stats.level_overflows += 1;
                    return;
                }
            }
        }
        self.stats.adds += 1;
    }

    /// Takes `shares` off an order (execution or cancel) and counts it by `kind`.
    #[inline(always)]
    fn reduce(&mut self, locate: u16, order_ref: u64, shares: u32, kind: Reduce) {
        let Some(o) = self.orders.get_mut(order_ref, locate) else {
            self.stats.unknown_refs += 1;
            return;
        };
        let take = if shares > o.shares {
            self.stats.overfills += 1;
            o.shares
        } else {
            shares
        };
        o.shares -= take;
        let gone = o.shares == 0;
        let o = *o;
        if gone {
            self.orders.remove(order_ref, locate);
        }
        self.unlevel(&o, take, gone);
        match kind {
            Reduce::Execute => self.stats.executions += 1,
            Reduce::Cancel => self.stats.cancels += 1,
        }
    }

    /// Removes `shares` (and the order itself when `order_gone`) from the order's price level.
    #[inline(always)]
    fn unlevel(&mut self, o: &Order, shares: u32, order_gone: bool) {
        let si = (o.side == b'S') as usize;
        let ladder = &mut self.ladders[o.locate as usize][si];
        if let Slot::Found(i) = self.arena.find(ladder, o.price) {
            let lv = self.arena.at_mut(i);
            lv.shares -= shares as u64;
            lv.orders -= order_gone as u32;
            if lv.orders == 0 {
                self.arena.remove(ladder, i);
            }
        } else {
            // Unreachable while the invariants hold: every live order's level exists.
            debug_assert!(false, "live order {} has no level", o.order_ref());
        }
    }

    /// The best level of a side, O(1).
    #[inline]
    pub fn best(&self, locate: u16, side: Side) -> Option<LevelView> {
        let ladder = self.ladders.get(locate as usize)?;
        self.arena
            .best(&ladder[(side == Side::Sell) as usize])
            .map(LevelView::from)
    }

    /// The levels of a side, best first; `take(n)` for top-N in O(N).
    pub fn depth(&self, locate: u16, side: Side) -> impl Iterator<Item = LevelView> + '_ {
        let lv: &[Level] = match self.ladders.get(locate as usize) {
            Some(l) => self.arena.levels(&l[(side == Side::Sell) as usize]),
            None => &[],
        };
        lv.iter().rev().map(LevelView::from)
    }

    /// The symbol of a locate, from its R message (or the first add or trade naming it).
    pub fn symbol(&self, locate: u16) -> Option<&[u8; 8]> {
        self.symbols.get(locate as usize).filter(|s| s[0] != 0)
    }

    /// The locate whose symbol is `stock` (space-padded), if any.
    pub fn locate_of(&self, stock: &[u8; 8]) -> Option<u16> {
        self.symbols
            .iter()
            .position(|s| s == stock)
            .map(|i| i as u16)
    }

    /// Locates that have any levels, in order.
    pub fn active_locates(&self) -> impl Iterator<Item = u16> + '_ {
        self.ladders
            .iter()
            .enumerate()
            .filter(|(_, l)| !l[0].is_empty() || !l[1].is_empty())
            .map(|(i, _)| i as u16)
    }

    /// Locates whose best bid is at or above their best ask.
    pub fn crossed(&self) -> Vec<u16> {
        self.active_locates()
            .filter(
                |&l| match (self.best(l, Side::Buy), self.best(l, Side::Sell)) {
                    (Some(b), Some(a)) => b.price >= a.price,
                    _ => false,
                },
            )
            .collect()
    }

    /// Recomputes every level from the live orders and compares: levels must equal the sums of
    /// their orders, be strictly sorted, and hold no empty level. Slow; for tests and `--check`.
    ///
    /// # Errors
    /// The first inconsistency.
    pub fn check(&self) -> Result<(), CheckError> {
        use std::collections::BTreeMap;
        let mut want: BTreeMap<(u16, usize, u32), (u64, u32)> = BTreeMap::new();
        for o in self.orders.iter() {
            if o.shares == 0 {
                return Err(CheckError::ZeroShares(o.order_ref()));
            }
            let e = want
                .entry((o.locate, (o.side == b'S') as usize, o.price))
                .or_default();
            e.0 += o.shares as u64;
            e.1 += 1;
        }
        let mut got = BTreeMap::new();
        for (loc, sides) in self.ladders.iter().enumerate() {
            for (side, ladder) in sides.0.iter().enumerate() {
                let lv = self.arena.levels(ladder);
                for w in lv.windows(2) {
                    let ok = if side == 0 {
                        w[0].price < w[1].price
                    } else {
                        w[0].price > w[1].price
                    };
                    if !ok {
                        return Err(CheckError::OutOfOrder {
                            locate: loc as u16,
                            side,
                            first: w[0].price,
                            then: w[1].price,
                        });
                    }
                }
                for l in lv {
                    if l.orders == 0 || l.shares == 0 {
                        return Err(CheckError::EmptyLevel {
                            locate: loc as u16,
                            side,
                            price: l.price,
                        });
                    }
                    got.insert((loc as u16, side, l.price), (l.shares, l.orders));
                }
            }
        }
        let diff = want
            .iter()
            .find(|(k, v)| got.get(k) != Some(v))
            .map(|(k, v)| (*k, Some(*v), got.get(k).copied()))
            .or_else(|| {
                got.iter()
                    .find(|(k, _)| !want.contains_key(k))
                    .map(|(k, v)| (*k, None, Some(*v)))
            });
        match diff {
            Some(((locate, side, price), orders, level)) => Err(CheckError::Disagree {
                locate,
                side,
                price,
                orders,
                level,
            }),
            None => Ok(()),
        }
    }
}

/// An inconsistency [`Books::check`] found (`side` 0 is bids, 1 asks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// A live order with no shares.
    #[error("order {0} has zero shares")]
    ZeroShares(u64),
    /// Two neighbouring levels not strictly sorted best first.
    #[error("locate {locate} side {side}: levels out of order, price {first} then {then}")]
    OutOfOrder {
        /// Stock locate.
        locate: u16,
        /// 0 bids, 1 asks.
        side: usize,
        /// The first level's price.
        first: u32,
        /// The next level's price.
        then: u32,
    },
    /// A level with no shares or no orders.
    #[error("locate {locate} side {side}: empty level at price {price}")]
    EmptyLevel {
        /// Stock locate.
        locate: u16,
        /// 0 bids, 1 asks.
        side: usize,
        /// Its price.
        price: u32,
    },
    /// A level whose (shares, orders) differ from the sums of the live orders at its price.
    #[error(
        "levels disagree with orders: first difference at locate {locate} side {side} price {price}: orders {orders:?}, level {level:?} (shares, orders)"
    )]
    Disagree {
        /// Stock locate.
        locate: u16,
        /// 0 bids, 1 asks.
        side: usize,
        /// The price.
        price: u32,
        /// (shares, orders) of the live orders there, if any.
        orders: Option<(u64, u32)>,
        /// (shares, orders) of the level, if any.
        level: Option<(u64, u32)>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_arena_overflow_is_counted() {
        let mut b = Books::new(BookConfig {
            max_orders: 100,
            max_locates: 4,
            max_levels: 8,
        });
        for i in 0..10u32 {
            b.add(1, i as u64, b'B', 10, 100 + i, [0; 4], b"X       ");
        }
        assert_eq!(b.stats().adds, 8);
        assert_eq!(b.stats().level_overflows, 2);
        assert_eq!(b.live_orders(), 8);
        b.check().unwrap();
    }
}
