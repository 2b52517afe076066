//! Fixed-size keyed state: per-key values, reductions and bounded lists that allocate only at
//! construction.
//!
//! Two kinds of key:
//! - **Dense** keys (stock locates, `u32 < capacity`) index an array directly: [`DenseState`].
//! - **Sparse** `u64` keys (an MPID packed into a `u64`, an account, an order reference) go
//!   through a [`SparseIndex`], a fixed-capacity open-addressing table that maps each key to a
//!   dense slot, in front of plain value arrays: [`KeyedState`] (a value per key),
//!   [`ReducingState`] (a fold per key) and [`ListState`] (the last `N` values per key).
//!
//! ## Guarantees
//! - **Allocates on construction; after that, none.** `get`, `insert`, `update`, `push`,
//!   `remove` and `expire` never allocate and never grow a table.
//! - **Sizes are bounded.** A capacity above [`MAX_CAPACITY`] is clamped to it: no size panics a
//!   constructor or allocates without bound.
//! - **Full is a counted overflow, never a panic.** A new key that does not fit (table full, or a
//!   dense key `>= capacity`) is refused with [`Full`] or `false` and counted in
//!   [`StateCounters::overflow`]; a full list evicts its oldest value, returned and counted in
//!   [`StateCounters::evicted`].
//! - **Event-time TTL** (optional, `with_ttl`). Time is the event's timestamp ([`Ts`], ns since
//!   midnight), passed in by the caller as `now`, never the wall clock. A value written at `w` is
//!   live while `now - w < ttl` and expired from `now - w >= ttl` on (at exactly `ttl` it is
//!   gone, as Flink's `expirationTimestamp <= now`). Writes (`insert`, `update`, `set`,
//!   `get_mut`, `push`) refresh the TTL; reads (`get`, `iter`) do not (Flink's
//!   `OnCreateAndWrite`). A time before the last write counts as no time elapsed. An expired
//!   value reads as absent and is counted once in [`StateCounters::expired`], when an access or
//!   probe meets it or when the bounded sweep `expire(now, budget)` reaches it.
//!
//! Everything here is single-threaded state owned by one worker; shard by key for parallelism.

#![forbid(unsafe_code)]

mod counters;
mod dense;
mod keyed;
pub(crate) mod ring;
mod sparse;

pub use counters::StateCounters;
pub use dense::DenseState;
pub use keyed::{KeyedState, ListState, ReducingState};
pub use sparse::{Entry, Full, IndexCheckError, SparseIndex, SWEEP_ON_FULL};

/// Keys (or list cells) one structure holds at most. A larger capacity is clamped to it, so no
/// size taken from a configuration can make a constructor panic or allocate without bound
/// (the callers bound their sizes further: `[limits]` in the surveillance rules).
pub const MAX_CAPACITY: usize = 1 << 28;

/// `capacity` clamped to [`MAX_CAPACITY`]: the size every constructor here allocates for.
pub fn capped(capacity: usize) -> usize {
    capacity.min(MAX_CAPACITY)
}

/// Event time: nanoseconds since midnight, as in ITCH timestamps.
pub type Ts = u64;

/// The TTL rule shared by every structure: written at `written`, expired at `now` when
/// `now - written >= ttl` (saturating, so an earlier `now` is never expired).
#[inline]
pub(crate) fn expired(ttl: Option<Ts>, written: Ts, now: Ts) -> bool {
    ttl.is_some_and(|ttl| now.saturating_sub(written) >= ttl)
}
