//! Surveillance in the pipeline: detectors in the shard workers, a deterministic merge of their
//! records and the risk book in the output stage.
//!
//! ```text
//!  reader ── events + marks (every `mark_every` messages, to every worker) ──┐
//!                                                                            ▼
//!  worker i: Books ─▶ surv::Surveillance (its stocks) ─▶ records sorted by OutKey, then
//!            EpochEnd at each mark ─┐
//!                                   ▼
//!  output: k-way merge by OutKey ─▶ risk book (participants across stocks) ─▶ alerts JSONL
//! ```
//!
//! The key of a record (epoch, phase, position since the epoch's mark, stock, detector, order)
//! does not depend on the sharding, and each worker sends its records in key order, so the
//! merged stream — and the alerts file — is byte-identical for any worker count, wait strategy
//! or replay speed. The output writes the smallest head once every other worker's next key is
//! known to be larger (its head, or the last key it sent, which an `EpochEnd` advances at every
//! mark), so alerts stream out within one mark interval.

use super::gap::BookGap;
use super::journal::Journal;
use super::op::BookHook;
use crate::agg::Touch;
use crate::book::Books;
use crate::clock::{ticks, TickScale};
use crate::engine::merge::{Keyed, Merge};
use crate::engine::{Collector, UNTIMED};
use crate::itch::Message;
use crate::ring::{Consumer, Producer};
use crate::surv::{
    Alert, DetectorFactory, DetectorId, FlowRecord, OutBody, OutKey, Rules, SurvCounters,
    SurvEvent, SurvOutput, SurvRecord, Surveillance, ALERTS_PER_STEP, MAX_STEP_RECORDS,
};
use hdrhistogram::Histogram;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Rules replaced while a run goes on: a control thread [`RulesCell::publish`]es, the workers
/// and the output stage pick the new rules up at their next watermark mark (every 1,024
/// messages) — one atomic load per mark, and a lock only when the rules changed. Detector state
/// is kept across the change.
#[derive(Debug)]
pub struct RulesCell {
    generation: AtomicU64,
    rules: Mutex<Rules>,
}

impl RulesCell {
    /// A cell holding `rules`, generation 0.
    pub fn new(rules: Rules) -> RulesCell {
        RulesCell {
            generation: AtomicU64::new(0),
            rules: Mutex::new(rules),
        }
    }

    /// Replaces the rules (their `[limits]` must equal the running ones: the caller checks).
    pub fn publish(&self, rules: Rules) {
        *self.rules.lock().unwrap_or_else(|e| e.into_inner()) = rules;
        // Release: pairs with the Acquire in `changed`, so a reader that sees the new
        // generation also sees the rules written before it (the mutex orders them too).
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The rules, if their generation is not `seen` (then `seen` is updated).
    #[inline]
    pub fn changed(&self, seen: &mut u64) -> Option<Rules> {
        // Acquire: pairs with the Release in `publish`.
        let g = self.generation.load(Ordering::Acquire);
        if g == *seen {
            return None;
        }
        *seen = g;
        Some(*self.rules.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Where a run's alerts go.
pub enum AlertSink {
    /// A memory-mapped file: an alert is appended with a `memcpy`, and the output stage keeps
    /// the next lines' bytes warm while idle (see [`Journal`]). What `tickwatch run --alerts
    /// FILE` uses.
    Journal(Journal),
    /// Any writer: each output batch that formed alerts ends with one `write_all` + `flush`
    /// (standard output, test buffers).
    Stream(Box<dyn Write + Send>),
}

impl std::fmt::Debug for AlertSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AlertSink::Journal(j) => f.debug_tuple("Journal").field(j).finish(),
            AlertSink::Stream(_) => f.write_str("Stream"),
        }
    }
}

impl<W: Write + Send + 'static> From<W> for AlertSink {
    fn from(w: W) -> AlertSink {
        AlertSink::Stream(Box::new(w))
    }
}

impl AlertSink {
    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            AlertSink::Journal(j) => j.write_all(b),
            AlertSink::Stream(w) => w.write_all(b).and_then(|()| w.flush()),
        }
    }

    fn finish(&mut self) -> std::io::Result<()> {
        match self {
            AlertSink::Journal(j) => j.finish(),
            AlertSink::Stream(w) => w.flush(),
        }
    }

    fn warm(&mut self) {
        if let AlertSink::Journal(j) = self {
            j.warm();
        }
    }
}

