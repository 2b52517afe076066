//! A live feed as an engine source: MoldUDP64 datagrams from one or two multicast lines
//! ([`Receiver`]), put in sequence order by the [`Arbiter`] (A/B lines, gaps, duplicates),
//! optionally with a re-request client filling the gaps both lines missed; out come the ITCH
//! messages, in sequence, each stamped with its packet's kernel receive time.
//!
//! [`LiveSource::advance`] never blocks: with nothing waiting it polls the sockets once
//! (nonblocking) and answers "nothing yet" ([`Source::ended`] is false), so the reader's thread
//! can wait, run its other stages, and see the stop flag. The feed ends when every session has
//! seen its end-of-session packet and has no hole left (a hole nobody fills is given up after the
//! arbiter's hold time, and counted).
//!
//! A live feed cannot be read twice, so the stocks an unfilled gap touched are found as the
//! messages go by ([`LiveSource::with_damage_scan`]): a [`DamageScan`] takes every message the
//! engine takes and counts, from the first gap's position on, the references to orders it never
//! saw — what the second pass over a capture finds.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::event::{Event, BODY};
use super::gap::{BookGap, DamageScan, DamagedStock, GapLine, GapSummary};
use super::FeedSource;
use crate::book::BookConfig;
use crate::clock::{ticks, TickScale};
use crate::engine::{Route, Source};
use crate::inspect::InspectError;
use crate::itch::{decode, DecodeErrorKind};
use crate::mold::{Arbiter, Delivered, MoldReport, Sink};
use crate::net::recv::{RecvStats, TimestampSource};
use crate::net::rerequest::{RequestStats, Rerequester};
use crate::net::HwStamping;
use crate::net::{now_ns, NetError, Receiver};

/// Messages queued between the arbiter and the reader before the queue grows (one poll drains
/// the sockets, which can hold a few thousand packets).
const QUEUE: usize = 1 << 16;

/// Datagrams taken per poll: a backlog is drained in parts, with the re-request replies read,
/// gaps asked for and holes expired between them.
const POLL_DATAGRAMS: usize = 1024;

/// Why a live feed stopped early.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// A socket call failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// A message did not decode.
    #[error(transparent)]
    Feed(#[from] InspectError),
}

/// One message waiting for the reader.
#[derive(Clone, Copy)]
struct Msg {
    body: [u8; BODY],
    len: u8,
    /// Receive time, realtime ns.
    ts_ns: u64,
    seq: u64,
}

/// A range given up, and where it falls among the messages delivered.
struct Given {
    stream: u32,
    first: u64,
    last: u64,
    /// Messages queued before it.
    after: u64,
    /// The feed position of the first message handed to the engine after it.
    position: Option<u64>,
}

/// The arbiter's sink: delivered messages queued, lost ranges noted.
struct Queue {
    msgs: VecDeque<Msg>,
    /// Messages queued in all.
    queued: u64,
    /// Each range given up, in order.
    lost: Vec<Given>,
    /// Messages longer than an event's body (cut; none in ITCH 5.0).
    oversize: u64,
}

impl Sink for Queue {
    fn message(&mut self, m: Delivered<'_>) {
        let n = m.bytes.len().min(BODY);
        self.oversize += u64::from(m.bytes.len() > BODY);
        let mut body = [0; BODY];
        body[..n].copy_from_slice(&m.bytes[..n]);
        self.msgs.push_back(Msg {
            body,
            len: n as u8,
            ts_ns: m.ts_ns,
            seq: m.seq,
        });
        self.queued += 1;
    }

    fn lost(&mut self, stream: u32, first: u64, last: u64) {
        self.lost.push(Given {
            stream,
            first,
            last,
            after: self.queued,
            position: None,
        });
    }
}

/// Realtime ns → TSC ticks, from one pair of readings taken together.
#[derive(Clone, Copy, Debug)]
struct Epoch {
    realtime_ns: u64,
    ticks: u64,
    scale: TickScale,
}

