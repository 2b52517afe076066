//! Reading packet captures: tickwatch's zero-copy reader (`capture::Datagrams`: pcap or pcapng
//! framing, Ethernet + VLAN, IPv4, UDP down to the MoldUDP64 payload) against two peers over the
//! same file: the `pcap-parser` crate framing alone (no link, IP or UDP decoding), and the fair
//! peer, `pcap-parser` framing plus `etherparse::SlicedPacket` slicing every frame down to the
//! UDP payload (the same work: payload bytes summed). Then the MoldUDP64 messages out of the
//! capture against the BinaryFILE walk of the same messages.
//!
//! The capture is written in memory from a generated feed (`tickwatch::gen`, 200,000 messages;
//! 20,000 under `cargo test --benches`) by `capture::write_capture`, packets filled to 1,400
//! bytes as on a busy feed, one VLAN tag. Throughput: packets (`capture_read_*`), messages
//! (`capture_messages`).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use etherparse::{SlicedPacket, TransportSlice};
use pcap_parser::{LegacyPcapSlice, PcapBlockOwned, PcapNGSlice};
use std::hint::black_box;
use std::time::Duration;
use tickwatch::capture::{write_capture, CaptureFormat, Datagrams, WriteOptions};
use tickwatch::feed::Frames;
use tickwatch::gen::{generate, GenConfig};
use tickwatch::mold::Packet;

fn feed() -> Vec<u8> {
    let test_mode =
        std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench");
    let messages = if test_mode { 20_000 } else { 200_000 };
    let mut v = Vec::new();
    let cfg = GenConfig {
        messages,
        symbols: 200,
        live_orders: messages / 20,
        seed: 3,
    };
    generate(&cfg, &mut v).expect("generating the feed");
    v
}

fn capture(itch: &[u8], format: CaptureFormat) -> Vec<u8> {
    let opts = WriteOptions {
        format,
        vlan: Some(100),
        max_gap_ns: u64::MAX,
        ..WriteOptions::default()
    };
    let mut out = Vec::new();
    write_capture(itch, &opts, &mut out).expect("writing the capture");
    out
}

/// tickwatch: every UDP payload's length, summed.
fn tickwatch_read(cap: &[u8]) -> (u64, u64) {
    let mut n = 0;
    let mut bytes = 0;
    for d in Datagrams::new(cap).expect("a capture") {
        let d = d.expect("a datagram");
        n += 1;
        bytes += d.payload.len() as u64;
    }
    (n, bytes)
}

/// pcap-parser, classic pcap: every packet's captured length, summed.
fn pcap_parser_legacy(cap: &[u8]) -> (u64, u64) {
    let (mut n, mut bytes) = (0, 0);
    for b in LegacyPcapSlice::from_slice(cap).expect("a pcap") {
        if let Ok(PcapBlockOwned::Legacy(p)) = b {
            n += 1;
            bytes += p.data.len() as u64;
        }
    }
    (n, bytes)
}

/// pcap-parser, pcapng: every enhanced packet block's data length, summed.
fn pcap_parser_ng(cap: &[u8]) -> (u64, u64) {
    let (mut n, mut bytes) = (0, 0);
    for b in PcapNGSlice::from_slice(cap).expect("a pcapng") {
        if let Ok(PcapBlockOwned::NG(pcap_parser::Block::EnhancedPacket(p))) = b {
            n += 1;
            bytes += p.data.len() as u64;
        }
    }
    (n, bytes)
}

/// The UDP payload of an Ethernet frame as `etherparse` slices it (VLAN tags, IPv4, UDP), if any.
fn etherparse_udp(frame: &[u8]) -> Option<&[u8]> {
    match SlicedPacket::from_ethernet(frame).ok()?.transport? {
        TransportSlice::Udp(u) => Some(u.payload()),
        _ => None,
    }
}

