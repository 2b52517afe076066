//! Where episodes go (stock and time, never two on one stock at once) and the run that plays
//! them between the background's events, in time order.

use super::background::Background;
use super::episodes::{plan, Act, At, Ctx, Kind, Plan, Sz};
use super::market::{opposite, Market};
use super::price::{by_bps, down, up};
use super::regime::{Regime, Start};
use super::session::{self, Times};
use crate::itch::Side;
use crate::rng::SplitMix64;
use crate::truth::Episode;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

const SEC: u64 = 1_000_000_000;

/// How many of each kind a feed gets.
fn count(rng: &mut SplitMix64, k: Kind, r: &Regime) -> u64 {
    match k {
        Kind::Close => 1 + rng.below((r.stocks as u64 / 2).max(1)),
        Kind::RebalanceClose if !r.closing_cross => 0,
        Kind::RebalanceClose => rng.below(2),
        Kind::ThinTouch if r.spread_ticks < 3 => 0,
        _ if Kind::NEGATIVES.contains(&k) => 1 + rng.below(2),
        _ => 1 + rng.below(3),
    }
}

/// Plans every episode of the feed.
pub fn schedule(rng: &mut SplitMix64, r: &Regime, t: &Times, pool: &[[u8; 4]]) -> Vec<Plan> {
    let mut plans: Vec<Plan> = Vec::new();
    let stocks = r.stocks as u64;
    let ctx = |rng: &mut SplitMix64, locate: u16, start: u64| Ctx {
        locate,
        start,
        mpid: pool[1 + rng.below(pool.len() as u64 - 1) as usize],
        flow_acct: r.flow.then(|| rng.below(6) as u8),
        firm: pool[0],
        close: t.close,
        wide: r.spread_ticks >= 3,
    };
    // The close's kinds first: one per stock, over the last minutes.
    let mut closing: Vec<u16> = (1..=r.stocks).collect();
    for k in [Kind::Close, Kind::RebalanceClose] {
        for _ in 0..count(rng, k, r) {
            if closing.is_empty() {
                break;
            }
            let loc = closing.swap_remove(rng.below(closing.len() as u64) as usize);
            let c = ctx(rng, loc, t.close - 300 * SEC);
            plans.push(plan(k, rng, &c));
        }
    }
    let from = t.episodes_from();
    let until = t.close - 6 * 60 * SEC;
    let kinds = Kind::FAMILIES.into_iter().chain(Kind::NEGATIVES);
    for k in kinds.filter(|k| *k != Kind::Close) {
        for _ in 0..count(rng, k, r) {
            for _try in 0..100 {
                let loc = 1 + rng.below(stocks) as u16;
                let start = from + rng.below(until.saturating_sub(from).max(1));
                let c = ctx(rng, loc, start);
                let p = plan(k, rng, &c);
                let (a, b) = (p.start(), p.end() + p.margin);
                let clash = plans.iter().any(|q| {
                    q.locate == loc && a < q.end() + q.margin + 5 * SEC && q.start() < b + 5 * SEC
                });
                if b < until && !clash {
                    plans.push(p);
                    break;
                }
            }
        }
    }
    plans.sort_by_key(|p| (p.start(), p.locate));
    plans
}

/// The truth records of `plans`.
/// `played[i]` false: plan i did not play as its definition needs, and its expected detector is
/// [`VOID`](crate::surv::eval::VOID).
pub fn truth(m: &Market, plans: &[Plan], played: &[bool], t: &Times) -> Vec<Episode> {
    plans
        .iter()
        .zip(played)
        .enumerate()
        .map(|(i, (p, &ok))| {
            let closing = matches!(p.kind, Kind::Close | Kind::RebalanceClose);
            let (start, end) = (p.start(), p.end());
            let sym = String::from_utf8_lossy(&m.stock(p.locate).sym)
                .trim_end()
                .to_string();
            Episode {
                id: i as u32,
                scenario: p.kind.name().to_string(),
                detector: if ok {
                    p.kind.detector()
                } else {
                    crate::surv::eval::VOID
                }
                .to_string(),
                stock: sym,
                locate: p.locate,
                participant: p.participant.clone(),
                mpid: p.mpid.clone(),
                account: p.account.clone(),
                start_ns: start,
                end_ns: end,
                detect_from_ns: start,
                detect_until_ns: if closing {
                    t.close + p.margin
                } else {
                    end + p.margin
                },
            }
        })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Release(u16),
    Noii(u16),
    Act(usize, usize),
    Background(u16),
}

