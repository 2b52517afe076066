//! Interval join (stream–stream), with Flink's semantics: every pair `(l, r)` with the same key
//! and `l.ts + lower <= r.ts <= l.ts + upper` (both bounds inclusive, `lower <= upper`, either may
//! be negative) is emitted exactly once, when the later of the two arrives.
//!
//! Both sides are buffered per key (a [`SparseIndex`] slot) in fixed rings, in arrival order. The
//! watermark `wm` promises no more events with `ts <= wm`, so [`IntervalJoin::advance`] drops
//! every buffered element that no future event can match: a left `l` once `l.ts + upper <= wm`,
//! a right `r` once `r.ts - lower <= wm`; a key whose buffers are both empty gives its slot back.
//! An element that can match no future event is joined but not buffered at all.
//!
//! Overflow policy, each counted: an event with `ts <= wm` is **late** and dropped without
//! joining (its partners may already be gone); a new key when the key table is full is dropped
//! (nothing of that key is buffered, so it has no partner now either); pushing onto a full ring
//! first joins the new element, then **evicts the oldest-arrived element of that key and side**
//! (returned to the caller), so only the pairs of the evicted element with later arrivals are lost.

use crate::state::ring::Rings;
use crate::state::{SparseIndex, Ts};
use core::fmt;

/// A matched pair, passed to the `emit` callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Joined<L, R> {
    /// The shared key.
    pub key: u64,
    /// Time of the left event.
    pub left_ts: Ts,
    /// The left event.
    pub left: L,
    /// Time of the right event.
    pub right_ts: Ts,
    /// The right event.
    pub right: R,
}

/// What happened to a pushed event (it was joined against the other side first unless it is
/// `Late` or `KeysFull`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit<T> {
    /// Joined and buffered.
    Buffered,
    /// Joined; not buffered, because no event after the watermark can match it.
    Done,
    /// Joined and buffered; the ring was full, so the oldest-arrived buffered element of the same
    /// key and side was dropped and is returned here (counted as evicted).
    Evicted {
        /// Its timestamp.
        ts: Ts,
        /// The element.
        value: T,
    },
    /// `ts <= watermark`: dropped without joining (counted).
    Late,
    /// A new key and the key table is full: dropped (counted).
    KeysFull,
}

/// What an [`IntervalJoin`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct IntervalCounters {
    /// Left events pushed.
    pub left: u64,
    /// Right events pushed.
    pub right: u64,
    /// Pairs emitted.
    pub pairs: u64,
    /// Events dropped as late (`ts <= watermark`).
    pub late: u64,
    /// Events dropped because the key table was full.
    pub keys_full: u64,
    /// Left elements evicted from a full ring.
    pub evicted_left: u64,
    /// Right elements evicted from a full ring.
    pub evicted_right: u64,
    /// Left elements dropped by the watermark (could match nothing more).
    pub expired_left: u64,
    /// Right elements dropped by the watermark.
    pub expired_right: u64,
}

impl fmt::Display for IntervalCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "left={} right={} pairs={} late={} keys_full={} evicted_left={} evicted_right={} expired_left={} expired_right={}",
            self.left,
            self.right,
            self.pairs,
            self.late,
            self.keys_full,
            self.evicted_left,
            self.evicted_right,
            self.expired_left,
            self.expired_right
        )
    }
}

/// Stream–stream join of `L` and `R` events on a `u64` key within `[lower, upper]` ns.
///
/// ```
/// use tickwatch::join::{IntervalJoin, Joined};
/// // An add (left) with its cancel (right) within 1 ms.
/// let mut j = IntervalJoin::<u32, u32>::new(0, 1_000_000, 1024, 8);
/// let mut out = Vec::new();
/// j.push_left(77, 1_000, 500, |p| out.push(p));
/// j.push_right(77, 400_000, 500, |p| out.push(p));
/// j.push_right(77, 2_000_000, 500, |p| out.push(p)); // too late for the add
/// assert_eq!(out, [Joined { key: 77, left_ts: 1_000, left: 500, right_ts: 400_000, right: 500 }]);
/// j.advance(1_001_000); // the add can match nothing more
/// assert_eq!(j.counters().expired_left, 1);
/// ```
#[derive(Debug)]
pub struct IntervalJoin<L: Copy, R: Copy> {
    lower: i64,
    upper: i64,
    index: SparseIndex,
    lefts: Rings<(Ts, L)>,
    rights: Rings<(Ts, R)>,
    wm: Option<Ts>,
    counters: IntervalCounters,
}

/// `ts + d` in `i128` (no overflow for any `u64`/`i64`).
#[inline]
fn shift(ts: Ts, d: i64) -> i128 {
    ts as i128 + d as i128
}

/// `ts - d` in `i128`.
#[inline]
fn minus(ts: Ts, d: i64) -> i128 {
    ts as i128 - d as i128
}

impl<L: Copy, R: Copy> IntervalJoin<L, R> {
    /// Joins `l` with `r` when `l.ts + lower <= r.ts <= l.ts + upper`; room for `keys` keys
    /// with live buffers, each buffering up to `per_key` events per side.
    ///
    /// # Panics
    /// If `lower > upper`, or as [`SparseIndex::new`].
    pub fn new(lower: i64, upper: i64, keys: usize, per_key: usize) -> Self {
        assert!(lower <= upper, "lower bound {lower} > upper bound {upper}");
        Self {
            lower,
            upper,
            index: SparseIndex::new(keys),
            lefts: Rings::new(keys, per_key),
            rights: Rings::new(keys, per_key),
            wm: None,
            counters: IntervalCounters::default(),
        }
    }

