//! The session around the continuous market: system events, the stock directory, how each
//! stock opens (an opening cross, an IPO/halt cross after a quotation period, or nothing), the
//! closing NOIIs, 'M' and the closing cross.

use super::background::Background;
use super::episodes::{Act, Kind, Plan};
use super::market::Market;
use super::price::by_bps;
use super::regime::{Regime, Start};
use crate::itch::be::{BeU32, BeU64};
use crate::itch::encode::common_stock;
use crate::itch::wire::Noii;
use crate::itch::Side;
use crate::rng::SplitMix64;

const SEC: u64 = 1_000_000_000;
const MIN: u64 = 60 * SEC;

/// The session's clock, ns since midnight.
#[derive(Clone, Debug)]
pub struct Times {
    /// First message.
    pub first: u64,
    /// Start of continuous trading (of the feed, for a mid-day start).
    pub open: u64,
    /// When each stock starts trading (a halt cross releases it later).
    pub release: Vec<u64>,
    /// End of market hours ('M').
    pub close: u64,
}

impl Times {
    /// The clock of regime `r`.
    pub fn of(r: &Regime, rng: &mut SplitMix64) -> Times {
        let len = r.minutes as u64 * MIN;
        let (first, open, close) = match r.start {
            Start::Midday => (16 * 60 * MIN - len, 16 * 60 * MIN - len, 16 * 60 * MIN),
            _ => (3 * 60 * MIN, 570 * MIN, 570 * MIN + len),
        };
        let release = (0..r.stocks)
            .map(|_| match r.start {
                Start::HaltCross => open + 10 * SEC + rng.below(50 * SEC),
                _ => open,
            })
            .collect();
        Times {
            first,
            open,
            release,
            close,
        }
    }

    /// When episodes may start: every stock trading for 10 s.
    pub fn episodes_from(&self) -> u64 {
        self.release.iter().copied().max().unwrap_or(self.open) + 10 * SEC
    }
}

/// How a stock's closing auction looks.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Flavor {
    Plain,
    /// Marked: the auction leans the way the push went.
    Marked(Side),
    /// A heavy index-rebalance imbalance that does not move the price.
    Rebalance,
}

fn flavor(plans: &[Plan], loc: u16) -> Flavor {
    for p in plans.iter().filter(|p| p.locate == loc) {
        match p.kind {
            Kind::RebalanceClose => return Flavor::Rebalance,
            Kind::Close => {
                let side = p.acts.iter().find_map(|(_, a)| match a {
                    Act::Push { side, .. } => Some(*side),
                    _ => None,
                });
                return Flavor::Marked(side.unwrap_or(Side::Buy));
            }
            _ => {}
        }
    }
    Flavor::Plain
}

/// Everything before continuous trading: system events (not for a mid-day start), the directory,
/// trading states, resting books, and the opening NOIIs and crosses where the regime has them.
pub fn open(m: &mut Market, bg: &mut Background, rng: &mut SplitMix64, r: &Regime, t: &Times) {
    m.ts = t.first;
    let midday = r.start == Start::Midday;
    if !midday {
        m.system(b'O');
        m.ts = 4 * 60 * MIN;
        m.system(b'S');
    }
    for loc in 1..=r.stocks {
        let sym = m.stock(loc).sym;
        m.emit(&common_stock(loc, m.ts, sym));
        let (state, reason) = match r.start {
            Start::HaltCross => (b'H', *b"IPO1"),
            _ => (b'T', *b"    "),
        };
        m.trading(loc, state, reason);
    }
    if r.start == Start::HaltCross {
        // Market hours open; the halted stocks enter their quotation period, then build books.
        m.ts = t.open;
        m.system(b'Q');
        for loc in 1..=r.stocks {
            m.trading(loc, b'Q', *b"IPOQ");
        }
    }
    // Resting orders arrive over the pre-open (or the first seconds of the quotation period);
    // a mid-day start sees its book as a snapshot, in one instant.
    let span = match r.start {
        Start::Midday => (t.first, t.first),
        Start::HaltCross => (t.open, t.open + 5 * SEC),
        _ => (m.ts + SEC, t.open - 3 * MIN),
    };
    bg.seed_books(m, rng, r, span);
    if r.start == Start::OpenCross && r.noii {
        for k in [2, 1] {
            m.ts = t.open - k * MIN;
            for loc in 1..=r.stocks {
                noii(m, rng, loc, b'O', Flavor::Plain);
            }
        }
    }
    if matches!(r.start, Start::OpenCross | Start::NoCross) {
        m.ts = t.open;
        m.system(b'Q');
    }
    if r.start == Start::OpenCross {
        for loc in 1..=r.stocks {
            let px = cross_price(m, loc);
            cross(m, rng, r, loc, b'O', px);
        }
    }
}

