//! The spoofing episode: the manipulator rests a small genuine order on one side, then shows a
//! large attributed order on the other side one tick better than the best price (or joining it
//! when the spread is one tick), which invites others to trade against the genuine order; the
//! genuine order is filled, and the large order is cancelled moments later (FINRA 5210 .03).
//!
//! Sizes and delays are random: genuine 1–5 round lots, spoof 200–500 round lots (the background
//! adds 1–50, nearly all below 10; the touch of a busy stock holds 1,000–50,000 shares, and the
//! spread is mostly one tick, so the spoof usually joins the best price with a large share of it), 50–300 ms from the genuine order to the spoof, 20–200 ms to
//! the fill, 10–200 ms from the fill to the cancel. The detector fires at the cancel; the window
//! runs from the start to 1 s after it.

use super::{Action, EpisodeCtx, Op, Px, Script};
use crate::rng::SplitMix64;

const MS: u64 = 1_000_000;

/// The script of one spoofing episode.
pub fn script(rng: &mut SplitMix64, c: &EpisodeCtx) -> Script {
    let (genuine, spoof) = if rng.chance(0.5) {
        (b'B', b'S')
    } else {
        (b'S', b'B')
    };
    let genuine_shares = 100 * (1 + rng.below(5) as u32);
    let spoof_shares = 100 * (200 + rng.below(301) as u32);
    let t_spoof = 50 * MS + rng.below(250 * MS);
    let t_fill = t_spoof + 20 * MS + rng.below(180 * MS);
    let t_cancel = t_fill + 10 * MS + rng.below(190 * MS);
    let actions = vec![
        Action {
            at: 0,
            op: Op::Add {
                h: 0,
                side: genuine,
                px: Px::Best(0),
                shares: genuine_shares,
                attributed: true,
                flow: 0,
            },
        },
        Action {
            at: t_spoof,
            op: Op::Add {
                h: 1,
                side: spoof,
                px: Px::Best(1),
                shares: spoof_shares,
                attributed: true,
                flow: 0,
            },
        },
        Action {
            at: t_fill,
            op: Op::Fill {
                h: 0,
                shares: genuine_shares,
            },
        },
        Action {
            at: t_cancel,
            op: Op::Cancel { h: 1 },
        },
    ];
    Script {
        start: c.start,
        actions,
        detect_from: 0,
        detect_until: t_cancel + 1_000 * MS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spoof_is_large_and_cancelled_after_the_fill() {
        let c = EpisodeCtx {
            start: 40_000_000_000_000,
            open: 34_200_000_000_000,
            close: 57_600_000_000_000,
            locate: 1,
            mpid: *b"GSCO",
            account: crate::surv::NOBODY,
            account2: crate::surv::NOBODY,
        };
        let mut rng = SplitMix64::new(3);
        for _ in 0..50 {
            let s = script(&mut rng, &c);
            assert_eq!(s.actions.len(), 4);
            assert!(s.actions.windows(2).all(|w| w[0].at <= w[1].at));
            let Op::Add { shares, .. } = s.actions[1].op else {
                panic!("spoof add")
            };
            assert!(shares >= 20_000);
            assert!(matches!(s.actions[2].op, Op::Fill { h: 0, .. }));
            assert!(matches!(s.actions[3].op, Op::Cancel { h: 1 }));
            assert!(s.detect_until > s.actions[3].at);
        }
    }
}
