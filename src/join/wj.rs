//! Window join (kdb+ `wj`): for each left event (a trade) at `t` on key `k`, a fold over the
//! right events (quotes) of `k` with `ts` in `[t - before, t + after]`, both ends inclusive.
//!
//! Quotes are buffered per dense key in a fixed ring kept sorted by `ts` (an out-of-order quote is
//! inserted at its place, after equal timestamps). A trade waits in a bounded pending queue (a
//! binary heap preallocated to its capacity, ordered by `t + after`, then arrival) until the
//! watermark reaches `t + after`: only then have all its quotes arrived, so every row is final.
//! [`WindowJoin::advance`] emits the due rows in `(t, arrival)` order.
//!
//! A quote is expired (dropped, counted) once no pending or future trade can see it: future trades
//! have `t > wm`, so a quote older than `min(wm + 1, oldest pending t) - before` is dead. Expiry is
//! lazy, on the next quote of the same key. A quote pushed onto a full ring (after that expiry)
//! evicts the oldest quote of that key — or is itself dropped if it is older than all of them —
//! and the key remembers the latest timestamp it lost: a row whose window starts at or before it
//! may miss a quote and is flagged `complete: false` (counted). Rows flagged complete are exactly
//! the brute-force result over the accepted events. Events with `ts <= wm` are late and refused.

use crate::state::ring::Rings;
use crate::state::Ts;
use core::cmp::{Ordering, Reverse};
use core::fmt;
use std::collections::BinaryHeap;

/// An aggregation over the quotes in a window, built from scratch for each row.
pub trait WindowFold<R> {
    /// Running state (a plain value: building it must not allocate).
    type Acc;
    /// The result in each row.
    type Out;
    /// The state of an empty window.
    fn init(&self) -> Self::Acc;
    /// Adds a quote at `ts` (quotes come in ascending `ts`).
    fn add(&self, acc: &mut Self::Acc, ts: Ts, r: &R);
    /// The result of a window.
    fn finish(&self, acc: &Self::Acc) -> Self::Out;
}

/// Number of quotes in the window.
#[derive(Clone, Copy, Debug, Default)]
pub struct Count;

impl<R> WindowFold<R> for Count {
    type Acc = u64;
    type Out = u64;
    fn init(&self) -> u64 {
        0
    }
    fn add(&self, acc: &mut u64, _: Ts, _: &R) {
        *acc += 1;
    }
    fn finish(&self, acc: &u64) -> u64 {
        *acc
    }
}

macro_rules! extractor_fold {
    ($(#[$doc:meta])* $name:ident, $acc:ty, $out:ty, $init:expr, |$a:ident, $x:ident| $add:expr, |$f:ident| $finish:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy)]
        pub struct $name<F>(pub F);

        impl<F> fmt::Debug for $name<F> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(stringify!($name))
            }
        }

        impl<R, F: Fn(&R) -> i64> WindowFold<R> for $name<F> {
            type Acc = $acc;
            type Out = $out;
            fn init(&self) -> $acc {
                $init
            }
            fn add(&self, $a: &mut $acc, _: Ts, r: &R) {
                let $x = (self.0)(r);
                $add
            }
            fn finish(&self, $f: &$acc) -> $out {
                $finish
            }
        }
    };
}

extractor_fold!(
    /// Smallest `f(quote)` in the window (`None` if empty), e.g. the lowest bid.
    Min, Option<i64>, Option<i64>, None,
    |a, x| *a = Some(a.map_or(x, |m| m.min(x))),
    |a| *a
);
extractor_fold!(
    /// Largest `f(quote)` in the window (`None` if empty), e.g. the highest ask.
    Max, Option<i64>, Option<i64>, None,
    |a, x| *a = Some(a.map_or(x, |m| m.max(x))),
    |a| *a
);
extractor_fold!(
    /// Sum of `f(quote)` over the window (exact, in `i128`).
    Sum, i128, i128, 0,
    |a, x| *a += x as i128,
    |a| *a
);
extractor_fold!(
    /// Mean of `f(quote)` over the window (`None` if empty), e.g. the mean spread.
    Mean, (i128, u64), Option<f64>, (0, 0),
    |a, x| { a.0 += x as i128; a.1 += 1; },
    |a| (a.1 > 0).then(|| a.0 as f64 / a.1 as f64)
);
extractor_fold!(
    /// `f` of the latest quote in the window (`None` if empty), e.g. the last mid.
    Last, Option<i64>, Option<i64>, None,
    |a, x| *a = Some(x),
    |a| *a
);

