//! Declarative keyed, windowed computations over any stream of fixed-layout records.
//!
//! A [`Job`] is declared with a small builder — how to key a record, where its event time is,
//! which [`Window`], which aggregate, when to emit, how many keys — and then fed one record at a
//! time with [`Job::push`]. Underneath it is the engine's own machinery: a [`SparseIndex`]
//! (or, for small integer keys, the key itself) maps each key to a dense slot, and the slot
//! indexes either a plain array of running accumulators ([`Window::Global`]) or one of the
//! [`crate::window`] operators ([`TimeWindows`], [`SessionWindows`], [`CountWindows`]) driven by
//! the job's own [`BoundedOutOfOrderness`] watermark, advanced before each add as that module
//! prescribes. Everything is allocated in [`Builder::build`]; `push` and `finish` never
//! allocate (unless the caller's closures do). A record whose key does not fit (table full, or
//! a dense key `>= capacity`) is a counted overflow ([`Stats::key_overflow`]); late, dropped and
//! overflowed window events are counted in the [`LateLedger`] ([`Stats::window`]). Nothing
//! panics on bad input, and nothing is lost silently.
//!
//! # Aggregates
//! - [`Builder::aggregate`]`(init, update)`: closures over an accumulator `V: Copy`. Enough for
//!   [`Window::Global`], which folds every record into its key's accumulator in place. Every
//!   other window combines partial accumulators (panes of a window, merged sessions, a pane
//!   with the next record), so those also need [`Builder::merge`]`(fn)`, an associative merge
//!   whose identity is `init()`; without it `build` fails with [`BuildError::MergeRequired`]
//!   rather than guess. (Windowed records are folded into a fresh `init()` accumulator and then
//!   merged into the window's state, so the window module's [`Aggregate`] never needs the
//!   closures.)
//! - [`Builder::aggregate_with`]`::<A>(input)`: any [`Aggregate`] (it has its own merge), fed
//!   `input(record)` with the record's event time.
//!
//! # Emission
//! The output closure receives `(key, span, &acc)`. [`Job::push`] emits what the record caused:
//! with [`Builder::on_update`] the current result of every window it went into (for
//! [`Window::Global`], the key's running accumulator — the default there), and with either mode
//! the windows the new watermark closed and late firings. [`Job::finish`] ends the stream: the
//! watermark jumps to `u64::MAX` and every open time or session window fires; a
//! [`Window::Global`] job on close emits each key's final accumulator (in first-seen order for
//! sparse keys, key order for dense keys); count windows, as in Flink, never emit a
//! partly filled window on close. [`Job::running`] reads the global accumulators at any time.
//!
//! # Example: a running credit score per account
//! ```
//! use tickwatch::stream::{Job, Window};
//! #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
//! #[repr(C)]
//! struct Txn { ts_ns: u64, account: u64, balance: i64 }
//!
//! let txns = [Txn { ts_ns: 1, account: 7, balance: 1_500 },
//!             Txn { ts_ns: 2, account: 9, balance: -200 },
//!             Txn { ts_ns: 3, account: 7, balance: 2_500 }];
//! let bytes: &[u8] = bytemuck::cast_slice(&txns); // e.g. a memory-mapped file of records
//!
//! let mut job = Job::keyed(|t: &Txn| t.account)
//!     .event_time(|t| t.ts_ns)
//!     .window(Window::Global)
//!     .aggregate(|| 0i64, |acc: &mut i64, t: &Txn| *acc += t.balance)
//!     .capacity(1 << 16)
//!     .build()?;
//! let records: &[Txn] = bytemuck::try_cast_slice(bytes).map_err(|e| format!("{e:?}"))?;
//! let mut scores = Vec::new();
//! for t in records {
//!     job.push(t, |account, _, acc| scores.push((account, *acc as f64 / 1000.0)));
//! }
//! assert_eq!(scores, [(7, 1.5), (9, -0.2), (7, 4.0)]);
//! assert_eq!((job.stats().records, job.stats().keys), (3, 2));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//! `examples/credit_score.rs` runs the same job over a memory-mapped file, and a second one
//! with 1-second tumbling windows.

