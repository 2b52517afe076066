//! UDP datagrams in, sessions out: channel and session filters, A/B line arbitration.
//!
//! A **feed** is one channel (destination group:port), or two channels named as the A and B
//! lines of the same feed. Each (feed, session) is one [`Stream`]: both lines' packets go into
//! it, so the first copy of a message wins and the later copy is dropped and counted as
//! *arbitrated* (on the line that brought it late) — neither a gap nor an error. A message is
//! missing from the merged stream, a gap, only when both lines missed it; each line also counts
//! the gaps in its own sequence.
//!
//! Which lines carried each message is kept for the last [`WINNER_WINDOW`] sequences; a copy
//! older than that, or of a message given up as lost, is counted as a repeat of its own line.
//! Datagrams that are not MoldUDP64 are counted by destination port, the first error kept.
//! After construction, the only allocations are a new channel's (when no `--channel` filter is
//! given) and a new session's stream, once each.

use std::net::SocketAddrV4;

use super::packet::{Packet, PacketError, PacketKind, Session};
use super::report::{ChannelReport, LineReport, LineStats, MoldReport, PortCount, SessionReport};
use super::stream::{Sink, Stream, StreamConfig};
use super::Datagram;

/// Sequences for which the winning line is remembered (a power of two).
pub const WINNER_WINDOW: usize = 4096;

/// Filters, lines and sizes.
#[derive(Debug, Clone)]
pub struct ArbiterConfig {
    /// `--channel GROUP:PORT`: take only these (and the `ab` lines); empty: every channel.
    pub channels: Vec<SocketAddrV4>,
    /// A and B lines of one feed, merged.
    pub ab: Vec<(SocketAddrV4, SocketAddrV4)>,
    /// `--session NAME`: take only this session.
    pub session: Option<Session>,
    /// Each stream's reorder window and gap list.
    pub stream: StreamConfig,
    /// Channels tracked.
    pub max_channels: usize,
    /// Streams (feed, session) tracked.
    pub max_streams: usize,
    /// Ports counted for non-MoldUDP64 datagrams.
    pub max_ports: usize,
}

impl Default for ArbiterConfig {
    fn default() -> Self {
        ArbiterConfig {
            channels: Vec::new(),
            ab: Vec::new(),
            session: None,
            stream: StreamConfig::default(),
            max_channels: 256,
            max_streams: 256,
            max_ports: 256,
        }
    }
}

/// What became of one datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Taken into stream `id`.
    Taken(u32),
    /// Not a channel asked for.
    SkippedChannel,
    /// Not the session asked for.
    SkippedSession,
    /// The stream table is full.
    SkippedStreamsFull,
    /// Not MoldUDP64.
    NotMold(PacketError),
}

#[derive(Debug, Clone, Copy)]
struct Channel {
    dst: SocketAddrV4,
    feed: u32,
    line: u8,
    datagrams: u64,
    packets: u64,
    not_mold: u64,
}

/// Identifies a stream: its feed's lines and its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamKey {
    /// Feed index (one per channel, or per A/B pair).
    pub feed: u32,
    /// Line A's channel, and line B's if the feed has two.
    pub lines: (SocketAddrV4, Option<SocketAddrV4>),
    /// Session.
    pub session: Session,
}

#[derive(Debug)]
struct Entry {
    key: StreamKey,
    stream: Stream,
    lines: [LineStats; 2],
    /// Line-next sequence per line (one past the highest it carried).
    line_next: [Option<u64>; 2],
    /// (sequence, bit mask of the lines that carried it), for the last WINNER_WINDOW fresh
    /// sequences.
    winner: Box<[(u64, u8)]>,
}

/// Datagrams in; per-session messages, in sequence order, out.
#[derive(Debug)]
pub struct Arbiter {
    cfg: ArbiterConfig,
    filtered: bool,
    channels: Vec<Channel>,
    feeds: Vec<(SocketAddrV4, Option<SocketAddrV4>)>,
    streams: Vec<Entry>,
    ports: Vec<PortCount>,
    report: MoldReport,
    first_error: Option<PacketError>,
}

