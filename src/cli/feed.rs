//! The feed a command reads: a mapped BinaryFILE, or a packet capture (pcap/pcapng of
//! MoldUDP64, told by its magic) whose messages are either extracted to a BinaryFILE image in
//! memory (the command sees `.bytes()` of a BinaryFILE) or, for the commands that stream them
//! in place (`run`, `bars`, `surveil`), left in the mapped capture. Errors are explained in the
//! terms of the file the user named (the capture byte offset of the packet, not the image
//! offset).

use anyhow::{anyhow, Context, Error};
use std::io;
use std::path::{Path, PathBuf};
use tickwatch::book::BookConfig;
use tickwatch::capture::{place_of, ExtractOptions, Extracted, FileKind, Lost, Release};
use tickwatch::export::ExportError;
use tickwatch::feed::MappedFile;
use tickwatch::filebench::FileBenchError;
use tickwatch::inspect::InspectError;
use tickwatch::mold::MoldReport;
use tickwatch::pipeline::gap::GapSummary;
use tickwatch::pipeline::CaptureScan;
use tickwatch::pipeline::JobError;
use tickwatch::surv::SurveilError;

/// Lost ranges printed per stream in the warning (the rest counted).
const RANGES_SHOWN: usize = 100;

/// A capture's extracted messages.
pub struct CaptureFeed {
    /// pcap (and its magic) or pcapng.
    pub kind: FileKind,
    /// The image, its map and what the layers counted.
    pub extracted: Extracted,
}

/// A capture whose messages are streamed in place ([`tickwatch::capture::CaptureStream`]).
pub struct StreamFeed {
    /// pcap (and its magic) or pcapng.
    pub kind: FileKind,
    /// The capture, mapped.
    pub map: MappedFile,
    /// The `--channel`/`--session` filters.
    pub opts: ExtractOptions,
}

impl StreamFeed {
    /// The first pass over the capture (nothing copied): the tables' sizes for `shards`
    /// shards, the gaps placed in the feed (warned about), the counters. `name`: the file as
    /// named on the command line.
    pub fn scan(&self, name: &Path, shards: usize) -> Result<CaptureScan<'_>, Error> {
        // Each pass releases the pages it has read past: the resident set stays bounded.
        let release = Some(Release(&self.map));
        let scan = CaptureScan::of(self.map.bytes(), &self.opts, shards, release)
            .with_context(|| name.display().to_string())?;
        warn_gaps(name, &scan.walked.report, &scan.lost);
        Ok(scan)
    }

    /// The capture's unfilled gaps, placed in the feed, with the stocks they touched (its
    /// messages streamed again, into books of `books`' capacities).
    pub fn gaps(
        &self,
        name: &Path,
        scan: &CaptureScan,
        books: BookConfig,
    ) -> Result<Option<GapSummary>, Error> {
        let Some(g) = GapSummary::of(scan.lost.clone()) else {
            return Ok(None);
        };
        let damaged = scan
            .damaged_stocks(books, g.inexact_from)
            .with_context(|| name.display().to_string())?;
        Ok(Some(g.with_damage(damaged)))
    }
}

/// The feed's bytes and where they came from.
pub enum Source {
    /// A BinaryFILE, mapped (read in place).
    Binary(MappedFile),
    /// A capture, extracted (one copy of the ITCH bytes).
    Capture(Box<CaptureFeed>),
    /// A capture, mapped, its messages streamed in place.
    Stream(Box<StreamFeed>),
}

/// An opened feed.
pub struct Feed {
    /// The file as named on the command line.
    pub name: PathBuf,
    /// The file read (a `.gz` input's decompressed cache).
    pub path: PathBuf,
    /// Its bytes.
    pub source: Source,
}

impl Feed {
    /// The BinaryFILE bytes (a capture's extracted image); a streamed capture's own bytes.
    pub fn bytes(&self) -> &[u8] {
        match &self.source {
            Source::Binary(m) => m.bytes(),
            Source::Capture(c) => &c.extracted.image,
            Source::Stream(s) => s.map.bytes(),
        }
    }