impl Epoch {
    fn now(scale: TickScale) -> Epoch {
        // The pair is read twice around the realtime read; the midpoint of the TSC reads.
        let a = ticks();
        let realtime_ns = now_ns();
        let b = ticks();
        Epoch {
            realtime_ns,
            ticks: a + (b - a) / 2,
            scale,
        }
    }

    fn ticks_of(&self, ns: u64) -> u64 {
        if ns >= self.realtime_ns {
            self.ticks + self.scale.to_ticks(ns - self.realtime_ns)
        } else {
            self.ticks
                .saturating_sub(self.scale.to_ticks(self.realtime_ns - ns))
        }
    }
}

/// A live feed as an engine source.
pub struct LiveSource {
    rx: Receiver,
    arb: Arbiter,
    rq: Option<Rerequester>,
    queue: Queue,
    epoch: Epoch,
    lenient: bool,
    cur: Msg,
    ts: u64,
    locate: u16,
    ended: bool,
    /// Messages taken off the queue (skipped ones too).
    popped: u64,
    /// Messages handed to the engine: the feed position of the next one.
    handed: u64,
    /// Lost ranges placed in the feed so far (a prefix of `queue.lost`).
    placed: usize,
    /// The first unfilled gap's feed position, for the output stage.
    book_gap: Arc<BookGap>,
    /// The stocks the gaps touched, found as the messages go by.
    damage: Option<Box<DamageScan>>,
    /// The reader's time and CPU time over the polls that brought datagrams.
    span: ReadSpan,
    /// Frames of a type ITCH 5.0 does not define: counted and skipped.
    pub skipped_unknown: u64,
    /// Known types with a wrong length, counted and skipped (lenient mode only).
    pub skipped_bad_lengths: u64,
}

impl std::fmt::Debug for LiveSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSource")
            .field("lines", &self.rx.lines())
            .field("queued", &self.queue.msgs.len())
            .field("ended", &self.ended)
            .finish()
    }
}

impl LiveSource {
    /// Messages from `rx` through `arb` (its `ab` or `channels` naming `rx`'s lines), gaps asked
    /// of `rq` if given; receive times converted to ticks at `scale`.
    pub fn new(
        rx: Receiver,
        arb: Arbiter,
        rq: Option<Rerequester>,
        scale: TickScale,
        lenient: bool,
    ) -> LiveSource {
        LiveSource {
            rx,
            arb,
            rq,
            queue: Queue {
                msgs: VecDeque::with_capacity(QUEUE),
                queued: 0,
                lost: Vec::new(),
                oversize: 0,
            },
            epoch: Epoch::now(scale),
            lenient,
            cur: Msg {
                body: [0; BODY],
                len: 0,
                ts_ns: 0,
                seq: 0,
            },
            ts: 0,
            locate: 0,
            ended: false,
            popped: 0,
            handed: 0,
            placed: 0,
            book_gap: Arc::new(BookGap::default()),
            damage: None,
            span: ReadSpan::default(),
            skipped_unknown: 0,
            skipped_bad_lengths: 0,
        }
    }

    /// Also finds the stocks the unfilled gaps touch ([`DamageScan`]), with books of `cfg`
    /// (the run's capacities, so that an order the run's books refused is unknown there too):
    /// their tables are allocated and faulted in now, once, and grow no further (left to fault
    /// on first touch, they cost the reader +72 % per datagram on a short feed).
    pub fn with_damage_scan(mut self, cfg: BookConfig) -> LiveSource {
        let mut scan = DamageScan::live(cfg);
        scan.prefault();
        self.damage = Some(Box::new(scan));
        self
    }

    /// One nonblocking poll of the lines and the re-request replies; holes open too long given
    /// up, open ones asked for.
    fn poll(&mut self) -> Result<(), NetError> {
        let LiveSource {
            rx, arb, rq, queue, ..
        } = self;
        let n = rx.poll_up_to(Duration::ZERO, POLL_DATAGRAMS, |d| {
            arb.push(d, queue);
        })?;
        if n > 0 {
            self.span.polled(n as u64);
        }
        // The clocks are paired again at every poll: the TSC rate is a measured estimate, and
        // its error over the seconds since a single pairing would show as latency; the
        // messages just read are recent, and are all converted with this pair (the next poll
        // comes only once the queue is empty).
        self.epoch = Epoch::now(self.epoch.scale);
        if let Some(rq) = rq.as_mut() {
            if let Some(key) = arb.stream_key(0) {
                rq.poll(key.lines.0, |d| {
                    arb.push(d, queue);
                })?;
            }
            rq.request_gaps(arb)?;
        }
        arb.expire(now_ns(), queue);
        Ok(())
    }

