//! As-of join (stream–table): the version of a per-key table in force at a given time.
//!
//! Each dense key keeps a ring of its last `M` versions `(ts, value)`, sorted by `ts`. An update
//! with the same `ts` as a kept version replaces it (a lookup could never return the earlier one);
//! an out-of-order update is inserted at its place. [`AsOf::lookup`] returns the latest version
//! with `version_ts <= ts`. When the answer has been evicted from the ring the lookup returns
//! `None` and counts `too_old`: it never returns an older, wrong version. To tell "evicted" from
//! "there was never a version that early", each key remembers the earliest timestamp it ever lost.

use crate::state::ring::Rings;
use crate::state::Ts;
use core::fmt;

/// What an [`AsOf`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct AsOfCounters {
    /// Updates applied (including replacements).
    pub updates: u64,
    /// Updates that replaced a version with the same timestamp.
    pub replaced: u64,
    /// Updates older than the previous newest version of their key (inserted in order).
    pub out_of_order: u64,
    /// Versions dropped from a full ring (the oldest; or the update itself if it was older
    /// than every kept version).
    pub evicted: u64,
    /// Lookups that found a version.
    pub hits: u64,
    /// Lookups earlier than every version the key ever had (the right answer is `None`).
    pub misses: u64,
    /// Lookups whose answer was evicted (returned `None` rather than a wrong version).
    pub too_old: u64,
    /// Updates or lookups with a key `>= keys`, refused.
    pub out_of_range: u64,
}

impl fmt::Display for AsOfCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "updates={} replaced={} out_of_order={} evicted={} hits={} misses={} too_old={} out_of_range={}",
            self.updates,
            self.replaced,
            self.out_of_order,
            self.evicted,
            self.hits,
            self.misses,
            self.too_old,
            self.out_of_range
        )
    }
}

/// Per dense key, the last `versions` versions of a value over time.
///
/// ```
/// use tickwatch::join::AsOf;
/// let mut bid = AsOf::new(4, 2); // 4 stocks, 2 versions each
/// bid.update(1, 100, 10_00u32);
/// bid.update(1, 200, 10_01);
/// assert_eq!(bid.lookup(1, 150), Some((100, &10_00)));
/// assert_eq!(bid.lookup(1, 200), Some((200, &10_01))); // inclusive
/// assert_eq!(bid.lookup(1, 99), None); // before the first version: a miss
/// bid.update(1, 300, 10_02); // evicts (100, 10_00)
/// assert_eq!(bid.lookup(1, 150), None); // its answer was evicted: too_old
/// assert_eq!(bid.counters().too_old, 1);
/// ```
#[derive(Debug)]
pub struct AsOf<V: Copy> {
    rings: Rings<(Ts, V)>,
    /// Earliest timestamp each key ever lost from its ring, `Ts::MAX` if none.
    lost_from: Box<[Ts]>,
    counters: AsOfCounters,
}

impl<V: Copy> AsOf<V> {
    /// Keys `0..keys`, each keeping its last `versions` versions.
    ///
    /// # Panics
    /// If `versions` exceeds `u32::MAX` or `keys * versions` overflows.
    pub fn new(keys: usize, versions: usize) -> Self {
        Self {
            rings: Rings::new(keys, versions),
            lost_from: vec![Ts::MAX; keys].into_boxed_slice(),
            counters: AsOfCounters::default(),
        }
    }

    /// Number of keys.
    pub fn keys(&self) -> usize {
        self.lost_from.len()
    }

    /// Versions kept per key.
    pub fn versions(&self) -> usize {
        self.rings.cap()
    }

    /// The counters so far.
    pub fn counters(&self) -> AsOfCounters {
        self.counters
    }

    /// Records that `key` has value `value` from `ts` on. Returns false (counted) if
    /// `key >= keys`.
    #[inline]
    pub fn update(&mut self, key: u32, ts: Ts, value: V) -> bool {
        let r = key as usize;
        if r >= self.keys() {
            self.counters.out_of_range += 1;
            return false;
        }
        self.counters.updates += 1;
        let n = self.rings.len(r);
        // Fast path: in order (the usual case for a table fed by one stream).
        let newest = self.rings.get(r, n.wrapping_sub(1)).map(|&(t, _)| t);
        match newest {
            Some(t) if t == ts => {
                self.rings.set(r, n - 1, (ts, value));
                self.counters.replaced += 1;
                return true;
            }
            Some(t) if t > ts => self.counters.out_of_order += 1,
            _ => {
                self.push(r, ts, value);
                return true;
            }
        }
        // Out of order: first kept version with a later timestamp.
        let at = self.rings.partition_point(r, |&(t, _)| t <= ts);
        if at > 0 && self.rings.get(r, at - 1).is_some_and(|&(t, _)| t == ts) {
            self.rings.set(r, at - 1, (ts, value));
            self.counters.replaced += 1;
            return true;
        }
        if at == 0 && n == self.rings.cap() {
            // Older than everything kept in a full ring: it would be the one evicted.
            self.lose(r, ts);
            return true;
        }
        self.push(r, ts, value);
        // Bubble it back from the newest position to its place.
        let mut i = self.rings.len(r) - 1;
        while i > 0 && self.rings.get(r, i - 1).is_some_and(|&(t, _)| t > ts) {
            self.rings.swap(r, i - 1, i);
            i -= 1;
        }
        true
    }

    fn push(&mut self, r: usize, ts: Ts, value: V) {
        if let Some((lost, _)) = self.rings.push_back(r, (ts, value)) {
            self.lose(r, lost);
        }
    }

    fn lose(&mut self, r: usize, ts: Ts) {
        self.counters.evicted += 1;
        self.lost_from[r] = self.lost_from[r].min(ts);
    }

    /// The latest version of `key` with `version_ts <= ts`, as `(version_ts, &value)`.
    /// `None` if the key had no version that early (a miss), if that version was evicted
    /// (counted `too_old`), or if `key >= keys` (counted `out_of_range`).
    #[inline]
    pub fn lookup(&mut self, key: u32, ts: Ts) -> Option<(Ts, &V)> {
        let r = key as usize;
        if r >= self.keys() {
            self.counters.out_of_range += 1;
            return None;
        }
        let n = self.rings.len(r);
        // Usually the newest version answers; otherwise binary search.
        let at = match self.rings.get(r, n.wrapping_sub(1)) {
            Some(&(t, _)) if t <= ts => n,
            _ => self.rings.partition_point(r, |&(t, _)| t <= ts),
        };
        if at == 0 {
            if self.lost_from[r] <= ts {
                self.counters.too_old += 1;
            } else {
                self.counters.misses += 1;
            }
            return None;
        }
        self.counters.hits += 1;
        self.rings.get(r, at - 1).map(|(t, v)| (*t, v))
    }

    /// Forgets every version of `key` (and what it lost).
    pub fn clear(&mut self, key: u32) {
        let r = key as usize;
        if r < self.keys() {
            self.rings.clear(r);
            self.lost_from[r] = Ts::MAX;
        }
    }

    /// The kept versions of `key`, oldest first.
    pub fn versions_of(&self, key: u32) -> impl DoubleEndedIterator<Item = &(Ts, V)> + '_ {
        let r = key as usize;
        (r < self.keys())
            .then(|| self.rings.iter(r))
            .into_iter()
            .flatten()
    }
}
