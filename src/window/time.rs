//! Keyed tumbling and sliding (hopping) event-time windows over a fixed ring of panes per key.
//!
//! Time is cut into **panes** of `slide` ns; a window of `size` ns is the merge of
//! `n = size / slide` consecutive panes. Internally timestamps are shifted by
//! `shift = size + slide - offset` (a multiple of `slide` minus the offset), so pane numbers are
//! plain unsigned divisions `p = (ts + shift) / slide`, every pane number is at least `n`, and
//! the windows that begin before midnight need no negative numbers. A window is named by its
//! first pane `f`; it covers panes `f..f + n`, so an event in pane `p` belongs to windows
//! `p + 1 - n ..= p`.
//!
//! Each key owns a ring of `R` cells (a power of two, sized in `new` from `n`, the allowed
//! lateness and the out-of-orderness), cell `p & (R - 1)` stamped with the pane number it holds;
//! a stale stamp means "empty". Beside it, each ring slot keeps the list of keys that touched its
//! pane, so firing a window visits only active keys (their union over the window's panes, sorted
//! in place). `add` is one division, a few comparisons and one cell update; a pane slot is freed
//! once no window containing it can still accept late data.

use std::fmt;

use super::{check_keys, Added, Aggregate, Emit, Firing, FiringKind, LateLedger, Ts, WindowError};

/// Largest pane ring per key.
const MAX_PANE_SLOTS: u64 = 1 << 20;

/// Configuration of [`TimeWindows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindowConfig {
    /// Window length in ns (> 0, a multiple of `slide`).
    pub size: Ts,
    /// Distance between window starts in ns (> 0; `== size` for tumbling windows).
    pub slide: Ts,
    /// Window starts are `k * slide + offset`; must be `< slide`.
    pub offset: Ts,
    /// How long after its on-time firing a window still accepts (late) events, in ns.
    pub allowed_lateness: Ts,
    /// The out-of-orderness bound of the watermark feeding this operator, in ns; used only to
    /// size the pane ring (events further ahead of the watermark may overflow).
    pub max_out_of_orderness: Ts,
    /// Emit mode.
    pub emit: Emit,
}

impl TimeWindowConfig {
    /// Tumbling windows of `size` ns, no offset, no lateness, no out-of-orderness, on close.
    pub fn tumbling(size: Ts) -> Self {
        Self::sliding(size, size)
    }

    /// Sliding windows of `size` ns every `slide` ns (otherwise as [`tumbling`](Self::tumbling)).
    pub fn sliding(size: Ts, slide: Ts) -> Self {
        Self {
            size,
            slide,
            offset: 0,
            allowed_lateness: 0,
            max_out_of_orderness: 0,
            emit: Emit::OnClose,
        }
    }

    /// Checks sizes, slide and offset.
    ///
    /// # Errors
    /// [`WindowError::ZeroSize`], [`WindowError::ZeroSlide`],
    /// [`WindowError::SizeNotMultipleOfSlide`], [`WindowError::OffsetTooLarge`].
    pub fn validate(&self) -> Result<(), WindowError> {
        if self.size == 0 {
            return Err(WindowError::ZeroSize);
        }
        if self.slide == 0 {
            return Err(WindowError::ZeroSlide);
        }
        if self.size % self.slide != 0 {
            return Err(WindowError::SizeNotMultipleOfSlide {
                size: self.size,
                slide: self.slide,
            });
        }
        if self.offset >= self.slide {
            return Err(WindowError::OffsetTooLarge {
                offset: self.offset,
                slide: self.slide,
            });
        }
        Ok(())
    }

    /// Pane slots per key that cover a window, the allowed lateness and the out-of-orderness.
    fn panes_needed(&self) -> Option<u64> {
        let n = self.size / self.slide;
        let behind = self
            .allowed_lateness
            .checked_add(self.max_out_of_orderness)?
            .div_ceil(self.slide);
        n.checked_add(behind)?.checked_add(3)
    }
}

/// One key's pane: the pane number it holds (stale = empty) and its aggregate.
#[derive(Debug, Clone, Copy)]
struct Cell<A> {
    pane: u64,
    agg: A,
}

