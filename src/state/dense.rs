//! Keyed state for small integer keys (stock locates): the key is the array index.
//!
//! One slot per possible key, allocated at construction and never grown; a lookup is one bounds
//! check and one load. A key at or above the capacity is a counted overflow, never a panic.
//! With a TTL, a slot whose last write is `ttl` or more nanoseconds before the access time reads
//! as absent and is counted as expired once (see [`crate::state`] for the TTL rule).

use super::{expired, StateCounters, Ts};

#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct Slot<V> {
    value: V,
    written: Ts,
    live: bool,
}

/// A value per dense key `0..capacity`, with an optional event-time TTL.
///
/// ```
/// use tickwatch::state::DenseState;
/// let mut last_px = DenseState::new(8, 0u32);
/// assert!(last_px.update(3, 1_000, |px| *px = 101));
/// assert_eq!(last_px.get(3, 2_000), Some(&101));
/// assert_eq!(last_px.get(4, 2_000), None);
/// assert!(!last_px.update(8, 2_000, |px| *px = 1)); // 8 >= capacity: counted overflow
/// assert_eq!(last_px.counters().overflow, 1);
/// ```
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct DenseState<V: Copy> {
    slots: Box<[Slot<V>]>,
    default: V,
    ttl: Option<Ts>,
    live: usize,
    counters: StateCounters,
}

impl<V: Copy> DenseState<V> {
    /// Room for keys `0..capacity` (at most [`MAX_CAPACITY`]), each starting absent;
    /// [`update`](Self::update) starts an absent key from `default`.
    ///
    /// [`MAX_CAPACITY`]: super::MAX_CAPACITY
    pub fn new(capacity: usize, default: V) -> Self {
        let capacity = super::capped(capacity);
        let slot = Slot {
            value: default,
            written: 0,
            live: false,
        };
        Self {
            slots: vec![slot; capacity].into_boxed_slice(),
            default,
            ttl: None,
            live: 0,
            counters: StateCounters::default(),
        }
    }

    /// As [`new`](Self::new), and a value whose last write is `ttl` ns or more before the
    /// access time is expired.
    ///
    /// # Panics
    /// If `ttl` is 0 (every value would be expired as soon as written).
    pub fn with_ttl(capacity: usize, default: V, ttl: Ts) -> Self {
        assert!(ttl > 0, "a TTL of 0 expires every value at once");
        Self {
            ttl: Some(ttl),
            ..Self::new(capacity, default)
        }
    }

    /// Number of keys (`0..capacity` are valid).
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Live values, including ones past their TTL that no access has expired yet.
    pub fn len(&self) -> usize {
        self.live
    }

    /// True if no value is live.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The counters so far.
    pub fn counters(&self) -> StateCounters {
        self.counters
    }

    /// Index of a live, unexpired slot for `key` at time `now`; expires it if its TTL passed.
    #[inline]
    fn live_slot(&mut self, key: u32, now: Ts) -> Option<usize> {
        let i = key as usize;
        let slot = self.slots.get_mut(i)?;
        if !slot.live {
            return None;
        }
        if expired(self.ttl, slot.written, now) {
            slot.live = false;
            self.live -= 1;
            self.counters.expired += 1;
            return None;
        }
        Some(i)
    }

    /// The value of `key` at time `now`, or `None` if absent, expired or out of range.
    /// A read does not refresh the TTL.
    #[inline]
    pub fn get(&mut self, key: u32, now: Ts) -> Option<&V> {
        match self.live_slot(key, now) {
            Some(i) => {
                self.counters.hits += 1;
                Some(&self.slots[i].value)
            }
            None => {
                self.counters.misses += 1;
                None
            }
        }
    }

    /// The value of `key` to modify in place; counts as a write at `now` (refreshes the TTL).
    #[inline]
    pub fn get_mut(&mut self, key: u32, now: Ts) -> Option<&mut V> {
        match self.live_slot(key, now) {
            Some(i) => {
                self.counters.hits += 1;
                let slot = &mut self.slots[i];
                slot.written = now;
                Some(&mut slot.value)
            }
            None => {
                self.counters.misses += 1;
                None
            }
        }
    }

    /// Applies `f` to the value of `key` (starting from the default if absent or expired) and
    /// records a write at `now`. Returns false, counting an overflow, if `key >= capacity`.
    #[inline]
    pub fn update(&mut self, key: u32, now: Ts, f: impl FnOnce(&mut V)) -> bool {
        if self.live_slot(key, now).is_some() {
            self.counters.hits += 1;
        } else if let Some(slot) = self.slots.get_mut(key as usize) {
            slot.value = self.default;
            slot.live = true;
            self.live += 1;
            self.counters.inserts += 1;
        } else {
            self.counters.overflow += 1;
            return false;
        }
        let slot = &mut self.slots[key as usize];
        slot.written = now;
        f(&mut slot.value);
        true
    }

    /// Sets the value of `key` at `now`; false (counted overflow) if `key >= capacity`.
    #[inline]
    pub fn set(&mut self, key: u32, now: Ts, value: V) -> bool {
        self.update(key, now, |v| *v = value)
    }

    /// Makes `key` absent; returns the value it had (even if past its TTL).
    pub fn clear(&mut self, key: u32) -> Option<V> {
        let slot = self.slots.get_mut(key as usize)?;
        if !slot.live {
            return None;
        }
        slot.live = false;
        self.live -= 1;
        Some(slot.value)
    }

    /// Makes every key absent (O(capacity)).
    pub fn clear_all(&mut self) {
        for slot in self.slots.iter_mut() {
            slot.live = false;
        }
        self.live = 0;
    }
}
