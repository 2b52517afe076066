//! Unfilled gaps in a capture, as the commands report them: the gap's feed position counts only
//! the messages the engine is handed (frames skipped before it, packets that are not
//! MoldUDP64, other channels and duplicate copies do not move it); `surveil` flags its alerts
//! like `run`; the stocks whose orders the books no longer know after the gap are listed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::captures::records;

use serde_json::Value;
use tickwatch::capture::{write_capture, WriteOptions};
use tickwatch::itch::decode;

const BIN: &str = env!("CARGO_BIN_EXE_tickwatch");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("running tickwatch")
}

fn ok(args: &[&str]) -> Output {
    let o = run(args);
    assert!(
        o.status.success(),
        "tickwatch {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A generated feed with manipulation scenarios (alerts), its flow file beside it.
fn generated(dir: &Path) -> PathBuf {
    let feed = dir.join("g.itch");
    ok(&[
        "gen",
        "--messages",
        "40000",
        "--symbols",
        "12",
        "--session",
        "3m",
        "--seed",
        "5",
        "--scenarios",
        "spoofing,layering,stuffing,ignition,close,wash",
        "--scenario-rate",
        "2",
        "--out",
        s(&feed),
    ]);
    feed
}

/// Each frame of a BinaryFILE with its length prefix.
fn frames(buf: &[u8]) -> Vec<&[u8]> {
    let (mut pos, mut out) = (0, Vec::new());
    while pos < buf.len() {
        let n = u16::from_be_bytes([buf[pos], buf[pos + 1]]) as usize;
        out.push(&buf[pos..pos + 2 + n]);
        pos += 2 + n;
    }
    out
}

/// `feed` with, after every 50th frame, a frame of a type ITCH 5.0 does not define and an add
/// order of a wrong length (both skipped by the engine, the second under `--lenient`).
fn with_skipped_frames(feed: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(feed.len() * 11 / 10);
    for (i, f) in frames(feed).into_iter().enumerate() {
        out.extend_from_slice(f);
        if i % 50 == 49 {
            out.extend_from_slice(&[0, 5, b'z', 0, 1, 0, 0]);
            out.extend_from_slice(&[0, 12, b'A', 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        }
    }
    out
}

/// A pcap record (timestamp of `like`) holding an Ethernet/IPv4/UDP frame to port 9999 that is
/// not MoldUDP64.
fn not_mold_record(like: &[u8]) -> Vec<u8> {
    let payload = b"not moldudp64";
    let mut f = vec![0x01, 0, 0x5e, 1, 1, 1, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&((28 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 239, 1, 1, 1]);
    f.extend_from_slice(&4000u16.to_be_bytes());
    f.extend_from_slice(&9999u16.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    let mut r = like[..8].to_vec();
    r.extend_from_slice(&(f.len() as u32).to_le_bytes());
    r.extend_from_slice(&(f.len() as u32).to_le_bytes());
    r.extend_from_slice(&f);
    r
}

/// Feed positions (what the engine numbers `seq`) of the first message after each gap in a
/// capture of `feed` whose messages `first..=last` (1-based sequence) are lost: the messages
/// before it that decode (the engine skips the others).
fn position_of(feed: &[u8], first: u64) -> u64 {
    frames(feed)
        .iter()
        .take(first as usize - 1)
        .filter(|f| decode(&f[2..], 0).is_ok())
        .count() as u64
}

/// A capture of `feed` with one packet (about half-way) dropped, each kept record sent twice
/// and a datagram that is not MoldUDP64 before it, merged with a second channel's copy of the
/// feed (filtered out with `--channel`); and the lost range.
fn noisy_gapped_capture(feed: &[u8]) -> (Vec<u8>, (u64, u64)) {
    let mut whole = Vec::new();
    let report = write_capture(feed, &WriteOptions::default(), &mut whole).unwrap();
    let opts = WriteOptions {
        drop_every: Some(report.packets / 2 + 1),
        ..WriteOptions::default()
    };
    let mut cap = Vec::new();
    let r = write_capture(feed, &opts, &mut cap).unwrap();
    assert_eq!(r.dropped_packets, 1);
    let other = WriteOptions {
        group: "233.54.12.120:26400".parse().unwrap(),
        ..WriteOptions::default()
    };
    let mut b = Vec::new();
    write_capture(feed, &other, &mut b).unwrap();
    let mut out = cap[..24].to_vec();
    let bs = records(&b);
    for (i, r) in records(&cap).into_iter().enumerate() {
        out.extend_from_slice(&not_mold_record(r));
        out.extend_from_slice(r);
        if let Some(o) = bs.get(i) {
            out.extend_from_slice(o);
        }
        out.extend_from_slice(r);
    }
    // The lost range: the messages of the dropped packet.
    let (mut next, mut lost) = (1u64, None);
    for d in tickwatch::capture::Datagrams::new(&cap).unwrap() {
        let d = d.unwrap();
        let p = tickwatch::mold::Packet::parse(d.payload, d.offset).unwrap();
        if p.sequence() > next && lost.is_none() {
            lost = Some((next, p.sequence() - 1));
        }
        next = next.max(p.next_sequence());
    }
    (out, lost.expect("a gap"))
}

#[test]
fn a_gap_s_position_counts_only_the_messages_handed_to_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let feed = with_skipped_frames(&std::fs::read(generated(d)).unwrap());
    let (cap, (first, last)) = noisy_gapped_capture(&feed);
    let path = d.join("noisy.pcap");
    std::fs::write(&path, &cap).unwrap();
    let position = position_of(&feed, first);
    assert!(position + 100 < first, "frames were skipped before the gap");
    let o = ok(&[
        "run",
        s(&path),
        "--lenient",
        "--channel",
        "233.54.12.111:26477",
        "--json",
    ]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let g = &v["book_gap"];
    assert_eq!(g["gaps"][0]["first"], first, "{g}");
    assert_eq!(g["gaps"][0]["last"], last, "{g}");
    assert_eq!(g["gaps"][0]["position"], position, "{g}");
    assert_eq!(g["inexact_from"], position, "{g}");
}

/// The alerts of a JSONL file as (seq, book_gap) pairs, in file order.
fn alert_flags(path: &Path) -> Vec<(u64, Option<bool>)> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|l| {
            let a: Value = serde_json::from_str(l).unwrap();
            (a["seq"].as_u64().unwrap(), a["book_gap"].as_bool())
        })
        .collect()
}

/// The generated feed, and a capture of it with one packet (about half-way) dropped, and the
/// lost range.
fn gapped(d: &Path) -> (PathBuf, PathBuf, (u64, u64)) {
    let gen = generated(d);
    let feed = std::fs::read(&gen).unwrap();
    let (cap, lost) = noisy_gapped_capture(&feed);
    let path = d.join("gapped.pcap");
    std::fs::write(&path, cap).unwrap();
    (gen, path, lost)
}

#[test]
fn surveil_on_a_capture_flags_the_alerts_after_the_gap_as_run_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (gen, cap, (first, last)) = gapped(d);
    let flow = gen.with_extension("itch.flow.csv");
    let channel = ["--channel", "233.54.12.111:26477"];
    let position = first - 1;
    let surv_alerts = d.join("surveil.jsonl");
    let o = ok(&[
        &[
            "surveil",
            s(&cap),
            "--flow",
            s(&flow),
            "-o",
            s(&surv_alerts),
        ],
        &channel[..],
    ]
    .concat());
    let err = String::from_utf8_lossy(&o.stderr);
    let named = format!(
        "book gap: stream 0 sequence {first}..={last} lost ({} message(s)), noticed at feed position {position}",
        last - first + 1
    );
    assert!(err.contains(&named), "want {named:?} in {err}");
    assert!(err.contains(&format!(
        "books after feed position {position} may be inexact"
    )));
    let f = alert_flags(&surv_alerts);
    let before = f.iter().filter(|(seq, _)| *seq < position).count();
    assert!(
        before > 0 && before < f.len(),
        "alerts on both sides: {f:?}"
    );
    for (seq, flag) in &f {
        assert_eq!(*flag, (*seq >= position).then_some(true), "alert at {seq}");
    }
    // The same alerts, flags and all, as `run` writes.
    let run_alerts = d.join("run.jsonl");
    ok(&[
        &[
            "run",
            s(&cap),
            "--flow",
            s(&flow),
            "--alerts",
            s(&run_alerts),
        ],
        &channel[..],
    ]
    .concat());
    assert!(std::fs::read(&run_alerts).unwrap() == std::fs::read(&surv_alerts).unwrap());
    // Without the gap, surveil's alerts carry no flag and its report names no gap.
    let whole = d.join("whole.pcap");
    ok(&["convert", "itch", s(&gen), "--out", s(&whole)]);
    let plain = d.join("plain.jsonl");
    let o = ok(&["surveil", s(&whole), "--flow", s(&flow), "-o", s(&plain)]);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("book gap"));
    assert!(alert_flags(&plain).iter().all(|(_, f)| f.is_none()));
}

/// (locate, references) of the stocks whose orders, after the lost messages `first..=last`
/// (1-based sequence) of `feed`, are referred to though the add was lost: worked out here from
/// the messages' bytes (a replace of an unknown order leaves its new order unknown too).
fn orphans_by_stock(feed: &[u8], first: u64, last: u64) -> Vec<(u16, u64)> {
    let field = |f: &[u8], at: usize| u64::from_be_bytes(f[at..at + 8].try_into().unwrap());
    let mut unknown = std::collections::HashSet::new();
    let mut count = std::collections::BTreeMap::new();
    for (i, f) in frames(feed).into_iter().enumerate() {
        let (seq, body) = (i as u64 + 1, &f[2..]);
        let locate = u16::from_be_bytes([body[1], body[2]]);
        if (first..=last).contains(&seq) {
            match body[0] {
                b'A' | b'F' => drop(unknown.insert(field(body, 11))),
                b'U' => drop(unknown.insert(field(body, 19))),
                _ => {}
            }
        } else if seq > last
            && matches!(body[0], b'E' | b'C' | b'X' | b'D' | b'U')
            && unknown.contains(&field(body, 11))
        {
            *count.entry(locate).or_insert(0u64) += 1;
            if body[0] == b'U' {
                unknown.insert(field(body, 19));
            }
        }
    }
    count.into_iter().collect()
}

/// (locate, references) of a report's `damaged_stocks`, checking each symbol.
fn damaged(g: &Value) -> Vec<(u16, u64)> {
    assert_eq!(g["damaged_stocks_listed"], true, "{g}");
    let mut v: Vec<(u16, u64)> = g["damaged_stocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let locate = d["locate"].as_u64().unwrap() as u16;
            let want = tickwatch::itch::symbol_str(&tickwatch::gen::symbol_of_locate(locate));
            assert_eq!(d["symbol"], want.as_str(), "{d}");
            (locate, d["orphan_refs"].as_u64().unwrap())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn the_stocks_a_gap_touched_are_listed_with_their_orphan_references() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (gen, cap, (first, last)) = gapped(d);
    let want = orphans_by_stock(&std::fs::read(&gen).unwrap(), first, last);
    assert!(
        !want.is_empty(),
        "the lost packet held adds referred to later"
    );
    let channel = ["--channel", "233.54.12.111:26477"];
    let json = |args: &[&str]| -> Value {
        serde_json::from_slice(&ok(&[args, &channel[..], &["--json"]].concat()).stdout).unwrap()
    };
    let r = json(&["run", s(&cap)]);
    assert_eq!(damaged(&r["book_gap"]), want);
    for workers in ["1", "2"] {
        let r = json(&["run", s(&cap), "--workers", workers]);
        assert_eq!(damaged(&r["book_gap"]), want);
    }
    let i = json(&["inspect", s(&cap)]);
    assert_eq!(damaged(&i["book_gap"]), want);
    // The text reports name them, the most damaged first.
    let mut by_count = want.clone();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let names: Vec<String> = by_count
        .iter()
        .map(|(l, n)| {
            let sym = tickwatch::itch::symbol_str(&tickwatch::gen::symbol_of_locate(*l));
            format!("{sym} ({n})")
        })
        .collect();
    let line = format!(
        "stocks that showed damage after the gap: {} (messages naming an order the books did not know): {}\n",
        want.len(),
        names.join(", ")
    );
    let text = |o: Output| String::from_utf8_lossy(&[o.stdout, o.stderr].concat()).into_owned();
    let flow = gen.with_extension("itch.flow.csv");
    for args in [
        vec!["run", s(&cap)],
        vec!["inspect", s(&cap)],
        vec!["surveil", s(&cap), "--flow", s(&flow), "-o", "/dev/null"],
    ] {
        let t = text(ok(&[&args[..], &channel[..]].concat()));
        assert!(t.contains(&line), "{args:?}: want {line:?} in {t}");
        assert!(t.contains(&format!(
            "books after feed position {} may be inexact",
            first - 1
        )));
    }
}