/// pcap-parser framing + etherparse slicing, classic pcap: every UDP payload's length, summed.
fn pcap_parser_etherparse_legacy(cap: &[u8]) -> (u64, u64) {
    let (mut n, mut bytes) = (0, 0);
    for b in LegacyPcapSlice::from_slice(cap).expect("a pcap") {
        if let Ok(PcapBlockOwned::Legacy(p)) = b {
            if let Some(payload) = etherparse_udp(p.data) {
                n += 1;
                bytes += payload.len() as u64;
            }
        }
    }
    (n, bytes)
}

/// pcap-parser framing + etherparse slicing, pcapng: every UDP payload's length, summed (the
/// capture has one Ethernet interface, so the interface's link type is not looked up).
fn pcap_parser_etherparse_ng(cap: &[u8]) -> (u64, u64) {
    let (mut n, mut bytes) = (0, 0);
    for b in PcapNGSlice::from_slice(cap).expect("a pcapng") {
        if let Ok(PcapBlockOwned::NG(pcap_parser::Block::EnhancedPacket(p))) = b {
            let caplen = (p.caplen as usize).min(p.data.len());
            if let Some(payload) = etherparse_udp(&p.data[..caplen]) {
                n += 1;
                bytes += payload.len() as u64;
            }
        }
    }
    (n, bytes)
}

/// Every ITCH message in the capture's MoldUDP64 packets (bytes summed).
fn capture_messages(cap: &[u8]) -> u64 {
    let mut bytes = 0;
    for d in Datagrams::new(cap).expect("a capture") {
        let d = d.expect("a datagram");
        let p = Packet::parse(d.payload, d.offset).expect("a MoldUDP64 packet");
        for m in p.messages() {
            bytes += m.bytes.len() as u64;
        }
    }
    bytes
}

/// Every message of the BinaryFILE (bytes summed).
fn binaryfile_messages(itch: &[u8]) -> u64 {
    Frames::new(itch)
        .map(|f| f.expect("a frame").body.len() as u64)
        .sum()
}

fn bench(c: &mut Criterion) {
    let itch = feed();
    let pcap = capture(&itch, CaptureFormat::Pcap);
    let ng = capture(&itch, CaptureFormat::PcapNg);
    // Cross-checks outside the timed code.
    // Every reader sees the same packets; the two that decode to UDP sum the same payload bytes.
    let (packets, payload) = tickwatch_read(&pcap);
    assert!(packets > 0 && payload > 0);
    assert_eq!(tickwatch_read(&ng), (packets, payload));
    assert_eq!(pcap_parser_legacy(&pcap).0, packets);
    assert_eq!(pcap_parser_ng(&ng).0, packets);
    assert_eq!(pcap_parser_etherparse_legacy(&pcap), (packets, payload));
    assert_eq!(pcap_parser_etherparse_ng(&ng), (packets, payload));
    assert_eq!(capture_messages(&pcap), binaryfile_messages(&itch));
    let messages = Frames::new(&itch).count() as u64;

    type Reader = fn(&[u8]) -> (u64, u64);
    let readers: [(&str, &[u8], Reader, Reader); 2] = [
        (
            "pcap",
            &pcap,
            pcap_parser_legacy,
            pcap_parser_etherparse_legacy,
        ),
        ("pcapng", &ng, pcap_parser_ng, pcap_parser_etherparse_ng),
    ];
    for (name, cap, frames_only, fair) in readers {
        let mut g = c.benchmark_group(format!("capture_read_{name}"));
        g.sample_size(10).warm_up_time(Duration::from_secs(1));
        g.throughput(Throughput::Elements(packets));
        g.bench_function("tickwatch_datagrams", |b| {
            b.iter(|| tickwatch_read(black_box(cap)))
        });
        g.bench_function("pcap_parser_etherparse", |b| {
            b.iter(|| fair(black_box(cap)))
        });
        g.bench_function("pcap_parser_frames_only", |b| {
            b.iter(|| frames_only(black_box(cap)))
        });
        g.finish();
    }
    let mut g = c.benchmark_group("capture_messages");
    g.sample_size(10).warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(messages));
    g.bench_function("pcap_moldudp64", |b| {
        b.iter(|| capture_messages(black_box(&pcap)))
    });
    g.bench_function("binaryfile_frames", |b| {
        b.iter(|| binaryfile_messages(black_box(&itch)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
