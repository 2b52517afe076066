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
        let at = format!("message {} at offset {}", c.messages, f.offset);
        let hdr = header_of(f.body);
        let (locate, ts) = hdr;
        if ts < last_ts {
            return Err(format!("{at}: time goes back ({ts} < {last_ts})"));
        }
        last_ts = ts;
        let mut price_seen = None;
        match msg {
            Message::AddOrder(a) => {
                c.adds += 1;
                let side = Side::from_byte(a.side).ok_or(format!("{at}: bad side"))?;
                let (price, shares) = (a.price.get(), a.shares.get());
                b.put(
                    a.order_ref.get(),
                    Live {
                        locate,
                        side,
                        price,
                        shares,
                        added: ts,
                    },
                );
                price_seen = Some(price);
            }
            Message::AddOrderMpid(a) => {
                c.adds += 1;
                let side = Side::from_byte(a.side).ok_or(format!("{at}: bad side"))?;
                let (price, shares) = (a.price.get(), a.shares.get());
                b.put(
                    a.order_ref.get(),
                    Live {
                        locate,
                        side,
                        price,
                        shares,
                        added: ts,
                    },
                );
                price_seen = Some(price);
            }
            Message::OrderExecuted(e) => {
                c.executions += 1;
                exec(&mut b, e.order_ref.get(), e.executed_shares.get(), ts, &at)?;
            }
            Message::OrderExecutedWithPrice(e) => {
                c.executions += 1;
                price_seen = Some(e.execution_price.get());
                exec(&mut b, e.order_ref.get(), e.executed_shares.get(), ts, &at)?;
            }
            Message::OrderCancel(x) => {
                let r = x.order_ref.get();
                let o = b
                    .orders
                    .get_mut(&r)
                    .ok_or(format!("{at}: X of a dead order {r}"))?;
                if x.cancelled_shares.get() >= o.shares {
                    return Err(format!("{at}: X of all of order {r}'s shares"));
                }
                o.shares -= x.cancelled_shares.get();
            }
            Message::OrderDelete(d) => {
                let r = d.order_ref.get();
                b.take(r).ok_or(format!("{at}: D of a dead order {r}"))?;
            }
            Message::OrderReplace(u) => {
                let r = u.original_order_ref.get();
                let o = b.take(r).ok_or(format!("{at}: U of a dead order {r}"))?;
                let (price, shares) = (u.price.get(), u.shares.get());
                b.put(
                    u.new_order_ref.get(),
                    Live {
                        price,
                        shares,
                        added: ts,
                        ..o
                    },
                );
                price_seen = Some(price);
            }
            Message::Trade(p) => {
                c.hidden += 1;
                price_seen = Some(p.price.get());
            }
            Message::CrossTrade(q) => {
                c.crosses += 1;
                price_seen = Some(q.cross_price.get());
            }
            _ => {}
        }
        if let Some(p) = price_seen {
            if !on_grid(p) {
                return Err(format!("{at}: price {p} is off the Rule 612 grid"));
            }
            if p < DOLLAR && p % 100 != 0 {
                c.sub_penny += 1;
            }
        }
        if let Some((bid, ask)) = b.crossed(locate) {
            return Err(format!(
                "{at}: book of locate {locate} locked or crossed ({bid} >= {ask})"
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

fn exec(b: &mut Books, r: u64, n: u32, ts: u64, at: &str) -> Result<(), String> {
    let o = b
        .orders
        .get_mut(&r)
        .ok_or(format!("{at}: execution of a dead order {r}"))?;
    if o.added == ts {
        return Err(format!(
            "{at}: order {r} executes in the nanosecond it was added"
        ));
    }
    if n > o.shares {
        return Err(format!("{at}: {n} shares executed of {} resting", o.shares));
    }
    o.shares -= n;
    if o.shares == 0 {
        b.take(r);
    }
    Ok(())
}