macro_rules! tuple_fold {
    ($($t:ident $i:tt),+) => {
        impl<R, $($t: WindowFold<R>),+> WindowFold<R> for ($($t,)+) {
            type Acc = ($($t::Acc,)+);
            type Out = ($($t::Out,)+);
            fn init(&self) -> Self::Acc {
                ($(self.$i.init(),)+)
            }
            fn add(&self, acc: &mut Self::Acc, ts: Ts, r: &R) {
                $(self.$i.add(&mut acc.$i, ts, r);)+
            }
            fn finish(&self, acc: &Self::Acc) -> Self::Out {
                ($(self.$i.finish(&acc.$i),)+)
            }
        }
    };
}
tuple_fold!(A 0, B 1);
tuple_fold!(A 0, B 1, C 2);
tuple_fold!(A 0, B 1, C 2, D 3);

/// One result: the left event and the fold of its window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WindowRow<T, O> {
    /// Key of the left event.
    pub key: u32,
    /// Time of the left event.
    pub ts: Ts,
    /// The left event.
    pub left: T,
    /// The fold over the window's quotes.
    pub out: O,
    /// False if a quote this window may contain was evicted from a full ring.
    pub complete: bool,
}

/// Why an event was refused (each counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// `ts <= watermark`.
    #[error("late event: ts at or before the watermark")]
    Late,
    /// The pending queue of left events is full (raise its capacity or advance sooner).
    #[error("pending queue full")]
    QueueFull,
    /// The key is not below the number of keys.
    #[error("key out of range")]
    OutOfRange,
}

/// What a [`WindowJoin`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct WindowJoinCounters {
    /// Left events accepted.
    pub left: u64,
    /// Right events accepted.
    pub right: u64,
    /// Rows emitted.
    pub rows: u64,
    /// Rows flagged incomplete.
    pub incomplete: u64,
    /// Events refused as late.
    pub late: u64,
    /// Left events refused because the pending queue was full.
    pub queue_full: u64,
    /// Events refused for a key out of range.
    pub out_of_range: u64,
    /// Quotes dropped from a full ring.
    pub evicted: u64,
    /// Quotes dropped because no window could contain them any more.
    pub expired: u64,
}

impl fmt::Display for WindowJoinCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "left={} right={} rows={} incomplete={} late={} queue_full={} out_of_range={} evicted={} expired={}",
            self.left,
            self.right,
            self.rows,
            self.incomplete,
            self.late,
            self.queue_full,
            self.out_of_range,
            self.evicted,
            self.expired
        )
    }
}

#[derive(Debug)]
struct Pending<T> {
    due: Ts,
    seq: u64,
    key: u32,
    ts: Ts,
    left: T,
}

impl<T> PartialEq for Pending<T> {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl<T> Eq for Pending<T> {}
impl<T> PartialOrd for Pending<T> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for Pending<T> {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.due, self.seq).cmp(&(o.due, o.seq))
    }
}

