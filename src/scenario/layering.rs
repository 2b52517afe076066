//! The layering episode: the manipulator stacks 4–5 large attributed orders on one side at the
//! levels one to four (and five) ticks behind the best price — each far larger than the
//! background's orders there, so it holds most of each level — then the price leans its way
//! (a modest sweep of the other side), the manipulator rests a small genuine order on the other
//! side at the new best price, it is filled, and the layers are cancelled one after another.
//!
//! Sizes and delays are random: layers 120–300 round lots each (levels near the touch of
//! the busy generated stocks hold 10,000–40,000 shares), 20–120 ms apart; the sweep
//! 1–4 round lots 20–100 ms after the last layer; the genuine order (1–5 round lots)
//! 10–60 ms later, filled 20–150 ms after that; the layers cancelled from 10–200 ms after the
//! fill, 5–40 ms apart. The detector fires at the second cancel; the window runs from the start
//! to 1 s after the last cancel.

use super::{Action, EpisodeCtx, Op, Px, Script};
use crate::rng::SplitMix64;

const MS: u64 = 1_000_000;

/// The script of one layering episode.
pub fn script(rng: &mut SplitMix64, c: &EpisodeCtx) -> Script {
    let (layered, genuine) = if rng.chance(0.5) {
        (b'B', b'S')
    } else {
        (b'S', b'B')
    };
    let n = 4 + rng.below(2) as u8;
    let mut actions = Vec::with_capacity(2 * n as usize + 4);
    let mut t = 0;
    for i in 0..n {
        if i > 0 {
            t += 20 * MS + rng.below(100 * MS);
        }
        actions.push(Action {
            at: t,
            op: Op::Add {
                h: i,
                side: layered,
                px: Px::Best(-(i as i32) - 1),
                shares: 100 * (120 + rng.below(181) as u32),
                attributed: true,
                flow: 0,
            },
        });
    }
    t += 20 * MS + rng.below(80 * MS);
    actions.push(Action {
        at: t,
        op: Op::Sweep {
            side: genuine,
            shares: 100 * (1 + rng.below(4) as u32),
            flow: 0,
        },
    });
    t += 10 * MS + rng.below(50 * MS);
    let g = n;
    let genuine_shares = 100 * (1 + rng.below(5) as u32);
    actions.push(Action {
        at: t,
        op: Op::Add {
            h: g,
            side: genuine,
            px: Px::Best(0),
            shares: genuine_shares,
            attributed: true,
            flow: 0,
        },
    });
    t += 20 * MS + rng.below(130 * MS);
    actions.push(Action {
        at: t,
        op: Op::Fill {
            h: g,
            shares: genuine_shares,
        },
    });
    t += 10 * MS + rng.below(190 * MS);
    for i in 0..n {
        if i > 0 {
            t += 5 * MS + rng.below(35 * MS);
        }
        actions.push(Action {
            at: t,
            op: Op::Cancel { h: i },
        });
    }
    Script {
        start: c.start,
        actions,
        detect_from: 0,
        detect_until: t + 1_000 * MS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_then_fill_then_cancels() {
        let c = EpisodeCtx {
            start: 40_000_000_000_000,
            open: 34_200_000_000_000,
            close: 57_600_000_000_000,
            locate: 1,
            mpid: *b"GSCO",
            account: crate::surv::NOBODY,
            account2: crate::surv::NOBODY,
        };
        let mut rng = SplitMix64::new(5);
        for _ in 0..50 {
            let s = script(&mut rng, &c);
            assert!(s.actions.windows(2).all(|w| w[0].at <= w[1].at));
            let layers = s
                .actions
                .iter()
                .filter(|a| matches!(a.op, Op::Add { px: Px::Best(k), .. } if k < 0))
                .count();
            assert!((4..=5).contains(&layers));
            let cancels = s
                .actions
                .iter()
                .filter(|a| matches!(a.op, Op::Cancel { .. }))
                .count();
            assert_eq!(cancels, layers);
            let fill = s
                .actions
                .iter()
                .position(|a| matches!(a.op, Op::Fill { .. }))
                .unwrap();
            let first_cancel = s
                .actions
                .iter()
                .position(|a| matches!(a.op, Op::Cancel { .. }))
                .unwrap();
            assert!(fill < first_cancel);
            assert!(s.detect_until > s.actions.last().unwrap().at);
        }
    }
}
