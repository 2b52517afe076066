//! The `tickwatch` command line: argument parsing and output only; the work is in the library.

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;
use tickwatch::agg::{BarFormat, BarKey};
use tickwatch::book::{BookConfig, Books, LevelView};
use tickwatch::feed::mmap::evict_page_cache;
use tickwatch::feed::{gz, MapOptions, MappedFile};
use tickwatch::filebench::{self, FileBenchOptions, KernelResult};
use tickwatch::gen::GenConfig;
use tickwatch::inspect::{inspect, InspectOptions};
use tickwatch::itch::{fmt_time, parse_time, price4, symbol_field, symbol_str, Side};
use tickwatch::pipeline::{
    self, Backpressure, BarsConfig, FeedOptions, PipelineConfig, WaitStrategy,
};
use tickwatch::scenario::ScenarioKind;
use tickwatch::surv::{DetectorId, FlowRecord, Rules};
use tickwatch::window::{Emit, TimeWindowConfig};
use tickwatch::{bench, replay};

/// Low-latency market-data engine: decode NASDAQ ITCH 5.0, rebuild full-depth books, measure.
#[derive(Parser, Debug)]
#[command(name = "tickwatch", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Count a feed file's messages by type, its stocks, time span and anything skipped.
    Inspect(InspectArgs),
    /// Print one stock's order book at a time of day (default: end of file).
    Book(BookArgs),
    /// Write a deterministic synthetic ITCH 5.0 BinaryFILE.
    Gen(GenArgs),
    /// Convert other formats to ITCH 5.0.
    #[command(subcommand)]
    Convert(ConvertCmd),
    /// Generate a sample feed, decode it, rebuild its books and summarise (no arguments needed).
    Demo(DemoArgs),
    /// Measure whole-file decode and book throughput and per-message latency.
    Bench(BenchArgs),
    /// Run a feed through the pinned, sharded pipeline (reader → shard workers → output) and
    /// report throughput, counters and per-stage latency percentiles.
    Run(RunArgs),
    /// Write the feed as one CSV row per stock message (executions priced from the books), for
    /// engines that read text, such as the Flink comparison in tools/.
    Export(ExportArgs),
    /// Per-stock bars in event-time windows through the pinned pipeline: OHLC, volume, VWAP,
    /// trades, messages and order-to-trade ratio, one row per stock and window (the same rows
    /// whatever the worker count); the run's report goes to standard error.
    Bars(BarsArgs),
    /// Run the surveillance detectors over a feed on one thread (the reference the pipeline's
    /// `run --alerts` matches): alerts as JSON lines, counts per detector on standard error.
    Surveil(SurveilArgs),
    /// Score alerts against a generated feed's ground truth: precision and recall per detector.
    Eval(EvalArgs),
    /// Print the default surveillance rules (TOML, every key), or check a rules file.
    Rules(RulesArgs),
}

#[derive(Args, Debug)]
struct SurvOpts {
    /// Rules file (TOML; missing keys take their defaults — see `tickwatch rules`).
    #[arg(long)]
    rules: Option<PathBuf>,
    /// The firm's participant order flow (CSV, see `surv::flow`), joined with the feed by time
    /// (default: FILE.flow.csv when it exists beside the feed).
    #[arg(long)]
    flow: Option<PathBuf>,
    /// Do not read a flow file even if one sits beside the feed.
    #[arg(long)]
    no_flow: bool,
}

#[derive(Args, Debug)]
struct SurveilArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    surv: SurvOpts,
    /// Where to write the alerts (JSON lines; default: standard output).
    #[arg(long, short = 'o')]
    alerts: Option<PathBuf>,
    /// A watermark mark (timers, flow) every this many messages, as the pipeline sends them.
    #[arg(long, default_value_t = 1024)]
    mark_every: u32,
}

