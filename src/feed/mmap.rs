//! Read-only memory maps of feed files — the only place the crate maps memory.
//!
//! The decoder casts message structs straight over these bytes, so how the mapping is prepared
//! decides the cost of a cold walk: [`MapOptions::populate`] pre-faults every page
//! (`MAP_POPULATE`), [`MapOptions::sequential`] asks for aggressive read-ahead
//! (`MADV_SEQUENTIAL` + `MADV_WILLNEED`), and [`MapOptions::huge_pages`] asks for transparent huge
//! pages (`MADV_HUGEPAGE`; honoured by Linux only where file THP is enabled, a hint otherwise).

use memmap2::{Advice, Mmap, MmapOptions};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// How to prepare a mapping.
#[derive(Clone, Copy, Debug)]
pub struct MapOptions {
    /// Pre-fault all pages at map time (`MAP_POPULATE`).
    pub populate: bool,
    /// `MADV_SEQUENTIAL` and `MADV_WILLNEED`.
    pub sequential: bool,
    /// `MADV_HUGEPAGE` (best effort).
    pub huge_pages: bool,
}

impl Default for MapOptions {
    fn default() -> Self {
        MapOptions {
            populate: true,
            sequential: true,
            huge_pages: false,
        }
    }
}

/// A read-only file mapping; an empty file maps to an empty slice.
#[derive(Debug)]
pub struct MappedFile {
    /// Declared first, so dropped (unregistered) before the map is unmapped.
    _guard: super::sigbus::Guard,
    map: Option<Mmap>,
    path: PathBuf,
}

impl MappedFile {
    /// Maps `path` read-only.
    ///
    /// The file must not be modified or truncated while mapped: the bytes would change under the
    /// decoder, and reading a page past a truncation raises `SIGBUS` — which
    /// [`sigbus`](super::sigbus) turns into an error naming the file and offset (exit status 1).
    /// Feed captures are written once and then only read, which is what this type assumes.
    ///
    /// # Errors
    /// Any I/O error from opening or mapping the file.
    pub fn open(path: &Path, opts: MapOptions) -> io::Result<MappedFile> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        if len == 0 {
            return Ok(MappedFile {
                _guard: super::sigbus::register(std::ptr::null(), 0, 0, &[]),
                map: None,
                path: path.to_path_buf(),
            });
        }
        let mut mo = MmapOptions::new();
        if opts.populate {
            mo.populate();
        }
        // SAFETY: the mapping is read-only and the documented contract of `open` is that the file
        // is not modified while mapped (a truncation would raise SIGBUS, not undefined reads).
        let map = unsafe { mo.map(&file)? };
        if opts.sequential {
            // Advice is a hint: failure to apply it changes speed, never results.
            let _ = map.advise(Advice::Sequential);
            let _ = map.advise(Advice::WillNeed);
        }
        if opts.huge_pages {
            #[cfg(target_os = "linux")]
            let _ = map.advise(Advice::HugePage);
        }
        Ok(MappedFile {
            _guard: super::sigbus::register(map.as_ptr(), map.len(), 0, super::sigbus::name(path)),
            map: Some(map),
            path: path.to_path_buf(),
        })
    }

    /// The mapped bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// Locks the mapped pages in memory (`mlock`): the kernel may no longer drop them (page-cache
    /// reclaim, or a proactive reclaimer such as DAMON's `pageout` scheme, which this VM runs),
    /// so a slow paced replay never stalls on a major fault re-reading the file. Needs
    /// `CAP_IPC_LOCK` or a large enough `RLIMIT_MEMLOCK`.
    ///
    /// # Errors
    /// The `mlock` error (typically `ENOMEM`/`EPERM` past the limit).
    pub fn lock(&self) -> io::Result<()> {
        match &self.map {
            Some(m) => m.lock(),
            None => Ok(()),
        }
    }

    /// The path that was mapped.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Drops a file's pages from the page cache (`POSIX_FADV_DONTNEED`), so the next read comes from
/// disk: how `tickwatch bench --cold` measures a cold start. Dirty pages are synced first (they
/// cannot be dropped otherwise). A no-op on systems without `posix_fadvise`.
///
/// # Errors
/// Opening the file, or the advice being refused.
pub fn evict_page_cache(path: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let f = File::open(path)?;
        let _ = f.sync_all();
        // SAFETY: posix_fadvise only reads the descriptor, which `f` keeps open for the call.
        let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = path;
    Ok(())
}
