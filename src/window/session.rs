//! Keyed event-time session windows: events closer than `gap` form one session.
//!
//! A session is `[first_ts, last_ts + gap)`. Two events merge when they are *strictly* closer
//! than `gap` (half-open windows `[ts, ts + gap)` that overlap; Flink also merges windows that
//! merely touch, i.e. events exactly `gap` apart — here those are two sessions). An out-of-order
//! event can bridge two open sessions and merge them. Each key has a fixed number of session
//! slots (allocated in `new`); an event that would open a session when all of its key's slots
//! are open is **not added** and is counted in [`LateLedger::overflow`].
//!
//! A session fires on time when `wm >= last_ts + gap - 1`. With allowed lateness `L`, an event
//! whose merged session has `end - 1 + L <= wm` is dropped (counted); otherwise it is merged.
//! If the merged session ends at or before the last `advance` watermark it is re-emitted at once
//! as [`FiringKind::Late`]; if it includes an already-fired session but now ends after that
//! watermark, it fires again (as `Late`) from a later `advance`, superseding the earlier firing.
//! A session's slot is freed once `end - 1 + L <= wm`. `advance` visits only the sessions due:
//! an indexed heap orders open sessions by when they next fire or free.

use std::fmt;

use super::due::DueHeap;
use super::{check_keys, Added, Aggregate, Emit, Firing, FiringKind, LateLedger, Ts, WindowError};

/// Configuration of [`SessionWindows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// Inactivity gap in ns (> 0).
    pub gap: Ts,
    /// How long after its on-time firing a session still accepts (late) events, in ns.
    pub allowed_lateness: Ts,
    /// Open sessions kept per key (1..=65535).
    pub max_sessions_per_key: usize,
    /// Emit mode.
    pub emit: Emit,
}

impl SessionConfig {
    /// Sessions with `gap`, no lateness, 4 open sessions per key, on close.
    pub fn new(gap: Ts) -> Self {
        Self {
            gap,
            allowed_lateness: 0,
            max_sessions_per_key: 4,
            emit: Emit::OnClose,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Session<A> {
    start: Ts,
    last: Ts,
    agg: A,
    open: bool,
    /// Fired at its current extent.
    fired: bool,
    /// Contains a fired session but has not fired at its current extent: next firing is `Late`.
    refire: bool,
}

/// Keyed session windows; see also the [module docs](crate::window).
///
/// A session is `[first_ts, last_ts + gap)`. Two events merge when they are *strictly* closer
/// than `gap` (half-open windows `[ts, ts + gap)` that overlap; Flink also merges windows that
/// merely touch, i.e. events exactly `gap` apart — here those are two sessions). An out-of-order
/// event can bridge two open sessions and merge them. Each key has a fixed number of session
/// slots (allocated in `new`); an event that would open a session when all of its key's slots
/// are open is **not added** and is counted in [`LateLedger::overflow`].
///
/// A session fires on time when `wm >= last_ts + gap - 1`. With allowed lateness `L`, an event
/// whose merged session has `end - 1 + L <= wm` is dropped (counted); otherwise it is merged.
/// If the merged session ends at or before the last `advance` watermark it is re-emitted at once
/// as [`FiringKind::Late`]; if it includes an already-fired session but now ends after that
/// watermark, it fires again (as `Late`) from a later `advance`, superseding the earlier firing.
/// A session's slot is freed once `end - 1 + L <= wm`. `advance` visits only the sessions that
/// fire or free (an indexed heap of open sessions by when they are next due): O(log n) per
/// session, so advancing on every rising watermark stays cheap.
pub struct SessionWindows<A: Aggregate> {
    cfg: SessionConfig,
    keys: usize,
    per_key: usize,
    /// `keys` groups of `per_key` session slots.
    sessions: Box<[Session<A>]>,
    /// Open sessions per key.
    open: Box<[u16]>,
    /// Open sessions (by slot) due where they fire (not fired) or free (fired).
    due: DueHeap,
    /// Scratch: (start, key, slot) of sessions to fire.
    ready: Box<[(Ts, u32, u16)]>,
    wm: Option<Ts>,
    fired_wm: Option<Ts>,
    ledger: LateLedger,
}

impl<A: Aggregate> fmt::Debug for SessionWindows<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionWindows")
            .field("cfg", &self.cfg)
            .field("keys", &self.keys)
            .field("open_sessions", &self.due.len())
            .field("watermark", &self.wm)
            .field("ledger", &self.ledger)
            .finish_non_exhaustive()
    }
}

impl<A: Aggregate> SessionWindows<A> {
    /// Builds the operator for `keys` dense keys, allocating all of its state.
    ///
    /// # Errors
    /// [`WindowError::ZeroGap`], [`WindowError::BadSessionSlots`], [`WindowError::BadKeyCount`],
    /// [`WindowError::TooLarge`] when the state does not fit in memory.
    pub fn new(cfg: SessionConfig, keys: usize) -> Result<Self, WindowError> {
        if cfg.gap == 0 {
            return Err(WindowError::ZeroGap);
        }
        let per_key = cfg.max_sessions_per_key;
        if per_key == 0 || per_key > usize::from(u16::MAX) {
            return Err(WindowError::BadSessionSlots { sessions: per_key });
        }
        check_keys(keys)?;
        let total = keys.checked_mul(per_key).ok_or(WindowError::TooLarge)?;
        let free = Session {
            start: 0,
            last: 0,
            agg: A::empty(),
            open: false,
            fired: false,
            refire: false,
        };
        Ok(Self {
            cfg,
            keys,
            per_key,
            sessions: vec![free; total].into_boxed_slice(),
            open: vec![0; keys].into_boxed_slice(),
            due: DueHeap::new(total),
            ready: vec![(0, 0, 0); total].into_boxed_slice(),
            wm: None,
            fired_wm: None,
            ledger: LateLedger::default(),
        })
    }

