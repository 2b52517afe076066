//! Price levels: one sorted ladder per stock and side, stored in a preallocated arena.
//!
//! A ladder is a contiguous run of [`Level`]s sorted so that the **best price is last** (bids
//! ascending, asks descending): the touch is `ladder[len - 1]`, top-N is the last N in reverse, and
//! the inserts and removals that a real feed makes — overwhelmingly near the touch — move only the
//! few levels above them. A price is found by a short scan down from the touch, then a binary search.
//!
//! Ladders live in one arena allocated at construction. A ladder starts with [`MIN_LADDER`] slots and
//! doubles by moving to a segment of the next size class (taken from that class's free list, or from
//! the arena's unused tail); the old segment goes on its class's free list, threaded through the
//! segments themselves. When the arena has no segment to give, the caller gets `None` and counts a
//! level-capacity overflow — the arena never grows.

use crate::mem::HugeArray;
use bytemuck::{Pod, Zeroable};

/// Most price levels one side of one stock can hold.
pub const MAX_LADDER: usize = u16::MAX as usize;

/// A stock's bid and ask ladders, aligned so that they sit in one cache line.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LadderPair(pub [Ladder; 2]);

impl LadderPair {
    /// Empty bid and ask ladders.
    pub fn new() -> LadderPair {
        LadderPair([Ladder::new(true), Ladder::new(false)])
    }
}

impl std::ops::Index<usize> for LadderPair {
    type Output = Ladder;
    /// `0` is the bid ladder, `1` the ask ladder.
    #[inline(always)]
    fn index(&self, side: usize) -> &Ladder {
        &self.0[side]
    }
}

impl std::ops::IndexMut<usize> for LadderPair {
    #[inline(always)]
    fn index_mut(&mut self, side: usize) -> &mut Ladder {
        &mut self.0[side]
    }
}

impl Default for LadderPair {
    fn default() -> Self {
        Self::new()
    }
}

/// Slots in a ladder's first segment.
pub const MIN_LADDER: usize = 8;
const CLASSES: usize = 28;
const NONE: u32 = u32::MAX;
/// Levels scanned linearly down from the touch before switching to binary search.
const LINEAR_SCAN: usize = 8;

/// One price level.
#[repr(C)]
#[derive(
    Clone, Copy, Pod, Zeroable, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize,
)]
pub struct Level {
    /// Price(4).
    pub price: u32,
    /// Orders resting at this price.
    pub orders: u32,
    /// Total displayed shares at this price.
    pub shares: u64,
}

/// A stock side's ladder: where its segment is and how full it is. Eight bytes, so a stock's two
/// ladders ([`LadderPair`]) share one 16-byte, never line-straddling slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ladder {
    start: u32,
    /// Levels in use; at most [`MAX_LADDER`] (a side with more is a counted level overflow).
    len: u16,
    /// Size class: capacity is `MIN_LADDER << class`; `u8::MAX` = no segment yet.
    class: u8,
    /// True for bids (ascending), false for asks (descending).
    bid: bool,
}

impl Ladder {
    /// An empty ladder for one side.
    pub fn new(bid: bool) -> Ladder {
        Ladder {
            start: 0,
            len: 0,
            class: u8::MAX,
            bid,
        }
    }

    /// Number of price levels.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when the side has no levels.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sort key: larger is better for both sides.
    #[inline(always)]
    fn key(&self, price: u32) -> u32 {
        if self.bid {
            price
        } else {
            !price
        }
    }
}

/// Result of finding a price in a ladder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Slot {
    /// The level is at this arena index.
    Found(usize),
    /// Absent; would be inserted at this position within the ladder.
    Vacant(usize),
}

/// The arena all ladders live in.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct LevelArena {
    levels: HugeArray<Level>,
    top: usize,
    free: [u32; CLASSES],
}

impl LevelArena {
    /// Backs every page of the arena now (see [`HugeArray::prefault`]).
    pub fn prefault(&mut self) {
        self.levels.prefault();
    }

    /// An arena of `capacity` level slots.
    pub fn new(capacity: usize) -> LevelArena {
        LevelArena {
            levels: HugeArray::zeroed(capacity.clamp(MIN_LADDER, u32::MAX as usize - 1)),
            top: 0,
            free: [NONE; CLASSES],
        }
    }

    /// Total level slots.
    pub fn capacity(&self) -> usize {
        self.levels.len()
    }

    /// Slots handed out from the arena's tail so far (a high-water mark).
    pub fn used(&self) -> usize {
        self.top
    }

    /// The ladder's levels, worst first, best last.
    #[inline(always)]
    pub fn levels(&self, l: &Ladder) -> &[Level] {
        let start = l.start as usize;
        &self.levels[start..start + l.len as usize]
    }

    /// The best level.
    #[inline(always)]
    pub fn best(&self, l: &Ladder) -> Option<&Level> {
        self.levels(l).last()
    }

    /// Hints the cache lines holding the ladder's touch (its best four levels, where most of a
    /// real feed's changes land) toward the CPU.
    #[inline(always)]
    pub fn prefetch_touch(&self, l: &Ladder) {
        let end = l.start as usize + l.len as usize;
        let base = self.levels.as_ptr();
        // The best level and the three below it: one line, or two when they straddle a boundary.
        crate::feed::frame::prefetch(base.wrapping_add(end.saturating_sub(1)) as *const u8);
        crate::feed::frame::prefetch(base.wrapping_add(end.saturating_sub(4)) as *const u8);
    }

