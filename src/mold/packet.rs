//! A zero-copy view of one MoldUDP64 packet.
//!
//! Layout (all big-endian): 10-byte session, u64 sequence number of the first message, u16
//! message count, then `count` messages, each a u16 length and that many bytes. Count 0 is a
//! heartbeat and 0xFFFF the end of session; both carry no messages, and their sequence number is
//! the next one the session will send.
//!
//! Hand-written on purpose, with no crate: the header is 20 bytes and the message blocks are one
//! length prefix each, so a dependency would cost more to audit than these lines do.

use std::fmt;

use thiserror::Error;

/// Bytes in the header: session, sequence number, message count.
pub const HEADER_LEN: usize = 20;
/// Bytes in the session name.
pub const SESSION_LEN: usize = 10;
/// Message count of an end-of-session packet.
pub const END_OF_SESSION: u16 = 0xFFFF;

/// A malformed packet. Every offset is absolute: the datagram's offset plus the byte's
/// position in its payload.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PacketError {
    /// Fewer bytes than the 20-byte header.
    #[error(
        "at byte offset {offset}: MoldUDP64 header needs {HEADER_LEN} bytes, datagram has {len}"
    )]
    ShortHeader {
        /// Where the datagram's payload starts.
        offset: u64,
        /// Its length.
        len: usize,
    },
    /// A message (or its length prefix) runs past the end of the datagram.
    #[error("at byte offset {offset}: MoldUDP64 message {index} of {count} needs {need} bytes but only {have} remain")]
    MessagePastEnd {
        /// Where the message's length prefix starts.
        offset: u64,
        /// Its index in the packet (0-based).
        index: u16,
        /// The header's message count.
        count: u16,
        /// Bytes the prefix and message need.
        need: usize,
        /// Bytes left in the datagram.
        have: usize,
    },
    /// Bytes left over after the last message (or after a heartbeat / end-of-session header).
    #[error("at byte offset {offset}: {extra} bytes after the last of {count} MoldUDP64 messages")]
    TrailingBytes {
        /// Where the extra bytes start.
        offset: u64,
        /// How many.
        extra: usize,
        /// The header's message count.
        count: u16,
    },
    /// Sequence number plus count overflows u64.
    #[error("at byte offset {offset}: MoldUDP64 sequence {sequence} + {count} messages overflows")]
    SequenceOverflow {
        /// Where the sequence number starts.
        offset: u64,
        /// The header's sequence number.
        sequence: u64,
        /// The header's message count.
        count: u16,
    },
}

impl PacketError {
    /// The absolute byte offset the error names.
    pub fn offset(&self) -> u64 {
        match *self {
            PacketError::ShortHeader { offset, .. }
            | PacketError::MessagePastEnd { offset, .. }
            | PacketError::TrailingBytes { offset, .. }
            | PacketError::SequenceOverflow { offset, .. } => offset,
        }
    }
}

/// A MoldUDP64 session name: 10 bytes, space-padded ASCII.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Session(pub [u8; SESSION_LEN]);

impl Session {
    /// A session from its name, padded with spaces; `None` when longer than 10 bytes.
    pub fn from_name(name: &str) -> Option<Session> {
        let b = name.as_bytes();
        if b.len() > SESSION_LEN {
            return None;
        }
        let mut s = [b' '; SESSION_LEN];
        s[..b.len()].copy_from_slice(b);
        Some(Session(s))
    }

    /// The name without its padding (non-UTF-8 bytes shown as U+FFFD).
    pub fn name(&self) -> String {
        let end = self
            .0
            .iter()
            .rposition(|&b| b != b' ' && b != 0)
            .map_or(0, |i| i + 1);
        String::from_utf8_lossy(&self.0[..end]).into_owned()
    }
}

impl fmt::Display for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Session({:?})", self.name())
    }
}

impl serde::Serialize for Session {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

/// What a packet is, from its message count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// `n` ≥ 1 messages.
    Data(u16),
    /// No messages: the session is alive, next sequence = the header's.
    Heartbeat,
    /// No messages: the session has ended, after sequence − 1.
    EndOfSession,
}

/// A validated MoldUDP64 packet laid over a datagram's payload.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    bytes: &'a [u8],
    offset: u64,
}

