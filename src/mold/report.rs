//! What the MoldUDP64 layer saw, for `tickwatch inspect` on a capture (text or `--json`).

use std::net::SocketAddrV4;

use serde::Serialize;

use super::packet::Session;
use super::stream::{Gap, StreamCounters};

/// Everything the [`crate::mold::arbiter::Arbiter`] counted.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MoldReport {
    /// UDP datagrams handed in.
    pub datagrams: u64,
    /// Of those, MoldUDP64 packets taken (channel and session filters passed).
    pub packets: u64,
    /// Capture time of the first and last datagram.
    pub first_ts_ns: Option<u64>,
    /// See `first_ts_ns`.
    pub last_ts_ns: Option<u64>,
    /// Datagrams to channels outside `--channel` (or past the channel table).
    pub skipped_channel: u64,
    /// MoldUDP64 packets of other sessions than `--session`.
    pub skipped_session: u64,
    /// Packets of sessions past the stream table.
    pub skipped_streams_full: u64,
    /// Datagrams that are not MoldUDP64 (too short, bad shape).
    pub not_mold: u64,
    /// Those, by destination port.
    pub not_mold_by_port: Vec<PortCount>,
    /// Ports not counted in `not_mold_by_port` (its table was full).
    pub not_mold_ports_overflow: u64,
    /// The first of those errors, with its byte offset.
    pub first_error: Option<String>,
    /// Every channel (destination group:port) seen or configured.
    pub channels: Vec<ChannelReport>,
    /// Every session (one per feed: A/B lines merged).
    pub sessions: Vec<SessionReport>,
}

/// Non-MoldUDP64 datagrams to one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PortCount {
    /// Destination port.
    pub port: u16,
    /// Datagrams.
    pub datagrams: u64,
}

/// One channel.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ChannelReport {
    /// Destination group:port.
    pub dst: SocketAddrV4,
    /// Its line in its feed: "A" or "B" (a channel alone is "A").
    pub line: &'static str,
    /// Datagrams to it.
    pub datagrams: u64,
    /// MoldUDP64 packets among them.
    pub packets: u64,
    /// Datagrams that were not MoldUDP64.
    pub not_mold: u64,
}

/// One line of a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LineStats {
    /// Packets on this line.
    pub packets: u64,
    /// Messages in them.
    pub messages: u64,
    /// Heartbeats on this line.
    pub heartbeats: u64,
    /// Gaps in this line's own sequence (whether or not the other line filled them).
    pub gaps: u64,
    /// Messages in those gaps.
    pub missing: u64,
    /// Messages this line brought first.
    pub won: u64,
    /// Copies this line had already carried (or too old to tell, or given up as lost before).
    pub repeats: u64,
    /// Copies the other line had brought first: arbitrated, neither a gap nor an error.
    pub arbitrated: u64,
}

/// One line of a session, with its channel.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LineReport {
    /// The line's channel.
    pub dst: SocketAddrV4,
    /// Its counters.
    #[serde(flatten)]
    pub stats: LineStats,
}

/// One session of one feed.
#[derive(Debug, Clone, Serialize)]
pub struct SessionReport {
    /// The stream's id (`Delivered::stream`).
    pub stream: u32,
    /// Session name.
    pub session: Session,
    /// The feed's lines (A, then B if any) with their counters.
    pub lines: Vec<LineReport>,
    /// First sequence received.
    pub first_seq: Option<u64>,
    /// Last sequence passed (delivered, or given up just before the report).
    pub last_seq: Option<u64>,
    /// Next sequence expected.
    pub next_seq: Option<u64>,
    /// Copies dropped because the other line brought them first (sum over the lines).
    pub arbitrated_duplicates: u64,
    /// An end-of-session packet was seen.
    pub end_of_session: bool,
    /// Messages still waiting in the reorder window.
    pub held: usize,
    /// The merged stream's counters (duplicates = every dropped copy, arbitrated included).
    pub counters: StreamCounters,
    /// Gaps of the merged stream (missing on every line), in sequence order.
    pub gaps: Vec<Gap>,
}
