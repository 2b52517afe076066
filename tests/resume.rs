//! `run --checkpoint-dir` killed with SIGKILL at random moments — some inside a checkpoint
//! write — then `run --resume`: the alerts file ends byte-identical to an unbroken run's. And
//! the refusals: another format version, another feed, another worker count; a damaged newest
//! checkpoint falls back to the older one.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tickwatch::ckpt::FORMAT_VERSION;

#[path = "common/kill.rs"]
mod kill;
use kill::{feed, newest, stderr, Mode, Trials};

const BIN: &str = env!("CARGO_BIN_EXE_tickwatch");
/// Messages between checkpoints (taken at the next surveillance mark, every 1,024).
const EVERY: &str = "10000";

/// The feed (with its flow beside it), small detector tables (a debug build saves them fast),
/// and the unbroken runs' alerts for 1 and 2 workers.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    feed: PathBuf,
    rules: PathBuf,
    /// Unbroken alerts, per worker count (index 1 and 2).
    alerts: [Vec<u8>; 3],
    /// An unbroken checkpointed run's wall time.
    full: Duration,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let (feed, rules) = feed(&root);
        let mut f = Fixture {
            _dir: dir,
            root,
            feed,
            rules,
            alerts: Default::default(),
            full: Duration::ZERO,
        };
        for w in [1, 2] {
            let a = f.root.join(format!("unbroken-{w}.jsonl"));
            let t0 = Instant::now();
            let out = f
                .run(w, &a, Mode::Fresh(&f.root.join(format!("d-{w}"))))
                .output()
                .unwrap();
            f.full = f.full.max(t0.elapsed());
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            f.alerts[w] = std::fs::read(&a).unwrap();
            assert!(f.alerts[w].len() > 1000, "the feed raises alerts");
        }
        assert_eq!(
            f.alerts[1], f.alerts[2],
            "any worker count, the same alerts"
        );
        f
    })
}

impl Fixture {
    fn run(&self, workers: usize, alerts: &Path, mode: Mode<'_>) -> Command {
        let mut c = Command::new(BIN);
        c.arg("run")
            .arg(&self.feed)
            .args(["--workers", &workers.to_string(), "--max-orders", "16384"])
            .arg("--rules")
            .arg(&self.rules)
            .arg("--alerts")
            .arg(alerts)
            .args(["--checkpoint-every", EVERY])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        match mode {
            Mode::Fresh(d) => c.arg("--checkpoint-dir").arg(d),
            Mode::Resume(d) => c.arg("--resume").arg(d),
        };
        c
    }
}

/// `kills` runs killed at random moments, each resumed (and sometimes killed again) until a
/// run completes; every final alerts file is the unbroken one. Returns the kills that found a
/// checkpoint being written.
fn kill_and_resume(workers: usize, kills: usize, seed: u64) -> usize {
    let f = fixture();
    let trials = Trials {
        root: f.root.clone(),
        name: format!("k{workers}"),
        window: f.full.as_millis() as u64 + 200,
        want: &f.alerts[workers],
    };
    trials.run(kills, seed, |a, mode| f.run(workers, a, mode))
}

#[test]
fn killed_at_random_moments_and_resumed_one_worker_writes_the_unbroken_alerts() {
    let inside = kill_and_resume(1, 10, 0x15_01);
    assert!(inside >= 1, "some kills landed inside a checkpoint write");
}

#[test]
fn killed_at_random_moments_and_resumed_two_workers_writes_the_unbroken_alerts() {
    let inside = kill_and_resume(2, 10, 0x15_02);
    assert!(inside >= 1, "some kills landed inside a checkpoint write");
}

/// A complete checkpointed run in its own directory: (checkpoint dir, alerts file).
fn checkpointed(name: &str, workers: usize) -> (PathBuf, PathBuf) {
    let f = fixture();
    let d = f.root.join(name);
    let a = f.root.join(format!("{name}.jsonl"));
    let out = f.run(workers, &a, Mode::Fresh(&d)).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    (d, a)
}

#[test]
fn a_checkpoint_of_another_format_version_is_refused() {
    let f = fixture();
    let (d, a) = checkpointed("version", 2);
    let m = newest(&d).join("manifest.json");
    let text = std::fs::read_to_string(&m).unwrap();
    let (now, other) = (FORMAT_VERSION, FORMAT_VERSION + 1);
    let edited = text.replace(
        &format!("\"format\": {now}"),
        &format!("\"format\": {other}"),
    );
    assert_ne!(edited, text, "the manifest names its format");
    std::fs::write(&m, edited).unwrap();
    let out = f.run(2, &a, Mode::Resume(&d)).output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("is format {other}, this build reads {now}")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_damaged_newest_checkpoint_is_detected_and_the_older_one_used() {
    let f = fixture();
    let (d, a) = checkpointed("damaged", 2);
    let w = newest(&d).join("worker-1.bin");
    let mut b = std::fs::read(&w).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x40;
    std::fs::write(&w, b).unwrap();
    let out = f.run(2, &a, Mode::Resume(&d)).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("skipping a damaged checkpoint"), "{err}");
    assert!(err.contains("CRC-32 mismatch"), "{err}");
    assert!(std::fs::read(&a).unwrap() == f.alerts[2]);
}