#![forbid(unsafe_code)]

pub mod shard;
pub mod source;

pub use shard::{Changelog, Emission, KeyedOp, ShardError, ShardJob, Sharded};
pub use source::{shard_of_key, CsvSource, RecordError, RecordSource};

use std::fmt;
use std::marker::PhantomData;

use crate::state::SparseIndex;
use crate::window::{
    Added, Aggregate, BoundedOutOfOrderness, CountWindows, Emit, Firing, FiringKind, LateLedger,
    SessionConfig, SessionWindows, TimeWindowConfig, TimeWindows, Ts, WindowError,
};

/// Which windows a [`Job`] computes per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Window {
    /// One running accumulator per key, never closed (a Flink unbounded `GROUP BY`).
    #[default]
    Global,
    /// Tumbling event-time windows `[k * size, (k + 1) * size)` of `size` ns.
    Tumbling(Ts),
    /// Sliding event-time windows of `size` ns starting every `slide` ns (`size % slide == 0`).
    Sliding {
        /// Window length in ns.
        size: Ts,
        /// Distance between window starts in ns.
        slide: Ts,
    },
    /// Event-time sessions: events of a key strictly closer than `gap` ns share a session.
    Session {
        /// Inactivity gap in ns.
        gap: Ts,
    },
    /// Count windows: after every `slide` records of a key, its last `size` records
    /// (`size % slide == 0`); event time is not needed.
    Count {
        /// Records per window.
        size: u64,
        /// Records between firings.
        slide: u64,
    },
}

/// Where an emitted result belongs.
///
/// Time and session windows: `[start, end)` in event-time ns (a sliding window that begins
/// before midnight reports `start = 0`). Count windows: the key's record sequence numbers
/// `start..end`. [`Window::Global`]: `0..Ts::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    /// Window start (inclusive).
    pub start: Ts,
    /// Window end (exclusive).
    pub end: Ts,
    /// Why it was emitted: a partial result ([`FiringKind::Update`]), the final result
    /// ([`FiringKind::OnTime`]) or an update by an accepted late record ([`FiringKind::Late`]).
    pub kind: FiringKind,
}

/// A job configuration that cannot be built; each variant says how to fix it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The key capacity was not set, or is not in `1..u32::MAX`.
    #[error("key capacity {capacity} must be in 1..u32::MAX: set .capacity(n)")]
    BadCapacity {
        /// The configured capacity (0 when not set).
        capacity: usize,
    },
    /// Time and session windows need each record's event time.
    #[error("{window:?} windows need event time: add .event_time(|r| r.ts)")]
    EventTimeRequired {
        /// The configured window.
        window: Window,
    },
    /// A closure aggregate over windows other than [`Window::Global`] needs a merge.
    #[error(
        "{window:?} windows combine partial accumulators: add .merge(|a, b| ..) after \
         .aggregate(..), or use .aggregate_with::<A>(..)"
    )]
    MergeRequired {
        /// The configured window.
        window: Window,
    },
    /// The window operator refused the configuration (sizes, slides, sessions per key).
    #[error(transparent)]
    Window(#[from] WindowError),
}

/// What a [`Job`] has done, from [`Job::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Records pushed.
    pub records: u64,
    /// Distinct keys holding state.
    pub keys: usize,
    /// The key capacity.
    pub capacity: usize,
    /// Records refused because their key did not fit: the table was full, or a dense key was
    /// `>= capacity`.
    pub key_overflow: u64,
    /// Results emitted (by `push` and `finish`).
    pub emitted: u64,
    /// Window operator counts: records dropped as too late, accepted late, overflowed.
    pub window: LateLedger,
    /// The job's watermark (time and session windows only).
    pub watermark: Option<Ts>,
}

