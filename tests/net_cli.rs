//! `tickwatch send` → `tickwatch record` as processes: on loopback multicast, and across two
//! network namespaces joined by a veth pair that the test sets up (root; skipped with the
//! reason printed when the kernel refuses). The recording, merged by the MoldUDP64 arbiter,
//! holds the file's messages in order although line A lost every third packet.

use std::net::SocketAddrV4;
use std::path::Path;
use std::time::Duration;

use tickwatch::capture::Datagrams;
use tickwatch::feed::Frames;
use tickwatch::mold::{Arbiter, ArbiterConfig, Delivered};

mod common;
use common::netns::{check_ok, finish, ip, spawn, Netns};

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/12302019_SNIPPET.NASDAQ_ITCH50"
);

/// Records `lines` in `rx_ns` while `send` runs in `tx_ns`; the recording's messages, merged.
fn round_trip(
    tx: &[&str],
    rx: &[&str],
    lines: &str,
    tx_if: &str,
    rx_if: &str,
    out: &Path,
) -> Vec<Vec<u8>> {
    let out_s = out.to_str().unwrap();
    let rec = spawn(
        rx,
        &[
            "record", "--listen", lines, "--iface", rx_if, "--out", out_s, "--idle", "10s",
        ],
    );
    std::thread::sleep(Duration::from_millis(300)); // the join reaches the kernel
    let send = spawn(
        tx,
        &[
            "send",
            SAMPLE,
            "--to",
            lines,
            "--iface",
            tx_if,
            "--speed",
            "max",
            "--drop-every",
            "3",
        ],
    );
    let s = check_ok(&finish(send, Duration::from_secs(10)));
    assert!(s.contains("dropped "), "{s}");
    let r = check_ok(&finish(rec, Duration::from_secs(15)));
    assert!(
        r.contains("end of session on every line") && r.contains("kernel drops 0"),
        "{r}"
    );
    merged(out, lines)
}

fn merged(file: &Path, lines: &str) -> Vec<Vec<u8>> {
    let ab: Vec<SocketAddrV4> = lines.split(',').map(|l| l[6..].parse().unwrap()).collect();
    let mut arb = Arbiter::new(ArbiterConfig {
        ab: vec![(ab[0], ab[1])],
        ..ArbiterConfig::default()
    });
    let bytes = std::fs::read(file).unwrap();
    let mut got = Vec::new();
    let mut sink = |m: Delivered<'_>| got.push(m.bytes.to_vec());
    for d in Datagrams::new(&bytes).unwrap() {
        let d = d.unwrap();
        let md = tickwatch::mold::Datagram {
            ts_ns: d.ts_ns,
            src: d.src,
            dst: d.dst,
            payload: d.payload,
            offset: d.offset,
        };
        arb.push(&md, &mut sink);
    }
    arb.finish(u64::MAX, &mut sink);
    got
}

fn sample_messages() -> Vec<Vec<u8>> {
    let b = std::fs::read(SAMPLE).unwrap();
    Frames::new(&b).map(|f| f.unwrap().body.to_vec()).collect()
}

#[test]
fn send_and_record_on_loopback() {
    let _ = ip(&["link", "set", "lo", "multicast", "on"]);
    let _ = ip(&["route", "add", "224.0.0.0/4", "dev", "lo"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lo.pcap");
    let lines = "udp://239.255.78.1:31100,udp://239.255.78.2:31100";
    let got = round_trip(&[], &[], lines, "127.0.0.1", "127.0.0.1", &out);
    assert_eq!(got, sample_messages());
}

#[test]
fn send_and_record_across_namespaces_over_veth() {
    let ns = match Netns::new() {
        Ok(ns) => ns,
        Err(why) => {
            eprintln!("skipped: cannot set up network namespaces: {why}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("veth.pcap");
    let lines = "udp://239.255.79.1:31200,udp://239.255.79.2:31200";
    let tx = ["ip", "netns", "exec", ns.a.as_str()];
    let rx = ["ip", "netns", "exec", ns.b.as_str()];
    let got = round_trip(&tx, &rx, lines, "10.77.0.1", "10.77.0.2", &out);
    assert_eq!(got, sample_messages());
}

/// An end of session is one datagram and a line can lose it: once line A has ended, a line B
/// that stays silent ends the recording after the grace, not never.
#[test]
fn record_ends_when_a_line_loses_its_end_of_session() {
    let _ = ip(&["link", "set", "lo", "multicast", "on"]);
    let _ = ip(&["route", "add", "224.0.0.0/4", "dev", "lo"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("one.pcap");
    let ab = "udp://239.255.78.5:31105,udp://239.255.78.6:31105";
    let args = ["record", "--listen", ab, "--iface", "127.0.0.1"];
    let rec = spawn(
        &[],
        &[&args[..], &["--out", out.to_str().unwrap()]].concat(),
    );
    std::thread::sleep(Duration::from_millis(300)); // the join reaches the kernel
    let a_only = ["send", SAMPLE, "--to", &ab[..24], "--iface", "127.0.0.1"];
    check_ok(&finish(spawn(&[], &a_only), Duration::from_secs(10)));
    let r = check_ok(&finish(rec, Duration::from_secs(10)));
    assert!(r.contains("end of session on 1 of 2 lines"), "{r}");
}
