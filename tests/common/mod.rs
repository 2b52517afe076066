//! Shared by the test binaries that prove "no allocation": a counting global allocator (the
//! shape of rust-assert-no-alloc). A thread-local flag arms counting for the current thread only,
//! so the harness's other test threads cannot disturb a count. Each binary installs it with
//! `#[global_allocator] static GLOBAL: common::Counting = common::Counting;`.

#![allow(dead_code)] // each binary uses its own part of it

pub mod captures;
pub mod netns;
pub mod scenario;
pub mod shared;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

/// The counting allocator: forwards everything to `System`.
pub struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static EVENTS: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the allocator may be called while this thread's locals are being torn down.
    if ARMED.try_with(Cell::get).unwrap_or(false) {
        let _ = EVENTS.try_with(|e| e.set(e.get() + 1));
    }
}

// SAFETY: every call is forwarded unchanged to `System`; the counting touches only const-initialised
// thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note();
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Starts counting this thread's allocator calls from zero.
pub fn arm() {
    EVENTS.with(|e| e.set(0));
    ARMED.with(|a| a.set(true));
}

/// Stops counting; the calls made since [`arm`].
pub fn disarm() -> u64 {
    ARMED.with(|a| a.set(false));
    EVENTS.with(Cell::get)
}

/// Counts allocator calls on this thread while alive.
pub struct NoAlloc {
    start: u64,
}

impl NoAlloc {
    /// Arms counting (guards do not nest).
    pub fn new() -> NoAlloc {
        assert!(!ARMED.with(Cell::get), "guards do not nest");
        let start = EVENTS.with(Cell::get);
        ARMED.with(|a| a.set(true));
        NoAlloc { start }
    }

    /// Allocator calls since the guard was made.
    pub fn count(&self) -> u64 {
        EVENTS.with(Cell::get) - self.start
    }
}

impl Drop for NoAlloc {
    fn drop(&mut self) {
        ARMED.with(|a| a.set(false));
    }
}

/// Runs `f` under a guard and returns its result and the allocator calls it made on this thread.
pub fn allocations<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let g = NoAlloc::new();
    let r = black_box(f());
    let n = g.count();
    drop(g);
    (r, n)
}
