//! Book gaps: where a feed lost messages that nothing filled. Which stocks a lost message
//! touched is unknowable (its stock locate was lost with it), so from the first unfilled gap on
//! every stock's book may be wrong, and every alert raised from there carries `"book_gap": true`.
//!
//! The position is the engine's feed position (an event's `seq`): the number of messages the
//! source had handed to the engine when the gap was noticed, i.e. the `seq` of the first message
//! after it. The output stage compares each alert's `seq` with it, so the flag is the same for
//! any worker count.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// No gap yet.
const NONE: u64 = u64::MAX;

/// The feed position of the first unfilled gap, written by the reader and read by the output
/// stage.
///
/// Ordering: the reader stores it (in [`BookGap::note`]) before it hands the engine the message
/// at that position; that message, and every record and alert raised from it or later, reaches
/// the output stage through the input ring (the reader's Release publish, paired with the
/// worker's Acquire read of the ring) and the worker's outbox ring (the worker's Release
/// publish, paired with the output stage's Acquire read). So the store happens before the output
/// stage's load of any alert at or after the position, and the load sees it; the atomic itself
/// orders nothing else and needs only Relaxed.
#[derive(Debug)]
pub struct BookGap(AtomicU64);

impl Default for BookGap {
    fn default() -> BookGap {
        BookGap(AtomicU64::new(NONE))
    }
}

impl BookGap {
    /// A feed whose first unfilled gap is at `position` (known before the run: a capture).
    pub fn at(position: u32) -> BookGap {
        BookGap(AtomicU64::new(u64::from(position)))
    }

    /// Notes a gap noticed at `position`; only the first one is kept. Called by the reader only.
    pub fn note(&self, position: u32) {
        // Relaxed: the rings carry the ordering (see the type's comment).
        if self.0.load(Ordering::Relaxed) == NONE {
            self.0.store(u64::from(position), Ordering::Relaxed);
        }
    }

    /// The first gap's position, if there was one.
    pub fn first(&self) -> Option<u32> {
        // Relaxed: see the type's comment.
        match self.0.load(Ordering::Relaxed) {
            NONE => None,
            p => Some(p as u32),
        }
    }

    /// Whether an alert at feed position `seq` comes at or after the first gap (feed positions
    /// are `u32`, as the engine numbers them: a feed of more than 2³² messages wraps).
    #[inline]
    pub fn covers(&self, seq: u32) -> bool {
        self.first().is_some_and(|p| seq >= p)
    }
}

/// One unfilled gap, placed in the feed (a capture's or a live feed's).
pub use crate::capture::Lost as GapLine;

/// What the report says of a feed's unfilled gaps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GapSummary {
    /// Books after this feed position may be inexact (the first gap's).
    pub inexact_from: u64,
    /// Messages lost in all.
    pub lost_messages: u64,
    /// Every unfilled gap, in the order noticed.
    pub gaps: Vec<GapLine>,
    /// The stocks that later showed damage are not listed: the books count unknown order
    /// references per worker, not per stock, and a lost message's stock is unknowable.
    pub damaged_stocks_listed: bool,
}

impl GapSummary {
    /// The summary of `gaps` (in the order noticed), `None` when there were none.
    pub fn of(gaps: Vec<GapLine>) -> Option<GapSummary> {
        let inexact_from = gaps.iter().map(|g| g.position).min()?;
        Some(GapSummary {
            inexact_from,
            lost_messages: gaps.iter().map(|g| g.last - g.first + 1).sum(),
            gaps,
            damaged_stocks_listed: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_gap_is_kept_and_covers_alerts_from_it_on() {
        let g = BookGap::default();
        assert!(!g.covers(0) && !g.covers(u32::MAX));
        g.note(10);
        g.note(5);
        assert_eq!(g.first(), Some(10));
        assert!(!g.covers(9));
        assert!(g.covers(10) && g.covers(11));
        assert!(BookGap::at(0).covers(0));
    }

    #[test]
    fn a_summary_counts_the_messages_and_starts_at_the_earliest_gap() {
        assert_eq!(GapSummary::of(Vec::new()), None);
        let line = |first, last, position| GapLine {
            stream: 0,
            first,
            last,
            position,
        };
        let s = GapSummary::of(vec![line(5, 9, 4), line(20, 20, 14)]).unwrap();
        assert_eq!((s.inexact_from, s.lost_messages), (4, 6));
    }
}
