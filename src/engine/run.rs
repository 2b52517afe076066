//! Building a run's stages, running them on pinned threads, and collecting what they measured.

use super::host::{HostMark, HostTime};
use super::marks::Frontier;
use super::op::{Collector, Job, Plan, ShardOp};
use super::output::Output;
use super::reader::{Control, Pacer, Reader, ReaderOptions};
use super::source::Source;
use super::stage::{pack, run_group, Hiccups, Progress, Stage, ThreadReport};
use super::worker::Worker;
use super::{Config, Done, EngineError, EngineReport, Sampler};
use crate::clock::TickScale;
use crate::latency::StageLatency;
use crate::ring::ring;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// What a run hands back: the source, operators and collector as they ended, and the report.
#[derive(Debug)]
pub struct Finished<S: Source, O, C> {
    /// The source (with its own counters).
    pub source: S,
    /// The error that ended the source early, if any (the stages drained and stopped cleanly).
    pub error: Option<S::Error>,
    /// The operators, shard `i` at index `i`.
    pub ops: Vec<O>,
    /// The collector.
    pub collector: C,
    /// What the engine measured.
    pub report: EngineReport,
}

// Stages are built once and moved only at thread start and end; boxing the reader would not
// make the hot path any faster.
#[allow(clippy::large_enum_variant)]
enum AnyStage<'a, S: Source, O: ShardOp, C: Collector> {
    Reader(Reader<'a, S>),
    Worker(Worker<O>),
    Output(Output<C>),
}

impl<S: Source, O: ShardOp<Event = S::Event>, C: Collector> AnyStage<'_, S, O, C> {
    fn prepare(&mut self) {
        if let AnyStage::Worker(w) = self {
            w.op.prepare();
        }
    }

    fn name(&self) -> String {
        match self {
            AnyStage::Reader(_) => "reader".into(),
            AnyStage::Worker(w) => format!("worker-{}", w.id),
            AnyStage::Output(_) => "output".into(),
        }
    }

    /// Share of the run's work per item, in units of 1/`workers`, for packing stages onto
    /// fewer cores: measured per message on the book replay (PERF.md), the reader costs ≈ 35 ns,
    /// the output ≈ 10 ns and the operators ≈ 60–90 ns in all, split evenly over the workers.
    fn weight(&self, workers: u32) -> u32 {
        match self {
            AnyStage::Reader(_) => 4 * workers,
            AnyStage::Worker(_) => 8,
            AnyStage::Output(_) => workers,
        }
    }
}

impl<S: Source, O: ShardOp<Event = S::Event>, C: Collector> Stage for AnyStage<'_, S, O, C> {
    #[inline]
    fn do_work(&mut self) -> Progress {
        match self {
            AnyStage::Reader(s) => s.do_work(),
            AnyStage::Worker(s) => s.do_work(),
            AnyStage::Output(s) => s.do_work(),
        }
    }
}

/// Why [`run_job`] failed: the job could not be built, or the engine failed.
#[derive(Debug, thiserror::Error)]
pub enum JobFailure<E: std::error::Error + 'static> {
    /// The job's own error.
    #[error(transparent)]
    Build(E),
    /// The engine's.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// What [`run_job`] hands back.
pub type JobFinished<S, J> = Finished<S, <J as Job>::Op, <J as Job>::Collector>;

/// Builds `job` for `cfg.workers` shards and runs it over `source`.
///
/// # Errors
/// The job's build error, or the engine's.
pub fn run_job<S, J>(
    source: S,
    job: J,
    cfg: &Config,
    ctl: Control<'_>,
) -> Result<JobFinished<S, J>, JobFailure<J::Error>>
where
    S: Source,
    J: Job,
    J::Op: ShardOp<Event = S::Event>,
{
    cfg.validate()?;
    let plan = job.build(cfg.workers).map_err(JobFailure::Build)?;
    Ok(run(source, plan, cfg, ctl)?)
}

