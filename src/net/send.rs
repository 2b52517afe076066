//! The sender: a [`PacketList`] out over UDP to line A (and B, the same packets), paced from the
//! packets' times, with heartbeats while idle and an end of session at the end.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::fault::{Faults, LineFaults, Plan};
use super::pace::{PaceReport, Pacer};
use super::packets::PacketList;
use super::{sock_err, socket, NetError};
use crate::mold::packet::{write_packet, END_OF_SESSION};

/// Where and how to send.
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// Line A, and line B if two.
    pub lines: Vec<SocketAddrV4>,
    /// `None`: as fast as possible; `Some(k)`: k× the feed's pace.
    pub speed: Option<f64>,
    /// Interface address to send from (IP_MULTICAST_IF).
    pub iface: Option<Ipv4Addr>,
    /// Multicast TTL.
    pub ttl: u32,
    /// Faults of line A and line B.
    pub faults: [Faults; 2],
    /// A heartbeat goes out after this long without a packet.
    pub heartbeat: Duration,
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions {
            lines: Vec::new(),
            speed: Some(1.0),
            iface: None,
            ttl: 1,
            faults: [Faults::default(); 2],
            heartbeat: Duration::from_secs(1),
        }
    }
}

/// One line's counters.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LineSent {
    /// Where it went.
    pub dst: Option<SocketAddrV4>,
    /// Datagrams sent (data copies, heartbeats, end of session).
    pub datagrams: u64,
    /// Bytes of UDP payload sent.
    pub bytes: u64,
    /// Data packets left out by the faults.
    pub dropped: u64,
    /// Extra copies sent.
    pub duplicated: u64,
    /// Packets sent after their successor.
    pub reordered: u64,
}

/// What a send did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SendReport {
    /// Data packets in the list that were sent (before faults).
    pub packets: u64,
    /// Messages in them.
    pub messages: u64,
    /// Heartbeats sent (per line).
    pub heartbeats: u64,
    /// Per line.
    pub lines: Vec<LineSent>,
    /// Sequence number of the end of session.
    pub end_sequence: u64,
    /// Feed time from the first packet to the last sent, ns.
    pub feed_span_ns: u64,
    /// Wall time of the send, ns.
    pub elapsed_ns: u64,
    /// Pacing error (sent − scheduled).
    pub pacing: PaceReport,
    /// Stopped before the end (Ctrl-C).
    pub interrupted: bool,
}

/// Sends one packet list.
#[derive(Debug)]
pub struct Sender<'a> {
    list: &'a PacketList,
    opts: SendOptions,
    sock: UdpSocket,
    lines: Vec<LineFaults>,
    report: SendReport,
    buf: Vec<u8>,
    last_send: Instant,
}

impl<'a> Sender<'a> {
    /// A sender of `list` with its socket set up.
    ///
    /// # Errors
    /// No line or more than two, or a socket call failing.
    pub fn new(list: &'a PacketList, opts: SendOptions) -> Result<Sender<'a>, NetError> {
        if opts.lines.is_empty() || opts.lines.len() > 2 {
            return Err(NetError::Option("one or two destinations (lines A and B)"));
        }
        if opts.speed.is_some_and(|k| !(k.is_finite() && k > 0.0)) {
            return Err(NetError::Option("speed: a finite number above 0"));
        }
        if opts.heartbeat < Duration::from_millis(1) {
            return Err(NetError::Option("heartbeat: at least 1 ms"));
        }
        let sock = socket::sender(opts.iface, opts.ttl)?;
        let lines = (0..opts.lines.len())
            .map(|l| LineFaults::new(opts.faults[l]))
            .collect();
        let report = SendReport {
            lines: opts
                .lines
                .iter()
                .map(|&d| LineSent {
                    dst: Some(d),
                    ..Default::default()
                })
                .collect(),
            ..SendReport::default()
        };
        Ok(Sender {
            list,
            opts,
            sock,
            lines,
            report,
            buf: Vec::with_capacity(64),
            last_send: Instant::now(),
        })
    }

    /// Sends every packet (until `stop` is set), then the end of session on every line.
    ///
    /// # Errors
    /// A send failing.
    pub fn run(mut self, stop: &AtomicBool) -> Result<SendReport, NetError> {
        let started = Instant::now();
        let mut pacer = Pacer::new(self.opts.speed);
        let packets = self.list.packets();
        let first_ts = packets.first().map_or(0, |p| p.ts_ns);
        for (i, p) in packets.iter().enumerate() {
            if stop.load(Ordering::Relaxed) {
                self.report.interrupted = true;
                break;
            }
            if let Some(due) = pacer.due(p.ts_ns) {
                self.idle_until(due, p.seq)?;
                Pacer::wait(due);
                pacer.record(due, Instant::now());
            }
            self.send_packet(i, p.seq, p.count)?;
            self.report.packets += 1;
            self.report.messages += u64::from(p.count);
            self.report.feed_span_ns = p.ts_ns.saturating_sub(first_ts);
        }
        for l in 0..self.lines.len() {
            let plan = self.lines[l].flush();
            self.send_plan(l, plan)?;
        }
        self.report.end_sequence = self.list.next_seq();
        self.control(self.list.next_seq(), END_OF_SESSION)?;
        self.report.elapsed_ns = started.elapsed().as_nanos() as u64;
        self.report.pacing = pacer.report();
        self.finish_counts();
        Ok(self.report)
    }

    /// Sends heartbeats (next sequence `seq`) while `due` is more than a heartbeat away.
    fn idle_until(&mut self, due: Instant, seq: u64) -> Result<(), NetError> {
        loop {
            let beat = self.last_send + self.opts.heartbeat;
            if beat >= due {
                return Ok(());
            }
            Pacer::wait(beat);
            self.control(seq, 0)?;
            self.report.heartbeats += 1;
        }
    }

    /// Data packet `i` on every line, through each line's faults.
    fn send_packet(&mut self, i: usize, seq: u64, count: u16) -> Result<(), NetError> {
        for l in 0..self.lines.len() {
            let plan = self.lines[l].plan(i, seq, count);
            self.send_plan(l, plan)?;
        }
        Ok(())
    }

    fn send_plan(&mut self, line: usize, plan: Plan) -> Result<(), NetError> {
        let list = self.list;
        for &(idx, copies) in plan.items() {
            let bytes = list.bytes(&list.packets()[idx]);
            for _ in 0..copies {
                self.send(line, bytes)?;
            }
        }
        Ok(())
    }

    /// A heartbeat (count 0) or end of session (0xFFFF) on every line.
    fn control(&mut self, seq: u64, count: u16) -> Result<(), NetError> {
        let mut buf = std::mem::take(&mut self.buf);
        write_packet(&mut buf, self.list.session(), seq, count, &[]).expect("no messages");
        for l in 0..self.lines.len() {
            self.send(l, &buf)?;
        }
        self.buf = buf;
        Ok(())
    }

    fn send(&mut self, line: usize, bytes: &[u8]) -> Result<(), NetError> {
        let dst = self.opts.lines[line];
        self.sock
            .send_to(bytes, dst)
            .map_err(sock_err(format!("sending to {dst}")))?;
        let s = &mut self.report.lines[line];
        s.datagrams += 1;
        s.bytes += bytes.len() as u64;
        self.last_send = Instant::now();
        Ok(())
    }

    fn finish_counts(&mut self) {
        for (s, f) in self.report.lines.iter_mut().zip(&self.lines) {
            s.dropped = f.dropped;
            s.duplicated = f.duplicated;
            s.reordered = f.reordered;
        }
    }
}
