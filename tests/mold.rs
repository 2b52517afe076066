//! MoldUDP64: packets, sequencing (gaps, fills, duplicates, the reorder window), A/B
//! arbitration, filters, malformed packets, and the arbiter under any interleaving (proptest).

use std::net::{Ipv4Addr, SocketAddrV4};

use proptest::prelude::*;
use tickwatch::mold::packet::{write_packet, END_OF_SESSION};
use tickwatch::mold::{
    Arbiter, ArbiterConfig, Datagram, Delivered, Outcome, Packet, PacketError, PacketKind, Session,
    Sink, Stream, StreamConfig,
};
use tickwatch::rng::SplitMix64;

mod common;
use common::allocations;

#[global_allocator]
static GLOBAL: common::Counting = common::Counting;

const A: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(233, 54, 12, 111), 26477);
const B: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(233, 49, 196, 111), 26477);
const SRC: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 40000);

fn session(name: &str) -> Session {
    Session::from_name(name).unwrap()
}

/// Message `seq`'s bytes: its sequence number, then `seq % 7` filler bytes.
fn body(seq: u64) -> Vec<u8> {
    let mut b = seq.to_be_bytes().to_vec();
    b.extend(std::iter::repeat(0xAB).take((seq % 7) as usize));
    b
}

/// A data packet carrying messages `first..first + n`.
fn data(s: &str, first: u64, n: u16) -> Vec<u8> {
    let bodies: Vec<Vec<u8>> = (first..first + u64::from(n)).map(body).collect();
    let refs: Vec<&[u8]> = bodies.iter().map(|b| b.as_slice()).collect();
    let mut out = Vec::new();
    write_packet(&mut out, session(s), first, n, &refs).unwrap();
    out
}

fn control(s: &str, next: u64, count: u16) -> Vec<u8> {
    let mut out = Vec::new();
    write_packet(&mut out, session(s), next, count, &[]).unwrap();
    out
}

#[derive(Default, Debug)]
struct Rec {
    msgs: Vec<(u32, u64, bool)>,
    lost: Vec<(u64, u64)>,
}

impl Sink for Rec {
    fn message(&mut self, m: Delivered<'_>) {
        assert_eq!(m.bytes, body(m.seq).as_slice(), "bytes of {}", m.seq);
        self.msgs.push((m.stream, m.seq, m.held));
    }
    fn lost(&mut self, _stream: u32, first: u64, last: u64) {
        self.lost.push((first, last));
    }
}

impl Rec {
    fn seqs(&self) -> Vec<u64> {
        self.msgs.iter().map(|m| m.1).collect()
    }
}

fn push(s: &mut Stream, bytes: &[u8], ts: u64, rec: &mut Rec) {
    s.push(&Packet::parse(bytes, 0).unwrap(), ts, rec);
}

fn dgram(dst: SocketAddrV4, payload: &[u8], ts_ns: u64) -> Datagram<'_> {
    Datagram {
        ts_ns,
        src: SRC,
        dst,
        payload,
        offset: 1000,
    }
}

#[test]
fn packet_view_reads_header_and_messages() {
    let bytes = data("S1", 41, 3);
    let p = Packet::parse(&bytes, 0).unwrap();
    assert_eq!(p.session(), session("S1"));
    assert_eq!(p.session().to_string(), "S1");
    assert_eq!(
        (p.sequence(), p.kind(), p.next_sequence()),
        (41, PacketKind::Data(3), 44)
    );
    let got: Vec<(u64, Vec<u8>)> = p.messages().map(|m| (m.seq, m.bytes.to_vec())).collect();
    assert_eq!(got, vec![(41, body(41)), (42, body(42)), (43, body(43))]);
    let hb = control("S1", 44, 0);
    let p = Packet::parse(&hb, 0).unwrap();
    assert_eq!(
        (p.kind(), p.message_count(), p.messages().count()),
        (PacketKind::Heartbeat, 0, 0)
    );
    let eos = control("S1", 44, END_OF_SESSION);
    let p = Packet::parse(&eos, 0).unwrap();
    assert_eq!(
        (p.kind(), p.next_sequence()),
        (PacketKind::EndOfSession, 44)
    );
}

