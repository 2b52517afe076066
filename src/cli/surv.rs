//! `tickwatch surveil`, `eval` and `rules`: the single-threaded detectors, scoring, rules.

use super::args::{EvalArgs, RulesArgs, SurvOpts, SurveilArgs};
use super::files::{open_feed_in_place, output_writer, sibling};
use super::report::print_book_gap;
use anyhow::{Context, Result};
use std::io::{self, Write};
use std::path::Path;
use std::time::Instant;
use tickwatch::book::{BookConfig, Books};
use tickwatch::feed::MapOptions;
use tickwatch::pipeline::gap::{flag_book_gap, BookGap};
use tickwatch::pipeline::source::for_each_capture_message;
use tickwatch::pipeline::{CaptureScan, JobError};
use tickwatch::surv::{self, DetectorId, FlowRecord, Rules};

/// What a surveillance run without the firm's participant flow cannot do.
pub const NO_FLOW: &str = "participant flow: none — account-level wash detection is inactive (it needs the firm's flow: FEED.flow.csv beside the feed, or --flow FILE)";

/// The rules and participant flow a surveillance command uses.
pub fn surv_inputs(o: &SurvOpts, feed: &Path) -> Result<(Rules, Vec<FlowRecord>)> {
    let rules = match &o.rules {
        Some(p) => Rules::load(p)?,
        None => Rules::default(),
    };
    let flow = match flow_path(o, feed) {
        Some(p) => {
            let f = tickwatch::surv::flow::read_flow(&p)?;
            eprintln!("participant flow: {} records from {}", f.len(), p.display());
            f
        }
        None => Vec::new(),
    };
    Ok((rules, flow))
}

/// The participant flow file a surveillance command reads, if any.
pub fn flow_path(o: &SurvOpts, feed: &Path) -> Option<std::path::PathBuf> {
    match (&o.flow, o.no_flow) {
        (_, true) => None,
        (Some(p), _) => Some(p.clone()),
        (None, _) => Some(sibling(feed, "flow.csv")).filter(|p| p.exists()),
    }
}

pub fn cmd_surveil(a: SurveilArgs) -> Result<()> {
    let (rules, flow) = surv_inputs(&a.surv, &a.input.file)?;
    if flow.is_empty() {
        eprintln!("{NO_FLOW}");
    }
    let map = open_feed_in_place(&a.input, MapOptions::default())?;
    let stream = match map.stream() {
        Some(st) => Some((st, st.scan(&a.input.file, 1)?)),
        None => None,
    };
    let mut books = Books::new(BookConfig::full_day());
    let t0 = Instant::now();
    let feed = map.bytes();
    let (alerts, counters, bad_lengths) = match (&stream, a.input.lenient) {
        (Some((_, scan)), lenient) => {
            surveil_capture(scan, &mut books, rules, &flow, a.mark_every, lenient)
                .map_err(|e| map.explain(e))?
        }
        (None, true) => surv::surveil_feed_lenient(feed, &mut books, rules, &flow, a.mark_every)
            .map_err(|e| map.explain(e))?,
        (None, false) => surv::surveil_feed(feed, &mut books, rules, &flow, a.mark_every)
            .map(|(alerts, counters)| (alerts, counters, 0))
            .map_err(|e| map.explain(e))?,
    };
    let secs = t0.elapsed().as_secs_f64();
    let gap = stream
        .as_ref()
        .and_then(|(_, scan)| scan.first_gap())
        .map(BookGap::at);
    let mut w = output_writer(a.alerts.as_deref())?;
    let mut line = Vec::with_capacity(4096);
    let mut by = [0u64; DetectorId::ALL.len()];
    let to = match &a.alerts {
        Some(p) => p.display().to_string(),
        None => "standard output".to_string(),
    };
    for al in &alerts {
        line.clear();
        al.write_json(&mut line);
        if gap.as_ref().is_some_and(|g| g.covers(al.seq)) {
            flag_book_gap(&mut line);
        }
        w.write_all(&line)
            .with_context(|| format!("writing the alerts to {to}"))?;
        by[al.detector as usize] += 1;
    }
    w.flush()
        .with_context(|| format!("writing the alerts to {to}"))?;
    if a.input.lenient {
        eprintln!("--lenient: {bad_lengths} messages of a known type and a wrong length skipped");
    }
    eprintln!(
        "{}: {} events in {:.2} s ({:.2} M/s); {} alerts; flow records applied {} of {}",
        a.input.file.display(),
        counters.events,
        secs,
        counters.events as f64 / secs / 1e6,
        alerts.len(),
        counters.flow_applied,
        flow.len()
    );
    for d in DetectorId::ALL {
        eprintln!("  {:<18} {:>7}", d.name(), by[d as usize]);
    }
    let book_gap = match &stream {
        Some((st, scan)) => st.gaps(&a.input.file, scan, BookConfig::full_day())?,
        None => None,
    };
    if let Some(g) = book_gap {
        print_book_gap(&mut io::stderr().lock(), &g, books.stats().unknown_refs)?;
    }
    Ok(())
}

