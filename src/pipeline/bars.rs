//! Windowed bars in the pipeline: watermark marks from the reader, per-shard event-time windows
//! in the workers, and a deterministic merge of the workers' rows in the output stage.
//!
//! ```text
//!  reader ── events + marks(wm) ──▶ worker i: Bar panes per stock (window::TimeWindows)
//!    │  a mark at every window end the feed's watermark passes,      │ rows sorted by key,
//!    │  and every `every` messages; marks go to every worker          │ then MarkEnd(epoch)
//!    ▼                                                                ▼
//!  output: k-way merge of the workers' row streams by (epoch, phase, seq, start, locate)
//! ```
//!
//! **Why the output is the same for any worker count.** Watermarks come only from the reader,
//! which sees the whole feed, and reach every worker as marks at the same feed positions; a
//! worker's windows fire only at marks, and late firings are caused by one event. So every row
//! has a key that does not depend on the sharding: the mark's ordinal (`epoch`), then on-time rows
//! of that mark by (window start, locate), preceded by the late rows of the events since the
//! previous mark in feed order. Each worker emits its rows in key order and ends each mark with a
//! `MarkEnd`; the output emits the smallest head once every other worker's next key is known to
//! be larger (its head, or the last key it sent), so rows stream out as windows close, with no
//! buffer beyond the rings.
//!
//! **Bounded memory and no deadlock.** A mark fires at most one window per stock (marks step
//! through window ends one at a time), so a worker takes a mark only when its rows ring has room
//! for every stock it owns; an event fires at most `size / slide` late windows. Rings are sized
//! for that at construction.

use super::op::BookHook;
use crate::agg::{format_bar, participant_of, Bar, BarFormat, BarInput, BarKey, Touch, MAX_ROW};
use crate::book::Books;
use crate::engine::merge::{Keyed, Merge};
use crate::engine::{Clock, Collector, MarkGen};
use crate::itch::Message;
use crate::ring::{Consumer, Producer};
use crate::state::SparseIndex;
use crate::window::{Firing, FiringKind, TimeWindowConfig, TimeWindows};
use std::io::Write;

/// The bars job of a pipeline run.
pub struct BarsConfig {
    /// Window size, slide, offset, allowed lateness and out-of-orderness (emit on close).
    pub window: TimeWindowConfig,
    /// Also send a mark every this many messages (bounds the rows between two marks when late
    /// firings are allowed).
    pub mark_every: u32,
    /// Rows per stock or per participant.
    pub by: BarKey,
    /// Participants a worker can track (per-participant rows; more are counted and skipped).
    pub max_participants: usize,
    /// Only rows of this symbol (or participant), space-padded; or all.
    pub symbol: Option<[u8; 8]>,
    /// Row format.
    pub format: BarFormat,
    /// Where rows go (the output stage writes, buffered).
    pub sink: Box<dyn Write + Send>,
}

impl std::fmt::Debug for BarsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BarsConfig")
            .field("window", &self.window)
            .field("mark_every", &self.mark_every)
            .field("by", &self.by)
            .field("max_participants", &self.max_participants)
            .field("symbol", &self.symbol)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// What the bars job did.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct BarsReport {
    /// Marks the reader sent (each to every worker).
    pub marks: u64,
    /// Rows written (after the symbol filter).
    pub rows: u64,
    /// Of those, late firings (updated results of windows that had fired).
    pub late_rows: u64,
    /// Events dropped from every window they belong to as too late (the late ledger).
    pub dropped_late: u64,
    /// Largest lateness of a dropped event (watermark − timestamp), ns.
    pub max_lateness_ns: u64,
    /// Events refused because a stock's pane ring was full (never expected when sized from the
    /// configuration).
    pub overflow: u64,
    /// Rows a worker could not stage (never expected: room is reserved; a bug if not 0).
    pub lost: u64,
    /// Participant messages skipped because a worker's participant table was full.
    pub participants_overflow: u64,
}

/// Sort key of a row: (epoch, phase, seq, window start, key).
pub type RowKey = (u64, u8, u64, u64, u64);

