//! Keyed state for sparse `u64` keys: a [`SparseIndex`] in front of preallocated value arrays.
//!
//! Three shapes, after Flink's keyed state: a value per key ([`KeyedState`]), a running
//! reduction per key ([`ReducingState`]), and the last `N` values per key ([`ListState`]).
//! A slot freed by removal or expiry is reset when the index hands it to a new key
//! ([`Entry::new`]), so no stale value is ever read under another key.

use super::ring::Rings;
use super::sparse::{Entry, Full, SparseIndex};
use super::{StateCounters, Ts};
use core::fmt;
use core::marker::PhantomData;

/// A value per sparse key (Flink `ValueState`), fixed capacity, optional TTL.
///
/// ```
/// use tickwatch::state::KeyedState;
/// let mut volume = KeyedState::new(1024, 0u64); // per MPID
/// let mpid = u64::from_be_bytes(*b"\0\0\0\0GSCO");
/// volume.update(mpid, 10, |v| *v += 300)?;
/// volume.update(mpid, 20, |v| *v += 200)?;
/// assert_eq!(volume.get(mpid, 30), Some(&500));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct KeyedState<V: Copy> {
    index: SparseIndex,
    values: Box<[V]>,
    init: V,
}

impl<V: Copy> KeyedState<V> {
    /// Room for `capacity` keys (as [`SparseIndex::new`]); a new key starts at `init`.
    pub fn new(capacity: usize, init: V) -> Self {
        Self::from_index(SparseIndex::new(capacity), init)
    }

    /// As [`new`](Self::new), with keys expiring after `ttl` ns without a write.
    ///
    /// # Panics
    /// As [`SparseIndex::with_ttl`].
    pub fn with_ttl(capacity: usize, init: V, ttl: Ts) -> Self {
        Self::from_index(SparseIndex::with_ttl(capacity, ttl), init)
    }

    fn from_index(index: SparseIndex, init: V) -> Self {
        Self {
            values: vec![init; index.capacity()].into_boxed_slice(),
            index,
            init,
        }
    }

    /// Keys held at most.
    pub fn capacity(&self) -> usize {
        self.index.capacity()
    }

    /// Keys present.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True if no key is present.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The counters so far.
    pub fn counters(&self) -> StateCounters {
        self.index.counters()
    }

    /// The index (slots, homes, invariants).
    pub fn index(&self) -> &SparseIndex {
        &self.index
    }

    /// The value of `key` at `now`, if present and unexpired. Does not refresh the TTL.
    #[inline]
    pub fn get(&mut self, key: u64, now: Ts) -> Option<&V> {
        let slot = self.index.get(key, now)?;
        Some(&self.values[slot as usize])
    }

    /// The value of `key` to change in place, if present; a write at `now` (refreshes the TTL).
    #[inline]
    pub fn get_mut(&mut self, key: u64, now: Ts) -> Option<&mut V> {
        let slot = self.index.get(key, now)?;
        self.index.touch(slot, now);
        Some(&mut self.values[slot as usize])
    }

    /// The value of `key`, inserted as `init` if absent; a write at `now`.
    ///
    /// # Errors
    /// [`Full`] if the key is new and the table is full (counted overflow).
    #[inline]
    pub fn entry(&mut self, key: u64, now: Ts) -> Result<&mut V, Full> {
        let Entry { slot, new } = self.index.insert(key, now)?;
        let v = &mut self.values[slot as usize];
        if new {
            *v = self.init;
        }
        Ok(v)
    }

    /// Applies `f` to the value of `key` (inserted as `init` if absent) at `now`.
    ///
    /// # Errors
    /// As [`entry`](Self::entry).
    #[inline]
    pub fn update(&mut self, key: u64, now: Ts, f: impl FnOnce(&mut V)) -> Result<(), Full> {
        f(self.entry(key, now)?);
        Ok(())
    }

    /// Sets the value of `key` at `now`.
    ///
    /// # Errors
    /// As [`entry`](Self::entry).
    #[inline]
    pub fn set(&mut self, key: u64, now: Ts, value: V) -> Result<(), Full> {
        *self.entry(key, now)? = value;
        Ok(())
    }

    /// Removes `key`, returning its value (whatever its TTL).
    pub fn remove(&mut self, key: u64) -> Option<V> {
        let slot = self.index.remove(key)?;
        Some(self.values[slot as usize])
    }

    /// Sweeps at most `budget` slots for expired keys; see [`SparseIndex::expire`].
    pub fn expire(&mut self, now: Ts, budget: usize) -> usize {
        self.index.expire(now, budget)
    }

    /// Every present `(key, value)`, in slot order (O(capacity); TTL not applied).
    pub fn iter(&self) -> impl Iterator<Item = (u64, &V)> + '_ {
        self.index
            .iter()
            .map(|(k, s)| (k, &self.values[s as usize]))
    }
}

/// A running reduction per key (Flink `ReducingState`/`AggregatingState`): each input is folded
/// into the key's accumulator by `f(&mut acc, &input)`.
///
/// ```
/// use tickwatch::state::ReducingState;
/// // Largest order size per account.
/// let mut max = ReducingState::new(64, 0u32, |m: &mut u32, shares: &u32| *m = (*m).max(*shares));
/// max.add(42, 1, &100)?;
/// max.add(42, 2, &700)?;
/// max.add(42, 3, &300)?;
/// assert_eq!(max.get(42, 4), Some(&700));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ReducingState<V: Copy, In, F: Fn(&mut V, &In)> {
    state: KeyedState<V>,
    f: F,
    _in: PhantomData<fn(&In)>,
}

