//! One MoldUDP64 session put back in sequence order.
//!
//! **Policy** (what a feed handler in front of a book needs): the consumer sees every message at
//! most once and always in sequence order, so a book is never updated out of order.
//! - A packet beyond the next expected sequence opens a **gap** (first, last), recorded with the
//!   capture time it was noticed. Its messages are **held back**, copied into a preallocated
//!   reorder window (`hold_messages` messages, `hold_bytes` bytes), waiting for the hole to fill
//!   — from the other line ([`crate::mold::arbiter`]), a re-request, or a late packet.
//! - A message that fills a hole is counted `recovered` on its gap; when the hole at the head
//!   closes, it and every held message after it are delivered at once, in order (`held` = true).
//! - The hole at the head is **given up** (its messages counted `lost` and reported to
//!   [`Sink::lost`], the held messages after it delivered) when it has been open `hold_ns` of
//!   capture time (checked on every packet and by [`Stream::expire`]), when the window cannot take
//!   another message, or at [`Stream::finish`]. A copy arriving after that is a duplicate.
//! - With `hold_messages` = 0 nothing is held: a gap is lost the moment a later packet arrives.
//! - Copies of a message already delivered or held are dropped and counted as duplicates.
//! - The first packet sets the expected sequence (a capture joins mid-session) unless
//!   `start` says otherwise (e.g. 1, to report a missing start as a gap).
//!
//! After [`Stream::new`] nothing here allocates: the window, the held list and the gap list are
//! fixed; a gap past the gap list's capacity is counted in `gaps_overflow`, still handled. Held
//! bytes are copied once into the window's arena (the out-of-order path only; in-order messages
//! go to the consumer straight from the datagram), which is compacted when delivered messages'
//! bytes stand in the way of a new one.

use serde::Serialize;

use super::packet::{Packet, PacketKind};

/// The reorder window and the gap list's size.
#[derive(Debug, Clone, Copy)]
pub struct StreamConfig {
    /// Messages held back while a hole is open (0: never hold; a gap is lost at once).
    pub hold_messages: usize,
    /// Bytes of held messages.
    pub hold_bytes: usize,
    /// Capture time a hole may stay open before it is given up.
    pub hold_ns: u64,
    /// Gaps recorded (more are counted, not recorded).
    pub max_gaps: usize,
    /// Sequence expected first; `None`: the first packet's.
    pub start: Option<u64>,
}

impl Default for StreamConfig {
    /// 4096 messages / 1 MiB held for up to 100 ms (an A/B skew is microseconds, a re-request
    /// round trip milliseconds); 1024 gaps recorded.
    fn default() -> Self {
        StreamConfig {
            hold_messages: 4096,
            hold_bytes: 1 << 20,
            hold_ns: 100_000_000,
            max_gaps: 1024,
            start: None,
        }
    }
}

/// A message handed to the consumer.
#[derive(Debug, Clone, Copy)]
pub struct Delivered<'a> {
    /// The stream's id (its index in the [`crate::mold::arbiter::Arbiter`]).
    pub stream: u32,
    /// Sequence number.
    pub seq: u64,
    /// The message bytes.
    pub bytes: &'a [u8],
    /// Capture time of the packet that brought it.
    pub ts_ns: u64,
    /// It waited in the reorder window for a hole before it to fill.
    pub held: bool,
}

/// Where a stream's messages go.
pub trait Sink {
    /// The next message in sequence order.
    fn message(&mut self, m: Delivered<'_>);
    /// Messages `first..=last` are given up: the next message delivered is `last + 1`.
    fn lost(&mut self, _stream: u32, _first: u64, _last: u64) {}
}

impl<F: FnMut(Delivered<'_>)> Sink for F {
    fn message(&mut self, m: Delivered<'_>) {
        self(m)
    }
}

/// A gap: messages `first..=last` were missing when a later sequence arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// First missing sequence.
    pub first: u64,
    /// Last missing sequence.
    pub last: u64,
    /// Capture time of the packet that showed it.
    pub noticed_ns: u64,
    /// Messages of it that arrived later (delivered in order).
    pub recovered: u64,
    /// Messages of it given up.
    pub lost: u64,
    /// Capture time it was fully recovered or given up.
    pub closed_ns: Option<u64>,
}

