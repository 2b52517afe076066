//! The reader stage: reads the source, stamps each item, inserts the marks, and routes each
//! item to its shard's ring (or to every ring).

use super::cut::{Checkpoints, ReaderCut, CKPT_FLAG, STOP_FLAG};
use super::marks::{Clock, Frontier, UNTIMED};
use super::source::{Route, Source};
use super::stage::{Progress, Stage};
use super::{Backpressure, Event, RingCounters, Sampler};
use crate::clock::{ticks, TickScale};
use crate::ring::Producer;
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Items a reader handles per [`Stage::do_work`] call before publishing.
pub const BATCH: usize = 1024;

/// Replay pacing: maps the source's event times onto the TSC.
#[derive(Clone, Copy, Debug)]
pub struct Pacer {
    speed: f64,
    scale: TickScale,
    /// Items stamped before this are sent as fast as possible and not timed: the fast-forward
    /// to the part of the day being replayed.
    from: u64,
    /// (event time, TSC ticks) of the first paced item.
    start: Option<(u64, u64)>,
}

impl Pacer {
    /// Paced at `speed` × the source's own rate (> 0) from event time `from` on.
    pub fn new(speed: f64, from: u64, scale: TickScale) -> Pacer {
        Pacer {
            speed,
            scale,
            from,
            start: None,
        }
    }

    /// When the item stamped `ts` is due, in ticks (`None`: before `from`, send now, untimed).
    /// The first paced item is due `now`; a later timestamp before it is due at the start.
    #[inline]
    fn due(&mut self, ts: u64, now: u64) -> Option<u64> {
        if ts < self.from && self.start.is_none() {
            return None;
        }
        let (ts0, t0) = *self.start.get_or_insert((ts, now));
        let feed_ns = ts.saturating_sub(ts0) as f64 / self.speed;
        Some(t0.wrapping_add(self.scale.to_ticks(feed_ns as u64)))
    }
}

/// How the reader is told to stop, and where it reports how far it got.
#[derive(Clone, Copy, Debug)]
pub struct Control<'a> {
    /// Set to end the feed early (Ctrl-C, or another thread failed).
    pub stop: &'a AtomicBool,
    /// Items read so far (for a progress display).
    pub progress: &'a AtomicU64,
}

/// The reader's settings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReaderOptions {
    pub policy: Backpressure,
    pub pacer: Option<Pacer>,
    pub scale: TickScale,
    pub stages: Sampler,
    pub until: u64,
}

/// The reader stage.
#[derive(Debug)]
pub struct Reader<'a, S: Source> {
    /// The source (handed back after the run, with its own counters).
    pub source: S,
    /// The current item is read but not yet sent (its ring was full, or it is not due yet),
    /// with its read time.
    pending: Option<u64>,
    outs: Vec<Producer<S::Event>>,
    /// Per output ring.
    pub counters: Vec<RingCounters>,
    opts: ReaderOptions,
    ctl: Control<'a>,
    seq: u32,
    last_ts: u64,
    /// Items sent (each counted once, however many rings it went to).
    pub messages: u64,
    /// The feed stopped at an item stamped after `until`.
    pub stopped_at_until: bool,
    /// Items whose event time is earlier than the one before (still sent, in feed order).
    pub out_of_order_ts: u64,
    /// Reader work per item, ns: from reading it to reading the next, or to the end of the
    /// batch; a wait for ring room under `block` is included.
    pub latency: Histogram<u64>,
    /// TSC read time of the last staged item timed stage by stage whose reader time is still
    /// open (0: none).
    open: u64,
    clocks: Vec<Clock>,
    /// Marks sent per clock (each to every ring).
    pub marks_sent: Vec<u64>,
    /// The feed has ended (the final marks may still be waiting for room).
    finishing: bool,
    frontier: Option<Arc<Frontier>>,
    /// The error that ended the feed early, if any.
    pub error: Option<S::Error>,
    /// Stopped by the stop flag before the end of the feed.
    pub interrupted: bool,
    done: bool,
    /// Checkpoints (`None`: none), the next one's number, and where the last was flagged
    /// (items sent, event time).
    ckpt: Option<Checkpoints>,
    next_ckpt: u64,
    since: (u64, Option<u64>),
}

impl<'a, S: Source> Reader<'a, S> {
    pub(crate) fn new(
        source: S,
        outs: Vec<Producer<S::Event>>,
        opts: ReaderOptions,
        clocks: Vec<Clock>,
        frontier: Option<Arc<Frontier>>,
        ctl: Control<'a>,
    ) -> Self {
        let counters = outs
            .iter()
            .map(|p| RingCounters::new(p.capacity()))
            .collect();
        Reader {
            source,
            pending: None,
            outs,
            counters,
            opts,
            ctl,
            seq: 0,
            last_ts: 0,
            messages: 0,
            stopped_at_until: false,
            out_of_order_ts: 0,
            latency: crate::latency::histogram(),
            open: 0,
            marks_sent: vec![0; clocks.len()],
            clocks,
            finishing: false,
            frontier,
            error: None,
            interrupted: false,
            done: false,
            ckpt: None,
            next_ckpt: 1,
            since: (0, None),
        }
    }