#[test]
fn resuming_with_another_feed_or_worker_count_is_refused() {
    let f = fixture();
    let (d, a) = checkpointed("other", 2);
    let out = f.run(1, &a, Mode::Resume(&d)).output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("workers was 2, now 1"),
        "{}",
        stderr(&out)
    );
    // The same feed with one byte changed near its end.
    let other = f.root.join("other.itch");
    let mut b = std::fs::read(&f.feed).unwrap();
    let n = b.len();
    b[n - 3] ^= 1;
    std::fs::write(&other, b).unwrap();
    std::fs::copy(
        f.feed.with_extension("itch.flow.csv"),
        other.with_extension("itch.flow.csv"),
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("run")
        .arg(&other)
        .args(["--workers", "2", "--max-orders", "16384", "--rules"])
        .arg(&f.rules)
        .arg("--alerts")
        .arg(&a)
        .arg("--resume")
        .arg(&d)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("does not match this run: feed was"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn resume_takes_the_flags_it_is_not_given_from_the_checkpoint() {
    let f = fixture();
    let (d, a) = checkpointed("bare", 2);
    // Only the feed and the directory, from another working directory: the workers, alerts,
    // rules and flow come from the checkpoint.
    let bare = || {
        let mut c = Command::new(BIN);
        c.arg("run").arg(&f.feed).arg("--resume").arg(&d);
        c.current_dir("/").stdout(Stdio::null());
        c
    };
    let out = bare().output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("resuming with --workers 2, --alerts"), "{err}");
    assert!(err.contains("--rules") && err.contains("--flow"), "{err}");
    assert!(std::fs::read(&a).unwrap() == f.alerts[2]);
    // A flag given is still checked, and a difference refused by name.
    for (flag, key) in [
        (vec!["--workers", "1"], "workers was 2, now 1"),
        (vec!["--lenient"], "lenient was false, now true"),
        (vec!["--no-flow"], "flow was"),
        (vec!["--until", "09:31:00"], "until was None"),
    ] {
        let out = bare().args(&flag).output().unwrap();
        assert!(!out.status.success(), "{flag:?} accepted");
        assert!(stderr(&out).contains(key), "{flag:?}: {}", stderr(&out));
    }
}

/// A run's `--json` report without what measures time or waits (these differ between any two
/// runs): elapsed time and rate, latency, threads, ring-full waits, idle progress records, mark
/// waits, and the checkpoints this process wrote.
fn counts(report: &[u8]) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_slice(report).unwrap();
    let o = v.as_object_mut().unwrap();
    for k in [
        "elapsed_ns",
        "messages_per_s",
        "latency",
        "threads",
        "checkpoints",
    ] {
        assert!(o.remove(k).is_some(), "the report has {k}");
    }
    for r in o["rings"].as_array_mut().unwrap() {
        r.as_object_mut().unwrap().remove("full");
    }
    let s = o["surv"].as_object_mut().unwrap();
    for k in ["progress", "mark_waits", "latency"] {
        assert!(s.remove(k).is_some(), "the surveillance report has {k}");
    }
    v
}

#[test]
fn a_killed_and_resumed_runs_report_counts_the_whole_run() {
    let f = fixture();
    let json = |c: &mut Command| {
        let out = c.arg("--json").stdout(Stdio::piped()).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        counts(&out.stdout)
    };
    let unbroken = json(&mut f.run(2, &f.root.join("counts-0.jsonl"), {
        Mode::Fresh(&f.root.join("counts-0"))
    }));
    let d = f.root.join("counts");
    let a = f.root.join("counts.jsonl");
    // Killed once its second checkpoint is complete (the first may be gone by then).
    let mut child = f.run(2, &a, Mode::Fresh(&d)).spawn().unwrap();
    let t0 = Instant::now();
    while !d.join("ckpt-2").exists() && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    let resumed = json(&mut f.run(2, &a, Mode::Resume(&d)));
    assert!(std::fs::read(&a).unwrap() == f.alerts[2]);
    assert_eq!(
        resumed, unbroken,
        "the resumed run's report counts what the unbroken one does"
    );
}
