//! `tickwatch demo`: generate a labelled feed, decode it, rebuild and check its books, run it
//! through the pipeline and through surveillance, and show what came out.

use super::args::DemoArgs;
use super::files::sibling;
use anyhow::{anyhow, bail, Result};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Instant;
use tickwatch::book::{BookConfig, Books};
use tickwatch::feed::{MapOptions, MappedFile};
use tickwatch::gen::GenConfig;
use tickwatch::inspect::{inspect, InspectOptions};
use tickwatch::itch::{price4, symbol_str, Side};
use tickwatch::pipeline::{self, PipelineConfig};
use tickwatch::policy::{available_cores, default_workers, threads_or_all};
use tickwatch::scenario::ScenarioKind;
use tickwatch::surv::{FlowRecord, Rules};
use tickwatch::truth::Truth;
use tickwatch::{bench, latency};

pub fn cmd_demo(a: DemoArgs) -> Result<()> {
    let tmp;
    let dir: &Path = match &a.keep {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d
        }
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path()
        }
    };
    let path = dir.join("demo.itch");
    let (truth, flow, peak) = generate(&a, &path)?;
    let map = MappedFile::open(&path, MapOptions::default())?;
    let buf = map.bytes();
    decode(buf)?;
    let books = rebuild(buf, peak, a.symbols)?;
    let pcfg = through_pipeline(buf, &books)?;
    surveil(buf, &pcfg, flow, &truth, dir)?;
    print_tops(&books, a.symbols);
    let sym = books.symbol(1).map(symbol_str).unwrap_or_default();
    match &a.keep {
        Some(_) => println!("  try: tickwatch book {} --symbol {sym} --depth 5", path.display()),
        None => println!(
            "  (the feed was temporary; `tickwatch demo --keep DIR` keeps it for `tickwatch book DIR/demo.itch --symbol {sym}`)"
        ),
    }
    Ok(())
}

/// Writes the feed at `path` and its truth beside it: the truth, the firm's flow and the peak
/// of live orders.
fn generate(a: &DemoArgs, path: &Path) -> Result<(Truth, Vec<FlowRecord>, u64)> {
    println!(
        "tickwatch demo: generating {} messages over {} stocks -> {}",
        a.messages,
        a.symbols,
        path.display()
    );
    let cfg = GenConfig {
        messages: a.messages,
        symbols: a.symbols,
        live_orders: (a.messages / 20).max(1),
        seed: 2026,
    };
    let t0 = Instant::now();
    // A continuous session compressed into 10 minutes, with every manipulation scenario
    // injected (labelled: the truth and the firm's participant flow are written beside it).
    let plan = tickwatch::gen::ScenarioPlan {
        kinds: ScenarioKind::ALL.to_vec(),
        rate: 1.0,
    };
    let (rep, episodes, flow) = tickwatch::gen::generate_scenarios(
        &cfg,
        600_000_000_000,
        &plan,
        io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?),
    )?;
    let flow = flow.unwrap_or_default();
    // The flow beside the feed: `eval` on a kept demo then scores wash as the demo does.
    let flow_path = super::gen::write_flow(path, &flow)?;
    let truth = Truth {
        feed: path.display().to_string(),
        seed: cfg.seed,
        scenarios: plan.kinds.iter().map(|k| k.name().to_string()).collect(),
        rate: plan.rate,
        flow: Some(flow_path.display().to_string()),
        episodes,
    };
    std::fs::write(
        sibling(path, "truth.json"),
        serde_json::to_string_pretty(&truth)?,
    )?;
    println!(
        "  generated {} bytes in {:.2} s (peak {} live orders; {} labelled manipulation episodes: {}; {} participant-flow records)",
        rep.bytes,
        t0.elapsed().as_secs_f64(),
        rep.peak_live_orders,
        truth.episodes.len(),
        truth.scenarios.join(", "),
        flow.len()
    );
    Ok((truth, flow, rep.peak_live_orders))
}