/// One record on a worker → output rows ring: a bar row or the end of a mark.
#[derive(Clone, Copy, Debug)]
pub struct BarRecord {
    /// Marks seen by the worker when this was made (rows of mark m have epoch m; late rows
    /// after mark m − 1 too).
    pub epoch: u64,
    /// 0: late row (ordered by `seq`), 1: on-time row of the mark, 2: the mark's end.
    pub phase: u8,
    /// Feed position of the event that caused a late row (0 otherwise).
    pub seq: u64,
    /// Window start, ns.
    pub start: u64,
    /// Stock locate, or the participant's MPID as a big-endian number (so keys sort by name).
    pub key: u64,
    /// The stock's symbol or the participant's MPID, space-padded.
    pub symbol: [u8; 8],
    /// The window's bar.
    pub bar: Bar,
}

impl Keyed for BarRecord {
    type Key = RowKey;
    /// Its merge key.
    #[inline]
    fn key(&self) -> RowKey {
        (self.epoch, self.phase, self.seq, self.start, self.key)
    }
}

/// A worker's side of the bars job: one stock = one dense key (`locate / workers`); or one
/// participant = one slot of a fixed-capacity table of MPIDs.
#[derive(Debug)]
pub struct BarsWorker {
    windows: TimeWindows<Bar>,
    participants: Option<SparseIndex>,
    /// A mark's participant rows, sorted by MPID before they are sent (the windows fire in
    /// table-slot order); preallocated for every key, so filling it never allocates.
    scratch: Vec<BarRecord>,
    /// Participant messages skipped: the table was full.
    pub participants_overflow: u64,
    tx: Producer<BarRecord>,
    shard: usize,
    workers: usize,
    /// Keys this shard owns: the most rows one mark can fire.
    keys: usize,
    /// Most late rows one event can fire.
    per_event: usize,
    epoch: u64,
    wm: Option<u64>,
    seq: u64,
    last_seq32: u32,
    /// Rows staged.
    pub rows: u64,
    /// Rows that found no room (a bug if ever > 0).
    pub lost: u64,
    /// The number of its mark clock.
    clock: u8,
}

/// The mark clock of a bars job: a mark at every window end the watermark passes, and every
/// `mark_every` messages.
pub fn clock(cfg: &BarsConfig) -> Clock {
    let w = &cfg.window;
    Clock {
        gen: MarkGen::windows(w.slide, w.offset, w.max_out_of_orderness, cfg.mark_every),
        size: w.size,
    }
}

impl BarsWorker {
    /// Shard `shard` of `workers`, for locates below `max_locates`, sending rows on `tx`.
    ///
    /// # Errors
    /// An invalid window configuration.
    pub fn new(
        cfg: &BarsConfig,
        shard: usize,
        workers: usize,
        max_locates: usize,
        tx: Producer<BarRecord>,
    ) -> Result<BarsWorker, crate::window::WindowError> {
        let keys = Self::keys(cfg, workers, max_locates);
        // Between two marks, messages run up to a slide (plus the out-of-orderness) ahead of
        // the watermark the windows last saw: size their pane rings for that.
        let mut window = cfg.window;
        window.max_out_of_orderness = window.max_out_of_orderness.saturating_add(window.slide);
        Ok(BarsWorker {
            windows: TimeWindows::new(window, keys)?,
            participants: (cfg.by == BarKey::Participant).then(|| SparseIndex::new(keys)),
            scratch: Vec::with_capacity(if cfg.by == BarKey::Participant {
                keys
            } else {
                0
            }),
            participants_overflow: 0,
            tx,
            shard,
            workers: workers.max(1),
            keys,
            per_event: (cfg.window.size / cfg.window.slide.max(1)) as usize + 1,
            epoch: 1,
            wm: None,
            seq: 0,
            last_seq32: 0,
            rows: 0,
            lost: 0,
            clock: 0,
        })
    }

    /// Takes the marks of clock number `clock` (the run's clock list is the job's to order).
    pub fn on_clock(mut self, clock: u8) -> BarsWorker {
        self.clock = clock;
        self
    }

    /// Dense keys of a worker: the stocks it owns, or its participant table's capacity.
    fn keys(cfg: &BarsConfig, workers: usize, max_locates: usize) -> usize {
        match cfg.by {
            BarKey::Stock => max_locates.div_ceil(workers.max(1)),
            BarKey::Participant => cfg.max_participants.max(1),
        }
    }

