//! Captures the capture tests share: a generated feed with every scenario, and that feed
//! written as captures of every link type, pcapng with several sections, A/B lines, gaps,
//! duplicates and reordered packets.

use tickwatch::capture::{write_capture, CaptureFormat, LinkType, TsResolution, WriteOptions};
use tickwatch::gen::{generate_scenarios, GenConfig, ScenarioPlan};
use tickwatch::scenario::ScenarioKind;
use tickwatch::surv::FlowRecord;

/// A 5-minute session of `messages` with every scenario injected, and its flow.
pub fn feed(messages: u64) -> (Vec<u8>, Vec<FlowRecord>) {
    let mut v = Vec::new();
    let (_, _, flow) = generate_scenarios(
        &GenConfig {
            messages,
            symbols: 30,
            live_orders: messages / 20,
            seed: 11,
        },
        300_000_000_000,
        &ScenarioPlan {
            kinds: ScenarioKind::ALL.to_vec(),
            rate: 1.0,
        },
        &mut v,
    )
    .unwrap();
    (v, flow.unwrap_or_default())
}

pub fn written(feed: &[u8], o: WriteOptions) -> Vec<u8> {
    let mut cap = Vec::new();
    write_capture(feed, &o, &mut cap).unwrap();
    cap
}

/// The records of a classic little-endian pcap, each with its 16-byte header.
pub fn records(cap: &[u8]) -> Vec<&[u8]> {
    let (mut pos, mut out) = (24, Vec::new());
    while pos < cap.len() {
        let len = u32::from_le_bytes(cap[pos + 8..pos + 12].try_into().unwrap()) as usize;
        out.push(&cap[pos..pos + 16 + len]);
        pos += 16 + len;
    }
    out
}

/// Two classic pcaps (same header) merged, records in time order (A first on a tie).
pub fn merged(a: &[u8], b: &[u8]) -> Vec<u8> {
    let key = |r: &[u8]| {
        let w = |i: usize| u32::from_le_bytes(r[i..i + 4].try_into().unwrap());
        (w(0), w(4))
    };
    let mut all: Vec<(_, u8, &[u8])> = records(a).into_iter().map(|r| (key(r), 0, r)).collect();
    all.extend(records(b).into_iter().map(|r| (key(r), 1, r)));
    all.sort_by_key(|(k, line, _)| (*k, *line));
    let mut out = a[..24].to_vec();
    all.iter().for_each(|(_, _, r)| out.extend_from_slice(r));
    out
}

/// The captures compared, by name.
pub fn fixtures(feed: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let w = |o: WriteOptions| written(feed, o);
    let d = WriteOptions::default;
    let b_line = || WriteOptions {
        group: "233.54.12.112:26477".parse().unwrap(),
        ..d()
    };
    let plain = w(d());
    // Every record twice, and records 3/4, 10/11, 40/41 swapped.
    let mut doubled = plain[..24].to_vec();
    records(&plain)
        .iter()
        .for_each(|r| doubled.extend([*r, *r].concat()));
    let mut swapped: Vec<&[u8]> = records(&plain);
    for i in [3, 10, 40] {
        swapped.swap(i, i + 1);
    }
    let swapped = [&plain[..24], &swapped.concat()].concat();
    let ng = |drop| WriteOptions {
        format: CaptureFormat::PcapNg,
        drop_every: drop,
        ..d()
    };
    vec![
        (
            "ethernet vlan",
            w(WriteOptions {
                vlan: Some(100),
                ..d()
            }),
        ),
        (
            "sll",
            w(WriteOptions {
                link: LinkType::Sll,
                ..d()
            }),
        ),
        (
            "sll2 µs",
            w(WriteOptions {
                link: LinkType::Sll2,
                resolution: TsResolution::Micro,
                ..d()
            }),
        ),
        (
            "pcapng, two sections (the second repeats the first's packets)",
            [w(ng(Some(7))), w(ng(None))].concat(),
        ),
        (
            "gaps",
            w(WriteOptions {
                drop_every: Some(50),
                ..d()
            }),
        ),
        (
            "a/b lines, each with its own losses",
            merged(
                &w(WriteOptions {
                    drop_every: Some(2),
                    ..d()
                }),
                &w(WriteOptions {
                    drop_every: Some(3),
                    ..b_line()
                }),
            ),
        ),
        ("duplicates", doubled),
        ("reordered", swapped),
    ]
}