/// Runs `plan` over `source`: a reader, one worker per operator and an output stage, packed
/// onto `cfg`'s cores. Allocation happens here, before the threads start their loops.
///
/// # Errors
/// An invalid configuration; a thread that could not be started; a stage that panicked (every
/// other stage then stops at once, and the run returns this error).
pub fn run<S, O, C>(
    source: S,
    plan: Plan<O, C>,
    cfg: &Config,
    ctl: Control<'_>,
) -> Result<Finished<S, O, C>, EngineError>
where
    S: Source,
    O: ShardOp<Event = S::Event>,
    C: Collector,
{
    cfg.validate()?;
    let Plan {
        ops,
        collector,
        clocks,
    } = plan;
    let n = ops.len();
    if n != cfg.workers {
        return Err(EngineError::Config(format!(
            "the job built {n} operators for {} workers",
            cfg.workers
        )));
    }
    if clocks.len() > super::MAX_CLOCKS {
        return Err(EngineError::Config(format!(
            "{} mark clocks (at most {})",
            clocks.len(),
            super::MAX_CLOCKS
        )));
    }
    let scale = cfg.scale.unwrap_or_else(TickScale::cached);
    let frontier = O::FRONTIER.then(|| Arc::new(Frontier::default()));
    let mut to_workers = Vec::with_capacity(n);
    let mut to_output = Vec::with_capacity(n);
    let mut stages = Vec::with_capacity(n + 2);
    for (id, op) in ops.into_iter().enumerate() {
        let (tx, rx) = ring::<S::Event>(cfg.ring_capacity);
        let (otx, orx) = ring::<Done>(cfg.ring_capacity);
        to_workers.push(tx);
        to_output.push(orx);
        let mut w = Worker::new(id, rx, otx, op, scale, Sampler::new(cfg), frontier.clone());
        if let Some(c) = &cfg.checkpoints {
            let from = c.resume.as_ref().and(c.resume_workers.get(id));
            w.checkpoint(c.on_worker_cut.clone(), from);
        }
        stages.push(AnyStage::Worker(w));
    }
    let opts = ReaderOptions {
        policy: cfg.backpressure,
        pacer: cfg.speed.map(|s| Pacer::new(s, cfg.pace_from, scale)),
        scale,
        stages: Sampler::new(cfg),
        until: cfg.until.unwrap_or(u64::MAX),
    };
    let mut reader = Reader::new(source, to_workers, opts, clocks, frontier, ctl);
    if let Some(c) = &cfg.checkpoints {
        reader.checkpoint(c.clone());
    }
    stages.push(AnyStage::Reader(reader));
    let mut output = Output::new(to_output, collector, scale);
    if let Some(c) = cfg.checkpoints.as_ref().filter(|c| c.resume.is_some()) {
        output.resume_from(&c.resume_workers);
    }
    stages.push(AnyStage::Output(output));
    let t0 = Instant::now();
    let ready = AtomicU64::new(0);
    let finished = spawn(stages, cfg, scale, (t0, &ready))?;
    // From the last thread ready (its operators prepared) to the end.
    // Relaxed: the threads were joined, which orders their stores before this load.
    let elapsed_ns = (t0.elapsed().as_nanos() as u64).saturating_sub(ready.load(Ordering::Relaxed));
    Ok(collect(finished, elapsed_ns, scale))
}

type Group<'a, S, O, C> = Vec<AnyStage<'a, S, O, C>>;
/// Each thread's report and its stages, as they ended.
type Ended<'a, S, O, C> = Vec<(ThreadReport, Group<'a, S, O, C>)>;