impl Stats {
    /// Records that went into no state: key overflow plus the window ledger's losses.
    pub fn lost(&self) -> u64 {
        self.key_overflow + self.window.lost()
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "records {}, keys {}/{}, key overflow {}, emitted {}, window: {}",
            self.records, self.keys, self.capacity, self.key_overflow, self.emitted, self.window
        )
    }
}

/// Settings that do not change the builder's type.
#[derive(Debug, Clone, Copy)]
struct Settings {
    dense: bool,
    window: Window,
    emit: Option<Emit>,
    capacity: usize,
    out_of_orderness: Ts,
    allowed_lateness: Ts,
    sessions_per_key: usize,
}

/// The declaration of a [`Job`]: start with [`Job::keyed`] or [`Job::dense`], finish with
/// [`build`](Self::build).
///
/// `R` is the record type, `K` the key closure, `T` the event-time closure, `V` the
/// accumulator, `I` and `U` its init and update closures (`()` until an aggregate is given).
pub struct Builder<R, K, T, V, I, U> {
    key: K,
    time: Option<T>,
    init: I,
    update: U,
    merge: Option<fn(&mut V, &V)>,
    set: Settings,
    _record: PhantomData<fn(&R)>,
}

impl<R, K, T, V, I, U> fmt::Debug for Builder<R, K, T, V, I, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("settings", &self.set)
            .field("event_time", &self.time.is_some())
            .field("merge", &self.merge.is_some())
            .finish_non_exhaustive()
    }
}

/// The placeholder event-time closure of a builder without [`Builder::event_time`].
type NoTime<R> = fn(&R) -> Ts;

impl Job<(), (), (), (), (), ()> {
    /// Declares a job keyed by sparse `u64` keys (accounts, order references, packed MPIDs):
    /// each new key takes a slot of a fixed-capacity [`SparseIndex`].
    pub fn keyed<R, K: Fn(&R) -> u64>(key: K) -> Builder<R, K, NoTime<R>, (), (), ()> {
        Self::start(key, false)
    }

    /// Declares a job keyed by small integer keys (stock locates): the key is the slot, so
    /// there is no hashing; a key `>= capacity` is a counted overflow.
    pub fn dense<R, K: Fn(&R) -> u64>(key: K) -> Builder<R, K, NoTime<R>, (), (), ()> {
        Self::start(key, true)
    }

    fn start<R, K>(key: K, dense: bool) -> Builder<R, K, NoTime<R>, (), (), ()> {
        Builder {
            key,
            time: None,
            init: (),
            update: (),
            merge: None,
            set: Settings {
                dense,
                window: Window::Global,
                emit: None,
                capacity: 0,
                out_of_orderness: 0,
                allowed_lateness: 0,
                sessions_per_key: SessionConfig::new(1).max_sessions_per_key,
            },
            _record: PhantomData,
        }
    }
}

impl<R, K, T, V, I, U> Builder<R, K, T, V, I, U> {
    /// The record's event time in ns (needed by time and session windows; also handed to
    /// [`Aggregate::add`] by [`aggregate_with`](Self::aggregate_with)).
    pub fn event_time<T2: Fn(&R) -> Ts>(self, time: T2) -> Builder<R, K, T2, V, I, U> {
        Builder {
            key: self.key,
            time: Some(time),
            init: self.init,
            update: self.update,
            merge: self.merge,
            set: self.set,
            _record: PhantomData,
        }
    }

    /// The windows to compute (default [`Window::Global`]).
    pub fn window(mut self, window: Window) -> Self {
        self.set.window = window;
        self
    }

    /// Emit the current result of every window a record goes into, on every record (the
    /// default for [`Window::Global`]), besides final and late results.
    pub fn on_update(mut self) -> Self {
        self.set.emit = Some(Emit::OnUpdate);
        self
    }