/// Inspects the feed on every core and decodes every field of every message.
fn decode(buf: &[u8]) -> Result<()> {
    let threads = threads_or_all(None);
    let t0 = Instant::now();
    let s = inspect(
        buf,
        InspectOptions {
            threads,
            lenient: false,
            refs: false,
        },
    )?;
    let dt = t0.elapsed().as_secs_f64();
    println!(
        "  inspect: {} messages, {} stocks, {:.1} M msg/s on {} thread(s)",
        s.messages,
        s.stocks,
        s.messages as f64 / dt / 1e6,
        s.chunks
    );
    let mix: Vec<String> = s
        .by_type
        .iter()
        .map(|(t, n)| format!("{t} {:.1}%", 100.0 * *n as f64 / s.messages as f64))
        .collect();
    println!("  mix: {}", mix.join("  "));

    let t0 = Instant::now();
    let w = bench::decode_fold(buf)?;
    let dt = t0.elapsed().as_secs_f64();
    println!(
        "  decode (every field): {:.1} M msg/s, {:.1} ns/msg",
        w.messages as f64 / dt / 1e6,
        dt * 1e9 / w.messages as f64
    );
    Ok(())
}

/// Rebuilds every book on one thread and checks them.
fn rebuild(buf: &[u8], peak_live_orders: u64, symbols: u32) -> Result<Books> {
    let mut books = Books::new(BookConfig::for_orders(
        (peak_live_orders as usize * 2).max(1024),
        symbols as usize + 1,
    ));
    let t0 = Instant::now();
    let n = bench::decode_book(buf, &mut books)?;
    let dt = t0.elapsed().as_secs_f64();
    println!(
        "  decode + full-depth books: {:.1} M msg/s, {:.1} ns/msg, {} live orders at the close",
        n as f64 / dt / 1e6,
        dt * 1e9 / n as f64,
        books.live_orders()
    );
    let st = books.stats();
    println!(
        "  book skips: {} (unknown refs {}, overflows {})",
        st.skipped(),
        st.unknown_refs,
        st.order_overflows + st.level_overflows
    );
    match books.check() {
        Ok(()) => println!(
            "  consistency: every level equals the sum of its orders; {} crossed books",
            books.crossed().len()
        ),
        Err(e) => bail!("book consistency check failed: {e}"),
    }
    Ok(books)
}

/// The same feed through the pinned pipeline (reader → shard workers → output): its books must
/// equal the single-threaded ones. Returns the configuration, for the surveillance run.
fn through_pipeline(buf: &[u8], books: &Books) -> Result<PipelineConfig> {
    let cores = available_cores();
    let pcfg = PipelineConfig {
        workers: default_workers(cores.len(), false).min(2),
        cores,
        books: books.config(),
        ..PipelineConfig::default()
    };
    let (stop, progress) = (AtomicBool::new(false), AtomicU64::new(0));
    let out = pipeline::run(buf, &pcfg, &stop, &progress)?;
    let r = &out.report;
    r.check_conservation()
        .map_err(|e| anyhow!("pipeline accounting failed: {e}"))?;
    if r.book_stats != *books.stats() || r.live_orders != books.live_orders() {
        bail!("the pipeline's books disagree with the single-threaded replay");
    }
    println!(
        "  pipeline ({} workers on {} pinned threads: {}): {:.1} M msg/s; books identical to the single-threaded replay",
        r.workers,
        r.threads.len(),
        r.threads.iter().map(|t| t.name.trim_start_matches("tw-")).collect::<Vec<_>>().join(" | "),
        r.messages_per_s / 1e6
    );
    println!("  per-event latency through the pipeline (every stage of every event timed, which costs throughput — `tickwatch run --timing e2e` times end to end only; as fast as possible, so queueing is included):");
    print_indented_table(&r.latency)?;
    Ok(pcfg)
}

