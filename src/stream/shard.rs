//! A [`stream::Job`](super::Job) sharded over the engine: one job per shard, each key's
//! records on one shard, and the shards' results merged by feed position, so the output is
//! the single-threaded job's, record for record, for any worker count.
//!
//! Each result is keyed by the feed position of the record that caused it (and its index among
//! that record's results); the shards send them in that order, and the output stage's k-way
//! [`Merge`] hands them out in it. Marks and idle shards send progress (every later result of
//! this shard comes after position p), so results stream out as the feed advances. A
//! [`Window::Global`] job on close emits each key's final value; sparse keys come out in the
//! order of their first record (as single-threaded), dense keys in key order.
//!
//! Count windows fire on their key's own records, so they shard as they are. Tumbling and
//! sliding windows take the watermark of the whole feed, not of the shard's own records: the
//! reader sends a mark to every shard where the feed's watermark crosses a window end (and,
//! when the allowed lateness is not a multiple of the slide, where it makes a window too late),
//! the same watermark single-threaded sees there; each shard fires the windows it closes,
//! keyed at the mark's feed position, by window end, then by the key's first-seen position (the
//! single-threaded slot order). Session windows close where the feed's watermark passes each
//! key's own gap, at whichever record of the feed moves it there, so the reader sends every
//! shard a mark wherever the watermark rises; their firings are ordered by session start, then
//! by the key's first-seen position (as the single-threaded operator sorts them). That costs a
//! mark per rising record on every shard: sessions shard exactly, not cheaply. The source's
//! event time must be the job's.

use super::{BuildError, Emit, Span, Window};
use crate::engine::merge::{Keyed, Merge};
use crate::engine::{Clock, Collector, Job as EngineJob, MarkGen, Plan, Record, ShardOp, Tag};
use crate::ring::{ring, Consumer, Producer};
use crate::window::Ts;
use bytemuck::Pod;
use std::marker::PhantomData;

/// Slots of a shard's results ring beyond what a close can need.
const RING: usize = 4096;

/// Feed positions between progress reports sent on marks, when marks come at every rising
/// watermark (sessions): firings and idle calls report progress too.
const PROGRESS_EVERY: u64 = 256;

/// Why a job cannot run sharded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// The job does not build.
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// What the shards need of a keyed job (implemented by [`super::Job`]).
///
/// Every callback gets the result's key slot, its key, its window and its value.
pub trait ShardJob<R>: Send {
    /// Its result per key.
    type Value: Copy + Send;
    /// One record; `out` receives the results it caused.
    fn push<F: FnMut(u32, u64, Span, &Self::Value)>(&mut self, r: &R, out: F);
    /// The feed's watermark rose to `wm`; `out` receives the windows it closed.
    fn advance<F: FnMut(u32, u64, Span, &Self::Value)>(&mut self, wm: Ts, out: F);
    /// End of the stream; `out` receives the final results.
    fn finish<F: FnMut(u32, u64, Span, &Self::Value)>(&mut self, out: F);
    /// From now on only [`ShardJob::advance`] moves the watermark.
    fn watermark_from_outside(&mut self);
    /// Keys seen.
    fn keys(&self) -> usize;
    /// Most keys.
    fn capacity(&self) -> usize;
    /// Whether keys are their own slots (results on close come in key order).
    fn dense_keys(&self) -> bool;
    /// Its window.
    fn window(&self) -> Window;
    /// Its emit mode.
    fn emit(&self) -> Emit;
    /// Its out-of-orderness and allowed lateness, ns.
    fn lateness(&self) -> (Ts, Ts);
    /// Windows one key can have open at once.
    fn windows_per_key(&self) -> usize;
}

