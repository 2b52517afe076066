//! A capture's messages read once, in feed order, each handed to a consumer with where it is:
//! its packet and index in it (for errors), and the offset its length prefix would have in the
//! BinaryFILE image [`super::extract`] builds (so that what a command reports from the image
//! — offsets of firsts, byte counts — it reports the same without building it).
//!
//! ```text
//!  capture bytes ──walk_all (Datagrams ▶ Arbiter)──▶ InOrder ──▶ MessageSink::message(bytes, At)
//!                                                       └─ Positions: the gaps placed in the feed
//! ```
//! Nothing is copied but a message held in a gap (the arbiter's window), so memory does not
//! grow with the capture; the bytes read past are released.

use super::extract::{
    walk_all, ExtractError, ExtractOptions, Lost, Origin, Place, PlacedSink, Positions, Release,
    Walked,
};
use crate::book::Books;
use crate::inspect::InspectError;
use crate::itch::{decode, DecodeErrorKind, Message};
use crate::mold::Delivered;
use crate::replay::{ReplayReport, LOOKAHEAD, NEAR_LOOKAHEAD};
use std::collections::VecDeque;
use std::io::{self, Write};

/// Where a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At {
    /// Offset of its length prefix in the image extraction would build.
    pub image: u64,
    /// Its packet, and its index in it.
    pub place: Place,
}

/// What consumes a capture's messages.
pub trait MessageSink {
    /// The next message in feed order.
    fn message(&mut self, bytes: &[u8], at: At);
}

/// The walk's sink: numbers the messages as the image would, places the gaps.
struct InOrder<S> {
    sink: S,
    image: u64,
    positions: Positions,
}

impl<S: MessageSink> PlacedSink for InOrder<S> {
    fn message(&mut self, m: Delivered<'_>, origin: Origin) {
        let place = Place {
            packet: origin.packet,
            message: u32::from(origin.index(m.seq)),
        };
        let at = At {
            image: self.image,
            place,
        };
        self.sink.message(m.bytes, at);
        self.image += 2 + m.bytes.len() as u64;
        self.positions.message(m.bytes);
    }

    fn lost(&mut self, stream: u32, first: u64, last: u64) {
        self.positions.lost(stream, first, last);
    }
}

/// A capture read through: the consumer, and what the walk found.
#[derive(Debug)]
pub struct Read<S> {
    /// The consumer (the one the last pass fed, when A/B lines made the walk start again).
    pub sink: S,
    /// What the layers below counted.
    pub walked: Walked,
    /// Every range given up, placed in the feed.
    pub lost: Vec<Lost>,
    /// Bytes the image would hold (length prefixes included).
    pub image_len: u64,
    /// The options read with, A/B lines found included: read again with them, the walk does
    /// not start over.
    pub options: ExtractOptions,
}

/// Reads the capture `buf` into a consumer made by `make`, the bytes read past told to
/// `release`. When a session comes on a second channel the walk starts over with the A/B lines
/// found, into a new consumer: a consumer that writes out what it is given should be made with
/// the options of an earlier read ([`Read::options`]), with which the walk never starts over.
///
/// # Errors
/// A malformed capture (naming the byte offset), a capture without MoldUDP64, filters that
/// match nothing: as [`super::extract`].
pub fn read_messages<'a, S: MessageSink>(
    buf: &'a [u8],
    opts: &ExtractOptions,
    release: Option<Release<'a>>,
    mut make: impl FnMut() -> S,
) -> Result<Read<S>, ExtractError> {
    let (walk, s) = walk_all(buf, opts, release, || InOrder {
        sink: make(),
        image: 0,
        positions: Positions::default(),
    })?;
    Ok(Read {
        walked: walk.summary()?,
        options: walk.options().clone(),
        sink: s.sink,
        lost: s.positions.lost,
        image_len: s.image,
    })
}

/// A consumer that takes nothing: a first read for the options, the gaps and the counters.
#[derive(Debug, Default, Clone, Copy)]
pub struct Nothing;

impl MessageSink for Nothing {
    fn message(&mut self, _bytes: &[u8], _at: At) {}
}

