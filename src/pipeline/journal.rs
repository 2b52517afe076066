//! An append-only output file written through a shared memory map: appending a line is a
//! `memcpy` into the file's page cache — no system call — so the output stage can write an
//! alert the moment it is formatted without paying for `write(2)`.
//!
//! Measured on this machine (PERF.md, surveillance): from the pinned, busy-polling output thread
//! a `write(2)` of one alert line took a median of 24 µs to an ext4 file and 7.6 µs even to
//! `/dev/null` — more than the rest of the alert's way from the feed. The journal takes that
//! out of the steady state:
//!
//! * The file grows chunk by chunk (`posix_fallocate` + `mmap`: the blocks are reserved first, so
//!   a full disk is an error, not a SIGBUS on a later store): a first chunk of
//!   [`Journal::FIRST_CHUNK`] (64 KiB, ≈ 100 alerts — a run that writes few alerts fits on a small
//!   file system), each next one twice the last, up to [`Journal::CHUNK`]. Each chunk's pages are
//!   written once when it is mapped, so later appends take no page fault; the next chunk is
//!   prepared when the write position passes the middle of the current one. Those system calls
//!   happen 9 times in the first 16 MiB, then once per 16 MiB (≈ 27,000 alerts).
//! * While a run goes on, the file is longer than what was written, and the tail is NUL bytes:
//!   a reader following it live stops at the first NUL. [`Journal::finish`] (or drop) cuts the
//!   file to the bytes written.
//! * Nothing is synced to disk: as with `write(2)`, the lines are in the page cache, visible to
//!   every reader of the file, and the kernel writes them back.

use crate::feed::sigbus;
use memmap2::{MmapMut, MmapOptions};
use std::fs::File;
use std::io::{self, Write};
use std::ops::{Deref, DerefMut};
use std::path::Path;

/// One mapped chunk of the file, registered with [`sigbus`] while mapped (a truncation of the
/// file under the run is then an error naming it, not a crash).
#[derive(Debug)]
struct Chunk {
    /// Declared first, so unregistered before the map is unmapped.
    _guard: sigbus::Guard,
    map: MmapMut,
}

impl Deref for Chunk {
    type Target = MmapMut;
    fn deref(&self) -> &MmapMut {
        &self.map
    }
}

impl DerefMut for Chunk {
    fn deref_mut(&mut self) -> &mut MmapMut {
        &mut self.map
    }
}

/// A memory-mapped append-only file.
#[derive(Debug)]
pub struct Journal {
    file: File,
    /// The file's name, for [`sigbus`] (made once: growing allocates nothing).
    name: &'static [u8],
    /// The chunk being written and its file offset.
    cur: Chunk,
    base: u64,
    /// Bytes written in `cur`.
    at: usize,
    /// The chunk after `cur`, once prepared.
    next: Option<Chunk>,
    finished: bool,
}

impl Journal {
    /// The largest step by which the file grows (a power of two, a multiple of the page size).
    pub const CHUNK: usize = 16 << 20;
    /// The first chunk (a power of two, a multiple of the page size).
    pub const FIRST_CHUNK: usize = 64 << 10;

    /// The size of the chunk after one of `len` bytes: twice as large, up to [`Journal::CHUNK`].
    pub fn chunk_after(len: usize) -> usize {
        (len * 2).min(Self::CHUNK)
    }

