//! A fixed-capacity hash index from sparse `u64` keys (MPIDs, accounts, order refs) to dense
//! slot numbers `0..capacity`, so per-key values live in plain preallocated arrays.
//!
//! Open addressing over a power-of-two bucket array (twice the next power of two of the
//! capacity, so the load stays at or below 1/2), Fibonacci hashing (multiply by 2^64/φ and keep
//! the top bits, the same hash as the book's order table), linear probing, and deletion by
//! backward shift: the entries after a removed one that may move back into the hole do, so there
//! are no tombstones and a probe always ends at the first empty bucket. Slots come from a free
//! stack (a freed slot is the next one handed out, still warm in cache).
//!
//! With a TTL, the index remembers each slot's last write. An entry idle for `ttl` ns or more is
//! expired (counted) when a probe passes over it, and [`SparseIndex::expire`] sweeps a bounded
//! number of slots per call so idle keys are reclaimed even if no probe meets them.

use super::{expired, StateCounters, Ts};
use core::fmt;

/// Marks an empty bucket (slot numbers are `< capacity <= MAX_CAPACITY < u32::MAX`).
const EMPTY: u32 = u32::MAX;
const _: () = assert!(super::MAX_CAPACITY < EMPTY as usize);

/// Slots a full index with a TTL sweeps for expired entries before refusing an insertion
/// (bounds the extra work of that one insertion).
pub const SWEEP_ON_FULL: usize = 64;

/// 2^64 / φ, odd: the multiplier of Fibonacci hashing.
const FIB: u64 = 0x9E37_79B9_7F4A_7C15;

#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct Bucket {
    key: u64,
    slot: u32,
}

const VACANT: Bucket = Bucket {
    key: 0,
    slot: EMPTY,
};

/// The index was full: the key was not inserted (and the refusal was counted as an overflow).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("keyed state full: key not inserted (raise the capacity)")]
pub struct Full;

/// A broken invariant [`SparseIndex::check`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IndexCheckError {
    /// A bucket names a slot that is free or holds another key.
    #[error("bucket {bucket}: slot {slot} does not hold key {key}")]
    Slot {
        /// The bucket.
        bucket: usize,
        /// The slot it names.
        slot: usize,
        /// Its key.
        key: u64,
    },
    /// An empty bucket between a key's home bucket and its bucket.
    #[error("bucket {bucket}: key {key} cut off at {at}")]
    CutOff {
        /// The bucket.
        bucket: usize,
        /// Its key.
        key: u64,
        /// The empty bucket on the way.
        at: usize,
    },
    /// The counts of buckets, live slots and free slots disagree with `len`.
    #[error("len {len} but {buckets} buckets, {live} live slots, {free} free")]
    Count {
        /// Entries counted.
        len: usize,
        /// Occupied buckets.
        buckets: usize,
        /// Live slots.
        live: usize,
        /// Free slots.
        free: usize,
    },
}

/// Where a key lives, from [`SparseIndex::insert`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// The key's dense slot, `< capacity`.
    pub slot: u32,
    /// True if the key was not present (or had expired) and `slot` was just handed out: any
    /// value stored at `slot` belongs to an earlier key and must be reset.
    pub new: bool,
}

/// Fixed-capacity open-addressing map `u64 -> slot` with counted overflow and optional TTL.
///
/// ```
/// use tickwatch::state::SparseIndex;
/// let mut ix = SparseIndex::new(2);
/// let a = ix.insert(0xA11CE, 0)?;
/// assert!(a.new);
/// assert_eq!(ix.get(0xA11CE, 0), Some(a.slot));
/// ix.insert(7, 0)?;
/// assert!(ix.insert(8, 0).is_err()); // full: refused and counted
/// assert_eq!(ix.counters().overflow, 1);
/// assert_eq!(ix.remove(0xA11CE), Some(a.slot));
/// assert_eq!(ix.insert(8, 0)?.slot, a.slot); // the freed slot is reused
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(serde::Serialize, serde::Deserialize)]
pub struct SparseIndex {
    buckets: Box<[Bucket]>,
    mask: usize,
    shift: u32,
    free: Box<[u32]>,
    free_len: usize,
    slot_key: Box<[u64]>,
    slot_live: Box<[bool]>,
    written: Box<[Ts]>,
    ttl: Option<Ts>,
    len: usize,
    cursor: usize,
    pub(crate) counters: StateCounters,
}

