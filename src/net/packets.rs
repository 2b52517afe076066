//! The packets a sender sends, built once before sending: an ITCH BinaryFILE's messages filled
//! into MoldUDP64 packets as a feed fills them, or a capture's MoldUDP64 packets as captured.
//! Every message is indexed by sequence number, for the re-request server.

use std::mem::size_of;
use std::ops::Range;

use super::NetError;
use crate::capture::Datagrams;
use crate::feed::Frames;
use crate::itch::Header;
use crate::mold::packet::{END_OF_SESSION, HEADER_LEN};
use crate::mold::{Packet, PacketKind, Session};

const NS_PER_DAY: u64 = 86_400_000_000_000;
const NO_MESSAGE: usize = usize::MAX;

/// How to fill packets and what to take.
#[derive(Debug, Clone)]
pub struct PackOptions {
    /// Session of the packets built from an ITCH file; a capture's packets keep theirs, and
    /// when this is set only that session is taken from a capture.
    pub session: Option<Session>,
    /// Most MoldUDP64 bytes per packet, header included (64..=8972).
    pub max_payload: usize,
    /// Messages share a packet only when within this many ns of its first.
    pub window_ns: u64,
    /// Take messages (packets) at or after this time of day, ns.
    pub from_ns: Option<u64>,
    /// Take messages (packets) at or before this time of day, ns.
    pub until_ns: Option<u64>,
}

impl Default for PackOptions {
    fn default() -> Self {
        PackOptions {
            session: None,
            max_payload: 1_400,
            window_ns: 5_000,
            from_ns: None,
            until_ns: None,
        }
    }
}

impl PackOptions {
    fn takes(&self, time_of_day: u64) -> bool {
        self.from_ns.map_or(true, |f| time_of_day >= f)
            && self.until_ns.map_or(true, |u| time_of_day <= u)
    }
}

/// One packet to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Its time: the ITCH time of its first message, or its capture time (ns).
    pub ts_ns: u64,
    /// Sequence number of its first message.
    pub seq: u64,
    /// Messages in it.
    pub count: u16,
    bytes: Range<usize>,
}

/// Packets in sending order, their bytes in one arena, and the message index.
#[derive(Debug, Clone)]
pub struct PacketList {
    session: Session,
    arena: Vec<u8>,
    packets: Vec<Outgoing>,
    first_seq: u64,
    /// Arena offset of message `first_seq + i`'s length prefix (`NO_MESSAGE`: not in the input).
    index: Vec<usize>,
}

impl PacketList {
    fn new(session: Session) -> PacketList {
        PacketList {
            session,
            arena: Vec::new(),
            packets: Vec::new(),
            first_seq: 1,
            index: Vec::new(),
        }
    }

    /// The messages of the BinaryFILE `itch` in [`PackOptions`]' time range, numbered from 1.
    ///
    /// # Errors
    /// A broken BinaryFILE, bad options, or no message in range.
    pub fn from_itch(itch: &[u8], o: &PackOptions) -> Result<PacketList, NetError> {
        if !(64..=8_972).contains(&o.max_payload) {
            return Err(NetError::Option("max payload: 64..=8972 bytes"));
        }
        let session = o.session.unwrap_or(Session(*b"000000001 "));
        let mut list = PacketList::new(session);
        let mut open: Option<(u64, usize)> = None; // (first ts, packet start)
        for f in Frames::new(itch) {
            let body = f?.body;
            let ts = itch_time(body).unwrap_or(0);
            if !o.takes(ts) {
                continue;
            }
            let fits = open.is_some_and(|(t0, start)| {
                ts.saturating_sub(t0) <= o.window_ns
                    && list.arena.len() - start + 2 + body.len() <= o.max_payload
                    && list
                        .packets
                        .last()
                        .is_some_and(|p| p.count < END_OF_SESSION - 1)
            });
            if !fits {
                list.start_packet(ts);
                open = Some((ts, list.arena.len() - HEADER_LEN));
            }
            list.push_message(body)?;
        }
        list.done("no ITCH message in the time range")
    }

    /// The MoldUDP64 packets of a capture as captured: one channel (the first that carries the
    /// session), copies of sequences already taken skipped, heartbeats and end of session left
    /// to the sender; the time range applies to the capture time's time of day.
    ///
    /// # Errors
    /// A broken capture, or no MoldUDP64 data packet in it.
    pub fn from_capture(cap: &[u8], o: &PackOptions) -> Result<PacketList, NetError> {
        let mut list: Option<PacketList> = None;
        let mut channel = None;
        for d in Datagrams::new(cap)? {
            let d = d?;
            let Ok(p) = Packet::parse(d.payload, d.offset) else {
                continue;
            };
            let wanted = o.session.map_or(true, |s| s == p.session())
                && channel.map_or(true, |c| c == d.dst)
                && matches!(p.kind(), PacketKind::Data(_))
                && o.takes(d.ts_ns % NS_PER_DAY);
            if !wanted {
                continue;
            }
            channel = Some(d.dst);
            let l = list.get_or_insert_with(|| {
                let mut l = PacketList::new(p.session());
                l.first_seq = p.sequence();
                l
            });
            l.push_captured(&p, d.ts_ns);
        }
        match list {
            Some(l) => l.done(""),
            None => Err(NetError::Empty(
                "no MoldUDP64 data packet in the capture".into(),
            )),
        }
    }