    /// Takes checkpoints as `c` says, starting at its cut when it resumes one (the source is
    /// positioned there).
    pub(crate) fn checkpoint(&mut self, c: Checkpoints) {
        if let Some(cut) = &c.resume {
            self.seq = cut.seq;
            self.messages = cut.messages;
            self.last_ts = cut.last_ts;
            self.out_of_order_ts = cut.out_of_order_ts;
            for (m, (clock, (sent, gen))) in self.marks_sent.iter_mut().zip(
                self.clocks
                    .iter_mut()
                    .zip(cut.marks_sent.iter().zip(&cut.gens)),
            ) {
                *m = *sent;
                clock.gen = *gen;
            }
            self.next_ckpt = cut.n + 1;
            self.since = (cut.since_messages, cut.since_ts);
            for (k, r) in self.counters.iter_mut().zip(&cut.rings) {
                (k.pushed, k.dropped, k.full) = (r.pushed, r.dropped, r.full);
            }
        }
        self.ckpt = Some(c);
    }

    /// Whether a mark of clock `c` before an item stamped `ts` is a checkpoint.
    fn ckpt_due(&mut self, c: usize, ts: u64) -> bool {
        let Some(k) = &self.ckpt else { return false };
        k.clock as usize == c && k.due(self.messages, ts, (self.since.0, &mut self.since.1))
    }

    /// The cut after a checkpoint mark at event time `ts`: the reader's state, handed over.
    fn cut(&mut self, ts: u64) {
        self.since = (self.messages, Some(ts));
        let cut = ReaderCut {
            n: self.next_ckpt,
            seq: self.seq,
            messages: self.messages,
            last_ts: self.last_ts,
            out_of_order_ts: self.out_of_order_ts,
            marks_sent: self.marks_sent.clone(),
            gens: self.clocks.iter().map(|c| c.gen).collect(),
            source: self.source.checkpoint(),
            since_messages: self.since.0,
            since_ts: self.since.1,
            rings: self.counters.clone(),
        };
        self.next_ckpt += 1;
        if let Some(k) = &self.ckpt {
            (k.on_cut)(&cut);
        }
    }

    /// Whether every ring has a free slot (for an item that goes to all of them); if not, a
    /// full-ring wait is counted on each.
    fn every_ring_has_room(&mut self) -> bool {
        if self.outs.iter_mut().any(|o| o.free_slots() == 0) {
            for c in &mut self.counters {
                c.full += 1;
            }
            return false;
        }
        true
    }

    /// Sends a mark of clock `c` with watermark `wm` to every ring, whatever the backpressure
    /// policy (a dropped mark would desynchronise the shards); false when some ring is full.
    fn send_mark(&mut self, c: usize, wm: u64, flag: u8) -> bool {
        if !self.every_ring_has_room() {
            return false;
        }
        let seq = self.seq;
        let clock = c as u8 | flag;
        for (o, n) in self.outs.iter_mut().zip(&mut self.counters) {
            let staged = o.stage_with(|ev: &mut S::Event| ev.set_mark(wm, clock, seq));
            debug_assert!(staged, "room was checked");
            n.pushed += staged as u64;
        }
        self.marks_sent[c] += 1;
        self.clocks[c].gen.sent_mark(wm);
        true
    }

    /// Sends every mark due before an item stamped `ts`; false when a ring ran out of room.
    fn send_due_marks(&mut self, ts: u64) -> bool {
        for c in 0..self.clocks.len() {
            while let Some(wm) = self.clocks[c].gen.due(ts) {
                // Checked (rarely true) only when a mark is due: every `mark_every` items.
                let ckpt = self.ckpt_due(c, ts);
                if !self.send_mark(c, wm, if ckpt { CKPT_FLAG } else { 0 }) {
                    return false;
                }
                if ckpt {
                    self.cut(ts);
                }
            }
        }
        true
    }

    /// Ends the reader stage of the last staged item (read at `self.open`) at `now`.
    #[inline(always)]
    fn close(&mut self, now: u64) {
        if self.open != 0 {
            self.latency
                .saturating_record(self.opts.scale.between(self.open, now));
            self.open = 0;
        }
    }

    fn publish(&mut self) {
        for o in &mut self.outs {
            o.publish();
        }
        if let Some(f) = &self.frontier {
            f.announce(self.seq);
        }
    }

