//! A file truncated while it is mapped: a clear error naming the file and the offset, not a
//! `SIGBUS` crash.
//!
//! Reading (or writing) a mapped page that a truncation removed raises `SIGBUS`. Checking the
//! file's size before every access would cost the hot loops a system call or a branch per
//! message; instead every mapping the crate makes is [`register`]ed here, and a `SIGBUS` handler
//! (installed with the first registration) looks the faulting address up: inside a registered
//! mapping it writes `tickwatch: error: FILE: truncated while mapped: no byte at offset N (the
//! file changed underneath; it must not be truncated while in use)` to standard error and ends
//! the process with exit status 1; anywhere else it puts back the handler it replaced (the
//! default action, or std's), so the fault is handled as before. Nothing is added to the paths that read the mappings.
//!
//! The handler only reads atomics and calls `write(2)` and `_exit(2)` (async-signal-safe).

use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::Once;

/// Mappings registered at once (feeds, capture images, alert journal chunks); more are not
/// guarded (they fault as before).
const SLOTS: usize = 64;

struct Slot {
    /// First address of the mapping (0: slot free).
    start: AtomicUsize,
    len: AtomicUsize,
    /// File offset of the mapping's first byte.
    offset: AtomicUsize,
    /// The file's name, leaked (a handful of bytes per mapping ever made).
    name: AtomicPtr<u8>,
    name_len: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    offset: AtomicUsize::new(0),
    name: AtomicPtr::new(std::ptr::null_mut()),
    name_len: AtomicUsize::new(0),
};

static SLOT: [Slot; SLOTS] = [FREE; SLOTS];
static INSTALL: Once = Once::new();
/// The action [`install`] replaced.
#[cfg(unix)]
static PREVIOUS: std::sync::OnceLock<libc::sigaction> = std::sync::OnceLock::new();

/// A registered mapping; dropping it unregisters it (drop it before unmapping).
#[derive(Debug)]
pub struct Guard(Option<usize>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(i) = self.0 {
            SLOT[i].start.store(0, Ordering::Release);
        }
    }
}

/// The name a fault on `path` reports, leaked (a few bytes per file mapped): made once per file,
/// at setup, so that registering a file's later mappings allocates nothing.
pub fn name(path: &std::path::Path) -> &'static [u8] {
    Box::leak(path.display().to_string().into_bytes().into_boxed_slice())
}

/// Registers `len` bytes mapped at `start` from byte `offset` of the file `name` (from
/// [`name`]), so that a fault on them reports the file and offset. Allocates nothing. Returns an
/// inert guard when every slot is taken.
pub fn register(start: *const u8, len: usize, offset: u64, name: &'static [u8]) -> Guard {
    if len == 0 {
        return Guard(None);
    }
    INSTALL.call_once(install);
    for (i, s) in SLOT.iter().enumerate() {
        // Claim a free slot with a placeholder address, then fill it in.
        if s.start
            .compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            s.len.store(len, Ordering::Relaxed);
            s.offset.store(offset as usize, Ordering::Relaxed);
            s.name_len.store(name.len(), Ordering::Relaxed);
            s.name.store(name.as_ptr().cast_mut(), Ordering::Relaxed);
            s.start.store(start as usize, Ordering::Release);
            return Guard(Some(i));
        }
    }
    Guard(None)
}

#[cfg(unix)]
fn install() {
    // SAFETY: `sigaction` with a zeroed struct, our handler and an empty mask; the handler is
    // async-signal-safe (module docs).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut sa.sa_mask);
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGBUS, &sa, &mut old) == 0 {
            let _ = PREVIOUS.set(old);
        }
    }
}

#[cfg(not(unix))]
fn install() {}

/// The registered mapping holding `addr`: (file offset of `addr`, file name).
fn lookup(addr: usize) -> Option<(usize, &'static [u8])> {
    SLOT.iter().find_map(|s| {
        let start = s.start.load(Ordering::Acquire);
        let len = s.len.load(Ordering::Relaxed);
        if start == 0 || start == usize::MAX || addr < start || addr - start >= len {
            return None;
        }
        let (p, n) = (
            s.name.load(Ordering::Relaxed),
            s.name_len.load(Ordering::Relaxed),
        );
        // SAFETY: `name` is a `&'static [u8]`, stored before `start` was published
        // (Release/Acquire).
        let name = unsafe { std::slice::from_raw_parts(p, n) };
        Some((s.offset.load(Ordering::Relaxed) + (addr - start), name))
    })
}

#[cfg(unix)]
extern "C" fn handler(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    let Some((offset, name)) = lookup(addr) else {
        // Not ours: the replaced action, taken when the faulting access runs again.
        // SAFETY: sigaction is async-signal-safe; PREVIOUS is set right after the install (a
        // fault before that finds it unset and takes the default action).
        unsafe {
            match PREVIOUS.get() {
                Some(old) => libc::sigaction(libc::SIGBUS, old, std::ptr::null_mut()),
                None => {
                    libc::signal(libc::SIGBUS, libc::SIG_DFL);
                    0
                }
            };
        }
        return;
    };
    let mut digits = [0u8; 20];
    let line: [&[u8]; 5] = [
        b"tickwatch: error: ",
        name,
        b": truncated while mapped: no byte at offset ",
        decimal(offset as u64, &mut digits),
        b" (the file changed underneath; it must not be truncated while in use)\n",
    ];
    for part in line {
        write_all(part);
    }
    // SAFETY: ends the process at once, without running anything that is not signal-safe.
    unsafe { libc::_exit(1) };
}

#[cfg(unix)]
fn write_all(mut b: &[u8]) {
    while !b.is_empty() {
        // SAFETY: write(2) from a valid slice; async-signal-safe.
        let n = unsafe { libc::write(2, b.as_ptr().cast(), b.len()) };
        if n <= 0 {
            return;
        }
        b = &b[n as usize..];
    }
}

/// `n` in decimal, in `buf`, without allocating.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_ranges_are_found_with_their_file_offset() {
        let bytes = vec![0u8; 4096];
        let g = register(
            bytes.as_ptr(),
            bytes.len(),
            1 << 20,
            name("f.itch".as_ref()),
        );
        let at = bytes.as_ptr() as usize + 100;
        assert_eq!(lookup(at), Some(((1 << 20) + 100, &b"f.itch"[..])));
        assert_eq!(lookup(bytes.as_ptr() as usize + 4096), None);
        drop(g);
        assert_eq!(lookup(at), None);
        let mut buf = [0u8; 20];
        assert_eq!(decimal(0, &mut buf), b"0");
        assert_eq!(decimal(u64::MAX, &mut buf), b"18446744073709551615");
    }
}