/// An episode's state while it plays.
#[derive(Clone, Debug, Default)]
struct EpState {
    handles: [Option<u64>; 16],
    ref_px: u32,
    ref_vol: u64,
    /// Scripted fills that found their order live, and gone (the market took it first).
    fills_done: u32,
    fills_missed: u32,
    /// Scripted cancels that found their order live, and gone.
    cancels_live: u32,
    cancels_missed: u32,
}

impl EpState {
    /// Whether the episode played as its definition needs. A genuine order or an exit that
    /// the market filled before the script did still executed; but a spoof the market took
    /// is no spoof, layering needs two layers cancelled, and a wash needs one self-trade.
    fn played(&self, kind: Kind) -> bool {
        match kind {
            Kind::Spoofing => self.cancels_missed == 0,
            Kind::Layering => self.cancels_live >= 2,
            Kind::Wash => self.fills_done >= 1,
            _ => true,
        }
    }
}

/// Plays the continuous session: background events and episode actions in time order.
pub fn run(
    m: &mut Market,
    bg: &mut Background,
    rng: &mut SplitMix64,
    r: &Regime,
    t: &Times,
    plans: &[Plan],
) -> Vec<bool> {
    let mut q: BinaryHeap<Reverse<(u64, u64, Ev)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut push = |q: &mut BinaryHeap<_>, ts: u64, ev: Ev| {
        seq += 1;
        q.push(Reverse((ts, seq, ev)));
    };
    for loc in 1..=r.stocks {
        let rel = t.release[loc as usize - 1];
        if r.start == Start::HaltCross {
            push(&mut q, rel, Ev::Release(loc));
        }
        push(&mut q, rel + 1 + gap(rng, r.rate), Ev::Background(loc));
        if r.closing_cross && r.noii {
            for k in [50, 30, 10] {
                push(&mut q, t.close - k * SEC, Ev::Noii(loc));
            }
        }
    }
    for (i, p) in plans.iter().enumerate() {
        for (j, (ts, _)) in p.acts.iter().enumerate() {
            push(&mut q, *ts, Ev::Act(i, j));
        }
    }
    let mut states = vec![EpState::default(); plans.len()];
    let mut owned: HashSet<u64> = HashSet::new();
    while let Some(Reverse((ts, _, ev))) = q.pop() {
        if ts >= t.close {
            break;
        }
        m.ts = m.ts.max(ts);
        match ev {
            Ev::Release(loc) => session::release(m, rng, r, loc),
            Ev::Noii(loc) => session::closing_noii(m, rng, plans, loc),
            Ev::Background(loc) => {
                bg.step(m, rng, r, loc);
                push(&mut q, ts + gap(rng, r.rate), Ev::Background(loc));
            }
            Ev::Act(i, j) => {
                let p = &plans[i];
                act(m, rng, p.locate, p.acts[j].1, &mut states[i], &mut owned);
            }
        }
    }
    states
        .iter()
        .zip(plans)
        .map(|(s, p)| s.played(p.kind))
        .collect()
}

/// An exponential gap at `rate` per second, ns (at least 1 µs).
fn gap(rng: &mut SplitMix64, rate: f64) -> u64 {
    let u = 1.0 - rng.unit();
    ((-u.ln() / rate) * 1e9) as u64 + 1_000
}

fn size(m: &Market, loc: u16, side: Side, sz: Sz, st: &EpState) -> u32 {
    let raw = match sz {
        Sz::Shares(n) => n as f64,
        Sz::Touch(x) => x * m.touch_size(loc, side) as f64,
        Sz::Opp(x) => x * m.touch_size(loc, opposite(side)) as f64,
        Sz::Ramp(x) => x * (m.stock(loc).volume - st.ref_vol) as f64,
    };
    ((raw / 100.0).ceil() as u32).max(1) * 100
}

fn place_price(m: &Market, loc: u16, side: Side, at: At) -> u32 {
    let best = m.best(loc, side).unwrap_or_else(|| m.mid(loc).max(1));
    let px = match (at, side) {
        (At::Level(k), Side::Buy) => down(best, k),
        (At::Level(k), Side::Sell) => up(best, k),
        (At::Improve, Side::Buy) => up(best, 1),
        (At::Improve, Side::Sell) => down(best, 1),
    };
    m.passive(loc, side, px)
}

