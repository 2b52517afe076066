//! The invariants of an independent feed, checked from its bytes: timestamps never go back,
//! every execution, cancel, delete and replace names a live order, no book is ever locked or
//! crossed (so no add was marketable: an aggressive order is never displayed), no order executes
//! in the nanosecond it was added, and every price lies on the Rule 612 grid.

use super::price::{on_grid, DOLLAR};
use crate::feed::Frames;
use crate::itch::{decode, Message, Side};
use std::collections::{BTreeMap, HashMap};

/// What the check counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checked {
    /// Messages.
    pub messages: u64,
    /// Adds ('A', 'F').
    pub adds: u64,
    /// Executions ('E', 'C').
    pub executions: u64,
    /// Hidden prints ('P').
    pub hidden: u64,
    /// Crosses ('Q').
    pub crosses: u64,
    /// Prices below $1.00 that are not whole cents (sub-penny quotes).
    pub sub_penny: u64,
}

#[derive(Clone, Copy)]
struct Live {
    locate: u16,
    side: Side,
    price: u32,
    shares: u32,
    added: u64,
}

type Levels = BTreeMap<u32, u32>;

#[derive(Default)]
struct Books {
    orders: HashMap<u64, Live>,
    sides: HashMap<(u16, bool), Levels>,
}

impl Books {
    fn level(&mut self, o: &Live) -> &mut Levels {
        self.sides
            .entry((o.locate, o.side == Side::Buy))
            .or_default()
    }
    fn put(&mut self, r: u64, o: Live) {
        *self.level(&o).entry(o.price).or_default() += 1;
        self.orders.insert(r, o);
    }
    fn take(&mut self, r: u64) -> Option<Live> {
        let o = self.orders.remove(&r)?;
        let l = self.level(&o);
        let n = l.get_mut(&o.price).expect("level of a live order");
        *n -= 1;
        if *n == 0 {
            l.remove(&o.price);
        }
        Some(o)
    }
    fn crossed(&self, locate: u16) -> Option<(u32, u32)> {
        let bid = self.sides.get(&(locate, true))?.keys().next_back()?;
        let ask = self.sides.get(&(locate, false))?.keys().next()?;
        (bid >= ask).then_some((*bid, *ask))
    }
}

/// Where a message sits, for error messages and timestamps.
struct At {
    locate: u16,
    ts: u64,
    text: String,
}

impl Books {
    fn add(&mut self, at: &At, r: u64, side: u8, price: u32, shares: u32) -> Result<(), String> {
        let side = Side::from_byte(side).ok_or(format!("{}: bad side", at.text))?;
        let (locate, added) = (at.locate, at.ts);
        let o = Live {
            locate,
            side,
            price,
            shares,
            added,
        };
        self.put(r, o);
        Ok(())
    }

    fn cancel(&mut self, at: &At, r: u64, n: u32) -> Result<(), String> {
        let o = self.orders.get_mut(&r);
        let o = o.ok_or(format!("{}: X of a dead order {r}", at.text))?;
        if n >= o.shares {
            return Err(format!("{}: X of all of order {r}'s shares", at.text));
        }
        o.shares -= n;
        Ok(())
    }

    fn replace(
        &mut self,
        at: &At,
        r: u64,
        new: u64,
        price: u32,
        shares: u32,
    ) -> Result<(), String> {
        let o = self
            .take(r)
            .ok_or(format!("{}: U of a dead order {r}", at.text))?;
        let added = at.ts;
        self.put(
            new,
            Live {
                price,
                shares,
                added,
                ..o
            },
        );
        Ok(())
    }

    fn exec(&mut self, at: &At, r: u64, n: u32) -> Result<(), String> {
        let o = self.orders.get_mut(&r);
        let o = o.ok_or(format!("{}: execution of a dead order {r}", at.text))?;
        if o.added == at.ts {
            let t = &at.text;
            return Err(format!(
                "{t}: order {r} executes in the nanosecond it was added"
            ));
        }
        if n > o.shares {
            return Err(format!(
                "{}: {n} shares executed of {} resting",
                at.text, o.shares
            ));
        }
        o.shares -= n;
        if o.shares == 0 {
            self.take(r);
        }
        Ok(())
    }

    /// Applies one message; returns the price it carries, if any.
    fn apply(&mut self, c: &mut Checked, at: &At, msg: Message) -> Result<Option<u32>, String> {
        Ok(match msg {
            Message::AddOrder(a) => {
                c.adds += 1;
                let (px, n) = (a.price.get(), a.shares.get());
                self.add(at, a.order_ref.get(), a.side, px, n)?;
                Some(px)
            }
            Message::AddOrderMpid(a) => {
                c.adds += 1;
                let (px, n) = (a.price.get(), a.shares.get());
                self.add(at, a.order_ref.get(), a.side, px, n)?;
                Some(px)
            }
            Message::OrderExecuted(e) => {
                c.executions += 1;
                self.exec(at, e.order_ref.get(), e.executed_shares.get())?;
                None
            }
            Message::OrderExecutedWithPrice(e) => {
                c.executions += 1;
                self.exec(at, e.order_ref.get(), e.executed_shares.get())?;
                Some(e.execution_price.get())
            }
            Message::OrderCancel(x) => {
                self.cancel(at, x.order_ref.get(), x.cancelled_shares.get())?;
                None
            }
            Message::OrderDelete(d) => {
                let r = d.order_ref.get();
                self.take(r)
                    .ok_or(format!("{}: D of a dead order {r}", at.text))?;
                None
            }
            Message::OrderReplace(u) => {
                let (r, new) = (u.original_order_ref.get(), u.new_order_ref.get());
                self.replace(at, r, new, u.price.get(), u.shares.get())?;
                Some(u.price.get())
            }
            Message::Trade(p) => {
                c.hidden += 1;
                Some(p.price.get())
            }
            Message::CrossTrade(q) => {
                c.crosses += 1;
                Some(q.cross_price.get())
            }
            _ => None,
        })
    }
}

/// Checks `feed`; the first broken invariant is the error, naming the message.
///
/// # Errors
/// A description of the first violation.
pub fn check(feed: &[u8]) -> Result<Checked, String> {
    let mut c = Checked::default();
    let mut b = Books::default();
    let mut last_ts = 0;
    for f in Frames::new(feed) {
        let f = f.map_err(|e| format!("framing: {e:?}"))?;
        let msg = decode(f.body, f.offset).map_err(|e| format!("decode: {e:?}"))?;
        c.messages += 1;
        let (locate, ts) = header_of(f.body);
        let text = format!("message {} at offset {}", c.messages, f.offset);
        let at = At { locate, ts, text };
        if ts < last_ts {
            return Err(format!("{}: time goes back ({ts} < {last_ts})", at.text));
        }
        last_ts = ts;
        if let Some(p) = b.apply(&mut c, &at, msg)? {
            if !on_grid(p) {
                return Err(format!("{}: price {p} is off the Rule 612 grid", at.text));
            }
            if p < DOLLAR && p % 100 != 0 {
                c.sub_penny += 1;
            }
        }
        if let Some((bid, ask)) = b.crossed(locate) {
            let t = &at.text;
            return Err(format!(
                "{t}: book of locate {locate} locked or crossed ({bid} >= {ask})"
            ));
        }
    }
    Ok(c)
}

fn header_of(body: &[u8]) -> (u16, u64) {
    let locate = u16::from_be_bytes([body[1], body[2]]);
    let mut t = [0u8; 8];
    t[2..].copy_from_slice(&body[5..11]);
    (locate, u64::from_be_bytes(t))
}
