//! A capture's MoldUDP64 messages as one in-memory ITCH 5.0 BinaryFILE image: the reference
//! the in-place reads ([`super::stream`], [`super::messages`]) are tested against, and what
//! `bench`'s kernels that need random access read. The walk itself ([`Walk`], [`walk_all`]) is
//! what every read of a capture goes through.
//!
//! ```text
//!  capture bytes ──Datagrams──▶ Arbiter (channel/session filters, A/B lines, gaps, duplicates)
//!        ──▶ messages in sequence order ──▶ image: u16 BE length + message, …
//!                                      └──▶ map: image offset → capture offset of the packet
//! ```
//! The image costs one copy of the ITCH bytes (the BinaryFILE path reads the mapped file in
//! place). The map has one entry per run of consecutive messages from one packet, so a decode
//! error at an image offset can be reported at the capture byte offset of its packet
//! ([`Extracted::place`]). Messages given up in a gap are listed in [`Extracted::lost`], exactly.

use super::net::NetCounts;
use super::read::{CaptureError, Datagrams};
use crate::feed::MappedFile;
use crate::itch::decode;
use crate::mold::packet::HEADER_LEN;
use crate::mold::{
    self, Arbiter, ArbiterConfig, Delivered, MoldReport, Outcome, Packet, PacketKind, Session,
    Sink, StreamConfig,
};
use std::collections::hash_map::DefaultHasher;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::net::SocketAddrV4;
use thiserror::Error;

/// Packets remembered to find where a message held back in a gap came from.
const RECENT: usize = 1 << 14;
/// Channels and sessions remembered for the error that says what the capture holds.
const SEEN: usize = 32;

/// What to take from the capture.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// `--channel GROUP:PORT`: only these destinations (empty: every channel).
    pub channels: Vec<SocketAddrV4>,
    /// `--session NAME`: only this session.
    pub session: Option<Session>,
    /// A and B lines of one feed, merged by sequence.
    pub ab: Vec<(SocketAddrV4, SocketAddrV4)>,
    /// Also merge, as A and B lines, any two channels that carry the same session (and no
    /// other channel does) and the same packets: when a session comes on a second channel, a
    /// pass over the packet headers finds the pairs and the capture is read again.
    pub pair_lines: bool,
    /// Each stream's reorder window and gap list.
    pub stream: StreamConfig,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            channels: Vec::new(),
            session: None,
            ab: Vec::new(),
            pair_lines: true,
            stream: StreamConfig::default(),
        }
    }
}

/// Why a capture gave no image.
#[derive(Debug, Error)]
pub enum ExtractError {
    /// The capture itself is malformed (the error names the byte offset).
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// Not one MoldUDP64 packet: what was found instead.
    #[error("no MoldUDP64 packets in this capture; it holds {found}")]
    NoMold {
        /// The packets found, by protocol and port.
        found: String,
    },
    /// `--channel` named destinations that carry no MoldUDP64.
    #[error("--channel {wanted}: no MoldUDP64 packets to that channel; the capture's MoldUDP64 channels are {seen}")]
    NoChannel {
        /// The channels asked for.
        wanted: String,
        /// The channels that carry MoldUDP64.
        seen: String,
    },
    /// `--session` named a session the channels do not carry.
    #[error("--session {wanted}: no packets of that session; the capture's sessions are {seen}")]
    NoSession {
        /// The session asked for.
        wanted: String,
        /// The sessions seen.
        seen: String,
    },
}

/// A run of consecutive image messages that came from one packet, in 16 bytes (a feed may
/// carry one message per packet): the image offset, and the capture offset shifted left by 16
/// with the message index below it — a mapped file is below 2^47 bytes (the address space), and
/// a MoldUDP64 packet holds fewer than 2^16 messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    image: u64,
    packed: u64,
}

impl Span {
    /// The run at `image` from message `message` of the packet at `capture`.
    pub fn new(image: u64, capture: u64, message: u16) -> Span {
        debug_assert!(capture < 1 << 48);
        Span {
            image,
            packed: capture << 16 | u64::from(message),
        }
    }

