//! Event-time windowing: watermarks, keyed tumbling/sliding, session and count windows.
//!
//! Every operator here allocates all of its state in `new` (fixed arrays sized from the
//! configuration and the number of dense keys `0..keys`) and never allocates afterwards: `add`
//! and `advance` only index, merge and call the output closure. A full structure is a counted
//! overflow in the [`LateLedger`], never a panic and never a reallocation. There is no `unsafe`.
//!
//! # Semantics (Flink's, stated precisely)
//! - **Timestamps** are `u64` nanoseconds since midnight ([`Ts`]).
//! - **Watermark** `wm` means "no more events with `ts <= wm` are expected".
//!   [`BoundedOutOfOrderness`] gives `wm = M - ooo - 1` after seeing the maximum timestamp `M`
//!   (no watermark while that would be negative). [`Watermarks`] combines several inputs: the
//!   minimum over the *active* inputs, where an input is idle while its own maximum timestamp is
//!   more than `idle_after_ns` behind the maximum over all inputs (event time, so results are
//!   deterministic). The combined watermark never goes backwards; `finish` makes it `u64::MAX`.
//! - **Time windows** are `[start, end)`; window starts are `k * slide + offset`. Each operator
//!   keeps its own watermark, the maximum of every watermark handed to it (so it never goes
//!   backwards either). A window fires on time (from `advance`) once `wm >= end - 1`. A key with
//!   no events in a window never fires for it.
//! - **Allowed lateness** `L`: an event for a window with `end - 1 + L > wm` is accepted; if that
//!   window has already been fired by `advance`, the updated full result is emitted at once as a
//!   [`FiringKind::Late`] firing. An event is *dropped* from a window when `end - 1 + L <= wm`;
//!   an event dropped from every window it belongs to is counted once in the ledger
//!   ([`LateLedger::dropped_late`], with the largest `wm - ts` in
//!   [`LateLedger::max_lateness_ns`]). An event that some sliding windows accept and others
//!   drop goes into the accepting ones and is counted in [`LateLedger::partial_late`].
//! - **Emit modes**: [`Emit::OnClose`] emits on-time and late firings only; [`Emit::OnUpdate`]
//!   additionally emits every window's current partial result after each add
//!   ([`FiringKind::Update`]).
//! - **Order**: `advance` fires windows by start ascending, then key ascending.
//! - **Driving**: for each event, observe its timestamp in the watermark generator, call
//!   `advance` with the new watermark (when it rose), then `add` the event with that watermark.
//!   Advancing first frees the panes/sessions the new watermark closes before the event needs
//!   room, which is what the fixed state is sized for; the results are the same either way
//!   (an event at or below the watermark was late anyway). Call `advance(u64::MAX)` at the end.
//!
//! The operators: [`TimeWindows`] (tumbling and sliding/hopping, pane-based),
//! [`SessionWindows`] (gap-based, a fixed number of open sessions per key) and
//! [`CountWindows`] (every `slide` elements of a key, the last `size` elements).
//!
//! # Example
//! ```
//! use tickwatch::window::{Aggregate, BoundedOutOfOrderness, Firing, TimeWindowConfig, TimeWindows, Ts};
//! #[derive(Clone, Copy, Debug, PartialEq)]
//! struct Sum(i64);
//! impl Aggregate for Sum {
//!     type Input = i64;
//!     fn empty() -> Self { Sum(0) }
//!     fn add(&mut self, x: &i64, _ts: Ts) { self.0 += x }
//!     fn merge(&mut self, other: &Self) { self.0 += other.0 }
//! }
//! let mut win = TimeWindows::<Sum>::new(TimeWindowConfig::tumbling(100), 2)?;
//! let mut wms = BoundedOutOfOrderness::new(0);
//! let mut fired = Vec::new();
//! for (key, ts, x) in [(0, 10, 1), (1, 50, 2), (0, 99, 3), (0, 100, 4)] {
//!     // Observe the timestamp, advance to the new watermark, then add the event.
//!     let wm = wms.observe(ts);
//!     if let Some(wm) = wm {
//!         win.advance(wm, &mut |f: &Firing<Sum>| fired.push(*f));
//!     }
//!     win.add(key, ts, &x, wm, &mut |f: &Firing<Sum>| fired.push(*f));
//! }
//! win.advance(wms.finish(), &mut |f: &Firing<Sum>| fired.push(*f));
//! let got: Vec<_> = fired.iter().map(|f| (f.key, f.start, f.end, f.agg.0)).collect();
//! assert_eq!(got, [(0, 0, 100, 4), (1, 0, 100, 2), (0, 100, 200, 4)]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

mod count;
mod due;
mod session;
mod time;
mod watermark;

use std::fmt;

pub use count::CountWindows;
pub use session::{SessionConfig, SessionWindows};
pub use time::{TimeWindowConfig, TimeWindows};
pub use watermark::{BoundedOutOfOrderness, Watermarks};

/// Event time: nanoseconds since midnight.
pub type Ts = u64;

/// A mergeable window aggregate (sum, count, min, max, OHLC, ...).
///
/// `merge` must be associative, and `empty()` its identity. [`TimeWindows`] and [`CountWindows`]
/// merge panes in time order; [`SessionWindows`] merges sessions in slot order, so session
/// aggregates should also be commutative.
pub trait Aggregate: Copy {
    /// The value one event contributes.
    type Input;
    /// The aggregate of no events.
    fn empty() -> Self;
    /// Adds one event with its timestamp.
    fn add(&mut self, x: &Self::Input, ts: Ts);
    /// Folds `other` into `self` (panes into a window, sessions into a merged session).
    fn merge(&mut self, other: &Self);
}

