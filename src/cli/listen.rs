//! `tickwatch run --listen udp://G:P[,udp://G2:P2]`: a live MoldUDP64 feed through the
//! pipeline instead of a file, its latency measured from each packet's kernel receive
//! timestamp (wire → book, and wire → alert with `--alerts`).

use super::args::{Cli, RunArgs};
use super::memory;
use super::progress::{self, Watch};
use super::report::{print_book_gap, print_run_report};
use super::send::{lines, server, short_duration, Lines};
use super::values::count;
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, CommandFactory, FromArgMatches, ValueEnum};
use serde::Serialize;
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tickwatch::clock::TickScale;
use tickwatch::mold::report::SessionReport;
use tickwatch::mold::{Arbiter, ArbiterConfig, StreamConfig};
use tickwatch::net::{
    hwstamp, socket, HwMode, HwStamping, Receiver, RecvOptions, Rerequester, StampCounts,
};
use tickwatch::pipeline::gap::GapSummary;
use tickwatch::pipeline::live::{LiveReport, LiveSource};
use tickwatch::pipeline::sizing::FeedCounts;
use tickwatch::pipeline::{self, RunReport};

/// Set by Ctrl-C: the reader stops, the pipeline drains, the final counters are printed.
static STOP: AtomicBool = AtomicBool::new(false);

/// The live lines a command reads instead of FILE: `run`'s and `bars`' ([`ListenArgs`]) and
/// `inspect`'s (`inspect_live::InspectListen`).
#[derive(Args, Debug, Default)]
pub struct LiveLines {
    /// Read a live MoldUDP64 feed instead of FILE: line A, and optionally line B
    /// (udp://GROUP:PORT[,udp://GROUP2:PORT2]), until the end of the session or Ctrl-C (`run`
    /// and `bars`: latency from each packet's kernel receive time; `inspect`: or --idle).
    #[arg(long, value_parser = lines, value_name = "udp://G:P[,udp://G2:P2]")]
    pub listen: Option<Lines>,
    /// With --listen: the interface address to join on (default: the route's).
    #[arg(long, requires = "listen")]
    pub iface: Option<Ipv4Addr>,
    /// With --listen: ask this MoldUDP64 re-request server (`send --rerequest-port`) for the
    /// messages every line missed.
    #[arg(long, requires = "listen", value_name = "udp://HOST:PORT", value_parser = server)]
    pub rerequest: Option<SocketAddrV4>,
    #[command(flatten)]
    pub hw: HwFlag,
}

/// `--hw-timestamps`, of the live lines and of `record`.
#[derive(Args, Debug, Default)]
pub struct HwFlag {
    /// With --iface: have the NIC holding that address stamp every packet it receives
    /// (SIOCSHWTSTAMP, receive filter "all"; needs CAP_NET_ADMIN; the setting is the
    /// interface's and stays on), after asking what it can do (ETHTOOL_GET_TS_INFO, as
    /// `ethtool -T`). When it cannot: `try` (the default) says why and uses the kernel's
    /// software receive stamps; `require` refuses to run. The report says which clock stamped
    /// the datagrams.
    #[arg(
        long,
        requires = "iface",
        value_enum,
        value_name = "MODE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "try"
    )]
    pub hw_timestamps: Option<HwArg>,
}

/// `--hw-timestamps`' modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HwArg {
    /// Fall back to software stamps, saying why.
    Try,
    /// Refuse to run without hardware stamps.
    Require,
}

impl HwFlag {
    /// Asks the NIC of `iface` to stamp, when the flag was given (`Ok(None)` when not); the
    /// outcome is printed on standard error.
    pub fn enable(&self, iface: Option<Ipv4Addr>) -> Result<Option<HwStamping>> {
        let (Some(mode), Some(ip)) = (self.hw_timestamps, iface) else {
            return Ok(None);
        };
        let mode = match mode {
            HwArg::Try => HwMode::Try,
            HwArg::Require => HwMode::Require,
        };
        let hw = hwstamp::enable(ip, mode)?;
        eprintln!("hardware timestamps: {}", hw.note);
        Ok(Some(hw))
    }
}

/// Joins `ro`'s lines, the NIC told to stamp first when `hw` asks.
pub fn receiver(ro: &RecvOptions, hw: &HwFlag) -> Result<Receiver> {
    let stamping = hw.enable(ro.iface)?;
    let rx = Receiver::new(ro).context("joining the lines")?;
    Ok(match stamping {
        Some(s) => rx.with_hw_stamping(s),
        None => rx,
    })
}

