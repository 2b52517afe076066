//! Captures no tickwatch code wrote: Wireshark's `dumpcap` records `send`'s MoldUDP64
//! multicast on the receiving end of a veth pair (pcapng: the kernel's own Ethernet, IP and UDP
//! headers, with whatever else the interfaces said — IGMP, IPv6 neighbour discovery); `editcap`
//! rewrites it as nanosecond pcap. (No VLAN tags: this host's kernel has neither the 802.1Q
//! device nor tc's vlan action; VLAN framing is cross-checked by tshark in `tests/capture.rs`.) `inspect`, `book`, `run` and `surveil`
//! must read both as they read the BinaryFILE they came from. No real NASDAQ capture can be had
//! on this host; this is the nearest thing.

mod common;

use common::netns::{check_ok, finish, spawn, Netns};
use common::scenario::assert_same_alerts;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_tickwatch");
const GROUP: &str = "udp://239.255.83.1:31320";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// tickwatch `args`, its standard output (it must succeed).
fn tw(args: &[&str]) -> Vec<u8> {
    let o = Command::new(BIN).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "tickwatch {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// `dumpcap` on `b`'s veth end, writing pcapng `out`, returned once it is
/// capturing.
fn start_dumpcap(ns: &Netns, out: &Path) -> std::process::Child {
    let mut c = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.b,
            "dumpcap",
            "-i",
            &ns.vb,
            "-B",
            "64",
            "-w",
            s(out),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dumpcap");
    let mut err = BufReader::new(c.stderr.take().unwrap());
    let mut said = String::new();
    while !said.contains("Capturing on") {
        let mut line = String::new();
        let n = err.read_line(&mut line).unwrap();
        assert!(n > 0, "dumpcap ended: {said}");
        said += &line;
    }
    // "Capturing on" comes before the first packet can be kept: probe until one is.
    let probe = "echo probe > /dev/udp/10.77.0.2/9";
    for _ in 0..200 {
        let _ = Command::new("ip")
            .args(["netns", "exec", &ns.a, "bash", "-c", probe])
            .output();
        std::thread::sleep(Duration::from_millis(25));
        if holds_a_probe(out) {
            break;
        }
    }
    assert!(holds_a_probe(out), "dumpcap kept no probe: {said}");
    // Its exit summary goes to a thread, so that a full pipe cannot stall it.
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut rest);
        rest
    });
    c
}

/// Whether the capture `cap` holds a probe yet (a capture of nothing but probes is answered
/// with what it holds, port 9 among it).
fn holds_a_probe(cap: &Path) -> bool {
    let o = Command::new(BIN)
        .args(["inspect", s(cap)])
        .output()
        .unwrap();
    String::from_utf8_lossy(&[o.stdout, o.stderr].concat()).contains("port 9")
}

#[test]
fn captures_written_by_wireshark_read_as_the_feed_they_carried() {
    for tool in ["dumpcap", "editcap"] {
        if Command::new(tool).arg("--version").output().is_err() {
            println!("skipped: {tool} (Wireshark's, with tshark) is not installed");
            return;
        }
    }
    let ns = match Netns::new() {
        Ok(ns) => ns,
        Err(why) => {
            println!("skipped: cannot set up network namespaces: {why}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("f.itch");
    let (ng, pcap) = (dir.path().join("d.pcapng"), dir.path().join("d.pcap"));
    let scenarios = "spoofing,layering,stuffing,ignition,close,wash";
    tw(&[
        "gen",
        "--messages",
        "30000",
        "--symbols",
        "20",
        "--session",
        "30s",
        "--seed",
        "9",
        "--scenarios",
        scenarios,
        "--scenario-rate",
        "4",
        "--out",
        s(&feed),
    ]);
    let mut dump = start_dumpcap(&ns, &ng);
    let tx = ["ip", "netns", "exec", ns.a.as_str()];
    let send = [
        "send",
        s(&feed),
        "--to",
        GROUP,
        "--iface",
        "10.77.0.1",
        "--speed",
        "max",
    ];
    check_ok(&finish(spawn(&tx, &send), Duration::from_secs(30)));
    std::thread::sleep(Duration::from_millis(300));
    let pid = dump.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(dump.wait().unwrap().success());
    let o = Command::new("editcap")
        .args(["-F", "nsecpcap", s(&ng), s(&pcap)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for cap in [&ng, &pcap] {
        reads_as_the_feed(cap, &feed, dir.path());
    }
}

/// `cap` reads as `feed`: its messages, books and alerts.
fn reads_as_the_feed(cap: &Path, feed: &Path, dir: &Path) {
    // What inspect found: the probes (not MoldUDP64) beside the stream, nothing lost.
    let report: Value = serde_json::from_slice(&tw(&["inspect", s(cap), "--json"])).unwrap();
    let mold = &report["mold"];
    assert!(mold["not_mold"].as_u64() >= Some(1), "{report:#}");
    assert_eq!(
        mold["channels"][0]["dst"], "239.255.83.1:31320",
        "{report:#}"
    );
    let session = &mold["sessions"][0];
    assert_eq!(
        (
            &session["first_seq"],
            &session["counters"]["lost"],
            &session["end_of_session"]
        ),
        (&1.into(), &0.into(), &true.into()),
        "{report:#}"
    );
    let file: Value = serde_json::from_slice(&tw(&["inspect", s(feed), "--json"])).unwrap();
    for k in [
        "messages",
        "bytes",
        "by_type",
        "stocks",
        "first_timestamp_ns",
        "last_timestamp_ns",
    ] {
        assert_eq!(report["itch"][k], file[k], "{k}: {report:#}");
    }
    for (what, args) in [
        ("BAA's book", vec!["book", "--symbol", "BAA", "--json"]),
        (
            "BAB's book mid-session",
            vec!["book", "--symbol", "BAB", "--at", "09:30:15"],
        ),
    ] {
        let (a, b) = (
            [&args[..], &[s(cap)]].concat(),
            [&args[..], &[s(feed)]].concat(),
        );
        assert_eq!(tw(&a), tw(&b), "{}: {what}", cap.display());
    }
    // The firm's flow is found beside the feed; the capture is given it.
    let flow = dir.join("f.itch.flow.csv");
    let alerts = |input: &Path, name: &str| {
        let out = dir.join(name);
        tw(&[
            "run",
            s(input),
            "--workers",
            "2",
            "--flow",
            s(&flow),
            "--alerts",
            s(&out),
        ]);
        std::fs::read(out).unwrap()
    };
    let (got, want) = (alerts(cap, "cap.jsonl"), alerts(feed, "feed.jsonl"));
    assert!(!want.is_empty());
    assert_same_alerts(&format!("{}: run", cap.display()), &got, &want);
    let surveil = |input: &Path| tw(&["surveil", s(input), "--flow", s(&flow)]);
    let what = format!("{}: surveil", cap.display());
    assert_same_alerts(&what, &surveil(cap), &surveil(feed));
}
