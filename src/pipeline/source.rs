//! The ITCH 5.0 sources: each message of a BinaryFILE image ([`ItchSource`]) or of a capture,
//! streamed in place ([`CaptureSource`]), validated and routed by stock locate (market-wide
//! messages, locate 0, to every shard).

use super::event::{Event, BODY};
use super::gap::{BookGap, DamageScan, DamagedStock};
use super::sizing::FeedCounts;
use super::JobError;
use crate::book::BookConfig;
use crate::capture::{
    walk_all, CaptureStream, ExtractError, ExtractOptions, Lost, Origin, PlacedSink, Positions,
    Release, Walked,
};
use crate::ckpt::{CapturePos, CkptError};
use crate::engine::{Route, Source};
use crate::feed::Frames;
use crate::inspect::InspectError;
use crate::itch::{decode, DecodeError, DecodeErrorKind, Message};
use crate::mold::Delivered;
use std::sync::Arc;

/// Which part of the feed to send, and how strictly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeedOptions {
    /// Stop before the first message stamped after this (ns since midnight).
    pub until: Option<u64>,
    /// Count and skip known types with a wrong length instead of stopping.
    pub lenient: bool,
}

/// A BinaryFILE image as an engine source.
#[derive(Debug)]
pub struct ItchSource<'a> {
    frames: Frames<'a>,
    body: &'a [u8],
    ts: u64,
    locate: u16,
    lenient: bool,
    /// Frames of a type ITCH 5.0 does not define: counted and skipped.
    pub skipped_unknown: u64,
    /// Known types with a wrong length, counted and skipped (lenient mode only).
    pub skipped_bad_lengths: u64,
    /// Where the feed's first unfilled gap is (a capture's), for the alerts' `book_gap`.
    pub(super) book_gap: Option<Arc<BookGap>>,
    /// Byte offset of the current message's frame.
    offset: u64,
}

impl<'a> ItchSource<'a> {
    /// The messages of `buf`; with `lenient`, known types of a wrong length are skipped.
    pub fn new(buf: &'a [u8], lenient: bool) -> ItchSource<'a> {
        ItchSource {
            frames: Frames::new(buf),
            body: &[],
            ts: 0,
            locate: 0,
            lenient,
            skipped_unknown: 0,
            skipped_bad_lengths: 0,
            book_gap: None,
            offset: 0,
        }
    }

    /// The messages of `buf` from a checkpoint's position on (its offset and counts).
    ///
    /// # Errors
    /// The offset is past the end of `buf`.
    pub fn resume(
        buf: &'a [u8],
        lenient: bool,
        at: &super::ckpt::SourcePos,
    ) -> Result<ItchSource<'a>, crate::ckpt::CkptError> {
        if at.capture.is_some() {
            return Err(crate::ckpt::CkptError::Corrupt {
                path: "reader.bin".into(),
                why: "a capture's position, for a BinaryFILE".into(),
            });
        }
        let Some(rest) = buf.get(at.offset as usize..) else {
            return Err(crate::ckpt::CkptError::Corrupt {
                path: "reader.bin".into(),
                why: format!("offset {} past the feed's {} bytes", at.offset, buf.len()),
            });
        };
        let mut s = ItchSource::new(buf, lenient);
        s.frames = Frames::with_base(rest, at.offset);
        s.skipped_unknown = at.skipped_unknown;
        s.skipped_bad_lengths = at.skipped_bad_lengths;
        Ok(s)
    }

    /// The same source, its first unfilled gap at feed position `gap` (if any).
    pub fn with_book_gap(mut self, gap: Option<u32>) -> ItchSource<'a> {
        self.book_gap = gap.map(|p| Arc::new(BookGap::at(p)));
        self
    }
}

/// What the engine does with one message.
enum Verdict<'m> {
    /// Takes it.
    Take(Message<'m>),
    /// Skips and counts a type ITCH 5.0 does not define.
    Unknown,
    /// Skips and counts a known type of a wrong length (lenient only).
    BadLength,
    /// Stops the feed.
    Stop(DecodeError),
}