/// The live input of `run` (and `bars`).
#[derive(Args, Debug, Default)]
pub struct ListenArgs {
    #[command(flatten)]
    pub lines: LiveLines,
    /// With --listen: how long a message missing on every line is waited for (from the other
    /// line, a re-request, or a late packet) before it is given up; the books wait with it.
    /// Timed on receive stamps: with --rerequest it must cover the reader's lag behind the
    /// wire as well as the request's round trip.
    #[arg(long, requires = "listen", default_value = "250ms", value_parser = short_duration)]
    pub hold: Duration,
    /// With --listen: messages held back behind a missing one, at most (a hole is given up
    /// when the window is full).
    #[arg(long, requires = "listen", default_value_t = 1 << 15, value_parser = count::<usize>(1..=1 << 24))]
    pub hold_messages: usize,
    /// With --listen: receive buffer per socket, bytes.
    #[arg(long, requires = "listen", default_value_t = socket::RCVBUF)]
    pub rcvbuf: usize,
    /// With --listen: do not keep the reader's own books, which find the stocks an unfilled gap
    /// touched as the messages arrive (they take the books' capacities in memory, ≈ 410 MB at
    /// the default --max-orders, and ≈ 0.2 µs of the reader per datagram); the report then
    /// does not list those stocks.
    #[arg(long, requires = "listen")]
    pub no_damage_scan: bool,
}

/// The command line, where `run`'s and `bars`' FILE is not needed with `--listen`.
pub fn parse() -> Result<Cli, clap::Error> {
    let mut cmd = Cli::command();
    for sub in ["run", "bars", "inspect"] {
        cmd = cmd.mut_subcommand(sub, |c| {
            // The default only fills the field: clap still asks for FILE without --listen.
            c.mut_arg("file", |f| {
                f.required(false)
                    .required_unless_present("listen")
                    .conflicts_with("listen")
                    .default_value("-")
                    .hide_default_value(true)
            })
        });
    }
    let mut m = cmd.try_get_matches()?;
    Cli::from_arg_matches_mut(&mut m)
}

/// What `--json` prints: the run's report with the feed handler's beside it.
#[derive(Serialize)]
struct LiveRun<'a> {
    #[serde(flatten)]
    run: &'a RunReport,
    live: &'a LiveReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    book_gap: Option<&'a GapSummary>,
}

/// The live run: joins the lines, runs the jobs until the end of the session or Ctrl-C.
pub fn run_live(
    a: &RunArgs,
    lines: &Lines,
    cfg: pipeline::PipelineConfig,
    jobs: pipeline::MarketJobs,
    watch: Option<Watch>,
) -> Result<()> {
    if cfg.speed.is_some() || a.from.is_some() {
        bail!("--speed and --from pace a file; a live feed comes at its own pace");
    }
    memory::check(&cfg, jobs.bars.as_ref())?;
    // Before the damage scan's books are faulted in (a while): Ctrl-C then ends the run at once.
    ctrlc::set_handler(|| STOP.store(true, Ordering::Relaxed))
        .context("installing the Ctrl-C handler")?;
    let src = match a.live.no_damage_scan {
        true => source(a, lines)?,
        false => source(a, lines)?.with_damage_scan(cfg.books),
    };
    let name = names(&lines.0);
    eprintln!("listening on {name}; Ctrl-C stops");
    let counts = FeedCounts::unscanned(cfg.workers);
    let dash = |p: &std::path::PathBuf| p.as_os_str() == "-";
    // Rows or alerts on standard output: the report goes to standard error.
    let quiet_stdout = a.alerts.as_ref().is_some_and(dash)
        || (jobs.bars.is_some() && a.bars.as_ref().map_or(true, dash));
    let progress = AtomicU64::new(0);
    let (outcome, src) = progress::while_running(&progress, watch, || {
        pipeline::run_source(src, &counts, &cfg, jobs, &STOP, &progress)
    })?;
    let (r, live) = (&outcome.report, src.report());
    let book_gap = live.book_gap();
    let mut out: Box<dyn Write> = if quiet_stdout {
        Box::new(io::stderr().lock())
    } else {
        Box::new(io::stdout().lock())
    };
    if a.json {
        serde_json::to_writer_pretty(
            &mut out,
            &LiveRun {
                run: r,
                live: &live,
                book_gap: book_gap.as_ref(),
            },
        )?;
        writeln!(out)?;
    } else {
        print_live(&mut out, &live)?;
        print_run_report(&mut out, Path::new(&name), r)?;
        if let Some(g) = &book_gap {
            print_book_gap(&mut out, g, r.book_stats.unknown_refs)?;
        }
        writeln!(
            out,
            "latency origin: each packet's {:?} receive timestamp, so end to end is wire → book{}",
            live.timestamps,
            if r.surv.is_some() {
                " and the alert latency wire → alert"
            } else {
                ""
            }
        )?;
    }
    r.check_conservation()
        .map_err(|e| anyhow!("pipeline accounting failed: {e}"))?;
    out.flush()?;
    Ok(())
}

