//! The wash episode: the firm's account rests an attributed order on the stock, then trades
//! against it itself (one match number, both sides in the participant flow), two or three
//! times, a few hundred shares each, a fraction of a second to a few seconds apart.
//!
//! The aggressor is the same account (`flow: 1`) — a self trade — or, when `WASH_ACCOUNT2`
//! allows it, the firm's second account (`flow: 2`), one beneficial owner behind two accounts.
//! The detector ([`crate::surv::wash`]) pairs the two `fill` records of one match number; it
//! fires on the first print, so the detection window is the episode plus a second.
use super::{Action, EpisodeCtx, Op, Px, Script};
use crate::rng::SplitMix64;

/// Share of episodes whose aggressor is the firm's second account. 0: the generator's firm
/// accounts are separate clients (its background crosses two of them on one match number all
/// the time), so no default owner grouping can put the episode's two accounts together and
/// not the background's — see `WashTradeRules::owner_prefix_len`.
pub const WASH_ACCOUNT2: f64 = 0.0;

/// The script of one wash episode.
pub fn script(rng: &mut SplitMix64, c: &EpisodeCtx) -> Script {
    let prints = 2 + rng.below(2) as usize; // 2 or 3
    let sizes: [u32; 3] = core::array::from_fn(|_| 100 * (1 + rng.below(3) as u32));
    let one_order = rng.chance(0.5);
    let mut actions = Vec::with_capacity(2 * prints + 2);
    let mut t = 0u64;
    let side = |rng: &mut SplitMix64| if rng.chance(0.5) { b'B' } else { b'S' };
    let add = |h: u8, side: u8, shares: u32| Op::Add {
        h,
        side,
        px: Px::Best(0),
        shares,
        attributed: true,
        flow: 1,
    };
    if one_order {
        // One resting order, washed in pieces; what is left is cancelled at the end.
        let extra = 100 * rng.below(3) as u32;
        let total: u32 = sizes[..prints].iter().sum::<u32>() + extra;
        actions.push(Action {
            at: 0,
            op: add(0, side(rng), total),
        });
        for &s in &sizes[..prints] {
            t += 100_000_000 + rng.below(3_000_000_000);
            actions.push(Action {
                at: t,
                op: Op::Wash {
                    h: 0,
                    shares: s,
                    flow: aggressor(rng),
                },
            });
        }
        if extra > 0 {
            t += 50_000_000 + rng.below(500_000_000);
            actions.push(Action {
                at: t,
                op: Op::Cancel { h: 0 },
            });
        }
    } else {
        // A fresh order per print, each side at random, washed whole.
        for (i, &s) in sizes[..prints].iter().enumerate() {
            let h = i as u8;
            if i > 0 {
                t += 100_000_000 + rng.below(3_000_000_000);
            }
            actions.push(Action {
                at: t,
                op: add(h, side(rng), s),
            });
            t += 20_000_000 + rng.below(500_000_000);
            actions.push(Action {
                at: t,
                op: Op::Wash {
                    h,
                    shares: s,
                    flow: aggressor(rng),
                },
            });
        }
    }
    Script {
        start: c.start,
        detect_from: 0,
        detect_until: t + 1_000_000_000,
        actions,
    }
}

fn aggressor(rng: &mut SplitMix64) -> u8 {
    if WASH_ACCOUNT2 > 0.0 && rng.chance(WASH_ACCOUNT2) {
        2
    } else {
        1
    }
}
