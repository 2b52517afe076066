//! The ITCH 5.0 source: frames and validates each message of a BinaryFILE image, and routes it
//! by stock locate (market-wide messages, locate 0, to every shard).

use super::event::{Event, BODY};
use super::gap::BookGap;
use crate::engine::{Route, Source};
use crate::feed::Frames;
use crate::inspect::InspectError;
use crate::itch::{decode, DecodeErrorKind};
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
        }
    }

    /// The same source, its first unfilled gap at feed position `gap` (if any).
    pub fn with_book_gap(mut self, gap: Option<u32>) -> ItchSource<'a> {
        self.book_gap = gap.map(|p| Arc::new(BookGap::at(p)));
        self
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
            match decode(frame.body, frame.offset) {
                Ok(m) => {
                    self.ts = m.timestamp();
                    self.locate = m.stock_locate();
                    self.body = frame.body;
                    return Some(Ok(()));
                }
                Err(e) if matches!(e.kind, DecodeErrorKind::UnknownType(_)) => {
                    self.skipped_unknown += 1;
                }
                Err(_) if self.lenient => self.skipped_bad_lengths += 1,
                Err(e) => return Some(Err(e.into())),
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
        let n = self.body.len().min(BODY);
        slot.body[..n].copy_from_slice(&self.body[..n]);
        slot.body[n..].fill(0);
    }
}