impl Arbiter {
    /// An arbiter with its tables allocated.
    pub fn new(cfg: ArbiterConfig) -> Arbiter {
        let mut a = Arbiter {
            filtered: !cfg.channels.is_empty(),
            channels: Vec::with_capacity(cfg.max_channels),
            feeds: Vec::with_capacity(cfg.max_channels),
            streams: Vec::with_capacity(cfg.max_streams),
            ports: Vec::with_capacity(cfg.max_ports),
            report: MoldReport::default(),
            first_error: None,
            cfg,
        };
        for (la, lb) in a.cfg.ab.clone() {
            a.add_feed(la, Some(lb));
        }
        for c in a.cfg.channels.clone() {
            if a.channel(c).is_none() {
                a.add_feed(c, None);
            }
        }
        a
    }

    fn add_feed(&mut self, la: SocketAddrV4, lb: Option<SocketAddrV4>) -> Option<usize> {
        if self.channels.len() + 1 + usize::from(lb.is_some()) > self.cfg.max_channels {
            return None;
        }
        let feed = self.feeds.len() as u32;
        self.feeds.push((la, lb));
        let ch = |dst, line| Channel {
            dst,
            feed,
            line,
            datagrams: 0,
            packets: 0,
            not_mold: 0,
        };
        self.channels.push(ch(la, 0));
        if let Some(lb) = lb {
            self.channels.push(ch(lb, 1));
        }
        Some(self.channels.len() - 1 - usize::from(lb.is_some()))
    }

    fn channel(&self, dst: SocketAddrV4) -> Option<usize> {
        self.channels.iter().position(|c| c.dst == dst)
    }

    /// Takes one datagram; delivers what is now in order to `sink`.
    pub fn push(&mut self, d: &Datagram<'_>, sink: &mut impl Sink) -> Outcome {
        let r = &mut self.report;
        r.datagrams += 1;
        r.first_ts_ns.get_or_insert(d.ts_ns);
        r.last_ts_ns = Some(d.ts_ns);
        let known = self.channel(d.dst);
        if known.is_none() && self.filtered {
            return self.skip_channel();
        }
        if let Some(ci) = known {
            self.channels[ci].datagrams += 1;
        }
        let p = match Packet::parse(d.payload, d.offset) {
            Ok(p) => p,
            Err(e) => return self.not_mold(known, d.dst.port(), e),
        };
        // Unfiltered, a channel is tracked from its first MoldUDP64 packet (other traffic is
        // only counted by port, so it cannot fill the channel table).
        let ci = match known {
            Some(ci) => ci,
            None => match self.add_feed(d.dst, None) {
                Some(ci) => {
                    self.channels[ci].datagrams += 1;
                    ci
                }
                None => return self.skip_channel(),
            },
        };
        if self.cfg.session.is_some_and(|s| s != p.session()) {
            self.report.skipped_session += 1;
            return Outcome::SkippedSession;
        }
        let Channel { feed, line, .. } = self.channels[ci];
        let Some(si) = self.stream_of(feed, p.session()) else {
            self.report.skipped_streams_full += 1;
            return Outcome::SkippedStreamsFull;
        };
        self.channels[ci].packets += 1;
        self.report.packets += 1;
        self.streams[si].take(&p, usize::from(line), d.ts_ns, sink);
        Outcome::Taken(si as u32)
    }

    fn skip_channel(&mut self) -> Outcome {
        self.report.skipped_channel += 1;
        Outcome::SkippedChannel
    }

    fn not_mold(&mut self, ci: Option<usize>, port: u16, e: PacketError) -> Outcome {
        if let Some(ci) = ci {
            self.channels[ci].not_mold += 1;
        }
        self.report.not_mold += 1;
        self.first_error.get_or_insert_with(|| e.clone());
        match self.ports.iter().position(|p| p.port == port) {
            Some(i) => self.ports[i].datagrams += 1,
            None if self.ports.len() < self.cfg.max_ports => {
                self.ports.push(PortCount { port, datagrams: 1 })
            }
            None => self.report.not_mold_ports_overflow += 1,
        }
        Outcome::NotMold(e)
    }

