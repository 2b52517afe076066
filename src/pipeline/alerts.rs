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

use super::merge::{Keyed, Merge};
use crate::book::Books;
use crate::clock::{ticks, TickScale};
use crate::itch::Message;
use crate::ring::{Consumer, Producer};
use crate::surv::{
    Alert, DetectorId, FlowRecord, OutBody, OutKey, Rules, SurvCounters, SurvOutput, SurvRecord,
    Surveillance, MAX_STEP_RECORDS,
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

/// The surveillance job of a pipeline run.
pub struct SurvJob {
    /// Detectors' rules.
    pub rules: Rules,
    /// The firm's participant flow (every worker gets it; each applies its own stocks').
    pub flow: Vec<FlowRecord>,
    /// Where the alerts go (JSON lines).
    pub sink: Box<dyn Write + Send>,
    /// A watermark mark every this many messages.
    pub mark_every: u32,
    /// Where replaced rules come from while running (`None`: fixed rules).
    pub reload: Option<Arc<RulesCell>>,
}

impl std::fmt::Debug for SurvJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SurvJob")
            .field("flow", &self.flow.len())
            .field("mark_every", &self.mark_every)
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
    /// Event read → alert written, every alert.
    pub latency: Option<crate::latency::StageLatency>,
}

/// A worker's surveillance: the detectors of its stocks and its records ring.
#[derive(Debug)]
pub struct SurvWorker {
    /// The detectors.
    pub s: Surveillance,
    tx: Producer<SurvRecord>,
    epoch: u64,
    mark_seq: u32,
    /// Records staged.
    pub records: u64,
    /// Records that found no room (never expected: room is checked before each step).
    pub lost: u64,
    reload: Option<(Arc<RulesCell>, u64)>,
}

impl SurvWorker {
    /// Slots of a worker's records ring.
    pub const RING: usize = 8 * MAX_STEP_RECORDS;

    /// A worker's surveillance, sending on `tx`, picking up replaced rules from `reload`.
    pub fn new(
        rules: Rules,
        flow: &[FlowRecord],
        tx: Producer<SurvRecord>,
        reload: Option<Arc<RulesCell>>,
    ) -> SurvWorker {
        SurvWorker {
            s: Surveillance::new(rules, flow),
            tx,
            epoch: 0,
            mark_seq: 0,
            records: 0,
            lost: 0,
            reload: reload.map(|c| (c, 0)),
        }
    }

    /// Whether the ring has room for whatever one step can raise (and an epoch end).
    #[inline]
    pub fn has_room(&mut self) -> bool {
        self.tx.free_cached() > MAX_STEP_RECORDS || self.tx.free_slots() > MAX_STEP_RECORDS
    }

    fn send(tx: &mut Producer<SurvRecord>, records: &mut u64, lost: &mut u64, r: SurvRecord) {
        if tx.stage(r).is_ok() {
            *records += 1;
        } else {
            *lost += 1;
        }
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
            body: OutBody::EpochEnd,
        };
        Self::send(&mut self.tx, &mut self.records, &mut self.lost, end);
        self.epoch += 1;
        self.mark_seq = seq;
        if let Some((cell, seen)) = &mut self.reload {
            if let Some(r) = cell.changed(seen) {
                // The publisher checked the limits; a mismatch would be refused and counted.
                let _ = self.s.set_rules(r);
            }
        }
        self.s.watermark(wm, seq, books);
        let (tx, records, lost) = (&mut self.tx, &mut self.records, &mut self.lost);
        self.s
            .drain_step(self.epoch, 0, 0, 0, |r| Self::send(tx, records, lost, r));
    }

    /// One message at feed position `seq` (read at `origin`): classified, applied to `books`,
    /// run through the detectors.
    /// True when the message changed its stock's touch.
    #[inline]
    pub fn event(&mut self, msg: &Message<'_>, books: &mut Books, seq: u32, origin: u64) -> bool {
        let mut ev = self.s.before(msg, books, seq);
        books.apply(msg);
        self.s.after(&mut ev, books);
        let origin = if origin == super::reader::UNTIMED {
            0
        } else {
            origin
        };
        let rel = seq.wrapping_sub(self.mark_seq);
        let (tx, records, lost) = (&mut self.tx, &mut self.records, &mut self.lost);
        self.s.drain_step(self.epoch, 1, rel, origin, |r| {
            Self::send(tx, records, lost, r)
        });
        ev.locate != 0 && ev.before != ev.after
    }

    /// Publishes what is staged.
    pub fn publish(&mut self) {
        self.tx.publish();
    }

    /// The worker is done: publish and close.
    pub fn close(&mut self) {
        self.tx.publish();
        self.tx.close();
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
    out: SurvOutput,
    sink: Box<dyn Write + Send>,
    buf: Vec<u8>,
    scale: TickScale,
    /// Event read → alert handed to the sink, ns (every alert).
    pub latency: Histogram<u64>,
    /// Alerts written.
    pub alerts: u64,
    /// The first write error (writing stops there; the run still drains).
    pub error: Option<std::io::Error>,
    reload: Option<(Arc<RulesCell>, u64)>,
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

    /// A merge of one records ring per worker into `sink`.
    pub fn new(
        rxs: Vec<Consumer<SurvRecord>>,
        rules: &Rules,
        sink: Box<dyn Write + Send>,
        scale: TickScale,
        reload: Option<Arc<RulesCell>>,
    ) -> SurvMerge {
        SurvMerge {
            merge: Merge::new(rxs),
            out: SurvOutput::new(rules),
            sink,
            buf: Vec::with_capacity(Self::OUT_BYTES + 8192),
            scale,
            latency: crate::latency::histogram(),
            alerts: 0,
            error: None,
            reload: reload.map(|c| (c, 0)),
        }
    }

    /// Whether every worker's stream has ended and been written.
    pub fn done(&self) -> bool {
        self.merge.done()
    }

    /// Alerts written, by detector.
    pub fn written(&self) -> [u64; DetectorId::ALL.len()] {
        self.out.written
    }

    /// Alerts the risk book could not hold (counted).
    pub fn overflow(&self) -> u64 {
        self.out.overflow()
    }

    fn drain(&mut self) {
        if !self.buf.is_empty() && self.error.is_none() {
            if let Err(e) = self
                .sink
                .write_all(&self.buf)
                .and_then(|()| self.sink.flush())
            {
                self.error = Some(e);
            }
        }
        self.buf.clear();
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
            let Some(rec) = self.merge.pop() else { break };
            moved = true;
            let (buf, n, lat, scale) = (
                &mut self.buf,
                &mut self.alerts,
                &mut self.latency,
                self.scale,
            );
            self.out.take(&rec, |a: &Alert| {
                a.write_json(buf);
                *n += 1;
                if rec.origin != 0 {
                    lat.saturating_record(scale.between(rec.origin, ticks()));
                }
            });
            if self.buf.len() > Self::OUT_BYTES {
                self.drain();
            }
        }
        self.merge.release();
        // Alerts go out as soon as the merge runs dry: a live run's alerts are never held back.
        if !moved {
            self.drain();
        }
        if self.done() {
            self.drain();
            if let Err(e) = self.sink.flush() {
                self.error.get_or_insert(e);
            }
        }
        moved
    }
}
