//! Checkpoint cuts: the reader flags one mark of a clock now and then as a checkpoint, and
//! records its own state there, so that a run can later start again at exactly that point.
//!
//! A flagged mark carries [`CKPT_FLAG`] in its clock number; every shard sees it at the same
//! feed position, so each operator's snapshot there, together with the reader's [`ReaderCut`],
//! is one consistent cut of the run.

use super::marks::MarkGen;
use std::sync::Arc;

/// Set in a mark's clock number when the mark is a checkpoint.
pub const CKPT_FLAG: u8 = 0x80;

/// Set in the clock number of the final marks of a feed stopped early (the stop flag: Ctrl-C,
/// or another stage's failure), not ended. A periodic clock's first final mark is at the last
/// message's time, so an operator can tell where the feed stopped (surveillance joins no flow
/// past it).
pub const STOP_FLAG: u8 = 0x40;

/// How often the reader flags a checkpoint (at the next mark of the checkpoint clock after it
/// is due).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CkptEvery {
    /// Every this many messages.
    Messages(u64),
    /// Every this much event time, ns.
    FeedNs(u64),
}

/// The reader's state at a checkpoint: where the next item starts and everything that places
/// marks and numbers items from there.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ReaderCut {
    /// The checkpoint's number (1, 2, …).
    pub n: u64,
    /// Feed position of the first item after the cut.
    pub seq: u32,
    /// Items sent before the cut.
    pub messages: u64,
    /// Event time of the last item before the cut.
    pub last_ts: u64,
    /// Out-of-order items before the cut.
    pub out_of_order_ts: u64,
    /// Marks sent per clock.
    pub marks_sent: Vec<u64>,
    /// Each clock's schedule.
    pub gens: Vec<MarkGen>,
    /// The source's own state ([`super::Source::checkpoint`]): e.g. its byte offset.
    pub source: Vec<u8>,
    /// Items sent when the last checkpoint was flagged.
    pub since_messages: u64,
    /// Event time when the last checkpoint was flagged (or of the first item).
    pub since_ts: Option<u64>,
    /// The reader's counters of each worker ring before the cut (the mark included), so that
    /// a resumed run's report counts the whole run.
    pub rings: Vec<super::RingCounters>,
}

/// A worker's counters at a cut (its checkpoint mark taken): what a resumed run's worker
/// starts from, so that its report counts the whole run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkerCut {
    /// Events the operator processed.
    pub processed: u64,
    /// Events it rejected.
    pub rejected: u64,
    /// Marks taken (the checkpoint mark included).
    pub marks: u64,
    /// Events that changed a best bid or offer ([`super::Tag::FLAGGED`]).
    pub flagged: u64,
    /// Times its output ring was found full.
    pub out_full: u64,
}

impl WorkerCut {
    /// Items taken from its input ring: every event and mark.
    pub fn popped(&self) -> u64 {
        self.processed + self.rejected + self.marks
    }

    /// Records sent to the output stage: one per event.
    pub fn records(&self) -> u64 {
        self.processed + self.rejected
    }
}

/// Called by worker `shard` when it takes the checkpoint mark at feed position `seq` (the
/// cut's [`ReaderCut::seq`]), with its counters there.
pub type OnWorkerCut = Arc<dyn Fn(usize, u32, &WorkerCut) + Send + Sync>;

/// Called by the reader at each cut (it may allocate and write files: checkpoints are rare).
pub type OnCut = Arc<dyn Fn(&ReaderCut) + Send + Sync>;

/// A run's checkpoints.
#[derive(Clone)]
pub struct Checkpoints {
    /// How often.
    pub every: CkptEvery,
    /// The clock whose marks are flagged (the run's last clock: its mark is the last one sent
    /// at a feed position).
    pub clock: u8,
    /// What the reader does with its state at a cut.
    pub on_cut: OnCut,
    /// What each worker does with its counters at a cut.
    pub on_worker_cut: OnWorkerCut,
    /// Start at this cut instead of the beginning (the source must be positioned there).
    pub resume: Option<ReaderCut>,
    /// With `resume`: each worker's counters at that cut (worker `i` at index `i`).
    pub resume_workers: Vec<WorkerCut>,
}

impl std::fmt::Debug for Checkpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoints")
            .field("every", &self.every)
            .field("clock", &self.clock)
            .field("resume", &self.resume)
            .finish_non_exhaustive()
    }
}

impl Checkpoints {
    /// Whether a checkpoint is due at an item stamped `ts` with `messages` sent, the last one
    /// flagged at (`since_messages`, `since_ts`).
    pub(crate) fn due(&self, messages: u64, ts: u64, since: (u64, &mut Option<u64>)) -> bool {
        match self.every {
            CkptEvery::Messages(n) => messages.saturating_sub(since.0) >= n.max(1),
            CkptEvery::FeedNs(ns) => ts.saturating_sub(*since.1.get_or_insert(ts)) >= ns.max(1),
        }
    }
}