/// Surveillance: every detector in the shard workers, the risk book in the output stage; the
/// alerts scored against the truth.
fn surveil(
    buf: &[u8],
    pcfg: &PipelineConfig,
    flow: Vec<FlowRecord>,
    truth: &Truth,
    dir: &Path,
) -> Result<()> {
    let alerts_path = dir.join("alerts.jsonl");
    let job = pipeline::alerts::SurvJob {
        rules: Rules::default(),
        flow,
        sink: pipeline::alerts::AlertSink::Journal(pipeline::journal::Journal::create(
            &alerts_path,
        )?),
        mark_every: 1024,
        reload: None,
        detectors: Vec::new(),
    };
    let spcfg = PipelineConfig {
        stage_timing: false,
        ..pcfg.clone()
    };
    let (stop, progress) = (AtomicBool::new(false), AtomicU64::new(0));
    let out = pipeline::run_surv(buf, &spcfg, job, &stop, &progress)?;
    let r = &out.report;
    r.check_conservation()
        .map_err(|e| anyhow!("pipeline accounting failed: {e}"))?;
    let sv = r.surv.as_ref().expect("a surveillance run reports");
    println!(
        "  surveillance ({} workers, every detector on, default rules): {:.1} M msg/s; {} alerts -> {}",
        r.workers,
        r.messages_per_s / 1e6,
        sv.total,
        alerts_path.display()
    );
    let text = std::fs::read_to_string(&alerts_path)?;
    let alerts = tickwatch::surv::eval::parse_alerts(&text).map_err(|e| anyhow!(e))?;
    let rows = tickwatch::surv::eval::score(truth, &alerts);
    println!("  detection quality against the injected episodes (alerts of detectors without a scenario are counted, not scored):");
    for line in tickwatch::surv::eval::format_scores(&rows).lines() {
        println!("    {line}");
    }
    // Which detectors fired on which episodes: one alert family per episode, or not.
    let matrix = tickwatch::surv::eval::confusion(truth, &alerts);
    for line in tickwatch::surv::eval::format_confusion(&matrix).lines() {
        println!("    {line}");
    }
    if let Some(first) = text
        .lines()
        .find(|l| l.contains("\"spoofing\""))
        .or(text.lines().next())
    {
        println!("  an alert explains itself:\n    {first}");
    }
    let mut lat = vec![r.end_to_end().clone()];
    lat.extend(sv.latency.clone());
    println!("  latency with every detector on (as fast as possible, so queueing is included; `tickwatch run FILE --alerts A --speed 1` for paced):");
    print_indented_table(&lat)
}

/// A latency table, indented under the demo's lines.
fn print_indented_table(stages: &[latency::StageLatency]) -> Result<()> {
    let mut table = Vec::new();
    latency::write_table(&mut table, stages)?;
    for line in String::from_utf8_lossy(&table).lines() {
        println!("    {line}");
    }
    Ok(())
}

/// The top of the first few books.
fn print_tops(books: &Books, symbols: u32) {
    println!("  top of book, busiest stocks:");
    println!(
        "    {:<6} {:>8} {:>10} {:>10} {:<8} {:>6}",
        "symbol", "bid size", "bid", "ask", "ask size", "levels"
    );
    for locate in 1..=5u16.min(symbols as u16) {
        let sym = books.symbol(locate).map(symbol_str).unwrap_or_default();
        let b = books.best(locate, Side::Buy);
        let s = books.best(locate, Side::Sell);
        let levels =
            books.depth(locate, Side::Buy).count() + books.depth(locate, Side::Sell).count();
        println!(
            "    {:<6} {:>8} {:>10} {:>10} {:<8} {:>6}",
            sym,
            b.map(|l| l.shares.to_string()).unwrap_or("-".into()),
            b.map(|l| price4(l.price)).unwrap_or("-".into()),
            s.map(|l| price4(l.price)).unwrap_or("-".into()),
            s.map(|l| l.shares.to_string()).unwrap_or("-".into()),
            levels
        );
    }
}