/// Why a window result is emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FiringKind {
    /// The watermark passed the window's end: the first final result.
    OnTime,
    /// An accepted late event updated a window that had already fired: the updated full result.
    Late,
    /// [`Emit::OnUpdate`] only: the current partial result after an add.
    Update,
}

/// One window result for one key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Firing<A> {
    /// Dense key.
    pub key: u32,
    /// Window start (inclusive). Time windows that begin before midnight report 0 here (their
    /// `end` is exact). Count windows: the per-key sequence number of the first element.
    pub start: Ts,
    /// Window end (exclusive). Count windows: one past the last element's sequence number.
    pub end: Ts,
    /// The window's aggregate.
    pub agg: A,
    /// Why it fired.
    pub kind: FiringKind,
}

/// When results are emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Emit {
    /// Final results only: on-time firings and late firings.
    #[default]
    OnClose,
    /// Also the current partial result of every window an event was added to, on every add.
    OnUpdate,
}

/// What `add` did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Added {
    /// Added; none of its windows had fired yet.
    OnTime,
    /// Added to at least one window that had already fired; a late firing was (or, for a
    /// session extended past the watermark, will be) emitted.
    Late,
    /// Too late for every window it belongs to; counted in [`LateLedger::dropped_late`].
    Dropped,
    /// No room (or a key/timestamp out of range); counted in [`LateLedger::overflow`] or
    /// [`LateLedger::out_of_range`].
    Overflow,
}

/// Counts of events that did not go (or went late) into windows: nothing is lost silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LateLedger {
    /// Events dropped because every window they belong to was past its allowed lateness.
    pub dropped_late: u64,
    /// Largest `wm - ts` over dropped events, in nanoseconds.
    pub max_lateness_ns: u64,
    /// Sliding windows: events accepted by some of their windows but too late for others.
    pub partial_late: u64,
    /// Events accepted into a window that had already fired.
    pub late_accepted: u64,
    /// Late firings emitted.
    pub late_firings: u64,
    /// Events not added for lack of room (pane ring or session slots full).
    pub overflow: u64,
    /// Events not added because the key (or timestamp) was out of range.
    pub out_of_range: u64,
}

impl LateLedger {
    /// Events that went into no window: dropped, overflowed or out of range.
    pub fn lost(&self) -> u64 {
        self.dropped_late + self.overflow + self.out_of_range
    }

    pub(crate) fn record_drop(&mut self, lateness_ns: u64) {
        self.dropped_late += 1;
        self.max_lateness_ns = self.max_lateness_ns.max(lateness_ns);
    }
}

impl fmt::Display for LateLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dropped late {} (max lateness {} ns), partially late {}, late accepted {}, \
             late firings {}, overflow {}, out of range {}",
            self.dropped_late,
            self.max_lateness_ns,
            self.partial_late,
            self.late_accepted,
            self.late_firings,
            self.overflow,
            self.out_of_range
        )
    }
}

/// A window configuration that cannot be built; each variant says how to fix it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// The window size is 0; use a positive size.
    #[error("window size must be > 0")]
    ZeroSize,
    /// The slide is 0; use a positive slide (equal to the size for tumbling windows).
    #[error("window slide must be > 0")]
    ZeroSlide,
    /// Panes need `size % slide == 0`; pick a slide that divides the size.
    #[error(
        "window size {size} is not a multiple of slide {slide}; pick a slide that divides the size"
    )]
    SizeNotMultipleOfSlide {
        /// Configured size.
        size: u64,
        /// Configured slide.
        slide: u64,
    },
    /// The offset must be below the slide; use `offset % slide` (same windows).
    #[error("window offset {offset} must be below the slide {slide}; use offset % slide")]
    OffsetTooLarge {
        /// Configured offset.
        offset: u64,
        /// Configured slide.
        slide: u64,
    },
    /// Keys are dense `u32`s: the key count must be in `1..=2^32`.
    #[error("key count {keys} must be in 1..=2^32")]
    BadKeyCount {
        /// Requested key count.
        keys: usize,
    },
    /// Too many panes per key; reduce the allowed lateness or out-of-orderness, or raise the slide.
    #[error(
        "windows need {needed} pane slots per key (limit {limit}); reduce allowed lateness or \
         out-of-orderness, or raise the slide"
    )]
    TooManyPanes {
        /// Pane slots the configuration needs.
        needed: u64,
        /// The limit.
        limit: u64,
    },
    /// Sizes so large that `u64` time arithmetic overflows (or the state does not fit memory).
    #[error(
        "window state or time range too large for u64 arithmetic; use smaller sizes or fewer keys"
    )]
    TooLarge,
    /// The session gap is 0; use a positive gap.
    #[error("session gap must be > 0")]
    ZeroGap,
    /// Open sessions per key must be in `1..=65535`.
    #[error("max sessions per key {sessions} must be in 1..=65535")]
    BadSessionSlots {
        /// Requested sessions per key.
        sessions: usize,
    },
    /// Count windows need `size > 0`, `slide > 0` and `size % slide == 0`.
    #[error("count window size {size} must be a positive multiple of a positive slide {slide}")]
    BadCountWindow {
        /// Configured element count.
        size: u64,
        /// Configured slide in elements.
        slide: u64,
    },
    /// [`Watermarks`] needs at least one input.
    #[error("watermarks need at least one input")]
    NoInputs,
}

/// Checks a dense key count (`1..=2^32`).
pub(crate) fn check_keys(keys: usize) -> Result<(), WindowError> {
    if keys == 0 || keys as u64 > u64::from(u32::MAX) + 1 {
        return Err(WindowError::BadKeyCount { keys });
    }
    Ok(())
}