/// The surveillance job of a pipeline run.
pub struct SurvJob {
    /// Detectors' rules.
    pub rules: Rules,
    /// The firm's participant flow (every worker gets it; each applies its own stocks').
    pub flow: Vec<FlowRecord>,
    /// Where the alerts go (JSON lines).
    pub sink: AlertSink,
    /// A watermark mark every this many messages.
    pub mark_every: u32,
    /// Where replaced rules come from while running (`None`: fixed rules).
    pub reload: Option<Arc<RulesCell>>,
    /// The user's own detectors, run after the built-in ones (one instance per worker).
    pub detectors: Vec<DetectorFactory>,
}

impl std::fmt::Debug for SurvJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SurvJob")
            .field("flow", &self.flow.len())
            .field("mark_every", &self.mark_every)
            .field("detectors", &self.detectors.len())
            .finish_non_exhaustive()
    }
}

/// What surveillance did in a run.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SurvReport {
    /// Alerts written, by detector name.
    pub alerts: Vec<(String, u64)>,
    /// Alerts written in all.
    pub total: u64,
    /// Marks sent.
    pub marks: u64,
    /// The workers' counters, summed (`events` counts a market-wide message once per worker).
    pub counters: SurvCounters,
    /// Alerts that did not fit a detector's per-event buffer (never expected).
    pub alert_overflow: u64,
    /// Flow records no worker applied (their stock was never listed in the feed).
    pub flow_unapplied: u64,
    /// Progress records idle workers sent (each lets the merge write other workers' records
    /// without waiting for a mark).
    pub progress: u64,
    /// Detector and risk-book table pressure, summed over the workers (names from
    /// [`crate::surv::Surveillance::table_pressure`], then the risk book's): all zero when every
    /// detector saw the whole feed.
    pub tables: Vec<(String, u64)>,
    /// Alert latency: its parts (detect, hop, format: alerts raised by the workers) and event
    /// read → alert written (every alert of a timed event).
    pub latency: Vec<crate::latency::StageLatency>,
}

/// A worker's way to the output stage: its records ring and its alerts ring.
#[derive(Debug)]
pub struct Outbox {
    tx: Producer<SurvRecord>,
    /// The alerts of the `OutBody::Alert` records on `tx`, in the same order (published first).
    atx: Producer<Alert>,
    /// Records staged.
    pub records: u64,
    /// Records that found no room (never expected: room is checked before each step).
    pub lost: u64,
}

impl Outbox {
    /// Stages a record (and its alert first, if it has one).
    fn send(&mut self, r: SurvRecord, alert: Option<&Alert>) {
        if let Some(a) = alert {
            if self.atx.stage(*a).is_err() {
                self.lost += 1;
                return;
            }
        }
        if self.tx.stage(r).is_ok() {
            self.records += 1;
        } else {
            self.lost += 1;
        }
    }

    /// Publishes what is staged: the alerts first, so that the output stage, seeing an alert
    /// record, finds its alert.
    fn publish(&mut self) {
        self.atx.publish();
        self.tx.publish();
    }
}

/// A worker's surveillance: the detectors of its stocks and its rings to the output stage.
#[derive(Debug)]
pub struct SurvWorker {
    /// The detectors.
    pub s: Surveillance,
    /// Its rings to the output stage.
    pub out: Outbox,
    epoch: u64,
    mark_seq: u32,
    reload: Option<(Arc<RulesCell>, u64)>,
    /// The last reader position a progress record was sent for.
    sent: Option<u32>,
    /// Progress records sent while idle.
    pub progress: u64,
    /// The number of its mark clock.
    clock: u8,
}

impl SurvWorker {
    /// Slots of a worker's records ring.
    pub const RING: usize = 8 * MAX_STEP_RECORDS;
    /// Slots of a worker's alerts ring.
    pub const ALERT_RING: usize = 8 * ALERTS_PER_STEP;

    /// A worker's detectors `s`, sending records on `tx` and their alerts on `atx`, picking up
    /// replaced rules from `reload`.
    pub fn new(
        s: Surveillance,
        tx: Producer<SurvRecord>,
        atx: Producer<Alert>,
        reload: Option<Arc<RulesCell>>,
    ) -> SurvWorker {
        SurvWorker {
            s,
            out: Outbox {
                tx,
                atx,
                records: 0,
                lost: 0,
            },
            epoch: 0,
            mark_seq: 0,
            reload: reload.map(|c| (c, 0)),
            sent: None,
            progress: 0,
            clock: 0,
        }
    }