impl Gap {
    /// Messages in the gap.
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Never true (a gap holds at least one message); for clippy's `len` convention.
    pub fn is_empty(&self) -> bool {
        false
    }

    fn settle(&mut self, ts_ns: u64) {
        if self.closed_ns.is_none() && self.recovered + self.lost == self.len() {
            self.closed_ns = Some(ts_ns);
        }
    }
}

/// A stream's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StreamCounters {
    /// Packets pushed (data, heartbeat, end of session).
    pub packets: u64,
    /// Messages in those packets.
    pub messages: u64,
    /// Messages delivered.
    pub delivered: u64,
    /// Of those, delivered after waiting in the window.
    pub delivered_held: u64,
    /// Copies dropped (already delivered, held, or given up).
    pub duplicates: u64,
    /// Heartbeat packets.
    pub heartbeats: u64,
    /// Gaps noticed (recorded or not).
    pub gaps: u64,
    /// Gaps not recorded: the gap list was full.
    pub gaps_overflow: u64,
    /// Missing messages that arrived later.
    pub recovered: u64,
    /// Missing messages given up.
    pub lost: u64,
    /// Times the window was full and a hole was given up early.
    pub window_full: u64,
}

#[derive(Debug, Clone, Copy)]
struct Held {
    seq: u64,
    start: usize,
    len: usize,
    ts_ns: u64,
}

/// One session's sequencing state.
#[derive(Debug)]
pub struct Stream {
    id: u32,
    cfg: StreamConfig,
    /// Next sequence to deliver (`None` before the first packet).
    expected: Option<u64>,
    /// One past the highest sequence known to exist.
    high: u64,
    first_seq: Option<u64>,
    end_of_session: bool,
    held: Vec<Held>,
    /// Bytes of the held messages, in arrival order (compacted when dead bytes block a hold).
    arena: Vec<u8>,
    /// Bytes of the messages still held (the arena also holds delivered ones until compacted).
    held_bytes: usize,
    /// Scratch for compaction: held indices by arena position.
    by_start: Vec<usize>,
    gaps: Vec<Gap>,
    counters: StreamCounters,
}

impl Stream {
    /// A stream with its window and gap list allocated.
    pub fn new(id: u32, cfg: StreamConfig) -> Stream {
        Stream {
            id,
            cfg,
            expected: None,
            high: 0,
            first_seq: None,
            end_of_session: false,
            held: Vec::with_capacity(cfg.hold_messages),
            held_bytes: 0,
            by_start: Vec::with_capacity(cfg.hold_messages),
            arena: Vec::with_capacity(if cfg.hold_messages == 0 {
                0
            } else {
                cfg.hold_bytes
            }),
            gaps: Vec::with_capacity(cfg.max_gaps),
            counters: StreamCounters::default(),
        }
    }

    /// Takes one packet; delivers what is now in order to `sink`. `on_message` learns, for each
    /// message of the packet, whether it was new (`true`) or a duplicate.
    pub fn push_with(
        &mut self,
        p: &Packet<'_>,
        ts_ns: u64,
        sink: &mut impl Sink,
        mut on_message: impl FnMut(u64, bool),
    ) {
        self.counters.packets += 1;
        if self.expected.is_none() {
            let start = self.cfg.start.unwrap_or(p.sequence());
            self.expected = Some(start);
            self.high = start;
        }
        self.expire(ts_ns, sink);
        match p.kind() {
            PacketKind::Heartbeat => self.counters.heartbeats += 1,
            PacketKind::EndOfSession => self.end_of_session = true,
            PacketKind::Data(_) => {}
        }
        let high_before = self.high;
        if p.sequence() > self.high {
            self.notice_gap(self.high, p.sequence() - 1, ts_ns);
        }
        self.high = self.high.max(p.next_sequence());
        for m in p.messages() {
            self.counters.messages += 1;
            let fresh = self.accept(m.seq, m.bytes, ts_ns, high_before, sink);
            if fresh {
                self.first_seq.get_or_insert(m.seq);
            } else {
                self.counters.duplicates += 1;
            }
            on_message(m.seq, fresh);
        }
    }