    /// Ring slots the rows ring needs for this configuration.
    ///
    /// It holds, at worst, one mark's rows not yet merged (one per key, late rows of up to
    /// `mark_every` events, the end) and the late rows of the next mark's events: the merge can
    /// always take the rows of the older mark, so a worker never waits for room forever.
    pub fn ring_slots(cfg: &BarsConfig, workers: usize, max_locates: usize) -> usize {
        let keys = Self::keys(cfg, workers, max_locates);
        let per_event = (cfg.window.size / cfg.window.slide.max(1)) as usize + 1;
        keys + 2 + 2 * per_event * cfg.mark_every.max(1) as usize
    }

    /// Whether the rows ring has room for what the next item could fire.
    #[inline]
    pub fn has_room(&mut self, mark: bool) -> bool {
        let need = if mark { self.keys + 1 } else { self.per_event };
        self.tx.free_cached() >= need || self.tx.free_slots() >= need
    }

    fn stage(tx: &mut Producer<BarRecord>, rows: &mut u64, lost: &mut u64, rec: BarRecord) {
        match tx.stage(rec) {
            Ok(()) => *rows += 1,
            Err(_) => *lost += 1,
        }
    }

    /// Adds one message of stock `locate` (≠ 0) at feed position `seq32`; `symbol` names it.
    #[inline]
    pub fn add(&mut self, locate: u16, ts: u64, seq32: u32, x: &BarInput, symbol: &[u8; 8]) {
        let dense = (locate as usize / self.workers) as u32;
        self.add_keyed(dense, u64::from(locate), ts, seq32, x, symbol);
    }

    /// Whether rows are per participant.
    #[inline(always)]
    pub fn by_participant(&self) -> bool {
        self.participants.is_some()
    }

    /// Adds one message attributed to participant `mpid` (per-participant rows; the touch is a
    /// stock's, so it is left out).
    #[inline]
    pub fn add_participant(&mut self, mpid: [u8; 4], ts: u64, seq32: u32, x: &BarInput) {
        let x = &BarInput { touch: None, ..*x };
        let key = u64::from(u32::from_be_bytes(mpid));
        let Some(table) = &mut self.participants else {
            return;
        };
        let dense = match table.get(key, 0) {
            Some(d) => d,
            None => match table.insert(key, 0) {
                Ok(e) => e.slot,
                Err(_) => {
                    self.participants_overflow += 1;
                    return;
                }
            },
        };
        let mut label = [b' '; 8];
        label[..4].copy_from_slice(&mpid);
        self.add_keyed(dense, key, ts, seq32, x, &label);
    }

    #[inline]
    fn add_keyed(
        &mut self,
        dense: u32,
        key: u64,
        ts: u64,
        seq32: u32,
        x: &BarInput,
        label: &[u8; 8],
    ) {
        self.seq = self
            .seq
            .wrapping_add(u64::from(seq32.wrapping_sub(self.last_seq32)));
        self.last_seq32 = seq32;
        let (epoch, seq) = (self.epoch, self.seq);
        let (tx, rows, lost) = (&mut self.tx, &mut self.rows, &mut self.lost);
        self.windows
            .add(dense, ts, x, self.wm, &mut |f: &Firing<Bar>| {
                if matches!(f.kind, FiringKind::Late) {
                    let rec = BarRecord {
                        epoch,
                        phase: 0,
                        seq,
                        start: f.start,
                        key,
                        symbol: *label,
                        bar: f.agg,
                    };
                    Self::stage(tx, rows, lost, rec);
                }
            });
    }