impl<V: Copy + fmt::Debug, In, F: Fn(&mut V, &In)> fmt::Debug for ReducingState<V, In, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReducingState")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<V: Copy, In, F: Fn(&mut V, &In)> ReducingState<V, In, F> {
    /// Room for `capacity` keys (as [`SparseIndex::new`]); a new key's accumulator starts at
    /// `init`.
    pub fn new(capacity: usize, init: V, f: F) -> Self {
        Self {
            state: KeyedState::new(capacity, init),
            f,
            _in: PhantomData,
        }
    }

    /// As [`new`](Self::new), with keys expiring after `ttl` ns without an input.
    ///
    /// # Panics
    /// As [`SparseIndex::with_ttl`].
    pub fn with_ttl(capacity: usize, init: V, ttl: Ts, f: F) -> Self {
        Self {
            state: KeyedState::with_ttl(capacity, init, ttl),
            f,
            _in: PhantomData,
        }
    }

    /// Folds `input` into the accumulator of `key` at `now`; returns the new accumulator.
    ///
    /// # Errors
    /// [`Full`] if the key is new and the table is full (counted overflow; input dropped).
    #[inline]
    pub fn add(&mut self, key: u64, now: Ts, input: &In) -> Result<&V, Full> {
        let acc = self.state.entry(key, now)?;
        (self.f)(acc, input);
        Ok(acc)
    }

    /// The accumulator of `key` at `now`, if present and unexpired.
    #[inline]
    pub fn get(&mut self, key: u64, now: Ts) -> Option<&V> {
        self.state.get(key, now)
    }

    /// Removes `key`, returning its accumulator.
    pub fn remove(&mut self, key: u64) -> Option<V> {
        self.state.remove(key)
    }

    /// Sweeps at most `budget` slots for expired keys; see [`SparseIndex::expire`].
    pub fn expire(&mut self, now: Ts, budget: usize) -> usize {
        self.state.expire(now, budget)
    }

    /// Keys present.
    pub fn len(&self) -> usize {
        self.state.len()
    }

    /// True if no key is present.
    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
    }

    /// The counters so far.
    pub fn counters(&self) -> StateCounters {
        self.state.counters()
    }
}

/// The last `per_key` values of each key (a bounded Flink `ListState`): pushing onto a full list
/// evicts that key's oldest value, which is returned and counted as `evicted`.
///
/// ```
/// use tickwatch::state::ListState;
/// let mut last = ListState::new(16, 2); // last 2 prices per account
/// last.push(9, 1, 100u32)?;
/// last.push(9, 2, 101)?;
/// assert_eq!(last.push(9, 3, 102)?, Some(100)); // evicted
/// assert_eq!(last.iter(9, 4).copied().collect::<Vec<_>>(), [101, 102]);
/// assert_eq!(last.counters().evicted, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct ListState<V: Copy> {
    index: SparseIndex,
    rings: Rings<V>,
}

impl<V: Copy> ListState<V> {
    /// Room for `capacity` keys of `per_key` values each (`capacity * per_key` cells, at most
    /// [`MAX_CAPACITY`](super::MAX_CAPACITY): beyond, fewer values are kept per key).
    pub fn new(capacity: usize, per_key: usize) -> Self {
        Self {
            index: SparseIndex::new(capacity),
            rings: Rings::new(capacity, per_key),
        }
    }

    /// As [`new`](Self::new), with keys expiring after `ttl` ns without a push.
    ///
    /// # Panics
    /// As [`SparseIndex::with_ttl`].
    pub fn with_ttl(capacity: usize, per_key: usize, ttl: Ts) -> Self {
        Self {
            index: SparseIndex::with_ttl(capacity, ttl),
            rings: Rings::new(capacity, per_key),
        }
    }

    /// Values kept per key.
    pub fn per_key(&self) -> usize {
        self.rings.cap()
    }

    /// Keys present.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True if no key is present.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The counters so far.
    pub fn counters(&self) -> StateCounters {
        self.index.counters()
    }

    /// Appends `value` to the list of `key` at `now`; returns the evicted oldest value if the
    /// list was full.
    ///
    /// # Errors
    /// [`Full`] if the key is new and the table is full (counted overflow; value dropped).
    #[inline]
    pub fn push(&mut self, key: u64, now: Ts, value: V) -> Result<Option<V>, Full> {
        let Entry { slot, new } = self.index.insert(key, now)?;
        let r = slot as usize;
        if new {
            self.rings.clear(r);
        }
        let evicted = self.rings.push_back(r, value);
        if evicted.is_some() {
            self.index.counters.evicted += 1;
        }
        Ok(evicted)
    }

    /// The list of `key` at `now`, oldest first (empty if absent or expired).
    #[inline]
    pub fn iter(&mut self, key: u64, now: Ts) -> impl DoubleEndedIterator<Item = &V> + '_ {
        let slot = self.index.get(key, now);
        slot.map(|s| self.rings.iter(s as usize))
            .into_iter()
            .flatten()
    }

    /// The newest value of `key` at `now`.
    #[inline]
    pub fn last(&mut self, key: u64, now: Ts) -> Option<&V> {
        self.iter(key, now).next_back()
    }

    /// Removes `key` and its list; returns how many values it held.
    pub fn remove(&mut self, key: u64) -> Option<usize> {
        let r = self.index.remove(key)? as usize;
        let n = self.rings.len(r);
        self.rings.clear(r);
        Some(n)
    }

    /// Sweeps at most `budget` slots for expired keys; see [`SparseIndex::expire`].
    pub fn expire(&mut self, now: Ts, budget: usize) -> usize {
        self.index.expire(now, budget)
    }
}