    /// [`Stream::push_with`] without the per-message report.
    pub fn push(&mut self, p: &Packet<'_>, ts_ns: u64, sink: &mut impl Sink) {
        self.push_with(p, ts_ns, sink, |_, _| {})
    }

    /// Gives up every hole open `hold_ns` or longer at `now_ns` (call it while idle, live).
    pub fn expire(&mut self, now_ns: u64, sink: &mut impl Sink) {
        while let Some(exp) = self.hole() {
            if now_ns.saturating_sub(self.noticed(exp, now_ns)) < self.cfg.hold_ns {
                return;
            }
            self.give_up_head(exp, u64::MAX, now_ns, sink);
        }
    }

    /// End of input: gives up every open hole and delivers everything held.
    pub fn finish(&mut self, now_ns: u64, sink: &mut impl Sink) {
        while let Some(exp) = self.hole() {
            self.give_up_head(exp, u64::MAX, now_ns, sink);
        }
    }

    /// The head of an open hole: the next expected sequence, when something after it exists.
    fn hole(&self) -> Option<u64> {
        self.expected.filter(|&e| self.high > e)
    }

    /// When the hole at `seq` was noticed (its gap's time; if the gap was not recorded, the
    /// earliest held arrival, else `now_ns`).
    fn noticed(&self, seq: u64, now_ns: u64) -> u64 {
        match self.gap_index(seq) {
            Some(i) => self.gaps[i].noticed_ns,
            None => self.held.iter().map(|h| h.ts_ns).min().unwrap_or(now_ns),
        }
    }

    fn notice_gap(&mut self, first: u64, last: u64, ts_ns: u64) {
        self.counters.gaps += 1;
        if self.gaps.len() < self.gaps.capacity() {
            let g = Gap {
                first,
                last,
                noticed_ns: ts_ns,
                recovered: 0,
                lost: 0,
                closed_ns: None,
            };
            self.gaps.push(g);
        } else {
            self.counters.gaps_overflow += 1;
        }
    }

    /// The recorded gap holding `seq` (gaps are recorded in increasing, disjoint order).
    fn gap_index(&self, seq: u64) -> Option<usize> {
        let i = self.gaps.partition_point(|g| g.last < seq);
        (i < self.gaps.len() && self.gaps[i].first <= seq).then_some(i)
    }

    /// One message; `true` if new.
    fn accept(
        &mut self,
        seq: u64,
        bytes: &[u8],
        ts: u64,
        high_before: u64,
        sink: &mut impl Sink,
    ) -> bool {
        let Some(exp) = self.expected else {
            return false;
        };
        if seq < exp {
            return false;
        }
        // Nothing held (the usual case): no search.
        let pos = match self.held.is_empty() {
            true => 0,
            false => match self.held.binary_search_by_key(&seq, |h| h.seq) {
                Ok(_) => return false,
                Err(pos) => pos,
            },
        };
        if seq < high_before {
            self.recover(seq, ts);
        }
        if seq == exp {
            self.deliver(seq, bytes, ts, false, sink);
            self.drain(sink);
            return true;
        }
        if self.fits(bytes.len()) {
            self.hold(pos, seq, bytes, ts);
            return true;
        }
        // The window is full: give up the oldest hole (up to this message if it lies inside).
        self.counters.window_full += 1;
        loop {
            let exp = self.expected.unwrap_or(seq);
            self.give_up_head(exp, seq, ts, sink);
            if self.expected == Some(seq) {
                self.deliver(seq, bytes, ts, false, sink);
                self.drain(sink);
                return true;
            }
            if self.fits(bytes.len()) {
                let pos = self.held.partition_point(|h| h.seq < seq);
                self.hold(pos, seq, bytes, ts);
                return true;
            }
        }
    }

    fn fits(&self, len: usize) -> bool {
        self.held.len() < self.cfg.hold_messages && self.held_bytes + len <= self.cfg.hold_bytes
    }

    fn hold(&mut self, pos: usize, seq: u64, bytes: &[u8], ts_ns: u64) {
        if self.arena.len() + bytes.len() > self.cfg.hold_bytes {
            self.compact();
        }
        self.held_bytes += bytes.len();
        let start = self.arena.len();
        self.arena.extend_from_slice(bytes);
        self.held.insert(
            pos,
            Held {
                seq,
                start,
                len: bytes.len(),
                ts_ns,
            },
        );
    }