/// A consumer that decodes each message as a replay of the image does
/// ([`crate::replay::for_each_message`]): unknown types counted and skipped, known types of a
/// wrong length skipped when lenient, otherwise the first message that does not decode stops
/// it; each message taken goes to `step` with the state, until `step` says stop.
///
/// Made [`Replaying::with_books`], it keeps the last [`LOOKAHEAD`] messages (copied: a few
/// hundred bytes) and hands each to `step` only then, after hinting its books' cache lines as
/// the replay's look-ahead does: call [`Replaying::finish`] after the read for the last ones.
pub struct Replaying<T> {
    /// What the messages go to.
    pub state: T,
    step: fn(&mut T, &Message<'_>, &mut ReplayReport) -> bool,
    lenient: bool,
    /// What the replay saw.
    pub report: ReplayReport,
    /// The message that stopped it, with where it is.
    pub error: Option<(InspectError, Place)>,
    done: bool,
    ahead: Option<Ahead<T>>,
}

/// The messages waiting their turn, and the books to hint.
struct Ahead<T> {
    books: fn(&T) -> &Books,
    waiting: VecDeque<(Vec<u8>, At)>,
    spare: Vec<Vec<u8>>,
}

impl<T> Replaying<T> {
    /// Messages to `step` with `state`.
    pub fn new(
        state: T,
        lenient: bool,
        step: fn(&mut T, &Message<'_>, &mut ReplayReport) -> bool,
    ) -> Replaying<T> {
        Replaying {
            state,
            step,
            lenient,
            report: ReplayReport::default(),
            error: None,
            done: false,
            ahead: None,
        }
    }

    /// As [`Replaying::new`], the `books` of the state hinted [`LOOKAHEAD`] messages ahead.
    pub fn with_books(
        state: T,
        lenient: bool,
        books: fn(&T) -> &Books,
        step: fn(&mut T, &Message<'_>, &mut ReplayReport) -> bool,
    ) -> Replaying<T> {
        let ahead = Ahead {
            books,
            waiting: VecDeque::with_capacity(LOOKAHEAD + 1),
            spare: Vec::with_capacity(LOOKAHEAD + 1),
        };
        Replaying {
            ahead: Some(ahead),
            ..Replaying::new(state, lenient, step)
        }
    }

    /// Hands the messages still waiting to `step`.
    pub fn finish(&mut self) {
        while self.next_waiting() {}
    }

    /// The oldest waiting message to `step`, the one [`NEAR_LOOKAHEAD`] behind it hinted;
    /// false when none waits.
    fn next_waiting(&mut self) -> bool {
        let Some(a) = &mut self.ahead else {
            return false;
        };
        let Some((bytes, at)) = a.waiting.pop_front() else {
            return false;
        };
        if let Some((near, _)) = a.waiting.get(NEAR_LOOKAHEAD - 1) {
            (a.books)(&self.state).prefetch_frame_levels(near);
        }
        self.take(&bytes, at);
        if let Some(a) = &mut self.ahead {
            a.spare.push(bytes);
        }
        true
    }

    fn take(&mut self, bytes: &[u8], at: At) {
        if self.done {
            return;
        }
        match decode(bytes, at.image) {
            Ok(m) => {
                if !(self.step)(&mut self.state, &m, &mut self.report) {
                    self.done = true;
                    return;
                }
                self.report.messages += 1;
            }
            Err(e) => match e.kind {
                DecodeErrorKind::UnknownType(_) => self.report.skipped_unknown_types += 1,
                _ if self.lenient => self.report.skipped_bad_lengths += 1,
                _ => {
                    self.error = Some((e.into(), at.place));
                    self.done = true;
                }
            },
        }
    }
}

impl<T> MessageSink for Replaying<T> {
    fn message(&mut self, bytes: &[u8], at: At) {
        let Some(a) = &mut self.ahead else {
            return self.take(bytes, at);
        };
        if self.done {
            return;
        }
        let mut copy = a.spare.pop().unwrap_or_default();
        copy.clear();
        copy.extend_from_slice(bytes);
        (a.books)(&self.state).prefetch_frame(&copy);
        a.waiting.push_back((copy, at));
        if a.waiting.len() > LOOKAHEAD {
            self.next_waiting();
        }
    }
}

impl<T> std::fmt::Debug for Replaying<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replaying")
            .field("report", &self.report)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// A consumer that writes the messages out as a BinaryFILE (each behind its u16 BE length):
/// the image [`super::extract`] builds, written as it goes.
#[derive(Debug)]
pub struct Framed<W: Write> {
    w: W,
    err: Option<io::Error>,
}

impl<W: Write> Framed<W> {
    /// Messages written to `w`.
    pub fn new(w: W) -> Framed<W> {
        Framed { w, err: None }
    }

    /// The writer, flushed.
    ///
    /// # Errors
    /// The first write that failed.
    pub fn finish(mut self) -> io::Result<W> {
        if let Some(e) = self.err {
            return Err(e);
        }
        self.w.flush()?;
        Ok(self.w)
    }
}

impl<W: Write> MessageSink for Framed<W> {
    fn message(&mut self, bytes: &[u8], _at: At) {
        if self.err.is_some() {
            return;
        }
        // A MoldUDP64 message block's length is a u16: it fits.
        let len = (bytes.len() as u16).to_be_bytes();
        if let Err(e) = self
            .w
            .write_all(&len)
            .and_then(|()| self.w.write_all(bytes))
        {
            self.err = Some(e);
        }
    }
}