impl<R, K, T, V, I, U> ShardJob<R> for super::Job<R, K, T, V, I, U>
where
    K: Fn(&R) -> u64 + Send,
    T: Fn(&R) -> Ts + Send,
    V: Copy + Send,
    I: Fn() -> V + Send,
    U: FnMut(&mut V, &R, Ts) + Send,
{
    type Value = V;
    #[inline(always)]
    fn push<F: FnMut(u32, u64, Span, &V)>(&mut self, r: &R, out: F) {
        self.push_slot(r, out);
    }
    fn advance<F: FnMut(u32, u64, Span, &V)>(&mut self, wm: Ts, out: F) {
        self.advance_slot(wm, out);
    }
    fn finish<F: FnMut(u32, u64, Span, &V)>(&mut self, out: F) {
        self.finish_slot(out);
    }
    fn watermark_from_outside(&mut self) {
        super::Job::watermark_from_outside(self);
    }
    #[inline(always)]
    fn keys(&self) -> usize {
        super::Job::keys(self)
    }
    fn capacity(&self) -> usize {
        self.stats().capacity
    }
    fn dense_keys(&self) -> bool {
        super::Job::dense_keys(self)
    }
    fn window(&self) -> Window {
        super::Job::window(self)
    }
    fn emit(&self) -> Emit {
        super::Job::emit(self)
    }
    fn lateness(&self) -> (Ts, Ts) {
        super::Job::lateness(self)
    }
    fn windows_per_key(&self) -> usize {
        super::Job::windows_per_key(self)
    }
}

/// One result on its way to the output stage, or a shard's progress (`value: None`).
#[derive(Clone, Copy, Debug)]
pub struct Emission<V> {
    /// Feed position of the record or mark that caused it (`u64::MAX`: the close).
    pub seq: u64,
    /// A mark's (or the close's) firings: the window's end (a session's start, by which the
    /// single-threaded operator orders them); a record's own results: `u64::MAX`.
    pub end: u64,
    /// A firing: its key's order (first-seen feed position, or the key itself when keys are
    /// dense); a record's result: its index among that record's results.
    pub idx: u64,
    /// The key.
    pub key: u64,
    /// Its window.
    pub span: Span,
    /// The result; `None` for progress.
    pub value: Option<V>,
}

impl<V: Copy> Keyed for Emission<V> {
    type Key = (u64, u64, u64);
    #[inline(always)]
    fn key(&self) -> (u64, u64, u64) {
        (self.seq, self.end, self.idx)
    }
}

/// A shard's job: its records in, its results out on its own ring.
pub struct KeyedOp<R, J: ShardJob<R>> {
    job: J,
    tx: Producer<Emission<J::Value>>,
    /// Feed position of the last record or mark seen (64-bit), and its 32-bit form.
    seq: u64,
    last32: u32,
    started: bool,
    /// Time and session windows: marks carry the feed's watermark.
    timed: bool,
    /// Session windows: marks come at every rising watermark; firings go by start.
    sessions: bool,
    /// Sparse keys: the feed position of each key's first record, in slot order (the
    /// single-threaded job's slot order, by which it fires windows and closes).
    first_seen: Vec<u64>,
    /// Slots a record (or a mark) needs free.
    need: usize,
    /// The last reader position sent as progress.
    sent: Option<u64>,
    /// Results staged.
    pub emitted: u64,
    /// Results that found no room (a bug if ever > 0: room is checked before each record).
    pub lost: u64,
    _r: PhantomData<fn(&R)>,
}

impl<R, J: ShardJob<R>> std::fmt::Debug for KeyedOp<R, J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedOp")
            .field("emitted", &self.emitted)
            .field("lost", &self.lost)
            .finish_non_exhaustive()
    }
}

impl<R, J: ShardJob<R>> KeyedOp<R, J> {
    /// The shard running `job`, sending on `tx` (of at least [`KeyedOp::ring_slots`] slots).
    fn new(mut job: J, tx: Producer<Emission<J::Value>>) -> Self {
        let sessions = matches!(job.window(), Window::Session { .. });
        let timed =
            sessions || matches!(job.window(), Window::Tumbling(_) | Window::Sliding { .. });
        if timed {
            job.watermark_from_outside();
        }
        let ordered = timed || job.emit() == Emit::OnClose;
        KeyedOp {
            first_seen: Vec::with_capacity(if ordered && !job.dense_keys() {
                job.capacity()
            } else {
                0
            }),
            need: 2 + Self::burst(&job),
            job,
            tx,
            seq: 0,
            last32: 0,
            started: false,
            timed,
            sessions,
            sent: None,
            emitted: 0,
            lost: 0,
            _r: PhantomData,
        }
    }

    /// The most results one record, mark or the close can emit at once.
    fn burst(job: &J) -> usize {
        let per_record = |windows: u64| (2 * windows + 1) as usize;
        match job.window() {
            // A mark fires one window end: at most one window per key.
            Window::Tumbling(_) => job.capacity().max(per_record(1)),
            Window::Sliding { size, slide } => job.capacity().max(per_record(size / slide)),
            Window::Count { size, slide } => per_record(size / slide),
            // A mark can close every open session; a late record can merge a key's sessions.
            Window::Session { .. } => {
                let per_key = job.windows_per_key();
                (job.capacity() * per_key).max(per_record(per_key as u64))
            }
            _ if job.emit() == Emit::OnClose => job.capacity(),
            _ => 1,
        }
    }

