//! `inspect`, `book`, `export` and `convert pcap` read a capture in place and give, byte for
//! byte, what they gave when the capture was first extracted into a BinaryFILE image
//! (`capture::extract`, kept as the reference): over captures of every link type, pcapng with
//! several sections, A/B lines, gaps, duplicates and reordered packets.

mod common;

use common::captures::{feed, fixtures};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};
use tickwatch::book::BookConfig;
use tickwatch::capture::{extract, is_capture, ExtractOptions, Extracted};
use tickwatch::inspect::{inspect, InspectOptions};
use tickwatch::itch::fmt_time;
use tickwatch::pipeline::gap::{damaged_stocks, GapSummary};

const BIN: &str = env!("CARGO_BIN_EXE_tickwatch");

fn ok(args: &[&str]) -> Output {
    let o = Command::new(BIN)
        .args(args)
        .output()
        .expect("running tickwatch");
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

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap()
}

/// What `inspect --json CAPTURE` printed when it inspected the extracted image.
fn expected_inspect(file: &str, cap: &[u8], x: &Extracted, refs: bool) -> Value {
    let opts = InspectOptions {
        threads: 1,
        lenient: false,
        refs,
    };
    let itch = inspect(&x.image, opts).ok();
    let book_gap = GapSummary::of(x.lost.clone()).map(|g| {
        let from = g.inexact_from;
        g.with_damage(damaged_stocks(&x.image, BookConfig::full_day(), from))
    });
    let mut v = json!({
        "file": file,
        "format": format!("{:?}", is_capture(cap).unwrap()),
        "capture_packets": x.packets,
        "network": x.net,
        "mold": x.report,
        "itch": itch,
    });
    if let Some(g) = book_gap {
        v["book_gap"] = serde_json::to_value(g).unwrap();
    }
    v
}

/// Two symbols of the feed and a time halfway through it.
fn symbols_and_midday(image: &[u8]) -> (Vec<String>, String) {
    let s = inspect(image, InspectOptions::default()).unwrap();
    let mid = (s.first_timestamp_ns.unwrap() + s.last_timestamp_ns.unwrap()) / 2;
    (s.symbols_sample[..2].to_vec(), fmt_time(mid))
}

#[test]
fn commands_read_a_capture_in_place_as_they_read_its_extraction() {
    // Under 1 MiB of image: `inspect` walks it as one chunk, as the serial in-place read does.
    let (feed, _) = feed(12_000);
    let dir = tempfile::tempdir().unwrap();
    for (i, (what, cap)) in fixtures(&feed).into_iter().enumerate() {
        let pcap = dir.path().join(format!("f{i}.pcap"));
        let itch = dir.path().join(format!("f{i}.itch"));
        std::fs::write(&pcap, &cap).unwrap();
        let x = extract(&cap, &ExtractOptions::default()).unwrap();
        std::fs::write(&itch, &x.image).unwrap();

        // convert pcap: the image, written as it goes.
        let out = dir.path().join(format!("o{i}.itch"));
        let o = ok(&["convert", "pcap", s(&pcap), "--out", s(&out), "--json"]);
        assert!(
            std::fs::read(&out).unwrap() == x.image,
            "{what}: convert pcap"
        );
        let lost: u64 = x.lost.iter().map(|l| l.last - l.first + 1).sum();
        let delivered: u64 = x.report.sessions.iter().map(|s| s.counters.delivered).sum();
        let want = json!({"out": s(&out), "messages": delivered, "bytes": x.image.len(),
            "lost": lost, "mold": x.report});
        assert_eq!(json_of(&o), want, "{what}: convert pcap --json");

        // inspect --json (with and without --refs).
        for refs in [false, true] {
            let mut args = vec!["inspect", s(&pcap), "--json"];
            if refs {
                args.push("--refs");
            }
            let want = expected_inspect(s(&pcap), &cap, &x, refs);
            assert_eq!(json_of(&ok(&args)), want, "{what}: inspect --refs {refs}");
        }

        // book: text and --json, at the end and halfway.
        let (syms, mid) = symbols_and_midday(&x.image);
        for sym in &syms {
            for extra in [
                &[][..],
                &["--json"],
                &["--at", &mid],
                &["--at", &mid, "--json"],
            ] {
                let args = |f: &Path| {
                    let mut v = vec!["book".to_string(), s(f).into(), "--symbol".into()];
                    v.push(sym.clone());
                    v.extend(extra.iter().map(|e| e.to_string()));
                    v
                };
                let run = |f: &Path| {
                    let a = args(f);
                    ok(&a.iter().map(String::as_str).collect::<Vec<_>>()).stdout
                };
                assert!(run(&pcap) == run(&itch), "{what}: book {sym} {extra:?}");
            }
        }

        // export: to a file and to standard output.
        let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
        ok(&["export", s(&pcap), "--out", s(&a)]);
        ok(&["export", s(&itch), "--out", s(&b)]);
        assert!(
            std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
            "{what}: export"
        );
        let stdout = ok(&["export", s(&pcap)]).stdout;
        assert!(
            stdout == std::fs::read(&b).unwrap(),
            "{what}: export to stdout"
        );
    }
}