    /// Emit only final results (when the watermark closes a window, or after `slide` records of
    /// a count window) and late updates (the default for every window but
    /// [`Window::Global`], which then emits only from [`Job::finish`]).
    pub fn on_close(mut self) -> Self {
        self.set.emit = Some(Emit::OnClose);
        self
    }

    /// Room for `keys` distinct keys (required; in `1..u32::MAX`). Dense keys must be below it.
    pub fn capacity(mut self, keys: usize) -> Self {
        self.set.capacity = keys;
        self
    }

    /// The watermark trails the largest event time seen by `ns` (default 0): records up to
    /// that far out of order are on time. Time and session windows only.
    pub fn out_of_orderness(mut self, ns: Ts) -> Self {
        self.set.out_of_orderness = ns;
        self
    }

    /// A closed window still accepts records for `ns` more (default 0), emitting each update
    /// as a [`FiringKind::Late`] result. Time and session windows only.
    pub fn allowed_lateness(mut self, ns: Ts) -> Self {
        self.set.allowed_lateness = ns;
        self
    }

    /// Open sessions kept per key (default 4; `1..=65535`); a record that would open one more
    /// is a counted overflow. Session windows only.
    pub fn sessions_per_key(mut self, sessions: usize) -> Self {
        self.set.sessions_per_key = sessions;
        self
    }
}

impl<R, K, T> Builder<R, K, T, (), (), ()> {
    /// Aggregates with closures: `init()` is the accumulator of no records and
    /// `update(&mut acc, record)` folds one record in. Windows other than [`Window::Global`]
    /// also need [`merge`](Builder::merge).
    #[allow(clippy::type_complexity)]
    pub fn aggregate<V: Copy, I: Fn() -> V, U: FnMut(&mut V, &R)>(
        self,
        init: I,
        mut update: U,
    ) -> Builder<R, K, T, V, I, impl FnMut(&mut V, &R, Ts)> {
        Builder {
            key: self.key,
            time: self.time,
            init,
            update: move |acc: &mut V, r: &R, _ts: Ts| update(acc, r),
            merge: None,
            set: self.set,
            _record: PhantomData,
        }
    }

    /// Aggregates with any window [`Aggregate`] `A`: each record adds `input(record)` at its
    /// event time (0 without [`event_time`](Builder::event_time)); `A::merge` combines partial
    /// results, so every window works.
    #[allow(clippy::type_complexity)]
    pub fn aggregate_with<A: Aggregate, F: Fn(&R) -> A::Input>(
        self,
        input: F,
    ) -> Builder<R, K, T, A, fn() -> A, impl FnMut(&mut A, &R, Ts)> {
        let merge: fn(&mut A, &A) = A::merge;
        Builder {
            key: self.key,
            time: self.time,
            init: A::empty,
            update: move |acc: &mut A, r: &R, ts: Ts| acc.add(&input(r), ts),
            merge: Some(merge),
            set: self.set,
            _record: PhantomData,
        }
    }
}

