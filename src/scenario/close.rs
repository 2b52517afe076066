//! The marking-the-close episode: in the last 100–240 s before the close the manipulator
//! buys heavily and pushes the price up into the closing cross — 10–16 rounds of an aggressive
//! sweep of the offers (20,000–40,000 shares), then an attributed bid one tick above the best
//! that is filled at once (8,000–15,000 shares) — then four heavy sweeps (50,000–80,000
//! shares) in the final seconds, the last 1–3 s before the close.
//! Its volume is several times the stock's pace, its attributed fills a large share of it, and
//! the price ends tens of cents above where the window began.

use super::{Action, EpisodeCtx, Op, Px, Script};
use crate::rng::SplitMix64;

const MS: u64 = 1_000_000;

/// The script of one close episode.
pub fn script(rng: &mut SplitMix64, c: &EpisodeCtx) -> Script {
    let d = (100_000 + rng.below(140_000)) * MS;
    let d = d.min(c.close.saturating_sub(c.open) / 2).max(10_000 * MS);
    let start = c.close.saturating_sub(d).max(c.start);
    let d = c.close - start;
    let rounds = 10 + rng.below(7);
    // Rounds spread over the stretch, ending before the last push.
    let usable = d.saturating_sub(12_000 * MS).max(rounds * 400 * MS);
    let mut actions = Vec::new();
    for i in 0..rounds {
        let at = usable * i / rounds + rng.below(usable / rounds / 4 + 1);
        let h = i as u8;
        actions.push(Action {
            at,
            op: Op::Sweep {
                side: b'S',
                shares: 20_000 + 100 * rng.below(200) as u32,
                flow: 0,
            },
        });
        let add = at + 100 * MS + rng.below(400) * MS;
        actions.push(Action {
            at: add,
            op: Op::Add {
                h,
                side: b'B',
                px: Px::Best(1),
                shares: 8_000 + 100 * rng.below(70) as u32,
                attributed: true,
                flow: 0,
            },
        });
        actions.push(Action {
            at: add + 50 * MS + rng.below(250) * MS,
            op: Op::Fill {
                h,
                shares: u32::MAX,
            },
        });
    }
    // The last push: four heavy sweeps in the final seconds, the last 1–3 s before the close.
    let end = d.saturating_sub(1_000 * MS + rng.below(2_000) * MS);
    for k in 0..4u64 {
        actions.push(Action {
            at: end - (3 - k) * (1_000 * MS + rng.below(1_000) * MS),
            op: Op::Sweep {
                side: b'S',
                shares: 50_000 + 100 * rng.below(300) as u32,
                flow: 0,
            },
        });
    }
    Script {
        start,
        actions,
        detect_from: 0,
        detect_until: d + 1_000 * MS,
    }
}
