//! A rules file watched while a run goes on: when its modification time changes it is loaded
//! and checked, and the new rules are handed back for the caller to publish to the running
//! detectors (their state is kept). A file that does not load, or that changes the `[limits]`
//! (the detectors' tables are sized at start), is reported and the old rules stay in force.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{Capacity, Rules, RulesError};

/// What a change of the watched file gave.
#[derive(Debug)]
pub enum Reload {
    /// New rules, checked, with the running `[limits]`.
    Loaded(Box<Rules>),
    /// The file's `[limits]` differ from the running ones: not reloaded.
    LimitsChanged,
    /// The file does not load; the previous rules stay.
    Failed(RulesError),
}

/// A rules file and the modification time last seen.
#[derive(Debug)]
pub struct RulesWatch {
    path: PathBuf,
    limits: Capacity,
    stamp: Option<SystemTime>,
}

impl RulesWatch {
    /// Watches `path`, whose rules `running` are in force now.
    pub fn new(path: &Path, running: &Rules) -> RulesWatch {
        RulesWatch {
            path: path.to_path_buf(),
            limits: running.limits,
            stamp: modified(path),
        }
    }

    /// The watched file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `None` while the file's modification time is unchanged; else what loading it gave.
    pub fn poll(&mut self) -> Option<Reload> {
        let now = modified(&self.path);
        if now == self.stamp {
            return None;
        }
        self.stamp = now;
        Some(match Rules::load(&self.path) {
            Ok(r) if r.limits == self.limits => Reload::Loaded(Box::new(r)),
            Ok(_) => Reload::LimitsChanged,
            Err(e) => Reload::Failed(e),
        })
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Writes `text` to `path` and moves its modification time `secs` on from the epoch, so a
    /// change is seen whatever the file system's time resolution.
    fn write(path: &Path, text: &str, secs: u64) {
        std::fs::write(path, text).unwrap();
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
            .unwrap();
    }

    #[test]
    fn reloads_on_change_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.toml");
        write(&path, "[spoofing]\nenabled = true\n", 1_000);
        let mut w = RulesWatch::new(&path, &Rules::default());
        assert!(w.poll().is_none(), "unchanged");
        write(&path, "[spoofing]\nenabled = false\n", 2_000);
        match w.poll() {
            Some(Reload::Loaded(r)) => assert!(!r.spoofing.enabled),
            other => panic!("{other:?}"),
        }
        assert!(w.poll().is_none(), "seen once");
        write(&path, "[spoofing]\nno_such_key = 1\n", 3_000);
        assert!(matches!(w.poll(), Some(Reload::Failed(_))));
        let limits = format!(
            "[limits]\norders = {}\n",
            Rules::default().limits.orders + 1
        );
        write(&path, &limits, 4_000);
        assert!(matches!(w.poll(), Some(Reload::LimitsChanged)));
        assert_eq!(w.path(), path);
    }
}
