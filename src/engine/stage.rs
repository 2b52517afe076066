//! Stages, the threads that run them, and what each thread measured.

use super::host::HostTime;
use super::wait::{Idle, WaitStrategy};
use crate::clock::{ticks, TickScale};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};

/// What a stage's [`Stage::do_work`] call achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Did some work; call again soon.
    Worked,
    /// Nothing to do right now.
    Idle,
    /// Finished for good (its outputs are closed).
    Done,
}

/// One step of a pipeline: does a bounded batch of work and returns, never blocking.
pub trait Stage {
    /// Does up to one batch of work.
    fn do_work(&mut self) -> Progress;
}

/// A gap between two idle polls at least this long is a host hiccup, ns: an idle round is a
/// few tens of ns, so the rest is time the thread did not run (an interrupt, the scheduler, the
/// hypervisor).
pub const HICCUP_NS: u64 = 1_000;
/// A hiccup at least this long is a stall, ns.
pub const STALL_NS: u64 = 1_000_000;

/// Host hiccups seen by one spinning thread between its idle polls.
#[derive(Clone, Debug)]
pub struct Hiccups {
    /// Gaps of at least [`HICCUP_NS`], ns.
    pub gaps: Histogram<u64>,
    /// Idle time observed (the sum of all gaps between consecutive idle polls), ns.
    pub observed_ns: u64,
    last: u64,
    scale: TickScale,
}

impl Hiccups {
    pub(crate) fn new(scale: TickScale) -> Hiccups {
        Hiccups {
            gaps: crate::latency::histogram(),
            observed_ns: 0,
            last: 0,
            scale,
        }
    }

    /// An idle poll now.
    #[inline]
    fn poll(&mut self) {
        let now = ticks();
        if self.last != 0 {
            let gap = self.scale.between(self.last, now);
            self.observed_ns += gap;
            if gap >= HICCUP_NS {
                self.gaps.saturating_record(gap);
            }
        }
        self.last = now;
    }

    /// Work, or a deliberate yield or sleep, since the last poll: the next gap is not the host's.
    #[inline(always)]
    fn forget(&mut self) {
        self.last = 0;
    }
}

/// One engine thread, as run.
#[derive(Clone, Debug, Serialize)]
pub struct ThreadReport {
    /// Thread name (its stages).
    pub name: String,
    /// The core it was pinned to, if pinning succeeded.
    pub core: Option<usize>,
    /// Idle polls (rounds in which none of its stages had work).
    pub idle_polls: u64,
    /// Idle time over which hiccups were watched, ns.
    pub observed_ns: u64,
    /// Hiccups: gaps of ≥ 1 µs between idle polls.
    pub hiccups: u64,
    /// Hiccups of ≥ 1 ms.
    pub stalls: u64,
    /// Hiccup percentiles, ns.
    pub hiccup_p50_ns: u64,
    /// Hiccup percentiles, ns.
    pub hiccup_p99_ns: u64,
    /// The longest hiccup, ns.
    pub hiccup_max_ns: u64,
    /// The hiccups themselves (ns), for merging and plotting.
    #[serde(skip)]
    pub hiccup_histogram: Histogram<u64>,
    /// What the host took, from the kernel's accounts: measured whether or not it idled.
    pub host: HostTime,
}

impl ThreadReport {
    pub(crate) fn new(
        name: String,
        core: Option<usize>,
        idle_polls: u64,
        h: Hiccups,
        host: HostTime,
    ) -> ThreadReport {
        let g = &h.gaps;
        let stalls = g.count_between(STALL_NS, u64::MAX);
        ThreadReport {
            name,
            core,
            idle_polls,
            observed_ns: h.observed_ns,
            hiccups: g.len(),
            stalls,
            hiccup_p50_ns: g.value_at_quantile(0.5),
            hiccup_p99_ns: g.value_at_quantile(0.99),
            hiccup_max_ns: g.max(),
            hiccup_histogram: h.gaps,
            host,
        }
    }
}

/// Runs a group of stages on this thread until all are done or `abort` is set (`done`: one
/// flag per stage, all false, and `hiccups`: allocated by the caller, so the loop itself
/// allocates nothing). Returns its idle polls and the hiccups seen.
pub(crate) fn run_group<S: Stage>(
    stages: &mut [S],
    done: &mut [bool],
    wait: WaitStrategy,
    abort: &AtomicBool,
    mut hiccups: Hiccups,
) -> (u64, Hiccups) {
    let mut idle = Idle::new(wait);
    let mut left = stages.len();
    // Relaxed: a request to stop soon (another thread failed); the rings order the data.
    while left > 0 && !abort.load(Ordering::Relaxed) {
        let mut worked = false;
        for (s, d) in stages.iter_mut().zip(done.iter_mut()) {
            if *d {
                continue;
            }
            match s.do_work() {
                Progress::Worked => worked = true,
                Progress::Idle => {}
                Progress::Done => {
                    *d = true;
                    left -= 1;
                    worked = true;
                }
            }
        }
        if worked {
            idle.reset();
            hiccups.forget();
        } else {
            hiccups.poll();
            if idle.wait() {
                hiccups.forget();
            }
        }
    }
    (idle.polls, hiccups)
}

/// Packs stages of `weights` onto at most `threads` groups, heaviest first onto the lightest
/// group: the stage indices of each group.
pub fn pack(weights: &[u32], threads: usize) -> Vec<Vec<usize>> {
    let threads = threads.clamp(1, weights.len().max(1));
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(weights[i]));
    let mut groups: Vec<(u32, Vec<usize>)> = (0..threads).map(|_| (0, Vec::new())).collect();
    for i in order {
        let g = groups
            .iter_mut()
            .min_by_key(|g| g.0)
            .expect("at least one group");
        g.0 += weights[i];
        g.1.push(i);
    }
    groups.into_iter().map(|g| g.1).collect()
}

#[cfg(test)]
mod tests {
    use super::pack;

    #[test]
    fn packs_heaviest_first_onto_the_lightest_thread() {
        // 2 workers (8 each), a reader (4·2) and an output (2) on 2 threads.
        let g = pack(&[8, 8, 8, 2], 2);
        assert_eq!(g, vec![vec![0, 2], vec![1, 3]]);
        // More threads than stages: one stage each.
        assert_eq!(pack(&[1, 2], 8).len(), 2);
    }

    #[test]
    fn every_stage_lands_in_exactly_one_group() {
        for threads in 1..6 {
            let w = [5, 1, 9, 9, 3, 7, 2];
            let mut all: Vec<usize> = pack(&w, threads).concat();
            all.sort();
            assert_eq!(all, (0..w.len()).collect::<Vec<_>>());
        }
    }
}
