//! A capture's MoldUDP64 messages as one in-memory ITCH 5.0 BinaryFILE image, so that every
//! command that reads a BinaryFILE reads a capture unchanged.
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
    /// The feed position (engine `seq`) of the first message after the gap. A capture's is the
    /// count of messages in the image before it: exact when the reader skips no frame before it
    /// (unknown types, or bad lengths with --lenient, are not handed to the engine). A live
    /// feed's is the count handed to the engine when it was given up.
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

/// One packet taken into a stream, remembered for the messages it leaves held in a gap.
#[derive(Debug, Clone, Copy)]
struct Recent {
    stream: u32,
    first: u64,
    next: u64,
    capture: u64,
}

/// The sink: builds the image, its map and the lost list.
struct Builder {
    image: Vec<u8>,
    map: Vec<Span>,
    lost: Vec<Lost>,
    /// Messages in the image.
    messages: u64,
    /// The packet being pushed: capture offset and first sequence.
    current: (u64, u64),
    /// Where the next message would continue the last span: (capture, message index).
    follows: Option<(u64, u16)>,
    recent: VecDeque<Recent>,
}

impl Builder {
    fn new(capacity: usize) -> Builder {
        Builder {
            image: Vec::with_capacity(capacity),
            // About one span per packet (more only around gaps and duplicates), and a packet
            // record takes more than 64 bytes: rarely a reallocation (untouched pages cost no
            // memory).
            map: Vec::with_capacity(capacity / 64),
            lost: Vec::new(),
            messages: 0,
            current: (0, 0),
            follows: None,
            recent: VecDeque::with_capacity(RECENT),
        }
    }

    fn remember(&mut self, r: Recent) {
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(r);
    }

    /// The packet (capture offset, first sequence) that brought a message held in a gap.
    fn origin(&self, stream: u32, seq: u64) -> (u64, u64) {
        self.recent
            .iter()
            .rev()
            .find(|r| r.stream == stream && (r.first..r.next).contains(&seq))
            .map_or(self.current, |r| (r.capture, r.first))
    }
}

impl Sink for Builder {
    fn message(&mut self, m: Delivered<'_>) {
        let (capture, first) = match m.held {
            true => self.origin(m.stream, m.seq),
            false => self.current,
        };
        // A packet holds at most 0xFFFE messages: the index fits.
        let message = u16::try_from(m.seq.saturating_sub(first)).unwrap_or(u16::MAX);
        if self.follows != Some((capture, message)) {
            let image = self.image.len() as u64;
            self.map.push(Span::new(image, capture, message));
        }
        self.follows = Some((capture, message.saturating_add(1)));
        self.image
            .extend_from_slice(&(m.bytes.len() as u16).to_be_bytes());
        self.image.extend_from_slice(m.bytes);
        self.messages += 1;
    }

    fn lost(&mut self, stream: u32, first: u64, last: u64) {
        self.lost.push(Lost {
            stream,
            first,
            last,
            position: self.messages,
        });
    }
}

/// The MoldUDP64 channels and sessions in the capture (whatever the filters), for errors; and
/// the first channel each session came on, to notice a second line.
#[derive(Debug, Default)]
struct Seen {
    channels: Vec<SocketAddrV4>,
    sessions: Vec<Session>,
    first_line: Vec<(Session, SocketAddrV4)>,
}

impl Seen {
    /// Notes a MoldUDP64 packet; true when its session came on another channel before, both
    /// taken by the filters and not yet paired (A/B lines, to be looked for).
    fn note(&mut self, dst: SocketAddrV4, p: &Packet<'_>, opts: &ExtractOptions) -> bool {
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
    let mut o = opts.clone();
    loop {
        if let Some(x) = pass(buf, &o)? {
            return Ok(x);
        }
        // A session came on a second channel: find the A/B lines, then read again (a capture of
        // one channel is read once).
        o.ab.extend(same_session_lines(buf, &o));
        o.pair_lines = false;
    }
}

/// One pass over the capture; `None` when `opts.pair_lines` and a session came on two channels.
fn pass(buf: &[u8], opts: &ExtractOptions) -> Result<Option<Extracted>, ExtractError> {
    let mut datagrams = Datagrams::new(buf)?;
    let mut arbiter = Arbiter::new(ArbiterConfig {
        channels: opts.channels.clone(),
        ab: opts.ab.clone(),
        session: opts.session,
        stream: opts.stream,
        ..ArbiterConfig::default()
    });
    // The image is at most the capture's size.
    let mut b = Builder::new(buf.len());
    let mut seen = Seen::default();
    let mut last_ts = 0;
    for d in &mut datagrams {
        let d = d?;
        last_ts = last_ts.max(d.ts_ns);
        let md = mold::Datagram {
            ts_ns: d.ts_ns,
            src: d.src,
            dst: d.dst,
            payload: d.payload,
            offset: d.offset,
        };
        let Ok(p) = Packet::parse(d.payload, d.offset) else {
            arbiter.push(&md, &mut b);
            continue;
        };
        if seen.note(d.dst, &p, opts) {
            return Ok(None);
        }
        b.current = (d.offset, p.sequence());
        if let Outcome::Taken(stream) = arbiter.push(&md, &mut b) {
            let (first, next) = (p.sequence(), p.next_sequence());
            let capture = d.offset;
            b.remember(Recent {
                stream,
                first,
                next,
                capture,
            });
        }
    }
    arbiter.finish(last_ts, &mut b);
    let report = arbiter.report();
    check_found(
        &report,
        datagrams.counts(),
        datagrams.packets(),
        &seen,
        opts,
    )?;
    Ok(Some(Extracted {
        image: b.image,
        report,
        net: datagrams.counts().clone(),
        packets: datagrams.packets(),
        map: b.map,
        lost: b.lost,
    }))
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
