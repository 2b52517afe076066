//! Every command reads a packet capture of MoldUDP64 as it reads the BinaryFILE inside it: the
//! commands' output from a capture (written by `convert itch`) equals their output from the
//! BinaryFILE byte for byte; `convert pcap` gives the BinaryFILE back; gaps are warned about
//! with their exact ranges; filters that match nothing, captures without MoldUDP64, truncated
//! captures and bad ITCH inside a capture give errors naming what and where (capture offsets).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tickwatch::capture::Datagrams;
use tickwatch::mold::{Packet, PacketKind};

const BIN: &str = env!("CARGO_BIN_EXE_tickwatch");
const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/12302019_SNIPPET.NASDAQ_ITCH50"
);

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

/// Runs and expects a clean error exit (1, no panic); returns stderr.
fn fails(args: &[&str]) -> String {
    let o = run(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
    // (Notes, such as surveil's about the participant flow, may come before the error.)
    assert!(
        err.lines().any(|l| l.starts_with("tickwatch: error:")),
        "{args:?}: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `convert itch feed --out dir/name` with `flags`.
fn capture(feed: &Path, dir: &Path, name: &str, flags: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut args = vec!["convert", "itch", s(feed), "--out", s(&out)];
    args.extend_from_slice(flags);
    ok(&args);
    out
}

/// A generated feed with every manipulation scenario (alerts), its flow file beside it.
fn generated(dir: &Path) -> PathBuf {
    let feed = dir.join("g.itch");
    ok(&[
        "gen",
        "--messages",
        "60000",
        "--symbols",
        "20",
        "--session",
        "5m",
        "--seed",
        "3",
        "--scenarios",
        "spoofing,layering,stuffing,ignition,close,wash",
        "--scenario-rate",
        "2",
        "--out",
        s(&feed),
    ]);
    feed
}

const LINKS: [(&str, &[&str]); 5] = [
    ("eth-vlan.pcap", &["--vlan", "100"]),
    ("sll.pcap", &["--linktype", "sll"]),
    ("sll2.pcap", &["--linktype", "sll2", "--micro"]),
    ("eth.pcapng", &["--pcapng"]),
    ("sll2-vlan.pcapng", &["--pcapng", "--linktype", "sll2"]),
];

#[test]
fn convert_pcap_gives_the_binaryfile_back_for_every_link_type() {
    let dir = tempfile::tempdir().unwrap();
    let gen = generated(dir.path());
    for feed in [Path::new(SAMPLE), &gen] {
        let want = std::fs::read(feed).unwrap();
        for (name, flags) in LINKS {
            let cap = capture(feed, dir.path(), name, flags);
            let back = dir.path().join("back.itch");
            let o = ok(&["convert", "pcap", s(&cap), "--out", s(&back)]);
            assert!(o.stderr.is_empty(), "no gap, no warning");
            assert!(
                std::fs::read(&back).unwrap() == want,
                "{name} of {}: not byte-identical",
                feed.display()
            );
        }
    }
}

/// A command's standard output and the files it names, run on the BinaryFILE and on the
/// capture (`{}` in `args` is the input; `{out}` an output file of this run).
fn same_output(feed: &Path, cap: &Path, dir: &Path, args: &[&str]) {
    let mut results = Vec::new();
    for (i, input) in [feed, cap].into_iter().enumerate() {
        let out = dir.join(format!("out-{i}"));
        let a: Vec<&str> = args
            .iter()
            .map(|a| match *a {
                "{}" => s(input),
                "{out}" => s(&out),
                a => a,
            })
            .collect();
        let o = ok(&a);
        let file = std::fs::read(&out).unwrap_or_default();
        results.push((o.stdout, file));
    }
    assert!(
        results[0].0 == results[1].0,
        "{args:?}: standard output differs"
    );
    assert!(
        results[0].1 == results[1].1,
        "{args:?}: output file differs"
    );
    assert!(
        !results[0].0.is_empty() || !results[0].1.is_empty(),
        "{args:?}: no output at all"
    );
}

/// The counters of `run --json` that do not depend on timing.
fn run_counters(input: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["run", s(input), "--json", "--workers", "2"];
    args.extend_from_slice(extra);
    let v: Value = serde_json::from_slice(&ok(&args).stdout).unwrap();
    let keys = [
        "messages",
        "offered",
        "processed",
        "top_changes",
        "skipped_unknown",
        "skipped_bad_lengths",
        "out_of_order_ts",
        "order_violations",
        "undecodable",
        "book_stats",
        "live_orders",
    ];
    keys.iter().map(|k| (k.to_string(), v[k].clone())).collect()
}

#[test]
fn every_command_reads_a_capture_as_its_binaryfile() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gen = generated(d);
    let flow = gen.with_extension("itch.flow.csv");
    assert!(flow.exists());
    let sample = Path::new(SAMPLE);
    for feed in [sample, &gen] {
        let cap = capture(feed, d, "c.pcap", &["--vlan", "42"]);
        // The snippet starts mid-day: no stock directory, so no book by symbol.
        if feed != sample {
            same_output(feed, &cap, d, &["book", "{}", "--symbol", "BAC"]);
            let at = [
                "book", "{}", "--symbol", "BAD", "--json", "--at", "09:33:00",
            ];
            same_output(feed, &cap, d, &at);
        }
        same_output(feed, &cap, d, &["export", "{}"]);
        same_output(
            feed,
            &cap,
            d,
            &["bars", "{}", "--workers", "2", "-o", "{out}"],
        );
        assert_eq!(run_counters(feed, &[]), run_counters(&cap, &[]));
    }
    // Surveillance: the flow file named (it sits beside the feed, not the capture).
    let cap = capture(&gen, d, "g.pcapng", &["--pcapng", "--linktype", "sll"]);
    let fl = s(&flow);
    same_output(&gen, &cap, d, &["surveil", "{}", "--flow", fl]);
    // Alerts on standard output (the run's report, with its timings, on standard error).
    same_output(&gen, &cap, d, &["run", "{}", "--alerts", "-", "--flow", fl]);
    let both = [
        "--alerts",
        "{out}",
        "--bars",
        "-",
        "--flow",
        fl,
        "--workers",
        "2",
    ];
    let args: Vec<&str> = ["run", "{}"].iter().chain(&both).copied().collect();
    same_output(&gen, &cap, d, &args);
    let alerts = std::fs::read_to_string(d.join("out-1")).unwrap();
    assert!(alerts.lines().count() > 10, "{alerts}");
    assert_eq!(
        run_counters(&gen, &["--alerts", s(&d.join("a.jsonl"))]),
        run_counters(&cap, &["--alerts", s(&d.join("b.jsonl"))])
    );
    // bench and inspect take it too: every message of the feed.
    let n = frames(&std::fs::read(&gen).unwrap()).len();
    let o = ok(&["bench", s(&cap), "--repeat", "1", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["messages"], n, "{v}");
    let o = ok(&["inspect", s(&cap), "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["itch"]["messages"], n, "{v}");
}

/// The sequences missing from a capture's MoldUDP64 stream, as inclusive ranges, read with the
/// library's capture reader.
fn missing_ranges(cap: &[u8]) -> Vec<(u64, u64)> {
    let mut present = Vec::new();
    let mut end = 0;
    for d in Datagrams::new(cap).unwrap() {
        let d = d.unwrap();
        let p = Packet::parse(d.payload, d.offset).unwrap();
        match p.kind() {
            PacketKind::EndOfSession => end = p.sequence(),
            _ => present.push((p.sequence(), p.next_sequence())),
        }
    }
    present.sort();
    let mut out = Vec::new();
    let mut next = 1;
    for (first, after) in present.into_iter().chain([(end, end)]) {
        if first > next {
            out.push((next, first - 1));
        }
        next = next.max(after);
    }
    out
}

#[test]
fn gaps_are_warned_with_their_exact_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let feed = Path::new(SAMPLE);
    let cap = capture(feed, d, "drop.pcap", &["--drop-every", "5"]);
    let want = missing_ranges(&std::fs::read(&cap).unwrap());
    assert!(want.len() >= 5, "{want:?}");
    let lost: u64 = want.iter().map(|(f, l)| l - f + 1).sum();
    let ranges: Vec<String> = want.iter().map(|(f, l)| format!("{f}..={l}")).collect();
    let line = format!(
        "{} gap(s) in the sequence, {lost} message(s) lost: {}\n",
        want.len(),
        ranges.join(", ")
    );
    let out = d.join("g.itch");
    for args in [
        vec!["run", s(&cap)],
        vec!["inspect", s(&cap)],
        vec!["export", s(&cap)],
        vec!["convert", "pcap", s(&cap), "--out", s(&out)],
    ] {
        let o = run(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("warning") && err.contains(&line),
            "{args:?}: want {line:?} in {err}"
        );
    }
    // The image is the BinaryFILE without the lost messages.
    let bytes = std::fs::read(feed).unwrap();
    let all = frames(&bytes);
    let kept: Vec<u8> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            let seq = *i as u64 + 1;
            !want.iter().any(|(f, l)| (*f..=*l).contains(&seq))
        })
        .flat_map(|(_, f)| f.iter().copied())
        .collect();
    assert!(std::fs::read(&out).unwrap() == kept);
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

#[test]
fn filters_that_match_nothing_say_what_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let cap = capture(Path::new(SAMPLE), dir.path(), "c.pcap", &[]);
    let e = fails(&["run", s(&cap), "--channel", "239.1.1.1:5000"]);
    assert!(
        e.contains("--channel 239.1.1.1:5000") && e.contains("233.54.12.111:26477"),
        "{e}"
    );
    let e = fails(&["book", s(&cap), "--symbol", "AAPL", "--session", "NOPE"]);
    assert!(
        e.contains("--session NOPE") && e.contains("000000001"),
        "{e}"
    );
    // The right filters read it all.
    let o = ok(&[
        "inspect",
        s(&cap),
        "--json",
        "--channel",
        "233.54.12.111:26477",
        "--session",
        "000000001",
    ]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["itch"]["messages"], 1000, "{v}");
    // Flags in the wrong shape, or on a BinaryFILE, are refused naming the flag.
    let e = fails(&["run", s(&cap), "--channel", "239.1.1.1"]);
    assert!(e.contains("--channel"), "{e}");
    let e = fails(&["run", s(&cap), "--session", "ELEVENCHARS"]);
    assert!(e.contains("--session"), "{e}");
    let e = fails(&["run", SAMPLE, "--session", "A"]);
    assert!(
        e.contains("--channel/--session") && e.contains("not a pcap"),
        "{e}"
    );
}

/// A classic pcap (µs, little-endian, Ethernet) of `frames`.
fn pcap_of(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    for (i, f) in frames.iter().enumerate() {
        for v in [1_000 + i as u32, 0, f.len() as u32, f.len() as u32] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(f);
    }
    b
}

/// An Ethernet/IPv4 frame of protocol `proto` carrying `l4`.
fn ipv4_frame(proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = vec![0x01, 0, 0x5e, 1, 1, 1, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = (20 + l4.len()) as u16;
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0, 64, proto, 0, 0, 10, 0, 0, 1, 239, 1, 1, 1]);
    f.extend_from_slice(l4);
    f
}

fn udp(port: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = 4000u16.to_be_bytes().to_vec();
    u.extend_from_slice(&port.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

#[test]
fn a_capture_without_moldudp64_says_what_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let frames = vec![
        ipv4_frame(17, &udp(9999, b"IEX-TP")),
        ipv4_frame(17, &udp(9999, b"IEX-TP")),
        ipv4_frame(6, &[0u8; 20]),
    ];
    let p = dir.path().join("other.pcap");
    std::fs::write(&p, pcap_of(&frames)).unwrap();
    let e = fails(&["run", s(&p)]);
    assert!(
        e.contains("no MoldUDP64 packets")
            && e.contains("3 packets, 2 UDP/IPv4 datagrams (port 9999: 2")
            && e.contains("protocol 6: TCP"),
        "{e}"
    );
    assert!(!e.contains("length prefix"), "not a framing error: {e}");
}

#[test]
fn truncated_captures_through_run_name_the_byte_offset() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cap = std::fs::read(capture(Path::new(SAMPLE), d, "c.pcap", &[])).unwrap();
    let ng = std::fs::read(capture(Path::new(SAMPLE), d, "c.pcapng", &["--pcapng"])).unwrap();
    let first_len = u32::from_le_bytes(cap[32..36].try_into().unwrap()) as usize;
    let mut bogus = cap.clone();
    bogus[24 + 8..24 + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    // The second pcapng block (the interface description) with its trailer changed.
    let shb = u32::from_le_bytes(ng[4..8].try_into().unwrap()) as usize;
    let idb = u32::from_le_bytes(ng[shb + 4..shb + 8].try_into().unwrap()) as usize;
    let mut trailer = ng.clone();
    trailer[shb + idb - 4] ^= 4;
    let cases: Vec<(&str, Vec<u8>, String)> = vec![
        (
            "mid file header",
            cap[..10].to_vec(),
            "at byte offset 0:".into(),
        ),
        (
            "mid record header",
            cap[..30].to_vec(),
            "at byte offset 24:".into(),
        ),
        (
            "mid record",
            cap[..24 + 16 + first_len / 2].to_vec(),
            "at byte offset 24:".into(),
        ),
        ("bogus captured length", bogus, "at byte offset 24:".into()),
        ("pcapng trailer", trailer, format!("at byte offset {shb}:")),
        (
            "pcapng mid block",
            ng[..ng.len() - 7].to_vec(),
            "at byte offset".into(),
        ),
    ];
    for (what, bytes, want) in cases {
        let p = d.join("t.pcap");
        std::fs::write(&p, &bytes).unwrap();
        let e = fails(&["run", s(&p)]);
        assert!(e.contains(&want), "{what}: want {want:?} in {e}");
    }
}

#[test]
fn itch_errors_inside_a_capture_name_the_packet_s_capture_offset() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 300 good messages, then an add-order frame 5 bytes long.
    let sample = std::fs::read(SAMPLE).unwrap();
    let mut bad: Vec<u8> = frames(&sample)[..300].concat();
    bad.extend_from_slice(&[0, 5, b'A', 0, 0, 0, 0]);
    let feed = d.join("bad.itch");
    std::fs::write(&feed, &bad).unwrap();
    let cap = capture(&feed, d, "bad.pcap", &["--vlan", "5"]);
    let bytes = std::fs::read(&cap).unwrap();
    // The packet carrying sequence 301 (the bad message), and its index in it.
    let (offset, index) = Datagrams::new(&bytes)
        .unwrap()
        .map(Result::unwrap)
        .find_map(|dg| {
            let p = Packet::parse(dg.payload, dg.offset).unwrap();
            (p.sequence()..p.next_sequence())
                .contains(&301)
                .then(|| (dg.offset, 301 - p.sequence()))
        })
        .unwrap();
    let want = format!(
        "{}: at capture byte offset {offset} (the MoldUDP64 packet there, message index {index} in it): message type 'A' must be 36 bytes",
        cap.display()
    );
    for args in [
        vec!["run", s(&cap)],
        vec!["book", s(&cap), "--symbol", "AAPL"],
        vec!["export", s(&cap)],
        vec!["surveil", s(&cap)],
        vec!["inspect", s(&cap)],
        vec!["bars", s(&cap)],
        vec!["bench", s(&cap), "--repeat", "1"],
    ] {
        let e = fails(&args);
        assert!(e.contains(&want), "{args:?}: want {want:?} in {e}");
    }
}

/// Two classic pcaps (same header) merged into one, records in time order (A first on a tie).
fn merge_pcaps(a: &[u8], b: &[u8]) -> Vec<u8> {
    let records = |buf: &[u8], which: u8| {
        let (mut pos, mut out) = (24, Vec::new());
        while pos < buf.len() {
            let word = |i: usize| u32::from_le_bytes(buf[pos + i..pos + i + 4].try_into().unwrap());
            let end = pos + 16 + word(8) as usize;
            out.push(((word(0), word(4), which), buf[pos..end].to_vec()));
            pos = end;
        }
        out
    };
    let mut all = records(a, 0);
    all.extend(records(b, 1));
    all.sort_by_key(|(k, _)| *k);
    let mut out = a[..24].to_vec();
    for (_, r) in all {
        out.extend_from_slice(&r);
    }
    out
}

fn seqs(ranges: &[(u64, u64)]) -> std::collections::BTreeSet<u64> {
    ranges.iter().flat_map(|(f, l)| *f..=*l).collect()
}

#[test]
fn a_and_b_lines_are_merged_and_lose_only_what_both_missed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let feed = Path::new(SAMPLE);
    let a = capture(feed, d, "a.pcap", &["--drop-every", "2"]);
    let b_group = ["--group", "233.54.12.112:26477"];
    let full_b = capture(feed, d, "fb.pcap", &b_group);
    let b = capture(
        feed,
        d,
        "b.pcap",
        &[&b_group[..], &["--drop-every", "3"]].concat(),
    );
    let [a, b, full_b] = [a, b, full_b].map(|p| std::fs::read(p).unwrap());
    let sample = std::fs::read(feed).unwrap();
    // B whole: nothing lost, the feed back byte for byte, no warning.
    let ab = d.join("ab.pcap");
    let back = d.join("back.itch");
    std::fs::write(&ab, merge_pcaps(&a, &full_b)).unwrap();
    let o = ok(&["convert", "pcap", s(&ab), "--out", s(&back)]);
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(std::fs::read(&back).unwrap() == sample);
    // Both lines lossy: lost exactly where both missed.
    let both: Vec<u64> = seqs(&missing_ranges(&a))
        .intersection(&seqs(&missing_ranges(&b)))
        .copied()
        .collect();
    assert!(!both.is_empty());
    std::fs::write(&ab, merge_pcaps(&a, &b)).unwrap();
    let o = ok(&["convert", "pcap", s(&ab), "--out", s(&back), "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["lost"], both.len(), "{v}");
    assert_eq!(v["mold"]["sessions"].as_array().unwrap().len(), 1, "{v}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("233.54.12.111:26477 + 233.54.12.112:26477"),
        "{err}"
    );
    let kept: Vec<u8> = frames(&sample)
        .iter()
        .enumerate()
        .filter(|(i, _)| !both.contains(&(*i as u64 + 1)))
        .flat_map(|(_, f)| f.iter().copied())
        .collect();
    assert!(std::fs::read(&back).unwrap() == kept);
}

#[test]
fn two_feeds_that_share_a_session_name_stay_apart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gen = generated(d);
    let a = capture(Path::new(SAMPLE), d, "a.pcap", &[]);
    let b = capture(&gen, d, "b.pcap", &["--group", "233.54.12.112:26477"]);
    let both = d.join("both.pcap");
    let merged = merge_pcaps(&std::fs::read(a).unwrap(), &std::fs::read(b).unwrap());
    std::fs::write(&both, merged).unwrap();
    let o = ok(&["inspect", s(&both), "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["mold"]["sessions"].as_array().unwrap().len(), 2, "{v}");
    let back = d.join("back.itch");
    let args = ["convert", "pcap", s(&both), "--out", s(&back)];
    ok(&[&args[..], &["--channel", "233.54.12.112:26477"]].concat());
    assert!(std::fs::read(&back).unwrap() == std::fs::read(&gen).unwrap());
}

/// Every message of the image, at its offset, is the message `place` names: message
/// `place.message` of the packet at capture offset `place.packet`.
fn check_places(cap: &[u8], x: &tickwatch::capture::Extracted) {
    let payloads: std::collections::HashMap<u64, &[u8]> = Datagrams::new(cap)
        .unwrap()
        .map(|d| d.map(|d| (d.offset, d.payload)).unwrap())
        .collect();
    let mut off = 0;
    for f in frames(&x.image) {
        let place = x.place(off as u64).unwrap();
        let p = Packet::parse(payloads[&place.packet], 0).unwrap();
        let m = p.messages().nth(place.message as usize).unwrap();
        assert_eq!(m.bytes, &f[2..], "image offset {off}: {place:?}");
        off += f.len();
    }
}

/// Swaps pcap records `i` and `i + 1` for each `i` in `at` (packets out of order on the wire).
fn swap_records(cap: &[u8], at: &[usize]) -> Vec<u8> {
    let mut recs = Vec::new();
    let mut pos = 24;
    while pos < cap.len() {
        let len = u32::from_le_bytes(cap[pos + 8..pos + 12].try_into().unwrap()) as usize;
        recs.push(&cap[pos..pos + 16 + len]);
        pos += 16 + len;
    }
    for &i in at {
        recs.swap(i, i + 1);
    }
    let mut out = cap[..24].to_vec();
    out.extend(recs.concat());
    out
}

#[test]
fn the_map_names_the_packet_of_every_message_held_or_not() {
    use tickwatch::capture::{extract, write_capture, ExtractOptions, WriteOptions};
    use tickwatch::gen::{generate, GenConfig};
    let mut feed = Vec::new();
    let cfg = GenConfig {
        messages: 20_000,
        symbols: 10,
        live_orders: 500,
        seed: 9,
    };
    generate(&cfg, &mut feed).unwrap();
    let wo = WriteOptions {
        max_gap_ns: 1_000_000_000,
        ..WriteOptions::default()
    };
    let mut cap = Vec::new();
    write_capture(&feed, &wo, &mut cap).unwrap();
    let x = extract(&cap, &ExtractOptions::default()).unwrap();
    assert!(x.image == feed);
    check_places(&cap, &x);
    // Packets out of order: the later one's messages wait for the hole, then come out held.
    let swapped = swap_records(&cap, &[3, 10, 40]);
    let x = extract(&swapped, &ExtractOptions::default()).unwrap();
    assert!(x.image == feed, "reordered packets are put back in order");
    assert!(x.lost.is_empty());
    let c = x.report.sessions[0].counters;
    assert!(c.delivered_held >= 3 && c.recovered == 3, "{c:?}");
    check_places(&swapped, &x);
    // An A/B pair, each line with its own losses.
    let a = swap_records(&cap, &[7]);
    let mut b = Vec::new();
    let wb = WriteOptions {
        group: "233.54.12.112:26477".parse().unwrap(),
        drop_every: Some(4),
        ..wo.clone()
    };
    write_capture(&feed, &wb, &mut b).unwrap();
    let ab = merge_pcaps(&a, &b);
    let x = extract(&ab, &ExtractOptions::default()).unwrap();
    assert!(x.image == feed);
    check_places(&ab, &x);
}

/// The alerts of a JSONL file as (seq, book_gap) pairs, sorted.
fn alert_flags(path: &Path) -> Vec<(u64, Option<bool>)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut v: Vec<_> = text
        .lines()
        .map(|l| {
            let a: Value = serde_json::from_str(l).unwrap();
            (a["seq"].as_u64().unwrap(), a["book_gap"].as_bool())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn alerts_after_an_unfilled_gap_carry_book_gap_and_the_report_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gen = generated(d);
    let fl = s(&gen.with_extension("itch.flow.csv")).to_string();
    // One packet dropped, half-way through the feed.
    let whole = capture(&gen, d, "whole.pcap", &[]);
    let packets = Datagrams::new(&std::fs::read(&whole).unwrap())
        .unwrap()
        .count();
    let every = (packets / 2 + 1).to_string();
    let cap = capture(&gen, d, "drop.pcap", &["--drop-every", &every]);
    let want = missing_ranges(&std::fs::read(&cap).unwrap());
    assert_eq!(want.len(), 1, "{want:?}");
    let (first, last) = want[0];
    // Every message before the gap is in the feed: the gap is at position first - 1.
    let position = first - 1;
    let mut flags = Vec::new();
    for workers in ["1", "2"] {
        let alerts = d.join(format!("alerts-{workers}.jsonl"));
        let args = [
            "run",
            s(&cap),
            "--alerts",
            s(&alerts),
            "--flow",
            &fl,
            "--workers",
            workers,
        ];
        let text = String::from_utf8(ok(&args).stdout).unwrap();
        let named = format!(
            "book gap: stream 0 sequence {first}..={last} lost ({} message(s)), noticed at feed position {position}",
            last - first + 1
        );
        assert!(text.contains(&named), "want {named:?} in {text}");
        let inexact = format!(
            "books after feed position {position} may be inexact ({} messages lost)",
            last - first + 1
        );
        assert!(text.contains(&inexact), "{text}");
        // The stocks are listed now (tests/capture_gaps.rs checks which).
        assert!(text.contains("stocks that showed damage after the gap: "));
        assert!(!text.contains("not listed"), "{text}");
        let v: Value =
            serde_json::from_slice(&ok(&[&args[..], &["--json"]].concat()).stdout).unwrap();
        let g = &v["book_gap"];
        assert_eq!(g["inexact_from"], position, "{g}");
        assert_eq!(g["gaps"][0]["first"], first);
        assert_eq!(g["gaps"][0]["last"], last);
        assert_eq!(g["gaps"][0]["position"], position);
        let f = alert_flags(&alerts);
        let before = f.iter().filter(|(seq, _)| *seq < position).count();
        assert!(
            before > 0 && before < f.len(),
            "alerts on both sides: {f:?}"
        );
        for (seq, flag) in &f {
            let want = (*seq >= position).then_some(true);
            assert_eq!(*flag, want, "alert at {seq}, gap at {position}");
        }
        flags.push(f);
    }
    assert_eq!(flags[0], flags[1], "the same flags for any worker count");
    // Without the drop: no flag, no gap in the report.
    let o = ok(&[
        "run",
        s(&whole),
        "--alerts",
        s(&d.join("w.jsonl")),
        "--flow",
        &fl,
    ]);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("book gap"));
    assert!(alert_flags(&d.join("w.jsonl"))
        .iter()
        .all(|(_, f)| f.is_none()));
    let v: Value = serde_json::from_slice(&ok(&["run", s(&whole), "--json"]).stdout).unwrap();
    assert!(v.get("book_gap").is_none());
}