    fn stream_of(&mut self, feed: u32, session: Session) -> Option<usize> {
        let found = self
            .streams
            .iter()
            .position(|e| e.key.feed == feed && e.key.session == session);
        if found.is_some() || self.streams.len() >= self.cfg.max_streams {
            return found;
        }
        let id = self.streams.len() as u32;
        let key = StreamKey {
            feed,
            lines: self.feeds[feed as usize],
            session,
        };
        self.streams.push(Entry {
            key,
            stream: Stream::new(id, self.cfg.stream),
            lines: [LineStats::default(); 2],
            line_next: [None; 2],
            winner: vec![(u64::MAX, 0); WINNER_WINDOW].into_boxed_slice(),
        });
        Some(self.streams.len() - 1)
    }

    /// Gives up holes open longer than the window's time (call while idle, live).
    pub fn expire(&mut self, now_ns: u64, sink: &mut impl Sink) {
        for e in &mut self.streams {
            e.stream.expire(now_ns, sink);
        }
    }

    /// End of input: every open hole given up, everything held delivered.
    pub fn finish(&mut self, now_ns: u64, sink: &mut impl Sink) {
        for e in &mut self.streams {
            e.stream.finish(now_ns, sink);
        }
    }

    /// Stream `id`'s key (`Delivered::stream`).
    pub fn stream_key(&self, id: u32) -> Option<StreamKey> {
        self.streams.get(id as usize).map(|e| e.key)
    }

    /// Stream `id`.
    pub fn stream(&self, id: u32) -> Option<&Stream> {
        self.streams.get(id as usize).map(|e| &e.stream)
    }

    /// Stream `id`'s per-line counters (A, B).
    pub fn line_stats(&self, id: u32) -> Option<[LineStats; 2]> {
        self.streams.get(id as usize).map(|e| e.lines)
    }

    /// Streams so far.
    pub fn streams(&self) -> usize {
        self.streams.len()
    }

    /// The report so far (allocates: call it at the end, or now and then).
    pub fn report(&self) -> MoldReport {
        let mut r = self.report.clone();
        r.first_error = self.first_error.as_ref().map(|e| e.to_string());
        r.not_mold_by_port = self.ports.clone();
        r.not_mold_by_port.sort_by_key(|p| p.port);
        r.channels = self.channels.iter().map(channel_report).collect();
        r.sessions = self.streams.iter().map(session_report).collect();
        r
    }
}

fn channel_report(c: &Channel) -> ChannelReport {
    ChannelReport {
        dst: c.dst,
        line: if c.line == 0 { "A" } else { "B" },
        datagrams: c.datagrams,
        packets: c.packets,
        not_mold: c.not_mold,
    }
}

fn session_report(e: &Entry) -> SessionReport {
    let s = &e.stream;
    let line = |dst, stats| LineReport { dst, stats };
    let mut lines = vec![line(e.key.lines.0, e.lines[0])];
    lines.extend(e.key.lines.1.map(|b| line(b, e.lines[1])));
    SessionReport {
        stream: s.id(),
        session: e.key.session,
        lines,
        first_seq: s.first_seq(),
        last_seq: s.last_delivered(),
        next_seq: s.expected(),
        arbitrated_duplicates: e.lines[0].arbitrated + e.lines[1].arbitrated,
        end_of_session: s.end_of_session(),
        held: s.held(),
        counters: *s.counters(),
        gaps: s.gaps().to_vec(),
    }
}

impl Entry {
    /// One packet from line `line`.
    fn take(&mut self, p: &Packet<'_>, line: usize, ts_ns: u64, sink: &mut impl Sink) {
        let ls = &mut self.lines[line];
        ls.packets += 1;
        ls.messages += u64::from(p.message_count());
        ls.heartbeats += u64::from(p.kind() == PacketKind::Heartbeat);
        let next = self.line_next[line].get_or_insert(p.sequence());
        if p.sequence() > *next {
            ls.gaps += 1;
            ls.missing += p.sequence() - *next;
        }
        *next = (*next).max(p.next_sequence());
        let (winner, stream) = (&mut self.winner, &mut self.stream);
        let bit = 1u8 << line;
        stream.push_with(p, ts_ns, sink, |seq, fresh| {
            let slot = &mut winner[seq as usize & (WINNER_WINDOW - 1)];
            if fresh {
                *slot = (seq, bit);
                ls.won += 1;
            } else if slot.0 == seq && slot.1 & bit == 0 {
                slot.1 |= bit;
                ls.arbitrated += 1;
            } else {
                ls.repeats += 1;
            }
        });
    }
}