#[test]
fn in_order_delivery() {
    let mut s = Stream::new(0, StreamConfig::default());
    let mut rec = Rec::default();
    push(&mut s, &data("S", 1, 3), 10, &mut rec);
    push(&mut s, &data("S", 4, 1), 11, &mut rec);
    push(&mut s, &data("S", 5, 6), 12, &mut rec);
    assert_eq!(rec.seqs(), (1..=10).collect::<Vec<_>>());
    assert!(rec.msgs.iter().all(|m| !m.2));
    let c = s.counters();
    assert_eq!(
        (c.packets, c.messages, c.delivered, c.duplicates, c.gaps),
        (3, 10, 10, 0, 0)
    );
    assert_eq!(
        (s.first_seq(), s.last_delivered(), s.expected()),
        (Some(1), Some(10), Some(11))
    );
    assert!(s.gaps().is_empty());
}

#[test]
fn gap_is_exact_and_filled_by_a_retransmission() {
    let mut s = Stream::new(0, StreamConfig::default());
    let mut rec = Rec::default();
    push(&mut s, &data("S", 1, 3), 100, &mut rec);
    push(&mut s, &data("S", 7, 3), 200, &mut rec); // 4..=6 missing
    assert_eq!(
        rec.seqs(),
        vec![1, 2, 3],
        "7..=9 held back until the gap fills"
    );
    assert_eq!(s.held(), 3);
    let g = s.gaps()[0];
    assert_eq!(
        (
            g.first,
            g.last,
            g.noticed_ns,
            g.recovered,
            g.lost,
            g.closed_ns
        ),
        (4, 6, 200, 0, 0, None)
    );
    push(&mut s, &data("S", 4, 3), 300, &mut rec); // the retransmission
    assert_eq!(rec.seqs(), (1..=9).collect::<Vec<_>>());
    let held: Vec<u64> = rec.msgs.iter().filter(|m| m.2).map(|m| m.1).collect();
    assert_eq!(held, vec![7, 8, 9]);
    let g = s.gaps()[0];
    assert_eq!((g.recovered, g.lost, g.closed_ns), (3, 0, Some(300)));
    let c = s.counters();
    assert_eq!(
        (c.gaps, c.recovered, c.lost, c.delivered_held, c.duplicates),
        (1, 3, 0, 3, 0)
    );
    assert!(rec.lost.is_empty());
}

#[test]
fn gap_partly_filled_then_given_up_by_time() {
    let cfg = StreamConfig {
        hold_ns: 1_000,
        ..StreamConfig::default()
    };
    let mut s = Stream::new(0, cfg);
    let mut rec = Rec::default();
    push(&mut s, &data("S", 1, 3), 0, &mut rec);
    push(&mut s, &data("S", 7, 3), 100, &mut rec); // gap 4..=6 noticed at 100
    push(&mut s, &data("S", 5, 1), 500, &mut rec); // fills 5 only
    assert_eq!(rec.seqs(), vec![1, 2, 3]);
    push(&mut s, &data("S", 10, 1), 1_100, &mut rec); // the gap is 1000 ns old: given up
    assert_eq!(rec.seqs(), vec![1, 2, 3, 5, 7, 8, 9, 10]);
    assert_eq!(rec.lost, vec![(4, 4), (6, 6)]);
    let g = s.gaps()[0];
    assert_eq!(
        (g.first, g.last, g.recovered, g.lost, g.closed_ns),
        (4, 6, 1, 2, Some(1_100))
    );
    push(&mut s, &data("S", 4, 3), 1_200, &mut rec); // too late: duplicates
    assert_eq!(s.counters().duplicates, 3);
    assert_eq!(rec.seqs().len(), 8);
}

#[test]
fn no_window_reports_a_gap_lost_at_once() {
    let cfg = StreamConfig {
        hold_messages: 0,
        ..StreamConfig::default()
    };
    let mut s = Stream::new(0, cfg);
    let mut rec = Rec::default();
    push(&mut s, &data("S", 1, 2), 0, &mut rec);
    push(&mut s, &data("S", 6, 2), 1, &mut rec);
    assert_eq!(rec.seqs(), vec![1, 2, 6, 7]);
    assert_eq!(rec.lost, vec![(3, 5)]);
    assert_eq!(s.gaps()[0].lost, 3);
}

