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

use crate::book::{BookConfig, Books};
use crate::feed::Frames;
use crate::itch::{decode, symbol_str, Message};

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

/// Adds `"book_gap":true` to the alert's JSON line just written at the end of `buf` (it ends
/// `}\n`).
pub fn flag_book_gap(buf: &mut Vec<u8>) {
    debug_assert!(buf.ends_with(b"}\n"));
    buf.truncate(buf.len() - 2);
    buf.extend_from_slice(b",\"book_gap\":true}\n");
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
    /// Whether the stocks that showed damage were looked for: by a [`DamageScan`] over the
    /// feed (a capture's, read again), or alongside the run (a live feed's, as it arrived).
    pub damaged_stocks_listed: bool,
    /// The stocks named, from the first gap on, by a message referring to an order the books
    /// did not know — the gaps' known victims, by symbol (the others' books may still be
    /// wrong: a lost add whose order is never referred to again shows nothing).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub damaged_stocks: Vec<DamagedStock>,
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
            damaged_stocks: Vec::new(),
        })
    }

    /// The summary with the stocks a [`DamageScan`] found.
    pub fn with_damage(self, damaged_stocks: Vec<DamagedStock>) -> GapSummary {
        GapSummary {
            damaged_stocks_listed: true,
            damaged_stocks,
            ..self
        }
    }
}

/// A stock a gap touched: after the gap, messages of it referred to orders the books did not
/// know (an execution, cancel, delete or replace of a lost add).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DamagedStock {
    /// The symbol (from the stock directory; the locate's number if it had no entry).
    pub symbol: String,
    /// The stock locate.
    pub locate: u16,
    /// Messages referring to an unknown order, from the first gap on.
    pub orphan_refs: u64,
}

/// Finds the stocks a gap touched: the feed's messages applied to books of their own, and the
/// references to unknown orders from feed position `from` on counted by stock. The caller hands
/// it every message the engine takes, in feed order: a second pass over a capture, or each
/// message of a live feed as it arrives, counting from the first gap once it is known
/// ([`DamageScan::count_from`]); a lost message's stock is unknowable until a later message
/// names its order. Memory is fixed at construction: the books' tables (the run's capacities)
/// and a counter and a symbol per locate.
#[derive(Debug)]
pub struct DamageScan {
    books: Books,
    from: u64,
    position: u64,
    orphans: Vec<u64>,
    symbols: Vec<Option<[u8; 8]>>,
}

impl DamageScan {
    /// Books of `cfg` (the run's own capacities, so that an order the run's books refused is
    /// unknown here too); counting from feed position `from`.
    pub fn new(cfg: BookConfig, from: u64) -> DamageScan {
        let books = Books::new(cfg);
        let locates = books.config().max_locates;
        DamageScan {
            books,
            from,
            position: 0,
            orphans: vec![0; locates],
            symbols: vec![None; locates],
        }
    }

    /// A scan that counts nothing until [`DamageScan::count_from`] says where: a live feed's,
    /// whose first gap is not known when it starts.
    pub fn live(cfg: BookConfig) -> DamageScan {
        DamageScan::new(cfg, u64::MAX)
    }

    /// Backs every page of its books' tables now (as a worker backs its own), so that taking a
    /// message never waits for a page fault: a live feed's reader cannot afford them.
    pub fn prefault(&mut self) {
        self.books.prefault();
    }

    /// Counts from feed position `from` on (the earliest position given is kept). Called before
    /// the message at `from` is taken.
    pub fn count_from(&mut self, from: u64) {
        self.from = self.from.min(from);
    }

    /// The next message the engine takes.
    pub fn take(&mut self, m: &Message<'_>) {
        let locate = usize::from(m.stock_locate());
        if let (Message::StockDirectory(d), Some(s)) = (m, self.symbols.get_mut(locate)) {
            *s = Some(d.stock);
        }
        let before = self.books.stats().unknown_refs;
        self.books.apply(m);
        if self.position >= self.from && self.books.stats().unknown_refs > before {
            if let Some(n) = self.orphans.get_mut(locate) {
                *n += 1;
            }
        }
        self.position += 1;
    }

