//! The matching engine behind an independent feed: price-time books, and the ITCH messages and
//! firm flow records each action produces. Real aggressor semantics: an incoming marketable
//! order is never displayed — only the executions of the resting orders it meets (E) appear,
//! and what is left of it may rest as an add at its limit.

use super::price::{down, tick_at, up};
use crate::itch::be::{BeU32, BeU64};
use crate::itch::encode::{header, push_frame};
use crate::itch::wire::*;
use crate::itch::Side;
use crate::surv::{FlowEvent, FlowRecord, Party};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Who sends an order: its MPID on the feed (an 'F' add) if attributed, and the firm account
/// that owns it if it is one of the firm's (recorded in the flow).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Who {
    /// Shown on the add ('F'), else anonymous ('A').
    pub mpid: Option<[u8; 4]>,
    /// The firm account (index into the firm's accounts) when the firm owns the order.
    pub acct: Option<u8>,
}

impl Who {
    /// Anonymous, not the firm's.
    pub const ANON: Who = Who {
        mpid: None,
        acct: None,
    };
}

/// A resting order.
#[derive(Clone, Copy, Debug)]
pub struct Order {
    /// Stock locate.
    pub locate: u16,
    /// Side.
    pub side: Side,
    /// Display price.
    pub price: u32,
    /// Shares left.
    pub shares: u32,
    /// Owner.
    pub who: Who,
}

/// One stock's book and tape.
#[derive(Debug, Default)]
pub struct Stock {
    /// Symbol, space padded.
    pub sym: [u8; 8],
    bids: BTreeMap<u32, VecDeque<u64>>,
    asks: BTreeMap<u32, VecDeque<u64>>,
    /// Last displayed execution price (0: none yet).
    pub last: u32,
    /// Shares executed so far.
    pub volume: u64,
}

/// Books, the message buffer and the firm's flow.
#[derive(Debug, Default)]
pub struct Market {
    /// The framed ITCH messages written so far.
    pub out: Vec<u8>,
    /// Messages written.
    pub messages: u64,
    /// Stocks by locate - 1.
    pub stocks: Vec<Stock>,
    /// Live orders.
    pub orders: HashMap<u64, Order>,
    /// The firm's flow (`None`: the feed has no flow file).
    pub flow: Option<Vec<FlowRecord>>,
    /// The firm's MPID.
    pub firm: [u8; 4],
    /// The firm's accounts.
    pub accounts: Vec<Party>,
    /// Current time, ns since midnight (every message is stamped with it).
    pub ts: u64,
    next_ref: u64,
    next_match: u64,
}

impl Market {
    /// A market of `syms` (locates 1..), the firm and its accounts; `flow` keeps its records.
    pub fn new(syms: Vec<[u8; 8]>, firm: [u8; 4], accounts: Vec<Party>, flow: bool) -> Market {
        Market {
            stocks: syms
                .into_iter()
                .map(|sym| Stock {
                    sym,
                    ..Stock::default()
                })
                .collect(),
            firm,
            accounts,
            flow: flow.then(Vec::new),
            next_ref: 1_000,
            next_match: 1,
            ..Market::default()
        }
    }

    /// The stock at `locate`.
    pub fn stock(&self, locate: u16) -> &Stock {
        &self.stocks[locate as usize - 1]
    }

    fn stock_mut(&mut self, locate: u16) -> &mut Stock {
        &mut self.stocks[locate as usize - 1]
    }

    fn sym(&self, locate: u16) -> [u8; 8] {
        self.stock(locate).sym
    }

    /// Writes one message.
    pub fn emit<M: bytemuck::Pod>(&mut self, m: &M) {
        push_frame(&mut self.out, m);
        self.messages += 1;
    }

    /// A header for a message now.
    pub fn hdr(&self, ty: u8, locate: u16) -> Header {
        header(ty, locate, 0, self.ts)
    }