#[test]
fn a_full_window_gives_up_the_oldest_hole() {
    let cfg = StreamConfig {
        hold_messages: 2,
        ..StreamConfig::default()
    };
    let mut s = Stream::new(0, cfg);
    let mut rec = Rec::default();
    push(&mut s, &data("S", 1, 1), 0, &mut rec);
    push(&mut s, &data("S", 3, 2), 1, &mut rec); // 2 missing, 3-4 held (window full)
    push(&mut s, &data("S", 6, 1), 2, &mut rec); // 5 missing too; no room for 6
    assert_eq!(rec.lost, vec![(2, 2)]);
    assert_eq!(rec.seqs(), vec![1, 3, 4]);
    assert_eq!(s.held(), 1);
    assert_eq!(s.counters().window_full, 1);
    push(&mut s, &data("S", 5, 1), 3, &mut rec);
    assert_eq!(rec.seqs(), vec![1, 3, 4, 5, 6]);
    let gaps: Vec<(u64, u64, u64, u64)> = s
        .gaps()
        .iter()
        .map(|g| (g.first, g.last, g.recovered, g.lost))
        .collect();
    assert_eq!(gaps, vec![(2, 2, 0, 1), (5, 5, 1, 0)]);
}

#[test]
fn the_window_reuses_the_bytes_of_delivered_messages() {
    // 3, 4, 6 held (37 bytes); 2 delivers 2-4 while 6 waits; 7-9 fit only once 3-4's bytes go.
    let cfg = StreamConfig {
        hold_bytes: 45,
        ..StreamConfig::default()
    };
    let mut s = Stream::new(0, cfg);
    let mut rec = Rec::default();
    for (seq, n) in [(1, 1), (3, 2), (6, 1), (2, 1), (7, 3)] {
        push(&mut s, &data("S", seq, n), seq, &mut rec);
    }
    assert_eq!((s.held(), s.counters().window_full), (4, 0));
    push(&mut s, &data("S", 5, 1), 10, &mut rec); // Rec checks every message's bytes
    assert_eq!(rec.seqs(), (1..=9).collect::<Vec<_>>());
    assert!(rec.lost.is_empty());
}

#[test]
fn duplicates_are_dropped_and_counted() {
    let mut s = Stream::new(0, StreamConfig::default());
    let mut rec = Rec::default();
    push(&mut s, &data("S", 1, 4), 0, &mut rec);
    push(&mut s, &data("S", 1, 4), 1, &mut rec); // whole copy
    push(&mut s, &data("S", 3, 4), 2, &mut rec); // 3-4 copies, 5-6 new
    push(&mut s, &data("S", 9, 1), 3, &mut rec); // 7-8 missing, 9 held
    push(&mut s, &data("S", 9, 1), 4, &mut rec); // copy of a held message
    assert_eq!(rec.seqs(), (1..=6).collect::<Vec<_>>());
    assert_eq!(s.counters().duplicates, 4 + 2 + 1);
}

#[test]
fn heartbeats_count_and_show_gaps() {
    let mut s = Stream::new(0, StreamConfig::default());
    let mut rec = Rec::default();
    push(&mut s, &data("S", 1, 2), 0, &mut rec);
    push(&mut s, &control("S", 3, 0), 1, &mut rec); // in step: no gap
    assert!(s.gaps().is_empty());
    push(&mut s, &control("S", 6, 0), 2, &mut rec); // says 3..=5 were sent
    assert_eq!(s.counters().heartbeats, 2);
    let g = s.gaps()[0];
    assert_eq!((g.first, g.last, g.noticed_ns), (3, 5, 2));
    s.finish(9, &mut rec);
    assert_eq!(rec.lost, vec![(3, 5)]);
    assert_eq!(s.expected(), Some(6));
}

#[test]
fn end_of_session_is_seen_and_trailing_loss_reported_at_finish() {
    let mut s = Stream::new(0, StreamConfig::default());
    let mut rec = Rec::default();
    push(&mut s, &data("S", 1, 2), 0, &mut rec);
    assert!(!s.end_of_session());
    push(&mut s, &control("S", 5, END_OF_SESSION), 1, &mut rec);
    assert!(s.end_of_session());
    s.finish(2, &mut rec);
    assert_eq!(rec.lost, vec![(3, 4)]);
    assert_eq!(s.gaps()[0].lost, 2);
}