    /// Image offset of the run's first length prefix.
    pub fn image(&self) -> u64 {
        self.image
    }

    /// Capture byte offset of the packet's record (pcap) or block (pcapng).
    pub fn capture(&self) -> u64 {
        self.packed >> 16
    }

    /// Index in its packet of the run's first message.
    pub fn message(&self) -> u16 {
        self.packed as u16
    }
}

/// Where an image offset came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// Capture byte offset of the packet's record or block.
    pub packet: u64,
    /// Index of the message in the packet (0-based).
    pub message: u32,
}

/// Messages `first..=last` of stream `stream` given up: neither line carried them. A live
/// feed's lost ranges are the same (`pipeline::LiveReport::lost`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Lost {
    /// The stream (`MoldReport::sessions[..].stream`).
    pub stream: u32,
    /// First missing sequence.
    pub first: u64,
    /// Last missing sequence.
    pub last: u64,
    /// The feed position (engine `seq`) of the first message after the gap: the count of
    /// messages handed to the engine before it. Messages the engine skips (unknown types, or
    /// bad lengths with --lenient) are not counted; without --lenient a bad length ends the run
    /// there, so the positions after it are never used.
    pub position: u64,
}

/// A capture's messages as a BinaryFILE image, with what the layers below counted.
#[derive(Debug)]
pub struct Extracted {
    /// The messages in sequence order (per stream), each behind its u16 BE length.
    pub image: Vec<u8>,
    /// What the MoldUDP64 layer saw.
    pub report: MoldReport,
    /// What the frames held besides UDP/IPv4 datagrams.
    pub net: NetCounts,
    /// Packets (records, packet blocks) in the capture.
    pub packets: u64,
    /// Image offset → capture offset, sorted by image offset.
    pub map: Vec<Span>,
    /// Every range of messages given up, in the order it was given up.
    pub lost: Vec<Lost>,
    /// The options read with, A/B lines found included (to stream the capture the same way).
    pub options: ExtractOptions,
}

impl Extracted {
    /// Where the message at (or containing) image offset `image_offset` came from.
    pub fn place(&self, image_offset: u64) -> Option<Place> {
        let i = self.map.partition_point(|s| s.image <= image_offset);
        let span = self.map.get(i.checked_sub(1)?)?;
        let end = self.map.get(i).map_or(self.image.len() as u64, |s| s.image);
        let (mut pos, mut message) = (span.image, u32::from(span.message()));
        // Step over the run's messages that end at or before the offset.
        while let Some(len) = self.frame_len(pos) {
            let next = pos + 2 + len;
            if next > image_offset || next >= end {
                break;
            }
            (pos, message) = (next, message + 1);
        }
        Some(Place {
            packet: span.capture(),
            message,
        })
    }

    fn frame_len(&self, pos: u64) -> Option<u64> {
        let p = usize::try_from(pos).ok()?;
        let b = self.image.get(p..p + 2)?;
        Some(u64::from(u16::from_be_bytes([b[0], b[1]])))
    }

    /// The feed position of the first gap (see [`Lost::position`]), `None` when nothing was
    /// lost; a position past `u32::MAX` (where the engine's numbering wraps) is clamped.
    pub fn first_gap(&self) -> Option<u32> {
        let p = self.lost.iter().map(|l| l.position).min()?;
        Some(u32::try_from(p).unwrap_or(u32::MAX))
    }

    /// Messages given up in stream `stream`.
    pub fn lost_in(&self, stream: u32) -> impl Iterator<Item = &Lost> {
        self.lost.iter().filter(move |l| l.stream == stream)
    }
}

/// The packet a delivered message came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// Capture byte offset of the packet's record (pcap) or block (pcapng).
    pub packet: u64,
    /// Capture byte offset of the packet's MoldUDP64 bytes (its UDP payload), and their length.
    pub payload: (usize, usize),
    /// The packet's first sequence number.
    pub first: u64,
}

impl Origin {
    /// Index in the packet of the message of sequence `seq` (a packet holds at most 0xFFFE
    /// messages: it fits).
    pub fn index(&self, seq: u64) -> u16 {
        u16::try_from(seq.saturating_sub(self.first)).unwrap_or(u16::MAX)
    }
}

