//! `tickwatch record`: what arrives on one or two multicast lines, written as pcap/pcapng.

use super::send::{lines, server, short_duration, Lines};
use anyhow::{Context, Result};
use clap::Args;
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tickwatch::net::{socket, RecordOptions, RecordReport, Recorder, RecvOptions};

static STOP: AtomicBool = AtomicBool::new(false);

#[derive(Args, Debug)]
pub struct RecordArgs {
    /// Line A, and optionally line B: udp://GROUP:PORT[,udp://GROUP2:PORT2].
    #[arg(long, value_parser = lines)]
    pub listen: Lines,
    /// Interface address to join on (default: the route's).
    #[arg(long)]
    pub iface: Option<Ipv4Addr>,
    /// A capture file, or an existing directory for numbered files (tickwatch-00000.pcap, ...).
    #[arg(long)]
    pub out: PathBuf,
    /// Write pcapng instead of pcap.
    #[arg(long)]
    pub pcapng: bool,
    /// Start a new file past this many bytes (FILE-1.pcap, FILE-2.pcap, ... beside FILE.pcap).
    #[arg(long, value_name = "BYTES")]
    pub rotate_size: Option<u64>,
    /// Start a new file after this long (e.g. 10min).
    #[arg(long, value_name = "DUR", value_parser = humantime::parse_duration)]
    pub rotate_time: Option<Duration>,
    /// Ask this MoldUDP64 re-request server (`send --rerequest-port`) for every gap missed on
    /// every line, and record its replies (as datagrams of line A from the server's address).
    #[arg(long, value_name = "udp://HOST:PORT", value_parser = server)]
    pub rerequest: Option<SocketAddrV4>,
    /// Also stop after this long with nothing received.
    #[arg(long, value_name = "DUR", value_parser = short_duration)]
    pub idle: Option<Duration>,
    /// Receive buffer per socket, bytes.
    #[arg(long, default_value_t = socket::RCVBUF)]
    pub rcvbuf: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub hw: super::listen::HwFlag,
}

pub fn cmd_record(a: RecordArgs) -> Result<()> {
    let ro = RecvOptions {
        lines: a.listen.0.clone(),
        iface: a.iface,
        rcvbuf: a.rcvbuf,
    };
    let rx = super::listen::receiver(&ro, &a.hw)?;
    let rcvbuf = rx.stats().rcvbuf;
    ctrlc::set_handler(|| STOP.store(true, Ordering::Relaxed))
        .context("installing the Ctrl-C handler")?;
    eprintln!(
        "recording {} (receive buffer {} bytes); Ctrl-C stops",
        rx.lines()
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        rcvbuf
    );
    let opts = RecordOptions {
        out: a.out.clone(),
        pcapng: a.pcapng,
        rotate_size: a.rotate_size,
        rotate_time: a.rotate_time,
    };
    let mut rec = Recorder::new(rx, opts);
    if let Some(server) = a.rerequest {
        rec = rec.with_rerequest(server)?;
    }
    let r = rec.run(&STOP, a.idle)?;
    if a.json {
        serde_json::to_writer_pretty(io::stdout().lock(), &r)?;
        println!();
        return Ok(());
    }
    print_report(&r)?;
    Ok(())
}

fn print_report(r: &RecordReport) -> io::Result<()> {
    let mut out = io::stdout().lock();
    let how = match (r.lines_ended, r.lines) {
        (0, _) => "stopped".to_string(),
        (e, n) if e == n => "end of session on every line".to_string(),
        (e, n) => format!(
            "end of session on {e} of {n} lines (the others silent for {:?} after it)",
            tickwatch::net::END_GRACE
        ),
    };
    writeln!(
        out,
        "recorded {} packets, {} bytes of UDP payload into {} file(s) ({} bytes); kernel drops {}; timestamps {:?} ({}); {how}",
        r.packets,
        r.bytes,
        r.files.len(),
        r.file_bytes,
        r.kernel_drops,
        r.timestamps.unwrap_or(tickwatch::net::TimestampSource::User),
        super::listen::stamps(&r.stamped)
    )?;
    if let Some(h) = &r.hw_timestamps {
        writeln!(out, "hardware timestamps: {}", h.note)?;
    }
    if let Some(w) = &r.hw_clock_warning {
        writeln!(out, "warning: {w}")?;
    }
    if let (Some(q), Some(lost)) = (r.rerequests, r.lost) {
        writeln!(
            out,
            "re-requests: {} sent for {} messages, {} replies; {} messages lost on every line and not filled",
            q.requests, q.asked, q.replies, lost
        )?;
    }
    for f in &r.files {
        writeln!(out, "  {}", f.display())?;
    }
    Ok(())
}