#[test]
fn a_start_sequence_reports_a_missing_beginning() {
    let cfg = StreamConfig {
        start: Some(1),
        ..StreamConfig::default()
    };
    let mut s = Stream::new(0, cfg);
    let mut rec = Rec::default();
    push(&mut s, &data("S", 4, 1), 0, &mut rec);
    s.finish(1, &mut rec);
    assert_eq!((rec.lost.clone(), rec.seqs()), (vec![(1, 3)], vec![4]));
}

/// Packets of 1..=4 messages covering 1..=n.
fn packets(n: u64, rng: &mut SplitMix64) -> Vec<(u64, u16)> {
    let mut out = Vec::new();
    let mut seq = 1;
    while seq <= n {
        let k = (1 + rng.below(4)).min(n - seq + 1) as u16;
        out.push((seq, k));
        seq += u64::from(k);
    }
    out
}

/// Runs an A/B feed: `order` lists (line, packet index) in arrival order; end of session on
/// both lines at the end. Returns the delivered sequences, the lost ranges and the arbiter.
fn run_ab(pk: &[(u64, u16)], order: &[(u8, usize)], cfg: StreamConfig) -> (Rec, Arbiter) {
    let acfg = ArbiterConfig {
        ab: vec![(A, B)],
        stream: cfg,
        ..ArbiterConfig::default()
    };
    let mut arb = Arbiter::new(acfg);
    let mut rec = Rec::default();
    let end = pk.last().map_or(1, |&(s, k)| s + u64::from(k));
    for (ts, &(line, i)) in order.iter().enumerate() {
        let bytes = data("AB", pk[i].0, pk[i].1);
        let dst = if line == 0 { A } else { B };
        assert_eq!(
            arb.push(&dgram(dst, &bytes, ts as u64), &mut rec),
            Outcome::Taken(0)
        );
    }
    let eos = control("AB", end, END_OF_SESSION);
    for dst in [A, B] {
        arb.push(&dgram(dst, &eos, order.len() as u64), &mut rec);
    }
    arb.finish(order.len() as u64 + 1, &mut rec);
    (rec, arb)
}

/// Checks delivery is exactly the union, in order, and the rest is reported lost.
fn check_union(rec: &Rec, pk: &[(u64, u16)], kept: &[[bool; 2]]) {
    let mut want = Vec::new();
    let mut lost = Vec::new();
    for (&(s, k), keep) in pk.iter().zip(kept) {
        let seqs = s..s + u64::from(k);
        if keep[0] || keep[1] {
            want.extend(seqs)
        } else {
            lost.extend(seqs)
        }
    }
    assert_eq!(rec.seqs(), want, "delivered exactly once, in order");
    let reported: Vec<u64> = rec.lost.iter().flat_map(|&(f, l)| f..=l).collect();
    assert_eq!(reported, lost, "lost exactly where both lines lost");
}

#[test]
fn ab_with_independent_losses_loses_only_what_both_lines_lost() {
    let mut rng = SplitMix64::new(13);
    let pk = packets(5_000, &mut rng);
    let kept: Vec<[bool; 2]> = pk
        .iter()
        .map(|_| [!rng.chance(0.2), !rng.chance(0.2)])
        .collect();
    // B trails A by 0-3 packets: copies overlap and swap order.
    let mut timed: Vec<(u64, u8, usize)> = Vec::new();
    for (i, k) in kept.iter().enumerate() {
        let t = 10 * i as u64;
        if k[0] {
            timed.push((t + rng.below(15), 0, i))
        }
        if k[1] {
            timed.push((t + rng.below(40), 1, i))
        }
    }
    timed.sort();
    let order: Vec<(u8, usize)> = timed.iter().map(|&(_, l, i)| (l, i)).collect();
    let cfg = StreamConfig {
        start: Some(1),
        hold_ns: u64::MAX,
        ..StreamConfig::default()
    };
    let (rec, arb) = run_ab(&pk, &order, cfg);
    check_union(&rec, &pk, &kept);
    let both_lost = kept.iter().filter(|k| !k[0] && !k[1]).count();
    assert!(
        both_lost > 50,
        "the seed loses some packets on both lines ({both_lost})"
    );
    let [la, lb] = arb.line_stats(0).unwrap();
    let msgs = |line: usize| -> u64 {
        pk.iter()
            .zip(&kept)
            .filter(|(_, k)| k[line])
            .map(|(p, _)| u64::from(p.1))
            .sum()
    };
    assert_eq!((la.messages, lb.messages), (msgs(0), msgs(1)));
    assert_eq!(la.won + lb.won, rec.msgs.len() as u64);
    assert_eq!(
        la.arbitrated + lb.arbitrated,
        msgs(0) + msgs(1) - rec.msgs.len() as u64
    );
    assert_eq!(la.repeats + lb.repeats, 0);
    assert!(la.gaps > 100 && lb.gaps > 100, "each line alone has gaps");
    let r = arb.report();
    let s = &r.sessions[0];
    assert_eq!(s.session.to_string(), "AB");
    assert_eq!(s.arbitrated_duplicates, la.arbitrated + lb.arbitrated);
    assert!(s.end_of_session);
    assert_eq!(
        s.counters.lost,
        rec.lost.iter().map(|&(f, l)| l - f + 1).sum::<u64>()
    );
    assert_eq!(s.gaps.iter().map(|g| g.lost).sum::<u64>(), s.counters.lost);
    assert_eq!((r.channels.len(), r.channels[1].line), (2, "B"));
    serde_json::to_string(&r).unwrap();
}

