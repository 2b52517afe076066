//! The feed stage: frames and validates each message, stamps it, and routes it by stock locate
//! to its shard worker's ring.

use super::bars::{mark_event, MarkGen};
use super::event::{Event, BODY};
use super::{Backpressure, Progress, RingCounters, Stage};
use crate::clock::{ticks, TickScale};
use crate::feed::{Frame, Frames};
use crate::inspect::InspectError;
use crate::itch::{decode, DecodeErrorKind};
use crate::ring::Producer;
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Messages a reader handles per [`Stage::do_work`] call before publishing.
pub const BATCH: usize = 1024;

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

/// [`Event::origin`] of an event that is not timed (sent during a paced replay's fast-forward).
pub const UNTIMED: u64 = 0;

/// Which part of the feed to send, and how strictly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeedOptions {
    /// Stop before the first message stamped after this (ns since midnight).
    pub until: Option<u64>,
    /// Count and skip known types with a wrong length instead of stopping.
    pub lenient: bool,
}

/// Replay pacing: maps the feed's timestamps onto the TSC.
#[derive(Clone, Copy, Debug)]
pub struct Pacer {
    speed: f64,
    scale: TickScale,
    /// Messages stamped before this (ns since midnight) are sent as fast as possible and not
    /// timed: the fast-forward to the part of the day being replayed.
    from: u64,
    /// (feed timestamp, TSC ticks) of the first paced message.
    start: Option<(u64, u64)>,
}

impl Pacer {
    /// Paced at `speed` × the feed's own rate (> 0) from feed time `from` on.
    pub fn new(speed: f64, from: u64, scale: TickScale) -> Pacer {
        Pacer {
            speed,
            scale,
            from,
            start: None,
        }
    }