    /// Takes the marks of clock number `clock` (the run's clock list is the job's to order).
    pub fn on_clock(mut self, clock: u8) -> SurvWorker {
        self.clock = clock;
        self
    }

    /// The worker's input ring is empty and the reader has published the feed up to position
    /// `pos` (read before the ring was found empty): every later record of this worker is keyed
    /// after feed position `pos − 1` — sent as a progress record, so the output's merge can
    /// write other workers' alerts at once.
    pub fn idle(&mut self, pos: u32) {
        // Before the first mark at position 0 nothing was published: no claim to make.
        if self.sent == Some(pos) || (pos == self.mark_seq && self.epoch == 0) {
            return;
        }
        let key = if pos == self.mark_seq {
            // Nothing since the last mark, whose own records (phase 0) are sent.
            OutKey {
                epoch: self.epoch,
                phase: 0,
                rel: u32::MAX,
                locate: u16::MAX,
                det: u8::MAX,
                idx: u16::MAX,
            }
        } else {
            OutKey {
                epoch: self.epoch,
                phase: 1,
                rel: pos.wrapping_sub(1).wrapping_sub(self.mark_seq),
                locate: u16::MAX,
                det: u8::MAX,
                idx: u16::MAX,
            }
        };
        let rec = SurvRecord {
            key,
            origin: 0,
            staged: 0,
            body: OutBody::Progress,
        };
        // No room: the output is behind anyway; the next idle call tries again.
        if self.out.tx.stage(rec).is_ok() {
            self.sent = Some(pos);
            self.progress += 1;
            self.out.tx.publish();
        }
    }

    /// Whether the rings have room for whatever one step can raise (and an epoch end).
    #[inline]
    pub fn has_room(&mut self) -> bool {
        let o = &mut self.out;
        (o.tx.free_cached() > MAX_STEP_RECORDS || o.tx.free_slots() > MAX_STEP_RECORDS)
            && (o.atx.free_cached() >= ALERTS_PER_STEP || o.atx.free_slots() >= ALERTS_PER_STEP)
    }

    /// A watermark mark at feed position `seq`: ends the epoch, then runs the timers.
    pub fn mark(&mut self, wm: u64, seq: u32, books: &Books) {
        let end = SurvRecord {
            key: OutKey {
                epoch: self.epoch,
                phase: 2,
                rel: 0,
                locate: 0,
                det: 0,
                idx: 0,
            },
            origin: 0,
            staged: 0,
            body: OutBody::EpochEnd,
        };
        self.out.send(end, None);
        self.epoch += 1;
        self.mark_seq = seq;
        if let Some((cell, seen)) = &mut self.reload {
            if let Some(r) = cell.changed(seen) {
                // The publisher checked the limits; a mismatch would be refused and counted.
                let _ = self.s.set_rules(r);
            }
        }
        self.s.watermark(wm, seq, books);
        let out = &mut self.out;
        self.s
            .drain_step(self.epoch, 0, 0, 0, |r, a| out.send(r, a));
    }

    /// The detectors' view of a message at feed position `seq`, before the books apply it.
    #[inline]
    pub fn before(&mut self, msg: &Message<'_>, books: &Books, seq: u32) -> SurvEvent {
        self.s.before(msg, books, seq)
    }

    /// The message of `ev` was applied to `books` (its latency started at `origin`): run the
    /// detectors and send what they raised.
    #[inline]
    pub fn after(&mut self, mut ev: SurvEvent, books: &Books, seq: u32, origin: u64) {
        self.s.after(&mut ev, books);
        let origin = if origin == UNTIMED { 0 } else { origin };
        let rel = seq.wrapping_sub(self.mark_seq);
        // One TSC read for a timed event that raised alerts: the detect / hop split of their
        // latency (alerts are rare; nothing is read for the rest).
        let staged = if origin != 0 && !self.s.alerts.is_empty() {
            ticks()
        } else {
            0
        };
        let out = &mut self.out;
        self.s.drain_step(self.epoch, 1, rel, origin, |mut r, a| {
            if a.is_some() {
                r.staged = staged;
            }
            out.send(r, a)
        });
        if staged != 0 {
            // A timed alert goes out now, not at the end of the worker's batch.
            self.publish();
        }
    }

    /// Publishes what is staged.
    pub fn publish(&mut self) {
        self.out.publish();
    }

    /// The worker is done: publish and close.
    pub fn close(&mut self) {
        self.out.publish();
        self.out.atx.close();
        self.out.tx.close();
    }
}

