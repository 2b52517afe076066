//! The command line's arguments (clap): one struct per command, shared option groups, and the
//! parsers of values clap does not know.

use super::values::{self, count, Speed};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use tickwatch::agg::{BarFormat, BarKey};
use tickwatch::book::BookConfig;
use tickwatch::pipeline::{Backpressure, WaitStrategy};

/// Low-latency market-data engine: decode NASDAQ ITCH 5.0, rebuild full-depth books, measure.
#[derive(Parser, Debug)]
#[command(name = "tickwatch", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Count a feed file's messages by type, its stocks, time span and anything skipped.
    Inspect(InspectArgs),
    /// Print one stock's order book at a time of day (default: end of file).
    Book(BookArgs),
    /// Write a deterministic synthetic ITCH 5.0 BinaryFILE.
    Gen(GenArgs),
    /// Write an independent, randomised feed for held-out evaluation (issue 14): a regime drawn
    /// from the seed, episodes and hard negatives from the regulatory definitions, OUT.truth.json
    /// and (when the regime has one) OUT.flow.csv; the feed's invariants are checked.
    GenIndep(super::gen::GenIndepArgs),
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
    /// Send an ITCH file (or a capture's MoldUDP64 stream) as MoldUDP64 over UDP multicast,
    /// paced from its timestamps; fault injection and a re-request server for tests.
    Send(super::send::SendArgs),
    /// Record one or two multicast lines to pcap/pcapng (ns timestamps), rotated by size or
    /// time, until end of session on every line or Ctrl-C.
    Record(super::record::RecordArgs),
}

#[derive(Args, Debug)]
pub struct SurvOpts {
    /// Rules file (TOML; missing keys take their defaults — see `tickwatch rules`).
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// The firm's participant order flow (CSV, see `surv::flow`), joined with the feed by time
    /// (default: FILE.flow.csv when it exists beside the feed).
    #[arg(long)]
    pub flow: Option<PathBuf>,
    /// Do not read a flow file even if one sits beside the feed.
    #[arg(long)]
    pub no_flow: bool,
}

#[derive(Args, Debug)]
pub struct SurveilArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub surv: SurvOpts,
    /// Where to write the alerts (JSON lines; default: standard output).
    #[arg(long, short = 'o')]
    pub alerts: Option<PathBuf>,
    /// A watermark mark (timers, flow) every this many messages, as the pipeline sends them.
    #[arg(long, default_value_t = 1024, value_parser = count::<u32>(values::MARK_EVERY))]
    pub mark_every: u32,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The feed the truth describes (for the report); several feeds are scored together, each
    /// with its own truth (FEED.truth.json) and alerts (one --alerts per feed, in order).
    #[arg(required = true, num_args = 1..)]
    pub feed: Vec<PathBuf>,
    /// Ground truth JSON (default: FEED.truth.json; one feed only).
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Alerts JSON lines (repeat: one per feed).
    #[arg(long, required = true)]
    pub alerts: Vec<PathBuf>,
    /// Print JSON instead of tables: the scores' rows (with --confusion: an object of
    /// `scores` and `confusion`).
    #[arg(long)]
    pub json: bool,
    /// With --json, include the confusion matrix (the text report always shows it).
    #[arg(long)]
    pub confusion: bool,
}

