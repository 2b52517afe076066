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
//! The state is a ring of `R` pane slots (a power of two, sized in `new` from `n`, the allowed
//! lateness and the out-of-orderness), slot `p & (R - 1)` stamped with the pane number it holds
//! (0 = free). A slot is one contiguous row of one aggregate per key (pane-major, so the pane
//! being filled stays in cache) and a bitmap of the keys with data in it; a cell means something
//! only while its bit is set. `add` is usually a range check against the cached current pane, a
//! bit test and one cell update; a pane slot is freed once no window containing it can still
//! accept late data.
//!
//! Firing window `f` ORs the bitmaps of its panes (its keys, ascending, no sort) and merges, per
//! key, two precomputed parts: panes are grouped in blocks of `n`, and window `f` is the suffix
//! of block `f / n` from pane `f` (computed once per block) merged with the prefix of the next
//! block through the window's last pane (extended by one pane per window). That is about three
//! merges per key and window whatever `n` is, always in time order (merge need not be
//! commutative). Late events that change a pane already covered by a prefix or suffix refresh
//! that key's parts at once; late and update firings merge the panes directly.

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

/// The sizes of a [`TimeWindows`]' state.
struct Layout {
    /// Panes per window.
    n: u64,
    /// Timestamp shift (see the module).
    shift: u64,
    /// Latest timestamp the shift leaves room for.
    max_ts: Ts,
    /// Pane slots per key.
    slots: usize,
    /// Words of a bitmap over the keys.
    words: usize,
    /// Pane cells (keys × slots).
    total: usize,
    /// Suffix cells (keys × (n − 1)).
    sfx_total: usize,
    /// Bytes of cells (panes, suffixes, the prefix row) and pane bitmaps.
    bytes: usize,
}

/// Words of a bitmap over `keys` keys.
#[inline]
fn words_for(keys: usize) -> usize {
    keys.div_ceil(64)
}

/// Calls `f` with every set bit of `bits`, ascending.
#[inline(always)]
fn for_each_bit(bits: &[u64], mut f: impl FnMut(usize)) {
    for (w, &word) in bits.iter().enumerate() {
        let mut m = word;
        while m != 0 {
            f(w * 64 + m.trailing_zeros() as usize);
            m &= m - 1;
        }
    }
}

