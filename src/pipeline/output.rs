//! The output stage: collects every worker's records, measures end-to-end latency, and keeps
//! the run's output counters. Later stages hang alerts and aggregates here.

use super::alerts::SurvMerge;
use super::bars::BarsMerge;
use super::event::{Done, SeqOrder, TOP_CHANGED};
use super::reader::UNTIMED;
use super::{Progress, Stage};
use crate::clock::{ticks, TickScale};
use crate::ring::Consumer;
use hdrhistogram::Histogram;

/// Records taken per input ring per [`Stage::do_work`] call.
pub const BATCH: usize = 1024;

/// The output stage.
#[derive(Debug)]
pub struct Output {
    rxs: Vec<Consumer<Done>>,
    /// Inputs whose worker has finished and which are drained.
    finished: Vec<bool>,
    /// Records received from each worker.
    pub received: Vec<u64>,
    /// Events that changed their stock's best bid or offer.
    pub top_changes: u64,
    /// Feed order of each worker's records.
    pub order: Vec<SeqOrder>,
    /// Event origin → received here, ns: the end-to-end latency.
    pub e2e_latency: Histogram<u64>,
    /// Worker push → received here, ns: the second ring hop.
    pub hop_latency: Histogram<u64>,
    scale: TickScale,
    live: usize,
    /// The windowed bars' merge and writer, when the run computes bars.
    pub bars: Option<BarsMerge>,
    /// The alerts' merge, risk book and writer, when the run has surveillance.
    pub surv: Option<SurvMerge>,
}

impl Output {
    /// The output stage over one ring per worker.
    pub fn new(rxs: Vec<Consumer<Done>>, scale: TickScale) -> Output {
        let live = rxs.len();
        Output {
            received: vec![0; live],
            rxs,
            finished: vec![false; live],
            top_changes: 0,
            order: vec![SeqOrder::default(); live],
            e2e_latency: crate::latency::histogram(),
            hop_latency: crate::latency::histogram(),
            scale,
            live,
            bars: None,
            surv: None,
        }
    }

    /// Also merges and writes the workers' bar rows.
    pub fn with_bars(mut self, bars: BarsMerge) -> Output {
        self.bars = Some(bars);
        self
    }

    /// Also merges the workers' surveillance records and writes the alerts.
    pub fn with_surv(mut self, surv: SurvMerge) -> Output {
        self.surv = Some(surv);
        self
    }
}

impl Stage for Output {
    fn do_work(&mut self) -> Progress {
        let mut worked = false;
        let bars_done = match &mut self.bars {
            Some(b) => {
                worked |= b.work(BATCH);
                b.done()
            }
            None => true,
        };
        let bars_done = bars_done
            && match &mut self.surv {
                Some(s) => {
                    worked |= s.work(BATCH);
                    s.done()
                }
                None => true,
            };
        if self.live == 0 {
            return if bars_done {
                Progress::Done
            } else if worked {
                Progress::Worked
            } else {
                Progress::Idle
            };
        }
        for (i, rx) in self.rxs.iter_mut().enumerate() {
            if self.finished[i] {
                continue;
            }
            // Everything counted here was published before the TSC read below, so `now` is
            // when each of these records had arrived: one read per batch, exact for all of it.
            let n = rx.available().min(BATCH);
            let now = if n > 0 { ticks() } else { 0 };
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
                self.top_changes += (d.flags & TOP_CHANGED != 0) as u64;
            }
            if n > 0 {
                rx.release();
                self.received[i] += n as u64;
                worked = true;
            } else if rx.is_abandoned() && rx.available() == 0 {
                self.finished[i] = true;
                self.live -= 1;
            }
        }
        if self.live == 0 && bars_done {
            Progress::Done
        } else if worked {
            Progress::Worked
        } else {
            Progress::Idle
        }
    }
}