#[derive(Args, Debug)]
pub struct RulesArgs {
    /// Check this rules file instead of printing the defaults.
    #[arg(long)]
    pub check: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct BarsArgs {
    /// Window length: `1s`, `200ms`, `5m`, … (1 ms to 24 h; the state that the window/slide
    /// ratio, the lateness and the out-of-orderness need must fit in half the machine's memory).
    #[arg(long, default_value = "1s", value_parser = values::window_len)]
    pub window: std::time::Duration,
    /// Slide between window starts (sliding windows; default: the window length, tumbling).
    /// Must divide the window length. At least 1 ms: the reader sends a watermark mark every
    /// slide across the feed's time span.
    #[arg(long, value_parser = values::window_len)]
    pub slide: Option<std::time::Duration>,
    /// Window starts are offset from midnight by this much (less than the slide).
    #[arg(long, default_value = "0s", value_parser = values::time_span)]
    pub offset: std::time::Duration,
    /// Watermark: how far a message's timestamp may lag the latest one seen.
    #[arg(long, default_value = "0s", value_parser = values::time_span)]
    pub out_of_orderness: std::time::Duration,
    /// Allowed lateness: a window still takes late messages this long after it fired, and
    /// writes its updated row (`late` = 1); later messages are counted in the late ledger.
    #[arg(long, default_value = "0s", value_parser = values::time_span)]
    pub lateness: std::time::Duration,
    /// One row per stock, or per market participant (the MPID of attributed orders, carried
    /// through their executions, cancels and replaces).
    #[arg(long, value_enum, default_value = "stock")]
    pub by: BarKey,
    /// Participants each worker tracks with `--by participant` (more are counted and skipped).
    #[arg(long, default_value_t = 4096, value_parser = count::<usize>(values::PARTICIPANTS))]
    pub max_participants: usize,
    /// Only this stock's rows (with `--by participant`: this MPID's).
    #[arg(long)]
    pub symbol: Option<String>,
    /// Row format.
    #[arg(long, value_enum, default_value = "csv")]
    pub format: BarFormat,
    /// Write the rows here (default: standard output).
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Output format (CSV: `ts_ns,symbol,msg_type,is_trade,shares,price_e4`).
    #[arg(long, value_enum, default_value = "csv")]
    pub format: ExportFormat,
    /// Output file (default: standard output).
    #[arg(short, long)]
    pub out: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ExportFormat {
    Csv,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Shard workers (events are routed by stock locate; default: cores − 2 from 4 cores on, so
    /// the reader and the output stage get their own; below that cores + 1 at `--speed max`,
    /// packed evenly with them, and cores − 1 when paced, so latency never waits for another
    /// stage's turn; with `--alerts` at max speed below 4 cores, one per core — each measured
    /// best on 2 cores, see PERF.md).
    #[arg(long, value_parser = count::<usize>(values::THREADS))]
    pub workers: Option<usize>,
    /// Cores to pin the pipeline threads to, e.g. `0,1` (default: every core; `none`: no pinning).
    #[arg(long, value_delimiter = ',', value_parser = values::core)]
    pub cores: Option<Vec<Option<usize>>>,
    /// How idle threads wait.
    #[arg(long, value_enum, default_value_t = WaitStrategy::BusySpin)]
    pub wait: WaitStrategy,
    /// What a full reader → worker ring does: block (lossless replay) or drop (live; counted).
    #[arg(long, value_enum, default_value_t = Backpressure::Block)]
    pub backpressure: Backpressure,
    /// `max` (as fast as possible) or a multiple of the feed's own pace: `1`, `10`, `0.5`, `100x`.
    #[arg(long, default_value = "max", value_parser = values::speed)]
    pub speed: Speed,
    /// With a paced `--speed`: fast-forward (untimed) to this time of day, then pace.
    #[arg(long, value_name = "HH:MM:SS[.f]", value_parser = values::time_of_day)]
    pub from: Option<u64>,
    /// Stop before the first message stamped after this time of day.
    #[arg(long, value_name = "HH:MM:SS[.f]", value_parser = values::time_of_day)]
    pub until: Option<u64>,
    /// Slots per ring (rounded up to a power of two; 64 bytes each on the worker rings; at most
    /// 2^24, and every worker's rings together within half the machine's memory).
    #[arg(long, default_value_t = 1 << 14, value_parser = count::<usize>(values::RING_SLOTS))]
    pub ring_capacity: usize,
    /// `stages`: time every stage of every event; `sampled`: every stage of one event in 16
    /// (chosen by a hash of its feed position), end to end of every event; `e2e`: only end to
    /// end (every event), so the workers read no clock and keep no stage histograms (faster:
    /// see PERF.md). (Default: `sampled` for `run`, `e2e` for `bars`, whose product is its rows.)
    #[arg(long, value_enum)]
    pub timing: Option<Timing>,
    /// Write the end-to-end latency as an HdrHistogram percentile distribution (ns) here, and
    /// an SVG plot of every stage beside it (same name, `.svg`).
    #[arg(long, value_name = "FILE.hgrm")]
    pub latency_out: Option<PathBuf>,
    /// Lock the mapped feed in memory (`mlock`) so the kernel cannot drop its pages mid-replay
    /// and stall the reader on a major fault: `auto` locks a paced replay (where a stall would
    /// show in the latency measured) and not a run as fast as possible (its pages are faulted
    /// in by the sizing pass just before; locking 100 MB costs ≈ 10 ms); `always`; `never`.
    #[arg(long, value_enum, default_value = "auto")]
    pub mlock: Mlock,
    /// Same as `--mlock never`.
    #[arg(long, hide = true)]
    pub no_mlock: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub caps: CapacityArgs,
    /// Run the surveillance detectors and write their alerts here (JSON lines, appended through
    /// a memory map: no system call per alert; while running, the file is pre-sized and the
    /// alerts end at the first NUL byte; at the end it is cut to its alerts). `-` for standard
    /// output (one `write` per batch of alerts; the report then goes to standard error); a
    /// device or a pipe is written to the same way.
    #[arg(long, value_name = "FILE.jsonl")]
    pub alerts: Option<PathBuf>,
    /// Also write per-stock bars here, in the same run (CSV, 1-second tumbling windows: the rows
    /// `tickwatch bars FILE` writes; for other windows use `tickwatch bars FILE -o B.csv`, which
    /// takes `--alerts` too). `-` for standard output.
    #[arg(long, value_name = "FILE.csv")]
    pub bars: Option<PathBuf>,
    #[command(flatten)]
    pub surv: SurvOpts,
    #[command(flatten)]
    pub live: super::listen::ListenArgs,
    /// Write checkpoints here (surveillance runs: `--alerts FILE`): the books, every detector,
    /// the risk book, the input position and the alerts file's length and CRC, at a consistent
    /// cut of the feed; the newest 2 are kept. A fresh run clears the directory's checkpoints.
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<PathBuf>,
    /// How often to checkpoint: feed time with a unit (`10s`, `500ms`, `1m`) or a message count
    /// (`5000000`). Default 10 s of feed time; a resumed run keeps the checkpoint's.
    #[arg(long, value_name = "TIME|COUNT", value_parser = values::checkpoint_every)]
    pub checkpoint_every: Option<tickwatch::engine::CkptEvery>,
    /// Resume from the newest usable checkpoint in DIR (checksums verified; an older one if the
    /// newest is damaged), with the same feed: the alerts file is cut back to the checkpoint and
    /// the run continues from its input position, ending with the alerts of an unbroken run.
    /// `--workers`, `--until`, `--lenient`, `--alerts`, `--rules` and `--flow` are taken from the
    /// checkpoint when not given (given, they must match it). Checkpoints go on into DIR.
    #[arg(long, value_name = "DIR", conflicts_with = "checkpoint_dir")]
    pub resume: Option<PathBuf>,
}

/// `--mlock`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mlock {
    /// Lock a paced replay's feed only.
    Auto,
    /// Always lock.
    Always,
    /// Never lock.
    Never,
}

/// `--timing`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Timing {
    /// Every stage of every event.
    Stages,
    /// Every stage of one event in 16 (by a hash of its feed position), end to end of every
    /// event.
    Sampled,
    /// End to end only.
    E2e,
}

#[derive(Args, Clone, Debug)]
pub struct InputArgs {
    /// ITCH 5.0 BinaryFILE (2-byte big-endian length before each message), or a pcap/pcapng
    /// capture of MoldUDP64 (told by its magic; its messages are read in sequence order, gaps
    /// warned about); `.gz` is decompressed once to a cached sibling file.
    pub file: PathBuf,
    /// Of a capture, read only the MoldUDP64 packets to this multicast group and port
    /// (repeatable; default: every channel).
    #[arg(long, value_name = "GROUP:PORT", value_parser = values::group)]
    pub channel: Vec<std::net::SocketAddrV4>,
    /// Of a capture, read only this MoldUDP64 session (1..=10 printable ASCII characters).
    #[arg(long, value_name = "NAME", value_parser = values::mold_session)]
    pub session: Option<String>,
    /// Where to keep the decompressed copy of a `.gz` input (default: beside it, without `.gz`).
    #[arg(long, value_name = "PATH")]
    pub cache: Option<PathBuf>,
    /// Count and skip known message types whose length is wrong, instead of stopping at the first.
    #[arg(long)]
    pub lenient: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub live: super::inspect_live::InspectListen,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Threads to decode with (default: all cores).
    #[arg(long, value_parser = count::<usize>(values::THREADS))]
    pub threads: Option<usize>,
    /// Also follow every order by reference (one serial pass beside the parallel walk): counts
    /// messages naming an order live in another stock and adds reusing a live reference — a
    /// corrupt feed.
    #[arg(long)]
    pub refs: bool,
}

#[derive(Args, Debug)]
pub struct BookArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Stock symbol, as in the stock directory (e.g. AAPL).
    #[arg(long)]
    pub symbol: String,
    /// Time of day, HH:MM:SS[.fffffffff]: apply messages up to and including this time.
    #[arg(long)]
    pub at: Option<String>,
    /// Price levels per side to show.
    #[arg(long, default_value_t = 10, value_parser = count::<usize>(values::DEPTH))]
    pub depth: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub caps: CapacityArgs,
}

