//! The engine: a source, shard operators on pinned threads, and a collector, joined by SPSC
//! [`ring`](crate::ring)s. It knows nothing of markets: the market jobs (books, bars,
//! surveillance) and the record jobs are built on it, as a user's own job can be.
//!
//! ```text
//!                        ┌─▶ ring ─▶ worker 0 (ShardOp of shard 0) ─▶ ring ─┐
//!  Source ─▶ reader ─────┼─▶ ring ─▶ worker 1 (ShardOp of shard 1) ─▶ ring ─┼─▶ output
//!   (read, stamp, marks, └─▶ …                                              ┘  (latency, counters,
//!    route)                                                                     the Collector)
//! ```
//!
//! * A [`Source`] yields items, tells their event time and routes each to one shard or to all.
//!   The reader stamps each with its latency origin and feed position, inserts the watermark
//!   marks of the job's [`Clock`]s (at the same feed positions for any shard count), paces a
//!   replay, and applies [`Backpressure`]. A live source may answer "nothing yet"
//!   ([`Source::ended`]: the reader yields) and stamp each item with its arrival
//!   ([`Source::arrival`]: the latency then starts on the wire).
//! * A [`ShardOp`] per shard sees its events and every mark in feed order, in a worker that
//!   reads them in place from the ring, with the operator's prefetch hints. Operators are
//!   generic parameters, never `dyn`: each job's worker loop is compiled for it.
//! * A [`Collector`] in the output stage merges what the operators send on rings of their own,
//!   e.g. with the deterministic k-way [`merge::Merge`], so output does not depend on the shard
//!   count.
//! * **Stages** do a bounded batch of work per call and never block; a thread runs one or more
//!   of them round-robin and applies its [`WaitStrategy`] only when none had work. With fewer
//!   cores than stages they are packed by estimated load (largest first) and each thread is
//!   pinned to a core of [`Config::cores`].
//! * **Failure containment**: a stage that panics sets a flag every thread checks once per
//!   round, so the run stops at once and returns [`EngineError::Panicked`].
//! * **Latency** is recorded per stage and end to end, and each thread watches its idle polls
//!   for host hiccups ([`ThreadReport`]).
//!
//! # Example: a keyed running sum on two shards
//! ```
//! use std::sync::atomic::{AtomicBool, AtomicU64};
//! use tickwatch::engine::{self, Collector, Config, Control, Plan, Route, ShardOp, Source, Tag};
//!
//! #[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
//! #[repr(C)]
//! struct Ev { origin: u64, seq: u32, key: u16, mark: u16, value: u64 }
//!
//! impl engine::Event for Ev {
//!     fn origin(&self) -> u64 { self.origin }
//!     fn seq(&self) -> u32 { self.seq }
//!     fn set_header(&mut self, origin: u64, seq: u32) { self.origin = origin; self.seq = seq; self.mark = 0; }
//!     fn set_mark(&mut self, wm: u64, clock: u8, seq: u32) {
//!         *self = Ev { origin: 0, seq, key: 0, mark: 1 + clock as u16, value: wm };
//!     }
//!     fn mark(&self) -> Option<(u64, u8)> { (self.mark != 0).then(|| (self.value, self.mark as u8 - 1)) }
//! }
//!
//! /// Keys 0..8, value = index.
//! struct Counting { next: u64, end: u64 }
//! #[derive(Debug)]
//! struct Never;
//! impl std::fmt::Display for Never {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("never") }
//! }
//! impl std::error::Error for Never {}
//! impl Source for Counting {
//!     type Event = Ev;
//!     type Error = Never;
//!     fn advance(&mut self) -> Option<Result<(), Never>> {
//!         (self.next < self.end).then(|| { self.next += 1; Ok(()) })
//!     }
//!     fn time(&self) -> u64 { self.next }
//!     fn route(&self, shards: usize) -> Route { Route::One(self.next as usize % 8 % shards) }
//!     fn write(&self, slot: &mut Ev) { slot.key = (self.next % 8) as u16; slot.value = self.next; }
//! }
//!
//! /// Sums per key in this shard.
//! struct Sum([u64; 8]);
//! impl ShardOp for Sum {
//!     type Event = Ev;
//!     fn on_event(&mut self, ev: &Ev) -> Tag {
//!         self.0[ev.key as usize] += ev.value;
//!         Tag { key: ev.key, ..Tag::default() }
//!     }
//! }
//!
//! let cfg = Config { workers: 2, ..Config::default() };
//! let plan = Plan { ops: vec![Sum([0; 8]), Sum([0; 8])], collector: (), clocks: vec![] };
//! let (stop, progress) = (AtomicBool::new(false), AtomicU64::new(0));
//! let done = engine::run(Counting { next: 0, end: 1000 }, plan, &cfg,
//!                        Control { stop: &stop, progress: &progress }).unwrap();
//! assert_eq!(done.report.processed, 1000);
//! let total: u64 = done.ops.iter().flat_map(|o| o.0).sum();
//! assert_eq!(total, (1..=1000).sum::<u64>());
//! ```

