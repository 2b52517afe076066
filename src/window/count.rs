//! Keyed count windows: every `slide` elements of a key, the aggregate of its last `size`.
//!
//! Like Flink's `countWindow(size, slide)`: the k-th firing of a key comes after its
//! `k * slide`-th element and covers its last `min(k * slide, size)` elements, so the first
//! firings (before `size` elements) cover everything so far. Event time is ignored (timestamps
//! are only passed to [`Aggregate::add`]). State is pane-based: per key a ring of
//! `size / slide` panes of `slide` elements each, allocated in `new`; a firing merges them in
//! arrival order. Elements after the last full slide of a key are never emitted on close (as in
//! Flink); [`Emit::OnUpdate`] shows them as partial results.
//!
//! [`Firing::start`]/[`Firing::end`] are per-key element sequence numbers (0-based): the
//! window holds elements `start..end`.

use std::fmt;

use super::{check_keys, Added, Aggregate, Emit, Firing, FiringKind, LateLedger, Ts, WindowError};

/// Keyed count windows; see also the [module docs](crate::window).
///
/// Like Flink's `countWindow(size, slide)`: the k-th firing of a key comes after its
/// `k * slide`-th element and covers its last `min(k * slide, size)` elements, so the first
/// firings (before `size` elements) cover everything so far. Event time is ignored (timestamps
/// are only passed to [`Aggregate::add`]). State is pane-based: per key a ring of
/// `size / slide` panes of `slide` elements each, allocated in `new`; a firing merges them in
/// arrival order. Elements after the last full slide of a key are never emitted on close (as in
/// Flink); [`Emit::OnUpdate`] shows them as partial results.
///
/// [`Firing::start`]/[`Firing::end`] are per-key element sequence numbers (0-based): the
/// window holds elements `start..end`.
pub struct CountWindows<A: Aggregate> {
    size: u64,
    slide: u64,
    /// Panes per window (`size / slide`).
    m: usize,
    keys: usize,
    emit: Emit,
    /// `keys` rings of `m` panes.
    panes: Box<[A]>,
    /// Elements seen per key.
    count: Box<[u64]>,
    ledger: LateLedger,
}

impl<A: Aggregate> fmt::Debug for CountWindows<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountWindows")
            .field("size", &self.size)
            .field("slide", &self.slide)
            .field("keys", &self.keys)
            .field("emit", &self.emit)
            .field("ledger", &self.ledger)
            .finish_non_exhaustive()
    }
}

impl<A: Aggregate> CountWindows<A> {
    /// Count windows of `size` elements every `slide` elements for `keys` dense keys.
    ///
    /// # Errors
    /// [`WindowError::BadCountWindow`] unless `size > 0`, `slide > 0` and `size % slide == 0`;
    /// [`WindowError::BadKeyCount`]; [`WindowError::TooLarge`] when the state does not fit.
    pub fn new(size: u64, slide: u64, keys: usize, emit: Emit) -> Result<Self, WindowError> {
        if size == 0 || slide == 0 || size % slide != 0 {
            return Err(WindowError::BadCountWindow { size, slide });
        }
        check_keys(keys)?;
        let m = usize::try_from(size / slide).map_err(|_| WindowError::TooLarge)?;
        let total = keys.checked_mul(m).ok_or(WindowError::TooLarge)?;
        Ok(Self {
            size,
            slide,
            m,
            keys,
            emit,
            panes: vec![A::empty(); total].into_boxed_slice(),
            count: vec![0; keys].into_boxed_slice(),
            ledger: LateLedger::default(),
        })
    }

    /// Adds one element of `key`. After every `slide`-th element of the key, `out` receives the
    /// [`FiringKind::OnTime`] result of its last `size` elements; with [`Emit::OnUpdate`] every
    /// other add emits the partial result of the window that will fire next.
    ///
    /// Returns [`Added::OnTime`], or [`Added::Overflow`] for a key out of range (counted in
    /// [`LateLedger::out_of_range`]). Never allocates.
    pub fn add(
        &mut self,
        key: u32,
        ts: Ts,
        x: &A::Input,
        out: &mut impl FnMut(&Firing<A>),
    ) -> Added {
        let k = key as usize;
        if k >= self.keys {
            self.ledger.out_of_range += 1;
            return Added::Overflow;
        }
        let c = self.count[k];
        let pane = c / self.slide; // pane of this element
        let ring = &mut self.panes[k * self.m..(k + 1) * self.m];
        let s = (pane % self.m as u64) as usize;
        if c % self.slide == 0 {
            ring[s] = A::empty();
        }
        ring[s].add(x, ts);
        let c = c + 1;
        self.count[k] = c;
        let full = c % self.slide == 0;
        if !full && self.emit == Emit::OnClose {
            return Added::OnTime;
        }
        // The window that fires after pane `pane` is full: panes `pane + 1 - m ..= pane`.
        let first = (pane + 1).saturating_sub(self.m as u64);
        let mut agg = A::empty();
        for q in first..=pane {
            agg.merge(&ring[(q % self.m as u64) as usize]);
        }
        out(&Firing {
            key,
            start: first * self.slide,
            end: c,
            agg,
            kind: if full {
                FiringKind::OnTime
            } else {
                FiringKind::Update
            },
        });
        Added::OnTime
    }

    /// Elements seen for `key` (0 when out of range).
    pub fn count(&self, key: u32) -> u64 {
        self.count.get(key as usize).copied().unwrap_or(0)
    }

    /// Out-of-range key counts (nothing else can be lost here).
    pub fn ledger(&self) -> &LateLedger {
        &self.ledger
    }
}
