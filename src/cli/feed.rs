//! The feed a command reads: a mapped BinaryFILE, or a packet capture (pcap/pcapng of
//! MoldUDP64, told by its magic) whose messages are read in place from the mapped capture
//! (memory that does not grow with the capture). Errors are explained in the terms of the file
//! the user named (the capture byte offset of the packet).

use anyhow::{anyhow, Context, Error};
use std::io;
use std::path::{Path, PathBuf};
use tickwatch::book::BookConfig;
use tickwatch::capture::{
    place_of, read_messages, CaptureStream, ExtractOptions, FileKind, Lost, MessageSink, Place,
    Read, Release,
};
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
    /// The capture's messages read once into a consumer made by `make` (again when A/B lines
    /// make the walk start over), the gaps warned about. `name`: the file as named on the
    /// command line.
    pub fn read<S: MessageSink>(
        &self,
        name: &Path,
        make: impl FnMut() -> S,
    ) -> Result<Read<S>, Error> {
        let read = self.read_quietly(name, &self.opts, make)?;
        warn_gaps(name, &read.walked.report, &read.lost);
        Ok(read)
    }

    /// The capture's messages into a consumer that writes them out: a first read finds the
    /// A/B lines and the gaps (warned about), the second, which never starts over, feeds the
    /// consumer `make` gives; `make` runs once, after the first read.
    pub fn read_twice<S: MessageSink>(
        &self,
        name: &Path,
        make: impl FnOnce() -> Result<S, Error>,
    ) -> Result<Read<S>, Error> {
        let first = self.read(name, || tickwatch::capture::Nothing)?;
        let mut sink = Some(make()?);
        self.read_quietly(name, &first.options, || {
            sink.take()
                .expect("a read with the A/B lines found never starts over")
        })
    }

    fn read_quietly<S: MessageSink>(
        &self,
        name: &Path,
        opts: &ExtractOptions,
        make: impl FnMut() -> S,
    ) -> Result<Read<S>, Error> {
        // The pages read past leave the resident set: memory stays bounded.
        let release = Some(Release(&self.map));
        read_messages(self.map.bytes(), opts, release, make)
            .with_context(|| name.display().to_string())
    }

    /// The capture's messages streamed in place, read with `opts` (a finished read's).
    pub fn stream(&self, opts: &ExtractOptions) -> Result<CaptureStream<'_>, Error> {
        CaptureStream::new(self.map.bytes(), opts, Some(Release(&self.map))).map_err(Error::from)
    }

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
    /// A capture, mapped, its messages read in place.
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
    /// The BinaryFILE bytes; a capture's own bytes.
    pub fn bytes(&self) -> &[u8] {
        match &self.source {
            Source::Binary(m) => m.bytes(),
            Source::Stream(s) => s.map.bytes(),
        }
    }

    /// The capture streamed in place, if the feed is one.
    pub fn stream(&self) -> Option<&StreamFeed> {
        match &self.source {
            Source::Stream(s) => Some(s),
            _ => None,
        }
    }

    /// Locks a mapped feed's pages in memory.
    pub fn lock(&self) -> io::Result<()> {
        match &self.source {
            Source::Binary(m) => m.lock(),
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
            // A streamed message's error names its capture byte offset.
            Source::Stream(s) => ie.offset().and_then(|o| place_of(s.map.bytes(), o)),
        };
        match place {
            Some(p) => self.explain_at(ie, p),
            None => e.context(format!("{name}: the MoldUDP64 messages")),
        }
    }

    /// The ITCH error `ie` of the capture's message at `place` (the error's own offset is the
    /// message's in a BinaryFILE of the capture's messages: not the user's).
    pub fn explain_at(&self, ie: &InspectError, place: Place) -> Error {
        anyhow!(
            "{}: at capture byte offset {} (the MoldUDP64 packet there, message index {} in it): {}",
            self.name.display(),
            place.packet,
            place.message,
            without_offset(&ie.to_string())
        )
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
