//! A shard worker: runs its operator over the events of its shard in feed order, and reports
//! each one to the output stage.

use super::cut::{OnWorkerCut, WorkerCut, CKPT_FLAG};
use super::marks::{Frontier, UNTIMED};
use super::op::ShardOp;
use super::stage::{Progress, Stage};
use super::{Done, Event, RingCounters, Sampler, SeqOrder, Tag};
use crate::clock::{ticks, TickScale};
use crate::ring::{Consumer, Producer};
use hdrhistogram::Histogram;
use std::sync::Arc;

/// Events a worker handles per [`Stage::do_work`] call before publishing.
pub const BATCH: usize = 1024;

/// A worker's output side: it ends each event, timing it and reporting it to the output stage.
#[derive(Debug)]
pub struct Reporter {
    tx: Producer<Done>,
    /// The output ring's counters (the worker is its producer).
    pub counters: RingCounters,
    /// The operator's time per event, ns: from taking the event to taking the next one, or to
    /// the end of the batch.
    pub op_latency: Histogram<u64>,
    scale: TickScale,
}

impl Reporter {
    /// Ends an event that started at `t0` at `t1`: records its operator time and stages its
    /// record for the output stage, stamped `t1`.
    #[inline(always)]
    fn close(&mut self, mut d: Done, t0: u64, t1: u64) {
        // Untimed by the sample: `t1` is 0, and so `pushed` (the output then skips its hop).
        if d.origin != UNTIMED && t1 != 0 {
            self.op_latency
                .saturating_record(self.scale.between(t0, t1));
        }
        d.pushed = t1;
        // Room was reserved before the batch: cannot fail.
        if self.tx.stage(d).is_ok() {
            self.counters.pushed += 1;
        }
    }
}

/// A shard worker stage.
#[derive(Debug)]
pub struct Worker<O: ShardOp> {
    /// Shard number.
    pub id: usize,
    rx: Consumer<O::Event>,
    /// The records to the output stage, their ring's counters, and the operator's latency.
    pub out: Reporter,
    /// The shard's operator.
    pub op: O,
    /// Events taken from the input ring (marks included).
    pub popped: u64,
    /// Events the operator processed.
    pub processed: u64,
    /// Events the operator rejected ([`Tag::REJECTED`]).
    pub rejected: u64,
    /// Feed order of this worker's events (a violation is never expected: a ring is FIFO and
    /// the reader numbers in feed order).
    pub order: SeqOrder,
    /// Event origin → taken by this worker, ns (reader work, the ring hop, and queueing).
    pub queue_latency: Histogram<u64>,
    scale: TickScale,
    stages: Sampler,
    /// Marks taken.
    pub marks: u64,
    /// Events that changed a best bid or offer ([`Tag::FLAGGED`]).
    pub flagged: u64,
    frontier: Option<Arc<Frontier>>,
    done: bool,
    /// Told this worker's counters at each checkpoint mark.
    on_cut: Option<CutHook>,
}

/// [`OnWorkerCut`], printable.
struct CutHook(OnWorkerCut);

impl std::fmt::Debug for CutHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnWorkerCut")
    }
}

/// Worker `id`'s counters `c` at the checkpoint mark at feed position `seq`, handed over.
#[cold]
fn cut(hook: Option<&CutHook>, id: usize, seq: u32, c: &WorkerCut) {
    if let Some(h) = hook {
        (h.0)(id, seq, c);
    }
}

impl<O: ShardOp> Worker<O> {
    pub(crate) fn new(
        id: usize,
        rx: Consumer<O::Event>,
        tx: Producer<Done>,
        op: O,
        scale: TickScale,
        stages: Sampler,
        frontier: Option<Arc<Frontier>>,
    ) -> Self {
        Worker {
            id,
            out: Reporter {
                counters: RingCounters::new(tx.capacity()),
                tx,
                op_latency: crate::latency::histogram(),
                scale,
            },
            rx,
            op,
            popped: 0,
            processed: 0,
            rejected: 0,
            order: SeqOrder::default(),
            queue_latency: crate::latency::histogram(),
            scale,
            stages,
            marks: 0,
            flagged: 0,
            frontier,
            done: false,
            on_cut: None,
        }
    }

    /// Reports its counters to `on_cut` at each checkpoint mark, starting from `from` (its
    /// counters at the cut a run resumes from).
    pub(crate) fn checkpoint(&mut self, on_cut: OnWorkerCut, from: Option<&WorkerCut>) {
        if let Some(c) = from {
            self.processed = c.processed;
            self.rejected = c.rejected;
            self.marks = c.marks;
            self.flagged = c.flagged;
            self.popped = c.popped();
            self.out.counters.pushed = c.records();
            self.out.counters.full = c.out_full;
        }
        self.on_cut = Some(CutHook(on_cut));
    }