    /// The next message, as a BinaryFILE frame's body: skipped, as the engine skips it, when it
    /// does not decode.
    pub fn take_bytes(&mut self, body: &[u8]) {
        if let Ok(m) = decode(body, 0) {
            self.take(&m);
        }
    }

    /// The stocks with references to unknown orders, most first (then by locate).
    pub fn finish(self) -> Vec<DamagedStock> {
        self.stocks()
    }

    /// [`DamageScan::finish`] so far, the scan going on (allocates: a live feed's report).
    pub fn stocks(&self) -> Vec<DamagedStock> {
        let mut v: Vec<DamagedStock> = self
            .orphans
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(l, &n)| DamagedStock {
                symbol: self.symbols[l].map_or_else(|| format!("locate {l}"), |s| symbol_str(&s)),
                locate: l as u16,
                orphan_refs: n,
            })
            .collect();
        v.sort_by(|a, b| {
            b.orphan_refs
                .cmp(&a.orphan_refs)
                .then(a.locate.cmp(&b.locate))
        });
        v
    }
}

/// [`DamageScan`] over a BinaryFILE image (a capture's, extracted): the stocks with references
/// to unknown orders from feed position `from` on. Frames after a framing error are not read.
pub fn damaged_stocks(image: &[u8], cfg: BookConfig, from: u64) -> Vec<DamagedStock> {
    let mut scan = DamageScan::new(cfg, from);
    for f in Frames::new(image).map_while(Result::ok) {
        scan.take_bytes(f.body);
    }
    scan.finish()
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

    mod damage {
        use super::super::*;
        use crate::itch::be::{BeU32, BeU64};
        use crate::itch::encode::{header, push_frame};
        use crate::itch::{AddOrder, OrderDelete};

        fn add(buf: &mut Vec<u8>, locate: u16, r: u64) {
            let m = AddOrder {
                hdr: header(b'A', locate, 0, 1),
                order_ref: BeU64::new(r),
                side: b'B',
                shares: BeU32::new(100),
                stock: *b"X       ",
                price: BeU32::new(10_000),
            };
            push_frame(buf, &m);
        }

        fn delete(buf: &mut Vec<u8>, locate: u16, r: u64) {
            let m = OrderDelete {
                hdr: header(b'D', locate, 0, 2),
                order_ref: BeU64::new(r),
            };
            push_frame(buf, &m);
        }

        /// A feed with an orphan before position 4 (stock 3) and three after it (stocks 1, 2, 2).
        fn feed() -> Vec<u8> {
            let mut b = Vec::new();
            add(&mut b, 1, 10);
            delete(&mut b, 3, 30); // orphan before the gap: not counted
            add(&mut b, 2, 20);
            delete(&mut b, 1, 10);
            delete(&mut b, 1, 11); // position 4
            delete(&mut b, 2, 21);
            delete(&mut b, 2, 22);
            delete(&mut b, 2, 20);
            b
        }

        #[test]
        fn a_live_scan_told_the_gap_as_it_goes_equals_the_second_pass() {
            let cfg = BookConfig::small();
            let want = damaged_stocks(&feed(), cfg, 4);
            let names: Vec<(u16, u64)> = want.iter().map(|d| (d.locate, d.orphan_refs)).collect();
            assert_eq!(names, [(2, 2), (1, 1)]);
            let mut live = DamageScan::live(cfg);
            for (i, f) in Frames::new(&feed()).map_while(Result::ok).enumerate() {
                if i <= 4 {
                    assert!(live.stocks().is_empty(), "nothing counted before the gap");
                }
                if i == 4 {
                    live.count_from(4);
                    live.count_from(6); // a later gap: the first one stands
                }
                live.take_bytes(f.body);
            }
            assert_eq!(live.stocks(), want);
            assert_eq!(live.finish(), want);
        }
    }
}
