//! `tickwatch run --listen` against `tickwatch send`, as processes: the live run's alerts are
//! byte-identical to `tickwatch run FILE --alerts` and its books end the same — on one clean
//! line, on A/B lines with line A losing every third packet, on one line with a dropped range
//! filled by re-requests, from `send --blast`, and across two network namespaces (root; skipped
//! with the reason printed when the kernel refuses). An unfilled gap lists the stocks it
//! touched; `--hw-timestamps` on lo and veth says why there are none and falls back (or refuses).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use serde_json::Value;
use tickwatch::book::BookConfig;
use tickwatch::feed::Frames;
use tickwatch::pipeline::gap::{damaged_stocks, DamagedStock};

mod common;
use common::netns::{self, check_ok, ip, spawn, Netns};

const BIN: &str = env!("CARGO_BIN_EXE_tickwatch");

/// Waits for `c` at most `limit` and for its success; its standard output.
fn finish(c: Child, limit: Duration) -> String {
    check_ok(&netns::finish(c, limit))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A short generated feed with manipulation episodes (and participant flow), and what
/// `run FILE --alerts` makes of it: (feed, alerts, JSON report).
fn reference(dir: &Path) -> (PathBuf, Vec<u8>, Value) {
    let feed = dir.join("s.itch");
    let gen = spawn(
        &[],
        &[
            "gen",
            "--messages",
            "40000",
            "--symbols",
            "20",
            "--session",
            "2m",
            "--seed",
            "5",
            "--scenarios",
            "spoofing,layering,stuffing,ignition,close,wash",
            "--scenario-rate",
            "2",
            "--out",
            s(&feed),
        ],
    );
    finish(gen, Duration::from_secs(20));
    let alerts = dir.join("file.jsonl");
    let run = spawn(
        &[],
        &[
            "run",
            s(&feed),
            "--workers",
            "2",
            "--json",
            "--alerts",
            s(&alerts),
        ],
    );
    let report = serde_json::from_str(&finish(run, Duration::from_secs(20))).unwrap();
    (feed, std::fs::read(alerts).unwrap(), report)
}

/// One live run: `run --listen` in `rx`, then `send` in `tx`; its alerts and JSON report.
fn live(
    dir: &Path,
    (tx, rx): (&[&str], &[&str]),
    lines: &str,
    (tx_if, rx_if): (&str, &str),
    run_extra: &[&str],
    send_extra: &[&str],
) -> (Vec<u8>, Value) {
    let feed = dir.join("s.itch");
    let flow = dir.join("s.itch.flow.csv");
    let alerts = dir.join(format!("live-{}.jsonl", lines.len() + run_extra.len() * 7));
    let mut args = vec![
        "run",
        "--listen",
        lines,
        "--iface",
        rx_if,
        "--workers",
        "2",
        "--json",
        "--alerts",
        s(&alerts),
        "--flow",
        s(&flow),
    ];
    args.extend_from_slice(run_extra);
    let run = spawn(rx, &args);
    std::thread::sleep(Duration::from_millis(700)); // the join reaches the kernel
    let mut args = vec![
        "send",
        s(&feed),
        "--to",
        lines,
        "--iface",
        tx_if,
        "--speed",
        "max",
    ];
    args.extend_from_slice(send_extra);
    let sent = finish(spawn(tx, &args), Duration::from_secs(15));
    let report: Value = serde_json::from_str(&finish(run, Duration::from_secs(20))).unwrap();
    assert!(!sent.is_empty());
    (std::fs::read(alerts).unwrap(), report)
}

/// The live run saw the whole feed and ended as the file run did.
fn same_as_file(got: &(Vec<u8>, Value), want: &(PathBuf, Vec<u8>, Value)) {
    let (alerts, r) = got;
    let live = &r["live"];
    assert_eq!(live["end_of_session"], true, "{live:#}");
    assert_eq!(live["lost"].as_array().unwrap().len(), 0, "{live:#}");
    assert_eq!(live["recv"]["kernel_drops"], 0, "{live:#}");
    assert!(!want.1.is_empty(), "the feed raises alerts");
    assert!(*alerts == want.1, "live alerts differ from the file's");
    for k in [
        "messages",
        "live_orders",
        "book_stats",
        "top_changes",
        "interrupted",
    ] {
        assert_eq!(r[k], want.2[k], "{k}");
    }
    assert_eq!(r["surv"]["total"], want.2["surv"]["total"]);
    assert!(r["latency"].as_array().unwrap().last().unwrap()["count"].as_u64() > Some(0));
}

/// Multicast on loopback (root sets it up); `Err` with the reason when a datagram sent to a
/// group on `lo` does not come back.
fn loopback() -> Result<(), String> {
    let _ = ip(&["link", "set", "lo", "multicast", "on"]);
    let _ = ip(&["route", "add", "224.0.0.0/4", "dev", "lo"]);
    let group = std::net::Ipv4Addr::new(239, 255, 81, 99);
    let lo = std::net::Ipv4Addr::LOCALHOST;
    let e = |e: std::io::Error| e.to_string();
    let rx = std::net::UdpSocket::bind((group, 0)).map_err(e)?;
    let port = rx.local_addr().map_err(e)?.port();
    rx.join_multicast_v4(&group, &lo).map_err(e)?;
    rx.set_read_timeout(Some(Duration::from_secs(1)))
        .map_err(e)?;
    let tx = std::net::UdpSocket::bind((lo, 0)).map_err(e)?;
    tx.send_to(b"ping", (group, port)).map_err(e)?;
    rx.recv(&mut [0; 8]).map(|_| ()).map_err(e)
}

/// Skips the calling test (with the reason printed) when loopback multicast does not work.
macro_rules! need_loopback {
    () => {
        if let Err(why) = loopback() {
            eprintln!("skipped: no multicast on loopback: {why}");
            return;
        }
    };
}

const LO: (&str, &str) = ("127.0.0.1", "127.0.0.1");

#[test]
fn live_run_equals_the_file_run_on_loopback() {
    need_loopback!();
    let dir = tempfile::tempdir().unwrap();
    let want = reference(dir.path());
    let here: (&[&str], &[&str]) = (&[], &[]);

    // One clean line.
    let got = live(dir.path(), here, "udp://239.255.81.1:31300", LO, &[], &[]);
    same_as_file(&got, &want);
    assert_eq!(got.1["live"]["mold"]["sessions"][0]["counters"]["gaps"], 0);

    // Line A loses every third packet; line B fills in.
    let ab = "udp://239.255.81.2:31301,udp://239.255.81.3:31301";
    let got = live(dir.path(), here, ab, LO, &[], &["--drop-every", "3"]);
    same_as_file(&got, &want);
    let sess = &got.1["live"]["mold"]["sessions"][0];
    assert!(sess["lines"][0]["gaps"].as_u64() > Some(0), "{sess:#}");

    // `send --blast` (sendmmsg, not paced by the feed's times; at a fixed rate): the same.
    let blast = ["--blast=40000"];
    let got = live(
        dir.path(),
        here,
        "udp://239.255.81.6:31304",
        LO,
        &[],
        &blast,
    );
    same_as_file(&got, &want);

    // One line loses a range; the re-request server fills it.
    let got = live(
        dir.path(),
        here,
        "udp://239.255.81.4:31302",
        LO,
        // Holes are timed on receive stamps: a debug build draining a backlog sees a hole
        // late, so it waits long enough for the request's round trip after that.
        &["--rerequest", "udp://127.0.0.1:31399", "--hold", "2s"],
        &["--drop-seq", "1000-1500", "--rerequest-port", "31399"],
    );
    same_as_file(&got, &want);
    let live = &got.1["live"];
    assert!(live["rerequests"]["replies"].as_u64() > Some(0), "{live:#}");
    let gap = &live["mold"]["sessions"][0]["gaps"][0];
    assert_eq!(
        (gap["first"].as_u64(), gap["lost"].as_u64()),
        (Some(1000), Some(0))
    );
}

#[test]
fn live_run_without_a_feed_or_listen_is_refused() {
    let o = Command::new(BIN).args(["run"]).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("FILE"));
    let o = Command::new(BIN)
        .args(["run", "--listen", "udp://239.255.81.9:1", "--speed", "1"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("own pace"));
    let o = Command::new(BIN)
        .args(["run", "x.itch", "--listen", "udp://239.255.81.9:1"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot be used with"));
}

#[test]
fn live_run_across_namespaces_over_veth() {
    let ns = match Netns::new() {
        Ok(ns) => ns,
        Err(why) => {
            eprintln!("skipped: cannot set up network namespaces: {why}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let want = reference(dir.path());
    let tx = ["ip", "netns", "exec", ns.a.as_str()];
    let rx = ["ip", "netns", "exec", ns.b.as_str()];
    let ab = "udp://239.255.82.1:31310,udp://239.255.82.2:31310";
    let ifs = ("10.77.0.1", "10.77.0.2");
    // A veth does not stamp in hardware: asked to, the run says so and uses software stamps.
    let hw = ["--hw-timestamps"];
    let got = live(dir.path(), (&tx, &rx), ab, ifs, &hw, &["--drop-every", "3"]);
    same_as_file(&got, &want);
    let live = &got.1["live"];
    let h = &live["hw_timestamps"];
    assert_eq!(
        (&h["enabled"], &h["mode"]),
        (&false.into(), &"try".into()),
        "{h:#}"
    );
    assert!(h["iface"].as_str().unwrap().starts_with("twvb"), "{h:#}");
    let note = h["note"].as_str().unwrap();
    for part in [
        "(10.77.0.2) cannot stamp",
        "ETHTOOL_GET_TS_INFO says",
        "software receive stamps instead",
    ] {
        assert!(note.contains(part), "{part:?} in {note}");
    }
    assert_eq!(live["timestamps"], "Software");
    assert_eq!(live["recv"]["sw_stamped"], live["recv"]["datagrams"]);
    assert_eq!(
        (
            live["recv"]["hw_stamped"].as_u64(),
            live["recv"]["unstamped"].as_u64()
        ),
        (Some(0), Some(0))
    );
}

#[test]
fn hardware_timestamps_required_on_loopback_are_refused_naming_the_interface() {
    for cmd in ["run", "record"] {
        let mut args = vec![
            cmd,
            "--listen",
            "udp://239.255.81.10:31311",
            "--iface",
            "127.0.0.1",
            "--hw-timestamps=require",
        ];
        if cmd == "record" {
            args.extend(["--out", "unused.pcap"]);
        }
        let o = Command::new(BIN).args(&args).output().unwrap();
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("hardware timestamps: lo (127.0.0.1) cannot stamp received packets in hardware: ETHTOOL_GET_TS_INFO says capabilities"), "{err}");
        assert!(!err.contains("instead"), "{err}");
    }
    // Without --iface the interface is unknown.
    let o = Command::new(BIN)
        .args([
            "run",
            "--listen",
            "udp://239.255.81.10:31311",
            "--hw-timestamps",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("--iface"));
}

#[test]
fn ctrl_c_ends_a_live_run_with_its_counters() {
    need_loopback!();
    let run = spawn(
        &[],
        &[
            "run",
            "--listen",
            "udp://239.255.81.8:31303",
            "--iface",
            "127.0.0.1",
        ],
    );
    std::thread::sleep(Duration::from_millis(700));
    // SAFETY: signals our own child, whose pid is live until it is waited for.
    unsafe {
        libc::kill(run.id() as i32, libc::SIGINT);
    }
    let out = finish(run, Duration::from_secs(10));
    assert!(out.contains("stopped before the end of session"), "{out}");
    assert!(out.contains("interrupted by Ctrl-C"), "{out}");
}

#[test]
fn inspect_listen_counts_a_live_feed_as_the_file() {
    need_loopback!();
    let dir = tempfile::tempdir().unwrap();
    let (feed, _, _) = reference(dir.path());
    let file: Value = serde_json::from_str(&finish(
        spawn(&[], &["inspect", s(&feed), "--json"]),
        Duration::from_secs(20),
    ))
    .unwrap();
    let ab = "udp://239.255.81.7:31307,udp://239.255.81.8:31307";
    let insp = spawn(
        &[],
        &["inspect", "--listen", ab, "--iface", "127.0.0.1", "--json"],
    );
    std::thread::sleep(Duration::from_millis(700)); // the join reaches the kernel
    let args = [
        "send",
        s(&feed),
        "--to",
        ab,
        "--iface",
        "127.0.0.1",
        "--speed",
        "max",
        "--drop-every",
        "4",
    ];
    finish(spawn(&[], &args), Duration::from_secs(15));
    let live: Value = serde_json::from_str(&finish(insp, Duration::from_secs(20))).unwrap();
    // Line A lost every fourth packet, line B filled in: every message, in order.
    assert!(file["messages"].as_u64() > Some(1_000), "{file:#}");
    assert_eq!(live["itch"]["messages"], file["messages"], "{live:#}");
    assert_eq!(live["itch"]["by_type"], file["by_type"]);
    let sess = &live["mold"]["sessions"][0];
    assert!(sess["lines"][0]["gaps"].as_u64() > Some(0), "{sess:#}");
    assert_eq!(sess["lost"].as_u64().unwrap_or(0), 0, "{sess:#}");
}

/// The alert lines of a JSONL file's bytes with their (seq, book_gap).
fn flagged(alerts: &[u8]) -> Vec<(&str, u64, Option<bool>)> {
    std::str::from_utf8(alerts)
        .unwrap()
        .lines()
        .map(|l| {
            let a: Value = serde_json::from_str(l).unwrap();
            (l, a["seq"].as_u64().unwrap(), a["book_gap"].as_bool())
        })
        .collect()
}

#[test]
fn an_unfilled_live_gap_flags_the_alerts_after_it() {
    need_loopback!();
    let dir = tempfile::tempdir().unwrap();
    let want = reference(dir.path());
    let here: (&[&str], &[&str]) = (&[], &[]);
    let line = "udp://239.255.81.5:31303";
    let (alerts, r) = live(
        dir.path(),
        here,
        line,
        LO,
        &[],
        &["--drop-seq", "20000-20500"],
    );
    let lost = &r["live"]["lost"];
    assert_eq!(lost.as_array().unwrap().len(), 1, "{lost:#}");
    // Whole packets are dropped: the range covers 20000-20500.
    let (first, last) = (
        lost[0]["first"].as_u64().unwrap(),
        lost[0]["last"].as_u64().unwrap(),
    );
    assert!(first <= 20000 && last >= 20500, "{lost:#}");
    // Every message before the gap was handed to the engine first.
    let position = first - 1;
    assert_eq!(lost[0]["position"], position);
    let g = &r["book_gap"];
    assert_eq!(g["inexact_from"], position);
    assert_eq!(g["lost_messages"], last - first + 1);
    let got = flagged(&alerts);
    let before = got.iter().filter(|a| a.1 < position).count();
    assert!(
        before > 0 && before < got.len(),
        "alerts on both sides of the gap"
    );
    for (l, seq, flag) in &got {
        assert_eq!(*flag, (*seq >= position).then_some(true), "{l}");
    }
    // Before the gap the books are exact: those alerts are the file's, byte for byte.
    let file: Vec<&str> = flagged(&want.1)
        .into_iter()
        .filter(|a| a.1 < position)
        .map(|a| a.0)
        .collect();
    let live: Vec<&str> = got.iter().filter(|a| a.1 < position).map(|a| a.0).collect();
    assert_eq!(live, file);
    // The stocks the gap touched, found as the messages arrived: what a second pass over the
    // feed without the lost range finds.
    assert_eq!(g["damaged_stocks_listed"], true, "{g:#}");
    let want = damaged_without(&want.0, first, last, position);
    assert!(
        !want.is_empty(),
        "the lost range hides adds referred to later"
    );
    assert_eq!(g["damaged_stocks"], serde_json::to_value(&want).unwrap());

    // Without the reader's books the gap is reported the same, its stocks not looked for.
    let line = "udp://239.255.81.11:31312";
    let drop = ["--drop-seq", "20000-20500"];
    let (_, r) = crate::live(dir.path(), here, line, LO, &["--no-damage-scan"], &drop);
    let g2 = &r["book_gap"];
    assert_eq!(g2["damaged_stocks_listed"], false, "{g2:#}");
    assert!(g2.get("damaged_stocks").is_none(), "{g2:#}");
    assert_eq!(
        (&g2["inexact_from"], &g2["lost_messages"]),
        (&g["inexact_from"], &g["lost_messages"])
    );
}

/// The stocks [`DamageScan`] finds over `feed` with its messages `first..=last` (MoldUDP64
/// numbers them from 1) removed, counting from feed position `from`, with the run's default
/// book capacities.
fn damaged_without(feed: &Path, first: u64, last: u64, from: u64) -> Vec<DamagedStock> {
    let bytes = std::fs::read(feed).unwrap();
    let mut image = Vec::new();
    for (i, f) in Frames::new(&bytes).map_while(Result::ok).enumerate() {
        if !(first..=last).contains(&(i as u64 + 1)) {
            image.extend_from_slice(&(f.body.len() as u16).to_be_bytes());
            image.extend_from_slice(f.body);
        }
    }
    damaged_stocks(&image, BookConfig::for_orders(4 << 20, 1 << 16), from)
}