/// Window join of left events `T` with right events `Q` per dense key, folded by `F`.
///
/// ```
/// use tickwatch::join::{Count, Max, Min, WindowJoin};
/// #[derive(Clone, Copy, Debug, PartialEq)]
/// struct Quote { bid: i64, ask: i64 }
/// // Quotes 10 ns before to 5 ns after each trade: count, lowest bid, highest ask.
/// let fold = (Count, Min(|q: &Quote| q.bid), Max(|q: &Quote| q.ask));
/// let mut wj = WindowJoin::new(10, 5, 4, 16, 64, fold);
/// wj.push_right(0, 95, Quote { bid: 99, ask: 101 })?;
/// wj.push_right(0, 100, Quote { bid: 98, ask: 102 })?;
/// wj.push_left(0, 100, "trade")?;
/// wj.push_right(0, 105, Quote { bid: 97, ask: 103 })?;
/// wj.push_right(0, 106, Quote { bid: 1, ask: 999 })?; // after the window
/// let mut rows = Vec::new();
/// wj.advance(104, |r| rows.push(r)); // 100 + 5 not yet passed
/// assert!(rows.is_empty());
/// wj.advance(105, |r| rows.push(r));
/// assert_eq!(rows[0].out, (3, Some(97), Some(103)));
/// assert!(rows[0].complete);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct WindowJoin<T, Q: Copy, F: WindowFold<Q>> {
    before: Ts,
    after: Ts,
    fold: F,
    quotes: Rings<(Ts, Q)>,
    /// Latest timestamp of a quote each key lost to a full ring.
    lost_upto: Box<[Option<Ts>]>,
    pending: BinaryHeap<Reverse<Pending<T>>>,
    pending_cap: usize,
    seq: u64,
    wm: Option<Ts>,
    counters: WindowJoinCounters,
}

