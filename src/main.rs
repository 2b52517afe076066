//! The `tickwatch` command line: argument parsing and output only; the work is in the library.

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tickwatch::book::{BookConfig, Books, LevelView};
use tickwatch::feed::{gz, MapOptions, MappedFile};
use tickwatch::gen::{generate, GenConfig};
use tickwatch::inspect::{inspect, InspectOptions};
use tickwatch::itch::{fmt_time, parse_time, price4, symbol_field, symbol_str, Side};
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
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    caps: CapacityArgs,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Inspect(a) => cmd_inspect(a),
        Cmd::Book(a) => cmd_book(a),
        Cmd::Gen(a) => cmd_gen(a),
        Cmd::Convert(ConvertCmd::Lobster(a)) => cmd_lobster(a),
        Cmd::Demo(a) => cmd_demo(a),
        Cmd::Bench(a) => cmd_bench(a),
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
    let rep = generate(&cfg, io::BufWriter::with_capacity(1 << 20, file))?;
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
    let rep = generate(
        &cfg,
        io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?),
    )?;
    println!(
        "  generated {} bytes in {:.2} s (peak {} live orders)",
        rep.bytes,
        t0.elapsed().as_secs_f64(),
        rep.peak_live_orders
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

#[derive(Serialize, Clone)]
struct KernelResult {
    kernel: String,
    messages: u64,
    median_ns_per_msg: f64,
    min_ns_per_msg: f64,
    median_msgs_per_s: f64,
}

fn time_kernel(
    name: &str,
    repeat: usize,
    mut f: impl FnMut() -> Result<u64>,
) -> Result<KernelResult> {
    let mut samples = Vec::with_capacity(repeat);
    let mut messages = 0;
    for _ in 0..repeat.max(1) {
        let t0 = Instant::now();
        messages = f()?;
        samples.push(t0.elapsed().as_nanos() as f64 / messages.max(1) as f64);
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let med = samples[samples.len() / 2];
    Ok(KernelResult {
        kernel: name.into(),
        messages,
        median_ns_per_msg: med,
        min_ns_per_msg: samples[0],
        median_msgs_per_s: 1e9 / med,
    })
}

fn time_book_kernel(
    name: &str,
    repeat: usize,
    books: &mut Books,
    mut f: impl FnMut(&mut Books) -> Result<u64>,
) -> Result<KernelResult> {
    let mut samples = Vec::with_capacity(repeat);
    let mut messages = 0;
    for _ in 0..repeat.max(1) {
        books.clear();
        let t0 = Instant::now();
        messages = f(books)?;
        samples.push(t0.elapsed().as_nanos() as f64 / messages.max(1) as f64);
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let med = samples[samples.len() / 2];
    Ok(KernelResult {
        kernel: name.into(),
        messages,
        median_ns_per_msg: med,
        min_ns_per_msg: samples[0],
        median_msgs_per_s: 1e9 / med,
    })
}

fn cmd_bench(a: BenchArgs) -> Result<()> {
    let path = gz::resolve(&a.input.file, a.input.cache.as_deref())?;
    let mut cold = None;
    if a.cold {
        evict(&path)?;
        let t0 = Instant::now();
        let map = MappedFile::open(
            &path,
            MapOptions {
                populate: false,
                sequential: true,
                huge_pages: false,
            },
        )?;
        let w = bench::decode_fold(map.bytes())?;
        let dt = t0.elapsed().as_nanos() as f64;
        cold = Some(KernelResult {
            kernel: "decode (cold: evicted, lazy map)".into(),
            messages: w.messages,
            median_ns_per_msg: dt / w.messages.max(1) as f64,
            min_ns_per_msg: dt / w.messages.max(1) as f64,
            median_msgs_per_s: w.messages as f64 * 1e9 / dt,
        });
    }
    let opts = MapOptions {
        populate: !a.no_populate,
        sequential: true,
        huge_pages: a.huge_pages,
    };
    let map = MappedFile::open(&path, opts)?;
    let buf = map.bytes();
    if buf.is_empty() {
        bail!("{}: empty file", path.display());
    }
    let threads = threads_or_all(a.threads);
    let reference = bench::decode_fold(buf)?; // also warms the cache
    let mut results = Vec::new();
    results.extend(cold);
    results.push(time_kernel("naive length-prefix walk", a.repeat, || {
        Ok(bench::naive_walk(buf).messages)
    })?);
    results.push(time_kernel(
        "prefetching length-prefix walk",
        a.repeat,
        || Ok(bench::prefetch_walk(buf).messages),
    )?);
    results.push(time_kernel("decode, every field folded", a.repeat, || {
        let w = bench::decode_fold(buf)?;
        anyhow::ensure!(w == reference, "decode checksum changed between runs");
        Ok(w.messages)
    })?);
    results.push(time_kernel(
        &format!("parallel decode, {threads} threads"),
        a.repeat,
        || {
            let w = bench::par_decode_fold(buf, threads)?;
            anyhow::ensure!(
                w == reference,
                "parallel decode disagrees with the serial decode"
            );
            Ok(w.messages)
        },
    )?);
    let cfg = a.caps.config();
    // Book kernels: allocate (and fault in) the tables outside the timed region, then clear them
    // between runs, also untimed.
    let mut books = Books::new(cfg);
    bench::decode_book(buf, &mut books)?;
    results.push(time_book_kernel(
        "decode + books, no look-ahead",
        a.repeat.min(3),
        &mut books,
        |b| Ok(bench::decode_book_unpipelined(buf, b)?),
    )?);
    results.push(time_book_kernel(
        "decode + books, pipelined",
        a.repeat.min(3),
        &mut books,
        |b| Ok(bench::decode_book(buf, b)?),
    )?);
    books.clear();
    // Per-message latency of decode + book.
    let tpn = bench::ticks_per_ns(200);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 1 << 40, 3)?;
    bench::decode_book_latency(buf, &mut books, &mut hist)?;
    let mut over = Histogram::<u64>::new_with_bounds(1, 1 << 40, 3)?;
    bench::timer_overhead(&mut over, 1_000_000);
    let q = |h: &Histogram<u64>, p: f64| h.value_at_quantile(p) as f64 / tpn;
    let pcts = [0.5, 0.9, 0.99, 0.999, 0.9999];
    #[derive(Serialize)]
    struct Lat {
        p50: f64,
        p90: f64,
        p99: f64,
        p999: f64,
        p9999: f64,
        max: f64,
        timer_overhead_p50: f64,
    }
    let lat = Lat {
        p50: q(&hist, pcts[0]),
        p90: q(&hist, pcts[1]),
        p99: q(&hist, pcts[2]),
        p999: q(&hist, pcts[3]),
        p9999: q(&hist, pcts[4]),
        max: hist.max() as f64 / tpn,
        timer_overhead_p50: q(&over, 0.5),
    };
    let st = *books.stats();
    let naive = results
        .iter()
        .find(|r| r.kernel.starts_with("naive"))
        .map(|r| r.median_ns_per_msg)
        .unwrap_or(1.0);
    if a.json {
        #[derive(Serialize)]
        struct Out {
            file: String,
            bytes: usize,
            messages: u64,
            threads: usize,
            populate: bool,
            kernels: Vec<KernelResult>,
            book_latency_ns: Lat,
            book_stats: tickwatch::book::BookStats,
            peak_live_orders_at_end: usize,
        }
        let o = Out {
            file: path.display().to_string(),
            bytes: buf.len(),
            messages: reference.messages,
            threads,
            populate: opts.populate,
            kernels: results,
            book_latency_ns: lat,
            book_stats: st,
            peak_live_orders_at_end: books.live_orders(),
        };
        serde_json::to_writer_pretty(io::stdout().lock(), &o)?;
        println!();
        return Ok(());
    }
    println!(
        "file {} ({} bytes, {} messages); map: populate={} huge_pages={}; median of {} runs",
        path.display(),
        buf.len(),
        reference.messages,
        opts.populate,
        opts.huge_pages,
        a.repeat
    );
    println!(
        "{:<40} {:>12} {:>10} {:>10} {:>9}",
        "kernel", "M msg/s", "ns/msg", "best", "vs naive"
    );
    for r in &results {
        println!(
            "{:<40} {:>12.1} {:>10.2} {:>10.2} {:>8.2}x",
            r.kernel,
            r.median_msgs_per_s / 1e6,
            r.median_ns_per_msg,
            r.min_ns_per_msg,
            naive / r.median_ns_per_msg
        );
    }
    println!(
        "decode + book per message (ns, TSC at {:.3} GHz): p50 {:.0}  p90 {:.0}  p99 {:.0}  p99.9 {:.0}  p99.99 {:.0}  max {:.0}  (timer pair alone: p50 {:.0})",
        tpn, lat.p50, lat.p90, lat.p99, lat.p999, lat.p9999, lat.max, lat.timer_overhead_p50
    );
    println!(
        "book: {} live orders at end; skips {} (unknown refs {})",
        books.live_orders(),
        st.skipped(),
        st.unknown_refs
    );
    Ok(())
}

/// Drops a file's pages from the page cache (`POSIX_FADV_DONTNEED`), for cold-cache runs.
fn evict(path: &Path) -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open(path)?;
        f.sync_all().ok();
        // SAFETY: posix_fadvise only reads the descriptor, which `f` keeps open for the call.
        let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        if rc != 0 {
            bail!("posix_fadvise(DONTNEED) failed: {rc}");
        }
    }
    let _ = path;
    Ok(())
}