impl BookHook for SurvWorker {
    type Pre = (SurvEvent, u32, u64);
    const FRONTIER: bool = true;

    #[inline(always)]
    fn has_room(&mut self, _mark: bool) -> bool {
        SurvWorker::has_room(self)
    }

    #[inline(always)]
    fn before(&mut self, m: &Message<'_>, books: &Books, seq: u32, origin: u64) -> Self::Pre {
        (SurvWorker::before(self, m, books, seq), seq, origin)
    }

    #[inline(always)]
    fn after(&mut self, pre: Self::Pre, _m: &Message<'_>, books: &Books, _touch: Option<Touch>) {
        SurvWorker::after(self, pre.0, books, pre.1, pre.2);
    }

    fn on_mark(&mut self, wm: u64, clock: u8, seq: u32, books: &Books) {
        if clock == self.clock {
            self.mark(wm, seq, books);
        }
    }

    fn on_idle(&mut self, pos: u32) {
        self.idle(pos);
    }

    #[inline(always)]
    fn end_of_batch(&mut self) {
        self.publish();
    }

    fn close(&mut self) {
        SurvWorker::close(self);
    }
}

impl Collector for SurvMerge {
    fn work(&mut self, budget: usize) -> bool {
        SurvMerge::work(self, budget)
    }

    fn done(&self) -> bool {
        SurvMerge::done(self)
    }
}

impl Keyed for SurvRecord {
    type Key = OutKey;
    #[inline]
    fn key(&self) -> OutKey {
        self.key
    }
}

/// The output stage's side: merges the workers' records, runs the risk book, writes alerts.
pub struct SurvMerge {
    merge: Merge<SurvRecord>,
    /// Each worker's alerts ring, read in step with its records.
    arxs: Vec<Consumer<Alert>>,
    /// Alert records whose alert was missing (never expected: alerts are published first).
    pub missing: u64,
    out: SurvOutput,
    sink: AlertSink,
    buf: Vec<u8>,
    scale: TickScale,
    /// Event read → alert written to the sink (`write` returned), ns: every alert of a timed
    /// event.
    pub latency: Histogram<u64>,
    /// Its parts: event read → alert staged by the worker (queueing, book, detectors) …
    pub detect: Histogram<u64>,
    /// … staged → taken by the output stage (publish, ring hop, merge) …
    pub hop: Histogram<u64>,
    /// … taken → its JSON line formatted (the risk book, formatting) …
    pub format: Histogram<u64>,
    /// … formatted → written (the rest of the output's batch, the sink's `write`).
    pub write: Histogram<u64>,
    /// (origin, formatted at) of the alerts formatted and not yet written (preallocated:
    /// `PENDING`).
    pending: Vec<(u64, u64)>,
    /// Alerts written.
    pub alerts: u64,
    /// The first write error (writing stops there; the run still drains).
    pub error: Option<std::io::Error>,
    reload: Option<(Arc<RulesCell>, u64)>,
    /// Calls in a row that moved nothing.
    idle: u32,
    /// The last alert written: formatted again, and thrown away, to keep the way warm.
    last: Option<Alert>,
    /// Where the feed's first unfilled gap is: alerts at or after it are flagged `book_gap`.
    book_gap: Option<Arc<BookGap>>,
}

impl std::fmt::Debug for SurvMerge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SurvMerge")
            .field("alerts", &self.alerts)
            .finish_non_exhaustive()
    }
}

impl SurvMerge {
    const OUT_BYTES: usize = 1 << 16;
    /// Timed alerts held in the buffer at most before it is written.
    const PENDING: usize = 256;
    /// Idle calls between two warm-ups (≈ 20 µs of polling on this machine).
    const WARM_EVERY: u32 = 256;

    /// Keeps an idle output stage's alert path in cache: formats the last alert into the
    /// (empty) line buffer and throws it away, and has the journal touch the bytes the next
    /// lines will take. Measured (PERF.md): in a paced replay, formatting a lone alert took a
    /// median of 8.6 µs cold against 0.4 µs warm; with this, 2.5 µs. It costs the idle core
    /// about 2 % and delays work arriving during it by < 1 µs.
    fn warm(&mut self) {
        if !self.buf.is_empty() {
            return;
        }
        if let Some(a) = &self.last {
            a.write_json(&mut self.buf);
            std::hint::black_box(&self.buf);
            self.buf.clear();
        }
        self.sink.warm();
    }