    /// Every session has ended and has nothing missing before its end.
    fn session_over(&self) -> bool {
        let n = self.arb.streams() as u32;
        n > 0
            && (0..n).all(|id| {
                self.arb.stream(id).is_some_and(|s| {
                    s.end_of_session() && s.expected().is_some_and(|e| e >= s.high())
                })
            })
    }

    /// Takes the queued message `m` if it decodes: `Ok(false)` when skipped.
    fn take(&mut self, m: Msg) -> Result<bool, InspectError> {
        // A bad message is named by its sequence number (there is no byte offset).
        match decode(&m.body[..m.len as usize], m.seq) {
            Ok(d) => {
                self.ts = d.timestamp();
                self.locate = d.stock_locate();
                if let Some(scan) = self.damage.as_deref_mut() {
                    scan.take(&d);
                }
                self.cur = m;
                Ok(true)
            }
            Err(e) if matches!(e.kind, DecodeErrorKind::UnknownType(_)) => {
                self.skipped_unknown += 1;
                Ok(false)
            }
            Err(_) if self.lenient => {
                self.skipped_bad_lengths += 1;
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Places the ranges given up before queued message `index`, about to be handed to the
    /// engine at feed position `self.handed`; the first is published for the output stage
    /// before the message goes out (see [`BookGap`] for the ordering).
    #[inline]
    fn place_gaps(&mut self, index: u64) {
        while let Some(g) = self.queue.lost.get_mut(self.placed) {
            if g.after > index {
                break;
            }
            g.position = Some(self.handed);
            self.book_gap.note(self.handed as u32);
            if let Some(scan) = self.damage.as_deref_mut() {
                scan.count_from(self.handed);
            }
            self.placed += 1;
        }
    }

    /// What the feed handler saw (allocates: call it at the end).
    pub fn report(&self) -> LiveReport {
        let recv = self.rx.stats();
        LiveReport {
            timestamps: recv.timestamps(),
            hw_timestamps: self.rx.hw_stamping().cloned(),
            recv,
            mold: self.arb.report(),
            lost: self
                .queue
                .lost
                .iter()
                .map(|g| GapLine {
                    stream: g.stream,
                    first: g.first,
                    last: g.last,
                    // A range given up after the last message: at the end of the feed.
                    position: g.position.unwrap_or(self.handed),
                })
                .collect(),
            rerequests: self.rq.as_ref().map(Rerequester::stats),
            end_of_session: self.session_over(),
            oversize: self.queue.oversize,
            damaged_stocks: self.damage.as_deref().map(DamageScan::stocks),
            reader: self.span,
        }
    }
}

impl Source for LiveSource {
    type Event = Event;
    type Error = LiveError;

    fn advance(&mut self) -> Option<Result<(), LiveError>> {
        let mut polled = false;
        loop {
            if let Some(m) = self.queue.msgs.pop_front() {
                let index = self.popped;
                self.popped += 1;
                // The gaps before it first: the damage scan counts from the first one on, this
                // message included (a skipped message leaves `handed` as it is, so the next
                // one taken gets the same position).
                if self.placed < self.queue.lost.len() {
                    self.place_gaps(index);
                }
                match self.take(m) {
                    Ok(true) => {
                        self.handed += 1;
                        return Some(Ok(()));
                    }
                    Ok(false) => continue,
                    Err(e) => return Some(Err(e.into())),
                }
            }
            if self.session_over() {
                self.ended = true;
                return None;
            }
            if polled {
                return None; // nothing yet: `ended` stays false
            }
            if let Err(e) = self.poll() {
                return Some(Err(e.into()));
            }
            polled = true;
        }
    }

    fn ended(&self) -> bool {
        self.ended
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
        slot.body = self.cur.body;
    }

    #[inline(always)]
    fn arrival(&self) -> Option<u64> {
        Some(self.epoch.ticks_of(self.cur.ts_ns))
    }
}

impl FeedSource for LiveSource {
    fn skipped(&self) -> (u64, u64) {
        (self.skipped_unknown, self.skipped_bad_lengths)
    }

    fn book_gap(&self) -> Option<Arc<BookGap>> {
        Some(self.book_gap.clone())
    }
}

impl LiveReport {
    /// The unfilled gaps for the report, `None` when nothing was lost; with the stocks they
    /// touched when the source looked for them.
    pub fn book_gap(&self) -> Option<GapSummary> {
        let g = GapSummary::of(self.lost.clone())?;
        Some(match &self.damaged_stocks {
            Some(d) => g.with_damage(d.clone()),
            None => g,
        })
    }
}

/// What a live run's feed handler saw.
#[derive(Debug, Clone, Serialize)]
pub struct LiveReport {
    /// Which clock stamped the packets (the origin of the run's latency).
    pub timestamps: TimestampSource,
    /// What `--hw-timestamps` did: the NIC told to stamp, or why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hw_timestamps: Option<HwStamping>,
    /// The receiver's counters (datagrams, kernel drops).
    pub recv: RecvStats,
    /// The arbiter's report: lines, sessions, gaps (filled and not), duplicates.
    pub mold: MoldReport,
    /// Ranges given up, in the order they were.
    pub lost: Vec<GapLine>,
    /// The re-request client's counters, when there was one.
    pub rerequests: Option<RequestStats>,
    /// Every session ended (not stopped by Ctrl-C).
    pub end_of_session: bool,
    /// Messages longer than an event carries (cut short; none in ITCH 5.0).
    pub oversize: u64,
    /// The stocks the unfilled gaps touched, when looked for (in `book_gap`'s report).
    #[serde(skip)]
    pub damaged_stocks: Option<Vec<DamagedStock>>,
    /// What reading the datagrams cost the reader thread.
    pub reader: ReadSpan,
}

/// The reader thread's wall time and CPU time from the end of the first poll that brought
/// datagrams to the end of the last, and the datagrams the polls after the first brought: what
/// receiving costs it, apart from the time the host gave its core to others. While a backlog
/// drains, `datagrams / cpu_ns` is the rate a core of its own would hold.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ReadSpan {
    /// Datagrams brought by the polls after the first.
    pub datagrams: u64,
    /// Wall time, ns.
    pub wall_ns: u64,
    /// The reader thread's CPU time (user and system), ns.
    pub cpu_ns: u64,
    /// Wall and CPU time at the end of the first poll (0 before).
    #[serde(skip)]
    first: (u64, u64),
}

impl ReadSpan {
    /// A poll brought `n` datagrams (one `clock_gettime` per such poll).
    fn polled(&mut self, n: u64) {
        let now = (now_ns(), thread_cpu_ns());
        if self.first == (0, 0) {
            self.first = now;
            return;
        }
        self.datagrams += n;
        self.wall_ns = now.0.saturating_sub(self.first.0);
        self.cpu_ns = now.1.saturating_sub(self.first.1);
    }
}

/// The calling thread's CPU time, ns.
fn thread_cpu_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a live timespec the call writes.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    match r {
        0 => t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receive_stamps_convert_around_the_pairing() {
        let scale = TickScale::new(2.5);
        let e = Epoch {
            realtime_ns: 1_000_000_000,
            ticks: 10_000_000,
            scale,
        };
        assert_eq!(e.ticks_of(1_000_000_000), 10_000_000);
        // 1 ms later / earlier is 2.5 M ticks away.
        assert_eq!(e.ticks_of(1_001_000_000), 12_500_000);
        assert_eq!(e.ticks_of(999_000_000), 7_500_000);
        // Far before the TSC's zero: clamped, not wrapped.
        assert_eq!(e.ticks_of(0), 0);
    }
}