/// Where a capture's messages go, each with the packet it came in.
pub trait PlacedSink {
    /// The next message in sequence order, from the packet `origin` (for a message held in a
    /// gap whose packet is no longer remembered, the packet being read).
    fn message(&mut self, m: Delivered<'_>, origin: Origin);
    /// Messages `first..=last` of stream `stream` are given up.
    fn lost(&mut self, stream: u32, first: u64, last: u64);
}

/// Feed positions: messages counted as the engine takes them, and each range given up placed
/// before the next (see [`Lost::position`]).
#[derive(Debug, Default)]
pub struct Positions {
    /// Messages that decode (the engine takes them): the feed position of the next one.
    pub handed: u64,
    /// Every range given up, in the order it was given up.
    pub lost: Vec<Lost>,
}

impl Positions {
    /// The next message delivered.
    pub fn message(&mut self, bytes: &[u8]) {
        self.handed += u64::from(decode(bytes, 0).is_ok());
    }

    /// Messages `first..=last` of `stream` given up.
    pub fn lost(&mut self, stream: u32, first: u64, last: u64) {
        self.lost.push(Lost {
            stream,
            first,
            last,
            position: self.handed,
        });
    }
}

/// One packet taken into a stream, remembered for the messages it leaves held in a gap.
#[derive(Debug, Clone, Copy)]
struct Recent {
    stream: u32,
    next: u64,
    origin: Origin,
}

/// The packet being read, and the last [`RECENT`] taken into a stream.
#[derive(Debug)]
struct Origins {
    current: Origin,
    recent: VecDeque<Recent>,
}

impl Origins {
    fn remember(&mut self, r: Recent) {
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(r);
    }

    /// The packet that brought message `seq` of `stream` (the current one if not remembered).
    fn of(&self, stream: u32, seq: u64) -> Origin {
        self.recent
            .iter()
            .rev()
            .find(|r| r.stream == stream && (r.origin.first..r.next).contains(&seq))
            .map_or(self.current, |r| r.origin)
    }
}

/// The arbiter's sink during a [`Walk`]: each message placed, then handed on.
struct Placing<'s, S> {
    origins: &'s Origins,
    sink: &'s mut S,
    /// Messages of the packet being read delivered as it was read (not held).
    fresh: u32,
}

impl<'s, S> Placing<'s, S> {
    fn new(origins: &'s Origins, sink: &'s mut S) -> Placing<'s, S> {
        Placing {
            origins,
            sink,
            fresh: 0,
        }
    }
}

impl<S: PlacedSink> Sink for Placing<'_, S> {
    fn message(&mut self, m: Delivered<'_>) {
        let origin = match m.held {
            true => self.origins.of(m.stream, m.seq),
            false => {
                self.fresh += 1;
                self.origins.current
            }
        };
        self.sink.message(m, origin);
    }

    fn lost(&mut self, stream: u32, first: u64, last: u64) {
        self.sink.lost(stream, first, last);
    }
}

/// The sink of [`extract`]: builds the image, its map and the lost list.
struct Builder {
    image: Vec<u8>,
    map: Vec<Span>,
    positions: Positions,
    /// Where the next message would continue the last span: (capture, message index).
    follows: Option<(u64, u16)>,
}

impl Builder {
    fn new(capacity: usize) -> Builder {
        Builder {
            image: Vec::with_capacity(capacity),
            // About one span per packet (more only around gaps and duplicates), and a packet
            // record takes more than 64 bytes: rarely a reallocation (untouched pages cost no
            // memory).
            map: Vec::with_capacity(capacity / 64),
            positions: Positions::default(),
            follows: None,
        }
    }
}

impl PlacedSink for Builder {
    fn message(&mut self, m: Delivered<'_>, origin: Origin) {
        let (capture, message) = (origin.packet, origin.index(m.seq));
        if self.follows != Some((capture, message)) {
            let image = self.image.len() as u64;
            self.map.push(Span::new(image, capture, message));
        }
        self.follows = Some((capture, message.saturating_add(1)));
        self.image
            .extend_from_slice(&(m.bytes.len() as u16).to_be_bytes());
        self.image.extend_from_slice(m.bytes);
        self.positions.message(m.bytes);
    }