    /// Creates (or truncates) `path` and maps its first chunk.
    pub fn create(path: &Path) -> io::Result<Journal> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        let name = sigbus::name(path);
        let cur = Self::map(&file, name, 0, Self::FIRST_CHUNK)?;
        Ok(Journal {
            file,
            name,
            cur,
            base: 0,
            at: 0,
            next: None,
            finished: false,
        })
    }

    /// Bytes appended so far.
    pub fn len(&self) -> u64 {
        self.base + self.at as u64
    }

    /// Whether nothing was appended.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Grows the file to hold the chunk at `offset` — its disk blocks reserved, so that a full
    /// disk is an error here and never a fault (SIGBUS) on a later store — maps it and faults
    /// its pages in.
    fn map(file: &File, name: &'static [u8], offset: u64, len: usize) -> io::Result<Chunk> {
        Self::reserve(file, offset, len as u64)?;
        // SAFETY: the file was opened (and truncated) by this journal, which alone writes it
        // while the run goes on; the mapping covers bytes inside the length just set. Another
        // process truncating the file under us faults (SIGBUS) — the same contract every
        // memory-mapped writer has; `sigbus` turns that into an error naming the file.
        let mut map = unsafe { MmapOptions::new().offset(offset).len(len).map_mut(file)? };
        // Write every page once now (zero over zero), so that appends take no page fault.
        for p in (0..len).step_by(4096) {
            map[p] = 0;
        }
        Ok(Chunk {
            _guard: sigbus::register(map.as_ptr(), len, offset, name),
            map,
        })
    }

    /// Allocates the file's blocks for `[offset, offset + len)`, growing it as needed.
    #[cfg(unix)]
    fn reserve(file: &File, offset: u64, len: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let (Ok(off), Ok(n)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
            return Err(io::Error::other("journal offset out of range"));
        };
        // SAFETY: a plain system call on a descriptor this journal owns (open for writing);
        // it reads and writes no memory of ours. glibc emulates it where the file system has
        // no fallocate.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), off, n) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(())
    }

    /// Grows the file to `offset + len` (no block reservation on this platform).
    #[cfg(not(unix))]
    fn reserve(file: &File, offset: u64, len: u64) -> io::Result<()> {
        file.set_len(offset + len)
    }

    /// Maps the chunk after the current one.
    fn map_next(&self) -> io::Result<Chunk> {
        let len = self.cur.len();
        let next = Self::chunk_after(len);
        Self::map(&self.file, self.name, self.base + len as u64, next)
    }

    /// Bytes ahead of the write position that [`Journal::warm`] touches.
    pub const WARM_BYTES: usize = 2048;

    /// Writes zeros over the next [`Journal::WARM_BYTES`] not yet written in this chunk (they
    /// are zero already), so that the next lines find their cache lines and TLB entry warm.
    pub fn warm(&mut self) {
        if self.finished {
            return;
        }
        let end = (self.at + Self::WARM_BYTES).min(self.cur.len());
        self.cur[self.at..end].fill(0);
        std::hint::black_box(&self.cur[self.at..end]);
    }

    /// Cuts the file to the bytes written. Called by drop as well (which can only report a
    /// failure on standard error).
    pub fn finish(&mut self) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        self.next = None;
        self.file.set_len(self.len())
    }
}

impl Write for Journal {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.finished {
            return Err(io::Error::other("journal already finished"));
        }
        let mut rest = buf;
        while !rest.is_empty() {
            if self.at == self.cur.len() {
                let next = match self.next.take() {
                    Some(m) => m,
                    None => self.map_next()?,
                };
                self.base += self.cur.len() as u64;
                self.cur = next;
                self.at = 0;
            }
            let n = rest.len().min(self.cur.len() - self.at);
            self.cur[self.at..self.at + n].copy_from_slice(&rest[..n]);
            self.at += n;
            rest = &rest[n..];
        }
        if self.next.is_none() && self.at >= self.cur.len() / 2 {
            self.next = Some(self.map_next()?);
        }
        Ok(buf.len())
    }

    /// Nothing to do: appended bytes are in the page cache already.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            eprintln!("error: cutting the journal to its length: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_across_chunks_and_cuts_to_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let mut j = Journal::create(&path).unwrap();
        let line = b"{\"x\":123456789}\n";
        let mut want = Vec::new();
        // Past two chunk boundaries, with lines straddling them.
        while want.len() < 2 * Journal::CHUNK + 1000 {
            j.write_all(line).unwrap();
            want.extend_from_slice(line);
        }
        assert_eq!(j.len(), want.len() as u64);
        // While open, the file is longer than what was written, and the rest is NUL.
        assert!(std::fs::metadata(&path).unwrap().len() > want.len() as u64);
        drop(j);
        assert_eq!(std::fs::read(&path).unwrap(), want);
    }

    // Regression: the first reservation was 16 MiB, so `run --alerts` failed on a 1 MiB file
    // system before its first alert.
    #[test]
    fn first_reservation_is_small_and_grows_by_doubling() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.jsonl");
        let size = || std::fs::metadata(&path).unwrap().len() as usize;
        let mut j = Journal::create(&path).unwrap();
        assert_eq!(size(), Journal::FIRST_CHUNK);
        // Past the middle of the first chunk: the second (twice as large) is reserved.
        j.write_all(&[b'x'; Journal::FIRST_CHUNK / 2]).unwrap();
        assert_eq!(size(), 3 * Journal::FIRST_CHUNK);
        let mut chunks = vec![Journal::FIRST_CHUNK];
        while *chunks.last().unwrap() < Journal::CHUNK {
            chunks.push(Journal::chunk_after(*chunks.last().unwrap()));
        }
        assert_eq!(chunks.len(), 9, "{chunks:?}");
        assert_eq!(Journal::chunk_after(Journal::CHUNK), Journal::CHUNK);
        assert!(chunks.iter().all(|c| c % 4096 == 0));
        drop(j);
        assert_eq!(size(), Journal::FIRST_CHUNK / 2);
    }

    #[test]
    fn empty_journal_leaves_an_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        let mut j = Journal::create(&path).unwrap();
        j.finish().unwrap();
        assert!(j.write_all(b"x").is_err());
        drop(j);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }
}