/// The verdict on `body` (at `offset`, for the error), under `lenient`.
#[inline]
fn verdict(body: &[u8], offset: u64, lenient: bool) -> Verdict<'_> {
    match decode(body, offset) {
        Ok(m) => Verdict::Take(m),
        Err(e) if matches!(e.kind, DecodeErrorKind::UnknownType(_)) => Verdict::Unknown,
        Err(_) if lenient => Verdict::BadLength,
        Err(e) => Verdict::Stop(e),
    }
}

impl Source for ItchSource<'_> {
    type Event = Event;
    type Error = InspectError;

    #[inline]
    fn advance(&mut self) -> Option<Result<(), InspectError>> {
        loop {
            let frame = match self.frames.next()? {
                Ok(f) => f,
                Err(e) => return Some(Err(e.into())),
            };
            match verdict(frame.body, frame.offset, self.lenient) {
                Verdict::Take(m) => {
                    self.ts = m.timestamp();
                    self.locate = m.stock_locate();
                    self.body = frame.body;
                    self.offset = frame.offset;
                    return Some(Ok(()));
                }
                Verdict::Unknown => self.skipped_unknown += 1,
                Verdict::BadLength => self.skipped_bad_lengths += 1,
                Verdict::Stop(e) => return Some(Err(e.into())),
            }
        }
    }

    #[inline(always)]
    fn time(&self) -> u64 {
        self.ts
    }

    #[inline(always)]
    fn route(&self, shards: usize) -> Route {
        super::route_of(self.locate, shards)
    }

    #[inline(always)]
    fn write(&self, slot: &mut Event) {
        write_body(self.body, slot);
    }

    fn checkpoint(&self) -> Vec<u8> {
        // The counts include nothing of the current message: it is the next to send.
        let pos = super::ckpt::SourcePos {
            offset: self.offset,
            skipped_unknown: self.skipped_unknown,
            skipped_bad_lengths: self.skipped_bad_lengths,
            capture: None,
        };
        crate::ckpt::encode(&pos).unwrap_or_default()
    }
}

/// A message's bytes into a ring slot.
#[inline(always)]
fn write_body(body: &[u8], slot: &mut Event) {
    let n = body.len().min(BODY);
    slot.body[..n].copy_from_slice(&body[..n]);
    slot.body[n..].fill(0);
}

/// A capture to stream, and what a first pass over it found: the tables' sizes, the gaps
/// placed in the feed, the counters, and the options (A/B lines found).
#[derive(Debug)]
pub struct CaptureScan<'a> {
    /// The capture's bytes.
    pub buf: &'a [u8],
    /// Told the bytes each pass has read past (a mapped file's, released).
    pub release: Option<Release<'a>>,
    /// What each shard can hold at most (as [`FeedCounts::of`] counts the extracted image).
    pub counts: FeedCounts,
    /// Every range given up, placed in the feed.
    pub lost: Vec<Lost>,
    /// What the layers below counted.
    pub walked: Walked,
    /// The options to stream with.
    pub opts: ExtractOptions,
}

impl<'a> CaptureScan<'a> {
    /// One pass over the capture `buf` for `shards` shards: nothing is copied; the bytes read
    /// past are told to `release`.
    ///
    /// # Errors
    /// As [`crate::capture::extract`].
    pub fn of(
        buf: &'a [u8],
        opts: &ExtractOptions,
        shards: usize,
        release: Option<Release<'a>>,
    ) -> Result<Self, ExtractError> {
        let (walk, scan) = walk_all(buf, opts, release, || Scan {
            counts: FeedCounts::zero(shards),
            positions: Positions::default(),
        })?;
        Ok(CaptureScan {
            buf,
            release,
            counts: scan.counts,
            lost: scan.positions.lost,
            walked: walk.summary()?,
            opts: walk.options().clone(),
        })
    }

