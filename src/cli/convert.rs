//! `tickwatch convert lobster`: a LOBSTER pair as an ITCH file; `tickwatch convert itch`: an ITCH
//! file as a MoldUDP64 capture; `tickwatch convert pcap`: a MoldUDP64 capture as an ITCH file.

use super::args::{InputArgs, ItchArgs, LobsterArgs, PcapArgs};
use super::files::open_feed_in_place;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use tickwatch::capture::{CaptureFormat, Framed, TsResolution, WriteOptions};
use tickwatch::feed::gz;
use tickwatch::itch::fmt_time;

pub fn cmd_lobster(a: LobsterArgs) -> Result<()> {
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

pub fn cmd_itch(a: ItchArgs) -> Result<()> {
    let input = gz::resolve(&a.file, a.cache.as_deref())?;
    let opts = WriteOptions {
        link: a.linktype,
        vlan: a.vlan,
        format: match a.pcapng {
            true => CaptureFormat::PcapNg,
            false => CaptureFormat::Pcap,
        },
        resolution: match a.micro {
            true => TsResolution::Micro,
            false => TsResolution::Nano,
        },
        group: a.group,
        session: a.session.clone(),
        max_payload: a.max_payload,
        max_gap_ns: a.max_gap.as_nanos() as u64,
        drop_every: a.drop_every,
        date_ns: a.date * 86_400_000_000_000,
        ..WriteOptions::default()
    };
    let r = tickwatch::capture::convert_file(&input, &a.out, &opts)
        .with_context(|| format!("converting {}", a.file.display()))?;
    if a.json {
        serde_json::to_writer_pretty(io::stdout().lock(), &r)?;
        println!();
        return Ok(());
    }
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "wrote {}: {} ITCH messages in {} MoldUDP64 packets to {} (session {:?}), end of session at sequence {}, {} bytes",
        a.out.display(),
        r.messages,
        r.packets,
        a.group,
        a.session,
        r.end_sequence,
        r.bytes
    )?;
    if r.dropped_packets > 0 {
        writeln!(
            out,
            "left out {} packets ({} messages): every {}th",
            r.dropped_packets,
            r.dropped_messages,
            a.drop_every.unwrap_or(0)
        )?;
    }
    Ok(())
}

pub fn cmd_pcap(a: PcapArgs) -> Result<()> {
    let input = InputArgs {
        file: a.file.clone(),
        channel: a.channel.clone(),
        session: a.session.clone(),
        cache: a.cache.clone(),
        lenient: false,
    };
    let feed = open_feed_in_place(&input, tickwatch::feed::MapOptions::default())?;
    let Some(c) = feed.stream() else {
        bail!(
            "{}: not a pcap or pcapng capture (no known magic number)",
            a.file.display()
        );
    };
    // Written as the messages are read, after a first read has found the A/B lines.
    let create = || {
        let f = File::create(&a.out).with_context(|| format!("writing {}", a.out.display()))?;
        Ok(Framed::new(BufWriter::with_capacity(1 << 20, f)))
    };
    let read = c.read_twice(&feed.name, create)?;
    read.sink
        .finish()
        .with_context(|| format!("writing {}", a.out.display()))?;
    let r = &read.walked.report;
    #[derive(Serialize)]
    struct Out<'a> {
        out: String,
        messages: u64,
        bytes: u64,
        lost: u64,
        mold: &'a tickwatch::mold::MoldReport,
    }
    let out = Out {
        out: a.out.display().to_string(),
        messages: r.sessions.iter().map(|s| s.counters.delivered).sum(),
        bytes: read.image_len,
        lost: read.lost.iter().map(|l| l.last - l.first + 1).sum(),
        mold: r,
    };
    if a.json {
        serde_json::to_writer_pretty(io::stdout().lock(), &out)?;
        println!();
        return Ok(());
    }
    println!(
        "wrote {}: {} ITCH messages ({} bytes) from {} MoldUDP64 packets in {} session(s); {} message(s) lost in gaps",
        out.out,
        out.messages,
        out.bytes,
        r.packets,
        r.sessions.len(),
        out.lost
    );
    Ok(())
}