pub mod cut;
mod event;
mod host;
pub mod marks;
pub mod merge;
mod op;
mod output;
mod reader;
mod record;
mod run;
mod source;
mod stage;
pub mod wait;
mod worker;

pub use cut::{Checkpoints, CkptEvery, OnWorkerCut, ReaderCut, WorkerCut, CKPT_FLAG, STOP_FLAG};
pub use event::{Done, Event, SeqOrder, Tag};
pub use host::{HostMark, HostTime};
pub use marks::{Clock, Frontier, MarkGen, MAX_CLOCKS, UNTIMED};
pub use op::{Collector, Job, Plan, ShardOp};
pub use reader::{Control, Pacer};
pub use record::Record;
pub use run::{run, run_job, Finished, JobFailure, JobFinished};
pub use source::{Route, Source};
pub use stage::{pack, Progress, Stage, ThreadReport, HICCUP_NS, STALL_NS};
pub use wait::WaitStrategy;

use crate::clock::TickScale;
use crate::latency::StageLatency;
use serde::Serialize;

/// What a full ring does with a new event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Backpressure {
    /// Wait for room: lossless (replay; the default).
    #[default]
    Block,
    /// Drop the newest event and count it (live feeds, where falling behind is worse).
    Drop,
}

/// Counters of one ring, kept by its producer (and its consumer's count beside it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RingCounters {
    /// Slots.
    pub capacity: usize,
    /// Items pushed.
    pub pushed: u64,
    /// Items the consumer took.
    pub popped: u64,
    /// Times the producer found the ring full (each a wait under `block`).
    pub full: u64,
    /// Items dropped because the ring was full (`drop` policy).
    pub dropped: u64,
}

impl RingCounters {
    /// Zeroed counters for a ring of `capacity` slots.
    pub fn new(capacity: usize) -> RingCounters {
        RingCounters {
            capacity,
            ..Default::default()
        }
    }
}

/// The most shard workers a run can have.
pub const MAX_WORKERS: usize = 1024;
/// The largest ring, in slots.
pub const MAX_RING: usize = 1 << 24;

/// How to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Shard workers (1..=[`MAX_WORKERS`]).
    pub workers: usize,
    /// Cores to pin threads to, in order of use; empty: do not pin, one thread per available
    /// CPU at most.
    pub cores: Vec<usize>,
    /// How idle threads wait.
    pub wait: WaitStrategy,
    /// What a full reader → worker ring does.
    pub backpressure: Backpressure,
    /// `None`: as fast as possible; `Some(s)`: paced at s × the source's own event times.
    pub speed: Option<f64>,
    /// In a paced run, items stamped before this are sent as fast as possible and not timed
    /// (fast-forward); pacing starts at the first one at or after it.
    pub pace_from: u64,
    /// Stop before the first item stamped after this.
    pub until: Option<u64>,
    /// Slots per ring (2..=[`MAX_RING`], rounded up to a power of two).
    pub ring_capacity: usize,
    /// Time every stage on every event, as well as end to end. Off, only end to end is
    /// recorded and the workers read no clock at all.
    pub stage_timing: bool,
    /// With stage timing, time the stages of one event in this many (a power of two,
    /// 1..=65536; 1: every event), chosen by a hash of its feed position so that no batch or
    /// ring pattern lines up with the sample. End to end is timed on every event regardless.
    pub stage_sample: u32,
    /// Called on each engine thread after its setup, with `true`, and after its loop ends,
    /// with `false` (tests use it to count allocations in the steady state only).
    pub thread_hook: Option<fn(bool)>,
    /// The TSC scale (`None`: [`TickScale::cached`]).
    pub scale: Option<TickScale>,
    /// Checkpoints, and where to resume (`None`: none).
    pub checkpoints: Option<Checkpoints>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            workers: 1,
            cores: Vec::new(),
            wait: WaitStrategy::BusySpin,
            backpressure: Backpressure::Block,
            speed: None,
            pace_from: 0,
            until: None,
            ring_capacity: 1 << 14,
            stage_timing: true,
            stage_sample: 1,
            thread_hook: None,
            scale: None,
            checkpoints: None,
        }
    }
}