    /// The capture's messages, streamed again in place.
    ///
    /// # Errors
    /// Not a capture (the first pass read it: never).
    pub fn stream(&self) -> Result<CaptureStream<'a>, ExtractError> {
        CaptureStream::new(self.buf, &self.opts, self.release)
    }

    /// The feed position of the first gap (see [`Lost::position`]), `None` when nothing was
    /// lost; clamped to `u32::MAX`, where the engine's numbering wraps.
    pub fn first_gap(&self) -> Option<u32> {
        let p = self.lost.iter().map(|l| l.position).min()?;
        Some(u32::try_from(p).unwrap_or(u32::MAX))
    }

    /// [`DamageScan`] over the capture's messages, streamed again: the stocks with references
    /// to unknown orders from feed position `from` on, books of `cfg`'s capacities.
    ///
    /// # Errors
    /// A malformed capture (the first pass read it: never).
    pub fn damaged_stocks(
        &self,
        cfg: BookConfig,
        from: u64,
    ) -> Result<Vec<DamagedStock>, ExtractError> {
        let mut damage = DamageScan::new(cfg, from);
        let mut stream = self.stream()?;
        while let Some(r) = stream.advance() {
            r?;
            damage.take_bytes(stream.message());
        }
        Ok(damage.finish())
    }
}

/// The first pass's sink.
struct Scan {
    counts: FeedCounts,
    positions: Positions,
}

impl PlacedSink for Scan {
    fn message(&mut self, m: Delivered<'_>, _origin: Origin) {
        self.counts.count(m.bytes);
        self.positions.message(m.bytes);
    }

    fn lost(&mut self, stream: u32, first: u64, last: u64) {
        self.positions.lost(stream, first, last);
    }
}

/// A capture's messages as an engine source, streamed in place ([`CaptureStream`]): decode
/// errors name the message's capture byte offset ([`crate::capture::place_of`] finds its
/// packet).
#[derive(Debug)]
pub struct CaptureSource<'a> {
    stream: CaptureStream<'a>,
    ts: u64,
    locate: u16,
    lenient: bool,
    /// Frames of a type ITCH 5.0 does not define: counted and skipped.
    pub skipped_unknown: u64,
    /// Known types with a wrong length, counted and skipped (lenient mode only).
    pub skipped_bad_lengths: u64,
    book_gap: Option<Arc<BookGap>>,
    /// Messages the stream handed out, the current one included.
    delivered: u64,
    /// After a resume: where the first message must be (the checkpoint's next message, and
    /// its byte offset).
    expect: Option<(CapturePos, u64)>,
}

impl<'a> CaptureSource<'a> {
    /// The messages of the capture as `scan` found them, its first gap marked for the alerts'
    /// `book_gap`; with `lenient`, known types of a wrong length are skipped.
    ///
    /// # Errors
    /// Not a capture.
    pub fn new(scan: &CaptureScan<'a>, lenient: bool) -> Result<CaptureSource<'a>, ExtractError> {
        Ok(CaptureSource {
            stream: scan.stream()?,
            ts: 0,
            locate: 0,
            lenient,
            skipped_unknown: 0,
            skipped_bad_lengths: 0,
            book_gap: scan.first_gap().map(|p| Arc::new(BookGap::at(p))),
            delivered: 0,
            expect: None,
        })
    }

    /// The messages of the capture from a checkpoint's position on: the stream is walked
    /// again (packets and arbiter only) past the messages handed out before the cut, and the
    /// next one must be the checkpoint's.
    ///
    /// # Errors
    /// Not a capture's position; the capture ends before it, or is malformed.
    pub fn resume(
        scan: &CaptureScan<'a>,
        lenient: bool,
        at: &super::ckpt::SourcePos,
    ) -> Result<CaptureSource<'a>, JobError> {
        let corrupt = |why: String| {
            JobError::Checkpoint(CkptError::Corrupt {
                path: "reader.bin".into(),
                why,
            })
        };
        let Some(pos) = at.capture else {
            return Err(corrupt("a BinaryFILE's position, for a capture".into()));
        };
        let mut s = CaptureSource::new(scan, lenient)?;
        while s.delivered < pos.delivered {
            match s.stream.advance() {
                Some(r) => r?,
                None => {
                    return Err(corrupt(format!(
                        "the capture ends after {} messages, before the checkpoint's {}",
                        s.delivered, pos.delivered
                    )))
                }
            }
            s.delivered += 1;
        }
        s.skipped_unknown = at.skipped_unknown;
        s.skipped_bad_lengths = at.skipped_bad_lengths;
        s.expect = Some((pos, at.offset));
        Ok(s)
    }

