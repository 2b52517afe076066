//! What a job plugs into the engine: an operator per shard and a collector in the output stage.

use super::{Clock, Event, Tag};

/// A shard operator: runs in a pinned worker thread and sees, in feed order, every event routed
/// to its shard and every mark. It must not allocate, lock or block after construction.
///
/// The engine is generic over the operator (no `dyn`), so each job's worker loop is compiled
/// for it: the hooks an operator leaves at their defaults cost nothing.
pub trait ShardOp: Send {
    /// The events it takes.
    type Event: Event;
    /// Name of its per-event stage in the latency report (e.g. "book update").
    const STAGE: &'static str = "operator";
    /// What its stage's latency spans, in the report.
    const SPAN: &'static str = "take → next take (the operator)";
    /// Whether it wants [`ShardOp::on_idle`] with the reader's published position (the reader
    /// then announces it after every batch).
    const FRONTIER: bool = false;

    /// Set-up on its own thread before the run starts (e.g. touch its tables, so their pages
    /// are faulted in by the core that will use them, in parallel with the other shards).
    fn prepare(&mut self) {}

    /// A hint, [`ShardOp::FAR`] events ahead of the one being processed: e.g. prefetch the
    /// state it will touch.
    #[inline(always)]
    fn prefetch_far(&self, _ev: &Self::Event) {}
    /// A hint, [`ShardOp::NEAR`] events ahead.
    #[inline(always)]
    fn prefetch_near(&self, _ev: &Self::Event) {}
    /// Events ahead for [`ShardOp::prefetch_far`].
    const FAR: usize = 16;
    /// Events ahead for [`ShardOp::prefetch_near`].
    const NEAR: usize = 4;

    /// Whether its own output rings have room for whatever the next item can produce (a mark
    /// when `mark`); if not, the worker stops its batch there and tries again later.
    #[inline(always)]
    fn has_room(&mut self, _mark: bool) -> bool {
        true
    }

    /// Does what the last item left undone for want of room in its output rings (the worker
    /// calls it when its input is empty, and before closing); whether all of it is done.
    fn flush(&mut self) -> bool {
        true
    }

    /// One event of its shard.
    fn on_event(&mut self, ev: &Self::Event) -> Tag;

    /// A mark of clock `clock` at feed position `seq`: event time has passed `wm` on the whole
    /// feed (the same feed positions for any shard count).
    #[inline(always)]
    fn on_mark(&mut self, _wm: u64, _clock: u8, _seq: u32) {}

    /// The shard's input is empty and the reader has published the feed up to `pos`
    /// (`FRONTIER` operators only): every later event of this shard comes at or after `pos`.
    #[inline(always)]
    fn on_idle(&mut self, _pos: u32) {}

    /// The end of a batch of events: publish what was staged.
    #[inline(always)]
    fn end_of_batch(&mut self) {}

    /// The input has ended: publish and close its outputs.
    fn close(&mut self) {}
}

/// The output stage's part of a job: merges what the operators sent on their own rings.
pub trait Collector: Send {
    /// Does up to `budget` items of work; true if it did any.
    fn work(&mut self, budget: usize) -> bool;
    /// Whether every input has ended and been handled.
    fn done(&self) -> bool;
}

impl Collector for () {
    #[inline(always)]
    fn work(&mut self, _budget: usize) -> bool {
        false
    }
    fn done(&self) -> bool {
        true
    }
}

impl<A: Collector, B: Collector> Collector for (A, B) {
    #[inline]
    fn work(&mut self, budget: usize) -> bool {
        let a = self.0.work(budget);
        self.1.work(budget) | a
    }
    fn done(&self) -> bool {
        self.0.done() && self.1.done()
    }
}

/// What a job builds for a run over `shards` shards.
#[derive(Debug)]
pub struct Plan<O, C> {
    /// One operator per shard, shard `i` at index `i`.
    pub ops: Vec<O>,
    /// The output stage's collector.
    pub collector: C,
    /// Its mark clocks (numbered by position).
    pub clocks: Vec<Clock>,
}

/// A job: builds its operators (and the rings between them and its collector) for a run.
pub trait Job {
    /// The shard operator.
    type Op: ShardOp;
    /// The output stage's collector.
    type Collector: Collector;
    /// Why it cannot be built.
    type Error: std::error::Error + 'static;
    /// Builds the job for `shards` shards.
    fn build(self, shards: usize) -> Result<Plan<Self::Op, Self::Collector>, Self::Error>;
}
