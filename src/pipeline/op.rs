//! The market operator: a shard's order books, with a [`BookHook`] for the jobs that watch them
//! (bars, surveillance, or both at once).

use super::event::Event;
use crate::agg::Touch;
use crate::book::Books;
use crate::engine::{ShardOp, Tag};
use crate::itch::{decode, Message};
use crate::replay::{LOOKAHEAD, NEAR_LOOKAHEAD};

/// Type letters that can change a book.
static CHANGES_BOOK: [bool; 256] = {
    let mut t = [false; 256];
    let letters = *b"AFECXDU";
    let mut i = 0;
    while i < letters.len() {
        t[letters[i] as usize] = true;
        i += 1;
    }
    t
};

/// A job that watches a shard's books: called around every message the books apply, at marks,
/// and when the shard is idle. `()` is the plain book replay; `(A, B)` runs two jobs.
pub trait BookHook: Send {
    /// What [`BookHook::before`] learns for [`BookHook::after`].
    type Pre: Copy;
    /// Whether it wants the reader's position when idle (see [`ShardOp::FRONTIER`]).
    const FRONTIER: bool = false;

    /// Whether its rings have room for whatever the next item (a mark when `mark`) can raise;
    /// work the last item left for want of room is done first.
    #[inline(always)]
    fn has_room(&mut self, _mark: bool, _books: &Books) -> bool {
        true
    }
    /// Does what the last item left for want of ring room; whether all of it is done.
    fn flush(&mut self, _books: &Books) -> bool {
        true
    }
    /// Before the books apply `m`, the event at feed position `seq` whose latency started at
    /// `origin` (an execution or delete may remove the order it names).
    fn before(&mut self, m: &Message<'_>, books: &Books, seq: u32, origin: u64) -> Self::Pre;
    /// After the books applied `m`: `touch` is the stock's new touch when it changed.
    fn after(&mut self, pre: Self::Pre, m: &Message<'_>, books: &Books, touch: Option<Touch>);
    /// A mark of clock `clock` at feed position `seq` with watermark `wm`.
    fn on_mark(&mut self, _wm: u64, _clock: u8, _seq: u32, _books: &Books) {}
    /// The shard is idle and the reader has published up to `pos`.
    fn on_idle(&mut self, _pos: u32) {}
    /// End of a batch: publish.
    fn end_of_batch(&mut self) {}
    /// End of input: publish and close.
    fn close(&mut self) {}
}

impl BookHook for () {
    type Pre = ();
    #[inline(always)]
    fn before(&mut self, _: &Message<'_>, _: &Books, _: u32, _: u64) {}
    #[inline(always)]
    fn after(&mut self, _: (), _: &Message<'_>, _: &Books, _: Option<Touch>) {}
}

impl<A: BookHook, B: BookHook> BookHook for (A, B) {
    type Pre = (A::Pre, B::Pre);
    const FRONTIER: bool = A::FRONTIER || B::FRONTIER;

    #[inline(always)]
    fn has_room(&mut self, mark: bool, books: &Books) -> bool {
        self.0.has_room(mark, books) && self.1.has_room(mark, books)
    }
    fn flush(&mut self, books: &Books) -> bool {
        // Both, whatever the first says.
        let a = self.0.flush(books);
        self.1.flush(books) && a
    }
    #[inline(always)]
    fn before(&mut self, m: &Message<'_>, books: &Books, seq: u32, origin: u64) -> Self::Pre {
        (
            self.0.before(m, books, seq, origin),
            self.1.before(m, books, seq, origin),
        )
    }
    #[inline(always)]
    fn after(&mut self, pre: Self::Pre, m: &Message<'_>, books: &Books, touch: Option<Touch>) {
        self.0.after(pre.0, m, books, touch);
        self.1.after(pre.1, m, books, touch);
    }
    fn on_mark(&mut self, wm: u64, clock: u8, seq: u32, books: &Books) {
        self.0.on_mark(wm, clock, seq, books);
        self.1.on_mark(wm, clock, seq, books);
    }
    fn on_idle(&mut self, pos: u32) {
        self.0.on_idle(pos);
        self.1.on_idle(pos);
    }
    fn end_of_batch(&mut self) {
        self.0.end_of_batch();
        self.1.end_of_batch();
    }
    fn close(&mut self) {
        self.0.close();
        self.1.close();
    }
}

/// A shard's books and the hook watching them.
#[derive(Debug)]
pub struct BookOp<H> {
    /// The books of the shard's stocks.
    pub books: Books,
    /// The job watching them.
    pub hook: H,
}

impl<H: BookHook> BookOp<H> {
    /// `books` watched by `hook`.
    pub fn new(books: Books, hook: H) -> BookOp<H> {
        BookOp { books, hook }
    }
}

impl<H: BookHook> ShardOp for BookOp<H> {
    type Event = Event;
    const STAGE: &'static str = "book update";
    const SPAN: &'static str = "take → next take (decode, apply, top check)";
    const FRONTIER: bool = H::FRONTIER;
    const FAR: usize = LOOKAHEAD;
    const NEAR: usize = NEAR_LOOKAHEAD;

    /// Faults the books' tables in on the worker's own core (in parallel with the others).
    fn prepare(&mut self) {
        self.books.prefault();
    }

    #[inline(always)]
    fn prefetch_far(&self, ev: &Event) {
        self.books.prefetch_frame(&ev.body);
    }

    #[inline(always)]
    fn prefetch_near(&self, ev: &Event) {
        self.books.prefetch_frame_levels(&ev.body);
    }

    #[inline(always)]
    fn has_room(&mut self, mark: bool) -> bool {
        self.hook.has_room(mark, &self.books)
    }

    fn flush(&mut self) -> bool {
        self.hook.flush(&self.books)
    }

    #[inline(always)]
    fn on_event(&mut self, ev: &Event) -> Tag {
        let locate = ev.locate();
        let t = ev.body[0];
        let mut tag = Tag {
            key: locate,
            kind: t,
            flags: 0,
        };
        let Ok(m) = decode(ev.message(), 0) else {
            tag.flags = Tag::REJECTED;
            return tag;
        };
        let pre = self.hook.before(&m, &self.books, ev.seq, ev.origin);
        let mut touch = None;
        if CHANGES_BOOK[t as usize] {
            let before = Touch::of(&self.books, locate);
            self.books.apply(&m);
            let after = Touch::of(&self.books, locate);
            if after != before {
                tag.flags = Tag::FLAGGED;
                touch = Some(after);
            }
        } else {
            self.books.apply(&m);
        }
        self.hook.after(pre, &m, &self.books, touch);
        tag
    }

    fn on_mark(&mut self, wm: u64, clock: u8, seq: u32) {
        self.hook.on_mark(wm, clock, seq, &self.books);
    }

    fn on_idle(&mut self, pos: u32) {
        self.hook.on_idle(pos);
    }

    #[inline(always)]
    fn end_of_batch(&mut self) {
        self.hook.end_of_batch();
    }

    fn close(&mut self) {
        self.hook.close();
    }
}
