//! `tickwatch send`: an ITCH file or a capture's MoldUDP64 stream out over UDP multicast,
//! paced from its timestamps, with faults for tests and a re-request server.

use super::values::{self, count, Speed};
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tickwatch::capture::is_capture;
use tickwatch::feed::{gz, MapOptions, MappedFile};
use tickwatch::mold::Session;
use tickwatch::net::{
    self, BlastOptions, FaultLines, Faults, PackOptions, PacketList, RerequestServer, SendOptions,
    SendReport, Sender,
};

static STOP: AtomicBool = AtomicBool::new(false);

#[derive(Args, Debug)]
pub struct SendArgs {
    /// ITCH 5.0 BinaryFILE (`.gz` too), or a pcap/pcapng capture of MoldUDP64 (by its magic):
    /// its packets are sent as captured, paced by their capture times.
    pub file: PathBuf,
    /// Where to keep the decompressed copy of a `.gz` input.
    #[arg(long, value_name = "PATH")]
    pub cache: Option<PathBuf>,
    /// Line A, and optionally line B (the same packets): udp://GROUP:PORT[,udp://GROUP2:PORT2].
    #[arg(long, value_parser = lines)]
    pub to: Lines,
    /// `max`, or a multiple of the feed's pace (1 = real time, 10, 0.5).
    #[arg(long, default_value = "1", value_parser = values::speed)]
    pub speed: Speed,
    /// Send only messages (packets) at or after this time of day (HH:MM:SS[.fffffffff]).
    #[arg(long, value_parser = values::time_of_day)]
    pub from: Option<u64>,
    /// Send only messages (packets) at or before this time of day.
    #[arg(long, value_parser = values::time_of_day)]
    pub until: Option<u64>,
    /// MoldUDP64 session of an ITCH file's packets (default 000000001); for a capture, send only
    /// this session.
    #[arg(long, value_parser = values::mold_session)]
    pub session: Option<String>,
    /// Interface address to send from (IP_MULTICAST_IF; default: the route's).
    #[arg(long)]
    pub iface: Option<Ipv4Addr>,
    /// Multicast TTL.
    #[arg(long, default_value_t = 1, value_parser = count::<u32>(0..=255))]
    pub ttl: u32,
    /// Most MoldUDP64 bytes per packet (ITCH input).
    #[arg(long, default_value_t = 1_400, value_parser = count::<usize>(values::MOLD_PAYLOAD))]
    pub max_payload: usize,
    /// Messages share a packet when within this time of its first (ITCH input), e.g. 5us.
    #[arg(long, default_value = "5us", value_parser = short_duration)]
    pub window: Duration,
    /// A heartbeat after this long without a packet (at least 1ms).
    #[arg(long, default_value = "1s", value_parser = short_duration)]
    pub heartbeat: Duration,
    /// Drop every N-th data packet (on the lines of --fault-line).
    #[arg(long, value_parser = count::<u64>(values::DROP_EVERY))]
    pub drop_every: Option<u64>,
    /// Drop the data packets holding any sequence in A-B (on the lines of --fault-line).
    #[arg(long, value_parser = seq_range, value_name = "A-B")]
    pub drop_seq: Option<(u64, u64)>,
    /// Send every N-th data packet twice (on the lines of --fault-line).
    #[arg(long, value_parser = count::<u64>(values::DROP_EVERY))]
    pub duplicate_every: Option<u64>,
    /// Swap adjacent data packets (on the lines of --fault-line).
    #[arg(long)]
    pub reorder: bool,
    /// Which lines the faults apply to: line A only (default; B then makes up for it), B, both.
    #[arg(long, alias = "drop-line", value_enum, default_value = "a")]
    pub fault_line: FaultLine,
    /// Answer MoldUDP64 re-requests on this UDP port (unicast), from the file's messages.
    #[arg(long, value_parser = count::<u16>(1..=65_535))]
    pub rerequest_port: Option<u16>,
    /// Keep answering re-requests this long after the end of session.
    #[arg(long, default_value = "2s", value_parser = short_duration)]
    pub linger: Duration,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Send the packets as fast as the kernel takes them, or at RATE datagrams/s per line, with
    /// `sendmmsg` (every header built first, batches of 64; asleep between batches at a rate):
    /// a sender that is not the bottleneck, for finding a receiver's ceiling. No pacing from the
    /// feed's times (--speed is not used), no heartbeats, no faults; the end of session sent
    /// three times, 10 ms apart.
    #[arg(
        long,
        value_name = "RATE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "0",
        conflicts_with_all = ["drop_every", "drop_seq", "duplicate_every", "reorder", "rerequest_port"]
    )]
    pub blast: Option<u64>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FaultLine {
    A,
    B,
    Both,
}