#[derive(Args, Debug)]
struct EvalArgs {
    /// The feed the truth describes (for the report).
    feed: PathBuf,
    /// Ground truth JSON (default: FEED.truth.json).
    #[arg(long)]
    truth: Option<PathBuf>,
    /// Alerts JSON lines.
    #[arg(long)]
    alerts: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct RulesArgs {
    /// Check this rules file instead of printing the defaults.
    #[arg(long)]
    check: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct BarsArgs {
    /// Window length: `1s`, `200ms`, `5m`, …
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    window: std::time::Duration,
    /// Slide between window starts (sliding windows; default: the window length, tumbling).
    /// Must divide the window length.
    #[arg(long, value_parser = humantime::parse_duration)]
    slide: Option<std::time::Duration>,
    /// Window starts are offset from midnight by this much (less than the slide).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    offset: std::time::Duration,
    /// Watermark: how far a message's timestamp may lag the latest one seen.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    out_of_orderness: std::time::Duration,
    /// Allowed lateness: a window still takes late messages this long after it fired, and
    /// writes its updated row (`late` = 1); later messages are counted in the late ledger.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    lateness: std::time::Duration,
    /// One row per stock, or per market participant (the MPID of attributed orders, carried
    /// through their executions, cancels and replaces).
    #[arg(long, value_enum, default_value = "stock")]
    by: BarKey,
    /// Participants each worker tracks with `--by participant` (more are counted and skipped).
    #[arg(long, default_value_t = 4096)]
    max_participants: usize,
    /// Only this stock's rows (with `--by participant`: this MPID's).
    #[arg(long)]
    symbol: Option<String>,
    /// Row format.
    #[arg(long, value_enum, default_value = "csv")]
    format: BarFormat,
    /// Write the rows here (default: standard output).
    #[arg(short, long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args, Debug)]
struct ExportArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Output format (CSV: `ts_ns,symbol,msg_type,is_trade,shares,price_e4`).
    #[arg(long, value_enum, default_value = "csv")]
    format: ExportFormat,
    /// Output file (default: standard output).
    #[arg(short, long)]
    out: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ExportFormat {
    Csv,
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Shard workers (events are routed by stock locate; default: cores − 2 from 4 cores on, so
    /// the reader and the output stage get their own; below that cores + 1 at `--speed max`,
    /// packed evenly with them, and cores − 1 when paced, so latency never waits for another
    /// stage's turn; with `--alerts` at max speed below 4 cores, one per core — each measured
    /// best on 2 cores, see PERF.md).
    #[arg(long)]
    workers: Option<usize>,
    /// Cores to pin the pipeline threads to, e.g. `0,1` (default: every core; `none`: no pinning).
    #[arg(long, value_delimiter = ',', value_parser = parse_core)]
    cores: Option<Vec<Option<usize>>>,
    /// How idle threads wait.
    #[arg(long, value_enum, default_value_t = WaitStrategy::BusySpin)]
    wait: WaitStrategy,
    /// What a full reader → worker ring does: block (lossless replay) or drop (live; counted).
    #[arg(long, value_enum, default_value_t = Backpressure::Block)]
    backpressure: Backpressure,
    /// `max` (as fast as possible) or a multiple of the feed's own pace: `1`, `10`, `0.5`, `100x`.
    #[arg(long, default_value = "max", value_parser = parse_speed)]
    speed: Speed,
    /// With a paced `--speed`: fast-forward (untimed) to this time of day, then pace.
    #[arg(long, value_name = "HH:MM:SS[.f]", value_parser = parse_tod)]
    from: Option<u64>,
    /// Stop before the first message stamped after this time of day.
    #[arg(long, value_name = "HH:MM:SS[.f]", value_parser = parse_tod)]
    until: Option<u64>,
    /// Slots per ring (rounded up to a power of two; 64 bytes each on the worker rings).
    #[arg(long, default_value_t = 1 << 14)]
    ring_capacity: usize,
    /// `stages`: time every stage of every event; `e2e`: only end to end (every event still),
    /// so the workers read no clock and no stage histograms are kept (faster: see PERF.md).
    /// (Default: `stages` for `run`, `e2e` for `bars`, whose product is its rows.)
    #[arg(long, value_enum)]
    timing: Option<Timing>,
    /// Write the end-to-end latency as an HdrHistogram percentile distribution (ns) here, and
    /// an SVG plot of every stage beside it (same name, `.svg`).
    #[arg(long, value_name = "FILE.hgrm")]
    latency_out: Option<PathBuf>,
    /// Do not `mlock` the mapped feed (by default its pages are locked in memory so that the
    /// kernel cannot drop them mid-replay and stall the reader on a major fault).
    #[arg(long)]
    no_mlock: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    caps: CapacityArgs,
    /// Run the surveillance detectors and write their alerts here (JSON lines, appended through
    /// a memory map: no system call per alert; while running, the file is pre-sized and the
    /// alerts end at the first NUL byte; at the end it is cut to its alerts). `-` for standard
    /// output (one `write` per batch of alerts; the report then goes to standard error); a
    /// device or a pipe is written to the same way.
    #[arg(long, value_name = "FILE.jsonl")]
    alerts: Option<PathBuf>,
    #[command(flatten)]
    surv: SurvOpts,
}

/// `--timing`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Timing {
    /// Every stage of every event.
    Stages,
    /// End to end only.
    E2e,
}

/// `--speed`: `None` is max.
#[derive(Clone, Copy, Debug)]
struct Speed(Option<f64>);

fn parse_speed(s: &str) -> Result<Speed, String> {
    if s.trim().eq_ignore_ascii_case("max") {
        return Ok(Speed(None));
    }
    let t = s.trim().trim_end_matches(['x', 'X']);
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(Speed(Some(v))),
        _ => Err(format!(
            "`{s}`: expected `max` or a positive number such as 1, 10 or 0.5"
        )),
    }
}

fn parse_core(s: &str) -> Result<Option<usize>, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    s.trim()
        .parse()
        .map(Some)
        .map_err(|_| format!("`{s}`: expected a core number or `none`"))
}

fn parse_tod(s: &str) -> Result<u64, String> {
    parse_time(s).ok_or_else(|| format!("`{s}`: expected HH:MM:SS[.fffffffff]"))
}

#[derive(Args, Debug)]
struct InputArgs {
    /// ITCH 5.0 BinaryFILE (2-byte big-endian length before each message); `.gz` is decompressed
    /// once to a cached sibling file.
    file: PathBuf,
    /// Where to keep the decompressed copy of a `.gz` input (default: beside it, without `.gz`).
    #[arg(long, value_name = "PATH")]
    cache: Option<PathBuf>,
    /// Count and skip known message types whose length is wrong, instead of stopping at the first.
    #[arg(long)]
    lenient: bool,
}

#[derive(Args, Debug)]
struct InspectArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Threads to decode with (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Args, Debug)]
struct BookArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Stock symbol, as in the stock directory (e.g. AAPL).
    #[arg(long)]
    symbol: String,
    /// Time of day, HH:MM:SS[.fffffffff]: apply messages up to and including this time.
    #[arg(long)]
    at: Option<String>,
    /// Price levels per side to show.
    #[arg(long, default_value_t = 10)]
    depth: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    caps: CapacityArgs,
}

#[derive(Args, Debug, Clone, Copy)]
struct CapacityArgs {
    /// Most live orders the books hold (preallocated; more is a counted overflow).
    #[arg(long, default_value_t = 4 << 20)]
    max_orders: usize,
    /// Price-level slots across all books (preallocated; default: 2 × max-orders + 16 per locate).
    #[arg(long)]
    max_levels: Option<usize>,
}

impl CapacityArgs {
    fn config(self) -> BookConfig {
        let mut c = BookConfig::for_orders(self.max_orders, 1 << 16);
        if let Some(l) = self.max_levels {
            c.max_levels = l;
        }
        c
    }
}