/// The receiver, arbiter and re-request client of `a`'s lines.
fn source(a: &RunArgs, lines: &Lines) -> Result<LiveSource> {
    let l = &a.live;
    let ro = RecvOptions {
        lines: lines.0.clone(),
        iface: l.lines.iface,
        rcvbuf: l.rcvbuf,
    };
    let rx = receiver(&ro, &l.lines.hw)?;
    let stream = StreamConfig {
        hold_messages: l.hold_messages,
        // ITCH messages average ≈ 30 bytes; room for the window's messages of up to 64.
        hold_bytes: l.hold_messages * 64,
        hold_ns: l.hold.as_nanos() as u64,
        ..StreamConfig::default()
    };
    let acfg = match lines.0[..] {
        [la, lb] => ArbiterConfig {
            ab: vec![(la, lb)],
            stream,
            ..ArbiterConfig::default()
        },
        _ => ArbiterConfig {
            channels: lines.0.clone(),
            stream,
            ..ArbiterConfig::default()
        },
    };
    let rq = match l.lines.rerequest {
        Some(s) => Some(Rerequester::new(s)?),
        None => None,
    };
    let scale = TickScale::cached();
    Ok(LiveSource::new(
        rx,
        Arbiter::new(acfg),
        rq,
        scale,
        a.input.lenient,
    ))
}

fn names(lines: &[SocketAddrV4]) -> String {
    let v: Vec<String> = lines.iter().map(|l| format!("udp://{l}")).collect();
    v.join(",")
}

/// The feed handler's counters, before the run report.
fn print_live(out: &mut dyn Write, l: &LiveReport) -> io::Result<()> {
    writeln!(
        out,
        "live: {} datagrams, {} packets; kernel drops {}; {}; {}",
        l.recv.datagrams,
        l.mold.packets,
        l.recv.kernel_drops,
        stamps(&StampCounts::of(&l.recv)),
        if l.end_of_session {
            "end of session"
        } else {
            "stopped before the end of session"
        }
    )?;
    if let Some(h) = &l.hw_timestamps {
        writeln!(out, "  hardware timestamps: {}", h.note)?;
    }
    if let Some(w) = l.recv.hw_clock_warning() {
        writeln!(out, "  warning: {w}")?;
    }
    let r = &l.reader;
    if r.cpu_ns > 0 {
        writeln!(
            out,
            "  reader: {} datagrams in {:.3} s, {:.3} s of it on its core: {:.0} datagrams per CPU-second",
            r.datagrams,
            r.wall_ns as f64 / 1e9,
            r.cpu_ns as f64 / 1e9,
            r.datagrams as f64 / (r.cpu_ns as f64 / 1e9)
        )?;
    }
    for s in &l.mold.sessions {
        print_session(out, s)?;
    }
    if let Some(q) = l.rerequests {
        writeln!(
            out,
            "  re-requests: {} sent for {} messages, {} replies",
            q.requests, q.asked, q.replies
        )?;
    }
    for g in l.lost.iter().take(SHOWN) {
        writeln!(out, "  unfilled: messages {}-{} lost", g.first, g.last)?;
    }
    if l.lost.len() > SHOWN {
        writeln!(out, "  … {} more unfilled ranges", l.lost.len() - SHOWN)?;
    }
    Ok(())
}

/// Which clocks stamped the datagrams, in words.
pub fn stamps(c: &StampCounts) -> String {
    format!(
        "stamped by the NIC {}, by the kernel in software {}, not at all {}",
        c.hardware, c.software, c.none
    )
}

/// Gap ranges printed (the `--json` report has them all, up to the arbiter's gap list).
const SHOWN: usize = 10;

fn print_session(out: &mut dyn Write, s: &SessionReport) -> io::Result<()> {
    let c = &s.counters;
    writeln!(
        out,
        "  session {}: {} messages delivered; gaps {}: {} missing messages filled, {} lost (window full {} times); duplicates {} ({} arbitrated A/B)",
        s.session.name(),
        c.delivered,
        c.gaps,
        c.recovered,
        c.lost,
        c.window_full,
        c.duplicates,
        s.arbitrated_duplicates
    )?;
    for g in s.gaps.iter().take(SHOWN) {
        let how = match g.lost {
            0 => "filled".to_string(),
            n => format!("{n} lost"),
        };
        writeln!(out, "    gap {}-{}: {how}", g.first, g.last)?;
    }
    if c.gaps > SHOWN as u64 {
        writeln!(out, "    … {} more gaps", c.gaps - SHOWN as u64)?;
    }
    Ok(())
}
