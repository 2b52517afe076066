//! Marks: the reader's watermarks, broadcast to every shard at the same feed positions, and the
//! frontier an idle shard reads to tell the output how far the feed has gone.
//!
//! A run has up to [`MAX_CLOCKS`] mark [`Clock`]s (e.g. a windowed job's window ends and a
//! detector's periodic timers): each is a [`MarkGen`] schedule, and its marks carry its number,
//! so two jobs in one run see exactly the marks each would see alone.

use std::sync::atomic::{AtomicU64, Ordering};

/// The most mark clocks one run can have.
pub const MAX_CLOCKS: usize = 4;

/// An event's origin when it is not timed (sent during a paced replay's fast-forward, or a mark).
pub const UNTIMED: u64 = 0;

/// How far the reader has published the feed: every event and mark numbered below the
/// announced position is in its ring. An idle worker that reads the frontier and then finds its
/// ring empty knows that its next event comes at or after it — so it can tell the output's merge
/// so at once, instead of at the next mark (which at a paced replay may be a second away).
#[derive(Debug, Default)]
pub struct Frontier(crossbeam_utils::CachePadded<AtomicU64>);

impl Frontier {
    /// Every event numbered below `seq` (wrapping `u32` feed positions) is published.
    #[inline]
    pub fn announce(&self, seq: u32) {
        // Release: pairs with the Acquire in `load`; the rings' tail stores (each Release, in
        // `publish`) come before it in program order, so a worker that sees `seq` and then
        // loads its ring's tail sees every event below `seq` that is its own.
        self.0.store(seq as u64 | 1 << 32, Ordering::Release);
    }

    /// The announced position, or `None` before the first announcement.
    #[inline]
    pub fn load(&self) -> Option<u32> {
        // Acquire: pairs with the Release in `announce`.
        let v = self.0.load(Ordering::Acquire);
        (v >> 32 != 0).then_some(v as u32)
    }
}

/// One mark clock of a run: its schedule, and the window size its final marks must close
/// (0 for a periodic clock).
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// The schedule.
    pub gen: MarkGen,
    /// Window size, ns: after the last event, marks continue until every window has closed.
    pub size: u64,
}

/// The reader's watermark and mark schedule.
#[derive(Clone, Copy, Debug)]
pub struct MarkGen {
    slide: u64,
    offset: u64,
    ooo: u64,
    every: u32,
    max_ts: Option<u64>,
    /// The next window end − 1 to announce.
    next_step: u64,
    since: u32,
    /// Marks sent.
    pub sent: u64,
    /// The last watermark sent.
    pub last: Option<u64>,
}

impl MarkGen {
    /// A schedule for windows ending every `slide` ns from `offset`, with `ooo` ns of
    /// out-of-orderness, and a mark at least every `every` messages.
    pub fn windows(slide: u64, offset: u64, ooo: u64, every: u32) -> MarkGen {
        MarkGen {
            slide: slide.max(1),
            offset,
            ooo,
            every: every.max(1),
            max_ts: None,
            next_step: 0,
            since: 0,
            sent: 0,
            last: None,
        }
    }

    /// A mark wherever the watermark (with `ooo` ns of out-of-orderness) rises, before the
    /// message that raises it: for operators whose windows close at times of their own (per-key
    /// sessions), which only every rise of the watermark can tell.
    pub fn advances(ooo: u64) -> MarkGen {
        MarkGen {
            ooo,
            ..MarkGen::periodic(1)
        }
    }

    /// A schedule with no windows: a mark every `every` messages only (surveillance timers and
    /// the output's merge), then two final marks at the end.
    pub fn periodic(every: u32) -> MarkGen {
        MarkGen {
            slide: u64::MAX,
            offset: 0,
            ooo: 0,
            every: every.max(1),
            max_ts: None,
            next_step: u64::MAX - 1,
            since: 0,
            sent: 0,
            last: None,
        }
    }

    /// The feed's watermark once `ts` is seen: no later message should be stamped at or before
    /// it.
    fn watermark(max_ts: u64, ooo: u64) -> Option<u64> {
        max_ts.checked_sub(ooo + 1)
    }

    /// The next mark due before the message stamped `ts` (call until `None`, sending each and
    /// calling [`MarkGen::sent_mark`]), or `None` when the message can go.
    #[inline]
    pub fn due(&self, ts: u64) -> Option<u64> {
        let max = self.max_ts.map_or(ts, |m| m.max(ts));
        let wm = Self::watermark(max, self.ooo)?;
        if self.max_ts.is_some() && wm >= self.next_step {
            return Some(self.next_step);
        }
        if self.since >= self.every && self.last.map_or(true, |l| wm > l) {
            return Some(wm);
        }
        None
    }

    /// A mark with watermark `wm` was sent.
    #[inline]
    pub fn sent_mark(&mut self, wm: u64) {
        if wm >= self.next_step && self.max_ts.is_some() {
            self.next_step = self.step_after(wm);
        }
        self.last = Some(wm);
        self.since = 0;
        self.sent += 1;
    }

    /// The first window end − 1 after `wm`.
    fn step_after(&self, wm: u64) -> u64 {
        // Window ends are offset + k·slide (offset < slide); the step is end − 1.
        if wm.saturating_add(1) < self.offset {
            return self.offset - 1;
        }
        let base = wm.saturating_add(1) - self.offset;
        let k = base / self.slide + 1;
        self.offset
            .saturating_add(k.saturating_mul(self.slide))
            .saturating_sub(1)
    }

    /// The message stamped `ts` was sent.
    #[inline]
    pub fn sent_message(&mut self, ts: u64) {
        if self.max_ts.is_none() {
            // The first step is the end of the first window holding the first message.
            self.next_step = if ts == 0 {
                self.step_after(0).min(self.offset.wrapping_sub(1))
            } else {
                self.step_after(ts - 1)
            };
        }
        self.max_ts = Some(self.max_ts.map_or(ts, |m| m.max(ts)));
        self.since += 1;
    }

    /// Marks to close every window after the last message, then the final mark (`u64::MAX`):
    /// the next one to send, or `None` when all are sent.
    pub fn final_due(&self, size: u64) -> Option<u64> {
        let max = self.max_ts?;
        if self.last == Some(u64::MAX) {
            return None;
        }
        let last_end = max.saturating_add(size).saturating_add(self.slide);
        if self.next_step <= last_end && self.last.map_or(true, |l| l < self.next_step) {
            Some(self.next_step)
        } else {
            Some(u64::MAX)
        }
    }
}