/// Keyed tumbling/sliding event-time windows (see the [module docs](crate::window)).
///
/// Keys are dense, `0..keys`. All memory is allocated in [`new`](Self::new): per key a ring of
/// [`pane_slots`](Self::pane_slots) cells, per ring slot a list of touched keys. An event for a
/// pane whose ring slot still holds an older, unfreed pane (an event more than about
/// `max_out_of_orderness` ahead of the operator's watermark, e.g. when `advance` is not called
/// before `add` as the [module docs](crate::window) recommend) is a counted [`Added::Overflow`].
pub struct TimeWindows<A: Aggregate> {
    cfg: TimeWindowConfig,
    keys: usize,
    /// Panes per window.
    n: u64,
    slide: u64,
    shift: u64,
    /// Largest accepted timestamp (so `ts + shift + size` cannot overflow).
    max_ts: Ts,
    mask: u64,
    slots: usize,
    /// Pane number held by each ring slot (0 = free; real pane numbers are `>= n >= 1`).
    slot_pane: Box<[u64]>,
    /// Number of keys in each slot's touched list.
    touched_len: Box<[u32]>,
    /// `slots` lists of `keys` entries: the keys with data in the slot's pane.
    touched: Box<[u32]>,
    /// `keys` rings of `slots` cells.
    cells: Box<[Cell<A>]>,
    /// Per key: `f + 1` of the last window whose key list included it.
    mark: Box<[u64]>,
    /// Scratch: keys of the window being fired.
    keys_buf: Box<[u32]>,
    /// Scratch: live pane numbers, sorted at firing time.
    live: Box<[u64]>,
    /// The operator's watermark, shifted (`wm + shift`, saturating).
    wm_u: Option<u64>,
    /// Windows `f >= accept_from` still accept events (from `wm_u` and the allowed lateness).
    accept_from: u64,
    /// Windows `f < fired_below` have been through their on-time firing.
    fired_below: u64,
    ledger: LateLedger,
}

impl<A: Aggregate> fmt::Debug for TimeWindows<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeWindows")
            .field("cfg", &self.cfg)
            .field("keys", &self.keys)
            .field("pane_slots", &self.slots)
            .field("watermark", &self.watermark())
            .field("ledger", &self.ledger)
            .finish_non_exhaustive()
    }
}

/// First window (by first pane) that is not yet past `wm_u + 1 - lateness`: windows `f` with
/// `(f + n) * slide - 1 + lateness > wm_u`. With `lateness = 0` this is the first window not
/// yet fired on time.
#[inline]
fn first_open_window(wm_u: u64, lateness: u64, slide: u64, n: u64) -> u64 {
    let c = wm_u.saturating_add(1).saturating_sub(lateness);
    (c / slide).saturating_add(1).saturating_sub(n)
}

impl<A: Aggregate> TimeWindows<A> {
    /// Builds the operator for `keys` dense keys, allocating all of its state.
    ///
    /// # Errors
    /// Any [`TimeWindowConfig::validate`] error; [`WindowError::BadKeyCount`];
    /// [`WindowError::TooManyPanes`] when lateness plus out-of-orderness span more than 2^20
    /// slides; [`WindowError::TooLarge`] when the sizes overflow `u64` arithmetic or the state
    /// does not fit in memory.
    pub fn new(cfg: TimeWindowConfig, keys: usize) -> Result<Self, WindowError> {
        cfg.validate()?;
        check_keys(keys)?;
        let n = cfg.size / cfg.slide;
        let shift = cfg
            .size
            .checked_add(cfg.slide - cfg.offset)
            .ok_or(WindowError::TooLarge)?;
        let max_ts = Ts::MAX
            .checked_sub(shift)
            .and_then(|m| m.checked_sub(cfg.size))
            .ok_or(WindowError::TooLarge)?;
        let needed = cfg.panes_needed().ok_or(WindowError::TooLarge)?;
        if needed > MAX_PANE_SLOTS {
            return Err(WindowError::TooManyPanes {
                needed,
                limit: MAX_PANE_SLOTS,
            });
        }
        let slots = needed.next_power_of_two() as usize;
        let total = keys.checked_mul(slots).ok_or(WindowError::TooLarge)?;
        if total
            .checked_mul(std::mem::size_of::<Cell<A>>() + 4)
            .is_none()
        {
            return Err(WindowError::TooLarge);
        }
        let empty = Cell {
            pane: 0,
            agg: A::empty(),
        };
        Ok(Self {
            cfg,
            keys,
            n,
            slide: cfg.slide,
            shift,
            max_ts,
            mask: slots as u64 - 1,
            slots,
            slot_pane: vec![0; slots].into_boxed_slice(),
            touched_len: vec![0; slots].into_boxed_slice(),
            touched: vec![0; total].into_boxed_slice(),
            cells: vec![empty; total].into_boxed_slice(),
            mark: vec![0; keys].into_boxed_slice(),
            keys_buf: vec![0; keys].into_boxed_slice(),
            live: vec![0; slots].into_boxed_slice(),
            wm_u: None,
            accept_from: 0,
            fired_below: 0,
            ledger: LateLedger::default(),
        })
    }