/// `surveil` over a capture, its messages streamed in place (as `scan`, its first pass, found
/// them): the alerts, the counters, and the messages of a wrong length skipped (`lenient`).
fn surveil_capture(
    scan: &CaptureScan<'_>,
    books: &mut Books,
    rules: Rules,
    flow: &[FlowRecord],
    mark_every: u32,
    lenient: bool,
) -> Result<(Vec<surv::Alert>, surv::SurvCounters, u64), JobError> {
    let s = surv::Surveillance::new(rules, flow);
    let mut bad_lengths = 0;
    let (alerts, counters) = surv::surveil_messages(books, s, mark_every, |books, f| {
        let each = |m: &tickwatch::itch::Message<'_>| f(books, m);
        bad_lengths = for_each_capture_message(scan, lenient, each)?.1;
        Ok::<(), JobError>(())
    })?;
    Ok((alerts, counters, bad_lengths))
}

/// One feed's truth and alerts.
fn eval_inputs(
    feed: &Path,
    truth: Option<&Path>,
    alerts: &Path,
) -> Result<(
    tickwatch::truth::Truth,
    Vec<tickwatch::surv::eval::AlertRef>,
)> {
    let tp = truth.map_or_else(|| sibling(feed, "truth.json"), Path::to_path_buf);
    let truth: tickwatch::truth::Truth = serde_json::from_str(
        &std::fs::read_to_string(&tp).with_context(|| format!("reading {}", tp.display()))?,
    )
    .with_context(|| format!("{}: not a truth file", tp.display()))?;
    let text =
        std::fs::read_to_string(alerts).with_context(|| format!("reading {}", alerts.display()))?;
    let alerts = tickwatch::surv::eval::parse_alerts(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", alerts.display()))?;
    Ok((truth, alerts))
}

pub fn cmd_eval(a: EvalArgs) -> Result<()> {
    use tickwatch::surv::eval;
    if a.feed.len() != a.alerts.len() {
        anyhow::bail!(
            "{} feeds but {} --alerts: give one alerts file per feed, in order",
            a.feed.len(),
            a.alerts.len()
        );
    }
    if a.truth.is_some() && a.feed.len() > 1 {
        anyhow::bail!(
            "--truth names one feed's truth: with several feeds, each reads FEED.truth.json"
        );
    }
    let (mut rows, mut matrix) = (Vec::new(), eval::Confusion::default());
    let (mut episodes, mut alert_count) = (0, 0);
    for (feed, alerts) in a.feed.iter().zip(&a.alerts) {
        let (truth, alerts) = eval_inputs(feed, a.truth.as_deref(), alerts)?;
        eval::merge_scores(&mut rows, &eval::score(&truth, &alerts));
        matrix.merge(&eval::confusion(&truth, &alerts));
        episodes += truth.episodes.len();
        alert_count += alerts.len();
    }
    if a.feed.len() == 1 {
        // One feed: the rows exactly as `score` made them (missed ids kept).
        let (truth, alerts) = eval_inputs(&a.feed[0], a.truth.as_deref(), &a.alerts[0])?;
        rows = eval::score(&truth, &alerts);
    }
    if a.json {
        let mut out = io::stdout().lock();
        if a.confusion {
            let v = serde_json::json!({ "scores": rows, "confusion": matrix });
            serde_json::to_writer_pretty(&mut out, &v)?;
        } else {
            serde_json::to_writer_pretty(&mut out, &rows)?;
        }
        writeln!(out)?;
    } else {
        let name = match a.feed.len() {
            1 => a.feed[0].display().to_string(),
            n => format!("{n} feeds"),
        };
        println!("{name}: {episodes} episodes, {alert_count} alerts");
        print!("{}", eval::format_scores(&rows));
        print!("{}", eval::format_confusion(&matrix));
    }
    Ok(())
}

pub fn cmd_rules(a: RulesArgs) -> Result<()> {
    match a.check {
        Some(p) => {
            Rules::load(&p)?;
            println!("{}: ok", p.display());
        }
        None => print!("{}", Rules::defaults_toml()),
    }
    Ok(())
}
