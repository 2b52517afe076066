//! `tickwatch inspect --listen`: what arrives on one or two multicast lines until the end of
//! the session (or Ctrl-C, or `--idle`), recorded to a temporary capture and inspected as one:
//! channels, sessions, sequence range, gaps, duplicates, then the ITCH counts.

use super::args::InspectArgs;
use super::listen::LiveLines;
use super::send::{short_duration, Lines};
use anyhow::{Context, Result};
use clap::Args;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tickwatch::feed::MapOptions;
use tickwatch::net::{socket, RecordOptions, Recorder, RecvOptions};

static STOP: AtomicBool = AtomicBool::new(false);

/// `inspect`'s live input: the lines, and when to stop.
#[derive(Args, Debug)]
pub struct InspectListen {
    #[command(flatten)]
    pub lines: LiveLines,
    /// With --listen: also stop after this long with nothing received.
    #[arg(long, requires = "listen", value_name = "DUR", value_parser = short_duration)]
    pub idle: Option<Duration>,
}

/// Records the lines to a temporary capture, then inspects it.
pub fn cmd_inspect_live(a: &InspectArgs, lines: &Lines) -> Result<()> {
    let l = &a.live;
    let ro = RecvOptions {
        lines: lines.0.clone(),
        iface: l.lines.iface,
        rcvbuf: socket::RCVBUF,
    };
    let rx = super::listen::receiver(&ro, &l.lines.hw)?;
    ctrlc::set_handler(|| STOP.store(true, Ordering::Relaxed))
        .context("installing the Ctrl-C handler")?;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("live.pcap");
    let opts = RecordOptions {
        out: out.clone(),
        pcapng: false,
        rotate_size: None,
        rotate_time: None,
    };
    let mut rec = Recorder::new(rx, opts);
    if let Some(s) = l.lines.rerequest {
        rec = rec.with_rerequest(s)?;
    }
    let r = rec.run(&STOP, l.idle)?;
    eprintln!(
        "received {} packets; kernel drops {}",
        r.packets, r.kernel_drops
    );
    let map = super::files::open_feed_in_place(
        &super::args::InputArgs {
            file: out,
            ..a.input.clone()
        },
        MapOptions::default(),
    )?;
    let Some(c) = map.stream() else {
        anyhow::bail!("the recording is not a capture");
    };
    super::inspect_capture::cmd_inspect_capture(a, &map, c)
}