    /// A mark: fires every window it closes (stock symbols from `name`), then ends the mark.
    pub fn mark(&mut self, wm: u64, name: impl Fn(u16) -> [u8; 8]) {
        self.wm = Some(wm);
        let (epoch, shard, workers) = (self.epoch, self.shard, self.workers);
        let (tx, rows, lost) = (&mut self.tx, &mut self.rows, &mut self.lost);
        let participants = &self.participants;
        let scratch = &mut self.scratch;
        self.windows.advance(wm, &mut |f: &Firing<Bar>| {
            let (key, symbol) = match participants {
                None => {
                    let locate = (f.key as usize * workers + shard) as u16;
                    (u64::from(locate), name(locate))
                }
                Some(t) => {
                    let key = t.key_of(f.key).unwrap_or(0);
                    let mut label = [b' '; 8];
                    label[..4].copy_from_slice(&(key as u32).to_be_bytes());
                    (key, label)
                }
            };
            let rec = BarRecord {
                epoch,
                phase: 1,
                seq: 0,
                start: f.start,
                key,
                symbol,
                bar: f.agg,
            };
            if participants.is_some() && scratch.len() < scratch.capacity() {
                scratch.push(rec);
            } else {
                Self::stage(tx, rows, lost, rec);
            }
        });
        // A mark closes one window end (the reader steps through them), so at most one row
        // per key: sorted by (start, key), they are in merge order.
        self.scratch.sort_unstable_by_key(|r| (r.start, r.key));
        for rec in self.scratch.drain(..) {
            Self::stage(&mut self.tx, &mut self.rows, &mut self.lost, rec);
        }
        let end = BarRecord {
            epoch,
            phase: 2,
            seq: 0,
            start: 0,
            key: 0,
            symbol: [0; 8],
            bar: Bar::EMPTY,
        };
        if self.tx.stage(end).is_err() {
            self.lost += 1;
        }
        self.epoch += 1;
    }

    /// Publishes the staged rows.
    #[inline]
    pub fn publish(&mut self) {
        self.tx.publish();
    }

    /// End of input: no more rows.
    pub fn close(&mut self) {
        self.tx.close();
    }

    /// The windows' late ledger.
    pub fn ledger(&self) -> &crate::window::LateLedger {
        self.windows.ledger()
    }
}

/// What a bars hook learns before the books apply a message.
#[derive(Clone, Copy, Debug)]
pub struct BarsPre {
    input: Option<BarInput>,
    mpid: Option<[u8; 4]>,
    seq: u32,
}

impl BookHook for BarsWorker {
    type Pre = BarsPre;

    #[inline(always)]
    fn has_room(&mut self, mark: bool, _books: &Books) -> bool {
        BarsWorker::has_room(self, mark)
    }

    /// What the message adds, and (per-participant rows) whose it is, read before the books
    /// forget an order it removes.
    #[inline(always)]
    fn before(&mut self, m: &Message<'_>, books: &Books, seq: u32, _origin: u64) -> BarsPre {
        let locate = m.stock_locate();
        BarsPre {
            input: (locate != 0).then(|| BarInput::classify(m, books)),
            mpid: if self.by_participant() {
                participant_of(m, books)
            } else {
                None
            },
            seq,
        }
    }

    #[inline(always)]
    fn after(&mut self, pre: BarsPre, m: &Message<'_>, books: &Books, touch: Option<Touch>) {
        let Some(mut x) = pre.input else { return };
        if touch.is_some() {
            x.touch = touch;
        }
        let locate = m.stock_locate();
        let seq = pre.seq;
        if !self.by_participant() {
            let sym = books.symbol(locate).copied().unwrap_or(*b"?       ");
            self.add(locate, m.timestamp(), seq, &x, &sym);
        } else if let Some(p) = pre.mpid {
            self.add_participant(p, m.timestamp(), seq, &x);
        }
    }

    fn on_mark(&mut self, wm: u64, clock: u8, _seq: u32, books: &Books) {
        if clock & !crate::engine::STOP_FLAG == self.clock {
            self.mark(wm, |l| books.symbol(l).copied().unwrap_or(*b"?       "));
        }
    }

    #[inline(always)]
    fn end_of_batch(&mut self) {
        self.publish();
    }

    fn close(&mut self) {
        BarsWorker::close(self);
    }
}

/// The output stage's side: merges the workers' rows and writes them.
pub struct BarsMerge {
    merge: Merge<BarRecord>,
    sink: Box<dyn Write + Send>,
    format: BarFormat,
    by: BarKey,
    symbol: Option<[u8; 8]>,
    /// An on-time row held back: workers' partial rows of one participant and window arrive
    /// one after the other in key order, and are summed before writing.
    pending: Option<BarRecord>,
    /// Formatted rows not yet handed to the sink (preallocated; flushed before it could grow).
    out: Vec<u8>,
    /// Rows written.
    pub rows: u64,
    /// Late rows written.
    pub late_rows: u64,
    /// The first write error (writing stops there; the run still drains).
    pub error: Option<std::io::Error>,
}

