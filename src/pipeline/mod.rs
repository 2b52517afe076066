//! The market jobs on the [engine](crate::engine): an ITCH source, the shard workers' order
//! books with the jobs that watch them (bars, surveillance, or both in one run), and their
//! collectors in the output stage.
//!
//! ```text
//!                        ┌─▶ ring ─▶ worker 0 (books of locates ≡ 0 mod N) ─▶ ring ─┐
//!  mapped file ─▶ reader ┼─▶ ring ─▶ worker 1 (books of locates ≡ 1 mod N) ─▶ ring ─┼─▶ output
//!   (frame, validate,    └─▶ …                                                      ┘  (e2e latency,
//!    stamp, route)                                                                     counters)
//! ```
//!
//! * **Stages** ([`Stage`]) do a bounded batch of work per [`Stage::do_work`] call and never
//!   block inside it; a thread runs one or more stages round-robin and applies its
//!   [`WaitStrategy`] only when none of them had work. So stages can share a core without
//!   deadlock, and each waits in exactly one place.
//! * **Threads and cores.** With at least N + 2 cores every stage gets its own thread; with
//!   fewer, stages are packed onto one thread per core by estimated load (largest first), e.g.
//!   on 2 cores with 2 workers: {worker 0, reader} and {worker 1, output}. Each thread is named
//!   after its stages (`tw-worker-0+reader`) and pinned with `core_affinity` to a core of the
//!   user's list.
//! * **Sharding.** A message goes to worker `locate % N`, so each stock's events stay in order on
//!   one worker, which owns its books; market-wide messages (locate 0) go to every worker.
//! * **Backpressure** ([`Backpressure`]): `block` holds the message until its ring has room
//!   (lossless replay); `drop` discards it and counts it (live). Rings after the workers always
//!   block (a worker takes only as many events as its output ring has room for).
//! * **Latency** is recorded on every event, per stage and thread, into preallocated
//!   histograms merged after the run: reader (read → staged), worker queue (origin → taken),
//!   book update, output hop, and end to end (origin → output). In paced replay the origin is the
//!   time an event was *due*, so a stall counts against every event it delays.

pub mod alerts;
pub mod bars;
pub mod ckpt;
pub mod event;
pub mod gap;
pub mod journal;
pub mod live;
pub mod op;
pub mod sizing;
pub mod source;

use crate::book::{BookConfig, BookStats, Books};
use crate::clock::TickScale;
pub use crate::engine::wait;
pub use crate::engine::{Backpressure, Progress, RingCounters, Stage, ThreadReport, WaitStrategy};
use crate::engine::{Clock, Collector, Config, Control, EngineError, Finished, Plan};
use crate::inspect::InspectError;
use crate::latency::StageLatency;
use crate::ring::ring;
use crate::surv::Surveillance;
use alerts::{SurvJob, SurvMerge, SurvReport, SurvWorker};
pub use bars::BarsConfig;
use bars::{BarsMerge, BarsReport, BarsWorker};
use op::{BookHook, BookOp};
use serde::Serialize;
pub use source::{CaptureScan, CaptureSource, FeedOptions, ItchSource};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

/// How to run the pipeline.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// Shard workers (≥ 1).
    pub workers: usize,
    /// Cores to pin threads to, in order of use; empty: do not pin, one thread per available
    /// CPU at most.
    pub cores: Vec<usize>,
    /// How idle threads wait.
    pub wait: WaitStrategy,
    /// What a full reader → worker ring does.
    pub backpressure: Backpressure,
    /// `None`: as fast as possible; `Some(s)`: paced at s × the feed's own timestamps.
    pub speed: Option<f64>,
    /// In a paced run, messages stamped before this (ns since midnight) are sent as fast as
    /// possible and not timed (fast-forward), pacing starts at the first one at or after it.
    pub pace_from: u64,
    /// Where the feed stops, and whether bad lengths are skipped.
    pub feed: FeedOptions,
    /// Slots per ring (rounded up to a power of two).
    pub ring_capacity: usize,
    /// Time every stage (reader, worker queue, book update, output hop) on every event, as well
    /// as end to end. Off, only end-to-end latency is recorded (still on every event: the reader
    /// stamps each event's origin, the output stage reads the clock per batch) and the workers
    /// read no clock at all — measured to save ≈ 27 ns per event on a 2 M-order book, where
    /// `RDTSC` curtails the overlap of cache misses.
    pub stage_timing: bool,
    /// With stage timing, the stages of one event in this many are timed (a power of two;
    /// 1: every event), see [`Config::stage_sample`].
    pub stage_sample: u32,
    /// Most book capacities per worker: each worker's books are sized to what its stocks add in
    /// the feed, up to these (see [`sizing::FeedCounts::books`]).
    pub books: BookConfig,
    /// Called on each pipeline thread after its setup, with `true`, and after its loop ends,
    /// with `false` (tests use it to count allocations in the steady state only).
    pub thread_hook: Option<fn(bool)>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            workers: 1,
            cores: Vec::new(),
            wait: WaitStrategy::BusySpin,
            backpressure: Backpressure::Block,
            speed: None,
            pace_from: 0,
            feed: FeedOptions::default(),
            ring_capacity: 1 << 14,
            stage_timing: true,
            stage_sample: 1,
            books: BookConfig::full_day(),
            thread_hook: None,
        }
    }
}