impl<T, Q: Copy, F: WindowFold<Q>> fmt::Debug for WindowJoin<T, Q, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowJoin")
            .field("before", &self.before)
            .field("after", &self.after)
            .field("keys", &self.lost_upto.len())
            .field("pending", &self.pending.len())
            .field("wm", &self.wm)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl<T, Q: Copy, F: WindowFold<Q>> WindowJoin<T, Q, F> {
    /// Windows `[t - before, t + after]`; keys `0..keys`, each buffering `quotes_per_key`
    /// quotes; at most `pending` left events waiting for their window to close.
    ///
    /// # Panics
    /// If `quotes_per_key` exceeds `u32::MAX` or `keys * quotes_per_key` overflows.
    pub fn new(
        before: Ts,
        after: Ts,
        keys: usize,
        quotes_per_key: usize,
        pending: usize,
        fold: F,
    ) -> Self {
        Self {
            before,
            after,
            fold,
            quotes: Rings::new(keys, quotes_per_key),
            lost_upto: vec![None; keys].into_boxed_slice(),
            pending: BinaryHeap::with_capacity(pending),
            pending_cap: pending,
            seq: 0,
            wm: None,
            counters: WindowJoinCounters::default(),
        }
    }

    /// The counters so far.
    pub fn counters(&self) -> WindowJoinCounters {
        self.counters
    }

    /// The current watermark (`None` before the first [`advance`](Self::advance)).
    pub fn watermark(&self) -> Option<Ts> {
        self.wm
    }

    /// Left events waiting for their window to close.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Quotes buffered for `key`.
    pub fn quotes(&self, key: u32) -> usize {
        let r = key as usize;
        if r < self.lost_upto.len() {
            self.quotes.len(r)
        } else {
            0
        }
    }

    fn check(&mut self, key: u32, ts: Ts) -> Result<usize, Refused> {
        let r = key as usize;
        if r >= self.lost_upto.len() {
            self.counters.out_of_range += 1;
            return Err(Refused::OutOfRange);
        }
        if self.wm.is_some_and(|wm| ts <= wm) {
            self.counters.late += 1;
            return Err(Refused::Late);
        }
        Ok(r)
    }

    /// Queues the left event `(key, ts, left)`; its row is emitted by the first
    /// [`advance`](Self::advance) to a watermark `>= ts + after`.
    ///
    /// # Errors
    /// [`Refused`] (counted) if late, out of range, or the pending queue is full.
    #[inline]
    pub fn push_left(&mut self, key: u32, ts: Ts, left: T) -> Result<(), Refused> {
        self.check(key, ts)?;
        if self.pending.len() >= self.pending_cap {
            self.counters.queue_full += 1;
            return Err(Refused::QueueFull);
        }
        self.counters.left += 1;
        self.seq += 1;
        // Never reallocates: len < pending_cap = the capacity reserved in `new`.
        self.pending.push(Reverse(Pending {
            due: ts.saturating_add(self.after),
            seq: self.seq,
            key,
            ts,
            left,
        }));
        Ok(())
    }

    /// Buffers the quote `(key, ts, quote)`. Returns the quote dropped to make room if the
    /// key's ring was full (counted as evicted; possibly this very quote if it is the oldest).
    ///
    /// # Errors
    /// [`Refused`] (counted) if late or out of range.
    #[inline]
    pub fn push_right(&mut self, key: u32, ts: Ts, quote: Q) -> Result<Option<(Ts, Q)>, Refused> {
        let r = self.check(key, ts)?;
        self.counters.right += 1;
        // Lazy expiry: nothing older than `live_from` can be in a pending or future window.
        let future = self.wm.map_or(0, |wm| wm.saturating_add(1));
        let oldest_pending = self.pending.peek().map_or(Ts::MAX, |p| p.0.ts);
        let live_from = future.min(oldest_pending).saturating_sub(self.before);
        while self.quotes.get(r, 0).is_some_and(|&(t, _)| t < live_from) {
            self.quotes.pop_front(r);
            self.counters.expired += 1;
        }
        let n = self.quotes.len(r);
        let full = n == self.quotes.cap();
        let newest_ok = n == 0 || self.quotes.get(r, n - 1).is_some_and(|&(t, _)| t <= ts);
        let lost = if full && self.quotes.get(r, 0).map_or(true, |&(t, _)| ts < t) {
            // Older than every kept quote of a full ring (or capacity 0): drop it.
            Some((ts, quote))
        } else {
            let evicted = self.quotes.push_back(r, (ts, quote));
            if !newest_ok {
                let mut i = self.quotes.len(r) - 1;
                while i > 0 && self.quotes.get(r, i - 1).is_some_and(|&(t, _)| t > ts) {
                    self.quotes.swap(r, i - 1, i);
                    i -= 1;
                }
            }
            evicted
        };
        if let Some((t, _)) = lost {
            self.counters.evicted += 1;
            let m = &mut self.lost_upto[r];
            *m = Some(m.map_or(t, |m| m.max(t)));
        }
        Ok(lost)
    }

    /// Advances the watermark to `wm` (a smaller one is ignored) and emits, in `(ts, arrival)`
    /// order, the row of every pending left event with `ts + after <= wm`. Returns the number of
    /// rows. `advance(Ts::MAX, …)` flushes everything at the end of a stream.
    pub fn advance(&mut self, wm: Ts, mut emit: impl FnMut(WindowRow<T, F::Out>)) -> usize {
        if self.wm.is_some_and(|cur| wm <= cur) {
            return 0;
        }
        self.wm = Some(wm);
        let mut rows = 0;
        while self.pending.peek().is_some_and(|p| p.0.due <= wm) {
            let Some(Reverse(p)) = self.pending.pop() else {
                break;
            };
            let r = p.key as usize;
            let (lo, hi) = (p.ts.saturating_sub(self.before), p.due);
            let mut acc = self.fold.init();
            let mut i = self.quotes.partition_point(r, |&(t, _)| t < lo);
            while let Some(&(t, q)) = self.quotes.get(r, i) {
                if t > hi {
                    break;
                }
                self.fold.add(&mut acc, t, &q);
                i += 1;
            }
            let complete = self.lost_upto[r].map_or(true, |m| m < lo);
            if !complete {
                self.counters.incomplete += 1;
            }
            self.counters.rows += 1;
            rows += 1;
            emit(WindowRow {
                key: p.key,
                ts: p.ts,
                left: p.left,
                out: self.fold.finish(&acc),
                complete,
            });
        }
        rows
    }
}
