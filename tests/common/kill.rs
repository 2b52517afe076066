//! What the resume tests share: runs killed at random moments with SIGKILL and resumed until
//! one completes, and the checkpoint directory's state.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use tickwatch::rng::SplitMix64;

/// How a run starts.
pub enum Mode<'a> {
    /// Afresh, checkpointing into the directory.
    Fresh(&'a Path),
    /// From the directory's newest checkpoint.
    Resume(&'a Path),
}

/// A run's standard error.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Whether a checkpoint is being written in `d` (a staging directory is there).
pub fn staging(d: &Path) -> bool {
    std::fs::read_dir(d).is_ok_and(|rd| {
        rd.flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
    })
}

/// The newest complete checkpoint in `d`.
pub fn newest(d: &Path) -> PathBuf {
    let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let n = e
                .file_name()
                .to_string_lossy()
                .strip_prefix("ckpt-")?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    v.sort();
    v.pop().expect("a checkpoint").1
}

/// Runs killed and resumed: `name` names their files, `window` (ms) bounds the moment of a
/// kill, `want` is the unbroken alerts.
pub struct Trials<'a> {
    /// Where their files go.
    pub root: PathBuf,
    /// Names their files.
    pub name: String,
    /// Bounds the moment of a kill, ms.
    pub window: u64,
    /// The unbroken alerts.
    pub want: &'a [u8],
}

impl Trials<'_> {
    /// `kills` trials of the runs `run` makes (alerts file, mode); the kills that found a
    /// checkpoint being written.
    pub fn run(&self, kills: usize, seed: u64, run: impl Fn(&Path, Mode<'_>) -> Command) -> usize {
        let mut rng = SplitMix64::new(seed);
        let mut inside = 0;
        let mut done = 0;
        let window = self.window;
        for trial in 0..kills {
            let d = self.root.join(format!("{}-{trial}", self.name));
            let alerts = self.root.join(format!("{}-{trial}.jsonl", self.name));
            inside += self.trial(trial, &d, &alerts, (&mut rng, window), &run, &mut done);
        }
        assert!(done >= kills);
        inside
    }

    /// One trial: killed, then resumed (and sometimes killed again) until a run completes.
    fn trial(
        &self,
        trial: usize,
        d: &Path,
        alerts: &Path,
        (rng, window): (&mut SplitMix64, u64),
        run: &impl Fn(&Path, Mode<'_>) -> Command,
        done: &mut usize,
    ) -> usize {
        let mut inside = 0;
        // Every other trial pauses inside each checkpoint write, so kills land there.
        let pause = if trial % 2 == 0 { "100" } else { "0" };
        let mut child = run(alerts, Mode::Fresh(d))
            .env("TICKWATCH_CKPT_PAUSE_MS", pause)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.below(window)));
        let _ = child.kill(); // SIGKILL; it may have finished already.
        let _ = child.wait();
        *done += 1;
        inside += staging(d) as usize;
        // Resume until a run completes; the first resume is killed again now and then.
        let mut again = rng.below(3) == 0;
        loop {
            let mode = if has_ckpt(d) {
                Mode::Resume(d)
            } else {
                // Killed before the first checkpoint: nothing to resume, start again.
                Mode::Fresh(d)
            };
            let mut c = run(alerts, mode);
            if again {
                again = false;
                let mut child = c.env("TICKWATCH_CKPT_PAUSE_MS", "100").spawn().unwrap();
                std::thread::sleep(Duration::from_millis(rng.below(window)));
                let _ = child.kill();
                let _ = child.wait();
                *done += 1;
                inside += staging(d) as usize;
                continue;
            }
            let out = c.output().unwrap();
            assert!(out.status.success(), "trial {trial}: {}", stderr(&out));
            break;
        }
        let got = std::fs::read(alerts).unwrap();
        assert!(
            got == self.want,
            "{} trial {trial}: the resumed alerts differ from the unbroken run's",
            self.name
        );
        inside
    }
}

/// Whether `d` holds a complete checkpoint.
fn has_ckpt(d: &Path) -> bool {
    std::fs::read_dir(d).is_ok_and(|rd| {
        rd.flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("ckpt-"))
    })
}

/// A generated feed with every scenario (its flow beside it), and small detector tables (a
/// debug build saves them fast).
pub fn feed(root: &Path) -> (PathBuf, PathBuf) {
    let feed = root.join("f.itch");
    let out = Command::new(env!("CARGO_BIN_EXE_tickwatch"))
        .args(["gen", "--messages", "40000", "--symbols", "30"])
        .args(["--live-orders", "2000", "--seed", "15", "--session", "10m"])
        .args([
            "--scenarios",
            "spoofing,layering,stuffing,ignition,close,wash",
        ])
        .arg("--out")
        .arg(&feed)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let rules = root.join("small.toml");
    std::fs::write(
        &rules,
        "[limits]\norders = 4096\nparties = 512\npairs = 2048\nlocates = 64\n",
    )
    .unwrap();
    (feed, rules)
}