#[test]
fn filters_and_non_mold_datagrams_are_counted() {
    let other = SocketAddrV4::new(Ipv4Addr::new(233, 54, 12, 112), 26478);
    let cfg = ArbiterConfig {
        channels: vec![A],
        session: Some(session("KEEP")),
        ..ArbiterConfig::default()
    };
    let mut arb = Arbiter::new(cfg);
    let mut rec = Rec::default();
    let keep = data("KEEP", 1, 2);
    let drop = data("DROP", 1, 2);
    assert_eq!(arb.push(&dgram(A, &keep, 1), &mut rec), Outcome::Taken(0));
    assert_eq!(
        arb.push(&dgram(A, &drop, 2), &mut rec),
        Outcome::SkippedSession
    );
    assert_eq!(
        arb.push(&dgram(other, &keep, 3), &mut rec),
        Outcome::SkippedChannel
    );
    let short = dgram(A, &[1, 2, 3], 4);
    assert!(matches!(
        arb.push(&short, &mut rec),
        Outcome::NotMold(PacketError::ShortHeader {
            offset: 1000,
            len: 3
        })
    ));
    assert!(matches!(arb.push(&short, &mut rec), Outcome::NotMold(_)));
    assert_eq!(rec.seqs(), vec![1, 2]);
    let r = arb.report();
    assert_eq!(
        (
            r.datagrams,
            r.packets,
            r.skipped_session,
            r.skipped_channel,
            r.not_mold
        ),
        (5, 1, 1, 1, 2)
    );
    assert_eq!(r.not_mold_by_port.len(), 1);
    assert_eq!(
        (r.not_mold_by_port[0].port, r.not_mold_by_port[0].datagrams),
        (26477, 2)
    );
    assert!(r.first_error.unwrap().contains("at byte offset 1000"));
    assert_eq!((r.first_ts_ns, r.last_ts_ns), (Some(1), Some(4)));
    assert_eq!(r.sessions.len(), 1);
}

#[test]
fn without_filters_each_channel_and_session_is_a_stream() {
    let other = SocketAddrV4::new(Ipv4Addr::new(233, 54, 12, 112), 26478);
    let mut arb = Arbiter::new(ArbiterConfig::default());
    let mut rec = Rec::default();
    assert_eq!(
        arb.push(&dgram(A, &data("X", 1, 1), 0), &mut rec),
        Outcome::Taken(0)
    );
    assert_eq!(
        arb.push(&dgram(A, &data("Y", 1, 1), 0), &mut rec),
        Outcome::Taken(1)
    );
    assert_eq!(
        arb.push(&dgram(other, &data("X", 1, 1), 0), &mut rec),
        Outcome::Taken(2)
    );
    assert_eq!(
        arb.push(&dgram(A, &data("X", 2, 1), 0), &mut rec),
        Outcome::Taken(0)
    );
    let streams: Vec<(u32, u64)> = rec.msgs.iter().map(|m| (m.0, m.1)).collect();
    assert_eq!(streams, vec![(0, 1), (1, 1), (2, 1), (0, 2)]);
    let k = arb.stream_key(2).unwrap();
    assert_eq!((k.lines, k.session), ((other, None), session("X")));
    // Other traffic is counted by port without taking a place in the channel table.
    let dns = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 53), 53);
    assert!(matches!(
        arb.push(&dgram(dns, b"not mold", 0), &mut rec),
        Outcome::NotMold(_)
    ));
    let r = arb.report();
    assert_eq!((r.channels.len(), r.not_mold_by_port[0].port), (2, 53));
}

