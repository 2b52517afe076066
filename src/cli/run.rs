//! `tickwatch run` and `tickwatch bars`: a feed through the pinned pipeline (books, surveillance
//! or bars), with a progress line, Ctrl-C, and the report at the end.

use super::args::{BarsArgs, Mlock, RunArgs, Timing};
use super::files::{open_feed_streamed, output_writer};
use super::memory;
use super::progress::{self, Watch};
use super::report::{print_book_gap, print_run_report};
use super::surv::surv_inputs;
use anyhow::{anyhow, bail, Context, Result};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tickwatch::ckpt;
use tickwatch::feed::MapOptions;
use tickwatch::itch::symbol_field;
use tickwatch::pipeline::gap::GapSummary;
use tickwatch::pipeline::{self, BarsConfig, FeedOptions, PipelineConfig};
use tickwatch::policy::{available_cores, threads_or_all, workers_for, RunKind};
use tickwatch::surv::watch::RulesWatch;
use tickwatch::window::{Emit, TimeWindowConfig};

/// Set by Ctrl-C: the reader stops, the pipeline drains, the final counters are printed.
static STOP: AtomicBool = AtomicBool::new(false);

pub fn cmd_run(mut a: RunArgs) -> Result<()> {
    resume_defaults(&mut a)?;
    let bars = match &a.bars {
        None => None,
        Some(out) => Some(BarsConfig {
            window: TimeWindowConfig {
                size: 1_000_000_000,
                slide: 1_000_000_000,
                offset: 0,
                allowed_lateness: 0,
                max_out_of_orderness: 0,
                emit: Emit::OnClose,
            },
            mark_every: 1024,
            by: tickwatch::agg::BarKey::Stock,
            max_participants: 4096,
            symbol: None,
            format: tickwatch::agg::BarFormat::Csv,
            sink: output_writer((out.as_os_str() != "-").then_some(out.as_path()))?,
        }),
    };
    let surv = surv_job(&a)?;
    run_pipeline(a, bars, surv)
}

/// The surveillance job of `--alerts` (and `--rules`), if any.
fn surv_job(a: &RunArgs) -> Result<Option<pipeline::alerts::SurvJob>> {
    Ok(match (&a.alerts, &a.surv.rules) {
        (None, None) => None,
        (None, Some(_)) => bail!("--rules needs --alerts FILE (where the alerts go)"),
        (Some(out), _) => {
            let (rules, flow) = surv_inputs(&a.surv, &a.input.file)?;
            Some(pipeline::alerts::SurvJob {
                rules,
                flow,
                // A resumed run opens its alerts file at the checkpoint's length, once the
                // checkpoint is read: nothing is truncated before then.
                sink: if a.resume.is_some() {
                    pipeline::alerts::AlertSink::from(io::sink())
                } else {
                    tickwatch::sink::alert_sink(out)?
                },
                mark_every: 1024,
                reload: None,
                detectors: Vec::new(),
            })
        }
    })
}

/// `--resume D` takes from D's newest checkpoint what it is not given: the worker count,
/// `--until`, `--lenient`, the alerts, rules and flow files. What is given is checked against
/// the checkpoint when it is read (a difference is refused, naming the key).
fn resume_defaults(a: &mut RunArgs) -> Result<()> {
    let Some(d) = &a.resume else { return Ok(()) };
    let Some(m) = ckpt::CkptDir::create(d)?.newest_manifest()? else {
        // The restore says why there is nothing to resume from.
        return Ok(());
    };
    let mut taken = Vec::new();
    let mut take = |what: String| taken.push(what);
    if a.workers.is_none() {
        a.workers = Some(m.run.workers);
        take(format!("--workers {}", m.run.workers));
    }
    if a.until.is_none() && m.run.until.is_some() {
        a.until = m.run.until;
        take("--until".into());
    }
    if !a.input.lenient && m.run.lenient {
        a.input.lenient = true;
        take("--lenient".into());
    }
    if a.alerts.is_none() {
        a.alerts = Some(m.given.alerts.clone().into());
        take(format!("--alerts {}", m.given.alerts));
    }
    if let (None, Some(r)) = (&a.surv.rules, &m.given.rules) {
        a.surv.rules = Some(r.into());
        take(format!("--rules {r}"));
    }
    if a.surv.flow.is_none() && !a.surv.no_flow {
        match &m.given.flow {
            Some(f) => {
                a.surv.flow = Some(f.into());
                take(format!("--flow {f}"));
            }
            None => a.surv.no_flow = true,
        }
    }
    if !taken.is_empty() {
        eprintln!(
            "tickwatch: resuming with {} (from checkpoint {})",
            taken.join(", "),
            m.checkpoint
        );
    }
    Ok(())
}