impl PipelineConfig {
    /// The engine's part of this configuration.
    pub fn engine(&self) -> Config {
        Config {
            workers: self.workers,
            cores: self.cores.clone(),
            wait: self.wait,
            backpressure: self.backpressure,
            speed: self.speed,
            pace_from: self.pace_from,
            until: self.feed.until,
            ring_capacity: self.ring_capacity,
            stage_timing: self.stage_timing,
            stage_sample: self.stage_sample,
            thread_hook: self.thread_hook,
            scale: None,
            checkpoints: None,
        }
    }
}

/// Everything a run measured.
#[derive(Debug, Serialize)]
pub struct RunReport {
    /// Messages the reader decoded and sent (market-wide ones counted once).
    pub messages: u64,
    /// Deliveries offered to the worker rings (a market-wide message counts once per worker).
    pub offered: u64,
    /// Deliveries dropped on full rings (`drop` policy).
    pub dropped: u64,
    /// Events the workers processed.
    pub processed: u64,
    /// Records the output stage received.
    pub output_received: u64,
    /// Events that changed a best bid or offer.
    pub top_changes: u64,
    /// Unknown-type frames skipped by the reader.
    pub skipped_unknown: u64,
    /// Known types with a wrong length skipped by the reader (lenient mode).
    pub skipped_bad_lengths: u64,
    /// Messages stamped earlier than the one before.
    pub out_of_order_ts: u64,
    /// Events seen out of feed order by a worker or the output stage (always 0 unless the
    /// rings are broken; checked on every event).
    pub order_violations: u64,
    /// The feed stopped at the `until` time.
    pub stopped_at_until: bool,
    /// Events a worker could not decode (0 unless something is badly wrong).
    pub undecodable: u64,
    /// Stopped by Ctrl-C before the end of the file.
    pub interrupted: bool,
    /// Marks the reader sent, per mark clock.
    pub marks_sent: Vec<u64>,
    /// Watermark marks the workers took (a windowed job's marks reach every worker).
    pub marks: u64,
    /// The windowed bars job, when the run had one.
    pub bars: Option<bars::BarsReport>,
    /// The surveillance job's report, when the run had one.
    pub surv: Option<alerts::SurvReport>,
    /// Checkpoints written (and where the run resumed from), when it took them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoints: Option<ckpt::CkptReport>,
    /// Wall time from the first stage starting to the last finishing, ns.
    pub elapsed_ns: u64,
    /// `messages` / elapsed.
    pub messages_per_s: f64,
    /// Reader → worker rings, then worker → output rings.
    pub rings: Vec<RingCounters>,
    /// Per-stage latency, merged across threads, in pipeline order; the last is end to end.
    pub latency: Vec<StageLatency>,
    /// The threads.
    pub threads: Vec<ThreadReport>,
    /// Book counters summed over the workers.
    pub book_stats: BookStats,
    /// Live orders summed over the workers at the end.
    pub live_orders: usize,
    /// Configuration echo.
    pub workers: usize,
    /// Configuration echo.
    pub wait: WaitStrategy,
    /// Configuration echo.
    pub backpressure: Backpressure,
    /// Configuration echo (`None`: max).
    pub speed: Option<f64>,
    /// Configuration echo.
    pub stage_timing: bool,
    /// Configuration echo: stages timed on one event in this many.
    pub stage_sample: u32,
    /// TSC rate used for conversion.
    pub ticks_per_ns: f64,
}

impl RunReport {
    /// The conservation law every run must satisfy: every delivery offered to a worker ring was
    /// processed or counted as dropped, and the output stage heard of every processed event.
    ///
    /// # Errors
    /// The first count that does not balance.
    pub fn check_conservation(&self) -> Result<(), Imbalance> {
        let handled = self.processed + self.dropped + self.undecodable + self.marks;
        if self.offered != handled {
            return Err(Imbalance::Offered {
                offered: self.offered,
                processed: self.processed,
                dropped: self.dropped,
                undecodable: self.undecodable,
                marks: self.marks,
            });
        }
        if let Some(lost) = self.bars.as_ref().map(|b| b.lost).filter(|&l| l != 0) {
            return Err(Imbalance::BarRows(lost));
        }
        if self.order_violations != 0 {
            return Err(Imbalance::Order(self.order_violations));
        }
        let events = self.processed + self.undecodable;
        if self.output_received != events {
            return Err(Imbalance::Output {
                received: self.output_received,
                events,
            });
        }
        match self
            .rings
            .iter()
            .enumerate()
            .find(|(_, r)| r.pushed != r.popped)
        {
            Some((ring, r)) => Err(Imbalance::Ring {
                ring,
                pushed: r.pushed,
                popped: r.popped,
            }),
            None => Ok(()),
        }
    }

