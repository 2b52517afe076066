//! MoldUDP64 over live UDP multicast: sending a feed out paced from its timestamps, receiving
//! it, re-requesting what was missed, and recording what arrives.
//!
//! ```text
//!  ITCH BinaryFILE ─┐                       ┌─▶ line A  udp://G1:P ─┐
//!  or a capture  ───┴▶ PacketList ─▶ Sender ┤                       ├─▶ Receiver ─▶ mold::Arbiter
//!                      (message index)      └─▶ line B  udp://G2:P ─┘    (recvmmsg,     │ gaps
//!                           ▲                                              kernel ts)    ▼
//!                           └──────── RerequestServer ◀── unicast request ── Rerequester
//!  Receiver ─▶ Recorder ─▶ pcap/pcapng files (rotated)
//! ```
//! [`packets`] fills MoldUDP64 packets as a feed does; [`pace`] waits for each packet's time;
//! [`blast`] sends the packets with `sendmmsg`, unpaced or at a fixed rate (for finding the
//! receiver's ceiling); [`fault`] drops, duplicates and reorders packets per line for tests; [`send`] is the sender;
//! [`rerequest`] the re-request server and client; [`recv`] the receiver (`unsafe` around
//! `recvmmsg` and its control messages); [`hwstamp`] turns on the NIC's receive stamps (`unsafe`
//! around its `ioctl`s); [`record`] the recorder; [`socket`] the socket setup both ends share.

use std::io;
use std::net::SocketAddrV4;

use thiserror::Error;

pub mod blast;
pub mod fault;
pub mod hwstamp;
pub mod pace;
pub mod packets;
pub mod record;
pub mod recv;
pub mod rerequest;
pub mod send;
pub mod socket;

pub use blast::{blast, BlastOptions, BlastReport};
pub use fault::{FaultLines, Faults};
pub use hwstamp::{HwMode, HwStamping};
pub use pace::{PaceReport, Pacer};
pub use packets::{Outgoing, PackOptions, PacketList};
pub use record::{RecordOptions, RecordReport, Recorder, StampCounts, END_GRACE};
pub use recv::{Receiver, RecvOptions, RecvStats, TimestampSource};
pub use rerequest::{RerequestServer, Rerequester};
pub use send::{SendOptions, SendReport, Sender};

/// A live-feed operation failed.
#[derive(Debug, Error)]
pub enum NetError {
    /// A socket call failed.
    #[error("{what}")]
    Socket {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The input file's framing is broken.
    #[error(transparent)]
    Frame(#[from] crate::feed::FrameError),
    /// The input capture is broken.
    #[error(transparent)]
    Capture(#[from] crate::capture::CaptureError),
    /// The input holds nothing to send.
    #[error("nothing to send: {0}")]
    Empty(String),
    /// An address is not `udp://IPV4:PORT`.
    #[error("expected udp://IPV4:PORT, got {0:?}")]
    Address(String),
    /// An option is out of range.
    #[error("invalid option: {0}")]
    Option(&'static str),
    /// Hardware timestamps were required and cannot be had (why, with what the NIC said).
    #[error("hardware timestamps: {0}")]
    HwTimestamps(String),
    /// Writing a recording.
    #[error("writing {path}")]
    Write {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// A socket error with what was being done.
pub(crate) fn sock_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> NetError {
    let what = what.into();
    move |source| NetError::Socket { what, source }
}

/// `udp://IPV4:PORT` (the scheme may be left out).
///
/// # Errors
/// Anything else.
pub fn parse_udp(s: &str) -> Result<SocketAddrV4, NetError> {
    let t = s.trim();
    let t = t.strip_prefix("udp://").unwrap_or(t);
    match t.parse::<SocketAddrV4>() {
        Ok(a) if a.port() != 0 => Ok(a),
        _ => Err(NetError::Address(s.to_string())),
    }
}

/// One or two `udp://IPV4:PORT`, comma-separated: line A and the optional line B.
///
/// # Errors
/// A bad address, or more than two.
pub fn parse_lines(s: &str) -> Result<Vec<SocketAddrV4>, NetError> {
    let lines = s.split(',').map(parse_udp).collect::<Result<Vec<_>, _>>()?;
    if lines.len() > 2 {
        return Err(NetError::Option("at most two lines (A and B)"));
    }
    Ok(lines)
}

/// Realtime clock, ns since the Unix epoch.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            parse_udp("udp://239.1.2.3:5000").unwrap(),
            "239.1.2.3:5000".parse().unwrap()
        );
        assert!(parse_udp("udp://239.1.2.3:0").is_err());
        assert!(parse_udp("tcp://x").is_err());
        assert_eq!(
            parse_lines("udp://239.1.1.1:1,udp://239.1.1.2:1")
                .unwrap()
                .len(),
            2
        );
        assert!(parse_lines("1.1.1.1:1,1.1.1.1:2,1.1.1.1:3").is_err());
    }
}