    fn level_map(&self, locate: u16, side: Side) -> &BTreeMap<u32, VecDeque<u64>> {
        let s = self.stock(locate);
        match side {
            Side::Buy => &s.bids,
            Side::Sell => &s.asks,
        }
    }

    fn level_map_mut(&mut self, locate: u16, side: Side) -> &mut BTreeMap<u32, VecDeque<u64>> {
        let s = self.stock_mut(locate);
        match side {
            Side::Buy => &mut s.bids,
            Side::Sell => &mut s.asks,
        }
    }

    /// Best price of `side`.
    pub fn best(&self, locate: u16, side: Side) -> Option<u32> {
        let m = self.level_map(locate, side);
        match side {
            Side::Buy => m.keys().next_back().copied(),
            Side::Sell => m.keys().next().copied(),
        }
    }

    /// Shares at the best price of `side` (0 if empty).
    pub fn touch_size(&self, locate: u16, side: Side) -> u32 {
        self.best(locate, side)
            .map_or(0, |p| self.level_shares(locate, side, p))
    }

    /// Shares resting at `price` on `side`.
    pub fn level_shares(&self, locate: u16, side: Side, price: u32) -> u32 {
        self.level_map(locate, side)
            .get(&price)
            .map_or(0, |q| q.iter().map(|r| self.orders[r].shares).sum())
    }

    /// The `k` best prices of `side`, best first.
    pub fn levels(&self, locate: u16, side: Side, k: usize) -> Vec<u32> {
        let m = self.level_map(locate, side);
        match side {
            Side::Buy => m.keys().rev().take(k).copied().collect(),
            Side::Sell => m.keys().take(k).copied().collect(),
        }
    }

    /// The mid, else the one side, else the last trade (0: nothing known).
    pub fn mid(&self, locate: u16) -> u32 {
        match (self.best(locate, Side::Buy), self.best(locate, Side::Sell)) {
            (Some(b), Some(a)) => (b + a) / 2,
            (Some(p), None) | (None, Some(p)) => p,
            (None, None) => self.stock(locate).last,
        }
    }

    /// Whether a `side` order at `price` would execute on arrival.
    pub fn marketable(&self, locate: u16, side: Side, price: u32) -> bool {
        match side {
            Side::Buy => self.best(locate, Side::Sell).is_some_and(|a| price >= a),
            Side::Sell => self.best(locate, Side::Buy).is_some_and(|b| price <= b),
        }
    }

    /// The nearest price to `price` on `side` that rests without executing.
    pub fn passive(&self, locate: u16, side: Side, price: u32) -> u32 {
        match side {
            Side::Buy => match self.best(locate, Side::Sell) {
                Some(a) if price >= a => down(a, 1),
                _ => price,
            },
            // Never an offer at the lowest price there is: a bid could not rest below it.
            Side::Sell => match self.best(locate, Side::Buy) {
                Some(b) if price <= b => up(b, 1),
                _ => price.max(2),
            },
        }
    }