    /// Ring slots a shard of `job` needs: room for a burst beside the rest.
    fn ring_slots(job: &J) -> usize {
        RING + Self::burst(job)
    }

    /// The mark clocks a windowed job needs: its window ends, and where records of a window
    /// become too late when the allowed lateness is not a multiple of the slide.
    fn clocks(job: &J) -> Vec<Clock> {
        let (size, slide) = match job.window() {
            Window::Tumbling(size) => (size, size),
            Window::Sliding { size, slide } => (size, slide),
            Window::Session { .. } => {
                let gen = MarkGen::advances(job.lateness().0);
                return vec![Clock { gen, size: 0 }];
            }
            _ => {
                return vec![Clock {
                    gen: MarkGen::periodic(1024),
                    size: 0,
                }]
            }
        };
        let (ooo, lateness) = job.lateness();
        let mut clocks = vec![Clock {
            gen: MarkGen::windows(slide, 0, ooo, 1024),
            size,
        }];
        if lateness % slide != 0 {
            let gen = MarkGen::windows(slide, lateness % slide, ooo, u32::MAX);
            clocks.push(Clock { gen, size });
        }
        clocks
    }

    /// The 64-bit feed position of `seq32` (positions arrive in order; `u32` ones wrap).
    #[inline(always)]
    fn position(&mut self, seq32: u32) -> u64 {
        if self.started {
            self.seq += u64::from(seq32.wrapping_sub(self.last32));
        } else {
            self.seq = u64::from(seq32);
            self.started = true;
        }
        self.last32 = seq32;
        self.seq
    }

    #[inline(always)]
    fn stage(
        tx: &mut Producer<Emission<J::Value>>,
        emitted: &mut u64,
        lost: &mut u64,
        e: Emission<J::Value>,
    ) {
        match tx.stage(e) {
            Ok(()) => *emitted += 1,
            Err(_) => *lost += 1,
        }
    }

    /// Every later result of this shard comes at or after feed position `pos`.
    fn progress(&mut self, pos: u64) {
        if pos == 0 || self.sent == Some(pos) {
            return;
        }
        let p = Emission {
            seq: pos - 1,
            end: u64::MAX,
            idx: u64::MAX,
            key: 0,
            span: super::GLOBAL,
            value: None,
        };
        // No room: the output is behind anyway; the next mark or idle call tries again.
        if self.tx.stage(p).is_ok() {
            self.sent = Some(pos);
            self.tx.publish();
        }
    }

    /// Stages the firings of a mark (at `seq`) or of the close (`u64::MAX`), each ordered by
    /// its window's end, then by its key's order in the single-threaded job.
    fn fire(&mut self, seq: u64, wm: Option<Ts>) {
        let (tx, emitted, lost) = (&mut self.tx, &mut self.emitted, &mut self.lost);
        let (dense, first_seen) = (self.job.dense_keys(), &self.first_seen);
        let by_start = self.sessions;
        let out = |slot: u32, key: u64, span: Span, v: &J::Value| {
            let order = if dense {
                key
            } else {
                first_seen
                    .get(slot as usize)
                    .copied()
                    .unwrap_or(u64::MAX - 1)
            };
            let e = Emission {
                seq,
                end: if by_start { span.start } else { span.end },
                idx: order,
                key,
                span,
                value: Some(*v),
            };
            Self::stage(tx, emitted, lost, e);
        };
        match wm {
            Some(wm) => self.job.advance(wm, out),
            None => self.job.finish(out),
        }
    }
}