impl<R, K, T, V, I, U> Builder<R, K, T, V, I, U>
where
    K: Fn(&R) -> u64,
    T: Fn(&R) -> Ts,
    V: Copy,
    I: Fn() -> V,
    U: FnMut(&mut V, &R, Ts),
{
    /// How two partial accumulators combine (`a` then `b`, into `a`): associative, with
    /// `init()` as identity. Required by every window but [`Window::Global`].
    pub fn merge(mut self, merge: fn(&mut V, &V)) -> Self {
        self.merge = Some(merge);
        self
    }

    /// Checks the configuration and allocates all of the job's state.
    ///
    /// # Errors
    /// [`BuildError::BadCapacity`], [`BuildError::EventTimeRequired`] (time or session windows
    /// without [`event_time`](Self::event_time)), [`BuildError::MergeRequired`] (a closure
    /// aggregate over a window other than [`Window::Global`] without [`merge`](Self::merge)),
    /// or the window operator's [`WindowError`] (zero sizes, a slide that does not divide the
    /// size, too many panes or sessions).
    pub fn build(self) -> Result<Job<R, K, T, V, I, U>, BuildError> {
        let set = self.set;
        let cap = set.capacity;
        if cap == 0 || cap >= u32::MAX as usize {
            return Err(BuildError::BadCapacity { capacity: cap });
        }
        let window = set.window;
        let timed = matches!(
            window,
            Window::Tumbling(_) | Window::Sliding { .. } | Window::Session { .. }
        );
        if timed && self.time.is_none() {
            return Err(BuildError::EventTimeRequired { window });
        }
        let merge = match (window, self.merge) {
            (_, Some(m)) => m,
            (Window::Global, None) => noop_merge::<V>,
            (_, None) => return Err(BuildError::MergeRequired { window }),
        };
        let emit = set.emit.unwrap_or(if window == Window::Global {
            Emit::OnUpdate
        } else {
            Emit::OnClose
        });
        let time_cfg = |size, slide| TimeWindowConfig {
            allowed_lateness: set.allowed_lateness,
            max_out_of_orderness: set.out_of_orderness,
            emit,
            ..TimeWindowConfig::sliding(size, slide)
        };
        let op = match window {
            Window::Global => Op::Global(vec![(self.init)(); cap].into_boxed_slice()),
            Window::Tumbling(size) => Op::Time(TimeWindows::new(time_cfg(size, size), cap)?),
            Window::Sliding { size, slide } => {
                Op::Time(TimeWindows::new(time_cfg(size, slide), cap)?)
            }
            Window::Session { gap } => {
                let cfg = SessionConfig {
                    allowed_lateness: set.allowed_lateness,
                    max_sessions_per_key: set.sessions_per_key,
                    emit,
                    ..SessionConfig::new(gap)
                };
                Op::Session(SessionWindows::new(cfg, cap)?)
            }
            Window::Count { size, slide } => Op::Count(CountWindows::new(size, slide, cap, emit)?),
        };
        let keys = if set.dense {
            Keys::Dense {
                seen: vec![false; cap].into_boxed_slice(),
                len: 0,
            }
        } else {
            Keys::Sparse(SparseIndex::new(cap))
        };
        Ok(Job {
            key: self.key,
            time: self.time,
            init: self.init,
            update: self.update,
            merge,
            keys,
            op,
            wms: BoundedOutOfOrderness::new(set.out_of_orderness),
            lateness: (set.out_of_orderness, set.allowed_lateness),
            wm: None,
            window,
            emit,
            capacity: cap,
            records: 0,
            emitted: 0,
            key_overflow: 0,
            external: false,
            _record: PhantomData,
        })
    }
}

/// The merge of a [`Window::Global`] closure aggregate, which never merges.
fn noop_merge<V>(_: &mut V, _: &V) {}

/// A closure accumulator inside a window operator: `None` is the empty aggregate, and the merge
/// travels with every value (the operator's `Aggregate::empty` cannot reach the job's closures).
#[derive(Clone, Copy)]
struct Lifted<V: Copy> {
    acc: Option<V>,
    merge: fn(&mut V, &V),
}

impl<V: Copy> Aggregate for Lifted<V> {
    /// One record already folded into a fresh `init()` accumulator by the job.
    type Input = Lifted<V>;

    fn empty() -> Self {
        Lifted {
            acc: None,
            merge: noop_merge::<V>,
        }
    }

    #[inline]
    fn add(&mut self, x: &Self, _ts: Ts) {
        self.merge(x);
    }

    #[inline]
    fn merge(&mut self, other: &Self) {
        match (&mut self.acc, &other.acc) {
            (_, None) => {}
            (None, Some(_)) => *self = *other,
            (Some(a), Some(b)) => (other.merge)(a, b),
        }
    }
}