impl fmt::Debug for SparseIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SparseIndex")
            .field("len", &self.len)
            .field("capacity", &self.capacity())
            .field("buckets", &self.buckets.len())
            .field("ttl", &self.ttl)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl SparseIndex {
    /// Room for `capacity` keys (at most [`MAX_CAPACITY`]); never grows.
    ///
    /// [`MAX_CAPACITY`]: super::MAX_CAPACITY
    pub fn new(capacity: usize) -> Self {
        // Slots are `u32`s below `EMPTY`: the cap keeps them so.
        let capacity = super::capped(capacity);
        let buckets = (capacity.max(1).next_power_of_two() * 2).max(2);
        Self {
            buckets: vec![VACANT; buckets].into_boxed_slice(),
            mask: buckets - 1,
            shift: 64 - buckets.trailing_zeros(),
            // Popped from the end, so slots are handed out 0, 1, 2, …
            free: (0..capacity as u32).rev().collect(),
            free_len: capacity,
            slot_key: vec![0; capacity].into_boxed_slice(),
            slot_live: vec![false; capacity].into_boxed_slice(),
            written: vec![0; capacity].into_boxed_slice(),
            ttl: None,
            len: 0,
            cursor: 0,
            counters: StateCounters::default(),
        }
    }

    /// As [`new`](Self::new), and an entry not written for `ttl` ns or more is expired.
    ///
    /// # Panics
    /// If `ttl` is 0.
    pub fn with_ttl(capacity: usize, ttl: Ts) -> Self {
        assert!(ttl > 0, "a TTL of 0 expires every entry at once");
        Self {
            ttl: Some(ttl),
            ..Self::new(capacity)
        }
    }

    /// Keys the index holds at most.
    pub fn capacity(&self) -> usize {
        self.slot_key.len()
    }

    /// Keys present, including ones past their TTL not yet expired.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if no key is present.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of buckets (a power of two, at least twice the capacity).
    pub fn buckets(&self) -> usize {
        self.buckets.len()
    }

    /// The bucket where the probe for `key` starts (to build colliding keys in tests).
    #[inline]
    pub fn home(&self, key: u64) -> usize {
        (key.wrapping_mul(FIB) >> self.shift) as usize
    }

    /// The counters so far.
    pub fn counters(&self) -> StateCounters {
        self.counters
    }

    /// The key that owns `slot`, if the slot is in use.
    pub fn key_of(&self, slot: u32) -> Option<u64> {
        let s = slot as usize;
        (s < self.capacity() && self.slot_live[s]).then(|| self.slot_key[s])
    }

    /// Every present `(key, slot)`, in slot order (O(capacity)).
    pub fn iter(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        (0..self.capacity())
            .filter(|&s| self.slot_live[s])
            .map(|s| (self.slot_key[s], s as u32))
    }

    #[inline]
    fn is_expired(&self, slot: u32, now: Ts) -> bool {
        expired(self.ttl, self.written[slot as usize], now)
    }

    /// Probes for `key`. `Ok(bucket)` if present, else `Err(first empty bucket)`. With `now`,
    /// expired entries met on the way (including the key's own) are removed and counted.
    #[inline]
    fn find(&mut self, key: u64, now: Option<Ts>) -> Result<usize, usize> {
        let mut i = self.home(key);
        loop {
            let b = self.buckets[i];
            if b.slot == EMPTY {
                return Err(i);
            }
            // The key is compared first: reading an entry's write time is another cache line,
            // paid only for the entry that matches (or, with a TTL, for one in a long cluster).
            if b.key == key {
                if now.is_some_and(|now| self.is_expired(b.slot, now)) {
                    // The backward shift refills bucket `i`, so look at it again.
                    self.remove_at(i);
                    self.counters.expired += 1;
                    continue;
                }
                return Ok(i);
            }
            if self.ttl.is_some() && now.is_some_and(|now| self.is_expired(b.slot, now)) {
                // An expired entry met on the way is removed; the key, if present, is still
                // reachable from its home through `i` after the backward shift.
                self.remove_at(i);
                self.counters.expired += 1;
                continue;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Empties bucket `i` and frees its slot, then shifts back every later entry of the cluster
    /// that may move into the hole (its home is not cyclically inside `(hole, j]`).
    fn remove_at(&mut self, i: usize) -> u32 {
        let slot = self.buckets[i].slot;
        debug_assert!(slot != EMPTY, "remove_at({i}) of an empty bucket");
        self.slot_live[slot as usize] = false;
        self.free[self.free_len] = slot;
        self.free_len += 1;
        self.len -= 1;
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let b = self.buckets[j];
            if b.slot == EMPTY {
                break;
            }
            let home = self.home(b.key);
            // Distance from home to j must be at least the distance from hole to j, i.e. the
            // hole lies on b's probe path.
            if (j.wrapping_sub(home) & self.mask) >= (j.wrapping_sub(hole) & self.mask) {
                self.buckets[hole] = b;
                hole = j;
            }
        }
        self.buckets[hole] = VACANT;
        slot
    }

    /// The slot of `key` at time `now`, or `None` (absent or expired). Does not refresh the TTL.
    #[inline]
    pub fn get(&mut self, key: u64, now: Ts) -> Option<u32> {
        match self.find(key, Some(now)) {
            Ok(b) => {
                self.counters.hits += 1;
                Some(self.buckets[b].slot)
            }
            Err(_) => {
                self.counters.misses += 1;
                None
            }
        }
    }

    /// The slot of `key`, inserting it if absent; records a write at `now` (refreshes the TTL).
    ///
    /// A full index with a TTL first sweeps up to [`SWEEP_ON_FULL`] slots for expired entries.
    ///
    /// # Errors
    /// [`Full`] if the key is absent and all `capacity` slots are in use (counted as overflow).
    #[inline]
    pub fn insert(&mut self, key: u64, now: Ts) -> Result<Entry, Full> {
        match self.find(key, Some(now)) {
            Ok(b) => {
                let slot = self.buckets[b].slot;
                self.written[slot as usize] = now;
                self.counters.hits += 1;
                Ok(Entry { slot, new: false })
            }
            Err(mut b) => {
                if self.free_len == 0 && self.ttl.is_some() && self.expire(now, SWEEP_ON_FULL) > 0 {
                    // The sweep moved entries: find the key's empty bucket again.
                    b = self.find(key, None).err().unwrap_or(b);
                }
                if self.free_len == 0 {
                    self.counters.overflow += 1;
                    return Err(Full);
                }
                self.free_len -= 1;
                let slot = self.free[self.free_len];
                self.buckets[b] = Bucket { key, slot };
                let s = slot as usize;
                self.slot_key[s] = key;
                self.slot_live[s] = true;
                self.written[s] = now;
                self.len += 1;
                self.counters.inserts += 1;
                Ok(Entry { slot, new: true })
            }
        }
    }

    /// Records a write of `slot` at `now` (refreshes its TTL) without a probe.
    #[inline]
    pub fn touch(&mut self, slot: u32, now: Ts) {
        if let Some(w) = self.written.get_mut(slot as usize) {
            *w = now;
        }
    }

    /// Removes `key` (whatever its TTL); returns the slot it freed.
    pub fn remove(&mut self, key: u64) -> Option<u32> {
        let b = self.find(key, None).ok()?;
        Some(self.remove_at(b))
    }

    /// Expires idle entries: examines at most `budget` slots, continuing where the last call
    /// stopped, and removes those idle for `ttl` or more at `now`. Returns the number removed
    /// (also counted). A no-op without a TTL. Call it with a budget such as `capacity / 64` per
    /// batch to bound the time spent.
    pub fn expire(&mut self, now: Ts, budget: usize) -> usize {
        let cap = self.capacity();
        if self.ttl.is_none() || cap == 0 {
            return 0;
        }
        let mut removed = 0;
        for _ in 0..budget.min(cap) {
            let s = self.cursor;
            self.cursor = if s + 1 == cap { 0 } else { s + 1 };
            if self.slot_live[s] && self.is_expired(s as u32, now) {
                if let Ok(b) = self.find(self.slot_key[s], None) {
                    self.remove_at(b);
                    self.counters.expired += 1;
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Removes every key (O(buckets + capacity)); counters are kept.
    pub fn clear(&mut self) {
        self.buckets.fill(VACANT);
        self.slot_live.fill(false);
        let cap = self.capacity();
        for (i, f) in self.free.iter_mut().enumerate() {
            *f = (cap - 1 - i) as u32;
        }
        self.free_len = cap;
        self.len = 0;
    }

    /// Verifies the table's invariants: every entry is reachable from its home bucket with no
    /// empty bucket in between, bucket and slot bookkeeping agree, and `len` is right.
    /// O(buckets · probe length); for tests.
    ///
    /// # Errors
    /// The first violation.
    pub fn check(&self) -> Result<(), IndexCheckError> {
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            if b.slot == EMPTY {
                continue;
            }
            seen += 1;
            let s = b.slot as usize;
            if s >= self.capacity() || !self.slot_live[s] || self.slot_key[s] != b.key {
                return Err(IndexCheckError::Slot {
                    bucket: i,
                    slot: s,
                    key: b.key,
                });
            }
            let mut p = self.home(b.key);
            while p != i {
                if self.buckets[p].slot == EMPTY {
                    return Err(IndexCheckError::CutOff {
                        bucket: i,
                        key: b.key,
                        at: p,
                    });
                }
                p = (p + 1) & self.mask;
            }
        }
        let live = self.slot_live.iter().filter(|&&l| l).count();
        if seen != self.len || live != self.len || self.free_len + self.len != self.capacity() {
            return Err(IndexCheckError::Count {
                len: self.len,
                buckets: seen,
                live,
                free: self.free_len,
            });
        }
        Ok(())
    }
}
