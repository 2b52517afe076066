//! The momentum ignition episode: the manipulator rests 2–4 attributed sell orders well above
//! the best offer, ignites a run-up with a burst of aggressive buys sweeping the offers (6–10
//! sweeps within 0.3–1.2 s), sells into it — its resting sells are executed at the top — and
//! the price then falls back as sweeps hit the bids (4–6 sweeps within 0.4–1.5 s). One episode
//! in two is the mirror image: buys resting below the bid, a sell-off, a rebound.
//!
//! The resting orders sit 28–38 cents (plus 1–3 between them) behind the best, so the
//! move to them is at least ten levels of the book and at least 5 bps on a $500 stock; the
//! sweeps take less than the book holds up to there, so the manipulator's fills are the top of
//! the move (as when the last buyers of a run-up meet the manipulator's offers).

use super::{Action, EpisodeCtx, Op, Px, Script};
use crate::rng::SplitMix64;

const MS: u64 = 1_000_000;

/// The script of one ignition episode.
pub fn script(rng: &mut SplitMix64, c: &EpisodeCtx) -> Script {
    let mut actions = Vec::new();
    let mut push = |at: u64, op: Op| actions.push(Action { at, op });
    // The side the manipulator rests on and the move runs into (b'S': a run-up), and the other.
    let (into, back) = if rng.chance(0.5) {
        (b'S', b'B')
    } else {
        (b'B', b'S')
    };
    // Pre-positioning: the sells the run-up will reach.
    let n = 2 + rng.below(3) as u8;
    let k0 = 28 + rng.below(11) as i32;
    let gap = 1 + rng.below(3) as i32;
    let mut at = 0;
    for h in 0..n {
        push(
            at,
            Op::Add {
                h,
                side: into,
                px: Px::Best(-(k0 + h as i32 * gap)),
                shares: 500 + 100 * rng.below(16) as u32,
                attributed: true,
                flow: 0,
            },
        );
        at += 20 * MS + rng.below(200) * MS;
    }
    // The ignition: a burst of buys sweeping the offers.
    let burst = at + 1_000 * MS + rng.below(2_000) * MS;
    let sweeps = 6 + rng.below(5);
    let span = 300 * MS + rng.below(900) * MS;
    for i in 0..sweeps {
        push(
            burst + span * i / (sweeps - 1),
            Op::Sweep {
                side: into,
                shares: 2_000 + 100 * rng.below(40) as u32,
                flow: 0,
            },
        );
    }
    // The manipulator's sells are executed at the top.
    let mut at = burst + span;
    for h in 0..n {
        at += 10 * MS + rng.below(40) * MS;
        push(
            at,
            Op::Fill {
                h,
                shares: u32::MAX,
            },
        );
    }
    // The reversal: sells sweep the bids.
    let down = at + 100 * MS + rng.below(400) * MS;
    let sweeps = 4 + rng.below(3);
    let span = 400 * MS + rng.below(1_100) * MS;
    for i in 0..sweeps {
        push(
            down + span * i / (sweeps - 1),
            Op::Sweep {
                side: back,
                shares: 10_000 + 100 * rng.below(150) as u32,
                flow: 0,
            },
        );
    }
    let last = down + span;
    Script {
        start: c.start,
        actions,
        detect_from: burst,
        detect_until: last + 2_000 * MS,
    }
}