#[test]
fn copies_from_the_other_line_are_arbitrated_and_own_copies_repeats() {
    let cfg = ArbiterConfig {
        ab: vec![(A, B)],
        ..ArbiterConfig::default()
    };
    let mut arb = Arbiter::new(cfg);
    let mut rec = Rec::default();
    for (dst, first) in [(A, 1), (B, 1), (B, 1), (B, 4), (A, 4)] {
        arb.push(&dgram(dst, &data("AB", first, 3), 0), &mut rec);
    }
    assert_eq!(rec.seqs(), (1..=6).collect::<Vec<_>>());
    let [a, b] = arb.line_stats(0).unwrap();
    assert_eq!((a.won, a.arbitrated, a.repeats), (3, 3, 0));
    assert_eq!((b.won, b.arbitrated, b.repeats), (3, 3, 3));
    let r = arb.report();
    assert_eq!(r.sessions[0].arbitrated_duplicates, 6);
    assert_eq!(r.sessions[0].counters.duplicates, 9);
    assert!(r.sessions[0].gaps.is_empty());
}

#[test]
fn every_cut_of_a_valid_packet_is_an_error_never_a_panic() {
    let whole = data("CUT", 100, 5);
    let base = 7_000;
    assert!(Packet::parse(&whole, base).is_ok());
    for cut in 0..whole.len() {
        let e = Packet::parse(&whole[..cut], base).unwrap_err();
        assert!(
            e.offset() >= base && e.offset() <= base + cut as u64,
            "cut {cut}: {e}"
        );
        assert!(e
            .to_string()
            .contains(&format!("at byte offset {}", e.offset())));
        if cut < 20 {
            assert_eq!(
                e,
                PacketError::ShortHeader {
                    offset: base,
                    len: cut
                }
            );
        } else {
            assert!(
                matches!(e, PacketError::MessagePastEnd { .. }),
                "cut {cut}: {e}"
            );
        }
        let mut arb = Arbiter::new(ArbiterConfig::default());
        let d = Datagram {
            offset: base,
            ..dgram(A, &whole[..cut], 0)
        };
        assert!(matches!(
            arb.push(&d, &mut Rec::default()),
            Outcome::NotMold(_)
        ));
    }
    let mut long = whole.clone();
    long.extend([0, 0, 0]);
    let e = Packet::parse(&long, base).unwrap_err();
    assert_eq!(
        e,
        PacketError::TrailingBytes {
            offset: base + whole.len() as u64,
            extra: 3,
            count: 5
        }
    );
    let hb_with_body = [control("S", 1, 0), vec![0]].concat();
    assert!(matches!(
        Packet::parse(&hb_with_body, 0),
        Err(PacketError::TrailingBytes { offset: 20, .. })
    ));
    let mut overflow = Vec::new();
    write_packet(&mut overflow, session("S"), u64::MAX, 1, &[b"x"]).unwrap();
    assert!(matches!(
        Packet::parse(&overflow, 0),
        Err(PacketError::SequenceOverflow { offset: 10, .. })
    ));
}

/// Counts what it is given, allocating nothing.
#[derive(Default)]
struct Tally {
    messages: u64,
    seq_sum: u64,
    lost: u64,
}

impl Sink for Tally {
    fn message(&mut self, m: Delivered<'_>) {
        self.messages += 1;
        self.seq_sum += m.seq;
    }
    fn lost(&mut self, _: u32, first: u64, last: u64) {
        self.lost += last - first + 1;
    }
}