    /// The input is empty: the end of the shard's input, or news of the reader's position.
    fn idle(&mut self) -> Progress {
        // Work the last item left waiting for output room comes before closing or news.
        if !self.op.flush() {
            return Progress::Idle;
        }
        // Abandoned first, then empty: the producer's last publish precedes its flag.
        if self.rx.is_abandoned() && self.rx.available() == 0 {
            self.out.tx.close(); // the output stage sees this worker finish
            self.op.close();
            self.done = true;
            return Progress::Done;
        }
        if O::FRONTIER {
            if let Some(pos) = self.frontier.as_ref().and_then(|f| f.load()) {
                // Read after the position: every event below it that is ours is in the ring.
                if self.rx.available() == 0 {
                    self.op.on_idle(pos);
                }
            }
        }
        Progress::Idle
    }

    /// Processes up to `n` events (fewer if the operator's rings run short of room).
    #[inline(always)]
    fn batch(&mut self, n: usize) -> Progress {
        // Events are read in place (no copy out of the ring), with the operator's look-ahead
        // hints, and ring slots prefetched further ahead (they come from the reader's core).
        let (a, b) = self.rx.read_slices(n + 2 * O::FAR);
        let at = |i: usize| a.get(i).or_else(|| b.get(i.wrapping_sub(a.len())));
        // One TSC read per event: the read that starts event k also ends event k − 1 (whose
        // record is staged only then, stamped with it); one more read closes the batch.
        let mut open: Option<(Done, u64)> = None;
        let mut taken = 0;
        for i in 0..n {
            if let Some(e) = at(i + O::FAR) {
                self.op.prefetch_far(e);
            }
            if let Some(e) = at(i + O::NEAR) {
                self.op.prefetch_near(e);
            }
            if let Some(e) = at(i + 2 * O::FAR) {
                crate::mem::prefetch(e as *const O::Event as *const u8);
            }
            let Some(ev) = at(i) else { break };
            let mark = ev.mark();
            if !self.op.has_room(mark.is_some()) {
                break;
            }
            taken += 1;
            if let Some((wm, clock)) = mark {
                self.marks += 1;
                if clock & CKPT_FLAG != 0 {
                    let c = WorkerCut {
                        processed: self.processed,
                        rejected: self.rejected,
                        marks: self.marks,
                        flagged: self.flagged,
                        out_full: self.out.counters.full,
                    };
                    cut(self.on_cut.as_ref(), self.id, ev.seq(), &c);
                }
                self.op.on_mark(wm, clock, ev.seq());
                continue;
            }
            // A TSC read only where a timed event starts or ends.
            let timed = self.stages.hit(ev.seq());
            let t_pop = if timed || open.is_some_and(|(_, t0)| t0 != 0) {
                ticks()
            } else {
                0
            };
            if let Some((d, t0)) = open.take() {
                self.out.close(d, t0, if t0 != 0 { t_pop } else { 0 });
            }
            let tag = self.op.on_event(ev);
            if tag.flags & Tag::REJECTED != 0 {
                self.rejected += 1;
            } else {
                self.processed += 1;
                self.flagged += (tag.flags & Tag::FLAGGED != 0) as u64;
            }
            let origin = ev.origin();
            if origin != UNTIMED && timed {
                self.queue_latency
                    .saturating_record(self.scale.between(origin, t_pop));
            }
            self.order.observe(ev.seq());
            let done = Done {
                origin,
                pushed: 0,
                seq: ev.seq(),
                tag,
            };
            open = Some((done, if timed { t_pop } else { 0 }));
        }
        if let Some((d, t0)) = open {
            let t1 = if t0 != 0 { ticks() } else { 0 };
            self.out.close(d, t0, t1);
        }
        self.popped += taken as u64;
        self.rx.advance(taken);
        self.rx.release();
        self.out.tx.publish();
        self.op.end_of_batch();
        if taken == 0 {
            return Progress::Idle;
        }
        Progress::Worked
    }
}

impl<O: ShardOp> Stage for Worker<O> {
    fn do_work(&mut self) -> Progress {
        if self.done {
            return Progress::Done;
        }
        let avail = self.rx.available();
        if avail == 0 {
            return self.idle();
        }
        let mut room = self.out.tx.free_cached();
        if room < avail.min(BATCH) {
            room = self.out.tx.free_slots();
        }
        let n = avail.min(BATCH).min(room);
        if n == 0 {
            self.out.counters.full += 1;
            return Progress::Idle;
        }
        self.batch(n)
    }
}