    /// When the message stamped `ts` is due, in ticks (`None`: before `from`, send now,
    /// untimed). The first paced message is due `now`; a later timestamp before it is due at
    /// the start.
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

/// The reader stage.
#[derive(Debug)]
pub struct Reader<'a> {
    frames: Frames<'a>,
    /// A frame read but not yet sent (its ring was full, or it is not due yet), with its read time.
    pending: Option<(Frame<'a>, u64)>,
    outs: Vec<Producer<Event>>,
    /// Per output ring.
    pub counters: Vec<RingCounters>,
    policy: Backpressure,
    pacer: Option<Pacer>,
    scale: TickScale,
    stop: &'a AtomicBool,
    progress: &'a AtomicU64,
    seq: u32,
    last_ts: u64,
    /// Messages decoded (each counted once, however many rings it went to).
    pub messages: u64,
    /// Frames of a type ITCH 5.0 does not define: counted and skipped.
    pub skipped_unknown: u64,
    /// Known types with a wrong length, counted and skipped (lenient mode only).
    pub skipped_bad_lengths: u64,
    /// The feed stopped at a message stamped after `until`.
    pub stopped_at_until: bool,
    lenient: bool,
    until: u64,
    /// Messages whose timestamp is earlier than the one before (still sent, in file order).
    pub out_of_order_ts: u64,
    /// Reader work per message, ns: from reading it (framing, validation, stamping) to reading
    /// the next, or to the end of the batch; a wait for ring room under `block` is included.
    pub latency: Histogram<u64>,
    /// TSC read time of the last staged, timed message whose reader time is still open (0: none).
    open: u64,
    /// Record the reader stage's own latency (off with `--timing e2e`: the reader still stamps
    /// every event's origin, so end to end stays timed on every event).
    stage_timing: bool,
    /// Watermark marks for windowed jobs (and the window size, to close the last windows).
    marks: Option<(MarkGen, u64)>,
    /// Marks sent (each to every ring).
    pub marks_sent: u64,
    /// The feed has ended (the final marks may still be waiting for room).
    finishing: bool,
    /// Where the feed position published so far is announced (see [`Frontier`]).
    frontier: Option<Arc<Frontier>>,
    /// The error that ended the feed early, if any.
    pub error: Option<InspectError>,
    /// Stopped by the stop flag (Ctrl-C) before the end of the file.
    pub interrupted: bool,
    done: bool,
}

impl<'a> Reader<'a> {
    /// A reader of `buf` sending to `outs` (one ring per shard, shard = locate mod `outs.len()`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        buf: &'a [u8],
        feed: FeedOptions,
        outs: Vec<Producer<Event>>,
        policy: Backpressure,
        pacer: Option<Pacer>,
        scale: TickScale,
        stage_timing: bool,
        stop: &'a AtomicBool,
        progress: &'a AtomicU64,
    ) -> Reader<'a> {
        let counters = outs
            .iter()
            .map(|p| RingCounters::new(p.capacity()))
            .collect();
        Reader {
            frames: Frames::new(buf),
            pending: None,
            outs,
            counters,
            policy,
            pacer,
            scale,
            stop,
            progress,
            seq: 0,
            last_ts: 0,
            messages: 0,
            skipped_unknown: 0,
            skipped_bad_lengths: 0,
            stopped_at_until: false,
            lenient: feed.lenient,
            until: feed.until.unwrap_or(u64::MAX),
            out_of_order_ts: 0,
            latency: crate::latency::histogram(),
            open: 0,
            stage_timing,
            marks: None,
            marks_sent: 0,
            finishing: false,
            frontier: None,
            error: None,
            interrupted: false,
            done: false,
        }
    }

    /// Sends watermark marks from `gen` to every worker (windows of `size` ns).
    pub fn with_marks(mut self, gen: MarkGen, size: u64) -> Self {
        self.marks = Some((gen, size));
        self
    }

    /// Announces on `f` how far the feed has been published (for idle workers' progress).
    pub fn with_frontier(mut self, f: Arc<Frontier>) -> Self {
        self.frontier = Some(f);
        self
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

    /// Sends a mark with watermark `wm` to every ring, whatever the backpressure policy (a
    /// dropped mark would desynchronise the workers' windows); false when some ring is full.
    fn send_mark(&mut self, wm: u64) -> bool {
        if !self.every_ring_has_room() {
            return false;
        }
        let seq = self.seq;
        for (o, c) in self.outs.iter_mut().zip(&mut self.counters) {
            let staged = o.stage_with(|ev: &mut Event| {
                mark_event(ev, wm);
                ev.seq = seq;
            });
            debug_assert!(staged, "room was checked");
            c.pushed += staged as u64;
        }
        self.marks_sent += 1;
        true
    }

    /// Ends the reader stage of the last staged message (read at `self.open`) at `now`.
    #[inline(always)]
    fn close(&mut self, now: u64) {
        if self.open != 0 {
            if self.stage_timing {
                self.latency
                    .saturating_record(self.scale.between(self.open, now));
            }
            self.open = 0;
        }
    }

    /// End of feed: send the final marks (closing every window), publish what is staged and
    /// close the rings, so the workers drain and stop. `Worked` while final marks wait for room.
    fn finish(&mut self) -> Progress {
        self.finishing = true;
        while let Some((gen, size)) = self.marks {
            let Some(wm) = gen.final_due(size) else { break };
            if !self.send_mark(wm) {
                for o in &mut self.outs {
                    o.publish();
                }
                return Progress::Worked;
            }
            if let Some((g, _)) = &mut self.marks {
                g.sent_mark(wm);
            }
        }
        self.close(ticks());
        for o in &mut self.outs {
            o.close();
        }
        self.progress.store(self.messages, Ordering::Relaxed);
        self.done = true;
        Progress::Done
    }

    /// Sends the message `body` to ring `i`, building its event in the ring slot; false when
    /// the ring is full under the block policy (nothing sent).
    #[inline(always)]
    fn send(&mut self, i: usize, origin: u64, body: &[u8]) -> bool {
        let seq = self.seq;
        let n = body.len().min(BODY);
        let staged = self.outs[i].stage_with(|ev: &mut Event| {
            ev.origin = origin;
            ev.seq = seq;
            ev.body[..n].copy_from_slice(&body[..n]);
            ev.body[n..].fill(0);
        });
        if staged {
            self.counters[i].pushed += 1;
            true
        } else {
            match self.policy {
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
    }
}

impl Stage for Reader<'_> {
    fn do_work(&mut self) -> Progress {
        if self.done {
            return Progress::Done;
        }
        if self.finishing {
            return self.finish();
        }
        // Relaxed: a request to stop soon, ordering nothing else.
        if self.stop.load(Ordering::Relaxed) {
            self.interrupted = true;
            return self.finish();
        }
        let mut worked = false;
        for _ in 0..BATCH {
            let (frame, read) = match self.pending.take() {
                Some(p) => p,
                None => match self.frames.next() {
                    None => return self.finish(),
                    Some(Err(e)) => {
                        self.error = Some(e.into());
                        return self.finish();
                    }
                    Some(Ok(f)) => {
                        // One TSC read per message: it stamps this one and ends the previous.
                        let t = ticks();
                        self.close(t);
                        (f, t)
                    }
                },
            };
            let m = match decode(frame.body, frame.offset) {
                Ok(m) => m,
                Err(e) if matches!(e.kind, DecodeErrorKind::UnknownType(_)) => {
                    self.skipped_unknown += 1;
                    worked = true;
                    continue;
                }
                Err(_) if self.lenient => {
                    self.skipped_bad_lengths += 1;
                    worked = true;
                    continue;
                }
                Err(e) => {
                    self.error = Some(e.into());
                    return self.finish();
                }
            };
            let ts = m.timestamp();
            if ts > self.until {
                self.stopped_at_until = true;
                return self.finish();
            }
            let (origin, read) = match &mut self.pacer {
                Some(p) => {
                    if p.start.is_none()
                        && ts >= p.from
                        && self.outs.iter_mut().any(|o| o.free_slots() < o.capacity())
                    {
                        // The first paced message waits until the fast-forward has drained, so
                        // that paced events do not queue behind it.
                        self.pending = Some((frame, read));
                        break;
                    }
                    let now = ticks();
                    match p.due(ts, now) {
                        Some(due) => {
                            if (now.wrapping_sub(due) as i64) < 0 {
                                self.pending = Some((frame, read));
                                break;
                            }
                            // Due: its latency starts at `due`; the reader's own work at `now`.
                            (due, now)
                        }
                        None => (UNTIMED, read),
                    }
                }
                None => (read, read),
            };
            if let Some((mut g, size)) = self.marks {
                // Every mark due before this message goes first, to every worker.
                let mut blocked = false;
                while let Some(wm) = g.due(ts) {
                    if !self.send_mark(wm) {
                        blocked = true;
                        break;
                    }
                    g.sent_mark(wm);
                }
                self.marks = Some((g, size));
                if blocked {
                    self.pending = Some((frame, read));
                    break;
                }
            }
            let locate = m.stock_locate();
            let shards = self.outs.len();
            let sent = if locate == 0 && shards > 1 {
                // Market-wide messages (system events, MWCB) go to every shard; under the block
                // policy only when every ring has room, so none gets it twice.
                if self.policy == Backpressure::Block && !self.every_ring_has_room() {
                    false
                } else {
                    (0..shards).all(|i| self.send(i, origin, frame.body))
                }
            } else {
                self.send(super::shard_of(locate, shards), origin, frame.body)
            };
            if !sent {
                self.pending = Some((frame, read));
                break;
            }
            worked = true;
            if ts < self.last_ts {
                self.out_of_order_ts += 1;
            }
            self.last_ts = ts;
            if let Some((g, _)) = &mut self.marks {
                g.sent_message(ts);
            }
            self.seq = self.seq.wrapping_add(1);
            self.messages += 1;
            if origin != UNTIMED {
                self.open = read;
            }
        }
        self.close(ticks());
        for o in &mut self.outs {
            o.publish();
        }
        if let Some(f) = &self.frontier {
            f.announce(self.seq);
        }
        // Relaxed: a progress gauge for the display thread, ordering nothing.
        self.progress.store(self.messages, Ordering::Relaxed);
        if worked {
            Progress::Worked
        } else {
            Progress::Idle
        }
    }
}