    /// The capture's extraction, if the feed is a capture.
    pub fn capture(&self) -> Option<&CaptureFeed> {
        match &self.source {
            Source::Capture(c) => Some(c),
            _ => None,
        }
    }

    /// The capture streamed in place, if the feed is one.
    pub fn stream(&self) -> Option<&StreamFeed> {
        match &self.source {
            Source::Stream(s) => Some(s),
            _ => None,
        }
    }

    /// Locks a mapped feed's pages in memory (a capture's image is already on the heap).
    pub fn lock(&self) -> io::Result<()> {
        match &self.source {
            Source::Binary(m) => m.lock(),
            Source::Capture(_) => Ok(()),
            Source::Stream(s) => s.map.lock(),
        }
    }

    /// `e` named after the feed: for a capture, an ITCH error at an image offset becomes one
    /// at the capture byte offset of the packet that carried the message.
    pub fn explain(&self, e: impl Into<Error>) -> Error {
        let e = e.into();
        let name = self.name.display();
        let Some(ie) = inspect_error(&e) else {
            return e.context(name.to_string());
        };
        let place = match &self.source {
            Source::Binary(_) => return e.context(name.to_string()),
            Source::Capture(c) => ie.offset().and_then(|o| c.extracted.place(o)),
            // A streamed message's error names its capture byte offset.
            Source::Stream(s) => ie.offset().and_then(|o| place_of(s.map.bytes(), o)),
        };
        match place {
            Some(p) => anyhow!(
                "{name}: at capture byte offset {} (the MoldUDP64 packet there, message index {} in it): {}",
                p.packet,
                p.message,
                without_offset(&ie.to_string())
            ),
            None => e.context(format!("{name}: the MoldUDP64 messages")),
        }
    }
}

/// The ITCH framing or decode error inside `e`, whichever command's error wraps it.
fn inspect_error(e: &Error) -> Option<&InspectError> {
    e.chain().find_map(|c| {
        if let Some(ie) = c.downcast_ref::<InspectError>() {
            return Some(ie);
        }
        match (
            c.downcast_ref::<JobError>(),
            c.downcast_ref::<SurveilError>(),
            c.downcast_ref::<ExportError>(),
            c.downcast_ref::<FileBenchError>(),
        ) {
            (Some(JobError::Feed(ie)), ..)
            | (_, Some(SurveilError::Feed(ie)), ..)
            | (_, _, Some(ExportError::Feed(ie)), _)
            | (.., Some(FileBenchError::Feed(ie))) => Some(ie),
            _ => None,
        }
    })
}

/// An error's text without its leading "at byte offset N: " (an image offset).
fn without_offset(s: &str) -> &str {
    s.strip_prefix("at byte offset ")
        .and_then(|rest| rest.split_once(": "))
        .map_or(s, |(_, detail)| detail)
}

/// A warning on standard error for every stream that lost messages: the exact sequence ranges
/// given up (the first [`RANGES_SHOWN`]) and how many messages they hold.
pub fn warn_gaps(name: &Path, report: &MoldReport, lost: &[Lost]) {
    for s in &report.sessions {
        let lost: Vec<_> = lost.iter().filter(|l| l.stream == s.stream).collect();
        if lost.is_empty() {
            continue;
        }
        let messages: u64 = lost.iter().map(|l| l.last - l.first + 1).sum();
        let ranges: Vec<String> = lost
            .iter()
            .take(RANGES_SHOWN)
            .map(|l| match l.first == l.last {
                true => l.first.to_string(),
                false => format!("{}..={}", l.first, l.last),
            })
            .collect();
        let more = lost.len().saturating_sub(RANGES_SHOWN);
        let lines: Vec<String> = s.lines.iter().map(|l| l.dst.to_string()).collect();
        eprintln!(
            "tickwatch: warning: {}: {} session {:?}: {} gap(s) in the sequence, {} message(s) lost: {}{}",
            name.display(),
            lines.join(" + "),
            s.session.name(),
            lost.len(),
            messages,
            ranges.join(", "),
            match more {
                0 => String::new(),
                n => format!(" and {n} more range(s)"),
            }
        );
    }
}