    fn lost(&mut self, stream: u32, first: u64, last: u64) {
        self.positions.lost(stream, first, last);
    }
}

/// The MoldUDP64 channels and sessions in the capture (whatever the filters), for errors; and
/// the first channel each session came on, to notice a second line.
#[derive(Debug, Default)]
struct Seen {
    channels: Vec<SocketAddrV4>,
    sessions: Vec<Session>,
    first_line: Vec<(Session, SocketAddrV4)>,
    /// The last channel and session noted that asked for nothing: the same again asks for
    /// nothing (most packets follow one of their own line).
    last: Option<(SocketAddrV4, Session)>,
}

impl Seen {
    /// Notes a MoldUDP64 packet; true when its session came on another channel before, both
    /// taken by the filters and not yet paired (A/B lines, to be looked for).
    fn note(&mut self, dst: SocketAddrV4, p: &Packet<'_>, opts: &ExtractOptions) -> bool {
        let key = Some((dst, p.session()));
        if self.last == key {
            return false;
        }
        let second_line = self.note_new(dst, p, opts);
        if !second_line {
            self.last = key;
        }
        second_line
    }

    fn note_new(&mut self, dst: SocketAddrV4, p: &Packet<'_>, opts: &ExtractOptions) -> bool {
        if self.channels.len() < SEEN && !self.channels.contains(&dst) {
            self.channels.push(dst);
        }
        let s = p.session();
        if self.sessions.len() < SEEN && !self.sessions.contains(&s) {
            self.sessions.push(s);
        }
        if !opts.pair_lines || !unpaired(opts, &dst) {
            return false;
        }
        match self.first_line.iter().find(|(x, _)| *x == s) {
            Some((_, first)) => *first != dst,
            None => {
                if self.first_line.len() < SEEN {
                    self.first_line.push((s, dst));
                }
                false
            }
        }
    }
}

/// A channel the filters take and no A/B pair names yet.
fn unpaired(opts: &ExtractOptions, c: &SocketAddrV4) -> bool {
    (opts.channels.is_empty() || opts.channels.contains(c))
        && !opts.ab.iter().any(|(a, b)| a == c || b == c)
}

/// The MoldUDP64 messages of the capture `buf` as a BinaryFILE image.
///
/// # Errors
/// A malformed capture (naming the byte offset), a capture without MoldUDP64 (saying what it
/// holds), or filters that match nothing (naming what is there).
pub fn extract(buf: &[u8], opts: &ExtractOptions) -> Result<Extracted, ExtractError> {
    let (walk, b) = walk_all(buf, opts, None, || Builder::new(buf.len()))?;
    let w = walk.summary()?;
    Ok(Extracted {
        image: b.image,
        report: w.report,
        net: w.net,
        packets: w.packets,
        map: b.map,
        lost: b.positions.lost,
        options: walk.options().clone(),
    })
}

/// Reads the whole capture `buf` into a sink made by `sink` (the bytes read told to `release`);
/// when a session came on a second channel, finds the A/B lines and reads it again into a new
/// sink (a capture of one channel is read once). The finished walk (its counters, the options
/// it read with) and the sink.
///
/// # Errors
/// A malformed capture, naming the byte offset.
pub fn walk_all<'a, S: PlacedSink>(
    buf: &'a [u8],
    opts: &ExtractOptions,
    release: Option<Release<'a>>,
    mut sink: impl FnMut() -> S,
) -> Result<(Walk<'a>, S), ExtractError> {
    let mut o = opts.clone();
    loop {
        let mut walk = Walk::new(buf, &o)?.releasing(release);
        let mut s = sink();
        loop {
            match walk.step(&mut s)? {
                Step::Taken => {}
                Step::End => return Ok((walk, s)),
                Step::Restart => break,
            }
        }
        o.ab.extend(same_session_lines(buf, &o));
        o.pair_lines = false;
    }
}

