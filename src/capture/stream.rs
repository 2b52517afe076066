//! A capture's MoldUDP64 messages handed out one at a time, in place: each message is a slice
//! of the capture itself (the mapped file), in the order the arbiter decides (A/B lines,
//! duplicates, gaps, filters), so that reading a capture costs no copy of its ITCH bytes and
//! memory that does not grow with the capture.
//!
//! ```text
//!  capture bytes ──Walk (Datagrams ▶ Arbiter)──▶ queue of (capture offset, length) ──▶ advance()
//!                                        └─ held message whose packet is forgotten ─▶ copy
//! ```
//! A MoldUDP64 message block is a u16 length and the message, as a BinaryFILE frame is; a
//! message delivered as its packet is read is a slice of that packet. A message held back in
//! the reorder window is found again in its packet (the last [`super::extract`] remembers),
//! and copied only if that packet is forgotten: at most the window's bytes at a time.
//!
//! The queue holds what one datagram delivers (at most one packet's messages, or the window's
//! when a hole closes or the capture ends), so memory is bounded by the window, not the
//! capture. Gaps and counters are what [`super::walk_all`] over the same bytes reports.

use std::collections::VecDeque;

use super::extract::{ExtractError, ExtractOptions, Origin, PlacedSink, Release, Step, Walk};
use crate::mold::{Delivered, Packet};

/// Where a queued message's bytes are.
#[derive(Debug, Clone, Copy)]
enum At {
    /// In the capture, at this offset.
    Capture(usize),
    /// In the copies, at this offset.
    Copy(usize),
}

/// A message waiting to be handed out.
#[derive(Debug, Clone, Copy)]
struct Item {
    at: At,
    len: usize,
    origin: Origin,
    seq: u64,
}

/// The walk's sink: each message found in place, or copied.
#[derive(Debug)]
struct Queue<'a> {
    buf: &'a [u8],
    items: VecDeque<Item>,
    copies: Vec<u8>,
    copied: u64,
}

impl PlacedSink for Queue<'_> {
    fn message(&mut self, m: Delivered<'_>, origin: Origin) {
        let at = match in_capture(self.buf, m.bytes) {
            Some(at) => At::Capture(at),
            None => match found_in(self.buf, &origin, m.seq, m.bytes) {
                Some(at) => At::Capture(at),
                None => {
                    self.copied += 1;
                    let at = self.copies.len();
                    self.copies.extend_from_slice(m.bytes);
                    At::Copy(at)
                }
            },
        };
        self.items.push_back(Item {
            at,
            len: m.bytes.len(),
            origin,
            seq: m.seq,
        });
    }

    fn lost(&mut self, _stream: u32, _first: u64, _last: u64) {}
}

/// The offset of `bytes` in `buf`, if it is a slice of it.
fn in_capture(buf: &[u8], bytes: &[u8]) -> Option<usize> {
    let at = (bytes.as_ptr() as usize).checked_sub(buf.as_ptr() as usize)?;
    (at + bytes.len() <= buf.len()).then_some(at)
}

/// The offset in `buf` of message `seq` of the packet `origin` (a held message's copy,
/// `bytes`), when the packet holds it.
fn found_in(buf: &[u8], origin: &Origin, seq: u64, bytes: &[u8]) -> Option<usize> {
    let (at, len) = origin.payload;
    let payload = buf.get(at..at.checked_add(len)?)?;
    let p = Packet::parse(payload, origin.packet).ok()?;
    let m = p.messages().find(|m| m.seq == seq)?;
    (m.bytes == bytes).then(|| in_capture(buf, m.bytes))?
}

/// The messages of a capture, handed out one at a time (see the module's comment).
#[derive(Debug)]
pub struct CaptureStream<'a> {
    walk: Walk<'a>,
    queue: Queue<'a>,
    current: Option<Item>,
    ended: bool,
}

impl<'a> CaptureStream<'a> {
    /// The messages of the capture `buf`, read with `opts` as they are: give the options a
    /// finished [`super::walk_all`] read with ([`Walk::options`]), so that A/B lines it found
    /// are merged here too. The bytes read past are told to `release` (a mapped file's).
    ///
    /// # Errors
    /// Not a capture, or a truncated file header.
    pub fn new(
        buf: &'a [u8],
        opts: &ExtractOptions,
        release: Option<Release<'a>>,
    ) -> Result<CaptureStream<'a>, ExtractError> {
        let opts = ExtractOptions {
            pair_lines: false,
            ..opts.clone()
        };
        Ok(CaptureStream {
            walk: Walk::new(buf, &opts)?.releasing(release),
            queue: Queue {
                buf,
                items: VecDeque::new(),
                copies: Vec::new(),
                copied: 0,
            },
            current: None,
            ended: false,
        })
    }

    /// Moves to the next message: `None` at the end.
    ///
    /// # Errors
    /// A malformed capture, naming the byte offset.
    pub fn advance(&mut self) -> Option<Result<(), ExtractError>> {
        loop {
            if let Some(item) = self.queue.items.pop_front() {
                self.current = Some(item);
                return Some(Ok(()));
            }
            if self.ended {
                self.current = None;
                return None;
            }
            // Nothing queued refers to the copies any more (the current message is read
            // before the next advance).
            self.queue.copies.clear();
            match self.walk.step(&mut self.queue) {
                Ok(Step::End) => self.ended = true,
                Ok(_) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// The current message's bytes (empty before the first [`CaptureStream::advance`]).
    #[inline]
    pub fn message(&self) -> &[u8] {
        match self.current {
            None => &[],
            Some(Item {
                at: At::Capture(at),
                len,
                ..
            }) => &self.queue.buf[at..at + len],
            Some(Item {
                at: At::Copy(at),
                len,
                ..
            }) => &self.queue.copies[at..at + len],
        }
    }

    /// The current message's capture byte offset (a copied one's: its packet's record), for
    /// errors; see [`place_of`].
    pub fn offset(&self) -> u64 {
        match self.current {
            Some(Item {
                at: At::Capture(at),
                ..
            }) => at as u64,
            Some(Item { origin, .. }) => origin.packet,
            None => 0,
        }
    }

    /// The current message's packet, and its index in it.
    pub fn place(&self) -> Option<(Origin, u16)> {
        self.current.map(|i| (i.origin, i.origin.index(i.seq)))
    }

    /// Messages copied so far: held in a gap after their packet was forgotten.
    pub fn copied(&self) -> u64 {
        self.queue.copied
    }
}

/// Where the capture byte offset `offset` of a message (as [`CaptureStream::offset`] gives it)
/// is: its packet's record or block, and its index in the packet. Reads the capture again up
/// to it (for an error message).
pub fn place_of(buf: &[u8], offset: u64) -> Option<super::Place> {
    let datagrams = super::Datagrams::new(buf).ok()?;
    for d in datagrams.map_while(Result::ok) {
        if d.offset == offset {
            return Some(super::Place {
                packet: offset,
                message: 0,
            });
        }
        let at = in_capture(buf, d.payload)? as u64;
        if !(at..at + d.payload.len() as u64).contains(&offset) {
            continue;
        }
        let p = Packet::parse(d.payload, d.offset).ok()?;
        let i = p
            .messages()
            .position(|m| in_capture(buf, m.bytes) == Some(offset as usize))?;
        return Some(super::Place {
            packet: d.offset,
            message: i as u32,
        });
    }
    None
}
