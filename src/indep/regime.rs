//! The market regime of an independent feed: drawn at random from the seed (or named), so
//! that no two feeds need share a price level, tick, book shape, activity or session shape.

use super::price::{snap, DOLLAR};
use crate::rng::SplitMix64;

/// How the feed's session starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    /// System events from the start of messages, an opening cross ('O') per stock.
    OpenCross,
    /// Every stock opens through a halt/IPO cross ('H') after a quotation period.
    HaltCross,
    /// The feed starts mid-day: no system events before 'M', no opening crosses.
    Midday,
    /// System events, but no cross at all.
    NoCross,
}

/// The named regimes (`--regime`). `halt` is the held-out regime: never used for tuning.
pub const REGIMES: [&str; 6] = ["penny", "thin", "deep", "halt", "nocross", "mixed"];

/// The regime used for nothing but held-out evaluation.
pub const HELD_OUT_REGIME: &str = "halt";

/// Everything a regime fixes.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Regime {
    /// Its name.
    pub name: String,
    /// Stocks.
    pub stocks: u16,
    /// Reference price of each stock, Price(4).
    pub prices: Vec<u32>,
    /// Spread in increments at rest.
    pub spread_ticks: u32,
    /// Increments between resting levels.
    pub level_gap: u32,
    /// Orders resting per level.
    pub orders_per_level: u32,
    /// Levels per side at rest.
    pub levels: u32,
    /// Typical order size, shares.
    pub order_size: u32,
    /// Background events per second per stock.
    pub rate: f64,
    /// Minutes of continuous trading.
    pub minutes: u32,
    /// Session shape.
    pub start: Start,
    /// A closing cross after 'M'.
    pub closing_cross: bool,
    /// NOIIs ahead of the crosses.
    pub noii: bool,
    /// The firm's flow file is written.
    pub flow: bool,
    /// Share of background adds that are attributed.
    pub attributed: f64,
}

fn log_uniform(rng: &mut SplitMix64, lo: f64, hi: f64) -> f64 {
    (lo.ln() + rng.unit() * (hi.ln() - lo.ln())).exp()
}

fn pick<T: Copy>(rng: &mut SplitMix64, xs: &[T]) -> T {
    xs[rng.below(xs.len() as u64) as usize]
}

fn between(rng: &mut SplitMix64, lo: u32, hi: u32) -> u32 {
    lo + rng.below((hi - lo + 1) as u64) as u32
}

impl Regime {
    /// The regime `name` (one of [`REGIMES`]), or one drawn at random when `None`.
    pub fn draw(rng: &mut SplitMix64, name: Option<&str>) -> Option<Regime> {
        let name = match name {
            Some(n) => REGIMES.into_iter().find(|r| *r == n)?,
            None => pick(rng, &REGIMES),
        };
        let stocks = between(rng, 3, 6) as u16;
        let prices = prices(rng, name, stocks);
        let (thin, spread_ticks, level_gap, orders_per_level) = book_shape(rng, name);
        let (start, closing_cross) = session_shape(rng, name);
        let sub_dollar = name == "penny";
        Some(Regime {
            name: name.to_string(),
            stocks,
            prices,
            spread_ticks,
            level_gap,
            orders_per_level,
            levels: between(rng, 4, 12),
            order_size: if sub_dollar {
                100 * between(rng, 10, 200)
            } else {
                100 * between(rng, 1, 8)
            },
            rate: log_uniform(rng, 8.0, if thin { 40.0 } else { 150.0 }),
            minutes: between(rng, 8, 12),
            start,
            closing_cross,
            noii: rng.chance(0.6),
            flow: rng.chance(0.6),
            attributed: log_uniform(rng, 0.03, 0.4),
        })
    }
}

/// Each stock's reference price, log-uniform over the regime's range, on the grid.
fn prices(rng: &mut SplitMix64, name: &str, stocks: u16) -> Vec<u32> {
    let (lo, hi) = match name {
        "penny" => (0.20, 0.95),
        "thin" => (2.0, 120.0),
        "deep" => (8.0, 300.0),
        "halt" => (1.0, 800.0),
        "nocross" => (0.5, 400.0),
        _ => (0.20, 800.0),
    };
    (0..stocks)
        .map(|_| snap(log_uniform(rng, lo, hi) * DOLLAR as f64))
        .collect()
}

/// (thin, spread in increments, increments between levels, orders per level).
fn book_shape(rng: &mut SplitMix64, name: &str) -> (bool, u32, u32, u32) {
    let thin = name == "thin" || (name != "deep" && rng.chance(0.3));
    let (spread, gap, per_level) = if thin {
        (between(rng, 3, 25), between(rng, 1, 6), between(rng, 1, 2))
    } else if name == "deep" || rng.chance(0.5) {
        (1, 1, between(rng, 6, 25))
    } else {
        (between(rng, 1, 4), between(rng, 1, 2), between(rng, 2, 8))
    };
    (thin, spread, gap, per_level)
}

/// How the session opens, and whether it closes with a cross.
fn session_shape(rng: &mut SplitMix64, name: &str) -> (Start, bool) {
    use Start::*;
    let start = match name {
        "halt" => HaltCross,
        "nocross" => NoCross,
        "deep" | "penny" => pick(rng, &[OpenCross, Midday]),
        "thin" => pick(rng, &[Midday, NoCross, OpenCross]),
        _ => pick(rng, &[OpenCross, HaltCross, Midday, NoCross]),
    };
    let closing_cross = match start {
        NoCross => false,
        Midday => rng.chance(0.5),
        _ => rng.chance(0.8),
    };
    (start, closing_cross)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_regime_draws_within_its_ranges() {
        let mut rng = SplitMix64::new(7);
        for name in REGIMES {
            for _ in 0..20 {
                let r = Regime::draw(&mut rng, Some(name)).unwrap();
                assert_eq!(r.prices.len(), r.stocks as usize);
                assert!(r.prices.iter().all(|&p| super::super::price::on_grid(p)));
                assert!(r.prices.iter().all(|&p| (2_000..=8_000_000).contains(&p)));
                if name == "penny" {
                    assert!(r.prices.iter().all(|&p| p < DOLLAR), "{r:?}");
                }
                if name == "deep" {
                    assert_eq!(r.spread_ticks, 1);
                }
                if name == "halt" {
                    assert_eq!(r.start, Start::HaltCross);
                }
                assert!(!(r.start == Start::NoCross && r.closing_cross));
            }
        }
        assert!(Regime::draw(&mut rng, Some("none such")).is_none());
    }
}