impl<R, J> ShardOp for KeyedOp<R, J>
where
    R: Pod + Send,
    J: ShardJob<R>,
{
    type Event = Record<R>;
    const STAGE: &'static str = "keyed job";
    const FRONTIER: bool = true;

    #[inline(always)]
    fn has_room(&mut self, _mark: bool) -> bool {
        self.tx.free_cached() >= self.need || self.tx.free_slots() >= self.need
    }

    #[inline(always)]
    fn on_event(&mut self, ev: &Record<R>) -> Tag {
        let seq = self.position(crate::engine::Event::seq(ev));
        let r = ev.value();
        let before = self.job.keys();
        let (tx, emitted, lost) = (&mut self.tx, &mut self.emitted, &mut self.lost);
        let mut idx = 0;
        self.job.push(&r, |_, key, span, v| {
            let e = Emission {
                seq,
                end: u64::MAX,
                idx,
                key,
                span,
                value: Some(*v),
            };
            Self::stage(tx, emitted, lost, e);
            idx += 1;
        });
        if self.job.keys() > before && self.first_seen.len() < self.first_seen.capacity() {
            self.first_seen.push(seq);
        }
        Tag::default()
    }

    fn on_mark(&mut self, wm: u64, _clock: u8, seq: u32) {
        let pos = self.position(seq);
        // Progress first: the firings are keyed at `pos`, above it.
        let due = self.sent.map_or(true, |s| pos >= s + PROGRESS_EVERY);
        if !self.sessions || due {
            self.progress(pos);
        }
        if self.timed {
            self.fire(pos, Some(wm));
        }
    }

    fn on_idle(&mut self, pos: u32) {
        // The reader's position may be ahead of the last event seen here: the same wrap rule.
        let pos = self.seq + u64::from(pos.wrapping_sub(self.last32));
        if self.started {
            self.progress(pos);
        }
    }

    #[inline(always)]
    fn end_of_batch(&mut self) {
        self.tx.publish();
    }

    fn close(&mut self) {
        self.fire(u64::MAX, None);
        self.tx.publish();
        self.tx.close();
    }
}

/// The output stage's side: the shards' results merged in feed order, handed to `sink`.
pub struct Changelog<V: Copy, F> {
    merge: Merge<Emission<V>>,
    sink: F,
    /// Results handed to the sink.
    pub emitted: u64,
}

impl<V: Copy, F> std::fmt::Debug for Changelog<V, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changelog")
            .field("emitted", &self.emitted)
            .finish_non_exhaustive()
    }
}

impl<V: Copy + Send, F: FnMut(u64, Span, &V) + Send> Collector for Changelog<V, F> {
    fn work(&mut self, budget: usize) -> bool {
        let mut moved = false;
        for _ in 0..budget {
            let Some(e) = self.merge.pop() else { break };
            moved = true;
            if let Some(v) = &e.value {
                (self.sink)(e.key, e.span, v);
                self.emitted += 1;
            }
        }
        self.merge.release();
        moved
    }

    fn done(&self) -> bool {
        self.merge.done()
    }
}

/// A keyed job to run sharded: `build` makes one job per shard, `sink` receives the results in
/// the single-threaded job's order (records of type `R`).
pub struct Sharded<R, B, F> {
    build: B,
    sink: F,
    _r: PhantomData<fn(&R)>,
}

impl<R, B, F> std::fmt::Debug for Sharded<R, B, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sharded").finish_non_exhaustive()
    }
}

impl<R, B, F> Sharded<R, B, F> {
    /// Shards built by `build`, results to `sink`.
    pub fn new(build: B, sink: F) -> Self {
        Sharded {
            build,
            sink,
            _r: PhantomData,
        }
    }
}

impl<R, J, B, F> EngineJob for Sharded<R, B, F>
where
    R: Pod + Send,
    J: ShardJob<R>,
    B: Fn() -> Result<J, BuildError>,
    F: FnMut(u64, Span, &J::Value) + Send,
{
    type Op = KeyedOp<R, J>;
    type Collector = Changelog<J::Value, F>;
    type Error = ShardError;

    fn build(self, shards: usize) -> Result<Plan<Self::Op, Self::Collector>, ShardError> {
        let mut ops = Vec::with_capacity(shards);
        let mut rxs: Vec<Consumer<Emission<J::Value>>> = Vec::with_capacity(shards);
        let mut clocks = Vec::new();
        for _ in 0..shards {
            let job = (self.build)()?;
            clocks = KeyedOp::<R, J>::clocks(&job);
            let (tx, rx) = ring(KeyedOp::<R, J>::ring_slots(&job));
            ops.push(KeyedOp::new(job, tx));
            rxs.push(rx);
        }
        Ok(Plan {
            ops,
            collector: Changelog {
                merge: Merge::new(rxs),
                sink: self.sink,
                emitted: 0,
            },
            clocks,
        })
    }
}
