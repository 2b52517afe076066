//! The ordinary market around the episodes: passive adds at and behind the touch (some inside
//! the spread), cancels (some within milliseconds), replaces, partial cancels, marketable orders
//! shown only through the executions they cause, and hidden prints inside the spread.

use super::market::{opposite, Market, Who};
use super::price::{down, tick_at, up};
use super::regime::Regime;
use crate::itch::Side;
use crate::rng::SplitMix64;

/// The background's participants and per-stock order lists.
#[derive(Debug)]
pub struct Background {
    /// MPIDs of attributed background orders (manipulators are drawn from the same pool).
    pub pool: Vec<[u8; 4]>,
    /// Orders the background placed, per stock (stale entries are skipped).
    live: Vec<Vec<u64>>,
    /// Resting orders the background aims for, per side.
    target: usize,
}

fn side(rng: &mut SplitMix64) -> Side {
    if rng.chance(0.5) {
        Side::Buy
    } else {
        Side::Sell
    }
}

impl Background {
    /// The background of `r`, attributed orders drawn from `pool`.
    pub fn new(r: &Regime, pool: Vec<[u8; 4]>) -> Background {
        Background {
            pool,
            live: vec![Vec::new(); r.stocks as usize],
            target: (r.levels * r.orders_per_level) as usize,
        }
    }

    fn who(&self, rng: &mut SplitMix64, m: &Market, r: &Regime) -> Who {
        let mpid = rng
            .chance(r.attributed)
            .then(|| self.pool[rng.below(self.pool.len() as u64) as usize]);
        // The firm's own orders (its MPID when attributed) are in its flow.
        let firm = mpid == Some(m.firm) || (mpid.is_none() && rng.chance(0.05));
        let acct = (firm && m.flow.is_some()).then(|| rng.below(m.accounts.len() as u64) as u8);
        Who { mpid, acct }
    }

    fn size(rng: &mut SplitMix64, r: &Regime) -> u32 {
        let lots = (r.order_size / 100).max(1);
        100 * (1 + rng.below(2 * lots as u64) as u32)
    }

    /// Builds every stock's resting book around its reference price, from the touch outward,
    /// the adds spread evenly over `[from, until]` ns (one instant when they are equal: a
    /// snapshot).
    pub fn seed_books(
        &mut self,
        m: &mut Market,
        rng: &mut SplitMix64,
        r: &Regime,
        (from, until): (u64, u64),
    ) {
        let n = (r.levels * 2 * r.orders_per_level * r.stocks as u32).max(1) as u64;
        let step = until.saturating_sub(from) / n;
        let mut k = 0;
        for lvl in 0..r.levels {
            for s in [Side::Buy, Side::Sell] {
                for _ in 0..r.orders_per_level {
                    for (i, &p) in r.prices.iter().enumerate() {
                        let half = r.spread_ticks.div_ceil(2);
                        let (bid, ask) = (down(p, half), up(down(p, half), r.spread_ticks));
                        let px = match s {
                            Side::Buy => down(bid, lvl * r.level_gap),
                            Side::Sell => up(ask, lvl * r.level_gap),
                        };
                        m.ts = from + k * step;
                        k += 1;
                        let who = self.who(rng, m, r);
                        let o = m.add(i as u16 + 1, s, px, Self::size(rng, r), who);
                        self.live[i].push(o);
                    }
                }
            }
        }
    }

    fn pick_live(
        &mut self,
        m: &Market,
        rng: &mut SplitMix64,
        loc: u16,
        recent: bool,
    ) -> Option<u64> {
        let l = &mut self.live[loc as usize - 1];
        // Stale entries (executed, deleted) leave the list as they are met.
        while !l.is_empty() {
            let n = l.len() as u64;
            let i = if recent {
                n - 1 - rng.below(n.min(8))
            } else {
                rng.below(n)
            } as usize;
            if m.orders.contains_key(&l[i]) {
                return Some(l[i]);
            }
            l.swap_remove(i);
        }
        None
    }