    /// End of feed: send the final marks (closing every window), publish what is staged and
    /// close the rings, so the shards drain and stop. `Worked` while final marks wait for room.
    fn finish(&mut self) -> Progress {
        self.finishing = true;
        let flag = if self.interrupted { STOP_FLAG } else { 0 };
        for c in 0..self.clocks.len() {
            while let Some(wm) = self.clocks[c].gen.final_due(self.clocks[c].size) {
                if !self.send_mark(c, wm, flag) {
                    self.publish();
                    return Progress::Worked;
                }
            }
        }
        self.close(ticks());
        self.publish();
        for o in &mut self.outs {
            o.close();
        }
        // Relaxed: a progress gauge, ordering nothing.
        self.ctl.progress.store(self.messages, Ordering::Relaxed);
        self.done = true;
        Progress::Done
    }

    /// Sends the current item to ring `i`, building it in the ring slot; false when the ring is
    /// full under the block policy (nothing sent).
    #[inline(always)]
    fn send(&mut self, i: usize, origin: u64) -> bool {
        let seq = self.seq;
        let src = &self.source;
        let staged = self.outs[i].stage_with(|ev: &mut S::Event| {
            src.write(ev);
            ev.set_header(origin, seq);
        });
        if staged {
            self.counters[i].pushed += 1;
            return true;
        }
        match self.opts.policy {
            Backpressure::Block => {
                self.counters[i].full += 1;
                false
            }
            Backpressure::Drop => {
                self.counters[i].dropped += 1;
                true
            }
        }
    }

    /// Sends the current item where it goes; false if it must wait for room.
    #[inline(always)]
    fn route(&mut self, origin: u64) -> bool {
        let shards = self.outs.len();
        match self.source.route(shards) {
            Route::All if shards > 1 => {
                // Under the block policy only when every ring has room, so none gets it twice.
                if self.opts.policy == Backpressure::Block && !self.every_ring_has_room() {
                    return false;
                }
                (0..shards).all(|i| self.send(i, origin))
            }
            Route::All => self.send(0, origin),
            Route::One(i) => self.send(i % shards, origin),
        }
    }

    /// The origin and reader start of the current item stamped `ts`, read at `read`; `None`
    /// when it is not due yet.
    #[inline(always)]
    fn pace(&mut self, ts: u64, read: u64) -> Option<(u64, u64)> {
        let Some(p) = &mut self.opts.pacer else {
            // An arrival stamp from another clock could be a little ahead of the read.
            let origin = self.source.arrival().map_or(read, |a| a.min(read));
            return Some((origin, read));
        };
        if p.start.is_none()
            && ts >= p.from
            && self.outs.iter_mut().any(|o| o.free_slots() < o.capacity())
        {
            // The first paced item waits until the fast-forward has drained, so that paced
            // events do not queue behind it.
            return None;
        }
        let now = ticks();
        match p.due(ts, now) {
            // Not due yet.
            Some(due) if (now.wrapping_sub(due) as i64) < 0 => None,
            // Due: its latency starts at `due`; the reader's own work at `now`.
            Some(due) => Some((due, now)),
            None => Some((UNTIMED, read)),
        }
    }
}

impl<S: Source> Stage for Reader<'_, S> {
    fn do_work(&mut self) -> Progress {
        if self.done {
            return Progress::Done;
        }
        if self.finishing {
            return self.finish();
        }
        // Relaxed: a request to stop soon, ordering nothing else.
        if self.ctl.stop.load(Ordering::Relaxed) {
            self.interrupted = true;
            return self.finish();
        }
        let mut worked = false;
        for _ in 0..BATCH {
            let read = match self.pending.take() {
                Some(read) => read,
                None => match self.source.advance() {
                    // Nothing yet from a live source: yield, ask again on the next call.
                    None if !self.source.ended() => break,
                    None => return self.finish(),
                    Some(Err(e)) => {
                        self.error = Some(e);
                        return self.finish();
                    }
                    Some(Ok(())) => {
                        // One TSC read per item: it stamps this one and ends the previous.
                        let t = ticks();
                        self.close(t);
                        worked = true;
                        t
                    }
                },
            };
            let ts = self.source.time();
            if ts > self.opts.until {
                self.stopped_at_until = true;
                return self.finish();
            }
            let Some((origin, read)) = self.pace(ts, read) else {
                self.pending = Some(read);
                break;
            };
            // Every mark due before this item goes first, to every shard.
            if !self.send_due_marks(ts) || !self.route(origin) {
                self.pending = Some(read);
                break;
            }
            worked = true;
            if ts < self.last_ts {
                self.out_of_order_ts += 1;
            }
            self.last_ts = ts;
            for c in &mut self.clocks {
                c.gen.sent_message(ts);
            }
            if origin != UNTIMED && self.opts.stages.hit(self.seq) {
                self.open = read;
            }
            self.seq = self.seq.wrapping_add(1);
            self.messages += 1;
        }
        self.close(ticks());
        self.publish();
        // Relaxed: a progress gauge for the display thread, ordering nothing.
        self.ctl.progress.store(self.messages, Ordering::Relaxed);
        if worked {
            Progress::Worked
        } else {
            Progress::Idle
        }
    }
}