#[derive(Clone, Debug)]
pub struct Lines(pub Vec<SocketAddrV4>);

/// `udp://GROUP:PORT[,udp://GROUP2:PORT2]`.
pub fn lines(s: &str) -> Result<Lines, String> {
    net::parse_lines(s).map(Lines).map_err(|e| e.to_string())
}

/// `udp://HOST:PORT`: a re-request server.
pub fn server(s: &str) -> Result<SocketAddrV4, String> {
    net::parse_udp(s).map_err(|e| e.to_string())
}

/// `A-B`, 1 ≤ A ≤ B.
fn seq_range(s: &str) -> Result<(u64, u64), String> {
    let err = || "expected FIRST-LAST sequence numbers, 1 <= FIRST <= LAST".to_string();
    let (a, b) = s.split_once('-').ok_or_else(err)?;
    match (a.trim().parse::<u64>(), b.trim().parse::<u64>()) {
        (Ok(a), Ok(b)) if 1 <= a && a <= b => Ok((a, b)),
        _ => Err(err()),
    }
}

/// A duration up to an hour (`5us`, `1s`).
pub fn short_duration(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if d <= Duration::from_secs(3_600) => Ok(d),
        Ok(_) => Err(format!("{s} is not in 0..=1h")),
        Err(e) => Err(e.to_string()),
    }
}

fn packet_list(a: &SendArgs) -> Result<PacketList> {
    let path = gz::resolve(&a.file, a.cache.as_deref())?;
    let map = MappedFile::open(&path, MapOptions::default())
        .with_context(|| format!("mapping {}", path.display()))?;
    let o = PackOptions {
        session: a.session.as_deref().and_then(Session::from_name),
        max_payload: a.max_payload,
        window_ns: a.window.as_nanos() as u64,
        from_ns: a.from,
        until_ns: a.until,
    };
    let list = match is_capture(map.bytes()) {
        Some(_) => PacketList::from_capture(map.bytes(), &o),
        None => PacketList::from_itch(map.bytes(), &o),
    };
    list.with_context(|| format!("reading {}", a.file.display()))
}

fn faults(a: &SendArgs) -> [Faults; 2] {
    let f = Faults {
        drop_every: a.drop_every,
        drop_seq: a.drop_seq,
        duplicate_every: a.duplicate_every,
        reorder: a.reorder,
    };
    let lines = match a.fault_line {
        FaultLine::A => FaultLines::A,
        FaultLine::B => FaultLines::B,
        FaultLine::Both => FaultLines::Both,
    };
    [0, 1].map(|l| {
        if lines.covers(l) {
            f
        } else {
            Faults::default()
        }
    })
}

