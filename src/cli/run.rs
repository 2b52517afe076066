//! `tickwatch run` and `tickwatch bars`: a feed through the pinned pipeline (books, surveillance
//! or bars), with a progress line, Ctrl-C, and the report at the end.

use super::args::{BarsArgs, Mlock, RunArgs, Timing};
use super::files::{open_feed, output_writer};
use super::memory;
use super::progress::{self, Watch};
use super::report::{print_book_gap, print_run_report};
use super::surv::surv_inputs;
use anyhow::{anyhow, bail, Context, Result};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tickwatch::feed::MapOptions;
use tickwatch::itch::symbol_field;
use tickwatch::pipeline::gap::GapSummary;
use tickwatch::pipeline::{self, BarsConfig, FeedOptions, PipelineConfig};
use tickwatch::policy::{available_cores, threads_or_all, workers_for, RunKind};
use tickwatch::surv::watch::RulesWatch;
use tickwatch::window::{Emit, TimeWindowConfig};

/// Set by Ctrl-C: the reader stops, the pipeline drains, the final counters are printed.
static STOP: AtomicBool = AtomicBool::new(false);

pub fn cmd_run(a: RunArgs) -> Result<()> {
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
                sink: tickwatch::sink::alert_sink(out)?,
                mark_every: 1024,
                reload: None,
                detectors: Vec::new(),
            })
        }
    })
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
    if let Some(lines) = &a.live.listen {
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
    let map = open_feed(&a.input, opts)?;
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
    let lost = map.capture().map(|c| &c.extracted);
    let gap = lost.and_then(|x| x.first_gap());
    let outcome = progress::while_running(&progress, watch, || {
        pipeline::run_market_gapped(buf, gap, &cfg, jobs, &STOP, &progress)
    })
    .map_err(|e| map.explain(e))?;
    let r = &outcome.report;
    let book_gap = lost.and_then(capture_gaps);
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
    r.check_conservation()
        .map_err(|e| anyhow!("pipeline accounting failed: {e}"))?;
    report.flush()?;
    // The process ends here: the books and the mapped feed go with it, without unmapping
    // hundreds of megabytes one table at a time (≈ 6 ms on a 3 M-message feed).
    std::mem::forget(outcome);
    std::mem::forget(map);
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

/// A capture's unfilled gaps, placed in the feed.
fn capture_gaps(x: &tickwatch::capture::Extracted) -> Option<GapSummary> {
    GapSummary::of(x.lost.clone())
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
                workers_for(kind, ncores, a.speed.0.is_some() || a.live.listen.is_some())
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