#[derive(Args, Debug)]
struct GenArgs {
    /// Total messages to write.
    #[arg(long)]
    messages: u64,
    /// Number of stocks.
    #[arg(long)]
    symbols: u32,
    /// Live orders to ramp up to and then hold (default: messages / 20, at most 2,000,000).
    #[arg(long)]
    live_orders: Option<u64>,
    /// Random seed: the same seed and arguments give the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Compress the continuous session (normally 09:30-16:00) into this long after the open,
    /// e.g. `10m`: the same messages at a higher rate, so that short windows hold many events.
    #[arg(long, value_parser = humantime::parse_duration)]
    session: Option<std::time::Duration>,
    /// Inject labelled manipulation episodes: any of spoofing, layering, stuffing, ignition,
    /// close, wash (comma-separated). Writes OUT.truth.json (the ground truth) and, with wash,
    /// OUT.flow.csv (the firm's participant flow).
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Episodes of each scenario per minute of the continuous session.
    #[arg(long, default_value_t = 0.2)]
    scenario_rate: f64,
    /// Output file.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Subcommand, Debug)]
enum ConvertCmd {
    /// LOBSTER message + orderbook CSV pair → ITCH 5.0 BinaryFILE.
    Lobster(LobsterArgs),
}

#[derive(Args, Debug)]
struct LobsterArgs {
    /// LOBSTER message file (CSV).
    #[arg(long)]
    messages: PathBuf,
    /// LOBSTER orderbook file (CSV) for the same sample.
    #[arg(long)]
    orderbook: PathBuf,
    /// Symbol to give the stock.
    #[arg(long)]
    symbol: String,
    /// Trading date, YYYY-MM-DD.
    #[arg(long)]
    date: String,
    /// Output ITCH file.
    #[arg(long)]
    out: PathBuf,
    /// Print the conversion report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct DemoArgs {
    /// Messages in the generated feed.
    #[arg(long, default_value_t = 2_000_000)]
    messages: u64,
    /// Stocks in the generated feed.
    #[arg(long, default_value_t = 500)]
    symbols: u32,
    /// Keep the generated feed in this directory instead of a temporary one.
    #[arg(long)]
    keep: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct BenchArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Timed repetitions of each kernel (the median is reported).
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Threads for the parallel decode (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Also time a cold first walk: evict the file from the page cache, map without populating, walk.
    #[arg(long)]
    cold: bool,
    /// Map without MAP_POPULATE.
    #[arg(long)]
    no_populate: bool,
    /// Ask for transparent huge pages on the mapping.
    #[arg(long)]
    huge_pages: bool,
    /// Time decode + book update on every N-th message for the latency percentiles (1 = every
    /// message; timing every message perturbs the pipelined loop by ≈ 30 ns/msg).
    #[arg(long, default_value_t = 16)]
    latency_sample: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    caps: CapacityArgs,
}

fn main() {
    // Like other Unix command-line tools, die quietly when the reader of standard output goes
    // away (`tickwatch demo | head`), instead of panicking on the broken pipe in `println!`.
    // SAFETY: called first thing, before any other thread exists; restores the default
    // disposition of one signal and touches no memory.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Inspect(a) => cmd_inspect(a),
        Cmd::Book(a) => cmd_book(a),
        Cmd::Gen(a) => cmd_gen(a),
        Cmd::Surveil(a) => cmd_surveil(a),
        Cmd::Eval(a) => cmd_eval(a),
        Cmd::Rules(a) => cmd_rules(a),
        Cmd::Convert(ConvertCmd::Lobster(a)) => cmd_lobster(a),
        Cmd::Demo(a) => cmd_demo(a),
        Cmd::Bench(a) => cmd_bench(a),
        Cmd::Run(a) => cmd_run(a),
        Cmd::Export(a) => cmd_export(a),
        Cmd::Bars(a) => cmd_bars(a),
    };
    if let Err(e) = result {
        if e.chain().any(|c| {
            c.downcast_ref::<io::Error>()
                .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
        }) {
            std::process::exit(0);
        }
        eprintln!("tickwatch: error: {e:#}");
        std::process::exit(1);
    }
}

/// The cores this process may run on (empty when the platform cannot say).
fn available_cores() -> Vec<usize> {
    core_affinity::get_core_ids()
        .map(|v| v.into_iter().map(|c| c.id).collect())
        .unwrap_or_default()
}

/// Shard workers for `cores` cores: the reader and the output stage get cores of their own from
/// 4 cores on. Below that, a paced (latency) run gives the reader and output one core and the
/// workers the rest, so no event waits for another stage's turn; an as-fast-as-possible run
/// takes one worker more than cores, so that the stages pack evenly (on 2 cores: {reader,
/// worker} and {worker, worker, output}). Both measured best in PERF.md.
fn default_workers(cores: usize, paced: bool) -> usize {
    match (cores, paced) {
        (c, _) if c >= 4 => c - 2,
        (c, true) => c.saturating_sub(1).max(1),
        (c, false) => c.max(1) + 1,
    }
}

fn threads_or_all(t: Option<usize>) -> usize {
    t.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
    .max(1)
}

fn open_feed(input: &InputArgs, opts: MapOptions) -> Result<MappedFile> {
    let path = gz::resolve(&input.file, input.cache.as_deref())?;
    MappedFile::open(&path, opts).with_context(|| format!("mapping {}", path.display()))
}

/// A buffered writer on `path`, or on standard output.
fn output_writer(path: Option<&Path>) -> Result<Box<dyn Write + Send>> {
    Ok(match path {
        Some(p) => Box::new(io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(io::BufWriter::with_capacity(1 << 20, io::stdout())),
    })
}

fn cmd_export(a: ExportArgs) -> Result<()> {
    let ExportFormat::Csv = a.format;
    let map = open_feed(&a.input, MapOptions::default())?;
    let mut books = Books::new(BookConfig::full_day());
    let mut w = output_writer(a.out.as_deref())?;
    let t0 = Instant::now();
    let r = tickwatch::export::export_csv(map.bytes(), &mut books, a.input.lenient, &mut w)
        .with_context(|| format!("{}", a.input.file.display()))?;
    eprintln!(
        "exported {} rows ({} trades, {} before their stock's directory entry) of {} messages in {:.2} s; skipped {} unknown types, {} bad lengths",
        r.rows,
        r.trades,
        r.unnamed,
        r.messages,
        t0.elapsed().as_secs_f64(),
        r.replay.skipped_unknown_types,
        r.replay.skipped_bad_lengths
    );
    Ok(())
}

fn cmd_inspect(a: InspectArgs) -> Result<()> {
    let map = open_feed(&a.input, MapOptions::default())?;
    let t0 = Instant::now();
    let s = inspect(
        map.bytes(),
        InspectOptions {
            threads: threads_or_all(a.threads),
            lenient: a.input.lenient,
        },
    )
    .with_context(|| format!("{}", a.input.file.display()))?;
    let secs = t0.elapsed().as_secs_f64();
    #[derive(Serialize)]
    struct Out<'a> {
        file: String,
        #[serde(flatten)]
        summary: &'a tickwatch::inspect::Summary,
        decode_seconds: f64,
        messages_per_second: f64,
    }
    let rate = s.messages as f64 / secs.max(1e-9);
    let mut out = io::stdout().lock();
    if a.json {
        let o = Out {
            file: a.input.file.display().to_string(),
            summary: &s,
            decode_seconds: secs,
            messages_per_second: rate,
        };
        serde_json::to_writer_pretty(&mut out, &o)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "file        {}", a.input.file.display())?;
    writeln!(out, "messages    {}", s.messages)?;
    writeln!(out, "bytes       {}", s.bytes)?;
    let span = match (s.first_timestamp_ns, s.last_timestamp_ns) {
        (Some(f), Some(l)) => format!("{} .. {}", fmt_time(f), fmt_time(l)),
        _ => "-".into(),
    };
    writeln!(out, "time span   {span}")?;
    writeln!(
        out,
        "stocks      {} in the directory (R){}",
        s.stocks,
        sample(&s.symbols_sample)
    )?;
    writeln!(
        out,
        "locates     {} distinct stock locates named by messages",
        s.locates_seen
    )?;
    writeln!(
        out,
        "decode      {:.3} s, {:.1} M msg/s on {} chunk(s)",
        secs,
        rate / 1e6,
        s.chunks
    )?;
    writeln!(out, "by type")?;
    for (t, n) in &s.by_type {
        writeln!(
            out,
            "  {t}  {n:>12}  {:5.1} %",
            100.0 * *n as f64 / s.messages.max(1) as f64
        )?;
    }
    let unknown: u64 = s.skipped_unknown_types.values().sum();
    writeln!(
        out,
        "skipped     {unknown} unknown-type frame(s){}; {} bad-length frame(s){}",
        s.first_unknown_offset
            .map(|o| format!(" (first at byte {o})"))
            .unwrap_or_default(),
        s.skipped_bad_lengths,
        s.first_bad_length
            .as_ref()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    )?;
    writeln!(
        out,
        "timestamps  {} regression(s){}",
        s.timestamp_regressions,
        s.first_regression_offset
            .map(|o| format!(" (first at byte {o})"))
            .unwrap_or_default()
    )?;
    if s.resync_fallbacks > 0 {
        writeln!(
            out,
            "note        {} chunk boundary guess(es) failed the proof and were re-walked serially",
            s.resync_fallbacks
        )?;
    }
    Ok(())
}

fn sample(syms: &[String]) -> String {
    if syms.is_empty() {
        String::new()
    } else {
        format!(": {} ...", syms.join(" "))
    }
}

#[derive(Serialize)]
struct BookJson<'a> {
    symbol: &'a str,
    timestamp_ns: u64,
    bids: Vec<LevelView>,
    asks: Vec<LevelView>,
}