    /// Adds one event of `key` at `ts`. `wm` is the current watermark (`None` before any); the
    /// operator keeps the maximum of every watermark it is given.
    ///
    /// Returns [`Added::OnTime`] or [`Added::Late`] (then `out` receives one
    /// [`FiringKind::Late`] firing per already-fired window the event went into, by start);
    /// [`Added::Dropped`] when every window of the event is past its allowed lateness;
    /// [`Added::Overflow`] when the pane ring slot is held by an unfreed pane, or the key is
    /// `>= keys` or `ts` is within `2 * size + slide` of `u64::MAX`. With [`Emit::OnUpdate`],
    /// `out` also receives the partial result of every not-yet-fired window the event went
    /// into. Never allocates.
    #[inline]
    pub fn add(
        &mut self,
        key: u32,
        ts: Ts,
        x: &A::Input,
        wm: Option<Ts>,
        out: &mut impl FnMut(&Firing<A>),
    ) -> Added {
        if let Some(w) = wm {
            self.raise(w.saturating_add(self.shift));
        }
        let k = key as usize;
        if k >= self.keys || ts > self.max_ts {
            self.ledger.out_of_range += 1;
            return Added::Overflow;
        }
        let p = (ts + self.shift) / self.slide;
        if p < self.accept_from {
            // Even the last window containing pane `p` (f = p) is past its lateness.
            let wm = self.wm_u.unwrap_or(0).saturating_sub(self.shift);
            self.ledger.record_drop(wm.saturating_sub(ts));
            return Added::Dropped;
        }
        let s = (p & self.mask) as usize;
        let held = self.slot_pane[s];
        if held != p {
            // A held pane may be reused once it is past lateness and its windows have fired.
            if held != 0 && !(held < self.accept_from && held < self.fired_below) {
                self.ledger.overflow += 1;
                return Added::Overflow;
            }
            self.slot_pane[s] = p;
            self.touched_len[s] = 0;
        }
        let cell = &mut self.cells[k * self.slots + s];
        if cell.pane != p {
            cell.pane = p;
            cell.agg = A::empty();
            let len = self.touched_len[s] as usize;
            self.touched[s * self.keys + len] = key;
            self.touched_len[s] += 1;
        }
        cell.agg.add(x, ts);

        let first = p + 1 - self.n;
        if first < self.accept_from {
            self.ledger.partial_late += 1;
        }
        let lo = first.max(self.accept_from);
        let late = lo < self.fired_below;
        if late {
            self.ledger.late_accepted += 1;
            for f in lo..self.fired_below.min(p + 1) {
                self.ledger.late_firings += 1;
                self.emit(key, f, FiringKind::Late, out);
            }
        }
        if self.cfg.emit == Emit::OnUpdate {
            for f in lo.max(self.fired_below)..=p {
                self.emit(key, f, FiringKind::Update, out);
            }
        }
        if late {
            Added::Late
        } else {
            Added::OnTime
        }
    }

    /// Raises the watermark to `wm` (never lowers it) and fires every window with
    /// `end - 1 <= wm` that has not fired yet, in (start, key) order, as
    /// [`FiringKind::OnTime`]; then frees the panes no window can use any more.
    /// Never allocates; cost is O(live panes × panes per window × active keys).
    pub fn advance(&mut self, wm: Ts, out: &mut impl FnMut(&Firing<A>)) {
        self.raise(wm.saturating_add(self.shift));
        let wm_u = self.wm_u.unwrap_or(0);
        let fire_below = first_open_window(wm_u, 0, self.slide, self.n);
        if fire_below > self.fired_below {
            let mut live = 0;
            for s in 0..self.slots {
                if self.slot_pane[s] != 0 {
                    self.live[live] = self.slot_pane[s];
                    live += 1;
                }
            }
            self.live[..live].sort_unstable();
            // Windows with data are the union of `p + 1 - n ..= p` over live panes `p`.
            let mut next = self.fired_below;
            for i in 0..live {
                let p = self.live[i];
                let lo = (p + 1 - self.n).max(next);
                let hi = p.min(fire_below - 1);
                if lo <= hi {
                    for f in lo..=hi {
                        self.fire(f, out);
                    }
                    next = hi + 1;
                }
            }
            self.fired_below = fire_below;
        }
        let free_below = self.accept_from.min(self.fired_below);
        for s in 0..self.slots {
            let held = self.slot_pane[s];
            if held != 0 && held < free_below {
                self.slot_pane[s] = 0;
                self.touched_len[s] = 0;
            }
        }
    }

    /// The operator's watermark (the maximum it has been given).
    pub fn watermark(&self) -> Option<Ts> {
        self.wm_u.map(|w| w.saturating_sub(self.shift))
    }

    /// Dropped, late and overflowed event counts.
    pub fn ledger(&self) -> &LateLedger {
        &self.ledger
    }

    /// The configuration.
    pub fn config(&self) -> &TimeWindowConfig {
        &self.cfg
    }