    fn record(&mut self, acct: u8, locate: u16, event: FlowEvent, side: Side, refs: (u64, u64)) {
        let (order_ref, match_number) = refs;
        let (price, shares) = self
            .orders
            .get(&order_ref)
            .map_or((0, 0), |o| (o.price, o.shares));
        self.record_px(
            acct,
            locate,
            event,
            side,
            (order_ref, match_number),
            price,
            shares,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn record_px(
        &mut self,
        acct: u8,
        locate: u16,
        event: FlowEvent,
        side: Side,
        refs: (u64, u64),
        price: u32,
        shares: u32,
    ) {
        let sym = self.sym(locate);
        let (ts, firm) = (self.ts, self.firm);
        let account = self.accounts[acct as usize];
        if let Some(f) = self.flow.as_mut() {
            f.push(FlowRecord {
                ts,
                account,
                mpid: firm,
                stock: sym,
                event,
                side,
                order_ref: refs.0,
                price,
                shares,
                match_number: refs.1,
            });
        }
    }

    /// Rests a non-marketable order (the caller makes sure it is: see [`Market::passive`]);
    /// returns its reference.
    pub fn add(&mut self, locate: u16, side: Side, price: u32, shares: u32, who: Who) -> u64 {
        debug_assert!(!self.marketable(locate, side, price), "a marketable add");
        debug_assert!(price % tick_at(price) == 0, "off the tick grid: {price}");
        let r = self.next_ref;
        self.next_ref += 1;
        let stock = self.sym(locate);
        let (order_ref, sb, sh, px) = (
            BeU64::new(r),
            side.as_byte(),
            BeU32::new(shares),
            BeU32::new(price),
        );
        match who.mpid {
            Some(attribution) => self.emit(&AddOrderMpid {
                hdr: self.hdr(b'F', locate),
                order_ref,
                side: sb,
                shares: sh,
                stock,
                price: px,
                attribution,
            }),
            None => self.emit(&AddOrder {
                hdr: self.hdr(b'A', locate),
                order_ref,
                side: sb,
                shares: sh,
                stock,
                price: px,
            }),
        }
        let o = Order {
            locate,
            side,
            price,
            shares,
            who,
        };
        self.orders.insert(r, o);
        self.level_map_mut(locate, side)
            .entry(price)
            .or_default()
            .push_back(r);
        if let Some(a) = who.acct {
            self.record(a, locate, FlowEvent::New, side, (r, 0));
        }
        r
    }

    fn unlink(&mut self, r: u64) -> Option<Order> {
        let o = self.orders.remove(&r)?;
        let m = self.level_map_mut(o.locate, o.side);
        if let Some(q) = m.get_mut(&o.price) {
            q.retain(|&x| x != r);
            if q.is_empty() {
                m.remove(&o.price);
            }
        }
        Some(o)
    }

    /// Executes `n` shares of resting order `r` against an aggressor `by` (an E message; flow
    /// fills for whichever side is the firm's). Returns the shares executed.
    pub fn execute(&mut self, r: u64, n: u32, by: Who) -> u32 {
        let Some(o) = self.orders.get(&r).copied() else {
            return 0;
        };
        let n = n.min(o.shares);
        if n == 0 {
            return 0;
        }
        let m = self.next_match;
        self.next_match += 1;
        self.emit(&OrderExecuted {
            hdr: self.hdr(b'E', o.locate),
            order_ref: BeU64::new(r),
            executed_shares: BeU32::new(n),
            match_number: BeU64::new(m),
        });
        if let Some(a) = o.who.acct {
            self.record_px(a, o.locate, FlowEvent::Fill, o.side, (r, m), o.price, n);
        }
        if let Some(a) = by.acct {
            let aside = opposite(o.side);
            self.record_px(a, o.locate, FlowEvent::Fill, aside, (0, m), o.price, n);
        }
        let st = self.stock_mut(o.locate);
        st.last = o.price;
        st.volume += n as u64;
        if n == o.shares {
            self.unlink(r);
        } else if let Some(x) = self.orders.get_mut(&r) {
            x.shares -= n;
        }
        n
    }

    /// An incoming order of `by` on `side` for `shares`, limited to `limit` (`None`: a market
    /// order): it executes the resting orders it meets in price-time priority; what is left rests
    /// at the limit when `rest`, else is gone unseen. Returns (shares executed, resting ref).
    pub fn submit(
        &mut self,
        locate: u16,
        side: Side,
        limit: Option<u32>,
        shares: u32,
        by: Who,
        rest: bool,
    ) -> (u32, Option<u64>) {
        let mut left = shares;
        while left > 0 {
            let other = opposite(side);
            let Some(p) = self.best(locate, other) else {
                break;
            };
            let crosses = limit.map_or(true, |l| match side {
                Side::Buy => p <= l,
                Side::Sell => p >= l,
            });
            if !crosses {
                break;
            }
            let front = self.level_map(locate, other)[&p][0];
            left -= self.execute(front, left, by);
        }
        let done = shares - left;
        // An offer at the lowest price there is would leave no room for a bid: not rested.
        let rests = rest && left > 0 && !(side == Side::Sell && limit.is_some_and(|l| l < 2));
        let rested = match (limit, rests) {
            (Some(l), true) => Some(self.add(locate, side, l, left, by)),
            _ => None,
        };
        (done, rested)
    }

    /// Shares that execute before resting order `r` does (better prices, then its queue).
    pub fn ahead_of(&self, r: u64) -> Option<u32> {
        let o = self.orders.get(&r)?;
        let m = self.level_map(o.locate, o.side);
        let range = match o.side {
            Side::Buy => m.range(o.price + 1..),
            Side::Sell => m.range(..o.price),
        };
        let better: u32 = range
            .flat_map(|(_, q)| q.iter())
            .map(|x| self.orders[x].shares)
            .sum();
        let queue: u32 = m[&o.price]
            .iter()
            .take_while(|&&x| x != r)
            .map(|x| self.orders[x].shares)
            .sum();
        Some(better + queue)
    }

    /// An aggressor `by` takes `n` shares of resting order `r`, and everything ahead of it.
    pub fn take_through(&mut self, r: u64, n: u32, by: Who) -> u32 {
        let (Some(ahead), Some(o)) = (self.ahead_of(r), self.orders.get(&r).copied()) else {
            return 0;
        };
        let n = n.min(o.shares);
        self.submit(
            o.locate,
            opposite(o.side),
            Some(o.price),
            ahead + n,
            by,
            false,
        )
        .0
    }

    /// Deletes order `r` (a D message; a flow cancel).
    pub fn delete(&mut self, r: u64) -> bool {
        let Some(o) = self.orders.get(&r).copied() else {
            return false;
        };
        self.emit(&OrderDelete {
            hdr: self.hdr(b'D', o.locate),
            order_ref: BeU64::new(r),
        });
        if let Some(a) = o.who.acct {
            self.record(a, o.locate, FlowEvent::Cancel, o.side, (r, 0));
        }
        self.unlink(r);
        true
    }

    /// Cancels `n` shares of order `r`, keeping at least one (an X message).
    pub fn reduce(&mut self, r: u64, n: u32) {
        let Some(o) = self.orders.get(&r).copied() else {
            return;
        };
        let n = n.min(o.shares.saturating_sub(1));
        if n == 0 {
            return;
        }
        self.emit(&OrderCancel {
            hdr: self.hdr(b'X', o.locate),
            order_ref: BeU64::new(r),
            cancelled_shares: BeU32::new(n),
        });
        if let Some(a) = o.who.acct {
            let refs = (r, 0);
            self.record_px(a, o.locate, FlowEvent::Cancel, o.side, refs, o.price, n);
        }
        if let Some(x) = self.orders.get_mut(&r) {
            x.shares -= n;
        }
    }

    /// Replaces order `r` by a new one at a non-marketable `price` (a U message); returns the
    /// new reference.
    pub fn replace(&mut self, r: u64, price: u32, shares: u32) -> Option<u64> {
        let o = self.orders.get(&r).copied()?;
        let price = self.passive(o.locate, o.side, price);
        let nr = self.next_ref;
        self.next_ref += 1;
        self.emit(&OrderReplace {
            hdr: self.hdr(b'U', o.locate),
            original_order_ref: BeU64::new(r),
            new_order_ref: BeU64::new(nr),
            shares: BeU32::new(shares),
            price: BeU32::new(price),
        });
        if let Some(a) = o.who.acct {
            self.record(a, o.locate, FlowEvent::Cancel, o.side, (r, 0));
        }
        self.unlink(r);
        let n = Order { price, shares, ..o };
        self.orders.insert(nr, n);
        self.level_map_mut(o.locate, o.side)
            .entry(price)
            .or_default()
            .push_back(nr);
        if let Some(a) = o.who.acct {
            self.record(a, o.locate, FlowEvent::New, o.side, (nr, 0));
        }
        Some(nr)
    }

    /// A non-displayed order on `side` executes at `price` (a P message).
    pub fn hidden(&mut self, locate: u16, side: Side, price: u32, shares: u32) {
        let m = self.next_match;
        self.next_match += 1;
        self.emit(&Trade {
            hdr: self.hdr(b'P', locate),
            order_ref: BeU64::new(0),
            side: side.as_byte(),
            shares: BeU32::new(shares),
            stock: self.sym(locate),
            price: BeU32::new(price),
            match_number: BeU64::new(m),
        });
    }

    /// Resting order `r` executes `n` shares in a cross at `price` (a C message, not printable:
    /// the cross's own print carries the volume).
    pub fn execute_in_cross(&mut self, r: u64, n: u32, price: u32) {
        let Some(o) = self.orders.get(&r).copied() else {
            return;
        };
        let n = n.min(o.shares);
        let m = self.next_match;
        self.next_match += 1;
        self.emit(&OrderExecutedWithPrice {
            hdr: self.hdr(b'C', o.locate),
            order_ref: BeU64::new(r),
            executed_shares: BeU32::new(n),
            match_number: BeU64::new(m),
            printable: b'N',
            execution_price: BeU32::new(price),
        });
        if let Some(a) = o.who.acct {
            self.record_px(a, o.locate, FlowEvent::Fill, o.side, (r, m), price, n);
        }
        if n == o.shares {
            self.unlink(r);
        } else if let Some(x) = self.orders.get_mut(&r) {
            x.shares -= n;
        }
    }

    /// A cross print ('O', 'C', 'H').
    pub fn cross(&mut self, locate: u16, kind: u8, price: u32, shares: u64) {
        let m = self.next_match;
        self.next_match += 1;
        self.emit(&CrossTrade {
            hdr: self.hdr(b'Q', locate),
            shares: BeU64::new(shares),
            stock: self.sym(locate),
            cross_price: BeU32::new(price),
            match_number: BeU64::new(m),
            cross_type: kind,
        });
        self.stock_mut(locate).last = price;
    }

    /// A system event.
    pub fn system(&mut self, code: u8) {
        self.emit(&SystemEvent {
            hdr: self.hdr(b'S', 0),
            event_code: code,
        });
    }

    /// A trading action (`H` halted, `Q` quotation only, `T` trading).
    pub fn trading(&mut self, locate: u16, state: u8, reason: [u8; 4]) {
        self.emit(&StockTradingAction {
            hdr: self.hdr(b'H', locate),
            stock: self.sym(locate),
            trading_state: state,
            reserved: b' ',
            reason,
        });
    }

    /// The first `n` live order references of `locate` on `side`, best first.
    pub fn refs(&self, locate: u16, side: Side, n: usize) -> Vec<u64> {
        let m = self.level_map(locate, side);
        let it: Box<dyn Iterator<Item = &VecDeque<u64>>> = match side {
            Side::Buy => Box::new(m.values().rev()),
            Side::Sell => Box::new(m.values()),
        };
        it.flat_map(|q| q.iter().copied()).take(n).collect()
    }
}

/// The other side.
pub fn opposite(s: Side) -> Side {
    match s {
        Side::Buy => Side::Sell,
        Side::Sell => Side::Buy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn market(flow: bool) -> Market {
        let acct = crate::surv::event::party_of_name("ACCT01").unwrap();
        Market::new(vec![*b"ABC     "], *b"FIRM", vec![acct], flow)
    }

    /// The type letters written so far.
    fn types(m: &Market) -> String {
        crate::feed::Frames::new(&m.out)
            .map(|f| f.unwrap().body[0] as char)
            .collect()
    }

    #[test]
    fn an_offer_never_rests_at_the_lowest_price_so_a_bid_always_can() {
        // Seed 71 wrote a locked book: a sell limited at $0.0001 took every bid and rested
        // there, and the next bid could only be placed at $0.0001 too.
        let mut m = market(false);
        m.add(1, Side::Buy, 1, 100, Who::ANON);
        let (done, rested) = m.submit(1, Side::Sell, Some(1), 300, Who::ANON, true);
        assert_eq!((done, rested), (100, None));
        assert_eq!(m.passive(1, Side::Sell, 1), 2);
        m.add(1, Side::Sell, m.passive(1, Side::Sell, 1), 100, Who::ANON);
        assert_eq!(m.passive(1, Side::Buy, 1), 1);
        assert!(!m.marketable(1, Side::Buy, 1));
    }

    #[test]
    fn a_marketable_order_is_never_added_only_its_executions_appear() {
        let mut m = market(false);
        let a1 = m.add(1, Side::Sell, 10_100, 100, Who::ANON);
        let a2 = m.add(1, Side::Sell, 10_100, 100, Who::ANON);
        let a3 = m.add(1, Side::Sell, 10_200, 100, Who::ANON);
        m.add(1, Side::Buy, 10_000, 100, Who::ANON);
        assert_eq!(types(&m), "AAAA");
        // Buy 250 up to $1.02: both $1.01 orders in time order, then 50 of the $1.02 one.
        let (done, rested) = m.submit(1, Side::Buy, Some(10_200), 250, Who::ANON, true);
        assert_eq!((done, rested), (250, None));
        assert_eq!(types(&m), "AAAAEEE");
        assert!(!m.orders.contains_key(&a1) && !m.orders.contains_key(&a2));
        assert_eq!(m.orders[&a3].shares, 50);
        assert_eq!(m.stock(1).last, 10_200);
        // Buy 100 more at $1.02: 50 execute, the remainder rests at its limit as an add.
        let (done, rested) = m.submit(1, Side::Buy, Some(10_200), 100, Who::ANON, true);
        assert_eq!(done, 50);
        let r = rested.expect("the remainder rests");
        assert_eq!((m.orders[&r].price, m.orders[&r].shares), (10_200, 50));
        assert_eq!(types(&m), "AAAAEEEEA");
        assert_eq!(m.best(1, Side::Buy), Some(10_200));
        assert_eq!(m.best(1, Side::Sell), None);
    }

    #[test]
    fn taking_an_order_takes_what_is_ahead_of_it_first() {
        let mut m = market(false);
        let first = m.add(1, Side::Buy, 10_000, 300, Who::ANON);
        let target = m.add(1, Side::Buy, 10_000, 200, Who::ANON);
        m.add(1, Side::Sell, 10_100, 100, Who::ANON);
        assert_eq!(m.ahead_of(target), Some(300));
        assert_eq!(m.take_through(target, 100, Who::ANON), 400);
        assert!(!m.orders.contains_key(&first));
        assert_eq!(m.orders[&target].shares, 100);
        // A passive price is pulled back from the other side.
        assert_eq!(m.passive(1, Side::Buy, 10_100), 10_000);
        assert_eq!(m.passive(1, Side::Sell, 9_900), 10_100);
    }

    #[test]
    fn the_firms_self_trade_is_two_fills_of_one_match_in_its_flow() {
        let mut m = market(true);
        let me = Who {
            mpid: Some(*b"FIRM"),
            acct: Some(0),
        };
        let o = m.add(1, Side::Sell, 10_100, 300, me);
        m.take_through(o, 300, Who { mpid: None, ..me });
        let f = m.flow.as_ref().unwrap();
        let ev: Vec<_> = f
            .iter()
            .map(|r| (r.event, r.side, r.match_number))
            .collect();
        assert_eq!(
            ev,
            [
                (FlowEvent::New, Side::Sell, 0),
                (FlowEvent::Fill, Side::Sell, 1),
                (FlowEvent::Fill, Side::Buy, 1),
            ]
        );
        assert!(f.iter().all(|r| r.account == m.accounts[0]));
    }
}