fn cmd_book(a: BookArgs) -> Result<()> {
    let stock =
        symbol_field(&a.symbol).ok_or_else(|| anyhow!("--symbol must be 1 to 8 characters"))?;
    let at = match &a.at {
        Some(t) => Some(
            parse_time(t).ok_or_else(|| anyhow!("--at {t:?}: expected HH:MM:SS[.fffffffff]"))?,
        ),
        None => None,
    };
    let map = open_feed(&a.input, MapOptions::default())?;
    if map.bytes().is_empty() {
        bail!("{}: empty file: no ITCH messages", a.input.file.display());
    }
    let mut books = Books::new(a.caps.config());
    let rep = replay::replay(map.bytes(), &mut books, at, a.input.lenient)
        .with_context(|| format!("{}", a.input.file.display()))?;
    let Some(locate) = books.locate_of(&stock) else {
        bail!(
            "symbol {} not found in {}{}",
            a.symbol,
            a.input.file.display(),
            if at.is_some() {
                " before that time"
            } else {
                ""
            }
        );
    };
    let ts = at.unwrap_or(books.last_timestamp());
    let bids: Vec<LevelView> = books.depth(locate, Side::Buy).take(a.depth).collect();
    let asks: Vec<LevelView> = books.depth(locate, Side::Sell).take(a.depth).collect();
    let st = books.stats();
    if st.skipped() > 0 || rep.skipped_unknown_types > 0 || rep.skipped_bad_lengths > 0 {
        eprintln!(
            "tickwatch: note: {} message(s) named orders never added (file starts mid-day?), {} other book skip(s), {} unknown-type frame(s), {} bad-length frame(s)",
            st.unknown_refs,
            st.skipped() - st.unknown_refs,
            rep.skipped_unknown_types,
            rep.skipped_bad_lengths
        );
    }
    let mut out = io::stdout().lock();
    if a.json {
        serde_json::to_writer(
            &mut out,
            &BookJson {
                symbol: &a.symbol,
                timestamp_ns: ts,
                bids,
                asks,
            },
        )?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "{} (locate {}) at {}", a.symbol, locate, fmt_time(ts))?;
    writeln!(
        out,
        "{:>8} {:>10} {:>12} | {:<12} {:<10} {:<8}",
        "orders", "shares", "bid", "ask", "shares", "orders"
    )?;
    for i in 0..bids.len().max(asks.len()) {
        let b = bids
            .get(i)
            .map(|l| format!("{:>8} {:>10} {:>12}", l.orders, l.shares, price4(l.price)));
        let s = asks
            .get(i)
            .map(|l| format!("{:<12} {:<10} {:<8}", price4(l.price), l.shares, l.orders));
        writeln!(
            out,
            "{} | {}",
            b.unwrap_or_else(|| " ".repeat(32)),
            s.unwrap_or_default()
        )?;
    }
    Ok(())
}

