//! `run CAPTURE --checkpoint-dir` killed with SIGKILL at random moments, then `run --resume`:
//! a capture of two MoldUDP64 lines, each missing its own packets (so some messages are lost,
//! and alerts from the first gap on carry `book_gap`), ends with alerts byte-identical to an
//! unbroken run's.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

#[path = "common/kill.rs"]
mod kill;
use kill::{feed, newest, stderr, Mode, Trials};

const BIN: &str = env!("CARGO_BIN_EXE_tickwatch");
/// Messages between checkpoints (taken at the next surveillance mark, every 1,024).
const EVERY: &str = "10000";

/// Two classic pcaps with the same file header, their packet records merged by capture time
/// (A before B on a tie): one capture of both lines.
fn interleave(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut all = records(a, 0);
    all.extend(records(b, 1));
    all.sort_by_key(|r| r.0);
    let mut out = a[..24].to_vec();
    for (_, r) in all {
        out.extend_from_slice(r);
    }
    out
}

/// A packet record's sort key: (seconds, fraction, line).
type Key = (u32, u32, u8);

/// A classic pcap's packet records, each with its key.
fn records(cap: &[u8], line: u8) -> Vec<(Key, &[u8])> {
    let mut v = Vec::new();
    let mut at = 24;
    while at < cap.len() {
        let u32_at = |k: usize| u32::from_le_bytes(cap[at + k..at + k + 4].try_into().unwrap());
        let next = at + 16 + u32_at(8) as usize;
        v.push(((u32_at(0), u32_at(4), line), &cap[at..next]));
        at = next;
    }
    v
}

/// The fixture's feed as a capture on two lines, each missing its own packets: messages both
/// lines missed are lost (gaps, so alerts from the first on carry `book_gap`).
fn two_line_capture(root: &Path, feed: &Path) -> PathBuf {
    let line = |name: &str, flags: &[&str]| {
        let p = root.join(name);
        let out = Command::new(BIN)
            .args(["convert", "itch"])
            .arg(feed)
            .arg("--out")
            .arg(&p)
            .args(flags)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        std::fs::read(p).unwrap()
    };
    let a = line("a.pcap", &["--drop-every", "2000"]);
    let b = line(
        "b.pcap",
        &["--group", "233.54.12.112:26477", "--drop-every", "3000"],
    );
    let ab = root.join("ab.pcap");
    std::fs::write(&ab, interleave(&a, &b)).unwrap();
    ab
}

#[test]
fn a_capture_on_two_lines_with_gaps_killed_and_resumed_writes_the_unbroken_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (feed, rules) = feed(root);
    let cap = two_line_capture(root, &feed);
    let run = |alerts: &Path, mode: Option<Mode<'_>>| {
        let mut c = Command::new(BIN);
        c.arg("run")
            .arg(&cap)
            .args(["--workers", "2", "--max-orders", "16384", "--rules"])
            .arg(&rules)
            .arg("--flow")
            .arg(feed.with_extension("itch.flow.csv"))
            .arg("--alerts")
            .arg(alerts)
            .args(["--checkpoint-every", EVERY])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        match mode {
            Some(Mode::Fresh(d)) => c.arg("--checkpoint-dir").arg(d),
            Some(Mode::Resume(d)) => c.arg("--resume").arg(d),
            None => &mut c,
        };
        c
    };
    // Unbroken, without checkpoints and with them: the same alerts.
    let plain = root.join("cap-plain.jsonl");
    let out = run(&plain, None).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("message(s) lost"), "{}", stderr(&out));
    let want = std::fs::read(&plain).unwrap();
    let text = String::from_utf8_lossy(&want);
    let gapped = text
        .lines()
        .filter(|l| l.contains("\"book_gap\":true"))
        .count();
    assert!(
        gapped > 0 && gapped < text.lines().count(),
        "alerts before and after the first gap: {gapped} of {}",
        text.lines().count()
    );
    let whole = root.join("cap-whole.jsonl");
    let t0 = Instant::now();
    let out = run(&whole, Some(Mode::Fresh(&root.join("cap-whole"))))
        .output()
        .unwrap();
    let full = t0.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read(&whole).unwrap() == want);
    let m = std::fs::read_to_string(newest(&root.join("cap-whole")).join("manifest.json"));
    assert!(
        m.unwrap().contains("\"sequence\""),
        "the MoldUDP64 position"
    );
    let trials = Trials {
        root: root.to_path_buf(),
        name: "cap".into(),
        window: full.as_millis() as u64 + 200,
        want: &want,
    };
    trials.run(5, 0x15_03, |a, mode| run(a, Some(mode)));
}
