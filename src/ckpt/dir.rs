//! A checkpoint directory: `D/ckpt-<n>/{manifest.json, reader.bin, worker-<i>.bin, output.bin}`.
//! A checkpoint is written into `D/.tmp-<n>` (each file fsync'd), which is fsync'd and renamed
//! to `D/ckpt-<n>`, then `D` is fsync'd: a checkpoint directory is whole or absent. The newest
//! [`KEEP`] are kept.

use super::{CkptError, Manifest};
use std::path::{Path, PathBuf};

/// Checkpoints kept.
pub const KEEP: usize = 2;

/// A run's checkpoint directory.
#[derive(Clone, Debug)]
pub struct CkptDir {
    /// Its path.
    pub root: PathBuf,
}

/// A complete checkpoint found on disk.
#[derive(Clone, Debug)]
pub struct Found {
    /// Its number.
    pub n: u64,
    /// Its directory.
    pub path: PathBuf,
}

impl CkptDir {
    /// The directory `root` (created if missing).
    ///
    /// # Errors
    /// It cannot be created.
    pub fn create(root: &Path) -> Result<CkptDir, CkptError> {
        std::fs::create_dir_all(root).map_err(|e| CkptError::io(root, e))?;
        Ok(CkptDir {
            root: root.to_path_buf(),
        })
    }

    /// Removes every checkpoint (a fresh run's numbers start again at 1).
    ///
    /// # Errors
    /// A file system error.
    pub fn clear(&self) -> Result<(), CkptError> {
        for (_, p) in self.entries()? {
            std::fs::remove_dir_all(&p).map_err(|e| CkptError::io(&p, e))?;
        }
        Ok(())
    }

    /// Removes staging directories (checkpoints a killed run left half written).
    ///
    /// # Errors
    /// A file system error.
    pub fn clear_staging(&self) -> Result<(), CkptError> {
        for (_, p) in self.entries()? {
            if !path_is_ckpt(&p) {
                std::fs::remove_dir_all(&p).map_err(|e| CkptError::io(&p, e))?;
            }
        }
        Ok(())
    }

    /// Where checkpoint `n` is written before it is complete (created if missing).
    ///
    /// # Errors
    /// It cannot be created.
    pub fn staging(&self, n: u64) -> Result<PathBuf, CkptError> {
        let p = self.root.join(format!(".tmp-{n}"));
        std::fs::create_dir_all(&p).map_err(|e| CkptError::io(&p, e))?;
        Ok(p)
    }

    /// Makes checkpoint `n` complete: fsyncs its staging directory, renames it, fsyncs the
    /// root, and removes all but the newest [`KEEP`] (and staging left by older ones).
    ///
    /// # Errors
    /// A file system error.
    pub fn commit(&self, n: u64) -> Result<PathBuf, CkptError> {
        let tmp = self.root.join(format!(".tmp-{n}"));
        let done = self.root.join(format!("ckpt-{n}"));
        sync_dir(&tmp)?;
        if done.exists() {
            // Left by an earlier run that resumed from before it: replaced.
            std::fs::remove_dir_all(&done).map_err(|e| CkptError::io(&done, e))?;
        }
        std::fs::rename(&tmp, &done).map_err(|e| CkptError::io(&done, e))?;
        sync_dir(&self.root)?;
        self.prune(n)?;
        Ok(done)
    }

    fn prune(&self, newest: u64) -> Result<(), CkptError> {
        for (n, path) in self.entries()? {
            let stale_tmp = path
                .file_name()
                .is_some_and(|f| f.to_string_lossy().starts_with(".tmp-"))
                && n < newest;
            let old = n + KEEP as u64 <= newest && !stale_tmp && path_is_ckpt(&path);
            if stale_tmp || old {
                std::fs::remove_dir_all(&path).map_err(|e| CkptError::io(&path, e))?;
            }
        }
        Ok(())
    }

    /// Complete checkpoints, newest first.
    ///
    /// # Errors
    /// The directory cannot be read.
    pub fn complete(&self) -> Result<Vec<Found>, CkptError> {
        let mut v: Vec<Found> = self
            .entries()?
            .into_iter()
            .filter(|(_, p)| path_is_ckpt(p))
            .map(|(n, path)| Found { n, path })
            .collect();
        v.sort_by_key(|f| std::cmp::Reverse(f.n));
        Ok(v)
    }

    /// The manifest of the newest complete checkpoint whose manifest reads (what a resume takes
    /// the flags it is not given from); `None` when there is none.
    ///
    /// # Errors
    /// The directory cannot be read; that manifest is of another format version.
    pub fn newest_manifest(&self) -> Result<Option<Manifest>, CkptError> {
        for f in self.complete()? {
            match Manifest::read(&f.path) {
                Ok(m) => return Ok(Some(m)),
                Err(e @ CkptError::Version { .. }) => return Err(e),
                // Damaged: the restore skips it too, and says so.
                Err(_) => {}
            }
        }
        Ok(None)
    }

    /// (number, path) of every `ckpt-<n>` and `.tmp-<n>` entry.
    fn entries(&self) -> Result<Vec<(u64, PathBuf)>, CkptError> {
        let rd = std::fs::read_dir(&self.root).map_err(|e| CkptError::io(&self.root, e))?;
        let mut v = Vec::new();
        for e in rd {
            let e = e.map_err(|e| CkptError::io(&self.root, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let num = name
                .strip_prefix("ckpt-")
                .or_else(|| name.strip_prefix(".tmp-"));
            if let Some(n) = num.and_then(|s| s.parse::<u64>().ok()) {
                v.push((n, e.path()));
            }
        }
        Ok(v)
    }
}

fn path_is_ckpt(p: &Path) -> bool {
    p.file_name()
        .is_some_and(|f| f.to_string_lossy().starts_with("ckpt-"))
}

/// fsyncs a directory (its entries: the files' names and the rename).
fn sync_dir(p: &Path) -> Result<(), CkptError> {
    std::fs::File::open(p)
        .and_then(|f| f.sync_all())
        .map_err(|e| CkptError::io(p, e))
}
