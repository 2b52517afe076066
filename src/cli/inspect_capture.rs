//! `tickwatch inspect CAPTURE`: a packet capture's MoldUDP64 streams (packets, channels,
//! sessions, sequence range, gaps, duplicates, heartbeats, end of session, what is not
//! MoldUDP64), then the ITCH messages they carry, counted as for a BinaryFILE.

use super::args::InspectArgs;
use super::feed::{Feed, StreamFeed};
use anyhow::Result;
use serde::Serialize;
use std::io::{self, Write};
use tickwatch::book::BookConfig;
use tickwatch::capture::{At, ExtractOptions, MessageSink, NetCounts, Place};
use tickwatch::inspect::{InspectError, InspectOptions, Inspector, Summary};
use tickwatch::itch::fmt_time;
use tickwatch::mold::MoldReport;
use tickwatch::pipeline::gap::{DamageScan, DamagedStock, GapSummary};
use tickwatch::policy::threads_or_all;

#[derive(Serialize)]
struct Out<'a> {
    file: String,
    format: String,
    capture_packets: u64,
    network: &'a NetCounts,
    mold: &'a MoldReport,
    /// The ITCH messages in sequence order (`None`: the capture carries none).
    itch: Option<&'a Summary>,
    /// The unfilled gaps, placed in the feed, and the stocks they touched.
    #[serde(skip_serializing_if = "Option::is_none")]
    book_gap: Option<GapSummary>,
}

/// The messages counted as they come; the first that stops the count kept with its place.
struct Counting {
    inspector: Inspector,
    error: Option<(InspectError, Place)>,
}

impl MessageSink for Counting {
    fn message(&mut self, bytes: &[u8], at: At) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.inspector.frame(bytes, at.image) {
            self.error = Some((e, at.place));
        }
    }
}

/// `c` is `feed`'s capture: its messages are read once, in place (and again, only when a gap
/// was left unfilled, for the stocks it touched).
pub fn cmd_inspect_capture(a: &InspectArgs, feed: &Feed, c: &StreamFeed) -> Result<()> {
    let opts = InspectOptions {
        threads: threads_or_all(a.threads),
        lenient: a.input.lenient,
        refs: a.refs,
    };
    let read = c.read(&feed.name, || Counting {
        inspector: Inspector::new(opts),
        error: None,
    })?;
    if let Some((e, place)) = &read.sink.error {
        return Err(feed.explain_at(e, *place));
    }
    let summary = match read.sink.inspector.finish() {
        Ok(s) => Some(s),
        Err(InspectError::Empty) => None,
        Err(e) => return Err(feed.explain(e)),
    };
    let book_gap = match GapSummary::of(read.lost.clone()) {
        Some(g) => {
            let damaged = damaged_stocks(c, &read.options, g.inexact_from)?;
            Some(g.with_damage(damaged))
        }
        None => None,
    };
    let w = &read.walked;
    let out = Out {
        file: a.input.file.display().to_string(),
        format: format!("{:?}", c.kind),
        capture_packets: w.packets,
        network: &w.net,
        mold: &w.report,
        itch: summary.as_ref(),
        book_gap,
    };
    let mut w = io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut w, &out)?;
        writeln!(w)?;
        return Ok(());
    }
    print_text(&mut w, &out)
}

/// The stocks with references to unknown orders from feed position `from` on (full-day books),
/// the capture's messages streamed again with `opts`.
fn damaged_stocks(c: &StreamFeed, opts: &ExtractOptions, from: u64) -> Result<Vec<DamagedStock>> {
    let mut damage = DamageScan::new(BookConfig::full_day(), from);
    let mut stream = c.stream(opts)?;
    while let Some(r) = stream.advance() {
        r?;
        damage.take_bytes(stream.message());
    }
    Ok(damage.finish())
}

fn print_text(w: &mut impl Write, o: &Out<'_>) -> Result<()> {
    let m = o.mold;
    writeln!(w, "file        {} ({})", o.file, o.format)?;
    writeln!(
        w,
        "packets     {} captured, {} UDP/IPv4 datagrams, {} MoldUDP64 packets; not MoldUDP64: {}{}",
        o.capture_packets,
        o.network.datagrams,
        m.packets,
        m.not_mold,
        ports(m)
    )?;
    writeln!(
        w,
        "network     fragments {}, malformed {}, cut by snap length {}, not IPv4 {:?}, not UDP {:?}",
        o.network.fragments,
        o.network.malformed,
        o.network.snapped,
        o.network.non_ipv4,
        o.network.non_udp
    )?;
    let span = |f: Option<u64>, l: Option<u64>| match (f, l) {
        (Some(f), Some(l)) => format!("{:.6} s", (l.saturating_sub(f)) as f64 / 1e9),
        _ => "-".into(),
    };
    writeln!(
        w,
        "capture     {} of capture time",
        span(m.first_ts_ns, m.last_ts_ns)
    )?;
    for c in &m.channels {
        writeln!(w, "channel     {} ({} packets)", c.dst, c.packets)?;
    }
    for s in &m.sessions {
        let c = &s.counters;
        writeln!(
            w,
            "session     {} seq {}..{}: {} messages delivered, {} gaps ({} messages lost), {} duplicates, {} heartbeats, end of session {}",
            s.session,
            s.first_seq.map_or("-".into(), |v| v.to_string()),
            s.last_seq.map_or("-".into(), |v| v.to_string()),
            c.delivered,
            c.gaps,
            c.lost,
            c.duplicates + s.arbitrated_duplicates,
            c.heartbeats,
            if s.end_of_session { "seen" } else { "not seen" }
        )?;
        for g in s.gaps.iter().take(20) {
            writeln!(
                w,
                "  gap       {}..={} ({} recovered, {} lost)",
                g.first, g.last, g.recovered, g.lost
            )?;
        }
    }
    match o.itch {
        None => writeln!(w, "itch        no MoldUDP64 messages in this capture")?,
        Some(s) => {
            let span = match (s.first_timestamp_ns, s.last_timestamp_ns) {
                (Some(f), Some(l)) => format!("{} .. {}", fmt_time(f), fmt_time(l)),
                _ => "-".into(),
            };
            writeln!(
                w,
                "itch        {} messages, {} stocks, ITCH time {span}",
                s.messages, s.stocks
            )?;
            for (t, n) in &s.by_type {
                writeln!(w, "  {t}  {n:>12}")?;
            }
            if let Some(r) = &s.references {
                super::inspect::write_refs(w, r)?;
            }
        }
    }
    if let Some(g) = &o.book_gap {
        // The stocks are listed: the count of unknown references is not printed.
        super::report::print_book_gap(w, g, 0)?;
    }
    Ok(())
}

/// The ports of the datagrams that were not MoldUDP64.
fn ports(m: &MoldReport) -> String {
    if m.not_mold_by_port.is_empty() {
        return String::new();
    }
    let p: Vec<String> = m
        .not_mold_by_port
        .iter()
        .map(|p| format!("port {}: {}", p.port, p.datagrams))
        .collect();
    format!(" ({})", p.join(", "))
}
