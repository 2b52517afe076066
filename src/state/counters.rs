//! What keyed state did: one set of counters shared by every structure in [`crate::state`].
//!
//! Counters are plain `u64`s bumped on the owning thread (no atomics); a worker copies them out
//! with `counters()` and the output stage [`StateCounters::merge`]s them across shards.

use core::fmt;

/// Counts of keyed-state events. Every refused or dropped value is in exactly one counter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StateCounters {
    /// Keys given a new entry (dense: a value written where none was live).
    pub inserts: u64,
    /// Accesses that found a live entry.
    pub hits: u64,
    /// Accesses that found nothing (never inserted, removed, or just expired).
    pub misses: u64,
    /// Insertions refused: the table was full, or a dense key was not below the capacity.
    pub overflow: u64,
    /// Entries dropped because they were idle for `ttl` or longer.
    pub expired: u64,
    /// Values pushed out of a full bounded list (the oldest of that key's list).
    pub evicted: u64,
}

impl StateCounters {
    /// Adds `other` into `self` (to total the shards of a pipeline).
    pub fn merge(&mut self, other: &StateCounters) {
        self.inserts += other.inserts;
        self.hits += other.hits;
        self.misses += other.misses;
        self.overflow += other.overflow;
        self.expired += other.expired;
        self.evicted += other.evicted;
    }
}

impl fmt::Display for StateCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "inserts={} hits={} misses={} overflow={} expired={} evicted={}",
            self.inserts, self.hits, self.misses, self.overflow, self.expired, self.evicted
        )
    }
}