/// Runs the stages on their threads until all are done; a panic in one stops them all.
fn spawn<'a, S, O, C>(
    stages: Vec<AnyStage<'a, S, O, C>>,
    cfg: &Config,
    scale: TickScale,
    (t0, ready): (Instant, &AtomicU64),
) -> Result<Ended<'a, S, O, C>, EngineError>
where
    S: Source,
    O: ShardOp<Event = S::Event>,
    C: Collector,
{
    let workers = cfg.workers as u32;
    let weights: Vec<u32> = stages.iter().map(|s| s.weight(workers)).collect();
    let available = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = if cfg.cores.is_empty() {
        available
    } else {
        cfg.cores.len()
    };
    let mut slots: Vec<Option<AnyStage<'a, S, O, C>>> = stages.into_iter().map(Some).collect();
    let groups: Vec<Group<'a, S, O, C>> = pack(&weights, threads)
        .into_iter()
        .map(|g| g.into_iter().filter_map(|i| slots[i].take()).collect())
        .collect();
    let abort = AtomicBool::new(false);
    let mut failure: Option<EngineError> = None;
    let mut done = Vec::new();
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for (i, mut group) in groups.into_iter().enumerate() {
            let names: Vec<String> = group.iter().map(|s| s.name()).collect();
            let name = format!("tw-{}", names.join("+"));
            let core = cfg.cores.get(i).copied();
            let (wait, hook, abort) = (cfg.wait, cfg.thread_hook, &abort);
            let thread_name = name.clone();
            let spawned =
                std::thread::Builder::new()
                    .name(name.clone())
                    .spawn_scoped(scope, move || {
                        let pinned = core.filter(|&c| {
                            core_affinity::set_for_current(core_affinity::CoreId { id: c })
                        });
                        let mut flags = vec![false; group.len()];
                        let hiccups = Hiccups::new(scale);
                        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            group.iter_mut().for_each(AnyStage::prepare);
                            // Relaxed: a gauge read after the join.
                            ready.fetch_max(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
                            let mark = HostMark::now(pinned);
                            if let Some(h) = hook {
                                h(true);
                            }
                            let r = run_group(&mut group, &mut flags, wait, abort, hiccups);
                            if let Some(h) = hook {
                                h(false);
                            }
                            // Read outside the hook's window: it reads files (allocates).
                            (r, HostTime::since(&mark, pinned))
                        }));
                        match run {
                            Ok(((polls, h), host)) => {
                                Ok((ThreadReport::new(name, pinned, polls, h, host), group))
                            }
                            Err(p) => {
                                // Relaxed: every other thread stops at its next round; nothing
                                // it reads depends on this one's data.
                                abort.store(true, Ordering::Relaxed);
                                Err(panic_message(p.as_ref()))
                            }
                        }
                    });
            match spawned {
                Ok(h) => handles.push((thread_name, h)),
                Err(e) => {
                    // Relaxed: as above.
                    abort.store(true, Ordering::Relaxed);
                    failure.get_or_insert(EngineError::Spawn(e.to_string()));
                }
            }
        }
        for (thread, h) in handles {
            match h.join() {
                Ok(Ok(r)) => done.push(r),
                Ok(Err(message)) => {
                    failure.get_or_insert(EngineError::Panicked { thread, message });
                }
                Err(p) => {
                    failure.get_or_insert(EngineError::Panicked {
                        thread,
                        message: panic_message(p.as_ref()),
                    });
                }
            }
        }
    });
    match failure {
        Some(e) => Err(e),
        None => Ok(done),
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a stage panicked".into())
}

/// Takes the stages apart after the run and assembles the report.
fn collect<S, O, C>(
    finished: Ended<'_, S, O, C>,
    elapsed_ns: u64,
    scale: TickScale,
) -> Finished<S, O, C>
where
    S: Source,
    O: ShardOp<Event = S::Event>,
    C: Collector,
{
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
    threads.sort_by(|a, b| a.name.cmp(&b.name));
    workers.sort_by_key(|w| w.id);
    let (Some(mut reader), Some(output)) = (reader, output) else {
        unreachable!("the reader and output stages were built by `run`")
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
    let latency = vec![
        StageLatency::merged(
            "reader",
            "read → next read (read, stamp, route)",
            [&reader.latency],
        ),
        StageLatency::merged(
            "worker queue",
            "origin → taken by worker",
            workers.iter().map(|w| &w.queue_latency),
        ),
        StageLatency::merged(O::STAGE, O::SPAN, workers.iter().map(|w| &w.out.op_latency)),
        StageLatency::merged("output hop", "worker push → output", [&output.hop_latency]),
        StageLatency::merged("end to end", "origin → output", [&output.e2e_latency]),
    ];
    let report = EngineReport {
        messages: reader.messages,
        offered: reader.counters.iter().map(|c| c.pushed + c.dropped).sum(),
        dropped: reader.counters.iter().map(|c| c.dropped).sum(),
        processed: workers.iter().map(|w| w.processed).sum(),
        rejected: workers.iter().map(|w| w.rejected).sum(),
        output_received: output.received.iter().sum(),
        flagged: output.flagged,
        out_of_order_ts: reader.out_of_order_ts,
        order_violations: workers.iter().map(|w| w.order.violations).sum::<u64>()
            + output.order.iter().map(|o| o.violations).sum::<u64>(),
        stopped_at_until: reader.stopped_at_until,
        interrupted: reader.interrupted,
        marks: workers.iter().map(|w| w.marks).sum(),
        marks_sent: reader.marks_sent.clone(),
        elapsed_ns,
        messages_per_s: reader.messages as f64 * 1e9 / elapsed_ns.max(1) as f64,
        rings,
        latency,
        threads,
        ticks_per_ns: scale.ticks_per_ns,
    };
    Finished {
        error: reader.error.take(),
        source: reader.source,
        ops: workers.into_iter().map(|w| w.op).collect(),
        collector: output.collector,
        report,
    }
}
