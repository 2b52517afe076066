//! MoldUDP64: the sequenced UDP framing NASDAQ sends ITCH in.
//!
//! [`packet`] is a zero-copy view of one packet; [`stream`] puts one session's packets back in
//! sequence order (gaps, duplicates, a bounded reorder window); [`arbiter`] takes UDP datagrams,
//! filters them by channel and session, merges A/B lines of the same session, and counts what it
//! saw into a [`report::MoldReport`]. Nothing here reads files or sockets: the capture reader or a
//! live receiver hands in [`Datagram`]s.

use std::net::SocketAddrV4;

pub mod arbiter;
pub mod packet;
pub mod report;
pub mod stream;

pub use arbiter::{Arbiter, ArbiterConfig, Outcome, StreamKey};
pub use packet::{Packet, PacketError, PacketKind, Session};
pub use report::MoldReport;
pub use stream::{Delivered, Gap, Sink, Stream, StreamConfig};

/// One UDP datagram as the capture reader or a receiver hands it in.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    /// Capture or receive time, ns since the epoch.
    pub ts_ns: u64,
    /// Source address.
    pub src: SocketAddrV4,
    /// Destination (the multicast group and port: the channel).
    pub dst: SocketAddrV4,
    /// The UDP payload.
    pub payload: &'a [u8],
    /// Where the payload starts in its source (capture file offset), for errors.
    pub offset: u64,
}