    /// Number of dense keys.
    pub fn keys(&self) -> usize {
        self.keys
    }

    /// Pane ring slots per key.
    pub fn pane_slots(&self) -> usize {
        self.slots
    }

    /// The `[start, end)` of window `f` (start saturated at midnight).
    #[inline]
    fn bounds(&self, f: u64) -> (Ts, Ts) {
        let start = (f * self.slide).saturating_sub(self.shift);
        let end = (f + self.n) * self.slide - self.shift;
        (start, end)
    }

    #[inline]
    fn raise(&mut self, wm_u: u64) {
        if self.wm_u.map_or(true, |c| wm_u > c) {
            self.wm_u = Some(wm_u);
            self.accept_from =
                first_open_window(wm_u, self.cfg.allowed_lateness, self.slide, self.n);
        }
    }

    /// Merges `key`'s panes of window `f`; `None` if it has no data.
    #[inline]
    fn window_agg(&self, key: usize, f: u64) -> Option<A> {
        let ring = &self.cells[key * self.slots..(key + 1) * self.slots];
        let mut agg: Option<A> = None;
        for p in f..f + self.n {
            let s = (p & self.mask) as usize;
            if self.slot_pane[s] == p && ring[s].pane == p {
                match &mut agg {
                    Some(a) => a.merge(&ring[s].agg),
                    None => agg = Some(ring[s].agg),
                }
            }
        }
        agg
    }

    fn emit(&self, key: u32, f: u64, kind: FiringKind, out: &mut impl FnMut(&Firing<A>)) {
        if let Some(agg) = self.window_agg(key as usize, f) {
            let (start, end) = self.bounds(f);
            out(&Firing {
                key,
                start,
                end,
                agg,
                kind,
            });
        }
    }

    /// On-time firing of window `f` for every key with data in it, by key.
    fn fire(&mut self, f: u64, out: &mut impl FnMut(&Firing<A>)) {
        let stamp = f + 1;
        let mut count = 0;
        for p in f..f + self.n {
            let s = (p & self.mask) as usize;
            if self.slot_pane[s] != p {
                continue;
            }
            let list = &self.touched[s * self.keys..][..self.touched_len[s] as usize];
            for &key in list {
                let m = &mut self.mark[key as usize];
                if *m != stamp {
                    *m = stamp;
                    self.keys_buf[count] = key;
                    count += 1;
                }
            }
        }
        self.keys_buf[..count].sort_unstable();
        for i in 0..count {
            let key = self.keys_buf[i];
            self.emit(key, f, FiringKind::OnTime, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq)]
    struct Count(u64);
    impl Aggregate for Count {
        type Input = ();
        fn empty() -> Self {
            Count(0)
        }
        fn add(&mut self, _: &(), _: Ts) {
            self.0 += 1
        }
        fn merge(&mut self, o: &Self) {
            self.0 += o.0
        }
    }

    #[test]
    fn first_open_window_matches_definition() {
        for slide in [1u64, 3, 10] {
            for n in [1u64, 2, 5] {
                for lateness in [0u64, 1, 7, 25] {
                    for wm_u in 0..200u64 {
                        let got = first_open_window(wm_u, lateness, slide, n);
                        let want = (0..1000u64)
                            .find(|&f| (f + n) * slide - 1 + lateness > wm_u)
                            .unwrap();
                        assert_eq!(
                            got, want,
                            "slide {slide} n {n} lateness {lateness} wm_u {wm_u}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn bounds_and_panes() {
        let cfg = TimeWindowConfig {
            offset: 3,
            ..TimeWindowConfig::sliding(30, 10)
        };
        let w = TimeWindows::<Count>::new(cfg, 1).unwrap();
        assert_eq!(w.shift, 37);
        // ts 3 starts pane 4; its windows are f = 2, 3, 4.
        assert_eq!((3 + w.shift) / w.slide, 4);
        assert_eq!((2 + w.shift) / w.slide, 3);
        assert_eq!(w.bounds(4), (3, 33));
        assert_eq!(w.bounds(3), (0, 23)); // really [-7, 23)
        assert_eq!(w.bounds(2), (0, 13)); // really [-17, 13)
    }

    #[test]
    fn ring_sizes() {
        let cfg = TimeWindowConfig {
            allowed_lateness: 250,
            max_out_of_orderness: 50,
            ..TimeWindowConfig::sliding(1000, 100)
        };
        // 10 panes + 3 behind + 3 slack = 16.
        assert_eq!(TimeWindows::<Count>::new(cfg, 4).unwrap().pane_slots(), 16);
        let huge = TimeWindowConfig {
            allowed_lateness: u64::MAX,
            ..cfg
        };
        assert!(TimeWindows::<Count>::new(huge, 4).is_err());
    }
}
