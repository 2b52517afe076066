//! Stream joins over fixed-size state: as-of (stream–table), interval (stream–stream) and
//! window (kdb+ `wj`) joins, allocating only at construction.
//!
//! - [`AsOf`]: per dense key, the last `M` versions of a table (such as the BBO); `lookup(key, t)`
//!   is the latest version at or before `t`, or `None` — never a wrong version — when that
//!   version has been evicted (counted `too_old`). E.g. an order's distance from the touch when
//!   it arrives.
//! - [`IntervalJoin`]: pairs `(l, r)` of two streams with the same `u64` key and
//!   `l.ts + lower <= r.ts <= l.ts + upper` (Flink's interval join), each emitted once, whichever
//!   side arrives first. E.g. an add with its cancel or execution within `[t, t + Δ]`.
//! - [`WindowJoin`]: for each trade at `t`, a [`WindowFold`] over the quotes of its key in
//!   `[t - before, t + after]`, emitted once the watermark passes `t + after` (transaction-cost
//!   analysis: count, lowest bid, highest ask, mean spread).
//!
//! ## Time and watermarks
//! Timestamps are event time ([`Ts`], ns since midnight). A watermark `wm` means no more events
//! with `ts <= wm` are expected: events at or before it are **late**, refused and counted, and
//! buffered state that no future event can use is dropped. With room enough that nothing
//! overflows, every join gives exactly the brute-force result over the accepted events; each
//! overflow is counted, and the module docs say which element it costs.
//!
//! ## Guarantees
//! No allocation after construction (emission goes through a caller's `FnMut`), no growth, no
//! panics on full: every ring, key table and queue has a fixed capacity and a counted overflow.

#![forbid(unsafe_code)]

mod asof;
mod interval;
pub mod market;
mod wj;

pub use crate::state::Ts;
pub use asof::{AsOf, AsOfCounters};
pub use interval::{Admit, IntervalCounters, IntervalJoin, Joined};
pub use wj::{
    Count, Last, Max, Mean, Min, Refused, Sum, WindowFold, WindowJoin, WindowJoinCounters,
    WindowRow,
};