/// Keyed tumbling/sliding event-time windows (see the [module docs](crate::window)).
///
/// Keys are dense, `0..keys`. All memory is allocated in [`new`](Self::new): a ring of
/// [`pane_slots`](Self::pane_slots) panes, each a row of one aggregate per key plus a bitmap of
/// the keys with data, and (sliding windows) the suffix and prefix rows that let a window be
/// fired with about three merges per key. An event for a pane whose ring slot still holds an
/// older, unfreed pane (an event more than about `max_out_of_orderness` ahead of the operator's
/// watermark, e.g. when `advance` is not called before `add` as the
/// [module docs](crate::window) recommend) is a counted [`Added::Overflow`].
pub struct TimeWindows<A: Aggregate> {
    cfg: TimeWindowConfig,
    keys: usize,
    /// Words of one key bitmap.
    words: usize,
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
    /// `slots` bitmaps of `words` words: the keys with data in the slot's pane.
    present: Box<[u64]>,
    /// `slots` rows of `keys` aggregates (pane-major: a pane is one contiguous row); a cell is
    /// meaningful only when its key's bit is set in `present`.
    cells: Box<[A]>,
    /// `n - 1` rows of `keys` aggregates: row `j - 1` holds, for block `sfx_block` (panes
    /// `b * n .. b * n + n`), the merge of the block's panes `j..n` (`j >= sfx_from`), for the
    /// keys in `sfx_has` (other keys have no data there).
    sfx: Box<[A]>,
    sfx_has: Box<[u64]>,
    /// Block whose suffixes are in `sfx` (`u64::MAX`: none).
    sfx_block: u64,
    sfx_from: u64,
    /// Per key: the merge of the panes from the start of `pfx_to`'s block through `pfx_to`,
    /// valid for the keys in `pfx_ok`.
    pfx: Box<[A]>,
    pfx_ok: Box<[u64]>,
    /// Last pane of the last window fired on time (0: none); no derived row covers a later pane.
    pfx_to: u64,
    /// Scratch: keys of the window being fired.
    win_keys: Box<[u64]>,
    /// Scratch: live pane numbers, sorted at firing time.
    live: Box<[u64]>,
    /// The operator's watermark, shifted (`wm + shift`, saturating).
    wm_u: Option<u64>,
    /// Windows `f >= accept_from` still accept events (from `wm_u` and the allowed lateness).
    accept_from: u64,
    /// Windows `f < fired_below` have been through their on-time firing.
    fired_below: u64,
    /// Fast path of `add`: shifted timestamps in `fast_lo .. fast_lo + fast_span` fall in a
    /// held pane (ring slot `fast_slot`) whose windows are all open and unfired, with
    /// [`Emit::OnClose`]; `fast_span == 0` disables it.
    fast_lo: u64,
    fast_span: u64,
    fast_slot: usize,
    /// Pane whose free ring row `advance` last warmed.
    warm: u64,
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
        let Layout {
            n,
            shift,
            max_ts,
            slots,
            words,
            total,
            sfx_total,
            ..
        } = Self::layout(cfg, keys)?;
        Ok(Self {
            cfg,
            keys,
            words,
            n,
            slide: cfg.slide,
            shift,
            max_ts,
            mask: slots as u64 - 1,
            slots,
            slot_pane: vec![0; slots].into_boxed_slice(),
            present: vec![0; slots * words].into_boxed_slice(),
            cells: vec![A::empty(); total].into_boxed_slice(),
            sfx: vec![A::empty(); sfx_total].into_boxed_slice(),
            sfx_has: vec![0; words].into_boxed_slice(),
            sfx_block: u64::MAX,
            sfx_from: 0,
            pfx: vec![A::empty(); if n > 1 { keys } else { 0 }].into_boxed_slice(),
            pfx_ok: vec![0; words].into_boxed_slice(),
            pfx_to: 0,
            win_keys: vec![0; words].into_boxed_slice(),
            live: vec![0; slots].into_boxed_slice(),
            wm_u: None,
            accept_from: 0,
            fired_below: 0,
            fast_lo: 0,
            fast_span: 0,
            fast_slot: 0,
            warm: 0,
            ledger: LateLedger::default(),
        })
    }

    /// The bytes [`TimeWindows::new`] allocates for `keys` keys: what a caller checks against
    /// its memory before building the operator.
    ///
    /// # Errors
    /// As [`TimeWindows::new`].
    pub fn state_bytes(cfg: TimeWindowConfig, keys: usize) -> Result<usize, WindowError> {
        Ok(Self::layout(cfg, keys)?.bytes)
    }

    /// Checks `cfg` and sizes the state for `keys` keys.
    fn layout(cfg: TimeWindowConfig, keys: usize) -> Result<Layout, WindowError> {
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
        let words = words_for(keys);
        // Pane rows, suffix rows (n - 1 <= slots) and the prefix row.
        let sfx_rows = n as usize - 1;
        let total = keys.checked_mul(slots).ok_or(WindowError::TooLarge)?;
        let sfx_total = keys.checked_mul(sfx_rows).ok_or(WindowError::TooLarge)?;
        let bytes = total
            .checked_add(sfx_total)
            .and_then(|c| c.checked_add(keys))
            .and_then(|c| c.checked_mul(std::mem::size_of::<A>().max(1)))
            .and_then(|b| b.checked_add(slots.checked_mul(words)?.checked_mul(8)?))
            .filter(|&b| b <= isize::MAX as usize)
            .ok_or(WindowError::TooLarge)?;
        Ok(Layout {
            n,
            shift,
            max_ts,
            slots,
            words,
            total,
            sfx_total,
            bytes,
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
        if k < self.keys
            && ts <= self.max_ts
            && (ts + self.shift).wrapping_sub(self.fast_lo) < self.fast_span
        {
            // The cached pane: held, all of its windows open and unfired, no derived rows.
            self.put(self.fast_slot, k, x, ts);
            return Added::OnTime;
        }
        self.add_slow(key, ts, x, out)
    }

    /// Adds `x` to key `k`'s cell of ring slot `s`.
    #[inline(always)]
    fn put(&mut self, s: usize, k: usize, x: &A::Input, ts: Ts) {
        let w = &mut self.present[s * self.words + (k >> 6)];
        let bit = 1u64 << (k & 63);
        let cell = &mut self.cells[s * self.keys + k];
        if *w & bit == 0 {
            *w |= bit;
            *cell = A::empty();
        }
        cell.add(x, ts);
    }

    fn add_slow(
        &mut self,
        key: u32,
        ts: Ts,
        x: &A::Input,
        out: &mut impl FnMut(&Firing<A>),
    ) -> Added {
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
            self.present[s * self.words..][..self.words].fill(0);
        }
        self.put(s, k, x, ts);
        if p <= self.pfx_to {
            // The pane is in a window fired on time: refresh this key's derived rows.
            self.refresh_derived(k, p);
        }

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
        } else if !late && first >= self.accept_from {
            // Every later event of this pane takes the fast path until the watermark moves.
            self.fast_lo = p * self.slide;
            self.fast_span = self.slide;
            self.fast_slot = s;
        }
        if late {
            Added::Late
        } else {
            Added::OnTime
        }
    }

    /// Key `k`'s pane `p` changed after the windows holding it fired on time: drop its prefix
    /// if the prefix covers `p`, and recompute its suffixes if their block holds `p`.
    fn refresh_derived(&mut self, k: usize, p: u64) {
        let bit = 1u64 << (k & 63);
        if p <= self.pfx_to {
            self.pfx_ok[k >> 6] &= !bit;
        }
        let b = self.sfx_block;
        if b == u64::MAX || p / self.n != b {
            return;
        }
        let base = b * self.n;
        // Suffixes below `fired_below` serve no window any more (and their panes may be freed).
        let from = self
            .sfx_from
            .max(self.fired_below.saturating_sub(base))
            .max(1);
        if from < self.n {
            self.sfx_key(k, base, from);
            self.sfx_has[k >> 6] |= bit;
        }
    }

    /// Key `k`'s aggregate in pane `p`, if it has data there.
    #[inline(always)]
    fn pane_agg(&self, k: usize, p: u64) -> Option<&A> {
        let s = (p & self.mask) as usize;
        let has =
            self.slot_pane[s] == p && self.present[s * self.words + (k >> 6)] >> (k & 63) & 1 != 0;
        has.then(|| &self.cells[s * self.keys + k])
    }

    /// Suffix rows `from..n` of key `k` for the block starting at pane `base`.
    fn sfx_key(&mut self, k: usize, base: u64, from: u64) {
        let mut acc = A::empty();
        for j in (from..self.n).rev() {
            let mut v = self.pane_agg(k, base + j).copied().unwrap_or_else(A::empty);
            v.merge(&acc);
            acc = v;
            self.sfx[(j as usize - 1) * self.keys + k] = acc;
        }
    }

    /// Raises the watermark to `wm` (never lowers it) and fires every window with
    /// `end - 1 <= wm` that has not fired yet, in (start, key) order, as
    /// [`FiringKind::OnTime`]; then frees the panes no window can use any more.
    /// Never allocates; cost is O(live panes × (active keys + keys / 64)) per fired window.
    pub fn advance(&mut self, wm: Ts, out: &mut impl FnMut(&Firing<A>)) {
        self.raise(wm.saturating_add(self.shift));
        let wm_u = self.wm_u.unwrap_or(0);
        let fire_below = first_open_window(wm_u, 0, self.slide, self.n);
        if fire_below > self.fired_below {
            self.fast_span = 0;
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
            }
        }
        // Warm the row the next pane will use (its cells mean nothing while the slot is free):
        // the first event of each key then hits cache instead of missing to memory. Only worth
        // it (O(keys)) when the previous pane had data for at least a quarter of the keys.
        let next = wm_u.saturating_add(1) / self.slide;
        let s = (next & self.mask) as usize;
        if self.warm != next && self.slot_pane[s] == 0 && self.dense(next.wrapping_sub(1)) {
            self.warm = next;
            self.cells[s * self.keys..][..self.keys].fill(A::empty());
        }
    }

    /// Whether pane `p` is held and has data for at least a quarter of the keys.
    fn dense(&self, p: u64) -> bool {
        let s = (p & self.mask) as usize;
        self.slot_pane[s] == p
            && self.present[s * self.words..][..self.words]
                .iter()
                .map(|w| w.count_ones() as usize)
                .sum::<usize>()
                >= self.keys.div_ceil(4)
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
            self.fast_span = 0;
        }
    }

    /// Merges `key`'s panes of window `f` in time order; `None` if it has no data.
    #[inline]
    fn window_agg(&self, key: usize, f: u64) -> Option<A> {
        let mut agg: Option<A> = None;
        for p in f..f + self.n {
            if let Some(c) = self.pane_agg(key, p) {
                match &mut agg {
                    Some(a) => a.merge(c),
                    None => agg = Some(*c),
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

    /// ORs into `bits` the key bitmaps of the held panes `lo..hi`.
    fn or_panes(&self, bits: &mut [u64], lo: u64, hi: u64) {
        for p in lo..hi {
            let s = (p & self.mask) as usize;
            if self.slot_pane[s] == p {
                let row = &self.present[s * self.words..][..self.words];
                for (b, r) in bits.iter_mut().zip(row) {
                    *b |= r;
                }
            }
        }
    }

    /// On-time firing of window `f` for every key with data in it, by key.
    ///
    /// Panes are grouped in blocks of `n` (`b * n .. b * n + n`). Window `f` (last pane
    /// `t = f + n - 1`) is the suffix of block `f / n` from pane `f` (empty when `f` starts a
    /// block) merged with the prefix of block `t / n` through `t`. Prefixes are extended by one
    /// pane per window; suffixes are computed once per block; so each key costs about three
    /// merges per window whatever `n` is. Merge order stays oldest to newest.
    fn fire(&mut self, f: u64, out: &mut impl FnMut(&Firing<A>)) {
        let n = self.n;
        let (start, end) = self.bounds(f);
        let mut bits = std::mem::take(&mut self.win_keys);
        bits.fill(0);
        self.or_panes(&mut bits, f, f + n);
        if n == 1 {
            // Tumbling: the window is its only pane.
            let s = (f & self.mask) as usize;
            let row = &self.cells[s * self.keys..][..self.keys];
            for_each_bit(&bits, |k| {
                out(&Firing {
                    key: k as u32,
                    start,
                    end,
                    agg: row[k],
                    kind: FiringKind::OnTime,
                });
            });
            self.win_keys = bits;
            return;
        }
        let t = f + n - 1;
        let j = f % n;
        if j != 0 && self.sfx_block != f / n {
            self.build_sfx(f / n, j);
        }
        // Prefixes that cover exactly `..= t - 1` of `t`'s block extend by pane `t`.
        let extend = self.pfx_to == t - 1 && t % n != 0;
        if !extend {
            self.pfx_ok.fill(0);
        }
        let ts = (t & self.mask) as usize;
        let t_held = self.slot_pane[ts] == t;
        let t_bits = &self.present[ts * self.words..][..self.words];
        let t_row = &self.cells[ts * self.keys..][..self.keys];
        let block = t - t % n;
        let sfx_row: &[A] = if j != 0 {
            &self.sfx[(j as usize - 1) * self.keys..][..self.keys]
        } else {
            &[]
        };
        for (w, &word) in bits.iter().enumerate() {
            let mut m = word;
            let ok = self.pfx_ok[w];
            let t_word = if t_held { t_bits[w] } else { 0 };
            let has_sfx = if j != 0 { self.sfx_has[w] } else { 0 };
            while m != 0 {
                let b = m.trailing_zeros();
                m &= m - 1;
                let k = w * 64 + b as usize;
                if ok >> b & 1 != 0 {
                    if t_word >> b & 1 != 0 {
                        self.pfx[k].merge(&t_row[k]);
                    }
                } else {
                    let mut acc = A::empty();
                    for p in block..=t {
                        let s = (p & self.mask) as usize;
                        if self.slot_pane[s] == p && self.present[s * self.words + w] >> b & 1 != 0
                        {
                            acc.merge(&self.cells[s * self.keys + k]);
                        }
                    }
                    self.pfx[k] = acc;
                }
                let agg = if has_sfx >> b & 1 != 0 {
                    let mut a = sfx_row[k];
                    a.merge(&self.pfx[k]);
                    a
                } else {
                    self.pfx[k]
                };
                out(&Firing {
                    key: k as u32,
                    start,
                    end,
                    agg,
                    kind: FiringKind::OnTime,
                });
            }
        }
        self.pfx_ok.copy_from_slice(&bits);
        self.pfx_to = t;
        self.win_keys = bits;
    }

    /// Computes the suffixes `from..n` of block `b` for every key with data in them, one
    /// pane row at a time (newest first), so memory is read and written sequentially.
    fn build_sfx(&mut self, b: u64, from: u64) {
        let (n, keys, words) = (self.n, self.keys, self.words);
        let base = b * n;
        let mut has = std::mem::take(&mut self.sfx_has);
        has.fill(0);
        self.or_panes(&mut has, base + from, base + n);
        for j in (from..n).rev() {
            let p = base + j;
            let s = (p & self.mask) as usize;
            let (bits, row) = if self.slot_pane[s] == p {
                (
                    &self.present[s * words..][..words],
                    &self.cells[s * keys..][..keys],
                )
            } else {
                (&[][..], &self.cells[..0])
            };
            // Row j - 1 is written from row j (already computed) and pane j.
            let (lower, upper) = self.sfx.split_at_mut(j as usize * keys);
            let dst = &mut lower[(j as usize - 1) * keys..];
            let newer: &[A] = if j + 1 < n { &upper[..keys] } else { &[] };
            for (w, &word) in has.iter().enumerate() {
                let mut m = word;
                let pw = bits.get(w).copied().unwrap_or(0);
                while m != 0 {
                    let bit = m.trailing_zeros();
                    m &= m - 1;
                    let k = w * 64 + bit as usize;
                    let mut v = if pw >> bit & 1 != 0 {
                        row[k]
                    } else {
                        A::empty()
                    };
                    if let Some(a) = newer.get(k) {
                        v.merge(a);
                    }
                    dst[k] = v;
                }
            }
        }
        self.sfx_has = has;
        self.sfx_block = b;
        self.sfx_from = from;
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
    /// An order-sensitive aggregate: the polynomial hash of the value sequence (associative,
    /// not commutative), plus the count.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Seq {
        pow: u64,
        hash: u64,
        count: u64,
    }
    const BASE: u64 = 0x9E37_79B9_7F4A_7C15;
    impl Aggregate for Seq {
        type Input = u64;
        fn empty() -> Self {
            Seq {
                pow: 1,
                hash: 0,
                count: 0,
            }
        }
        fn add(&mut self, x: &u64, _: Ts) {
            self.merge(&Seq {
                pow: BASE,
                hash: *x,
                count: 1,
            });
        }
        fn merge(&mut self, o: &Self) {
            self.hash = self.hash.wrapping_mul(o.pow).wrapping_add(o.hash);
            self.pow = self.pow.wrapping_mul(o.pow);
            self.count += o.count;
        }
    }

    struct Rng(u64);
    impl Rng {
        fn below(&mut self, m: u64) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) % m
        }
    }

    /// Every firing (on time, late, update) equals the merge, pane by pane in time order and
    /// in arrival order within a pane, of the events of its key and window added so far;
    /// `advance` emits by (start, key) and each window fires on time at most once.
    #[test]
    fn every_firing_equals_reference() {
        use super::super::BoundedOutOfOrderness;
        use std::collections::{BTreeMap, HashSet};
        let mut rng = Rng(7);
        for case in 0..600 {
            let slide = 1 + rng.below(12);
            let n = 1 + rng.below(7);
            let keys = [1usize, 3, 70, 130][rng.below(4) as usize];
            let cfg = TimeWindowConfig {
                size: slide * n,
                slide,
                offset: rng.below(slide),
                allowed_lateness: [0, 5, 40, 200][rng.below(4) as usize],
                max_out_of_orderness: rng.below(40),
                emit: if rng.below(3) == 0 {
                    Emit::OnUpdate
                } else {
                    Emit::OnClose
                },
            };
            let mut win = TimeWindows::<Seq>::new(cfg, keys).unwrap();
            let shift = cfg.size + cfg.slide - cfg.offset;
            let mut gen = BoundedOutOfOrderness::new(rng.below(60));
            // Accepted events by (key, pane): values in arrival order.
            let mut panes: BTreeMap<(u32, u64), Vec<u64>> = BTreeMap::new();
            let mut on_time: HashSet<(u32, Ts)> = HashSet::new();
            let check = |panes: &BTreeMap<(u32, u64), Vec<u64>>, f: &Firing<Seq>| {
                let last = (f.end + shift) / slide - 1;
                let mut want = Seq::empty();
                for p in last + 1 - n..=last {
                    for x in panes.get(&(f.key, p)).into_iter().flatten() {
                        want.add(x, 0);
                    }
                }
                assert!(want.count > 0, "case {case}: empty firing {f:?}");
                assert_eq!(f.agg, want, "case {case} {cfg:?}: {f:?}");
            };
            let mut base = 0u64;
            let events = rng.below(400);
            let hot = rng.below(keys as u64) as u32;
            for i in 0..events {
                base += rng.below(6);
                let ts = base.saturating_sub(rng.below(50)) + 1000;
                let key = if rng.below(2) == 0 {
                    hot
                } else {
                    rng.below(keys as u64) as u32
                };
                let x = i;
                let wm = gen.observe(ts);
                if let Some(w) = wm {
                    if rng.below(4) != 0 {
                        let mut fired = Vec::new();
                        win.advance(w, &mut |f| fired.push(*f));
                        for f in &fired {
                            assert_eq!(f.kind, FiringKind::OnTime);
                            assert!(on_time.insert((f.key, f.end)), "case {case}: twice {f:?}");
                            check(&panes, f);
                        }
                        assert!(fired
                            .windows(2)
                            .all(|w| (w[0].end, w[0].key) < (w[1].end, w[1].key)));
                    }
                }
                let mut fired = Vec::new();
                let added = win.add(key, ts, &x, wm, &mut |f| fired.push(*f));
                if matches!(added, Added::OnTime | Added::Late) {
                    panes
                        .entry((key, (ts + shift) / slide))
                        .or_default()
                        .push(x);
                }
                for f in &fired {
                    assert_ne!(f.kind, FiringKind::OnTime);
                    check(&panes, f);
                }
            }
            let mut fired = Vec::new();
            win.advance(gen.finish(), &mut |f| fired.push(*f));
            for f in &fired {
                assert!(on_time.insert((f.key, f.end)), "case {case}: twice {f:?}");
                check(&panes, f);
            }
            assert!(fired
                .windows(2)
                .all(|w| (w[0].end, w[0].key) < (w[1].end, w[1].key)));
        }
    }
}
