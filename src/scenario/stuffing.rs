//! The quote-stuffing episode: the manipulator floods one stock with add-then-delete pairs —
//! one burst of 200 to 800 pairs within 50 to 300 ms, at the touch or up to three ticks behind
//! it, and on half the episodes a second burst 3 to 6 s later (past the detector's cooldown, so
//! each burst is its own alert). The detector should name the MPID within the bursts' span plus
//! one second.
use super::{Action, EpisodeCtx, Op, Script};
use crate::rng::SplitMix64;

/// Time after the last burst in which the alert is still expected, ns.
const REACTION_NS: u64 = 1_000_000_000;

/// The script of one stuffing episode.
pub fn script(rng: &mut SplitMix64, c: &EpisodeCtx) -> Script {
    let bursts = 1 + rng.below(2);
    let mut actions = Vec::with_capacity(2);
    let mut at = 0u64;
    let mut end = 0u64;
    for i in 0..bursts {
        let n = 200 + rng.below(601) as u32;
        let span_ns = 50_000_000 + rng.below(250_000_001);
        let depth = rng.below(4) as u32;
        if i > 0 {
            at = end + 3_000_000_000 + rng.below(3_000_000_001);
            // Keep the episode inside the continuous session.
            if c.start + at + span_ns + REACTION_NS >= c.close {
                break;
            }
        }
        actions.push(Action {
            at,
            op: Op::Burst { n, span_ns, depth },
        });
        end = at + span_ns;
    }
    Script {
        start: c.start,
        actions,
        detect_from: 0,
        detect_until: end + REACTION_NS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_are_within_range_and_the_window_covers_them() {
        let mut rng = SplitMix64::new(5);
        let c = EpisodeCtx {
            start: 35_000_000_000_000,
            open: 34_200_000_000_000,
            close: 57_600_000_000_000,
            locate: 3,
            mpid: *b"GSCO",
            account: crate::surv::NOBODY,
            account2: crate::surv::NOBODY,
        };
        let mut two = 0;
        for _ in 0..50 {
            let s = script(&mut rng, &c);
            assert!(!s.actions.is_empty() && s.actions.len() <= 2);
            two += (s.actions.len() == 2) as u32;
            let mut last_end = 0;
            for a in &s.actions {
                let Op::Burst { n, span_ns, depth } = a.op else {
                    panic!("only bursts")
                };
                assert!((200..=800).contains(&n));
                assert!((50_000_000..=300_000_000).contains(&span_ns));
                assert!(depth <= 3);
                assert!(a.at >= last_end);
                last_end = a.at + span_ns;
            }
            assert_eq!(s.detect_until, last_end + REACTION_NS);
            assert_eq!(s.start, c.start);
        }
        assert!(two > 0 && two < 50);
    }
}