    /// Adds one event of `key` at `ts`; `wm` is the current watermark (`None` before any).
    ///
    /// Returns [`Added::OnTime`]; [`Added::Late`] when the event went into an already-fired
    /// session (a [`FiringKind::Late`] firing is emitted now, or by a later `advance` if the
    /// session now ends after the last `advance` watermark) or into a new session that ends at
    /// or before it (fired late at once); [`Added::Dropped`] when its merged session is past the
    /// allowed lateness; [`Added::Overflow`] when it would open a session and all of its key's
    /// slots are open, or the key is out of range. O(sessions per key); never allocates.
    pub fn add(
        &mut self,
        key: u32,
        ts: Ts,
        x: &A::Input,
        wm: Option<Ts>,
        out: &mut impl FnMut(&Firing<A>),
    ) -> Added {
        if let Some(w) = wm {
            self.wm = self.wm.max(Some(w));
        }
        let k = key as usize;
        if k >= self.keys {
            self.ledger.out_of_range += 1;
            return Added::Overflow;
        }
        let gap = self.cfg.gap;
        let ev_end = ts.saturating_add(gap);
        let overlaps =
            |s: &Session<A>| s.open && ts < s.last.saturating_add(gap) && s.start < ev_end;
        let group = &mut self.sessions[k * self.per_key..(k + 1) * self.per_key];

        // Pass 1: the merged extent, without changing anything.
        let (mut start, mut last) = (ts, ts);
        let (mut target, mut free, mut any_fired) = (None, None, false);
        for (j, s) in group.iter().enumerate() {
            if overlaps(s) {
                start = start.min(s.start);
                last = last.max(s.last);
                any_fired |= s.fired || s.refire;
                target.get_or_insert(j);
            } else if !s.open {
                free.get_or_insert(j);
            }
        }
        let end = last.saturating_add(gap);
        if let Some(w) = self.wm {
            if (end - 1).saturating_add(self.cfg.allowed_lateness) <= w {
                self.ledger.record_drop(w.saturating_sub(ts));
                return Added::Dropped;
            }
        }

        // Pass 2: merge into the first overlapping slot, or open a free one.
        let j = match (target, free) {
            (Some(j), _) => {
                let mut agg = group[j].agg;
                for (i, s) in group.iter_mut().enumerate().skip(j + 1) {
                    if overlaps(s) {
                        agg.merge(&s.agg);
                        s.open = false;
                        self.open[k] -= 1;
                        self.due.remove((k * self.per_key + i) as u32);
                    }
                }
                group[j].agg = agg;
                j
            }
            (None, Some(j)) => {
                group[j].agg = A::empty();
                group[j].open = true;
                self.open[k] += 1;
                j
            }
            (None, None) => {
                self.ledger.overflow += 1;
                return Added::Overflow;
            }
        };
        let s = &mut group[j];
        s.start = start;
        s.last = last;
        s.agg.add(x, ts);
        let (lateness, id) = (self.cfg.allowed_lateness, (k * self.per_key + j) as u32);

        if self.fired_wm.is_some_and(|f| end - 1 <= f) {
            // Ends at or before the last advance: emit the updated result now.
            s.fired = true;
            s.refire = false;
            self.due.set(id, (end - 1).saturating_add(lateness));
            let firing = Firing {
                key,
                start,
                end,
                agg: s.agg,
                kind: FiringKind::Late,
            };
            self.ledger.late_accepted += 1;
            self.ledger.late_firings += 1;
            out(&firing);
            return Added::Late;
        }
        s.fired = false;
        s.refire = any_fired;
        self.due.set(id, end - 1);
        if self.cfg.emit == Emit::OnUpdate {
            out(&Firing {
                key,
                start,
                end,
                agg: s.agg,
                kind: FiringKind::Update,
            });
        }
        if any_fired {
            self.ledger.late_accepted += 1;
            Added::Late
        } else {
            Added::OnTime
        }
    }

