//! NASDAQ BinaryFILE framing: a 2-byte big-endian length, then that many message bytes.
//!
//! [`Frames`] walks a byte slice and yields each message body with the file offset of its length
//! prefix. The walk is the serial dependency of every decoder (the next offset is known only after
//! reading this length), so it touches memory strictly in order and issues a software prefetch
//! [`PREFETCH_DISTANCE`] bytes ahead of the cursor: the hardware prefetcher stops at 4 KiB page
//! boundaries, the software one does not. A truncated prefix or body ends the walk with a
//! [`FrameError`] naming the offset.

use thiserror::Error;

/// How far ahead of the cursor the walk prefetches, in bytes. Tuned by `benches/decode.rs`.
pub const PREFETCH_DISTANCE: usize = 1024;

/// One framed message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// File offset of the length prefix.
    pub offset: u64,
    /// The message bytes (type letter first), without the prefix.
    pub body: &'a [u8],
}

/// The framing itself is broken: the file ends inside a length prefix or a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum FrameError {
    /// One byte is left where a 2-byte length prefix should be.
    #[error(
        "at byte offset {offset}: truncated length prefix (1 of 2 bytes present) — file cut short?"
    )]
    TruncatedPrefix {
        /// Offset of the partial prefix.
        offset: u64,
    },
    /// The prefix announces more bytes than the file holds.
    #[error("at byte offset {offset}: length prefix says {need} bytes but only {have} remain — file cut short, or not an ITCH 5.0 BinaryFILE")]
    TruncatedBody {
        /// Offset of the length prefix.
        offset: u64,
        /// Bytes announced.
        need: usize,
        /// Bytes left after the prefix.
        have: usize,
    },
}

impl FrameError {
    /// The offset the error names.
    pub fn offset(&self) -> u64 {
        match *self {
            FrameError::TruncatedPrefix { offset } | FrameError::TruncatedBody { offset, .. } => {
                offset
            }
        }
    }
}

/// Iterator over the frames of a BinaryFILE slice; stops after the first error.
#[derive(Clone, Debug)]
pub struct Frames<'a> {
    buf: &'a [u8],
    pos: usize,
    base: u64,
    failed: bool,
}

impl<'a> Frames<'a> {
    /// Frames of `buf`, whose first byte is at file offset 0.
    pub fn new(buf: &'a [u8]) -> Self {
        Self::with_base(buf, 0)
    }

    /// Frames of `buf`, whose first byte is at file offset `base` (for a chunk of a larger file).
    pub fn with_base(buf: &'a [u8], base: u64) -> Self {
        Frames {
            buf,
            pos: 0,
            base,
            failed: false,
        }
    }

    /// Position of the next frame within `buf`.
    pub fn position(&self) -> usize {
        self.pos
    }
}

pub(crate) use crate::mem::prefetch;

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, FrameError>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        let buf = self.buf;
        let pos = self.pos;
        if pos >= buf.len() || self.failed {
            return None;
        }
        let offset = self.base + pos as u64;
        let Some(prefix) = buf.get(pos..pos + 2) else {
            self.failed = true;
            return Some(Err(FrameError::TruncatedPrefix { offset }));
        };
        let len = u16::from_be_bytes([prefix[0], prefix[1]]) as usize;
        let start = pos + 2;
        let end = start + len;
        let Some(body) = buf.get(start..end) else {
            self.failed = true;
            return Some(Err(FrameError::TruncatedBody {
                offset,
                need: len,
                have: buf.len() - start,
            }));
        };
        prefetch(buf.as_ptr().wrapping_add(end + PREFETCH_DISTANCE));
        self.pos = end;
        Some(Ok(Frame { offset, body }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_and_reports_truncation() {
        let buf = [0, 1, b'x', 0, 2, b'a', b'b', 0];
        let mut f = Frames::new(&buf);
        assert_eq!(
            f.next(),
            Some(Ok(Frame {
                offset: 0,
                body: b"x"
            }))
        );
        assert_eq!(
            f.next(),
            Some(Ok(Frame {
                offset: 3,
                body: b"ab"
            }))
        );
        assert_eq!(
            f.next(),
            Some(Err(FrameError::TruncatedPrefix { offset: 7 }))
        );
        assert_eq!(f.next(), None);
        let buf = [0, 5, 1, 2];
        let mut f = Frames::new(&buf);
        assert_eq!(
            f.next(),
            Some(Err(FrameError::TruncatedBody {
                offset: 0,
                need: 5,
                have: 2
            }))
        );
        assert_eq!(f.next(), None);
        assert_eq!(Frames::new(&[]).next(), None);
    }
}