/// What a walk tells the capture bytes it has read past.
pub trait Releaser: Sync {
    /// The walk has read past `range` (it may read it again: releasing must lose nothing).
    fn release(&self, range: std::ops::Range<usize>);
}

/// A mapped file's pages leave the resident set ([`MappedFile::release`]), so memory does not
/// grow with the capture.
impl Releaser for MappedFile {
    fn release(&self, range: std::ops::Range<usize>) {
        MappedFile::release(self, range);
    }
}

/// Where a walk tells the bytes it has read past (see [`Releaser`]).
#[derive(Clone, Copy)]
pub struct Release<'a>(pub &'a dyn Releaser);

impl std::fmt::Debug for Release<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Release")
    }
}

/// Bytes read between two releases.
const RELEASE_EVERY: usize = 32 << 20;
/// Bytes kept behind the read position when releasing: the packets a held message is found
/// again in are recent (one further back is read again from the page cache).
const RELEASE_KEEP: usize = 8 << 20;

/// What one [`Walk::step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// One datagram read (its messages, if any, delivered).
    Taken,
    /// The end: every hole given up, every held message delivered.
    End,
    /// A session came on a second channel (with `pair_lines`): read again with the A/B lines.
    Restart,
}

/// What the layers below counted over a whole capture.
#[derive(Debug, Clone)]
pub struct Walked {
    /// What the MoldUDP64 layer saw.
    pub report: MoldReport,
    /// What the frames held besides UDP/IPv4 datagrams.
    pub net: NetCounts,
    /// Packets (records, packet blocks) in the capture.
    pub packets: u64,
}

/// One pass over a capture, a datagram at a time: the datagrams through the arbiter (filters,
/// A/B lines, gaps, duplicates), the messages in sequence order to a [`PlacedSink`].
#[derive(Debug)]
pub struct Walk<'a> {
    buf: &'a [u8],
    datagrams: Datagrams<'a>,
    arbiter: Arbiter,
    opts: ExtractOptions,
    seen: Seen,
    last_ts: u64,
    origins: Origins,
    ended: bool,
    release: Option<Release<'a>>,
    /// Bytes released so far.
    released: usize,
}