fn act(
    m: &mut Market,
    rng: &mut SplitMix64,
    loc: u16,
    a: Act,
    st: &mut EpState,
    owned: &mut HashSet<u64>,
) {
    match a {
        Act::SetRef => {
            st.ref_px = m.mid(loc);
            st.ref_vol = m.stock(loc).volume;
        }
        Act::Place {
            h,
            side,
            at,
            sz,
            who,
        } => {
            let px = place_price(m, loc, side, at);
            let n = size(m, loc, side, sz, st);
            let o = m.add(loc, side, px, n, who);
            owned.insert(o);
            st.handles[h as usize] = Some(o);
        }
        Act::Fill { h, frac, by } => fill(m, st, h, frac, by),
        Act::Cancel { h } => match st.handles[h as usize].take() {
            Some(o) if m.delete(o) => st.cancels_live += 1,
            _ => st.cancels_missed += 1,
        },
        Act::Requote { h } => requote(m, loc, st, h, owned),
        Act::Take { side, sz, by } => {
            let n = size(m, loc, side, sz, st);
            let lim = match (side, m.best(loc, opposite(side))) {
                (_, None) => return,
                (Side::Buy, Some(a)) => up(a, 4),
                (Side::Sell, Some(b)) => down(b, 4),
            };
            m.submit(loc, side, Some(lim), n, by, false);
        }
        Act::Push { side, bps, by } => push(m, loc, side, bps, by, st),
        Act::CancelOne => cancel_one(m, rng, loc, owned),
    }
}

/// Someone takes `frac` of the episode's order `h` (counted as missed if it is gone).
fn fill(m: &mut Market, st: &mut EpState, h: u8, frac: f64, by: super::market::Who) {
    let live = st.handles[h as usize].and_then(|o| Some((o, m.orders.get(&o)?.shares)));
    match live {
        Some((o, left)) => {
            let n = ((left as f64 * frac).ceil() as u32).max(1);
            m.take_through(o, n, by);
            st.fills_done += 1;
        }
        None => st.fills_missed += 1,
    }
}

/// The episode's order `h` moves to its side's best price.
fn requote(m: &mut Market, loc: u16, st: &mut EpState, h: u8, owned: &mut HashSet<u64>) {
    let Some(o) = st.handles[h as usize] else {
        return;
    };
    let Some(ord) = m.orders.get(&o).copied() else {
        return;
    };
    let px = place_price(m, loc, ord.side, At::Level(0));
    if let Some(n) = m.replace(o, px, ord.shares) {
        owned.insert(n);
        st.handles[h as usize] = Some(n);
    }
}

/// Deletes one order near the touch that no episode owns.
fn cancel_one(m: &mut Market, rng: &mut SplitMix64, loc: u16, owned: &HashSet<u64>) {
    let s = if rng.chance(0.5) {
        Side::Buy
    } else {
        Side::Sell
    };
    let refs = m.refs(loc, s, 30);
    let free: Vec<u64> = refs.into_iter().filter(|o| !owned.contains(o)).collect();
    if !free.is_empty() {
        let o = free[rng.below(free.len() as u64) as usize];
        m.delete(o);
    }
}

/// Marketable orders until the opposite touch lies `bps` beyond the reference (always at least
/// one print at the touch).
fn push(m: &mut Market, loc: u16, side: Side, bps: f64, by: super::market::Who, st: &EpState) {
    let dir = if side == Side::Buy { 1.0 } else { -1.0 };
    let target = by_bps(st.ref_px.max(1), dir * bps);
    let mut first = true;
    for _ in 0..500 {
        let other = opposite(side);
        let Some(best) = m.best(loc, other) else {
            // The book ran out: the rest of the aggressive order rests at its limit.
            let px = m.passive(loc, side, target);
            let n = m.touch_size(loc, side).clamp(100, 10_000) / 100 * 100;
            m.add(loc, side, px, n, by);
            break;
        };
        let short = match side {
            Side::Buy => best < target,
            Side::Sell => best > target,
        };
        if !short && !first {
            break;
        }
        let level = m.level_shares(loc, other, best);
        let n = if short { level } else { (level / 3).max(100) };
        m.submit(loc, side, Some(best), n, by, false);
        first = false;
        if !short {
            break;
        }
    }
}