#[derive(Args, Debug, Clone, Copy)]
pub struct CapacityArgs {
    /// Most live orders the books hold (preallocated; more is a counted overflow; at most 2^26).
    #[arg(long, default_value_t = 4 << 20, value_parser = count::<usize>(values::ORDERS))]
    pub max_orders: usize,
    /// Price-level slots across all books (preallocated; default: 2 × max-orders + 16 per locate;
    /// at most 2^28).
    #[arg(long, value_parser = count::<usize>(values::LEVELS))]
    pub max_levels: Option<usize>,
}

impl CapacityArgs {
    pub fn config(self) -> BookConfig {
        let mut c = BookConfig::for_orders(self.max_orders, 1 << 16);
        if let Some(l) = self.max_levels {
            c.max_levels = l;
        }
        c
    }
}

#[derive(Args, Debug)]
pub struct GenArgs {
    /// Total messages to write.
    #[arg(long, value_parser = count::<u64>(values::MESSAGES))]
    pub messages: u64,
    /// Number of stocks.
    #[arg(long, value_parser = count::<u32>(values::SYMBOLS))]
    pub symbols: u32,
    /// Live orders to ramp up to and then hold (default: messages / 20, at most 2,000,000).
    #[arg(long, value_parser = count::<u64>(values::ORDERS))]
    pub live_orders: Option<u64>,
    /// Random seed: the same seed and arguments give the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Compress the continuous session (normally 09:30-16:00) into this long after the open,
    /// e.g. `10m`: the same messages at a higher rate, so that short windows hold many events.
    #[arg(long, value_parser = values::session)]
    pub session: Option<std::time::Duration>,
    /// Inject labelled manipulation episodes: any of spoofing, layering, stuffing, ignition,
    /// close, wash (comma-separated). Writes OUT.truth.json (the ground truth) and, with wash,
    /// OUT.flow.csv (the firm's participant flow).
    #[arg(long, value_delimiter = ',')]
    pub scenarios: Vec<String>,
    /// Episodes of each scenario per minute of the continuous session (above 0, at most 10).
    #[arg(long, default_value_t = 0.2, value_parser = values::scenario_rate)]
    pub scenario_rate: f64,
    /// Output file.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum ConvertCmd {
    /// LOBSTER message + orderbook CSV pair → ITCH 5.0 BinaryFILE.
    Lobster(LobsterArgs),
    /// ITCH 5.0 BinaryFILE → MoldUDP64 capture (UDP/IPv4 in Ethernet, SLL or SLL2; pcap or
    /// pcapng), packets filled as a feed fills them, end of session at the end.
    Itch(ItchArgs),
    /// MoldUDP64 capture (pcap/pcapng) → ITCH 5.0 BinaryFILE: the messages in sequence order,
    /// gaps warned about with their exact ranges.
    Pcap(PcapArgs),
}