/// Key to dense slot.
enum Keys {
    Sparse(SparseIndex),
    Dense { seen: Box<[bool]>, len: usize },
}

impl Keys {
    /// The slot of `key` and whether it is new; `None` when it does not fit.
    #[inline]
    fn slot(&mut self, key: u64) -> Option<(u32, bool)> {
        match self {
            Keys::Sparse(ix) => ix.insert(key, 0).ok().map(|e| (e.slot, e.new)),
            Keys::Dense { seen, len } => {
                let s = usize::try_from(key).ok()?;
                let was = std::mem::replace(seen.get_mut(s)?, true);
                *len += usize::from(!was);
                Some((s as u32, !was))
            }
        }
    }

    /// The key of a slot in use.
    #[inline]
    fn key_of(&self, slot: u32) -> Option<u64> {
        match self {
            Keys::Sparse(ix) => ix.key_of(slot),
            Keys::Dense { seen, .. } => seen
                .get(slot as usize)
                .is_some_and(|&s| s)
                .then_some(u64::from(slot)),
        }
    }

    fn len(&self) -> usize {
        match self {
            Keys::Sparse(ix) => ix.len(),
            Keys::Dense { len, .. } => *len,
        }
    }
}

/// The job's state.
enum Op<V: Copy> {
    Global(Box<[V]>),
    Time(TimeWindows<Lifted<V>>),
    Session(SessionWindows<Lifted<V>>),
    Count(CountWindows<Lifted<V>>),
}

/// A keyed, windowed computation over records `R`, declared with [`Job::keyed`] or
/// [`Job::dense`] (see the [module docs](crate::stream)).
///
/// All state is allocated by [`Builder::build`]: [`push`](Self::push) and
/// [`finish`](Self::finish) never allocate. Single-threaded: [`Sharded`] runs it over the
/// engine's workers with the same output (session windows excepted).
pub struct Job<R, K, T, V: Copy, I, U> {
    key: K,
    time: Option<T>,
    init: I,
    update: U,
    merge: fn(&mut V, &V),
    keys: Keys,
    op: Op<V>,
    wms: BoundedOutOfOrderness,
    /// Out-of-orderness and allowed lateness, ns.
    lateness: (Ts, Ts),
    /// The last watermark handed to the window operator.
    wm: Option<Ts>,
    window: Window,
    emit: Emit,
    capacity: usize,
    records: u64,
    emitted: u64,
    key_overflow: u64,
    /// The watermark comes from [`Job::advance_to`], not from the records' event times.
    external: bool,
    _record: PhantomData<fn(&R)>,
}

impl<R, K, T, V: Copy, I, U> fmt::Debug for Job<R, K, T, V, I, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("window", &self.window)
            .field("emit", &self.emit)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Turns window firings into `(key, span, &acc)` calls, counting them.
#[inline]
fn relay<'a, V: Copy>(
    keys: &'a Keys,
    emitted: &'a mut u64,
    out: &'a mut impl FnMut(u32, u64, Span, &V),
) -> impl FnMut(&Firing<Lifted<V>>) + 'a {
    move |f| {
        if let (Some(acc), Some(key)) = (&f.agg.acc, keys.key_of(f.key)) {
            *emitted += 1;
            let span = Span {
                start: f.start,
                end: f.end,
                kind: f.kind,
            };
            out(f.key, key, span, acc);
        }
    }
}

/// The span of a global accumulator.
const GLOBAL: Span = Span {
    start: 0,
    end: Ts::MAX,
    kind: FiringKind::Update,
};