    /// The alert latency, whole and in its parts, as report rows.
    pub fn latency_rows(&self) -> Vec<crate::latency::StageLatency> {
        use crate::latency::StageLatency;
        vec![
            StageLatency::merged(
                "alert: detect",
                "event read → alert staged by the worker (queue, book, detectors)",
                [&self.detect],
            ),
            StageLatency::merged(
                "alert: hop",
                "alert staged → taken by the output stage (publish, ring, merge)",
                [&self.hop],
            ),
            StageLatency::merged(
                "alert: format",
                "alert taken → JSON line formatted (risk book, formatting)",
                [&self.format],
            ),
            StageLatency::merged(
                "alert: write",
                "JSON line formatted → written (the rest of the batch, the sink's write)",
                [&self.write],
            ),
            StageLatency::merged(
                "event to alert",
                "event read → alert written (the sink's write returned)",
                [&self.latency],
            ),
        ]
    }

    /// A merge of one records ring (and its alerts ring) per worker into `sink`.
    pub fn new(
        rxs: Vec<Consumer<SurvRecord>>,
        arxs: Vec<Consumer<Alert>>,
        rules: &Rules,
        sink: AlertSink,
        scale: TickScale,
        reload: Option<Arc<RulesCell>>,
    ) -> SurvMerge {
        SurvMerge {
            merge: Merge::new(rxs),
            arxs,
            missing: 0,
            out: SurvOutput::new(rules),
            sink,
            buf: Vec::with_capacity(Self::OUT_BYTES + 8192),
            scale,
            latency: crate::latency::histogram(),
            detect: crate::latency::histogram(),
            hop: crate::latency::histogram(),
            format: crate::latency::histogram(),
            write: crate::latency::histogram(),
            pending: Vec::with_capacity(Self::PENDING),
            alerts: 0,
            error: None,
            reload: reload.map(|c| (c, 0)),
            idle: 0,
            last: None,
            book_gap: None,
        }
    }

    /// Alerts at or after `gap`'s feed position get `"book_gap": true` (the others' bytes are
    /// unchanged).
    pub fn with_book_gap(mut self, gap: Option<Arc<BookGap>>) -> SurvMerge {
        self.book_gap = gap;
        self
    }

    /// Whether every worker's stream has ended and been written.
    pub fn done(&self) -> bool {
        self.merge.done()
    }

    /// Alerts written, by detector.
    pub fn written(&self) -> [u64; DetectorId::ALL.len()] {
        self.out.written
    }

    /// Alerts written per detector name: the built-in ones, then the user's.
    pub fn written_by_name(&self) -> Vec<(&'static str, u64)> {
        self.out.written_by_name()
    }

    /// Alerts the risk book could not hold (counted).
    pub fn overflow(&self) -> u64 {
        self.out.overflow()
    }