    /// The end-to-end latency (origin → output stage).
    pub fn end_to_end(&self) -> &StageLatency {
        self.latency.last().expect("a run always reports latency")
    }
}

/// A count of a run that does not balance (never expected: a bug if ever seen).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Imbalance {
    /// Deliveries offered ≠ processed + dropped + undecodable + marks.
    #[error("offered {offered} ≠ processed {processed} + dropped {dropped} + undecodable {undecodable} + marks {marks}")]
    Offered {
        /// Deliveries offered.
        offered: u64,
        /// Processed.
        processed: u64,
        /// Dropped.
        dropped: u64,
        /// Undecodable.
        undecodable: u64,
        /// Marks.
        marks: u64,
    },
    /// Bar rows found no room.
    #[error("{0} bar rows found no room")]
    BarRows(u64),
    /// Events out of feed order.
    #[error("{0} events out of order")]
    Order(u64),
    /// The output stage did not hear of every event.
    #[error("output received {received} of {events} events")]
    Output {
        /// Records received.
        received: u64,
        /// Events processed or undecodable.
        events: u64,
    },
    /// A ring's consumer did not take everything.
    #[error("ring {ring}: pushed {pushed} but popped {popped}")]
    Ring {
        /// Its index (reader → worker rings, then worker → output).
        ring: usize,
        /// Pushed.
        pushed: u64,
        /// Popped.
        popped: u64,
    },
}

/// A run's report, and the workers' books (worker `i` holds the stocks with `locate % N == i`).
#[derive(Debug)]
pub struct RunOutcome {
    /// What was measured.
    pub report: RunReport,
    /// Each worker's books.
    pub books: Vec<Books>,
}

/// Which worker owns `locate` among `workers`.
pub fn shard_of(locate: u16, workers: usize) -> usize {
    locate as usize % workers.max(1)
}

/// Where a message of `locate` goes: market-wide ones (locate 0) to every shard, a stock's to
/// its owner.
#[inline(always)]
pub fn route_of(locate: u16, shards: usize) -> crate::engine::Route {
    if locate == 0 {
        crate::engine::Route::All
    } else {
        crate::engine::Route::One(shard_of(locate, shards))
    }
}