impl Config {
    /// Checks every value against its allowed range.
    ///
    /// # Errors
    /// The first value out of range, naming it and the range.
    pub fn validate(&self) -> Result<(), EngineError> {
        let bad = |what: &str, range: &str, v: &dyn std::fmt::Display| {
            Err(EngineError::Config(format!(
                "{what} is {v}, allowed {range}"
            )))
        };
        if !(1..=MAX_WORKERS).contains(&self.workers) {
            return bad("workers", "1..=1024", &self.workers);
        }
        if !(2..=MAX_RING).contains(&self.ring_capacity) {
            return bad("ring capacity", "2..=16777216", &self.ring_capacity);
        }
        if !(self.stage_sample.is_power_of_two() && self.stage_sample <= 1 << 16) {
            return bad(
                "stage sample",
                "a power of two in 1..=65536",
                &self.stage_sample,
            );
        }
        if let Some(s) = self.speed {
            if !(s.is_finite() && s > 0.0 && s <= 1e9) {
                return bad("speed", "a number > 0 and ≤ 1e9", &s);
            }
        }
        Ok(())
    }
}

/// Which events have their stages timed: none, all, or one in `n`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sampler {
    on: bool,
    mask: u32,
}

impl Sampler {
    pub(crate) fn new(cfg: &Config) -> Sampler {
        Sampler {
            on: cfg.stage_timing,
            mask: cfg.stage_sample.max(1) - 1,
        }
    }

    /// Whether the event at feed position `seq` is timed stage by stage.
    #[inline(always)]
    pub(crate) fn hit(self, seq: u32) -> bool {
        // Fibonacci hashing: consecutive positions scatter evenly over the sample's residues.
        self.on && (seq.wrapping_mul(0x9E37_79B9) >> 16) & self.mask == 0
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A configuration value is out of range.
    #[error("{0}")]
    Config(String),
    /// A stage panicked; every other stage was stopped.
    #[error("thread {thread} failed: {message}")]
    Panicked {
        /// The thread (named after its stages).
        thread: String,
        /// The panic's message.
        message: String,
    },
    /// An engine thread could not be started.
    #[error("could not start an engine thread: {0}")]
    Spawn(String),
}

/// Everything the engine measured in a run.
#[derive(Debug, Serialize)]
pub struct EngineReport {
    /// Items the reader sent (items for every shard counted once).
    pub messages: u64,
    /// Deliveries offered to the worker rings (an item for every shard counts once per shard).
    pub offered: u64,
    /// Deliveries dropped on full rings (`drop` policy).
    pub dropped: u64,
    /// Events the operators processed.
    pub processed: u64,
    /// Events the operators rejected.
    pub rejected: u64,
    /// Records the output stage received.
    pub output_received: u64,
    /// Records the operators flagged.
    pub flagged: u64,
    /// Items stamped earlier than the one before.
    pub out_of_order_ts: u64,
    /// Events seen out of feed order by a worker or the output stage (always 0 unless the
    /// rings are broken; checked on every event).
    pub order_violations: u64,
    /// The source stopped at the `until` time.
    pub stopped_at_until: bool,
    /// Stopped by the stop flag before the end of the source.
    pub interrupted: bool,
    /// Marks the workers took (each mark reaches every worker).
    pub marks: u64,
    /// Marks the reader sent, per clock.
    pub marks_sent: Vec<u64>,
    /// Wall time from the last thread ready (its operators prepared) to the last finishing, ns.
    pub elapsed_ns: u64,
    /// `messages` / elapsed.
    pub messages_per_s: f64,
    /// Reader → worker rings, then worker → output rings.
    pub rings: Vec<RingCounters>,
    /// Per-stage latency, merged across threads, in pipeline order; the last is end to end.
    pub latency: Vec<StageLatency>,
    /// The threads, with their host hiccups.
    pub threads: Vec<ThreadReport>,
    /// TSC rate used for conversion.
    pub ticks_per_ns: f64,
}