    /// Mutable level at an arena index from [`Slot::Found`].
    #[inline(always)]
    pub fn at_mut(&mut self, idx: usize) -> &mut Level {
        &mut self.levels[idx]
    }

    /// Finds `price` in the ladder.
    #[inline(always)]
    pub fn find(&self, l: &Ladder, price: u32) -> Slot {
        let lv = self.levels(l);
        let t = l.key(price);
        let mut i = lv.len();
        let stop = i.saturating_sub(LINEAR_SCAN);
        while i > stop {
            let k = l.key(lv[i - 1].price);
            if k == t {
                return Slot::Found(l.start as usize + i - 1);
            }
            if k < t {
                return Slot::Vacant(i);
            }
            i -= 1;
        }
        match lv[..i].binary_search_by(|x| l.key(x.price).cmp(&t)) {
            Ok(j) => Slot::Found(l.start as usize + j),
            Err(j) => Slot::Vacant(j),
        }
    }

    /// Inserts a new level at ladder position `pos` (from [`Slot::Vacant`]); returns its arena index,
    /// or `None` when the arena cannot supply a larger segment.
    #[inline]
    pub fn insert(&mut self, l: &mut Ladder, pos: usize, level: Level) -> Option<usize> {
        let cap = if l.class == u8::MAX {
            0
        } else {
            MIN_LADDER << l.class
        };
        if l.len as usize == cap {
            if cap >= MAX_LADDER {
                return None;
            }
            self.grow(l)?;
        }
        let s = l.start as usize;
        let n = l.len as usize;
        debug_assert!(pos <= n, "pos {pos} len {n}");
        self.levels.copy_within(s + pos..s + n, s + pos + 1);
        self.levels[s + pos] = level;
        l.len += 1;
        Some(s + pos)
    }

    /// Removes the level at arena index `idx` (which must belong to `l`).
    #[inline]
    pub fn remove(&mut self, l: &mut Ladder, idx: usize) {
        let s = l.start as usize;
        let n = l.len as usize;
        debug_assert!(idx >= s && idx < s + n, "idx {idx} start {s} len {n}");
        self.levels.copy_within(idx + 1..s + n, idx);
        l.len -= 1;
    }

    #[cold]
    fn grow(&mut self, l: &mut Ladder) -> Option<()> {
        let class = if l.class == u8::MAX {
            0
        } else {
            l.class as usize + 1
        };
        if class >= CLASSES {
            return None;
        }
        let cap = MIN_LADDER << class;
        let start = if self.free[class] != NONE {
            let s = self.free[class];
            self.free[class] = self.levels[s as usize].shares as u32;
            s as usize
        } else if self.levels.len() - self.top >= cap {
            self.top += cap;
            self.top - cap
        } else {
            return None;
        };
        if l.class != u8::MAX {
            let old = l.start as usize;
            let n = l.len as usize;
            self.levels.copy_within(old..old + n, start);
            // Thread the old segment onto its class's free list through its first slot.
            self.levels[old].shares = self.free[l.class as usize] as u64;
            self.free[l.class as usize] = old as u32;
        }
        l.start = start as u32;
        l.class = class as u8;
        Some(())
    }

    /// Forgets every segment (keeps the allocation). Ladders must be reset by the caller.
    pub fn clear(&mut self) {
        self.top = 0;
        self.free = [NONE; CLASSES];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_best_last_and_grows() {
        let mut a = LevelArena::new(1024);
        let mut bid = Ladder::new(true);
        let mut ask = Ladder::new(false);
        for p in [50u32, 10, 30, 20, 40, 60, 5, 45, 35, 25, 15, 55, 1, 100, 70] {
            for l in [&mut bid, &mut ask] {
                let Slot::Vacant(pos) = a.find(l, p) else {
                    panic!("dup {p}")
                };
                a.insert(
                    l,
                    pos,
                    Level {
                        price: p,
                        orders: 1,
                        shares: p as u64,
                    },
                )
                .unwrap();
            }
        }
        let bp: Vec<u32> = a.levels(&bid).iter().map(|l| l.price).collect();
        let mut sorted = bp.clone();
        sorted.sort();
        assert_eq!(bp, sorted);
        assert_eq!(a.best(&bid).unwrap().price, 100);
        assert_eq!(a.best(&ask).unwrap().price, 1);
        let Slot::Found(i) = a.find(&ask, 35) else {
            panic!()
        };
        assert_eq!(a.at_mut(i).price, 35);
        a.remove(&mut ask, i);
        assert_eq!(
            a.find(&ask, 35),
            Slot::Vacant(a.levels(&ask).iter().position(|l| l.price < 35).unwrap())
        );
        assert_eq!(ask.len(), 14);
    }

    #[test]
    fn exhaustion_is_reported() {
        let mut a = LevelArena::new(8);
        let mut l = Ladder::new(true);
        for p in 0..8 {
            assert!(a
                .insert(
                    &mut l,
                    p as usize,
                    Level {
                        price: p,
                        orders: 1,
                        shares: 1
                    }
                )
                .is_some());
        }
        assert_eq!(
            a.insert(
                &mut l,
                8,
                Level {
                    price: 9,
                    orders: 1,
                    shares: 1
                }
            ),
            None
        );
        assert_eq!(l.len(), 8);
    }
}