pub fn cmd_bars(a: BarsArgs) -> Result<()> {
    let window = TimeWindowConfig {
        size: a.window.as_nanos() as u64,
        slide: a.slide.unwrap_or(a.window).as_nanos() as u64,
        offset: a.offset.as_nanos() as u64,
        allowed_lateness: a.lateness.as_nanos() as u64,
        max_out_of_orderness: a.out_of_orderness.as_nanos() as u64,
        emit: Emit::OnClose,
    };
    window
        .validate()
        .map_err(|e| anyhow!("--window/--slide/--offset: {e}"))?;
    let symbol = match &a.symbol {
        Some(s) => Some(symbol_field(s).ok_or_else(|| anyhow!("--symbol {s}: 1 to 8 characters"))?),
        None => None,
    };
    let bars = BarsConfig {
        window,
        mark_every: 1024,
        by: a.by,
        max_participants: a.max_participants,
        symbol,
        format: a.format,
        sink: output_writer(a.out.as_deref())?,
    };
    if a.run.bars.is_some() {
        bail!("--bars is `run`'s; `bars` writes its rows to -o/--out");
    }
    let surv = surv_job(&a.run)?;
    run_pipeline(a.run, Some(bars), surv)
}

fn run_pipeline(
    a: RunArgs,
    bars: Option<BarsConfig>,
    mut surv: Option<pipeline::alerts::SurvJob>,
) -> Result<()> {
    let alerts_on_stdout = a.alerts.as_ref().is_some_and(|p| p.as_os_str() == "-");
    let watch = watch_rules(&a, &mut surv);
    if let Some(lines) = &a.live.lines.listen {
        if a.resume.is_some() || a.checkpoint_dir.is_some() {
            bail!("--checkpoint-dir and --resume are not supported with --listen yet (a live feed would have to re-request what it missed since the checkpoint)");
        }
        let kind = match (&surv, &bars) {
            (Some(_), _) => RunKind::Surveillance,
            (None, Some(_)) => RunKind::Bars,
            (None, None) => RunKind::Books,
        };
        let cfg = pipeline_config(&a, kind)?;
        let jobs = pipeline::MarketJobs { bars, surv };
        return super::listen::run_live(&a, lines, cfg, jobs, watch);
    }
    let lock = match (a.mlock, a.no_mlock) {
        (_, true) | (Mlock::Never, _) => false,
        (Mlock::Always, _) => true,
        (Mlock::Auto, _) => a.speed.0.is_some(),
    };
    // Unlocked, the sizing pass faults the pages in, on every core, instead of one thread.
    let opts = MapOptions {
        populate: lock,
        ..MapOptions::default()
    };
    let map = open_feed_streamed(&a.input, opts)?;
    let path = map.path.clone();
    if lock {
        if let Err(e) = map.lock() {
            eprintln!(
                "tickwatch: warning: could not lock the feed in memory ({e}); a slow replay may stall on page faults (see --mlock)"
            );
        }
    }
    let buf = map.bytes();
    if buf.is_empty() {
        bail!("{}: empty file", path.display());
    }
    let kind = match (&surv, &bars) {
        (Some(_), _) => RunKind::Surveillance,
        (None, Some(_)) => RunKind::Bars,
        (None, None) => RunKind::Books,
    };
    let cfg = pipeline_config(&a, kind)?;
    memory::check(&cfg, bars.as_ref())?;
    ctrlc::set_handler(|| STOP.store(true, Ordering::Relaxed))
        .context("installing the Ctrl-C handler")?;
    let progress = AtomicU64::new(0);
    let bars_on_stdout = bars.is_some() && a.bars.as_ref().map_or(true, |p| p.as_os_str() == "-");
    let jobs = pipeline::MarketJobs { bars, surv };
    let scan = match map.stream() {
        Some(st) => Some(st.scan(&a.input.file, cfg.workers)?),
        None => None,
    };
    let mut jobs = jobs;
    let ck = checkpointing(&a, &cfg, &path, buf, &mut jobs)?;
    let outcome = progress::while_running(&progress, watch, || match (&scan, ck) {
        (Some(scan), Some(ck)) => {
            pipeline::run_capture_ckpt(scan, &cfg, jobs, ck, &STOP, &progress)
        }
        (Some(scan), None) => pipeline::run_capture(scan, &cfg, jobs, &STOP, &progress),
        (None, Some(ck)) => pipeline::run_market_ckpt(buf, &cfg, jobs, ck, &STOP, &progress),
        (None, None) => pipeline::run_market(buf, &cfg, jobs, &STOP, &progress),
    })
    .map_err(|e| map.explain(e))?;
    let r = &outcome.report;
    let book_gap = match (&scan, map.stream()) {
        (Some(scan), Some(st)) => st.gaps(&a.input.file, scan, cfg.books)?,
        _ => None,
    };
    // Rows or alerts on standard output: the report goes to standard error.
    let mut report: Box<dyn Write> = if bars_on_stdout || alerts_on_stdout {
        Box::new(io::stderr().lock())
    } else {
        Box::new(io::stdout().lock())
    };
    if let Some(out) = &a.latency_out {
        write_latency(out, &path, r)?;
    }
    if a.json {
        let run = GappedRun {
            run: r,
            book_gap: book_gap.as_ref(),
        };
        serde_json::to_writer_pretty(&mut report, &run)?;
        writeln!(report)?;
    } else {
        print_run_report(&mut report, &path, r)?;
        if let Some(g) = &book_gap {
            print_book_gap(&mut report, g, r.book_stats.unknown_refs)?;
        }
        if let Some(out) = &a.latency_out {
            writeln!(
                report,
                "latency: {} (HdrHistogram percentile distribution, end to end, ns), {}",
                out.display(),
                out.with_extension("svg").display()
            )?;
        }
    }
    if let (Some(c), false) = (&r.checkpoints, a.json) {
        print_checkpoints(&mut report, c)?;
    }
    r.check_conservation()
        .map_err(|e| anyhow!("pipeline accounting failed: {e}"))?;
    report.flush()?;
    // The process ends here: the books and the mapped feed go with it, without unmapping
    // hundreds of megabytes one table at a time (≈ 6 ms on a 3 M-message feed).
    std::mem::forget(outcome);
    std::mem::forget(map);
    Ok(())
}

