//! A shard worker: owns the books of its stocks, applies its events in feed order, and reports
//! each one to the output stage.

use super::alerts::SurvWorker;
use super::bars::{mark_watermark, BarsWorker, MARK};
use super::event::{Done, Event, SeqOrder, TOP_CHANGED};
use super::reader::UNTIMED;
use super::{Progress, RingCounters, Stage};
use crate::agg::{participant_of, BarInput, Touch};
use crate::book::Books;
use crate::clock::{ticks, TickScale};
use crate::itch::decode;
use crate::replay::{LOOKAHEAD, NEAR_LOOKAHEAD};
use crate::ring::{Consumer, Producer};
use hdrhistogram::Histogram;

/// Events a worker handles per [`Stage::do_work`] call before publishing.
pub const BATCH: usize = 1024;

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

/// A shard worker stage.
#[derive(Debug)]
pub struct Worker {
    /// Shard number.
    pub id: usize,
    rx: Consumer<Event>,
    /// The records to the output stage, their ring's counters, and the book-update latency.
    pub out: Reporter,
    /// This shard's books (its stocks only).
    pub books: Books,
    /// Events taken from the input ring.
    pub popped: u64,
    /// Events decoded and applied.
    pub processed: u64,
    /// Events whose bytes did not decode (never expected: the reader validated them).
    pub undecodable: u64,
    /// Feed order of this worker's events (a violation is never expected: a ring is FIFO and
    /// the reader numbers in file order).
    pub order: SeqOrder,
    /// Event origin → taken by this worker, ns (reader work, the ring hop, and queueing).
    pub queue_latency: Histogram<u64>,
    scale: TickScale,
    /// Read the TSC per event for the queue and book-update stages (off: the worker reads no
    /// clock; end to end is still timed on every event, the worker stages and the output hop
    /// are not).
    stage_timing: bool,
    /// The windowed bars of this shard's stocks, when the run computes them.
    pub bars: Option<BarsWorker>,
    /// The surveillance detectors of this shard's stocks, when the run has them.
    pub surv: Option<SurvWorker>,
    /// Watermark marks taken.
    pub marks: u64,
    done: bool,
}

/// A worker's output side: it ends each event, timing it and reporting it to the output stage.
#[derive(Debug)]
pub struct Reporter {
    tx: Producer<Done>,
    /// The output ring's counters (the worker is its producer).
    pub counters: RingCounters,
    /// Decode + book update + top-of-book check, ns: from taking the event to taking the next one,
    /// or to the end of the batch.
    pub book_latency: Histogram<u64>,
    scale: TickScale,
    stage_timing: bool,
}

impl Reporter {
    /// Ends an event that started at `t0` at `t1`: records its book-update time and stages its
    /// record for the output stage, stamped `t1`.
    #[inline(always)]
    fn close(&mut self, mut d: Done, t0: u64, t1: u64) {
        if d.origin != UNTIMED && self.stage_timing {
            self.book_latency
                .saturating_record(self.scale.between(t0, t1));
        }
        d.pushed = t1;
        // Room was reserved before the batch: cannot fail.
        if self.tx.stage(d).is_ok() {
            self.counters.pushed += 1;
        }
    }
}

impl Worker {
    /// Worker `id` reading `rx`, applying to `books`, reporting on `tx`.
    pub fn new(
        id: usize,
        rx: Consumer<Event>,
        tx: Producer<Done>,
        books: Books,
        scale: TickScale,
        stage_timing: bool,
    ) -> Worker {
        Worker {
            id,
            out: Reporter {
                counters: RingCounters::new(tx.capacity()),
                tx,
                book_latency: crate::latency::histogram(),
                scale,
                stage_timing,
            },
            rx,
            books,
            popped: 0,
            processed: 0,
            undecodable: 0,
            order: SeqOrder::default(),
            queue_latency: crate::latency::histogram(),
            scale,
            stage_timing,
            bars: None,
            surv: None,
            marks: 0,
            done: false,
        }
    }

    /// Computes windowed bars of this shard's stocks.
    pub fn with_bars(mut self, bars: BarsWorker) -> Worker {
        self.bars = Some(bars);
        self
    }

    /// Runs the surveillance detectors of this shard's stocks.
    pub fn with_surv(mut self, surv: SurvWorker) -> Worker {
        self.surv = Some(surv);
        self
    }
}

impl Stage for Worker {
    fn do_work(&mut self) -> Progress {
        if self.done {
            return Progress::Done;
        }
        let avail = self.rx.available();
        if avail == 0 {
            // Abandoned first, then empty: the producer's last publish precedes its flag.
            if self.rx.is_abandoned() && self.rx.available() == 0 {
                self.out.tx.close(); // the output stage sees this worker finish
                if let Some(b) = &mut self.bars {
                    b.close();
                }
                if let Some(s) = &mut self.surv {
                    s.close();
                }
                self.done = true;
                return Progress::Done;
            }
            if let Some(s) = &mut self.surv {
                let rx = &mut self.rx;
                s.idle(|| rx.available() == 0);
            }
            return Progress::Idle;
        }
        let mut room = self.out.tx.free_cached();
        if room < avail.min(BATCH) {
            room = self.out.tx.free_slots();
        }
        let n = avail.min(BATCH).min(room);
        if n == 0 {
            self.out.counters.full += 1;
            return Progress::Idle;
        }
        // Two copies of the loop: the plain run's has no bars branches at all (measured: the
        // branches cost the book pipeline 7–10 %).
        if self.bars.is_some() || self.surv.is_some() {
            self.batch::<true>(n)
        } else {
            self.batch::<false>(n)
        }
    }
}

