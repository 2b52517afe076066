//! The output stage: takes every worker's records, measures end-to-end latency, keeps the run's
//! output counters, and runs the job's collector.

use super::marks::UNTIMED;
use super::op::Collector;
use super::stage::{Progress, Stage};
use super::{Done, SeqOrder, Tag};
use crate::clock::{ticks, TickScale};
use crate::ring::Consumer;
use hdrhistogram::Histogram;

/// Records taken per input ring per [`Stage::do_work`] call.
pub const BATCH: usize = 1024;

/// The output stage.
#[derive(Debug)]
pub struct Output<C: Collector> {
    rxs: Vec<Consumer<Done>>,
    /// Inputs whose worker has finished and which are drained.
    finished: Vec<bool>,
    /// Records received from each worker.
    pub received: Vec<u64>,
    /// Records tagged [`Tag::FLAGGED`].
    pub flagged: u64,
    /// Feed order of each worker's records.
    pub order: Vec<SeqOrder>,
    /// Event origin → received here, ns: the end-to-end latency.
    pub e2e_latency: Histogram<u64>,
    /// Worker push → received here, ns: the second ring hop.
    pub hop_latency: Histogram<u64>,
    scale: TickScale,
    live: usize,
    /// The job's collector.
    pub collector: C,
}

impl<C: Collector> Output<C> {
    pub(crate) fn new(rxs: Vec<Consumer<Done>>, collector: C, scale: TickScale) -> Self {
        let live = rxs.len();
        Output {
            received: vec![0; live],
            rxs,
            finished: vec![false; live],
            flagged: 0,
            order: vec![SeqOrder::default(); live],
            e2e_latency: crate::latency::histogram(),
            hop_latency: crate::latency::histogram(),
            scale,
            live,
            collector,
        }
    }

    /// Counts from where the workers stood at the cut a run resumes from: the records they
    /// had sent before it.
    pub(crate) fn resume_from(&mut self, workers: &[super::WorkerCut]) {
        for (r, w) in self.received.iter_mut().zip(workers) {
            *r = w.records();
        }
        self.flagged = workers.iter().map(|w| w.flagged).sum();
    }

    /// Takes what worker `i` has sent; true if anything.
    #[inline]
    fn take(&mut self, i: usize) -> bool {
        let rx = &mut self.rxs[i];
        // Everything counted here was published before the TSC read below, so `now` is when
        // each of these records had arrived: one read per batch, exact for all of it.
        let n = rx.available().min(BATCH);
        if n == 0 {
            if rx.is_abandoned() && rx.available() == 0 {
                self.finished[i] = true;
                self.live -= 1;
            }
            return false;
        }
        let now = ticks();
        for _ in 0..n {
            let Some(d) = rx.take() else { break };
            if d.origin != UNTIMED {
                self.e2e_latency
                    .saturating_record(self.scale.between(d.origin, now));
                if d.pushed != 0 {
                    self.hop_latency
                        .saturating_record(self.scale.between(d.pushed, now));
                }
            }
            self.order[i].observe(d.seq);
            self.flagged += (d.tag.flags & Tag::FLAGGED != 0) as u64;
        }
        rx.release();
        self.received[i] += n as u64;
        true
    }
}

impl<C: Collector> Stage for Output<C> {
    fn do_work(&mut self) -> Progress {
        let mut worked = self.collector.work(BATCH);
        let collected = self.collector.done();
        for i in 0..self.rxs.len() {
            if !self.finished[i] {
                worked |= self.take(i);
            }
        }
        if self.live == 0 && collected {
            Progress::Done
        } else if worked {
            Progress::Worked
        } else {
            Progress::Idle
        }
    }
}