    /// The risk book's table pressure: inputs dropped (table full), positions not marked.
    pub fn risk_pressure(&self) -> [(&'static str, u64); 2] {
        let c = &self.out.risk.counters;
        [
            ("risk inputs dropped (table full)", c.overflow),
            (
                "risk positions not marked (holders full)",
                c.holder_overflow,
            ),
        ]
    }

    fn drain(&mut self) {
        if !self.buf.is_empty() && self.error.is_none() {
            if let Err(e) = self.sink.write_all(&self.buf) {
                self.error = Some(e);
            }
        }
        self.buf.clear();
        if !self.pending.is_empty() {
            let now = ticks();
            if self.error.is_none() {
                for &(o, f) in &self.pending {
                    self.latency.saturating_record(self.scale.between(o, now));
                    self.write.saturating_record(self.scale.between(f, now));
                }
            }
            self.pending.clear();
        }
    }

    /// Moves up to `budget` records in key order; true if any moved.
    pub fn work(&mut self, budget: usize) -> bool {
        if let Some((cell, seen)) = &mut self.reload {
            if let Some(r) = cell.changed(seen) {
                self.out.set_rules(&r);
            }
        }
        let mut moved = false;
        for _ in 0..budget {
            let Some((from, rec)) = self.merge.pop_from() else {
                break;
            };
            moved = true;
            let alert = match rec.body {
                OutBody::Alert => {
                    let a = self.arxs[from].take();
                    self.missing += a.is_none() as u64;
                    a
                }
                _ => None,
            };
            let taken = if rec.staged != 0 { ticks() } else { 0 };
            if taken != 0 {
                self.detect
                    .saturating_record(self.scale.between(rec.origin, rec.staged));
                self.hop
                    .saturating_record(self.scale.between(rec.staged, taken));
            }
            let (buf, n, pending, format, scale) = (
                &mut self.buf,
                &mut self.alerts,
                &mut self.pending,
                &mut self.format,
                self.scale,
            );
            let last = &mut self.last;
            let gap = self.book_gap.as_deref();
            self.out.take(&rec, alert.as_ref(), |a: &Alert| {
                *last = Some(*a);
                a.write_json(buf);
                if gap.is_some_and(|g| g.covers(a.seq)) {
                    flag_book_gap(buf);
                }
                *n += 1;
                if rec.origin != 0 {
                    let done = ticks();
                    if taken != 0 {
                        format.saturating_record(scale.between(taken, done));
                    }
                    if pending.len() < pending.capacity() {
                        pending.push((rec.origin, done));
                    }
                }
            });
            // A record raises a few alerts at most: half the pending room is ample slack.
            if self.buf.len() > Self::OUT_BYTES || self.pending.len() >= Self::PENDING / 2 {
                self.drain();
            }
        }
        self.merge.release();
        for a in &mut self.arxs {
            a.release();
        }
        if moved {
            self.idle = 0;
        } else {
            self.idle = self.idle.wrapping_add(1);
            if self.idle % Self::WARM_EVERY == 0 {
                self.warm();
            }
        }
        // Alerts go out at the end of the call that formatted them — one `write` per batch of
        // records, never held back while records keep coming (alerts are rare: at full speed
        // ≈ 1 in 5,000 messages).
        self.drain();
        if self.done() {
            if let Err(e) = self.sink.finish() {
                self.error.get_or_insert(e);
            }
        }
        moved
    }
}

/// Adds `"book_gap":true` to the JSON line just written at the end of `buf` (it ends `}\n`).
fn flag_book_gap(buf: &mut Vec<u8>) {
    debug_assert!(buf.ends_with(b"}\n"));
    buf.truncate(buf.len() - 2);
    buf.extend_from_slice(b",\"book_gap\":true}\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::ring;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn worker() -> (SurvWorker, Consumer<SurvRecord>, Consumer<Alert>) {
        let (tx, rx) = ring(SurvWorker::RING);
        let (atx, arx) = ring(SurvWorker::ALERT_RING);
        let w = SurvWorker::new(Surveillance::new(Rules::default(), &[]), tx, atx, None);
        (w, rx, arx)
    }

    /// Worker 0 raises an alert at feed position 5; worker 1 has nothing. The merge may write
    /// the alert only once worker 1 is known to have nothing keyed before it: its idle progress
    /// record at a published position past 5 says so at once — no mark needed — and one at or
    /// below 5 must not.
    #[test]
    fn idle_progress_releases_other_workers_alerts_and_only_those_before_it() {
        let (mut w0, rx0, arx0) = worker();
        let (mut w1, rx1, arx1) = worker();
        let sink = Shared::default();
        let mut m = SurvMerge::new(
            vec![rx0, rx1],
            vec![arx0, arx1],
            &Rules::default(),
            sink.clone().into(),
            TickScale::new(1.0),
            None,
        );
        let key = OutKey {
            epoch: 0,
            phase: 1,
            rel: 5,
            locate: 2,
            det: DetectorId::Spoofing as u8,
            idx: 0,
        };
        let rec = SurvRecord {
            key,
            origin: 0,
            staged: 0,
            body: OutBody::Alert,
        };
        let alert = Alert::new(DetectorId::Spoofing, 1_000, 5, 2, *b"AAPL    ");
        w0.out.send(rec, Some(&alert));
        w0.publish();
        let lines = |s: &Shared| s.0.lock().unwrap().iter().filter(|&&c| c == b'\n').count();
        m.work(64);
        assert_eq!(lines(&sink), 0, "worker 1 not heard from: the alert waits");

        // Published up to position 5 (positions 0..=4): worker 1 could still send at 5.
        w1.idle(5);
        assert_eq!(w1.progress, 1);
        m.work(64);
        assert_eq!(
            lines(&sink),
            0,
            "progress to position 4 does not pass position 5"
        );
        // The same position again sends nothing new.
        w1.idle(5);
        assert_eq!(w1.progress, 1);
        // Published past 5 and worker 1's ring is empty: the alert goes out.
        w1.idle(9);
        assert_eq!(w1.progress, 2);
        m.work(64);
        assert_eq!(
            lines(&sink),
            1,
            "the alert is written without waiting for a mark"
        );
        assert_eq!(m.missing, 0);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("\"detector\":\"spoofing\""), "{text}");
    }
}