impl<'a> Packet<'a> {
    /// Validates the header and every message length once, so [`Packet::messages`] cannot fail.
    /// `offset` is where `bytes` starts in its source, for errors.
    pub fn parse(bytes: &'a [u8], offset: u64) -> Result<Packet<'a>, PacketError> {
        if bytes.len() < HEADER_LEN {
            return Err(PacketError::ShortHeader {
                offset,
                len: bytes.len(),
            });
        }
        let p = Packet { bytes, offset };
        let count = p.raw_count();
        let messages = p.message_count();
        if p.sequence().checked_add(u64::from(messages)).is_none() {
            let (sequence, offset) = (p.sequence(), offset + SESSION_LEN as u64);
            return Err(PacketError::SequenceOverflow {
                offset,
                sequence,
                count,
            });
        }
        let mut at = HEADER_LEN;
        for index in 0..messages {
            let have = bytes.len() - at;
            let need = match bytes.get(at..at + 2) {
                Some(l) => 2 + usize::from(u16::from_be_bytes([l[0], l[1]])),
                None => 2,
            };
            if need > have {
                let offset = offset + at as u64;
                return Err(PacketError::MessagePastEnd {
                    offset,
                    index,
                    count,
                    need,
                    have,
                });
            }
            at += need;
        }
        if at != bytes.len() {
            let (offset, extra) = (offset + at as u64, bytes.len() - at);
            return Err(PacketError::TrailingBytes {
                offset,
                extra,
                count,
            });
        }
        Ok(p)
    }

    /// The session name.
    pub fn session(&self) -> Session {
        let mut s = [0; SESSION_LEN];
        s.copy_from_slice(&self.bytes[..SESSION_LEN]);
        Session(s)
    }

    /// Sequence number of the first message (of the next one, for a heartbeat or end of session).
    pub fn sequence(&self) -> u64 {
        let mut b = [0; 8];
        b.copy_from_slice(&self.bytes[SESSION_LEN..SESSION_LEN + 8]);
        u64::from_be_bytes(b)
    }

    fn raw_count(&self) -> u16 {
        u16::from_be_bytes([self.bytes[18], self.bytes[19]])
    }

    /// Heartbeat, end of session, or data with its count.
    pub fn kind(&self) -> PacketKind {
        match self.raw_count() {
            0 => PacketKind::Heartbeat,
            END_OF_SESSION => PacketKind::EndOfSession,
            n => PacketKind::Data(n),
        }
    }

    /// Messages carried (0 for a heartbeat or end of session).
    pub fn message_count(&self) -> u16 {
        match self.kind() {
            PacketKind::Data(n) => n,
            _ => 0,
        }
    }

    /// One past the last message's sequence number.
    pub fn next_sequence(&self) -> u64 {
        // Checked in `parse`.
        self.sequence() + u64::from(self.message_count())
    }

    /// The packet's bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Where the packet starts in its source.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The messages in order, each with its sequence number.
    pub fn messages(&self) -> Messages<'a> {
        Messages {
            rest: &self.bytes[HEADER_LEN..],
            seq: self.sequence(),
            left: self.message_count(),
        }
    }
}

/// One message of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// Its sequence number.
    pub seq: u64,
    /// Its bytes (without the length prefix).
    pub bytes: &'a [u8],
}

/// Iterator over a validated packet's messages.
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    rest: &'a [u8],
    seq: u64,
    left: u16,
}

impl<'a> Iterator for Messages<'a> {
    type Item = Message<'a>;

    fn next(&mut self) -> Option<Message<'a>> {
        if self.left == 0 {
            return None;
        }
        // Lengths were validated in `Packet::parse`; `get` keeps this panic-free regardless.
        let len = usize::from(u16::from_be_bytes([
            *self.rest.first()?,
            *self.rest.get(1)?,
        ]));
        let bytes = self.rest.get(2..2 + len)?;
        self.rest = &self.rest[2 + len..];
        let m = Message {
            seq: self.seq,
            bytes,
        };
        self.seq += 1;
        self.left -= 1;
        Some(m)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.left)))
    }
}

/// A message longer than a MoldUDP64 length prefix can say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("a message of {0} bytes exceeds MoldUDP64's 65535")]
pub struct MessageTooLong(pub usize);

/// Writes a packet into `out` (cleared first): the header with `count` as given (0 heartbeat,
/// 0xFFFF end of session, else normally `messages.len()`), then each message with its length.
/// For tests and for a sender.
pub fn write_packet(
    out: &mut Vec<u8>,
    session: Session,
    sequence: u64,
    count: u16,
    messages: &[&[u8]],
) -> Result<(), MessageTooLong> {
    out.clear();
    out.extend_from_slice(&session.0);
    out.extend_from_slice(&sequence.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    for m in messages {
        let len = u16::try_from(m.len()).map_err(|_| MessageTooLong(m.len()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(m);
    }
    Ok(())
}
