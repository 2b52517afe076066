//! The pinned, sharded pipeline: a reader, N shard workers and an output stage on their own
//! threads, joined by SPSC [`ring`](crate::ring)s.
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
pub mod event;
pub mod journal;
pub mod merge;
pub mod output;
pub mod reader;
pub mod wait;
pub mod worker;

use crate::book::{BookConfig, BookStats, Books};
use crate::clock::TickScale;
use crate::inspect::InspectError;
use crate::latency::StageLatency;
use crate::ring::ring;
pub use bars::BarsConfig;
use bars::{BarsMerge, BarsWorker, MarkGen};
use event::{Done, Event};
use output::Output;
pub use reader::FeedOptions;
use reader::{Pacer, Reader};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Instant;
pub use wait::WaitStrategy;
use worker::Worker;

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

/// What a full ring does with a new event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backpressure {
    /// Wait for room: lossless (replay; the default).
    #[default]
    Block,
    /// Drop the newest event and count it (live feeds, where falling behind is worse).
    Drop,
}

/// Counters of one ring, kept by its producer (and its consumer's count beside it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
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
    /// Books capacities for the whole feed; each worker gets a share (see
    /// [`PipelineConfig::worker_books`]).
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
            books: BookConfig::full_day(),
            thread_hook: None,
        }
    }
}

impl PipelineConfig {
    /// One worker's book capacities: orders and levels divided among the workers with 50 %
    /// headroom for uneven shards (never more than the whole), every locate.
    pub fn worker_books(&self) -> BookConfig {
        let n = self.workers.max(1);
        if n == 1 {
            return self.books;
        }
        let share = |x: usize| (x / n + x / (2 * n)).max(1 << 12).min(x);
        BookConfig {
            max_orders: share(self.books.max_orders),
            max_locates: self.books.max_locates,
            max_levels: share(self.books.max_levels),
        }
    }
}

/// One pipeline thread, as run.
#[derive(Clone, Debug, Serialize)]
pub struct ThreadReport {
    /// Thread name (its stages).
    pub name: String,
    /// The core it was pinned to, if pinning succeeded.
    pub core: Option<usize>,
    /// Idle polls (rounds in which none of its stages had work).
    pub idle_polls: u64,
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
    /// Watermark marks the workers took (a windowed job's marks reach every worker).
    pub marks: u64,
    /// The windowed bars job, when the run had one.
    pub bars: Option<bars::BarsReport>,
    /// The surveillance job's report, when the run had one.
    pub surv: Option<alerts::SurvReport>,
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
    /// TSC rate used for conversion.
    pub ticks_per_ns: f64,
}

impl RunReport {
    /// The conservation law every run must satisfy: every delivery offered to a worker ring was
    /// processed or counted as dropped, and the output stage heard of every processed event.
    pub fn check_conservation(&self) -> Result<(), String> {
        if self.offered != self.processed + self.dropped + self.undecodable + self.marks {
            return Err(format!(
                "offered {} ≠ processed {} + dropped {} + undecodable {} + marks {}",
                self.offered, self.processed, self.dropped, self.undecodable, self.marks
            ));
        }
        if let Some(b) = &self.bars {
            if b.lost != 0 {
                return Err(format!("{} bar rows found no room", b.lost));
            }
        }
        if self.order_violations != 0 {
            return Err(format!("{} events out of order", self.order_violations));
        }
        if self.output_received != self.processed + self.undecodable {
            return Err(format!(
                "output received {} of {} events",
                self.output_received,
                self.processed + self.undecodable
            ));
        }
        for (i, r) in self.rings.iter().enumerate() {
            if r.pushed != r.popped {
                return Err(format!(
                    "ring {i}: pushed {} but popped {}",
                    r.pushed, r.popped
                ));
            }
        }
        Ok(())
    }

    /// The end-to-end latency (origin → output stage).
    pub fn end_to_end(&self) -> &StageLatency {
        self.latency.last().expect("a run always reports latency")
    }
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

// Stages are built once and moved only at thread start and end; boxing the reader would not
// make the hot path any faster.
#[allow(clippy::large_enum_variant)]
enum AnyStage<'a> {
    Reader(Reader<'a>),
    Worker(Worker),
    Output(Output),
}

impl AnyStage<'_> {
    fn name(&self) -> String {
        match self {
            AnyStage::Reader(_) => "reader".into(),
            AnyStage::Worker(w) => format!("worker-{}", w.id),
            AnyStage::Output(_) => "output".into(),
        }
    }

