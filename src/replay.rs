//! Replaying a file into the books, single-threaded: the reference path every faster path (the
//! pinned pipeline of later stages) must agree with.
//!
//! The loop is software-pipelined in two stages: a cursor [`LOOKAHEAD`] frames ahead calls
//! [`Books::prefetch_frame`] on each frame it passes (the order-table slots it names and its
//! stock's ladder headers), and a cursor [`NEAR_LOOKAHEAD`] frames ahead calls
//! [`Books::prefetch_frame_levels`] (the touch of both of that stock's ladders). A message's random
//! accesses are thus on their way from memory while the messages before it are applied. Both
//! stages read the raw bytes without decoding or dispatching on the type: a mispredicted dispatch
//! flushes the very out-of-order window that would overlap the misses. Decoding twice costs a few
//! nanoseconds (the bytes are in L1 by then); a cache miss costs a hundred.

use crate::book::Books;
use crate::feed::{Frame, Frames};
use crate::inspect::InspectError;
use crate::itch::{decode, DecodeErrorKind, Message};
use serde::Serialize;

/// How many frames ahead the first cursor prefetches order-table slots. Tuned with `tickwatch bench`.
pub const LOOKAHEAD: usize = 16;
/// How many frames ahead the second cursor reads those slots and prefetches ladder touches.
pub const NEAR_LOOKAHEAD: usize = 4;

/// What a replay saw besides the book changes.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct ReplayReport {
    /// Messages applied.
    pub messages: u64,
    /// Unknown-type frames skipped.
    pub skipped_unknown_types: u64,
    /// Bad-length frames skipped (lenient mode only).
    pub skipped_bad_lengths: u64,
    /// True when the replay stopped at the `until` time rather than at the end of the file.
    pub stopped_early: bool,
}

/// Applies every message of `buf` with a timestamp ≤ `until` (all when `None`) to `books`.
///
/// # Errors
/// The first framing error, or the first undecodable message unless `lenient` (unknown types are
/// always counted and skipped).
pub fn replay(
    buf: &[u8],
    books: &mut Books,
    until: Option<u64>,
    lenient: bool,
) -> Result<ReplayReport, InspectError> {
    let until = until.unwrap_or(u64::MAX);
    let mut r = ReplayReport::default();
    for_each_message(buf, books, lenient, &mut r, |books, m, r| {
        if m.timestamp() > until {
            r.stopped_early = true;
            return false;
        }
        books.apply(m);
        true
    })?;
    Ok(r)
}

/// The pipelined walk: calls `f` on each decoded message in order, with the books, after the
/// look-ahead stages have prefetched for it. `f` returns false to stop.
///
/// # Errors
/// As [`replay`].
#[inline(always)]
pub fn for_each_message<F>(
    buf: &[u8],
    books: &mut Books,
    lenient: bool,
    r: &mut ReplayReport,
    mut f: F,
) -> Result<(), InspectError>
where
    F: FnMut(&mut Books, &Message<'_>, &mut ReplayReport) -> bool,
{
    for_each_frame(buf, books, |books, frame| {
        match decode(frame.body, frame.offset) {
            Ok(m) => {
                if !f(books, &m, r) {
                    return Ok(false);
                }
                r.messages += 1;
            }
            Err(e) => match e.kind {
                DecodeErrorKind::UnknownType(_) => r.skipped_unknown_types += 1,
                _ if lenient => r.skipped_bad_lengths += 1,
                _ => return Err(e.into()),
            },
        }
        Ok(true)
    })
}

/// The pipeline itself, one level down: calls `f` on each raw frame in order (to decode and
/// apply), after the look-ahead stages have prefetched for it. `f` returns `Ok(false)` to stop.
/// For callers that time a frame's decode and book update together (`bench`).
///
/// # Errors
/// The first framing error, in file order, or the first error `f` returns.
#[inline(always)]
pub fn for_each_frame<F>(buf: &[u8], books: &mut Books, mut f: F) -> Result<(), InspectError>
where
    F: FnMut(&mut Books, Frame<'_>) -> Result<bool, InspectError>,
{
    let mut ahead = Frames::new(buf);
    let mut near = Frames::new(buf);
    for i in 0..LOOKAHEAD {
        prefetch_next(&mut ahead, books, Books::prefetch_frame);
        if i >= LOOKAHEAD - NEAR_LOOKAHEAD {
            prefetch_next(&mut near, books, Books::prefetch_frame_levels);
        }
    }
    for frame in Frames::new(buf) {
        let frame = frame?;
        prefetch_next(&mut ahead, books, Books::prefetch_frame);
        prefetch_next(&mut near, books, Books::prefetch_frame_levels);
        if !f(books, frame)? {
            break;
        }
    }
    Ok(())
}

#[inline(always)]
fn prefetch_next(cursor: &mut Frames<'_>, books: &Books, hint: fn(&Books, &[u8])) {
    // Errors are left for the main cursor to report in order; hints read raw bytes, undecoded.
    if let Some(Ok(f)) = cursor.next() {
        hint(books, f.body);
    }
}