    /// Moves the held messages' bytes to the front of the arena, in arena order (each moves down
    /// or stays, so no byte is overwritten before it is moved).
    fn compact(&mut self) {
        self.by_start.clear();
        self.by_start.extend(0..self.held.len());
        let held = &self.held;
        self.by_start.sort_unstable_by_key(|&i| held[i].start);
        let mut to = 0;
        for &i in &self.by_start {
            let h = &mut self.held[i];
            self.arena.copy_within(h.start..h.start + h.len, to);
            h.start = to;
            to += h.len;
        }
        self.arena.truncate(to);
    }

    fn recover(&mut self, seq: u64, ts: u64) {
        self.counters.recovered += 1;
        if let Some(i) = self.gap_index(seq) {
            self.gaps[i].recovered += 1;
            self.gaps[i].settle(ts);
        }
    }

    /// Loses `exp..min(limit, first held, high)` and delivers what then follows in order.
    fn give_up_head(&mut self, exp: u64, limit: u64, ts: u64, sink: &mut impl Sink) {
        let next = self.held.first().map_or(self.high, |h| h.seq).min(limit);
        if next > exp {
            self.lose(exp, next - 1, ts, sink);
            self.expected = Some(next);
        }
        self.drain(sink);
    }

    fn lose(&mut self, first: u64, last: u64, ts: u64, sink: &mut impl Sink) {
        self.counters.lost += last - first + 1;
        sink.lost(self.id, first, last);
        let mut i = self.gaps.partition_point(|g| g.last < first);
        while let Some(g) = self.gaps.get_mut(i).filter(|g| g.first <= last) {
            g.lost += last.min(g.last) - first.max(g.first) + 1;
            g.settle(ts);
            i += 1;
        }
    }

    fn deliver(&mut self, seq: u64, bytes: &[u8], ts_ns: u64, held: bool, sink: &mut impl Sink) {
        self.counters.delivered += 1;
        self.counters.delivered_held += u64::from(held);
        self.expected = Some(seq + 1);
        sink.message(Delivered {
            stream: self.id,
            seq,
            bytes,
            ts_ns,
            held,
        });
    }

    /// Delivers the held messages that now follow in order.
    fn drain(&mut self, sink: &mut impl Sink) {
        let mut n = 0;
        while let Some(&h) = self.held.get(n) {
            if Some(h.seq) != self.expected {
                break;
            }
            self.counters.delivered += 1;
            self.counters.delivered_held += 1;
            self.expected = Some(h.seq + 1);
            let bytes = &self.arena[h.start..h.start + h.len];
            sink.message(Delivered {
                stream: self.id,
                seq: h.seq,
                bytes,
                ts_ns: h.ts_ns,
                held: true,
            });
            n += 1;
        }
        if n > 0 {
            self.held_bytes -= self.held[..n].iter().map(|h| h.len).sum::<usize>();
            self.held.drain(..n);
        }
        if self.held.is_empty() {
            self.arena.clear();
        }
    }

    /// The id given at construction.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Next sequence to deliver (`None` before the first packet).
    pub fn expected(&self) -> Option<u64> {
        self.expected
    }

    /// First sequence delivered or held.
    pub fn first_seq(&self) -> Option<u64> {
        self.first_seq
    }

    /// Last sequence passed to the consumer: delivered, or given up if the stream's last event
    /// was a loss (`None` before any delivery).
    pub fn last_delivered(&self) -> Option<u64> {
        self.expected
            .filter(|&e| self.counters.delivered > 0 && e > 0)
            .map(|e| e - 1)
    }

    /// One past the highest sequence known to exist.
    pub fn high(&self) -> u64 {
        self.high
    }

    /// An end-of-session packet was seen.
    pub fn end_of_session(&self) -> bool {
        self.end_of_session
    }

    /// Messages waiting in the window.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// The gaps recorded, in sequence order.
    pub fn gaps(&self) -> &[Gap] {
        &self.gaps
    }

    /// The counters.
    pub fn counters(&self) -> &StreamCounters {
        &self.counters
    }
}