    /// Share of the pipeline's work per feed message, in units of 1/`workers`, for packing
    /// stages onto fewer cores: measured per message here (PERF.md), the reader costs ≈ 35 ns,
    /// the output ≈ 10 ns and the books ≈ 60–90 ns in all, split evenly over the workers.
    fn weight(&self, workers: u32) -> u32 {
        match self {
            AnyStage::Reader(_) => 4 * workers,
            AnyStage::Worker(_) => 8,
            AnyStage::Output(_) => workers,
        }
    }

    fn do_work(&mut self) -> Progress {
        match self {
            AnyStage::Reader(s) => s.do_work(),
            AnyStage::Worker(s) => s.do_work(),
            AnyStage::Output(s) => s.do_work(),
        }
    }
}

/// Packs `stages` onto at most `threads` groups, heaviest first onto the lightest group.
fn pack(mut stages: Vec<AnyStage<'_>>, threads: usize) -> Vec<Vec<AnyStage<'_>>> {
    let threads = threads.clamp(1, stages.len());
    let workers = stages
        .iter()
        .filter(|s| matches!(s, AnyStage::Worker(_)))
        .count() as u32;
    let weight = |s: &AnyStage<'_>| s.weight(workers.max(1));
    stages.sort_by_key(|s| std::cmp::Reverse(weight(s)));
    let mut groups: Vec<(u32, Vec<AnyStage<'_>>)> = (0..threads).map(|_| (0, Vec::new())).collect();
    for s in stages {
        let g = groups
            .iter_mut()
            .min_by_key(|g| g.0)
            .expect("at least one group");
        g.0 += weight(&s);
        g.1.push(s);
    }
    groups.into_iter().map(|g| g.1).collect()
}

/// Runs a group of stages on this thread until all are done (`done`: one flag per stage, all
/// false; allocated by the caller, so the loop itself allocates nothing).
fn run_group(stages: &mut [AnyStage<'_>], done: &mut [bool], wait: WaitStrategy) -> u64 {
    let mut idle = wait::Idle::new(wait);
    let mut left = stages.len();
    while left > 0 {
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
        } else {
            idle.wait();
        }
    }
    idle.polls
}

/// Runs `buf` (a BinaryFILE image) through the pipeline.
///
/// `stop` ends the feed early when set (Ctrl-C); `progress` is updated with the messages read
/// so far (for a progress bar). Allocation happens here, before the threads start their loops:
/// rings, books, histograms.
///
/// # Errors
/// The first framing or decoding error of the feed, naming its byte offset (after the pipeline
/// has drained and stopped cleanly).
pub fn run(
    buf: &[u8],
    cfg: &PipelineConfig,
    stop: &AtomicBool,
    progress: &AtomicU64,
) -> Result<RunOutcome, InspectError> {
    match run_job(buf, cfg, None, stop, progress) {
        Ok(o) => Ok(o),
        Err(JobError::Feed(e)) => Err(e),
        Err(e) => unreachable!("only a windowed job has window or sink errors: {e}"),
    }
}

/// Why a windowed run failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The feed is malformed at a byte offset.
    #[error(transparent)]
    Feed(#[from] InspectError),
    /// The window configuration is invalid.
    #[error("window: {0}")]
    Window(#[from] crate::window::WindowError),
    /// Writing the rows failed.
    #[error("writing the bars: {0}")]
    Sink(std::io::Error),
    /// The job's options do not go together.
    #[error("{0}")]
    Config(&'static str),
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
    run_jobs(buf, cfg, bars, None, stop, progress)
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
    surv: alerts::SurvJob,
    stop: &AtomicBool,
    progress: &AtomicU64,
) -> Result<RunOutcome, JobError> {
    run_jobs(buf, cfg, None, Some(surv), stop, progress)
}

fn run_jobs(
    buf: &[u8],
    cfg: &PipelineConfig,
    bars: Option<BarsConfig>,
    surv: Option<alerts::SurvJob>,
    stop: &AtomicBool,
    progress: &AtomicU64,
) -> Result<RunOutcome, JobError> {
    let n = cfg.workers.max(1);
    if bars.is_some() && surv.is_some() {
        return Err(JobError::Config("bars and surveillance are separate runs"));
    }
    if let Some(b) = &bars {
        if b.by == crate::agg::BarKey::Participant && b.window.allowed_lateness > 0 {
            // A late row is one worker's part of a participant's window: the others' parts of
            // the same window are not re-sent with it, so the row could not be whole.
            return Err(JobError::Config(
                "per-participant bars take no allowed lateness (late messages are counted in the ledger)",
            ));
        }
    }
    let scale = TickScale::calibrate(50);
    let mut to_workers = Vec::with_capacity(n);
    let mut stages = Vec::with_capacity(n + 2);
    let mut to_output = Vec::with_capacity(n);
    let wb = cfg.worker_books();
    let mut bar_rows = Vec::new();
    let mut surv_rows = Vec::new();
    let mut surv_alerts = Vec::new();
    let frontier = Arc::new(reader::Frontier::default());
    for id in 0..n {
        let (tx, rx) = ring::<Event>(cfg.ring_capacity);
        let (otx, orx) = ring::<Done>(cfg.ring_capacity);
        to_workers.push(tx);
        to_output.push(orx);
        let mut books = Books::new(wb);
        books.prefault(); // no page faults on the hot path
        let mut worker = Worker::new(id, rx, otx, books, scale, cfg.stage_timing);
        if let Some(b) = &bars {
            let (btx, brx) = ring(BarsWorker::ring_slots(b, n, wb.max_locates));
            let bw = BarsWorker::new(b, id, n, wb.max_locates, btx)?;
            worker = worker.with_bars(bw);
            bar_rows.push(brx);
        }
        if let Some(j) = &surv {
            let (stx, srx) = ring(alerts::SurvWorker::RING);
            let (atx, arx) = ring(alerts::SurvWorker::ALERT_RING);
            let mut sw = alerts::SurvWorker::new(j.rules, &j.flow, stx, atx, j.reload.clone())
                .with_frontier(frontier.clone());
            if let Some(until) = cfg.feed.until {
                sw.s.set_flow_stop(until);
            }
            worker = worker.with_surv(sw);
            surv_rows.push(srx);
            surv_alerts.push(arx);
        }
        stages.push(AnyStage::Worker(worker));
    }
    let pacer = cfg.speed.map(|s| Pacer::new(s, cfg.pace_from, scale));
    let mut reader = Reader::new(
        buf,
        cfg.feed,
        to_workers,
        cfg.backpressure,
        pacer,
        scale,
        cfg.stage_timing,
        stop,
        progress,
    );
    let mut output = Output::new(to_output, scale);
    if let Some(b) = bars {
        reader = reader.with_marks(MarkGen::new(&b), b.window.size);
        output = output.with_bars(BarsMerge::new(bar_rows, b));
    }
    let flow_records = surv.as_ref().map_or(0, |j| j.flow.len() as u64);
    if let Some(j) = surv {
        reader = reader
            .with_marks(MarkGen::periodic(j.mark_every), 0)
            .with_frontier(frontier);
        output = output.with_surv(alerts::SurvMerge::new(
            surv_rows,
            surv_alerts,
            &j.rules,
            j.sink,
            scale,
            j.reload,
        ));
    }
    stages.push(AnyStage::Reader(reader));
    stages.push(AnyStage::Output(output));

    let available = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = if cfg.cores.is_empty() {
        available
    } else {
        cfg.cores.len()
    };
    let groups = pack(stages, threads);
    let t0 = Instant::now();
    let mut finished: Vec<(ThreadReport, Vec<AnyStage<'_>>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = groups
            .into_iter()
            .enumerate()
            .map(|(i, mut group)| {
                let name = format!(
                    "tw-{}",
                    group.iter().map(|s| s.name()).collect::<Vec<_>>().join("+")
                );
                let core = cfg.cores.get(i).copied();
                let (wait, hook) = (cfg.wait, cfg.thread_hook);
                std::thread::Builder::new()
                    .name(name.clone())
                    .spawn_scoped(scope, move || {
                        let pinned = core.filter(|&c| {
                            core_affinity::set_for_current(core_affinity::CoreId { id: c })
                        });
                        let mut done = vec![false; group.len()];
                        if let Some(h) = hook {
                            h(true);
                        }
                        let idle_polls = run_group(&mut group, &mut done, wait);
                        if let Some(h) = hook {
                            h(false);
                        }
                        (
                            ThreadReport {
                                name,
                                core: pinned,
                                idle_polls,
                            },
                            group,
                        )
                    })
                    .expect("spawning a pipeline thread")
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a pipeline thread panicked"))
            .collect()
    });
    let elapsed_ns = t0.elapsed().as_nanos() as u64;
    finished.sort_by_key(|(t, _)| t.name.clone());

    let mut threads = Vec::new();
    let mut reader = None;
    let mut workers = Vec::new();
    let mut output = None;
    for (t, group) in finished {
        threads.push(t);
        for s in group {
            match s {
                AnyStage::Reader(r) => reader = Some(r),
                AnyStage::Worker(w) => workers.push(w),
                AnyStage::Output(o) => output = Some(o),
            }
        }
    }
    workers.sort_by_key(|w| w.id);
    let (Some(mut reader), Some(mut output)) = (reader, output) else {
        unreachable!("the reader and output stages were built above")
    };
    if let Some(e) = reader.error.take() {
        return Err(e.into());
    }
    let bars = match output.bars.take() {
        Some(mut merge) => {
            if let Some(e) = merge.error.take() {
                return Err(JobError::Sink(e));
            }
            let mut r = bars::BarsReport {
                marks: reader.marks_sent,
                rows: merge.rows,
                late_rows: merge.late_rows,
                ..Default::default()
            };
            for b in workers.iter().filter_map(|w| w.bars.as_ref()) {
                let l = b.ledger();
                r.dropped_late += l.dropped_late;
                r.max_lateness_ns = r.max_lateness_ns.max(l.max_lateness_ns);
                r.overflow += l.overflow + l.out_of_range;
                r.participants_overflow += b.participants_overflow;
                r.lost += b.lost;
            }
            Some(r)
        }
        None => None,
    };
    let surv = match output.surv.take() {
        Some(mut merge) => {
            if let Some(e) = merge.error.take() {
                return Err(JobError::Sink(e));
            }
            let written = merge.written();
            let mut r = alerts::SurvReport {
                alerts: crate::surv::DetectorId::ALL
                    .iter()
                    .map(|d| (d.name().to_string(), written[*d as usize]))
                    .collect(),
                total: merge.alerts,
                marks: reader.marks_sent,
                alert_overflow: merge.overflow() + merge.missing,
                latency: merge.latency_rows(),
                ..Default::default()
            };
            let mut applied = 0;
            let mut tables: Option<Vec<(&str, u64)>> = None;
            for s in workers.iter().filter_map(|w| w.surv.as_ref()) {
                let p = s.s.table_pressure();
                match &mut tables {
                    None => tables = Some(p),
                    Some(t) => t.iter_mut().zip(p).for_each(|(t, (_, n))| t.1 += n),
                }
                r.progress += s.progress;
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
            r.tables = tables
                .into_iter()
                .flatten()
                .chain(merge.risk_pressure())
                .map(|(n, c)| (n.to_string(), c))
                .collect();
            Some(r)
        }
        None => None,
    };
    let mut rings = reader.counters.clone();
    for (r, w) in rings.iter_mut().zip(&workers) {
        r.popped = w.popped;
    }
    for (w, received) in workers.iter().zip(&output.received) {
        let mut c = w.out.counters;
        c.popped = *received;
        rings.push(c);
    }
    let mut book_stats = BookStats::default();
    for w in &workers {
        book_stats.add(w.books.stats());
    }
    let latency = vec![
        StageLatency::merged(
            "reader",
            "read → next read (frame, validate, stage)",
            [&reader.latency],
        ),
        StageLatency::merged(
            "worker queue",
            "origin → taken by worker",
            workers.iter().map(|w| &w.queue_latency),
        ),
        StageLatency::merged(
            "book update",
            "take → next take (decode, apply, top check)",
            workers.iter().map(|w| &w.out.book_latency),
        ),
        StageLatency::merged("output hop", "worker push → output", [&output.hop_latency]),
        StageLatency::merged("end to end", "origin → output", [&output.e2e_latency]),
    ];
    let offered: u64 = reader.counters.iter().map(|c| c.pushed + c.dropped).sum();
    let report = RunReport {
        messages: reader.messages,
        offered,
        dropped: reader.counters.iter().map(|c| c.dropped).sum(),
        processed: workers.iter().map(|w| w.processed).sum(),
        output_received: output.received.iter().sum(),
        top_changes: output.top_changes,
        skipped_unknown: reader.skipped_unknown,
        skipped_bad_lengths: reader.skipped_bad_lengths,
        out_of_order_ts: reader.out_of_order_ts,
        order_violations: workers.iter().map(|w| w.order.violations).sum::<u64>()
            + output.order.iter().map(|o| o.violations).sum::<u64>(),
        stopped_at_until: reader.stopped_at_until,
        undecodable: workers.iter().map(|w| w.undecodable).sum(),
        interrupted: reader.interrupted,
        marks: workers.iter().map(|w| w.marks).sum(),
        bars,
        surv,
        elapsed_ns,
        messages_per_s: reader.messages as f64 * 1e9 / elapsed_ns.max(1) as f64,
        rings,
        latency,
        threads,
        book_stats,
        live_orders: workers.iter().map(|w| w.books.live_orders()).sum(),
        workers: n,
        wait: cfg.wait,
        backpressure: cfg.backpressure,
        speed: cfg.speed,
        stage_timing: cfg.stage_timing,
        ticks_per_ns: scale.ticks_per_ns,
    };
    Ok(RunOutcome {
        report,
        books: workers.into_iter().map(|w| w.books).collect(),
    })
}