impl std::fmt::Debug for BarsMerge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BarsMerge")
            .field("rows", &self.rows)
            .field("late_rows", &self.late_rows)
            .finish_non_exhaustive()
    }
}

impl Collector for BarsMerge {
    fn work(&mut self, budget: usize) -> bool {
        BarsMerge::work(self, budget)
    }

    fn done(&self) -> bool {
        BarsMerge::done(self)
    }
}

impl BarsMerge {
    /// A merge of one rows ring per worker into `cfg`'s sink.
    pub fn new(rxs: Vec<Consumer<BarRecord>>, cfg: BarsConfig) -> BarsMerge {
        let mut m = BarsMerge {
            merge: Merge::new(rxs),
            sink: cfg.sink,
            format: cfg.format,
            by: cfg.by,
            symbol: cfg.symbol,
            pending: None,
            out: Vec::with_capacity(Self::OUT_BYTES + MAX_ROW),
            rows: 0,
            late_rows: 0,
            error: None,
        };
        if m.format == BarFormat::Csv {
            let header = match m.by {
                BarKey::Stock => crate::agg::CSV_HEADER,
                BarKey::Participant => crate::agg::CSV_HEADER_PARTICIPANT,
            };
            if let Err(e) = writeln!(m.sink, "{header}") {
                m.error = Some(e);
            }
        }
        m
    }

    /// Bytes of formatted rows gathered before one write to the sink.
    const OUT_BYTES: usize = 1 << 20;

    /// Hands the gathered rows to the sink and flushes it.
    fn drain(&mut self) {
        if !self.out.is_empty() && self.error.is_none() {
            if let Err(e) = self
                .sink
                .write_all(&self.out)
                .and_then(|()| self.sink.flush())
            {
                self.error = Some(e);
            }
        }
        self.out.clear();
    }

    /// Whether every worker's stream has ended and been written.
    pub fn done(&self) -> bool {
        self.merge.done()
    }

    /// Moves up to `budget` records from the rings to the sink in key order; true if any moved.
    pub fn work(&mut self, budget: usize) -> bool {
        let mut moved = false;
        for _ in 0..budget {
            let Some(rec) = self.merge.pop() else { break };
            moved = true;
            self.emit(rec);
        }
        self.merge.release();
        // Under load rows gather up to a megabyte per write; as soon as the merge runs dry they
        // go out, so a live run's rows are never held back.
        if !moved || self.out.len() > Self::OUT_BYTES {
            self.drain();
        }
        if self.done() {
            if let Some(p) = self.pending.take() {
                self.write(&p);
            }
            self.drain();
            if let Err(e) = self.sink.flush() {
                self.error.get_or_insert(e);
            }
        }
        moved
    }

    /// Takes the next record in key order: sums it into the pending row when it is another
    /// worker's part of the same on-time row, otherwise writes the pending row and holds this one.
    fn emit(&mut self, rec: BarRecord) {
        if let Some(p) = &mut self.pending {
            if rec.phase == 1
                && p.phase == 1
                && (p.epoch, p.start, p.key) == (rec.epoch, rec.start, rec.key)
            {
                p.bar.merge(&rec.bar);
                return;
            }
        }
        if let Some(p) = self.pending.take() {
            self.write(&p);
        }
        if rec.phase != 2 {
            self.pending = Some(rec);
        }
    }

    fn write(&mut self, rec: &BarRecord) {
        if self.symbol.is_some_and(|s| s != rec.symbol) {
            return;
        }
        if self.error.is_some() {
            return;
        }
        let late = rec.phase == 0;
        if self.out.len() > Self::OUT_BYTES {
            self.drain();
        }
        format_bar(
            &mut self.out,
            self.format,
            self.by,
            &rec.symbol,
            rec.start,
            &rec.bar,
            late,
        );
        self.rows += 1;
        self.late_rows += late as u64;
    }
}