#[derive(Args, Debug)]
pub struct PcapArgs {
    /// pcap or pcapng capture of MoldUDP64; `.gz` is decompressed once to a cached sibling file.
    pub file: PathBuf,
    /// Where to keep the decompressed copy of a `.gz` input (default: beside it, without `.gz`).
    #[arg(long, value_name = "PATH")]
    pub cache: Option<PathBuf>,
    /// Only the MoldUDP64 packets to this multicast group and port (repeatable; default: all).
    #[arg(long, value_name = "GROUP:PORT", value_parser = values::group)]
    pub channel: Vec<std::net::SocketAddrV4>,
    /// Only this MoldUDP64 session (1..=10 printable ASCII characters).
    #[arg(long, value_name = "NAME", value_parser = values::mold_session)]
    pub session: Option<String>,
    /// Output BinaryFILE.
    #[arg(long)]
    pub out: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ItchArgs {
    /// ITCH 5.0 BinaryFILE; `.gz` is decompressed once to a cached sibling file.
    pub file: PathBuf,
    /// Where to keep the decompressed copy of a `.gz` input (default: beside it, without `.gz`).
    #[arg(long, value_name = "PATH")]
    pub cache: Option<PathBuf>,
    /// Output capture.
    #[arg(long)]
    pub out: PathBuf,
    /// Tag every Ethernet frame with this 802.1Q VLAN ID (0..=4095).
    #[arg(long, value_parser = count::<u16>(values::VLAN_ID))]
    pub vlan: Option<u16>,
    /// Link layer.
    #[arg(long, value_enum, default_value = "ethernet")]
    pub linktype: tickwatch::capture::LinkType,
    /// Write pcapng instead of classic pcap.
    #[arg(long)]
    pub pcapng: bool,
    /// Microsecond timestamps (default: nanoseconds).
    #[arg(long)]
    pub micro: bool,
    /// Leave out every N-th packet (1..=2^32), to make sequence gaps.
    #[arg(long, value_parser = count::<u64>(values::DROP_EVERY))]
    pub drop_every: Option<u64>,
    /// Destination multicast group and port.
    #[arg(long, default_value = "233.54.12.111:26477", value_parser = values::group)]
    pub group: std::net::SocketAddrV4,
    /// MoldUDP64 session name (1..=10 ASCII characters).
    #[arg(long, default_value = "000000001", value_parser = values::mold_session)]
    pub session: String,
    /// The feed's date (its ITCH times are added to this midnight, UTC).
    #[arg(long, default_value = "2019-12-30", value_parser = values::date)]
    pub date: u64,
    /// Most MoldUDP64 bytes per packet, header included (64..=8972).
    #[arg(long, default_value_t = 1400, value_parser = count::<usize>(values::MOLD_PAYLOAD))]
    pub max_payload: usize,
    /// Longest a packet holds a message after its first (0s..=24h).
    #[arg(long, default_value = "100us", value_parser = values::time_span)]
    pub max_gap: std::time::Duration,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct LobsterArgs {
    /// LOBSTER message file (CSV).
    #[arg(long)]
    pub messages: PathBuf,
    /// LOBSTER orderbook file (CSV) for the same sample.
    #[arg(long)]
    pub orderbook: PathBuf,
    /// Symbol to give the stock.
    #[arg(long)]
    pub symbol: String,
    /// Trading date, YYYY-MM-DD.
    #[arg(long)]
    pub date: String,
    /// Output ITCH file.
    #[arg(long)]
    pub out: PathBuf,
    /// Print the conversion report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Messages in the generated feed.
    #[arg(long, default_value_t = 2_000_000, value_parser = count::<u64>(values::MESSAGES))]
    pub messages: u64,
    /// Stocks in the generated feed.
    #[arg(long, default_value_t = 500, value_parser = count::<u32>(values::SYMBOLS))]
    pub symbols: u32,
    /// Keep the generated feed in this directory instead of a temporary one.
    #[arg(long)]
    pub keep: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Timed repetitions of each kernel (the median is reported).
    #[arg(long, default_value_t = 5, value_parser = count::<usize>(values::REPEAT))]
    pub repeat: usize,
    /// Threads for the parallel decode (default: all cores).
    #[arg(long, value_parser = count::<usize>(values::THREADS))]
    pub threads: Option<usize>,
    /// Also time a cold first walk: evict the file from the page cache, map without populating, walk.
    #[arg(long)]
    pub cold: bool,
    /// Map without MAP_POPULATE.
    #[arg(long)]
    pub no_populate: bool,
    /// Ask for transparent huge pages on the mapping.
    #[arg(long)]
    pub huge_pages: bool,
    /// Time decode + book update on every N-th message for the latency percentiles (1 = every
    /// message; timing every message perturbs the pipelined loop by ≈ 30 ns/msg).
    #[arg(long, default_value_t = 16, value_parser = count::<u64>(values::SAMPLE_EVERY))]
    pub latency_sample: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub caps: CapacityArgs,
}