    /// A passive price on `s`: inside the spread sometimes, else at or behind the touch.
    fn passive_price(m: &Market, rng: &mut SplitMix64, r: &Regime, loc: u16, s: Side) -> u32 {
        let own = m.best(loc, s);
        let other = m.best(loc, opposite(s));
        let base = own.or_else(|| {
            other.map(|o| match s {
                Side::Buy => down(o, r.spread_ticks),
                Side::Sell => up(o, r.spread_ticks),
            })
        });
        let base = base.unwrap_or_else(|| m.mid(loc).max(tick_at(1)));
        let px = if rng.chance(0.15) {
            match s {
                Side::Buy => up(base, 1),
                Side::Sell => down(base, 1),
            }
        } else {
            let k = rng.geometric(0.6, r.levels) - 1;
            match s {
                Side::Buy => down(base, k * r.level_gap),
                Side::Sell => up(base, k * r.level_gap),
            }
        };
        m.passive(loc, s, px)
    }

    /// One background event on stock `loc`.
    pub fn step(&mut self, m: &mut Market, rng: &mut SplitMix64, r: &Regime, loc: u16) {
        let resting = self.live[loc as usize - 1].len();
        let add_p = if resting < 2 * self.target { 0.5 } else { 0.3 };
        let x = rng.unit();
        if x < add_p {
            let s = side(rng);
            let px = Self::passive_price(m, rng, r, loc, s);
            let who = self.who(rng, m, r);
            let o = m.add(loc, s, px, Self::size(rng, r), who);
            self.live[loc as usize - 1].push(o);
        } else if x < add_p + 0.3 {
            let recent = rng.chance(0.3);
            if let Some(o) = self.pick_live(m, rng, loc, recent) {
                m.delete(o);
            }
        } else if x < add_p + 0.36 {
            if let Some(o) = self.pick_live(m, rng, loc, false) {
                let n = m.orders[&o].shares / 2;
                m.reduce(o, n);
            }
        } else if x < add_p + 0.42 {
            self.replace(m, rng, r, loc);
        } else if x < add_p + 0.47 {
            self.hidden(m, rng, r, loc);
        } else {
            self.take(m, rng, r, loc);
        }
    }

    fn replace(&mut self, m: &mut Market, rng: &mut SplitMix64, r: &Regime, loc: u16) {
        let Some(o) = self.pick_live(m, rng, loc, false) else {
            return;
        };
        let ord = m.orders[&o];
        if ord.who.acct.is_some() {
            return;
        }
        let px = Self::passive_price(m, rng, r, loc, ord.side);
        if let Some(n) = m.replace(o, px, Self::size(rng, r)) {
            self.live[loc as usize - 1].push(n);
        }
    }

    fn hidden(&mut self, m: &mut Market, rng: &mut SplitMix64, r: &Regime, loc: u16) {
        if let (Some(b), Some(a)) = (m.best(loc, Side::Buy), m.best(loc, Side::Sell)) {
            let px = if up(b, 1) < a { up(b, 1) } else { b };
            m.hidden(loc, side(rng), px, Self::size(rng, r));
        }
    }

    /// A marketable order: it takes part of the touch or more; a remainder may rest.
    fn take(&mut self, m: &mut Market, rng: &mut SplitMix64, r: &Regime, loc: u16) {
        let s = side(rng);
        let touch = m.touch_size(loc, opposite(s));
        let Some(best) = m.best(loc, opposite(s)) else {
            return;
        };
        let want = ((touch as f64 * (0.1 + 1.2 * rng.unit())) as u32).max(100);
        let who = self.who(rng, m, r);
        // The firm trading against its own other account is a near miss for wash (different
        // accounts); against the same account it would be a wash, which the background avoids.
        let who = self.avoid_self_match(m, loc, s, who);
        let rest = rng.chance(0.2);
        let (_, rested) = m.submit(loc, s, Some(best), want, who, rest);
        if let Some(o) = rested {
            self.live[loc as usize - 1].push(o);
        }
    }

    fn avoid_self_match(&self, m: &Market, loc: u16, s: Side, who: Who) -> Who {
        let Some(a) = who.acct else { return who };
        let clash = m
            .refs(loc, opposite(s), 50)
            .iter()
            .any(|o| m.orders[o].who.acct == Some(a));
        if clash {
            Who::ANON
        } else {
            who
        }
    }
}