    /// The counters so far.
    pub fn counters(&self) -> IntervalCounters {
        self.counters
    }

    /// The current watermark (`None` before the first [`advance`](Self::advance)).
    pub fn watermark(&self) -> Option<Ts> {
        self.wm
    }

    /// Keys with buffered events.
    pub fn keys(&self) -> usize {
        self.index.len()
    }

    /// Buffered `(left, right)` events over all keys (O(keys capacity)).
    pub fn buffered(&self) -> (usize, usize) {
        self.index.iter().fold((0, 0), |(l, r), (_, s)| {
            (
                l + self.lefts.len(s as usize),
                r + self.rights.len(s as usize),
            )
        })
    }

    #[inline]
    fn is_late(&self, ts: Ts) -> bool {
        self.wm.is_some_and(|wm| ts <= wm)
    }

    /// True if a left at `ts` can match no right after the watermark.
    #[inline]
    fn left_done(&self, ts: Ts) -> bool {
        self.wm
            .is_some_and(|wm| shift(ts, self.upper) <= wm as i128)
    }

    /// True if a right at `ts` can match no left after the watermark.
    #[inline]
    fn right_done(&self, ts: Ts) -> bool {
        self.wm
            .is_some_and(|wm| minus(ts, self.lower) <= wm as i128)
    }

    /// The buffer slot of `key` for an event stamped `ts` (emptied if the key is new), or why
    /// the event is refused, counted: `Err(true)` late, `Err(false)` the key table is full.
    #[inline]
    fn slot_for(&mut self, key: u64, ts: Ts) -> Result<usize, bool> {
        if self.is_late(ts) {
            self.counters.late += 1;
            return Err(true);
        }
        let Ok(e) = self.index.insert(key, ts) else {
            self.counters.keys_full += 1;
            return Err(false);
        };
        let s = e.slot as usize;
        if e.new {
            self.lefts.clear(s);
            self.rights.clear(s);
        }
        Ok(s)
    }

    /// Joins the left event `(key, ts, value)` with the buffered right events of `key`, calling
    /// `emit` once per match (in the rights' arrival order), then buffers it.
    #[inline]
    pub fn push_left(
        &mut self,
        key: u64,
        ts: Ts,
        value: L,
        mut emit: impl FnMut(Joined<L, R>),
    ) -> Admit<L> {
        self.counters.left += 1;
        let s = match self.slot_for(key, ts) {
            Ok(s) => s,
            Err(late) => return if late { Admit::Late } else { Admit::KeysFull },
        };
        let (lo, hi) = (shift(ts, self.lower), shift(ts, self.upper));
        for &(rts, r) in self.rights.iter(s) {
            if lo <= rts as i128 && rts as i128 <= hi {
                self.counters.pairs += 1;
                emit(Joined {
                    key,
                    left_ts: ts,
                    left: value,
                    right_ts: rts,
                    right: r,
                });
            }
        }
        if self.left_done(ts) {
            self.release_if_empty(key, s);
            return Admit::Done;
        }
        match self.lefts.push_back(s, (ts, value)) {
            None => Admit::Buffered,
            Some((ts, value)) => {
                self.counters.evicted_left += 1;
                Admit::Evicted { ts, value }
            }
        }
    }

    /// Joins the right event `(key, ts, value)` with the buffered left events of `key`, calling
    /// `emit` once per match (in the lefts' arrival order), then buffers it.
    #[inline]
    pub fn push_right(
        &mut self,
        key: u64,
        ts: Ts,
        value: R,
        mut emit: impl FnMut(Joined<L, R>),
    ) -> Admit<R> {
        self.counters.right += 1;
        let s = match self.slot_for(key, ts) {
            Ok(s) => s,
            Err(late) => return if late { Admit::Late } else { Admit::KeysFull },
        };
        let t = ts as i128;
        for &(lts, l) in self.lefts.iter(s) {
            if shift(lts, self.lower) <= t && t <= shift(lts, self.upper) {
                self.counters.pairs += 1;
                emit(Joined {
                    key,
                    left_ts: lts,
                    left: l,
                    right_ts: ts,
                    right: value,
                });
            }
        }
        if self.right_done(ts) {
            self.release_if_empty(key, s);
            return Admit::Done;
        }
        match self.rights.push_back(s, (ts, value)) {
            None => Admit::Buffered,
            Some((ts, value)) => {
                self.counters.evicted_right += 1;
                Admit::Evicted { ts, value }
            }
        }
    }

    fn release_if_empty(&mut self, key: u64, s: usize) {
        if self.lefts.len(s) == 0 && self.rights.len(s) == 0 {
            self.index.remove(key);
        }
    }

    /// Advances the watermark to `wm` (no more events with `ts <= wm`; a smaller `wm` than the
    /// current one is ignored) and drops every buffered element that can match no future event.
    /// Returns the number dropped. O(keys capacity + buffered elements).
    pub fn advance(&mut self, wm: Ts) -> usize {
        if self.wm.is_some_and(|cur| wm <= cur) {
            return 0;
        }
        self.wm = Some(wm);
        let (w, lower, upper) = (wm as i128, self.lower, self.upper);
        let mut dropped = 0;
        for s in 0..self.index.capacity() {
            let Some(key) = self.index.key_of(s as u32) else {
                continue;
            };
            let l = self.lefts.retain(s, |&(ts, _)| shift(ts, upper) > w);
            let r = self.rights.retain(s, |&(ts, _)| minus(ts, lower) > w);
            self.counters.expired_left += l as u64;
            self.counters.expired_right += r as u64;
            dropped += l + r;
            self.release_if_empty(key, s);
        }
        dropped
    }
}