pub fn cmd_send(a: SendArgs) -> Result<()> {
    let list = Arc::new(packet_list(&a)?);
    if let Some(rate) = a.blast {
        return blast(&a, &list, (rate > 0).then_some(rate));
    }
    let server = match a.rerequest_port {
        Some(p) => {
            let bind = SocketAddrV4::new(a.iface.unwrap_or(Ipv4Addr::UNSPECIFIED), p);
            Some(RerequestServer::spawn(
                Arc::clone(&list),
                bind,
                a.max_payload,
            )?)
        }
        None => None,
    };
    ctrlc::set_handler(|| STOP.store(true, Ordering::Relaxed))
        .context("installing the Ctrl-C handler")?;
    let o = SendOptions {
        lines: a.to.0.clone(),
        speed: a.speed.0,
        iface: a.iface,
        ttl: a.ttl,
        faults: faults(&a),
        heartbeat: a.heartbeat,
    };
    let r = Sender::new(&list, o)?.run(&STOP)?;
    let served = server.map(|s| {
        linger(a.linger);
        s.stop()
    });
    if a.json {
        let v = serde_json::json!({ "send": r, "rerequests": served });
        serde_json::to_writer_pretty(io::stdout().lock(), &v)?;
        println!();
        return Ok(());
    }
    print_report(&r, &list, served)?;
    Ok(())
}

/// `send --blast`: the packets out with `sendmmsg`, unpaced or at `rate` datagrams/s per line.
fn blast(a: &SendArgs, list: &PacketList, rate: Option<u64>) -> Result<()> {
    ctrlc::set_handler(|| STOP.store(true, Ordering::Relaxed))
        .context("installing the Ctrl-C handler")?;
    let o = BlastOptions {
        lines: a.to.0.clone(),
        iface: a.iface,
        ttl: a.ttl,
        rate,
    };
    let r = net::blast(list, &o, &STOP)?;
    if a.json {
        serde_json::to_writer_pretty(io::stdout().lock(), &serde_json::json!({ "blast": r }))?;
        println!();
        return Ok(());
    }
    println!(
        "blasted {} messages in {} packets per line ({} datagrams, {} sendmmsg calls) in {:.3} s: {:.0} datagrams/s per line (asked {}); {} batches late; end of session at sequence {}{}",
        r.messages,
        r.packets,
        r.datagrams,
        r.calls,
        r.elapsed_ns as f64 / 1e9,
        r.rate_per_line,
        r.rate_asked.map_or("as fast as possible".to_string(), |x| x.to_string()),
        r.late_batches,
        r.end_sequence,
        if r.interrupted { " (interrupted)" } else { "" }
    );
    Ok(())
}

/// Sleeps `d`, or until Ctrl-C.
fn linger(d: Duration) {
    let end = std::time::Instant::now() + d;
    while std::time::Instant::now() < end && !STOP.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn print_report(
    r: &SendReport,
    list: &PacketList,
    served: Option<net::rerequest::ServeStats>,
) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "sent {} messages in {} packets (session {}), end of session at sequence {}{}",
        r.messages,
        r.packets,
        list.session(),
        r.end_sequence,
        if r.interrupted { " (interrupted)" } else { "" }
    )?;
    for (i, l) in r.lines.iter().enumerate() {
        let dst = l.dst.map(|d| d.to_string()).unwrap_or_default();
        writeln!(
            out,
            "line {} {dst}: {} datagrams, {} bytes; dropped {}, duplicated {}, reordered {}",
            ["A", "B"][i],
            l.datagrams,
            l.bytes,
            l.dropped,
            l.duplicated,
            l.reordered
        )?;
    }
    writeln!(
        out,
        "feed span {:.6} s, sent in {:.6} s; {} heartbeats",
        r.feed_span_ns as f64 / 1e9,
        r.elapsed_ns as f64 / 1e9,
        r.heartbeats
    )?;
    let p = &r.pacing;
    if p.samples > 0 {
        writeln!(
            out,
            "pacing error (sent - scheduled) over {} packets: p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns",
            p.samples, p.p50_ns, p.p99_ns, p.p999_ns, p.max_ns
        )?;
    }
    if let Some(s) = served {
        writeln!(
            out,
            "re-requests: {} answered with {} messages in {} packets, {} ignored",
            s.requests, s.messages, s.packets, s.ignored
        )?;
    }
    Ok(())
}