    /// Raises the watermark to `wm` (never lowers it), fires every session with
    /// `end - 1 <= wm` not yet fired at its current extent, in (start, key) order
    /// ([`FiringKind::OnTime`], or `Late` for a re-firing), then frees sessions with
    /// `end - 1 + allowed_lateness <= wm`. Visits only the sessions due; never allocates.
    pub fn advance(&mut self, wm: Ts, out: &mut impl FnMut(&Firing<A>)) {
        let w = self.wm.max(Some(wm)).unwrap_or(wm);
        self.wm = Some(w);
        self.fired_wm = Some(w);
        let (gap, lateness) = (self.cfg.gap, self.cfg.allowed_lateness);
        let per_key = self.per_key;
        // Take what is due: fired sessions past their lateness are freed, the rest fire.
        let mut count = 0;
        while let Some((_, id)) = self.due.peek().filter(|&(at, _)| at <= w) {
            self.due.remove(id);
            let (key, j) = (id as usize / per_key, id as usize % per_key);
            let s = &mut self.sessions[id as usize];
            if s.fired {
                s.open = false;
                self.open[key] -= 1;
            } else {
                self.ready[count] = (s.start, key as u32, j as u16);
                count += 1;
            }
        }
        self.ready[..count].sort_unstable();
        for &(start, key, j) in &self.ready[..count] {
            let id = key as usize * per_key + j as usize;
            let s = &mut self.sessions[id];
            let kind = if s.refire {
                self.ledger.late_firings += 1;
                FiringKind::Late
            } else {
                FiringKind::OnTime
            };
            s.fired = true;
            s.refire = false;
            let end = s.last.saturating_add(gap);
            out(&Firing {
                key,
                start,
                end,
                agg: s.agg,
                kind,
            });
            // Fired: next due where it frees.
            let free = (end - 1).saturating_add(lateness);
            if free <= w {
                s.open = false;
                self.open[key as usize] -= 1;
            } else {
                self.due.set(id as u32, free);
            }
        }
    }

    /// The operator's watermark (the maximum it has been given).
    pub fn watermark(&self) -> Option<Ts> {
        self.wm
    }

    /// Session slots per key.
    pub fn sessions_per_key(&self) -> usize {
        self.per_key
    }

    /// Dropped, late and overflowed event counts.
    pub fn ledger(&self) -> &LateLedger {
        &self.ledger
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.cfg
    }

    /// Open sessions of `key` (0 when out of range).
    pub fn open_sessions(&self, key: u32) -> usize {
        self.open.get(key as usize).map_or(0, |&n| usize::from(n))
    }
}