impl<R, K, T, V, I, U> Job<R, K, T, V, I, U>
where
    K: Fn(&R) -> u64,
    T: Fn(&R) -> Ts,
    V: Copy,
    I: Fn() -> V,
    U: FnMut(&mut V, &R, Ts),
{
    /// Processes one record; `out` receives the results it caused (see the
    /// [module docs](crate::stream)).
    ///
    /// Time and session windows: the record's event time is observed by the job's watermark
    /// generator, the window operator advances to a risen watermark (firing the windows it
    /// closes), then the record is added. Returns what happened to the record:
    /// [`Added::Overflow`] when its key did not fit or the window operator had no room (both
    /// counted), [`Added::Dropped`] when it was too late for all its windows (counted),
    /// [`Added::Late`] when it updated an already-fired window, else [`Added::OnTime`].
    /// Never allocates.
    #[inline]
    pub fn push(&mut self, record: &R, mut out: impl FnMut(u64, Span, &V)) -> Added {
        self.push_slot(record, |_, key, span, v| out(key, span, v))
    }

    /// [`push`](Self::push), telling `out` each result's key slot too.
    #[inline(always)]
    pub(crate) fn push_slot(
        &mut self,
        record: &R,
        mut out: impl FnMut(u32, u64, Span, &V),
    ) -> Added {
        self.records += 1;
        let ts = self.time.as_ref().map_or(0, |t| t(record));
        let key = (self.key)(record);
        // Time and session windows: advance to a risen watermark before the add (unless the
        // watermark comes from outside).
        if !self.external && matches!(self.op, Op::Time(_) | Op::Session(_)) {
            let wm = self.wms.observe(ts);
            if let Some(w) = wm.filter(|_| wm > self.wm) {
                self.wm = wm;
                let mut relay = relay(&self.keys, &mut self.emitted, &mut out);
                match &mut self.op {
                    Op::Time(op) => op.advance(w, &mut relay),
                    Op::Session(op) => op.advance(w, &mut relay),
                    Op::Global(_) | Op::Count(_) => {}
                }
            }
        }
        let Some((slot, new)) = self.keys.slot(key) else {
            self.key_overflow += 1;
            return Added::Overflow;
        };
        if let Op::Global(accs) = &mut self.op {
            let acc = &mut accs[slot as usize];
            if new {
                *acc = (self.init)();
            }
            (self.update)(acc, record, ts);
            if self.emit == Emit::OnUpdate {
                self.emitted += 1;
                out(slot, key, GLOBAL, acc);
            }
            return Added::OnTime;
        }
        let mut acc = (self.init)();
        (self.update)(&mut acc, record, ts);
        let x = Lifted {
            acc: Some(acc),
            merge: self.merge,
        };
        let wm = self.wm;
        let mut relay = relay(&self.keys, &mut self.emitted, &mut out);
        match &mut self.op {
            Op::Time(op) => op.add(slot, ts, &x, wm, &mut relay),
            Op::Session(op) => op.add(slot, ts, &x, wm, &mut relay),
            Op::Count(op) => op.add(slot, ts, &x, &mut relay),
            Op::Global(_) => Added::OnTime, // handled above
        }
    }

    /// Ends the stream: the watermark becomes `u64::MAX`, so every open time and session
    /// window fires ([`FiringKind::OnTime`]); a [`Window::Global`] job on close emits each
    /// key's final accumulator ([`FiringKind::OnTime`]). Count windows emit nothing more
    /// (a partly filled count window never fires on close). Records pushed afterwards are
    /// late for every time and session window. Never allocates.
    pub fn finish(&mut self, mut out: impl FnMut(u64, Span, &V)) {
        self.finish_slot(|_, key, span, v| out(key, span, v));
    }

    /// From now on the watermark comes from outside: records no longer raise it, only
    /// [`advance_to`](Self::advance_to) does. A sharded run hands each shard the whole feed's
    /// watermark this way, so windows close at the same records as in one job over the feed.
    pub fn watermark_from_outside(&mut self) {
        self.external = true;
    }

    /// Raises the watermark to `wm` (never lowers it), firing the time or session windows it
    /// closes; other windows ignore it. Never allocates.
    pub fn advance_to(&mut self, wm: Ts, mut out: impl FnMut(u64, Span, &V)) {
        self.advance_slot(wm, |_, key, span, v| out(key, span, v));
    }

    /// [`advance_to`](Self::advance_to), telling `out` each result's key slot too.
    pub(crate) fn advance_slot(&mut self, wm: Ts, mut out: impl FnMut(u32, u64, Span, &V)) {
        if self.wm.is_some_and(|w| w >= wm) {
            return;
        }
        let mut relay = relay(&self.keys, &mut self.emitted, &mut out);
        match &mut self.op {
            Op::Time(op) => op.advance(wm, &mut relay),
            Op::Session(op) => op.advance(wm, &mut relay),
            Op::Global(_) | Op::Count(_) => return,
        }
        self.wm = Some(wm);
    }

    /// [`finish`](Self::finish), telling `out` each result's key slot too.
    pub(crate) fn finish_slot(&mut self, mut out: impl FnMut(u32, u64, Span, &V)) {
        match &mut self.op {
            Op::Time(op) => {
                let wm = self.wms.finish();
                self.wm = Some(wm);
                op.advance(wm, &mut relay(&self.keys, &mut self.emitted, &mut out));
            }
            Op::Session(op) => {
                let wm = self.wms.finish();
                self.wm = Some(wm);
                op.advance(wm, &mut relay(&self.keys, &mut self.emitted, &mut out));
            }
            Op::Global(accs) if self.emit == Emit::OnClose => {
                let span = Span {
                    kind: FiringKind::OnTime,
                    ..GLOBAL
                };
                for (slot, acc) in accs.iter().enumerate() {
                    if let Some(key) = self.keys.key_of(slot as u32) {
                        self.emitted += 1;
                        out(slot as u32, key, span, acc);
                    }
                }
            }
            Op::Global(_) | Op::Count(_) => {}
        }
    }
}