#[test]
fn the_arbiter_allocates_nothing_once_its_stream_exists() {
    let mut rng = SplitMix64::new(5);
    let pk = packets(20_000, &mut rng);
    let mut wire: Vec<(SocketAddrV4, Vec<u8>)> = Vec::new();
    let mut late_b = None;
    for &(seq, n) in &pk[1..] {
        let bytes = data("AB", seq, n);
        // A loses 10 %, B 10 %; B's copy is a packet late a third of the time (so holes open
        // and fill); a heartbeat now and then; a garbage datagram.
        let (a, b) = (!rng.chance(0.1), !rng.chance(0.1));
        if a {
            wire.push((A, bytes.clone()));
        }
        if let Some(late) = late_b.take() {
            wire.push((B, late));
        }
        if b && rng.chance(0.3) {
            late_b = Some(bytes);
        } else if b {
            wire.push((B, bytes));
        }
        if rng.chance(0.01) {
            wire.push((A, control("AB", seq, 0)));
            wire.push((B, vec![1, 2, 3]));
        }
    }
    let cfg = ArbiterConfig {
        ab: vec![(A, B)],
        ..ArbiterConfig::default()
    };
    let mut arb = Arbiter::new(cfg);
    let mut tally = Tally::default();
    arb.push(&dgram(A, &data("AB", pk[0].0, pk[0].1), 0), &mut tally); // creates the stream
    let (_, n) = allocations(|| {
        for (i, (dst, bytes)) in wire.iter().enumerate() {
            arb.push(&dgram(*dst, bytes, i as u64), &mut tally);
        }
        arb.expire(u64::MAX, &mut tally);
        arb.finish(u64::MAX, &mut tally);
    });
    assert_eq!(n, 0, "allocations while pushing {} datagrams", wire.len());
    let last = pk.last().map(|&(s, k)| s + u64::from(k) - 1).unwrap();
    assert_eq!(tally.messages + tally.lost, last);
    assert!(tally.lost > 0 && arb.stream(0).unwrap().counters().recovered > 0);
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(p) = Packet::parse(&bytes, 0) {
            let n = p.messages().count();
            prop_assert_eq!(n, usize::from(p.message_count()));
            let total: usize = p.messages().map(|m| 2 + m.bytes.len()).sum();
            prop_assert_eq!(20 + total, bytes.len());
        }
    }

    /// Any interleaving of two lossy copies delivers exactly the union, in order.
    #[test]
    fn arbiter_delivers_the_union_in_order(
        seed in any::<u64>(),
        n in 1u64..300,
        picks in proptest::collection::vec(any::<bool>(), 0..800),
    ) {
        let mut rng = SplitMix64::new(seed);
        let pk = packets(n, &mut rng);
        let kept: Vec<[bool; 2]> = pk.iter().map(|_| [rng.chance(0.7), rng.chance(0.7)]).collect();
        let lines: [Vec<usize>; 2] = [0, 1].map(|l| (0..pk.len()).filter(|&i| kept[i][l]).collect());
        let (mut next, mut order) = ([0usize; 2], Vec::new());
        let mut picks = picks.into_iter();
        while next[0] < lines[0].len() || next[1] < lines[1].len() {
            let want = usize::from(picks.next().unwrap_or(false));
            let l = if next[want] < lines[want].len() { want } else { 1 - want };
            order.push((l as u8, lines[l][next[l]]));
            next[l] += 1;
        }
        let cfg = StreamConfig { start: Some(1), hold_ns: u64::MAX, ..StreamConfig::default() };
        let (rec, _) = run_ab(&pk, &order, cfg);
        check_union(&rec, &pk, &kept);
    }

    /// A small window may give holes up early, but delivery stays in order, at most once,
    /// and every sequence is either delivered or reported lost.
    #[test]
    fn small_windows_keep_order(seed in any::<u64>(), n in 1u64..200, hold in 0usize..6) {
        let mut rng = SplitMix64::new(seed);
        let pk = packets(n, &mut rng);
        let mut order: Vec<(u8, usize)> = Vec::new();
        for i in 0..pk.len() {
            for l in 0..2u8 {
                if rng.chance(0.7) { order.push((l, i)) }
            }
        }
        // Shuffle locally: swap neighbours now and then.
        for i in 1..order.len() {
            if rng.chance(0.3) { order.swap(i - 1, i) }
        }
        let cfg = StreamConfig { start: Some(1), hold_messages: hold, ..StreamConfig::default() };
        let (rec, _) = run_ab(&pk, &order, cfg);
        let seqs = rec.seqs();
        prop_assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        let mut all: Vec<u64> = seqs.iter().copied().chain(rec.lost.iter().flat_map(|&(f, l)| f..=l)).collect();
        all.sort_unstable();
        prop_assert_eq!(all, (1..=n).collect::<Vec<_>>());
    }
}