/// The checkpoints of `--checkpoint-dir`/`--resume`: where they go, and the one resumed from
/// (read back and checked, the alerts file cut to it).
fn checkpointing(
    a: &RunArgs,
    cfg: &PipelineConfig,
    feed: &Path,
    buf: &[u8],
    jobs: &mut pipeline::MarketJobs,
) -> Result<Option<pipeline::Checkpointing>> {
    let Some(dir) = a.resume.as_ref().or(a.checkpoint_dir.as_ref()) else {
        return Ok(None);
    };
    let (Some(j), Some(alerts)) = (jobs.surv.as_mut(), a.alerts.as_ref()) else {
        bail!(
            "--checkpoint-dir/--resume: checkpoints are of surveillance runs (add --alerts FILE)"
        );
    };
    if jobs.bars.is_some() {
        bail!("--checkpoint-dir/--resume: runs with bars are not checkpointed yet");
    }
    if alerts.as_os_str() == "-" {
        bail!(
            "--checkpoint-dir/--resume: the alerts must go to a regular file (not standard output)"
        );
    }
    let crc_of = |b: &[u8]| format!("{:08x}", crc32fast::hash(b));
    let key = ckpt::RunKey {
        workers: cfg.workers,
        rules_crc32: crc_of(&serde_json::to_vec(&j.rules)?),
        flow_crc32: crc_of(&ckpt::encode(&j.flow)?),
        mark_every: j.mark_every,
        lenient: cfg.feed.lenient,
        until: cfg.feed.until,
    };
    let abs = |p: &Path| -> Result<String> {
        Ok(std::path::absolute(p)
            .with_context(|| format!("the absolute path of {}", p.display()))?
            .display()
            .to_string())
    };
    let given = ckpt::Given {
        alerts: abs(alerts)?,
        rules: a.surv.rules.as_deref().map(abs).transpose()?,
        flow: super::surv::flow_path(&a.surv, &a.input.file)
            .as_deref()
            .map(abs)
            .transpose()?,
    };
    let mut run = pipeline::ckpt::CkptRun {
        dir: ckpt::CkptDir::create(dir)?,
        every: a
            .checkpoint_every
            .unwrap_or(tickwatch::engine::CkptEvery::FeedNs(10_000_000_000)),
        feed: ckpt::FeedId::of(feed, buf),
        key,
        given,
        alerts: alerts.clone(),
        log: Default::default(),
        cuts: Default::default(),
    };
    if a.resume.is_none() {
        run.dir.clear()?;
        return Ok(Some(pipeline::Checkpointing {
            run,
            restored: None,
        }));
    }
    let restored = run.restore()?;
    run.dir.clear_staging()?;
    for s in &run
        .log
        .lock()
        .map(|l| l.skipped.clone())
        .unwrap_or_default()
    {
        eprintln!("tickwatch: skipping a damaged checkpoint: {s}");
    }
    let m = &restored.manifest;
    run.every = a.checkpoint_every.unwrap_or(m.every);
    eprintln!(
        "tickwatch: resuming from checkpoint {} at message {} (byte {}), {} alerts ({} bytes)",
        m.checkpoint, m.input.message, m.input.byte_offset, m.alerts.count, m.alerts.len
    );
    j.sink = pipeline::alerts::AlertSink::Journal(
        pipeline::journal::Journal::open_at(alerts, m.alerts.len)
            .with_context(|| format!("opening {} to resume", alerts.display()))?,
    );
    Ok(Some(pipeline::Checkpointing {
        run,
        restored: Some(restored),
    }))
}