/// Why a market run failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The feed is malformed at a byte offset.
    #[error(transparent)]
    Feed(#[from] InspectError),
    /// The window configuration is invalid.
    #[error("window: {0}")]
    Window(#[from] crate::window::WindowError),
    /// Writing the bars failed.
    #[error("writing the bars: {0}")]
    Sink(std::io::Error),
    /// Writing the alerts failed.
    #[error("writing the alerts: {0}")]
    AlertSink(std::io::Error),
    /// The job's options do not go together.
    #[error("{0}")]
    Config(&'static str),
    /// A user detector could not be registered.
    #[error("user detector: {0}")]
    Detector(#[from] crate::surv::UserDetectorError),
    /// The live feed failed (a socket call, or a message that does not decode).
    #[error(transparent)]
    Live(#[from] live::LiveError),
    /// The engine failed (a configuration out of range, a stage that panicked).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A checkpoint could not be used.
    #[error(transparent)]
    Checkpoint(#[from] crate::ckpt::CkptError),
    /// A capture streamed in place is malformed.
    #[error(transparent)]
    Capture(#[from] crate::capture::ExtractError),
}

/// The jobs of one market run: the books always, bars and surveillance when given.
#[derive(Debug, Default)]
pub struct MarketJobs {
    /// Windowed bars.
    pub bars: Option<BarsConfig>,
    /// Surveillance.
    pub surv: Option<SurvJob>,
}

/// Runs `buf` (a BinaryFILE image) through the pipeline: the books only.
///
/// `stop` ends the feed early when set (Ctrl-C); `progress` is updated with the messages read
/// so far (for a progress bar). Allocation happens here, before the threads start their loops:
/// rings, books, histograms.
///
/// # Errors
/// The first framing or decoding error of the feed, naming its byte offset (after the pipeline
/// has drained and stopped cleanly); the engine's errors.
pub fn run(
    buf: &[u8],
    cfg: &PipelineConfig,
    stop: &AtomicBool,
    progress: &AtomicU64,
) -> Result<RunOutcome, JobError> {
    run_market(buf, cfg, MarketJobs::default(), stop, progress)
}

/// [`run`], with a windowed bars job: the workers keep every stock's bars in event-time windows
/// and the output stage writes them, in the same order whatever the worker count.
///
/// # Errors
/// As [`run`]; an invalid window configuration; a write error of the bars' sink.
pub fn run_job(
    buf: &[u8],
    cfg: &PipelineConfig,
    bars: Option<BarsConfig>,
    stop: &AtomicBool,
    progress: &AtomicU64,
) -> Result<RunOutcome, JobError> {
    let jobs = MarketJobs { bars, surv: None };
    run_market(buf, cfg, jobs, stop, progress)
}

/// [`run`], with surveillance: the workers run the detectors of their stocks and the output
/// stage merges their records, runs the risk book and writes the alerts — the same bytes for
/// any worker count.
///
/// # Errors
/// As [`run`]; a write error of the alerts' sink.
pub fn run_surv(
    buf: &[u8],
    cfg: &PipelineConfig,
    surv: SurvJob,
    stop: &AtomicBool,
    progress: &AtomicU64,
) -> Result<RunOutcome, JobError> {
    let jobs = MarketJobs {
        bars: None,
        surv: Some(surv),
    };
    run_market(buf, cfg, jobs, stop, progress)
}

/// [`run`] with any of the market jobs — bars and surveillance together included, each
/// writing what it would write alone.
///
/// # Errors
/// As [`run_job`] and [`run_surv`].
pub fn run_market(
    buf: &[u8],
    cfg: &PipelineConfig,
    jobs: MarketJobs,
    stop: &AtomicBool,
    progress: &AtomicU64,
) -> Result<RunOutcome, JobError> {
    run_market_gapped(buf, None, cfg, jobs, stop, progress)
}

/// [`run_market`] of a feed whose first unfilled gap is at feed position `gap` (a capture's,
/// from [`crate::capture::Extracted::first_gap`]): alerts from there on carry `book_gap`.
///
/// # Errors
/// As [`run_market`].
pub fn run_market_gapped(
    buf: &[u8],
    gap: Option<u32>,
    cfg: &PipelineConfig,
    jobs: MarketJobs,
    stop: &AtomicBool,
    progress: &AtomicU64,
) -> Result<RunOutcome, JobError> {
    let counts = sizing::FeedCounts::of(buf, cfg.workers);
    let src = ItchSource::new(buf, cfg.feed.lenient).with_book_gap(gap);
    let (outcome, _) = run_source(src, &counts, cfg, jobs, stop, progress)?;
    Ok(outcome)
}

/// [`run_market`] of a capture, its messages streamed in place (no copy: memory does not grow
/// with the capture) as `scan`, a first pass over the same bytes, found them: tables
/// sized by its counts, alerts from its first gap on flagged `book_gap`. The same books, alerts
/// and counters as [`run_market_gapped`] over the extracted image.
///
/// # Errors
/// As [`run_market`]; a malformed capture.
pub fn run_capture(
    scan: &source::CaptureScan<'_>,
    cfg: &PipelineConfig,
    jobs: MarketJobs,
    stop: &AtomicBool,
    progress: &AtomicU64,
) -> Result<RunOutcome, JobError> {
    let src = source::CaptureSource::new(scan, cfg.feed.lenient)?;
    let (outcome, _) = run_source(src, &scan.counts, cfg, jobs, stop, progress)?;
    Ok(outcome)
}

/// A source of ITCH messages for the market jobs, with the counts of what it skipped.
pub trait FeedSource: crate::engine::Source<Event = event::Event> {
    /// (unknown types, known types of a wrong length) skipped so far.
    fn skipped(&self) -> (u64, u64);

    /// Where the feed's first unfilled gap is (or will be noted), for the `book_gap` flag of
    /// the alerts; `None` for a feed that cannot lose messages.
    fn book_gap(&self) -> Option<Arc<gap::BookGap>> {
        None
    }
}

impl FeedSource for ItchSource<'_> {
    fn skipped(&self) -> (u64, u64) {
        (self.skipped_unknown, self.skipped_bad_lengths)
    }

    fn book_gap(&self) -> Option<Arc<gap::BookGap>> {
        self.book_gap.clone()
    }
}

impl FeedSource for source::CaptureSource<'_> {
    fn skipped(&self) -> (u64, u64) {
        (self.skipped_unknown, self.skipped_bad_lengths)
    }

    fn book_gap(&self) -> Option<Arc<gap::BookGap>> {
        self.book_gap()
    }
}

/// [`run_market`] over any ITCH source (e.g. a live feed, [`live::LiveSource`]), its books and
/// detector tables sized by `counts` (for a feed that cannot be scanned first,
/// [`sizing::FeedCounts::unscanned`]: the configured capacities); the outcome and the source,
/// with its counters.
///
/// # Errors
/// As [`run_market`]; the source's own errors.
pub fn run_source<S: FeedSource>(
    src: S,
    counts: &sizing::FeedCounts,
    cfg: &PipelineConfig,
    jobs: MarketJobs,
    stop: &AtomicBool,
    progress: &AtomicU64,
) -> Result<(RunOutcome, S), JobError>
where
    JobError: From<S::Error>,
{
    run_source_with(src, counts, cfg, jobs, None, (stop, progress))
}

/// [`run_market`] of a surveillance run that takes checkpoints, resuming from
/// `ck.restored` when given (the alerts sink must be the journal of `ck.run.alerts`, opened at
/// the checkpoint's length when resuming).
///
/// # Errors
/// As [`run_market`]; bars or user detectors in the run (not checkpointed yet); a restored
/// position outside the feed.
pub fn run_market_ckpt(
    buf: &[u8],
    cfg: &PipelineConfig,
    jobs: MarketJobs,
    ck: Checkpointing,
    stop: &AtomicBool,
    progress: &AtomicU64,
) -> Result<RunOutcome, JobError> {
    check_ckpt_jobs(&jobs)?;
    let counts = sizing::FeedCounts::of(buf, cfg.workers);
    let src = match &ck.restored {
        Some(r) => ItchSource::resume(buf, cfg.feed.lenient, &r.pos)?,
        None => ItchSource::new(buf, cfg.feed.lenient),
    };
    run_ckpt(src, &counts, cfg, jobs, ck, (stop, progress))
}

/// [`run_market_ckpt`] of a capture streamed in place ([`run_capture`]): a checkpoint holds
/// the MoldUDP64 stream's position ([`crate::ckpt::CapturePos`]); a resume walks the capture's
/// packets again up to it (no book or detector runs on them) and goes on from there, `book_gap`
/// flags included.
///
/// # Errors
/// As [`run_market_ckpt`] and [`run_capture`]; a capture that does not reach the checkpoint's
/// position, or holds another message there.
pub fn run_capture_ckpt(
    scan: &source::CaptureScan<'_>,
    cfg: &PipelineConfig,
    jobs: MarketJobs,
    ck: Checkpointing,
    stop: &AtomicBool,
    progress: &AtomicU64,
) -> Result<RunOutcome, JobError> {
    check_ckpt_jobs(&jobs)?;
    let src = match &ck.restored {
        Some(r) => source::CaptureSource::resume(scan, cfg.feed.lenient, &r.pos)?,
        None => source::CaptureSource::new(scan, cfg.feed.lenient)?,
    };
    run_ckpt(src, &scan.counts, cfg, jobs, ck, (stop, progress))
}

/// The jobs a checkpointed run can hold: surveillance alone, its alerts to a file.
fn check_ckpt_jobs(jobs: &MarketJobs) -> Result<(), JobError> {
    match &jobs.surv {
        None => {
            return Err(JobError::Config(
                "checkpoints need surveillance (--alerts FILE)",
            ))
        }
        Some(j) if !j.detectors.is_empty() => {
            return Err(JobError::Config(
                "runs with user detectors are not checkpointed yet",
            ))
        }
        Some(j) if !matches!(j.sink, alerts::AlertSink::Journal(_)) => {
            return Err(JobError::Config(
                "checkpoints need the alerts in a regular file",
            ))
        }
        Some(_) if jobs.bars.is_some() => {
            return Err(JobError::Config("runs with bars are not checkpointed yet"))
        }
        Some(_) => {}
    }
    Ok(())
}

/// A checkpointed run over `src`: the writer thread started and finished around it, the
/// checkpoints' log in the report.
fn run_ckpt<S: FeedSource>(
    src: S,
    counts: &sizing::FeedCounts,
    cfg: &PipelineConfig,
    jobs: MarketJobs,
    ck: Checkpointing,
    (stop, progress): (&AtomicBool, &AtomicU64),
) -> Result<RunOutcome, JobError>
where
    JobError: From<S::Error>,
{
    let log = ck.run.log.clone();
    let resumed_at = ck.restored.as_ref().map(|r| r.cut.messages);
    let writer = ckpt::Writer::start().map_err(|e| EngineError::Spawn(e.to_string()))?;
    let ran = run_source_with(
        src,
        counts,
        cfg,
        jobs,
        Some((ck, &writer)),
        (stop, progress),
    );
    // Every part handed over is written (or its error logged) before the report is read.
    writer.finish();
    let (mut outcome, _) = ran?;
    let r = &mut outcome.report;
    let mut ck = log.lock().map(|l| l.clone()).unwrap_or_default();
    if let Some(at) = resumed_at {
        // The counts go on from the cut; the time is this process's.
        r.messages_per_s = (r.messages - at) as f64 * 1e9 / r.elapsed_ns.max(1) as f64;
        ck.resumed_at_message = Some(at);
    }
    r.checkpoints = Some(ck);
    Ok(outcome)
}

/// A run's checkpoints, and the one it resumes from.
#[derive(Debug)]
pub struct Checkpointing {
    /// Where and how often.
    pub run: ckpt::CkptRun,
    /// The checkpoint read back ([`ckpt::CkptRun::restore`]), to resume from.
    pub restored: Option<ckpt::Restored>,
}

fn run_source_with<S: FeedSource>(
    src: S,
    counts: &sizing::FeedCounts,
    cfg: &PipelineConfig,
    jobs: MarketJobs,
    ck: Option<(Checkpointing, &ckpt::Writer)>,
    (stop, progress): (&AtomicBool, &AtomicU64),
) -> Result<(RunOutcome, S), JobError>
where
    JobError: From<S::Error>,
{
    let mut ecfg = cfg.engine();
    ecfg.validate()?;
    // One TSC scale for the engine's latency and the alerts' (the same clock, read once).
    let scale = TickScale::cached();
    ecfg.scale = Some(scale);
    let n = cfg.workers;
    if let Some(b) = &jobs.bars {
        if b.by == crate::agg::BarKey::Participant && b.window.allowed_lateness > 0 {
            // A late row is one worker's part of a participant's window: the others' parts of
            // the same window are not re-sent with it, so the row could not be whole.
            return Err(JobError::Config(
                "per-participant bars take no allowed lateness (late messages are counted in the ledger)",
            ));
        }
    }
    let sizes = counts.books(cfg.books);
    let locates = sizes.first().map_or(1, |b| b.max_locates);
    let ctl = Control { stop, progress };
    let flow_records = jobs.surv.as_ref().map_or(0, |j| j.flow.len() as u64);
    let bars_clock = jobs.bars.as_ref().map(bars::clock);
    let surv_clock = jobs.surv.as_ref().map(|j| Clock {
        gen: crate::engine::MarkGen::periodic(j.mark_every),
        size: 0,
    });
    // Clock 0 is the first job's; a second job takes clock 1.
    let clocks: Vec<Clock> = bars_clock.into_iter().chain(surv_clock).collect();
    let surv_clock_no = bars_clock.is_some() as u8;
    let bars_parts = match jobs.bars {
        Some(b) => Some(bars_hooks(b, n, locates)?),
        None => None,
    };
    let (mut restored, ck_run) = match ck {
        Some((c, w)) => {
            ecfg.checkpoints = Some(engine_checkpoints(&c, w, surv_clock_no));
            (c.restored, Some((c.run, w)))
        }
        None => (None, None),
    };
    let mut sizes: Vec<Option<BookConfig>> = sizes.into_iter().map(Some).collect();
    let mut books: Vec<Option<Books>> = (0..n).map(|_| None).collect();
    let surv_parts = match jobs.surv {
        Some(j) => {
            let (mut hooks, mut merge) =
                surv_hooks(j, counts, cfg.feed.until, surv_clock_no, scale)?;
            if let Some((run, writer)) = ck_run {
                let r = restored.take();
                let next = r.as_ref().map_or(1, |r| r.cut.n + 1);
                let crc = r.as_ref().map_or_else(crc32fast::Hasher::new, |r| {
                    ckpt::crc_after(&r.manifest.alerts.crc32, r.manifest.alerts.len)
                });
                merge = merge.with_checkpoints(ckpt::OutputCkpt::new(&run, writer, next, crc));
                if let Some(r) = r {
                    merge.resume_with(r.output.out, r.output.alerts);
                    for (i, (h, w)) in hooks.iter_mut().zip(r.workers).enumerate() {
                        h.s = w.s;
                        h.resume_at(w.epoch, w.mark_seq);
                        books[i] = Some(w.books);
                        sizes[i] = None;
                    }
                }
                hooks = hooks
                    .into_iter()
                    .enumerate()
                    .map(|(i, h)| h.with_checkpoints(ckpt::WorkerCkpt::new(&run, writer, i, next)))
                    .collect();
            }
            Some((hooks, merge.with_book_gap(src.book_gap())))
        }
        None => None,
    };
    let sizes: Vec<Books> = books
        .into_iter()
        .zip(sizes)
        .map(|(b, s)| b.unwrap_or_else(|| Books::new(s.unwrap_or_default())))
        .collect();
    let hooks = (bars_parts, surv_parts);
    match hooks {
        (None, None) => {
            let plan = plan(vec![(); n], (), clocks, sizes);
            finish(
                crate::engine::run(src, plan, &ecfg, ctl)?,
                cfg,
                flow_records,
            )
        }
        (Some((bh, bm)), None) => {
            let plan = plan(bh, bm, clocks, sizes);
            finish(
                crate::engine::run(src, plan, &ecfg, ctl)?,
                cfg,
                flow_records,
            )
        }
        (None, Some((sh, sm))) => {
            let plan = plan(sh, sm, clocks, sizes);
            finish(
                crate::engine::run(src, plan, &ecfg, ctl)?,
                cfg,
                flow_records,
            )
        }
        (Some((bh, bm)), Some((sh, sm))) => {
            let hooks = bh.into_iter().zip(sh).collect();
            let plan = plan(hooks, (bm, sm), clocks, sizes);
            finish(
                crate::engine::run(src, plan, &ecfg, ctl)?,
                cfg,
                flow_records,
            )
        }
    }
}

/// The engine's side of a run's checkpoints: the reader writes its cut into the checkpoint's
/// staging directory.
fn engine_checkpoints(
    c: &Checkpointing,
    w: &ckpt::Writer,
    clock: u8,
) -> crate::engine::Checkpoints {
    let (dir, log, tx) = (c.run.dir.clone(), c.run.log.clone(), w.handle());
    // Handed to the writer before the mark is sent: written before the workers' parts.
    let on_cut = move |cut: &crate::engine::ReaderCut| {
        let (dir, log_to, cut) = (dir.clone(), log.clone(), cut.clone());
        let job = move || {
            let r = crate::ckpt::encode(&cut).and_then(|b| {
                let d = dir.staging(cut.n)?;
                crate::ckpt::write_blob(&d.join("reader.bin"), &b)
            });
            if let Err(e) = r {
                log_to
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .errors
                    .push(e.to_string());
            }
        };
        ckpt::submit(&tx, &log, Box::new(job));
    };
    let cuts = c.run.cuts.clone();
    let on_worker_cut = move |shard: usize, seq: u32, w: &crate::engine::WorkerCut| {
        let mut v = cuts.lock().unwrap_or_else(|e| e.into_inner());
        v.push((seq, shard, *w));
    };
    crate::engine::Checkpoints {
        every: c.run.every,
        clock,
        on_cut: Arc::new(on_cut),
        on_worker_cut: Arc::new(on_worker_cut),
        resume: c.restored.as_ref().map(|r| r.cut.clone()),
        resume_workers: c
            .restored
            .as_ref()
            .map_or_else(Vec::new, |r| r.manifest.workers.clone()),
    }
}

/// One worker's books per hook (shard `i`'s `books[i]`; each worker faults its own in before
/// the run, so the hot path takes no page fault).
fn plan<H: BookHook, C: Collector>(
    hooks: Vec<H>,
    collector: C,
    clocks: Vec<Clock>,
    books: Vec<Books>,
) -> Plan<BookOp<H>, C> {
    let ops = hooks
        .into_iter()
        .zip(books)
        .map(|(h, b)| BookOp::new(b, h))
        .collect();
    Plan {
        ops,
        collector,
        clocks,
    }
}

fn bars_hooks(
    b: BarsConfig,
    n: usize,
    max_locates: usize,
) -> Result<(Vec<BarsWorker>, BarsMerge), JobError> {
    let mut hooks = Vec::with_capacity(n);
    let mut rows = Vec::with_capacity(n);
    for id in 0..n {
        let (tx, rx) = ring(BarsWorker::ring_slots(&b, n, max_locates));
        hooks.push(BarsWorker::new(&b, id, n, max_locates, tx)?.on_clock(0));
        rows.push(rx);
    }
    Ok((hooks, BarsMerge::new(rows, b)))
}

/// Each worker's detectors, their tables sized to what its shard of the feed can fill.
fn surv_hooks(
    j: SurvJob,
    counts: &sizing::FeedCounts,
    until: Option<u64>,
    clock: u8,
    scale: TickScale,
) -> Result<(Vec<SurvWorker>, SurvMerge), JobError> {
    let n = counts.adds.len();
    let mut hooks = Vec::with_capacity(n);
    let (mut rows, mut alerts) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for shard in 0..n {
        let (stx, srx) = ring(SurvWorker::RING);
        let (atx, arx) = ring(SurvWorker::ALERT_RING);
        let fit = counts.detector_fit(shard, j.flow.len());
        let s = Surveillance::sized(j.rules, &j.flow, fit);
        let mut sw = SurvWorker::new(s, stx, atx, j.reload.clone()).on_clock(clock);
        if let Some(until) = until {
            sw.s.set_flow_stop(until);
        }
        for f in &j.detectors {
            sw.s.add_detector(f())?;
        }
        hooks.push(sw);
        rows.push(srx);
        alerts.push(arx);
    }
    let merge = SurvMerge::new(rows, alerts, &j.rules, j.sink, scale, j.reload);
    Ok((hooks, merge))
}

/// The bars and surveillance parts of a hook.
trait Parts {
    fn bars(&self) -> Option<&BarsWorker> {
        None
    }
    fn surv(&self) -> Option<&SurvWorker> {
        None
    }
}

impl Parts for () {}

impl Parts for BarsWorker {
    fn bars(&self) -> Option<&BarsWorker> {
        Some(self)
    }
}

impl Parts for SurvWorker {
    fn surv(&self) -> Option<&SurvWorker> {
        Some(self)
    }
}

impl Parts for (BarsWorker, SurvWorker) {
    fn bars(&self) -> Option<&BarsWorker> {
        Some(&self.0)
    }
    fn surv(&self) -> Option<&SurvWorker> {
        Some(&self.1)
    }
}

/// The bars and surveillance parts of a collector.
trait MergeParts {
    fn bars(&mut self) -> Option<&mut BarsMerge> {
        None
    }
    fn surv(&mut self) -> Option<&mut SurvMerge> {
        None
    }
}

impl MergeParts for () {}

impl MergeParts for BarsMerge {
    fn bars(&mut self) -> Option<&mut BarsMerge> {
        Some(self)
    }
}

impl MergeParts for SurvMerge {
    fn surv(&mut self) -> Option<&mut SurvMerge> {
        Some(self)
    }
}

impl MergeParts for (BarsMerge, SurvMerge) {
    fn bars(&mut self) -> Option<&mut BarsMerge> {
        Some(&mut self.0)
    }
    fn surv(&mut self) -> Option<&mut SurvMerge> {
        Some(&mut self.1)
    }
}

/// The run's outcome from what the engine handed back.
fn finish<S: FeedSource, H: BookHook + Parts, C: Collector + MergeParts>(
    mut f: Finished<S, BookOp<H>, C>,
    cfg: &PipelineConfig,
    flow_records: u64,
) -> Result<(RunOutcome, S), JobError>
where
    JobError: From<S::Error>,
{
    if let Some(e) = f.error.take() {
        return Err(e.into());
    }
    let (skipped_unknown, skipped_bad_lengths) = f.source.skipped();
    let hooks: Vec<&H> = f.ops.iter().map(|o| &o.hook).collect();
    let bars = match f.collector.bars() {
        Some(m) => Some(bars_report(m, &hooks, &f.report.marks_sent)?),
        None => None,
    };
    let surv = match f.collector.surv() {
        Some(m) => Some(surv_report(m, &hooks, &f.report.marks_sent, flow_records)?),
        None => None,
    };
    let e = f.report;
    let mut book_stats = BookStats::default();
    for o in &f.ops {
        book_stats.add(o.books.stats());
    }
    let report = RunReport {
        messages: e.messages,
        offered: e.offered,
        dropped: e.dropped,
        processed: e.processed,
        output_received: e.output_received,
        top_changes: e.flagged,
        skipped_unknown,
        skipped_bad_lengths,
        out_of_order_ts: e.out_of_order_ts,
        order_violations: e.order_violations,
        stopped_at_until: e.stopped_at_until,
        undecodable: e.rejected,
        interrupted: e.interrupted,
        marks: e.marks,
        marks_sent: e.marks_sent,
        bars,
        surv,
        checkpoints: None,
        elapsed_ns: e.elapsed_ns,
        messages_per_s: e.messages_per_s,
        rings: e.rings,
        latency: e.latency,
        threads: e.threads,
        book_stats,
        live_orders: f.ops.iter().map(|o| o.books.live_orders()).sum(),
        workers: cfg.workers,
        wait: cfg.wait,
        backpressure: cfg.backpressure,
        speed: cfg.speed,
        stage_timing: cfg.stage_timing,
        stage_sample: cfg.stage_sample,
        ticks_per_ns: e.ticks_per_ns,
    };
    let outcome = RunOutcome {
        report,
        books: f.ops.into_iter().map(|o| o.books).collect(),
    };
    Ok((outcome, f.source))
}

fn bars_report<H: Parts>(
    merge: &mut BarsMerge,
    hooks: &[&H],
    marks_sent: &[u64],
) -> Result<BarsReport, JobError> {
    if let Some(e) = merge.error.take() {
        return Err(JobError::Sink(e));
    }
    let mut r = BarsReport {
        // The bars' clock is always clock 0.
        marks: marks_sent.first().copied().unwrap_or(0),
        rows: merge.rows,
        late_rows: merge.late_rows,
        ..Default::default()
    };
    for b in hooks.iter().filter_map(|h| h.bars()) {
        let l = b.ledger();
        r.dropped_late += l.dropped_late;
        r.max_lateness_ns = r.max_lateness_ns.max(l.max_lateness_ns);
        r.overflow += l.overflow + l.out_of_range;
        r.participants_overflow += b.participants_overflow;
        r.lost += b.lost;
    }
    Ok(r)
}

fn surv_report<H: Parts>(
    merge: &mut SurvMerge,
    hooks: &[&H],
    marks_sent: &[u64],
    flow_records: u64,
) -> Result<SurvReport, JobError> {
    if let Some(e) = merge.error.take() {
        return Err(JobError::AlertSink(e));
    }
    let mut r = SurvReport {
        alerts: merge
            .written_by_name()
            .into_iter()
            .map(|(d, n)| (d.to_string(), n))
            .collect(),
        total: merge.alerts,
        // Surveillance's clock is the last one.
        marks: marks_sent.last().copied().unwrap_or(0),
        alert_overflow: merge.overflow() + merge.missing,
        latency: merge.latency_rows(),
        ..Default::default()
    };
    let mut applied = 0;
    let mut tables: Vec<(String, u64)> = Vec::new();
    for s in hooks.iter().filter_map(|h| h.surv()) {
        for (i, (name, count)) in s.s.table_pressure().into_iter().enumerate() {
            match tables.get_mut(i) {
                Some(t) => t.1 += count,
                None => tables.push((name.to_string(), count)),
            }
        }
        r.progress += s.progress;
        r.mark_waits += s.mark_waits;
        let c = &s.s.counters;
        r.counters.events += c.events;
        r.counters.flow_applied += c.flow_applied;
        r.counters.account_overflow += c.account_overflow;
        r.counters.risk_overflow += c.risk_overflow;
        r.counters.reloads += c.reloads;
        r.alert_overflow += s.s.alerts.overflow + s.out.lost;
        applied += c.flow_applied;
    }
    r.flow_unapplied = flow_records.saturating_sub(applied);
    tables.extend(
        merge
            .risk_pressure()
            .into_iter()
            .map(|(n, c)| (n.to_string(), c)),
    );
    r.tables = tables;
    Ok(r)
}