impl<R, K, T, V: Copy, I, U> Job<R, K, T, V, I, U> {
    /// The running accumulator of every key of a [`Window::Global`] job, in slot order
    /// (first-seen order for sparse keys, key order for dense keys); empty for other windows.
    pub fn running(&self) -> impl Iterator<Item = (u64, &V)> + '_ {
        let accs: &[V] = match &self.op {
            Op::Global(accs) => accs,
            _ => &[],
        };
        accs.iter()
            .enumerate()
            .filter_map(|(slot, acc)| Some((self.keys.key_of(slot as u32)?, acc)))
    }

    /// Counts so far.
    pub fn stats(&self) -> Stats {
        let window = match &self.op {
            Op::Global(_) => LateLedger::default(),
            Op::Time(op) => *op.ledger(),
            Op::Session(op) => *op.ledger(),
            Op::Count(op) => *op.ledger(),
        };
        Stats {
            records: self.records,
            keys: self.keys.len(),
            capacity: self.capacity,
            key_overflow: self.key_overflow,
            emitted: self.emitted,
            window,
            watermark: self.wm,
        }
    }

    /// Keys seen so far (cheaper than [`Job::stats`]).
    #[inline]
    pub fn keys(&self) -> usize {
        self.keys.len()
    }

    /// Whether keys are dense (their own slots: [`Job::dense`]), not hashed.
    pub fn dense_keys(&self) -> bool {
        matches!(self.keys, Keys::Dense { .. })
    }

    /// The configured window.
    pub fn window(&self) -> Window {
        self.window
    }

    /// The emit mode in force.
    pub fn emit(&self) -> Emit {
        self.emit
    }

    /// Its watermark's out-of-orderness and the allowed lateness, ns.
    pub fn lateness(&self) -> (Ts, Ts) {
        self.lateness
    }

    /// Windows one key can have open at once: session slots per key, else 1.
    pub fn windows_per_key(&self) -> usize {
        match &self.op {
            Op::Session(op) => op.sessions_per_key(),
            _ => 1,
        }
    }
}