fn print_checkpoints(out: &mut dyn Write, c: &pipeline::ckpt::CkptReport) -> Result<()> {
    if let Some(from) = &c.resumed_from {
        writeln!(out, "resumed from: {from}")?;
    }
    let max = |v: &[u64]| v.iter().max().copied().unwrap_or(0) as f64 / 1e6;
    writeln!(
        out,
        "checkpoints: {} written (last #{}, {:.1} MB); stall max {:.1} ms per worker, {:.1} ms output",
        c.written,
        c.last,
        c.bytes as f64 / 1e6,
        max(&c.worker_stall_ns),
        max(&c.output_stall_ns)
    )?;
    for e in &c.errors {
        writeln!(out, "checkpoint error: {e}")?;
    }
    Ok(())
}

/// What `--json` prints: the run's report, and the feed's unfilled gaps when it had any.
#[derive(serde::Serialize)]
struct GappedRun<'a> {
    #[serde(flatten)]
    run: &'a pipeline::RunReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    book_gap: Option<&'a GapSummary>,
}

/// Rules from a file are watched: a change is loaded, checked and handed to the running
/// detectors (state kept); a file that does not load is reported and the old rules stay.
fn watch_rules(a: &RunArgs, surv: &mut Option<pipeline::alerts::SurvJob>) -> Option<Watch> {
    match (surv, &a.surv.rules) {
        (Some(j), Some(path)) => {
            let cell = Arc::new(pipeline::alerts::RulesCell::new(j.rules));
            j.reload = Some(cell.clone());
            Some((cell, RulesWatch::new(path, &j.rules)))
        }
        _ => None,
    }
}

/// The pipeline's configuration from the run's flags.
fn pipeline_config(a: &RunArgs, kind: RunKind) -> Result<PipelineConfig> {
    let all_cores = available_cores();
    let cores: Vec<usize> = match &a.cores {
        Some(list) if list.iter().any(|c| c.is_none()) => Vec::new(),
        Some(list) => list.iter().flatten().copied().collect(),
        None => all_cores.clone(),
    };
    if let Some(bad) = cores.iter().find(|c| !all_cores.contains(c)) {
        bail!("--cores: core {bad} is not available here (cores: {all_cores:?})");
    }
    let ncores = if cores.is_empty() {
        threads_or_all(None)
    } else {
        cores.len()
    };
    let timing = a.timing.unwrap_or(if kind == RunKind::Bars {
        Timing::E2e
    } else {
        Timing::Sampled
    });
    Ok(PipelineConfig {
        workers: a
            .workers
            // A live feed comes at its own pace: as a paced replay.
            .unwrap_or_else(|| {
                workers_for(
                    kind,
                    ncores,
                    a.speed.0.is_some() || a.live.lines.listen.is_some(),
                )
            }),
        cores,
        wait: a.wait,
        backpressure: a.backpressure,
        speed: a.speed.0,
        pace_from: a.from.unwrap_or(0),
        feed: FeedOptions {
            until: a.until,
            lenient: a.input.lenient,
        },
        ring_capacity: a.ring_capacity,
        stage_timing: timing != Timing::E2e,
        stage_sample: if timing == Timing::Sampled { 16 } else { 1 },
        books: a.caps.config(),
        thread_hook: None,
    })
}

/// The end-to-end latency as an `.hgrm` file at `out`, and every stage's chart beside it.
fn write_latency(out: &Path, feed: &Path, r: &pipeline::RunReport) -> Result<()> {
    let mut f = io::BufWriter::new(
        std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?,
    );
    tickwatch::latency::write_hgrm(&mut f, &r.end_to_end().histogram)?;
    f.flush()?;
    tickwatch::latency::plot_svg(
        &out.with_extension("svg"),
        &format!("tickwatch run {} — latency by percentile", feed.display()),
        &r.latency,
    )?;
    Ok(())
}