impl<'a> Walk<'a> {
    /// A walk of the capture `buf`.
    ///
    /// # Errors
    /// Not a capture, or a truncated file header.
    pub fn new(buf: &'a [u8], opts: &ExtractOptions) -> Result<Walk<'a>, ExtractError> {
        let arbiter = Arbiter::new(ArbiterConfig {
            channels: opts.channels.clone(),
            ab: opts.ab.clone(),
            session: opts.session,
            stream: opts.stream,
            ..ArbiterConfig::default()
        });
        let none = Origin {
            packet: 0,
            payload: (0, 0),
            first: 0,
        };
        Ok(Walk {
            buf,
            datagrams: Datagrams::new(buf)?,
            arbiter,
            opts: opts.clone(),
            seen: Seen::default(),
            last_ts: 0,
            origins: Origins {
                current: none,
                recent: VecDeque::with_capacity(RECENT),
            },
            ended: false,
            release: None,
            released: 0,
        })
    }

    /// The walk, telling `release` (if any) the bytes it has read past.
    pub fn releasing(self, release: Option<Release<'a>>) -> Walk<'a> {
        Walk { release, ..self }
    }

    /// Releases what lies far enough behind the read position.
    fn release_behind(&mut self) {
        let Some(Release(release)) = self.release else {
            return;
        };
        let end = self.datagrams.position().saturating_sub(RELEASE_KEEP);
        if end >= self.released + RELEASE_EVERY {
            release.release(self.released..end);
            self.released = end;
        }
    }

    /// The options read with (A/B lines found by [`walk_all`] included).
    pub fn options(&self) -> &ExtractOptions {
        &self.opts
    }

    /// Reads the next datagram, delivering to `sink` what is now in order; at the end, gives up
    /// every hole and delivers what was held.
    ///
    /// # Errors
    /// A malformed capture, naming the byte offset.
    pub fn step<S: PlacedSink>(&mut self, sink: &mut S) -> Result<Step, ExtractError> {
        let Some(d) = self.datagrams.next() else {
            if !self.ended {
                self.ended = true;
                let mut placing = Placing::new(&self.origins, sink);
                self.arbiter.finish(self.last_ts, &mut placing);
            }
            return Ok(Step::End);
        };
        let d = d?;
        self.release_behind();
        self.last_ts = self.last_ts.max(d.ts_ns);
        let md = mold::Datagram {
            ts_ns: d.ts_ns,
            src: d.src,
            dst: d.dst,
            payload: d.payload,
            offset: d.offset,
        };
        let Ok(p) = Packet::parse(d.payload, d.offset) else {
            self.arbiter
                .push(&md, &mut Placing::new(&self.origins, sink));
            return Ok(Step::Taken);
        };
        if self.seen.note(d.dst, &p, &self.opts) {
            return Ok(Step::Restart);
        }
        // A payload is a slice of the capture: its offset is the pointers' distance.
        let at = (d.payload.as_ptr() as usize).wrapping_sub(self.buf.as_ptr() as usize);
        let origin = Origin {
            packet: d.offset,
            payload: (at, d.payload.len()),
            first: p.sequence(),
        };
        self.origins.current = origin;
        let mut placing = Placing::new(&self.origins, sink);
        let outcome = self.arbiter.push(&md, &mut placing);
        // A packet whose messages were all delivered as it was read has none held to find.
        let held = placing.fresh < u32::from(p.message_count());
        if let (Outcome::Taken(stream), true) = (outcome, held) {
            let next = p.next_sequence();
            self.origins.remember(Recent {
                stream,
                next,
                origin,
            });
        }
        Ok(Step::Taken)
    }

    /// What the layers counted (call it at the end).
    ///
    /// # Errors
    /// Nothing was taken: no MoldUDP64 in the capture, or filters that match none of it.
    pub fn summary(&self) -> Result<Walked, ExtractError> {
        let report = self.arbiter.report();
        let net = self.datagrams.counts();
        let packets = self.datagrams.packets();
        check_found(&report, net, packets, &self.seen, &self.opts)?;
        Ok(Walked {
            report,
            net: net.clone(),
            packets,
        })
    }
}

/// Packets per line compared to tell A/B lines from two feeds that share a session name.
const COMPARED: usize = 64;

/// One channel of a session, in the pass that looks for A/B lines.
struct Line {
    dst: SocketAddrV4,
    /// (sequence, hash of the messages) of its first data packets.
    first: Vec<(u64, u64)>,
}

impl Line {
    fn note(&mut self, p: &Packet<'_>) {
        if self.first.len() < COMPARED && matches!(p.kind(), PacketKind::Data(_)) {
            let mut h = DefaultHasher::new();
            p.bytes()[HEADER_LEN..].hash(&mut h);
            self.first.push((p.sequence(), h.finish()));
        }
    }

    /// The two lines carried the same packets where both carried one (and did, at least once).
    fn same_feed(&self, other: &Line) -> bool {
        let mut common = self
            .first
            .iter()
            .filter_map(|(seq, h)| other.first.iter().find(|o| o.0 == *seq).map(|o| o.1 == *h))
            .peekable();
        common.peek().is_some() && common.all(|same| same)
    }
}

/// Pairs of channels (in order of first appearance) that carry the same session, are the only
/// two that do among the channels `opts` takes, and carried the same packets: A and B lines of
/// one feed. A malformed capture ends the pass early (the main pass reports it).
fn same_session_lines(buf: &[u8], opts: &ExtractOptions) -> Vec<(SocketAddrV4, SocketAddrV4)> {
    let Ok(datagrams) = Datagrams::new(buf) else {
        return Vec::new();
    };
    let mut by_session: Vec<(Session, Vec<Line>)> = Vec::new();
    for d in datagrams.map_while(Result::ok) {
        let Ok(p) = Packet::parse(d.payload, d.offset) else {
            continue;
        };
        if !unpaired(opts, &d.dst) {
            continue;
        }
        let i = match by_session.iter().position(|(s, _)| *s == p.session()) {
            Some(i) => i,
            None if by_session.len() < SEEN => {
                by_session.push((p.session(), Vec::new()));
                by_session.len() - 1
            }
            None => continue,
        };
        let lines = &mut by_session[i].1;
        match lines.iter().position(|l| l.dst == d.dst) {
            Some(l) => lines[l].note(&p),
            None if lines.len() <= 2 => {
                let mut l = Line {
                    dst: d.dst,
                    first: Vec::with_capacity(COMPARED),
                };
                l.note(&p);
                lines.push(l);
            }
            None => {}
        }
    }
    pair(by_session)
}

fn pair(by_session: Vec<(Session, Vec<Line>)>) -> Vec<(SocketAddrV4, SocketAddrV4)> {
    let mut pairs: Vec<(SocketAddrV4, SocketAddrV4)> = Vec::new();
    for (_, lines) in by_session {
        let paired = |c: &SocketAddrV4| pairs.iter().any(|(a, b)| a == c || b == c);
        if let [a, b] = &lines[..] {
            if !paired(&a.dst) && !paired(&b.dst) && a.same_feed(b) {
                pairs.push((a.dst, b.dst));
            }
        }
    }
    pairs
}

/// An error when nothing was taken: no MoldUDP64 at all, or filters that match none of it.
fn check_found(
    r: &MoldReport,
    net: &NetCounts,
    packets: u64,
    seen: &Seen,
    opts: &ExtractOptions,
) -> Result<(), ExtractError> {
    if r.packets > 0 {
        return Ok(());
    }
    let list = |v: Vec<String>| v.join(", ");
    if seen.sessions.is_empty() {
        return Err(ExtractError::NoMold {
            found: found(r, net, packets),
        });
    }
    let matched =
        opts.channels.is_empty() || opts.channels.iter().any(|c| seen.channels.contains(c));
    if !matched {
        return Err(ExtractError::NoChannel {
            wanted: list(opts.channels.iter().map(|c| c.to_string()).collect()),
            seen: list(seen.channels.iter().map(|c| c.to_string()).collect()),
        });
    }
    Err(ExtractError::NoSession {
        wanted: opts.session.map(|s| s.name()).unwrap_or_default(),
        seen: list(
            seen.sessions
                .iter()
                .map(|s| format!("{:?}", s.name()))
                .collect(),
        ),
    })
}

/// What a capture without MoldUDP64 holds: packets, UDP datagrams by port, the rest by
/// Ethernet type and IP protocol.
pub fn found(r: &MoldReport, net: &NetCounts, packets: u64) -> String {
    let mut s = format!("{packets} packets, {} UDP/IPv4 datagrams", net.datagrams);
    if !r.not_mold_by_port.is_empty() {
        let ports: Vec<String> = r
            .not_mold_by_port
            .iter()
            .map(|p| format!("port {}: {}", p.port, p.datagrams))
            .collect();
        let _ = write!(s, " ({})", ports.join(", "));
    }
    if let Some(e) = &r.first_error {
        let _ = write!(s, ", none of them MoldUDP64 (the first: {e})");
    }
    for (ty, n) in &net.non_ipv4 {
        let _ = write!(s, ", {n} not IPv4 (ethertype {ty:#06x})");
    }
    for (proto, n) in &net.non_udp {
        let _ = write!(
            s,
            ", {n} IPv4 not UDP (protocol {proto}{})",
            proto_name(*proto)
        );
    }
    let other = [
        (net.fragments, "IPv4 fragments"),
        (net.malformed, "malformed frames"),
        (net.snapped, "frames cut by the snap length"),
        (net.unknown_link, "frames of an unknown link type"),
    ];
    for (n, what) in other.into_iter().filter(|(n, _)| *n > 0) {
        let _ = write!(s, ", {n} {what}");
    }
    s
}

fn proto_name(p: u8) -> &'static str {
    match p {
        1 => ": ICMP",
        2 => ": IGMP",
        6 => ": TCP",
        _ => "",
    }
}