impl Worker {
    /// Processes `n` events (fewer if the bars' or alerts' ring runs short of room); `BARS`:
    /// this run computes bars or surveillance (`self.bars` or `self.surv` is `Some`).
    #[inline(always)]
    fn batch<const BARS: bool>(&mut self, n: usize) -> Progress {
        // The events are read in place (no copy out of the ring), with the look-ahead the
        // single-threaded replay uses on the file: ring slots 32 ahead (they come from the
        // reader's core), order-table slots 16 ahead, ladder touches 4 ahead — past the end of
        // this batch too, as far as the ring is known to hold events.
        let (a, b) = self.rx.read_slices(n + 2 * LOOKAHEAD);
        let at = |i: usize| a.get(i).or_else(|| b.get(i.wrapping_sub(a.len())));
        // One TSC read per event: the read that starts event k also ends event k − 1 (whose
        // record is staged only then, stamped with it); one more read closes the batch.
        let mut open: Option<(Done, u64)> = None;
        let mut taken = 0;
        for i in 0..n {
            if let Some(e) = at(i + LOOKAHEAD) {
                self.books.prefetch_frame(&e.body);
            }
            if let Some(e) = at(i + NEAR_LOOKAHEAD) {
                self.books.prefetch_frame_levels(&e.body);
            }
            if let Some(e) = at(i + 2 * LOOKAHEAD) {
                crate::feed::frame::prefetch(e as *const Event as *const u8);
            }
            let Some(ev) = at(i) else { break };
            let is_mark = BARS && ev.body[0] == MARK;
            if BARS {
                if let Some(b) = &mut self.bars {
                    // Room for whatever this item can fire, or stop here until the output drains.
                    if !b.has_room(is_mark) {
                        break;
                    }
                }
                if let Some(s) = &mut self.surv {
                    if !s.has_room() {
                        break;
                    }
                }
            }
            taken += 1;
            if is_mark {
                self.marks += 1;
                if let Some(b) = &mut self.bars {
                    let books = &self.books;
                    b.mark(mark_watermark(ev), |l| {
                        books.symbol(l).copied().unwrap_or(*b"?       ")
                    });
                }
                if let Some(s) = &mut self.surv {
                    s.mark(mark_watermark(ev), ev.seq, &self.books);
                }
                continue;
            }
            let t_pop = if self.stage_timing { ticks() } else { 0 };
            if let Some((d, t0)) = open.take() {
                self.out.close(d, t0, t_pop);
            }
            let locate = ev.locate();
            let t = ev.body[0];
            let mut flags = 0;
            match decode(ev.message(), 0) {
                Ok(m) if BARS && self.surv.is_some() => {
                    if let Some(s) = &mut self.surv {
                        if s.event(&m, &mut self.books, ev.seq, ev.origin) {
                            flags = TOP_CHANGED;
                        }
                    }
                    self.processed += 1;
                }
                Ok(m) => {
                    // Bars: what the message adds, and (per-participant rows) whose it is, read
                    // before the books forget an order it removes.
                    let mut bar_in = match &self.bars {
                        Some(_) if BARS && locate != 0 => Some(BarInput::classify(&m, &self.books)),
                        _ => None,
                    };
                    let mpid = match &self.bars {
                        Some(b) if BARS && b.by_participant() => participant_of(&m, &self.books),
                        _ => None,
                    };
                    if CHANGES_BOOK[t as usize] {
                        let before = Touch::of(&self.books, locate);
                        self.books.apply(&m);
                        let after = Touch::of(&self.books, locate);
                        if after != before {
                            flags = TOP_CHANGED;
                            if BARS {
                                if let Some(x) = &mut bar_in {
                                    x.touch = Some(after);
                                }
                            }
                        }
                    } else {
                        self.books.apply(&m);
                    }
                    if let (true, Some(b), Some(x)) = (BARS, &mut self.bars, bar_in) {
                        if !b.by_participant() {
                            let sym = self.books.symbol(locate).copied().unwrap_or(*b"?       ");
                            b.add(locate, m.timestamp(), ev.seq, &x, &sym);
                        } else if let Some(p) = mpid {
                            b.add_participant(p, m.timestamp(), ev.seq, &x);
                        }
                    }
                    self.processed += 1;
                }
                Err(_) => self.undecodable += 1,
            }
            if ev.origin != UNTIMED && self.stage_timing {
                self.queue_latency
                    .saturating_record(self.scale.between(ev.origin, t_pop));
            }
            self.order.observe(ev.seq);
            let done = Done {
                origin: ev.origin,
                pushed: 0,
                seq: ev.seq,
                locate,
                msg_type: t,
                flags,
            };
            open = Some((done, t_pop));
        }
        if let Some((d, t0)) = open {
            let t1 = if self.stage_timing { ticks() } else { 0 };
            self.out.close(d, t0, t1);
        }
        self.popped += taken as u64;
        self.rx.advance(taken);
        self.rx.release();
        self.out.tx.publish();
        if BARS {
            if let Some(b) = &mut self.bars {
                b.publish();
            }
            if let Some(s) = &mut self.surv {
                s.publish();
            }
        }
        if taken == 0 {
            return Progress::Idle;
        }
        Progress::Worked
    }
}