/// A cross at `px`: displayed orders it reaches (buys at or above, sells at or below; a few
/// at most) execute in it with C messages, then the cross prints.
fn cross(m: &mut Market, rng: &mut SplitMix64, r: &Regime, loc: u16, kind: u8, px: u32) {
    let mut shares = cross_shares(rng, r);
    for side in [Side::Buy, Side::Sell] {
        let reached = m.refs(loc, side, 1 + rng.below(3) as usize);
        for o in reached {
            let ord = m.orders[&o];
            let inside = match side {
                Side::Buy => ord.price >= px,
                Side::Sell => ord.price <= px,
            };
            if inside {
                m.execute_in_cross(o, ord.shares, px);
                shares += ord.shares as u64;
            }
        }
    }
    m.cross(loc, kind, px, shares);
}

fn cross_shares(rng: &mut SplitMix64, r: &Regime) -> u64 {
    r.order_size as u64 * (5 + rng.below(200))
}

fn cross_price(m: &Market, loc: u16) -> u32 {
    match (m.best(loc, Side::Buy), m.best(loc, Side::Sell)) {
        (Some(b), _) => b,
        (None, Some(a)) => a,
        (None, None) => m.stock(loc).last.max(1),
    }
}

/// A halted stock's release: its halt cross and the resumption of trading.
pub fn release(m: &mut Market, rng: &mut SplitMix64, r: &Regime, loc: u16) {
    if r.noii {
        noii(m, rng, loc, b'H', Flavor::Plain);
    }
    let px = cross_price(m, loc);
    cross(m, rng, r, loc, b'H', px);
    m.trading(loc, b'T', *b"    ");
}

fn noii(m: &mut Market, rng: &mut SplitMix64, loc: u16, kind: u8, f: Flavor) {
    let paired = (m.touch_size(loc, Side::Buy) as u64 + 100) * (5 + rng.below(50));
    let (ratio, dir) = match f {
        Flavor::Plain => (rng.unit() * 0.3, if rng.chance(0.5) { b'B' } else { b'S' }),
        Flavor::Marked(s) => (0.3 + rng.unit() * 2.7, s.as_byte()),
        Flavor::Rebalance => (
            1.5 + rng.unit() * 2.5,
            if rng.chance(0.5) { b'B' } else { b'S' },
        ),
    };
    let px = cross_price(m, loc);
    let msg = Noii {
        hdr: m.hdr(b'I', loc),
        paired_shares: BeU64::new(paired),
        imbalance_shares: BeU64::new((paired as f64 * ratio) as u64),
        imbalance_direction: dir,
        stock: m.stock(loc).sym,
        far_price: BeU32::new(px),
        near_price: BeU32::new(px),
        current_reference_price: BeU32::new(px),
        cross_type: kind,
        price_variation_indicator: b' ',
    };
    m.emit(&msg);
}

/// The closing NOIIs of stock `loc` (scheduled by the run).
pub fn closing_noii(m: &mut Market, rng: &mut SplitMix64, plans: &[Plan], loc: u16) {
    noii(m, rng, loc, b'C', flavor(plans, loc));
}

/// 'M', the closing crosses (a marked close's cross leans a little further), end of messages.
pub fn close(m: &mut Market, rng: &mut SplitMix64, r: &Regime, t: &Times, plans: &[Plan]) {
    m.ts = t.close;
    m.system(b'M');
    if r.closing_cross {
        m.ts += 1_000_000;
        for loc in 1..=r.stocks {
            let last = match m.stock(loc).last {
                0 => cross_price(m, loc),
                p => p,
            };
            let px = match flavor(plans, loc) {
                Flavor::Marked(s) => {
                    let extra = rng.unit() * 20.0;
                    by_bps(last, if s == Side::Buy { extra } else { -extra })
                }
                _ => last,
            };
            if flavor(plans, loc) == Flavor::Rebalance {
                // The index's heavy auction: far more volume than an ordinary close.
                let heavy = 20 * cross_shares(rng, r);
                m.cross(loc, b'C', px, heavy);
            } else {
                cross(m, rng, r, loc, b'C', px);
            }
        }
    }
    m.ts = t.close + MIN;
    m.system(b'E');
    m.ts = t.close + 2 * MIN;
    m.system(b'C');
}