    /// Where the stream stands: the current message's sequence and packet, and the messages
    /// before it.
    fn position(&self) -> CapturePos {
        let (sequence, packet) = self
            .stream
            .place()
            .map_or((0, 0), |(o, i)| (o.first + u64::from(i), o.packet));
        CapturePos {
            delivered: self.delivered.saturating_sub(1),
            sequence,
            packet,
        }
    }

    /// After a resume, the first message is the checkpoint's next one.
    fn check_resumed(&mut self) -> Result<(), JobError> {
        let Some(want) = self.expect.take() else {
            return Ok(());
        };
        let got = (self.position(), self.stream.offset());
        if got != want {
            return Err(JobError::Checkpoint(CkptError::Corrupt {
                path: "reader.bin".into(),
                why: format!(
                    "the capture's next message is sequence {} in the packet at byte {}, the checkpoint's is sequence {} at byte {}",
                    got.0.sequence, got.0.packet, want.0.sequence, want.0.packet
                ),
            }));
        }
        Ok(())
    }

    /// Messages copied: held in a gap after their packet was forgotten.
    pub fn copied(&self) -> u64 {
        self.stream.copied()
    }
}

impl Source for CaptureSource<'_> {
    type Event = Event;
    type Error = JobError;

    #[inline]
    fn advance(&mut self) -> Option<Result<(), JobError>> {
        loop {
            if let Err(e) = self.stream.advance()? {
                return Some(Err(e.into()));
            }
            self.delivered += 1;
            if self.expect.is_some() {
                if let Err(e) = self.check_resumed() {
                    return Some(Err(e));
                }
            }
            match verdict(self.stream.message(), self.stream.offset(), self.lenient) {
                Verdict::Take(m) => {
                    self.ts = m.timestamp();
                    self.locate = m.stock_locate();
                    return Some(Ok(()));
                }
                Verdict::Unknown => self.skipped_unknown += 1,
                Verdict::BadLength => self.skipped_bad_lengths += 1,
                Verdict::Stop(e) => return Some(Err(InspectError::from(e).into())),
            }
        }
    }

    #[inline(always)]
    fn time(&self) -> u64 {
        self.ts
    }

    #[inline(always)]
    fn route(&self, shards: usize) -> Route {
        super::route_of(self.locate, shards)
    }

    #[inline(always)]
    fn write(&self, slot: &mut Event) {
        write_body(self.stream.message(), slot);
    }

    fn checkpoint(&self) -> Vec<u8> {
        // The current message is the next to send: the counts include nothing of it.
        let pos = super::ckpt::SourcePos {
            offset: self.stream.offset(),
            skipped_unknown: self.skipped_unknown,
            skipped_bad_lengths: self.skipped_bad_lengths,
            capture: Some(self.position()),
        };
        crate::ckpt::encode(&pos).unwrap_or_default()
    }
}

impl CaptureSource<'_> {
    /// Where the capture's first unfilled gap is, for the alerts' `book_gap`.
    pub(super) fn book_gap(&self) -> Option<Arc<BookGap>> {
        self.book_gap.clone()
    }
}

/// Every message of the capture `scan` found that the engine takes, streamed in place, in feed
/// order, to `f` until it returns false (e.g. the single-threaded `surveil`); the messages
/// skipped are counted as [`CaptureSource`] counts them: (unknown types, bad lengths).
///
/// # Errors
/// A malformed capture; a message that does not decode (not skippable under `lenient`), naming
/// its capture byte offset.
pub fn for_each_capture_message(
    scan: &CaptureScan<'_>,
    lenient: bool,
    mut f: impl FnMut(&Message<'_>) -> bool,
) -> Result<(u64, u64), JobError> {
    let mut stream = scan.stream()?;
    let (mut unknown, mut bad_lengths) = (0, 0);
    while let Some(r) = stream.advance() {
        r?;
        match verdict(stream.message(), stream.offset(), lenient) {
            Verdict::Take(m) => {
                if !f(&m) {
                    break;
                }
            }
            Verdict::Unknown => unknown += 1,
            Verdict::BadLength => bad_lengths += 1,
            Verdict::Stop(e) => return Err(InspectError::from(e).into()),
        }
    }
    Ok((unknown, bad_lengths))
}