fn cmd_gen(a: GenArgs) -> Result<()> {
    let cfg = GenConfig {
        messages: a.messages,
        symbols: a.symbols,
        live_orders: a
            .live_orders
            .unwrap_or((a.messages / 20).clamp(1, 2_000_000)),
        seed: a.seed,
    };
    let t0 = Instant::now();
    let file =
        std::fs::File::create(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let w = io::BufWriter::with_capacity(1 << 20, file);
    let mut kinds = Vec::new();
    for name in a.scenarios.iter().filter(|s| !s.is_empty()) {
        let k = ScenarioKind::from_name(name).with_context(|| {
            format!(
                "unknown scenario `{name}`: expected any of {}",
                ScenarioKind::ALL.map(|k| k.name()).join(", ")
            )
        })?;
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    if !(a.scenario_rate.is_finite() && a.scenario_rate > 0.0) {
        bail!(
            "--scenario-rate must be a positive number, got {}",
            a.scenario_rate
        );
    }
    let session = a
        .session
        .map_or(23_400_000_000_000, |d| d.as_nanos() as u64);
    let plan = tickwatch::gen::ScenarioPlan {
        kinds,
        rate: a.scenario_rate,
    };
    let (rep, episodes, flow) = tickwatch::gen::generate_scenarios(&cfg, session, &plan, w)?;
    if !plan.kinds.is_empty() {
        let mut flow_path = None;
        if let Some(flow) = &flow {
            let p = sibling(&a.out, "flow.csv");
            let mut w = io::BufWriter::new(
                std::fs::File::create(&p).with_context(|| format!("creating {}", p.display()))?,
            );
            writeln!(w, "{}", tickwatch::surv::flow::FLOW_HEADER)?;
            for r in flow {
                r.write_csv(&mut w)?;
            }
            w.flush()?;
            eprintln!(
                "wrote {} participant-flow records to {}",
                flow.len(),
                p.display()
            );
            flow_path = Some(p.display().to_string());
        }
        let truth = tickwatch::scenario::Truth {
            feed: a.out.display().to_string(),
            seed: a.seed,
            scenarios: plan.kinds.iter().map(|k| k.name().to_string()).collect(),
            rate: a.scenario_rate,
            flow: flow_path,
            episodes,
        };
        let p = sibling(&a.out, "truth.json");
        std::fs::write(&p, serde_json::to_string_pretty(&truth)? + "\n")
            .with_context(|| format!("writing {}", p.display()))?;
        eprintln!("wrote {} episodes to {}", truth.episodes.len(), p.display());
    }
    eprintln!(
        "wrote {} messages, {} bytes, {} symbols, peak {} live orders to {} in {:.2} s",
        rep.messages,
        rep.bytes,
        cfg.symbols,
        rep.peak_live_orders,
        a.out.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `path` with `.ext` appended (`feed.itch` → `feed.itch.truth.json`).
fn sibling(path: &Path, ext: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// The rules and participant flow a surveillance command uses.
fn surv_inputs(o: &SurvOpts, feed: &Path) -> Result<(Rules, Vec<FlowRecord>)> {
    let rules = match &o.rules {
        Some(p) => Rules::load(p)?,
        None => Rules::default(),
    };
    let flow_path = match (&o.flow, o.no_flow) {
        (_, true) => None,
        (Some(p), _) => Some(p.clone()),
        (None, _) => Some(sibling(feed, "flow.csv")).filter(|p| p.exists()),
    };
    let flow = match flow_path {
        Some(p) => {
            let f = tickwatch::surv::flow::read_flow(&p)?;
            eprintln!("participant flow: {} records from {}", f.len(), p.display());
            f
        }
        None => Vec::new(),
    };
    Ok((rules, flow))
}

fn cmd_surveil(a: SurveilArgs) -> Result<()> {
    let (rules, flow) = surv_inputs(&a.surv, &a.input.file)?;
    let map = open_feed(&a.input, MapOptions::default())?;
    let mut books = Books::new(BookConfig::full_day());
    let t0 = Instant::now();
    let (alerts, counters) =
        tickwatch::surv::surveil_feed(map.bytes(), &mut books, rules, &flow, a.mark_every)
            .with_context(|| format!("{}", a.input.file.display()))?;
    let secs = t0.elapsed().as_secs_f64();
    let mut w = output_writer(a.alerts.as_deref())?;
    let mut line = Vec::with_capacity(4096);
    let mut by = [0u64; DetectorId::ALL.len()];
    for al in &alerts {
        line.clear();
        al.write_json(&mut line);
        w.write_all(&line)?;
        by[al.detector as usize] += 1;
    }
    w.flush()?;
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
    Ok(())
}

fn cmd_eval(a: EvalArgs) -> Result<()> {
    let tp = a
        .truth
        .clone()
        .unwrap_or_else(|| sibling(&a.feed, "truth.json"));
    let truth: tickwatch::scenario::Truth = serde_json::from_str(
        &std::fs::read_to_string(&tp).with_context(|| format!("reading {}", tp.display()))?,
    )
    .with_context(|| format!("{}: not a truth file", tp.display()))?;
    let text = std::fs::read_to_string(&a.alerts)
        .with_context(|| format!("reading {}", a.alerts.display()))?;
    let alerts = tickwatch::surv::eval::parse_alerts(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.alerts.display()))?;
    let rows = tickwatch::surv::eval::score(&truth, &alerts);
    if a.json {
        serde_json::to_writer_pretty(io::stdout().lock(), &rows)?;
        println!();
    } else {
        println!(
            "{}: {} episodes, {} alerts",
            a.feed.display(),
            truth.episodes.len(),
            alerts.len()
        );
        print!("{}", tickwatch::surv::eval::format_scores(&rows));
    }
    Ok(())
}

fn cmd_rules(a: RulesArgs) -> Result<()> {
    match a.check {
        Some(p) => {
            Rules::load(&p)?;
            println!("{}: ok", p.display());
        }
        None => print!("{}", Rules::defaults_toml()),
    }
    Ok(())
}

fn cmd_lobster(a: LobsterArgs) -> Result<()> {
    let r = tickwatch::lobster::convert(&a.messages, &a.orderbook, &a.symbol, &a.date, &a.out)?;
    if a.json {
        serde_json::to_writer_pretty(io::stdout().lock(), &r)?;
        println!();
        return Ok(());
    }
    println!(
        "wrote {}: {} ITCH messages for {} LOBSTER events ({} levels per side), {} .. {}",
        a.out.display(),
        r.messages_written,
        r.events,
        r.levels,
        fmt_time(r.first_ns),
        fmt_time(r.last_ns)
    );
    println!(
        "seeded the resting book: {} levels from the first row, {} deeper levels revealed later, {} shares; {} events on pre-sample orders",
        r.seeded_levels, r.deep_levels_seeded, r.seeded_shares, r.presample_events
    );
    if r.corrected_levels > 0 || r.inconsistencies > 0 {
        println!(
            "{} level change(s) LOBSTER did not record were corrected with {} message(s); {} inconsistency(ies) in the input",
            r.corrected_levels, r.correction_messages, r.inconsistencies
        );
    }
    Ok(())
}

fn cmd_demo(a: DemoArgs) -> Result<()> {
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
        io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?),
    )?;
    let flow = flow.unwrap_or_default();
    let truth = tickwatch::scenario::Truth {
        feed: path.display().to_string(),
        seed: cfg.seed,
        scenarios: plan.kinds.iter().map(|k| k.name().to_string()).collect(),
        rate: plan.rate,
        flow: None,
        episodes,
    };
    std::fs::write(
        sibling(&path, "truth.json"),
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
    let map = MappedFile::open(&path, MapOptions::default())?;
    let buf = map.bytes();

    let threads = threads_or_all(None);
    let t0 = Instant::now();
    let s = inspect(
        buf,
        InspectOptions {
            threads,
            lenient: false,
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

    let mut books = Books::new(BookConfig::for_orders(
        (rep.peak_live_orders as usize * 2).max(1024),
        a.symbols as usize + 1,
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
    // The same feed through the pinned pipeline: reader → shard workers → output.
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
    if r.book_stats != *st || r.live_orders != books.live_orders() {
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
    let mut table = Vec::new();
    tickwatch::latency::write_table(&mut table, &r.latency)?;
    for line in String::from_utf8_lossy(&table).lines() {
        println!("    {line}");
    }
    // Surveillance: every detector in the shard workers, the risk book in the output stage.
    let alerts_path = dir.join("alerts.jsonl");
    let job = pipeline::alerts::SurvJob {
        rules: Rules::default(),
        flow: flow.clone(),
        sink: pipeline::alerts::AlertSink::Journal(pipeline::journal::Journal::create(
            &alerts_path,
        )?),
        mark_every: 1024,
        reload: None,
    };
    let spcfg = PipelineConfig {
        stage_timing: false,
        ..pcfg.clone()
    };
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
    let rows = tickwatch::surv::eval::score(&truth, &alerts);
    println!("  detection quality against the injected episodes (alerts of detectors without a scenario are counted, not scored):");
    for line in tickwatch::surv::eval::format_scores(&rows).lines() {
        println!("    {line}");
    }
    if let Some(first) = text
        .lines()
        .find(|l| l.contains("\"spoofing\""))
        .or(text.lines().next())
    {
        println!("  an alert explains itself:\n    {first}");
    }
    let mut table = Vec::new();
    let mut lat = vec![r.end_to_end().clone()];
    lat.extend(sv.latency.clone());
    tickwatch::latency::write_table(&mut table, &lat)?;
    println!("  latency with every detector on (as fast as possible, so queueing is included; `tickwatch run FILE --alerts A --speed 1` for paced):");
    for line in String::from_utf8_lossy(&table).lines() {
        println!("    {line}");
    }
    println!("  top of book, busiest stocks:");
    println!(
        "    {:<6} {:>8} {:>10} {:>10} {:<8} {:>6}",
        "symbol", "bid size", "bid", "ask", "ask size", "levels"
    );
    for locate in 1..=5u16.min(a.symbols as u16) {
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
    let sym = books.symbol(1).map(symbol_str).unwrap_or_default();
    match &a.keep {
        Some(_) => println!("  try: tickwatch book {} --symbol {sym} --depth 5", path.display()),
        None => println!(
            "  (the feed was temporary; `tickwatch demo --keep DIR` keeps it for `tickwatch book DIR/demo.itch --symbol {sym}`)"
        ),
    }
    Ok(())
}

fn cmd_bench(a: BenchArgs) -> Result<()> {
    let path = gz::resolve(&a.input.file, a.input.cache.as_deref())?;
    let mut cold = None;
    if a.cold {
        evict_page_cache(&path)
            .with_context(|| format!("evicting {} from the page cache", path.display()))?;
        let t0 = Instant::now();
        let lazy = MapOptions {
            populate: false,
            sequential: true,
            huge_pages: false,
        };
        let map = MappedFile::open(&path, lazy)?;
        let w = bench::decode_fold(map.bytes())?;
        let dt = t0.elapsed().as_nanos() as f64;
        cold = Some(KernelResult::single(
            "decode (cold: evicted, lazy map)",
            w.messages,
            dt,
        ));
    }
    let opts = MapOptions {
        populate: !a.no_populate,
        sequential: true,
        huge_pages: a.huge_pages,
    };
    let map = MappedFile::open(&path, opts)?;
    if map.bytes().is_empty() {
        bail!("{}: empty file", path.display());
    }
    let mut rep = filebench::run(
        map.bytes(),
        FileBenchOptions {
            repeat: a.repeat,
            threads: threads_or_all(a.threads),
            books: a.caps.config(),
            latency_sample_every: a.latency_sample,
        },
    )?;
    rep.kernels.splice(0..0, cold);
    if a.json {
        #[derive(Serialize)]
        struct Out<'a> {
            file: String,
            populate: bool,
            huge_pages: bool,
            #[serde(flatten)]
            report: &'a filebench::FileBenchReport,
        }
        let o = Out {
            file: path.display().to_string(),
            populate: opts.populate,
            huge_pages: opts.huge_pages,
            report: &rep,
        };
        serde_json::to_writer_pretty(io::stdout().lock(), &o)?;
        println!();
        return Ok(());
    }
    println!(
        "file {} ({} bytes, {} messages); map: populate={} huge_pages={}; median of {} runs",
        path.display(),
        rep.bytes,
        rep.messages,
        opts.populate,
        opts.huge_pages,
        a.repeat
    );
    println!(
        "{:<40} {:>12} {:>10} {:>10} {:>9}",
        "kernel", "M msg/s", "ns/msg", "best", "vs naive"
    );
    let naive = rep
        .kernels
        .iter()
        .find(|r| r.kernel.starts_with("naive"))
        .map(|r| r.median_ns_per_msg)
        .unwrap_or(1.0);
    for r in &rep.kernels {
        println!(
            "{:<40} {:>12.1} {:>10.2} {:>10.2} {:>8.2}x",
            r.kernel,
            r.median_msgs_per_s / 1e6,
            r.median_ns_per_msg,
            r.min_ns_per_msg,
            naive / r.median_ns_per_msg
        );
    }
    let l = rep.book_latency_ns;
    println!(
        "decode + book update per message (ns; {} samples, 1 in {}; TSC at {:.3} GHz): p50 {:.0}  p90 {:.0}  p99 {:.0}  p99.9 {:.0}  p99.99 {:.0}  max {:.0}  (timer pair alone: p50 {:.0})",
        l.samples, l.sample_every, l.tsc_ghz, l.p50, l.p90, l.p99, l.p999, l.p9999, l.max, l.timer_overhead_p50
    );
    let st = rep.book_stats;
    println!(
        "book: {} live orders at end; skips {} (unknown refs {})",
        rep.live_orders_at_end,
        st.skipped(),
        st.unknown_refs
    );
    Ok(())
}

/// Set by Ctrl-C: the reader stops, the pipeline drains, the final counters are printed.
static STOP: AtomicBool = AtomicBool::new(false);

fn cmd_run(a: RunArgs) -> Result<()> {
    let surv = match (&a.alerts, &a.surv.rules) {
        (None, None) => None,
        (None, Some(_)) => bail!("--rules needs --alerts FILE (where the alerts go)"),
        (Some(out), _) => {
            let (rules, flow) = surv_inputs(&a.surv, &a.input.file)?;
            let special = std::fs::metadata(out).is_ok_and(|m| !m.is_file());
            let sink = if out.as_os_str() == "-" {
                io::stdout().into()
            } else if special {
                // A device or a pipe (`/dev/null`, a FIFO): it cannot be mapped; written to.
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(out)
                    .with_context(|| format!("opening {}", out.display()))?
                    .into()
            } else {
                // Memory-mapped: appending an alert makes no system call (see the module).
                pipeline::alerts::AlertSink::Journal(
                    pipeline::journal::Journal::create(out)
                        .with_context(|| format!("creating {}", out.display()))?,
                )
            };
            Some(pipeline::alerts::SurvJob {
                rules,
                flow,
                sink,
                mark_every: 1024,
                reload: None,
            })
        }
    };
    run_pipeline(a, None, surv)
}

fn cmd_bars(a: BarsArgs) -> Result<()> {
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
    if a.run.alerts.is_some() {
        bail!("bars and surveillance (--alerts) are separate runs");
    }
    run_pipeline(a.run, Some(bars), None)
}

fn run_pipeline(
    a: RunArgs,
    bars: Option<BarsConfig>,
    mut surv: Option<pipeline::alerts::SurvJob>,
) -> Result<()> {
    let alerts_on_stdout = a.alerts.as_ref().is_some_and(|p| p.as_os_str() == "-");
    // Rules from a file are watched: a change is loaded, checked and handed to the running
    // detectors (state kept); a file that does not load is reported and the old rules stay.
    let watch = match (&mut surv, &a.surv.rules) {
        (Some(j), Some(path)) => {
            let cell = std::sync::Arc::new(pipeline::alerts::RulesCell::new(j.rules));
            j.reload = Some(cell.clone());
            let stamp = std::fs::metadata(path).and_then(|m| m.modified()).ok();
            Some((
                cell,
                path.clone(),
                j.rules.limits,
                std::sync::Mutex::new(stamp),
            ))
        }
        _ => None,
    };
    let path = gz::resolve(&a.input.file, a.input.cache.as_deref())?;
    let map = MappedFile::open(&path, MapOptions::default())
        .with_context(|| format!("mapping {}", path.display()))?;
    if !a.no_mlock {
        if let Err(e) = map.lock() {
            eprintln!(
                "tickwatch: warning: could not lock the feed in memory ({e}); a slow replay may stall on page faults (see --no-mlock)"
            );
        }
    }
    let buf = map.bytes();
    if buf.is_empty() {
        bail!("{}: empty file", path.display());
    }
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
    let cfg = PipelineConfig {
        workers: a
            .workers
            // A bars job's output stage formats a row per window: like a paced run, it gets a
            // core of its own with the reader below 4 cores (measured faster, PERF.md).
            .unwrap_or(match (&surv, a.speed.0) {
                // Surveillance makes the workers the heavy stages: one per core, each sharing
                // it with the light reader or output stage (measured best on 2 cores, PERF.md).
                (Some(_), None) if ncores < 4 => ncores,
                _ => default_workers(ncores, a.speed.0.is_some() || bars.is_some()),
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
        stage_timing: a.timing.unwrap_or(if bars.is_some() {
            Timing::E2e
        } else {
            Timing::Stages
        }) == Timing::Stages,
        books: a.caps.config(),
        thread_hook: None,
    };
    ctrlc::set_handler(|| STOP.store(true, Ordering::Relaxed))
        .context("installing the Ctrl-C handler")?;
    let progress = AtomicU64::new(0);
    let finished = AtomicBool::new(false);
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {elapsed_precise} {human_pos} messages ({per_sec}) {msg}",
        )
        .expect("static template"),
    );
    let outcome = std::thread::scope(|s| {
        s.spawn(|| {
            // The display thread: never on the hot path, wakes 10 times a second.
            let mut tick = 0u32;
            while !finished.load(Ordering::Relaxed) {
                bar.set_position(progress.load(Ordering::Relaxed));
                std::thread::sleep(std::time::Duration::from_millis(100));
                tick += 1;
                if let (Some((cell, path, limits, stamp)), 0) = (&watch, tick % 5) {
                    let now = std::fs::metadata(path).and_then(|m| m.modified()).ok();
                    let mut last = stamp.lock().unwrap_or_else(|e| e.into_inner());
                    if now != *last {
                        *last = now;
                        match Rules::load(path) {
                            Ok(r) if r.limits == *limits => {
                                cell.publish(r);
                                bar.println(format!("tickwatch: rules reloaded from {}", path.display()));
                            }
                            Ok(_) => bar.println(format!(
                                "tickwatch: {}: [limits] cannot change while running; rules not reloaded",
                                path.display()
                            )),
                            Err(e) => bar.println(format!("tickwatch: {e}; the previous rules stay in force")),
                        }
                    }
                }
            }
            bar.finish_and_clear();
        });
        let r = match surv {
            Some(j) => pipeline::run_surv(buf, &cfg, j, &STOP, &progress),
            None => pipeline::run_job(buf, &cfg, bars, &STOP, &progress),
        };
        finished.store(true, Ordering::Relaxed);
        r
    })?;
    let r = &outcome.report;
    // A bars job's rows may be on standard output: its report goes to standard error.
    let mut report: Box<dyn Write> = if r.bars.is_some() || alerts_on_stdout {
        Box::new(io::stderr().lock())
    } else {
        Box::new(io::stdout().lock())
    };
    if let Some(out) = &a.latency_out {
        let mut f = io::BufWriter::new(
            std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?,
        );
        tickwatch::latency::write_hgrm(&mut f, &r.end_to_end().histogram)?;
        f.flush()?;
        let svg = out.with_extension("svg");
        tickwatch::latency::plot_svg(
            &svg,
            &format!("tickwatch run {} — latency by percentile", path.display()),
            &r.latency,
        )?;
    }
    if a.json {
        serde_json::to_writer_pretty(&mut report, r)?;
        writeln!(report)?;
    } else {
        print_run_report(&mut report, &path, r)?;
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
    Ok(())
}

fn print_run_report(out: &mut dyn Write, path: &Path, r: &pipeline::RunReport) -> Result<()> {
    let speed = r.speed.map_or("max".to_string(), |s| format!("{s}x"));
    writeln!(
        out,
        "{}: {} messages in {:.3} s = {:.2} M msg/s ({:.1} ns/msg); {} worker(s), wait {:?}, {:?}, speed {}{}",
        path.display(),
        r.messages,
        r.elapsed_ns as f64 / 1e9,
        r.messages_per_s / 1e6,
        r.elapsed_ns as f64 / r.messages.max(1) as f64,
        r.workers,
        r.wait,
        r.backpressure,
        speed,
        if r.interrupted { " — interrupted by Ctrl-C" } else { "" },
    )?;
    for t in &r.threads {
        let core = t
            .core
            .map_or("unpinned".to_string(), |c| format!("core {c}"));
        writeln!(
            out,
            "  thread {:<28} {:<9} idle polls {}",
            t.name, core, t.idle_polls
        )?;
    }
    tickwatch::latency::write_table(&mut &mut *out, &r.latency)?;
    writeln!(
        out,
        "{:<10} {:>9} {:>12} {:>12} {:>12} {:>10}",
        "ring", "capacity", "pushed", "popped", "full", "dropped"
    )?;
    let n = r.workers;
    for (i, c) in r.rings.iter().enumerate() {
        let name = if i < n {
            format!("in-{i}")
        } else {
            format!("out-{}", i - n)
        };
        writeln!(
            out,
            "{:<10} {:>9} {:>12} {:>12} {:>12} {:>10}",
            name, c.capacity, c.pushed, c.popped, c.full, c.dropped
        )?;
    }
    let st = &r.book_stats;
    writeln!(
        out,
        "events: offered {} = processed {} + dropped {} + marks {}; output got {}; top-of-book changes {}; order violations {}",
        r.offered, r.processed, r.dropped, r.marks, r.output_received, r.top_changes, r.order_violations
    )?;
    if let Some(b) = &r.bars {
        writeln!(
            out,
            "bars: {} rows written ({} late firings); {} watermark marks; late ledger: {} events dropped as too late (max lateness {} ns), {} refused for lack of room",
            b.rows, b.late_rows, b.marks, b.dropped_late, b.max_lateness_ns, b.overflow
        )?;
    }
    if let Some(sv) = &r.surv {
        let by: Vec<String> = sv
            .alerts
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(d, n)| format!("{d} {n}"))
            .collect();
        writeln!(
            out,
            "surveillance: {} alerts ({}); {} marks; flow records applied {}, never applied {}; overflow: alerts {}, accounts {}, risk inputs {}",
            sv.total,
            if by.is_empty() { "none".to_string() } else { by.join(", ") },
            sv.marks,
            sv.counters.flow_applied,
            sv.flow_unapplied,
            sv.alert_overflow,
            sv.counters.account_overflow,
            sv.counters.risk_overflow
        )?;
        let pressed: Vec<String> = sv
            .tables
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(t, n)| format!("{t} {n}"))
            .collect();
        writeln!(
            out,
            "detector tables: {}",
            if pressed.is_empty() {
                "no overflow, eviction or collision (every detector saw the whole feed)".to_string()
            } else {
                pressed.join(", ")
            }
        )?;
        if sv.total > 0 {
            tickwatch::latency::write_table(&mut &mut *out, &sv.latency)?;
        }
    }
    writeln!(
        out,
        "books: {} live orders at end; skips {} (unknown refs {}); feed skips: {} unknown types, {} bad lengths; {} out-of-order timestamps{}",
        r.live_orders,
        st.skipped(),
        st.unknown_refs,
        r.skipped_unknown,
        r.skipped_bad_lengths,
        r.out_of_order_ts,
        if r.stopped_at_until { "; stopped at --until" } else { "" }
    )?;
    Ok(())
}