    fn done(self, why: &str) -> Result<PacketList, NetError> {
        if self.packets.is_empty() {
            return Err(NetError::Empty(why.into()));
        }
        Ok(self)
    }

    /// Opens a packet: its header, count 0 until messages are pushed.
    fn start_packet(&mut self, ts_ns: u64) {
        let start = self.arena.len();
        let seq = self.next_seq();
        self.arena.extend_from_slice(&self.session.0);
        self.arena.extend_from_slice(&seq.to_be_bytes());
        self.arena.extend_from_slice(&0u16.to_be_bytes());
        self.packets.push(Outgoing {
            ts_ns,
            seq,
            count: 0,
            bytes: start..self.arena.len(),
        });
    }

    /// Appends a message to the open packet and updates its count.
    fn push_message(&mut self, body: &[u8]) -> Result<(), NetError> {
        let len = u16::try_from(body.len()).map_err(|_| NetError::Option("message > 65535 B"))?;
        self.index.push(self.arena.len());
        self.arena.extend_from_slice(&len.to_be_bytes());
        self.arena.extend_from_slice(body);
        let p = self.packets.last_mut().expect("a packet is open");
        p.count += 1;
        p.bytes.end = self.arena.len();
        let c = p.bytes.start + HEADER_LEN - 2;
        self.arena[c..c + 2].copy_from_slice(&p.count.to_be_bytes());
        Ok(())
    }

    /// A captured packet, unless every message in it is already taken.
    fn push_captured(&mut self, p: &Packet<'_>, ts_ns: u64) {
        if p.next_sequence() <= self.next_seq() {
            return;
        }
        let start = self.arena.len();
        self.arena.extend_from_slice(p.bytes());
        let mut at = start + HEADER_LEN;
        for m in p.messages() {
            let slot = (m.seq - self.first_seq) as usize;
            if slot >= self.index.len() {
                self.index.resize(slot + 1, NO_MESSAGE);
            }
            self.index[slot] = at;
            at += 2 + m.bytes.len();
        }
        self.packets.push(Outgoing {
            ts_ns,
            seq: p.sequence(),
            count: p.message_count(),
            bytes: start..self.arena.len(),
        });
    }

    /// The session of the packets.
    pub fn session(&self) -> Session {
        self.session
    }

    /// The packets in sending order.
    pub fn packets(&self) -> &[Outgoing] {
        &self.packets
    }

    /// A packet's bytes.
    pub fn bytes(&self, p: &Outgoing) -> &[u8] {
        &self.arena[p.bytes.clone()]
    }

    /// One past the last message's sequence number (the end of session's sequence).
    pub fn next_seq(&self) -> u64 {
        self.first_seq + self.index.len() as u64
    }

    /// Messages indexed.
    pub fn messages(&self) -> u64 {
        self.index.iter().filter(|&&i| i != NO_MESSAGE).count() as u64
    }

    /// Message `seq` with its length prefix, if the input had it.
    pub fn message(&self, seq: u64) -> Option<&[u8]> {
        let slot = usize::try_from(seq.checked_sub(self.first_seq)?).ok()?;
        let at = *self.index.get(slot)?;
        if at == NO_MESSAGE {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([self.arena[at], self.arena[at + 1]]));
        Some(&self.arena[at..at + 2 + len])
    }
}

/// An ITCH message's time (ns since midnight), from its common header.
fn itch_time(body: &[u8]) -> Option<u64> {
    let h: &Header = bytemuck::try_from_bytes(body.get(..size_of::<Header>())?).ok()?;
    Some(h.timestamp.get())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::{generate, GenConfig};

    fn feed() -> Vec<u8> {
        let mut f = Vec::new();
        let cfg = GenConfig {
            messages: 3_000,
            symbols: 4,
            live_orders: 50,
            seed: 7,
        };
        generate(&cfg, &mut f).unwrap();
        f
    }

    #[test]
    fn itch_packets_hold_every_message_in_order() {
        let f = feed();
        let list = PacketList::from_itch(&f, &PackOptions::default()).unwrap();
        let mut seq = 1;
        let mut bodies = Frames::new(&f).map(|fr| fr.unwrap().body);
        for p in list.packets() {
            let pk = Packet::parse(list.bytes(p), 0).unwrap();
            assert!(pk.bytes().len() <= 1_400);
            assert_eq!((pk.sequence(), pk.message_count()), (seq, p.count));
            for m in pk.messages() {
                assert_eq!(Some(m.bytes), bodies.next());
                assert_eq!(&list.message(m.seq).unwrap()[2..], m.bytes);
            }
            seq = pk.next_sequence();
        }
        assert_eq!((bodies.next(), list.next_seq()), (None, seq));
        assert_eq!(list.messages(), 3_000);
        assert!(list.message(0).is_none() && list.message(seq).is_none());
    }
}
