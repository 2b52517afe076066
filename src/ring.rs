//! A bounded, lock-free, single-producer single-consumer ring buffer: the link between pinned
//! pipeline stages.
//!
//! ```text
//!            Producer (one thread)                    Consumer (one thread)
//!   tail (local) ─┐  head_cache                head (local) ─┐  tail_cache
//!                 ▼                                           ▼
//!   slots: [ . . . x x x x x x . . . ]   capacity a power of two, index = seq & mask
//!                  ▲ head      ▲ tail    (both CachePadded atomics in `Shared`, never reset:
//!                                        they count every item ever pushed / popped)
//! ```
//!
//! * **Cache-padded indices.** `head` (written only by the consumer) and `tail` (written only by
//!   the producer) sit on their own cache lines, so the two cores do not false-share.
//! * **Cached peer index.** Each side keeps its last view of the other side's index and reloads it
//!   only when that view says the ring is full (producer) or empty (consumer); in a steady stream
//!   the shared lines move between cores once per batch, not once per item.
//! * **Batched publish.** [`Producer::stage`] writes an item without making it visible and
//!   [`Producer::publish`] releases everything staged with one store; [`Consumer::take`] reads
//!   without handing the slot back and [`Consumer::release`] frees everything taken with one
//!   store. [`Producer::push`] / [`Consumer::pop`] are the one-item forms.
//! * **In place.** [`Producer::stage_with`] builds a `Pod` item directly in its slot and
//!   [`Consumer::read_slices`] lends a run of items as slices, so a stage that owns the item's
//!   layout copies nothing in or out.
//! * **Full hands the value back.** `push`/`stage` return `Err(value)` on a full ring; the caller
//!   applies its policy (spin, yield, or count a drop).
//! * **Abandonment.** Dropping one side publishes / releases what it staged or took, then sets a
//!   flag the other side reads with [`Producer::is_abandoned`] / [`Consumer::is_abandoned`].
//!
//! Ordering: the producer's `Release` store of `tail` pairs with the consumer's `Acquire` load of
//! `tail` (the slot writes before it are visible to the consumer's reads after); the consumer's
//! `Release` store of `head` pairs with the producer's `Acquire` load of `head` (the consumer's
//! reads of a slot finish before the producer overwrites it). The tests in `tests/ring.rs` hammer
//! it from two threads; `tests/ring_loom.rs` explores every interleaving of small cases under
//! [loom](https://docs.rs/loom) (`RUSTFLAGS="--cfg loom"`).

use crossbeam_utils::CachePadded;
use std::mem::MaybeUninit;

use sync::{Arc, AtomicBool, AtomicUsize, Ordering, UnsafeCell};

/// Atomics and cells: `std`'s, or loom's model-checked ones under `--cfg loom`.
mod sync {
    #[cfg(loom)]
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    #[cfg(loom)]
    pub(crate) use loom::sync::Arc;
    #[cfg(not(loom))]
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    #[cfg(not(loom))]
    pub(crate) use std::sync::Arc;

    /// `UnsafeCell` with loom's closure-based access, so loom can check every slot access for
    /// data races; a zero-cost wrapper over `std`'s otherwise.
    #[derive(Debug)]
    #[cfg_attr(not(loom), repr(transparent))]
    pub(crate) struct UnsafeCell<T>(
        #[cfg(loom)] loom::cell::UnsafeCell<T>,
        #[cfg(not(loom))] std::cell::UnsafeCell<T>,
    );

    impl<T> UnsafeCell<T> {
        pub(crate) fn new(v: T) -> Self {
            #[cfg(loom)]
            return UnsafeCell(loom::cell::UnsafeCell::new(v));
            #[cfg(not(loom))]
            UnsafeCell(std::cell::UnsafeCell::new(v))
        }

        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            #[cfg(loom)]
            return self.0.with_mut(f);
            #[cfg(not(loom))]
            f(self.0.get())
        }
    }
}

/// What both ends share.
struct Shared<T> {
    /// Sequence number of the next item to pop; written by the consumer only.
    head: CachePadded<AtomicUsize>,
    /// Sequence number of the next item to push; written by the producer only.
    tail: CachePadded<AtomicUsize>,
    /// Set (Release) by the producer's drop after its final publish.
    producer_gone: AtomicBool,
    /// Set (Release) by the consumer's drop after its final release.
    consumer_gone: AtomicBool,
    mask: usize,
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
}

// SAFETY: the ring moves `T`s from the producer's thread to the consumer's, so `T: Send` is
// required and sufficient: a slot is only ever accessed by the one side that currently owns it
// (the producer for sequence numbers in [tail, head + capacity), the consumer for [head, tail)),
// and ownership changes hands only through the Release/Acquire pairs on `head` and `tail`.
unsafe impl<T: Send> Send for Shared<T> {}
// SAFETY: as above; `&Shared` is only used through one `Producer` and one `Consumer`.
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> Shared<T> {
    #[inline(always)]
    fn slot(&self, seq: usize) -> &UnsafeCell<MaybeUninit<T>> {
        &self.slots[seq & self.mask]
    }
}

/// Each end's own copy of the slot array's address and mask, so that reaching a slot on the hot
/// path is one AND and one add: no load through the `Arc`, no bounds check (a safe index of
/// `seq & mask` keeps its check — measured in `benches/ring.rs`).
struct Slots<T> {
    base: std::ptr::NonNull<UnsafeCell<MaybeUninit<T>>>,
    mask: usize,
}

impl<T> Slots<T> {
    fn of(shared: &Shared<T>) -> Slots<T> {
        Slots {
            base: std::ptr::NonNull::from(&shared.slots[0]),
            mask: shared.mask,
        }
    }

    #[inline(always)]
    fn at(&self, seq: usize) -> &UnsafeCell<MaybeUninit<T>> {
        // SAFETY: `base` points to the first of `mask + 1` slots owned by the `Shared` that the
        // same end keeps alive through its `Arc` (a boxed slice never moves), and
        // `seq & mask ≤ mask` is in bounds.
        unsafe { &*self.base.as_ptr().add(seq & self.mask) }
    }
}

// SAFETY: `Slots` is an address into a `Shared<T>`, which is `Send` for `T: Send`; which end may
// touch which slot is the ring protocol's business (see `Shared`), not the pointer's. Not `Sync`:
// so neither end is, and no two threads can use one end through a shared reference.
unsafe impl<T: Send> Send for Slots<T> {}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        // Both ends are gone (this runs when the last Arc drops); each published or released what
        // it staged or took, so exactly [head, tail) holds initialized items.
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire);
        for seq in head..tail {
            // SAFETY: items in [head, tail) were written and published and never taken.
            self.slot(seq)
                .with_mut(|p| unsafe { (*p).assume_init_drop() });
        }
    }
}

/// Creates a ring of `capacity` items (rounded up to a power of two, at least 2) and returns its
/// two ends.
///
/// # Panics
/// If the rounded capacity overflows `usize` (a construction-time error, never on the hot path).
///
/// # Examples
/// ```
/// let (mut tx, mut rx) = tickwatch::ring::ring::<u64>(4);
/// assert_eq!(tx.push(1), Ok(()));
/// for v in 2..=4 {
///     tx.stage(v).unwrap();
/// }
/// assert_eq!(tx.stage(5), Err(5)); // full: the value comes back
/// tx.publish();
/// assert_eq!(rx.pop(), Some(1));
/// let mut out = [0u64; 8];
/// assert_eq!(rx.pop_slice(&mut out), 3);
/// assert_eq!(&out[..3], &[2, 3, 4]);
/// ```
pub fn ring<T: Send>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let cap = capacity
        .max(2)
        .checked_next_power_of_two()
        .expect("ring capacity overflows usize");
    let slots = (0..cap)
        // Zeroed, not uninit: writing every slot now backs its pages, so the hot path takes no
        // page fault on first use.
        .map(|_| UnsafeCell::new(MaybeUninit::zeroed()))
        .collect::<Vec<_>>()
        .into_boxed_slice();
    let shared = Arc::new(Shared {
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
        producer_gone: AtomicBool::new(false),
        consumer_gone: AtomicBool::new(false),
        mask: cap - 1,
        slots,
    });
    (
        Producer {
            slots: Slots::of(&shared),
            shared: shared.clone(),
            tail: 0,
            published: 0,
            head_cache: 0,
        },
        Consumer {
            slots: Slots::of(&shared),
            #[cfg(loom)]
            scratch: Vec::new(),
            shared,
            head: 0,
            released: 0,
            tail_cache: 0,
        },
    )
}

/// The writing end of a [`ring`]. Not `Clone`: exactly one producer.
pub struct Producer<T> {
    shared: Arc<Shared<T>>,
    slots: Slots<T>,
    /// Next sequence number to write (staged items are in [published, tail)).
    tail: usize,
    /// What the consumer can see: the last value stored to `shared.tail`.
    published: usize,
    /// Last loaded value of `shared.head` (≤ the real one).
    head_cache: usize,
}

impl<T> std::fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.capacity())
            .field("tail", &self.tail)
            .field("published", &self.published)
            .finish()
    }
}

impl<T> Producer<T> {
    /// Slots in the ring.
    pub fn capacity(&self) -> usize {
        self.slots.mask + 1
    }

    /// Writes `value` into the next free slot **without** making it visible to the consumer;
    /// [`Producer::publish`] releases every staged item at once. `Err(value)` when the ring is
    /// full (staged items count as occupying their slots).
    #[inline]
    pub fn stage(&mut self, value: T) -> Result<(), T> {
        if self.tail.wrapping_sub(self.head_cache) == self.capacity() {
            // Acquire pairs with the consumer's Release store of `head` in `release`: its reads
            // of the slots it freed happened before we overwrite them.
            self.head_cache = self.shared.head.load(Ordering::Acquire);
            if self.tail.wrapping_sub(self.head_cache) == self.capacity() {
                return Err(value);
            }
        }
        self.slots.at(self.tail).with_mut(|p| {
            // SAFETY: the slot at `tail` is free (tail - head < cap: the consumer has released
            // it, or it was never written), and only the producer writes free slots.
            unsafe { p.write(MaybeUninit::new(value)) };
        });
        self.tail = self.tail.wrapping_add(1);
        Ok(())
    }

    /// Makes every staged item visible to the consumer with one store. Cheap when nothing is
    /// staged.
    #[inline]
    pub fn publish(&mut self) {
        if self.published != self.tail {
            // Release pairs with the consumer's Acquire load of `tail` in `refill`: the slot
            // writes in `stage` happen before the consumer reads them.
            self.shared.tail.store(self.tail, Ordering::Release);
            self.published = self.tail;
        }
    }

    /// [`Producer::stage`] then [`Producer::publish`]: one item, visible at once.
    #[inline]
    pub fn push(&mut self, value: T) -> Result<(), T> {
        self.stage(value)?;
        self.publish();
        Ok(())
    }

    /// Items staged but not yet published.
    pub fn staged(&self) -> usize {
        self.tail.wrapping_sub(self.published)
    }

    /// Free slots as last seen (reloads the consumer's index): a lower bound, since the consumer
    /// may free more at any moment.
    pub fn free_slots(&mut self) -> usize {
        // Acquire: as in `stage`.
        self.head_cache = self.shared.head.load(Ordering::Acquire);
        self.capacity() - self.tail.wrapping_sub(self.head_cache)
    }

    /// Free slots by the cached view of the consumer's index, without touching shared memory:
    /// a lower bound; [`Producer::free_slots`] reloads.
    #[inline(always)]
    pub fn free_cached(&self) -> usize {
        self.capacity() - self.tail.wrapping_sub(self.head_cache)
    }

    /// Publishes what is staged and tells the consumer there will be nothing more, as dropping
    /// the producer does, but keeps the ring alive (so a pipeline can end its streams without
    /// freeing memory on its threads). Pushing after this is a logic error: the consumer may
    /// already have stopped reading.
    pub fn close(&mut self) {
        // Staged items are delivered, not lost: publish them, then say we are done. The flag's
        // Release orders it after that final `tail` store.
        self.publish();
        self.shared.producer_gone.store(true, Ordering::Release);
    }

    /// The consumer has been dropped: nothing pushed from now on will be read.
    pub fn is_abandoned(&self) -> bool {
        // Acquire pairs with the Release store in `Consumer::drop`.
        self.shared.consumer_gone.load(Ordering::Acquire)
    }
}

impl<T: bytemuck::Pod> Producer<T> {
    /// Stages an item built in place in the next free slot: `fill` gets the slot as it is (the
    /// bytes of whatever it last held, or zeros) and must set every field it cares about. No
    /// item is built elsewhere and copied in. `false` when the ring is full (`fill` not called).
    /// For [`bytemuck::Pod`] items only, for which every byte pattern is a valid value.
    #[cfg(not(loom))]
    #[inline]
    pub fn stage_with(&mut self, fill: impl FnOnce(&mut T)) -> bool {
        if self.tail.wrapping_sub(self.head_cache) == self.capacity() {
            // Acquire: as in `stage`.
            self.head_cache = self.shared.head.load(Ordering::Acquire);
            if self.tail.wrapping_sub(self.head_cache) == self.capacity() {
                return false;
            }
        }
        let p = self.slots.at(self.tail).with_mut(|p| p as *mut T);
        // SAFETY: the slot at `tail` is free (as in `stage`), so only the producer touches it
        // until `publish`; its bytes are initialized (zeroed at construction, and every write
        // since stored a whole `T`), and `T: Pod` makes any such bytes a valid `T`;
        // `UnsafeCell<MaybeUninit<T>>` has `T`'s layout (`repr(transparent)` wrappers).
        fill(unsafe { &mut *p });
        self.tail = self.tail.wrapping_add(1);
        true
    }

    /// The model-checking build cannot lend a loom cell as `&mut T`: it builds the item from
    /// zeros and stages it (same protocol), so that the pipeline compiles under `--cfg loom`.
    #[cfg(loom)]
    pub fn stage_with(&mut self, fill: impl FnOnce(&mut T)) -> bool {
        let mut v = T::zeroed();
        if self.free_cached() == 0 && self.free_slots() == 0 {
            return false;
        }
        fill(&mut v);
        self.stage(v).is_ok()
    }
}

impl<T: Copy> Producer<T> {
    /// Stages as many of `items` as fit and publishes them with one store; returns how many.
    #[inline]
    pub fn push_slice(&mut self, items: &[T]) -> usize {
        let mut n = 0;
        for &v in items {
            if self.stage(v).is_err() {
                break;
            }
            n += 1;
        }
        self.publish();
        n
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        self.close();
    }
}

/// The reading end of a [`ring`]. Not `Clone`: exactly one consumer.
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
    slots: Slots<T>,
    /// The model-checking build's copy of a `read_slices` run (see there).
    #[cfg(loom)]
    scratch: Vec<T>,
    /// Next sequence number to read (taken items are in [released, head)).
    head: usize,
    /// What the producer can see: the last value stored to `shared.head`.
    released: usize,
    /// Last loaded value of `shared.tail` (≤ the real one).
    tail_cache: usize,
}

impl<T> std::fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.capacity())
            .field("head", &self.head)
            .field("released", &self.released)
            .finish()
    }
}

impl<T> Consumer<T> {
    /// Slots in the ring.
    pub fn capacity(&self) -> usize {
        self.slots.mask + 1
    }

    /// Reloads the producer's index; returns how many items are ready.
    #[inline]
    fn refill(&mut self) -> usize {
        // Acquire pairs with the producer's Release store of `tail` in `publish`: its slot writes
        // are visible to our reads.
        self.tail_cache = self.shared.tail.load(Ordering::Acquire);
        self.tail_cache.wrapping_sub(self.head)
    }

    /// Items ready to read (reloads the producer's index when the cached view is empty).
    #[inline]
    pub fn available(&mut self) -> usize {
        match self.tail_cache.wrapping_sub(self.head) {
            0 => self.refill(),
            n => n,
        }
    }

    /// Moves the next item out **without** handing its slot back to the producer;
    /// [`Consumer::release`] frees every taken slot with one store. `None` when empty.
    #[inline]
    pub fn take(&mut self) -> Option<T> {
        if self.tail_cache == self.head && self.refill() == 0 {
            return None;
        }
        let v = self.slots.at(self.head).with_mut(|p| {
            // SAFETY: head < tail_cache ≤ the published tail, so the slot holds an item the
            // producer wrote and published (Acquire above), which nobody has moved out: only the
            // consumer reads, and it advances `head` past what it reads.
            unsafe { (*p).assume_init_read() }
        });
        self.head = self.head.wrapping_add(1);
        Some(v)
    }

    /// Hands every taken slot back to the producer with one store.
    #[inline]
    pub fn release(&mut self) {
        if self.released != self.head {
            // Release pairs with the producer's Acquire load of `head` in `stage`: our reads of
            // the slots happen before it overwrites them.
            self.shared.head.store(self.head, Ordering::Release);
            self.released = self.head;
        }
    }

    /// [`Consumer::take`] then [`Consumer::release`]: one item, its slot freed at once.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        let v = self.take()?;
        self.release();
        Some(v)
    }

    /// A reference to the next item without taking it.
    #[inline]
    pub fn peek(&mut self) -> Option<&T> {
        if self.tail_cache == self.head && self.refill() == 0 {
            return None;
        }
        let p = self.slots.at(self.head).with_mut(|p| p as *const T);
        // SAFETY: as in `take`, the slot holds a published item; the producer cannot overwrite it
        // before we release it, which needs `&mut self`, so the borrow cannot outlive it.
        Some(unsafe { &*p })
    }

    /// A reference to the item `i` places after the next one (`peek_at(0)` is the next), if the
    /// consumer already knows it is published — no reload of the producer's index, unlike
    /// [`Consumer::peek`]. For look-ahead: prefetching what later items will touch. Takes `&mut`
    /// like `peek` (and neither end is `Sync`), so no two threads can hold references into the
    /// ring at once (`T` may have interior mutability).
    #[inline]
    pub fn peek_at(&mut self, i: usize) -> Option<&T> {
        // The cached view only: a look-ahead hint is not worth a load of the producer's line.
        if i >= self.tail_cache.wrapping_sub(self.head) {
            return None;
        }
        let p = self
            .slots
            .at(self.head.wrapping_add(i))
            .with_mut(|p| p as *const T);
        // SAFETY: head + i < tail_cache ≤ the published tail: a published item not yet taken;
        // as in `peek`, it stays put while the shared borrow of `self` lives.
        Some(unsafe { &*p })
    }

    /// The producer has been dropped or closed. Items it published before are still readable: drain until
    /// [`Consumer::take`] returns `None` *after* this returned `true`.
    pub fn is_abandoned(&self) -> bool {
        // Acquire pairs with the Release store in `Producer::close` (also run by its drop),
        // which follows its final publish: a `take` after this sees every item.
        self.shared.producer_gone.load(Ordering::Acquire)
    }
}

impl<T: Copy> Consumer<T> {
    /// Up to `max` published items, in order, as (at most) two slices — the second non-empty only
    /// when the run wraps past the end of the slot array — read in place, without taking them.
    /// Follow with [`Consumer::advance`] for as many as were used, then [`Consumer::release`].
    /// Reloads the producer's index only when the cached view is empty. For `T: Copy` only: the
    /// items are never moved out, so nothing must be dropped.
    #[cfg(not(loom))]
    #[inline]
    pub fn read_slices(&mut self, max: usize) -> (&[T], &[T]) {
        let n = self.available().min(max);
        let cap = self.capacity();
        let start = self.head & self.slots.mask;
        let first = n.min(cap - start);
        let base = self.slots.base.as_ptr() as *const T;
        // SAFETY: slots [head, head + n) hold items the producer published (n ≤ available), which
        // stay put until `release`, and `release` needs `&mut self`, so it cannot run while these
        // borrows live. `UnsafeCell<MaybeUninit<T>>` has the layout of `T` (both wrappers are
        // `repr(transparent)`; without loom, so is `sync::UnsafeCell` over std's), the run
        // [start, start + first) and [0, n - first) lie inside the `cap` slots, and `T: Copy` has
        // no drop glue, so reading in place and later overwriting is sound.
        unsafe {
            (
                std::slice::from_raw_parts(base.add(start), first),
                std::slice::from_raw_parts(base, n - first),
            )
        }
    }

    /// Under loom the slots are loom cells, which cannot be viewed as `&[T]`: the model build
    /// copies the run out instead (same values, same protocol), so that code using
    /// `read_slices` — the pipeline — still compiles for the model-checking build.
    #[cfg(loom)]
    pub fn read_slices(&mut self, max: usize) -> (&[T], &[T]) {
        let n = self.available().min(max);
        self.scratch.clear();
        for k in 0..n {
            let v = self.slots.at(self.head.wrapping_add(k)).with_mut(|p| {
                // SAFETY: as in `read_slices` above: a published item that stays put.
                unsafe { (*p).assume_init_read() }
            });
            self.scratch.push(v);
        }
        (&self.scratch, &[])
    }

    /// Marks the next `n` items (read in place through [`Consumer::read_slices`]) as taken;
    /// [`Consumer::release`] then frees their slots. `n` is clamped to what is known to be
    /// published.
    #[inline]
    pub fn advance(&mut self, n: usize) {
        let n = n.min(self.tail_cache.wrapping_sub(self.head));
        self.head = self.head.wrapping_add(n);
    }

    /// Moves up to `out.len()` items into `out` and frees their slots with one store; returns how
    /// many.
    #[inline]
    pub fn pop_slice(&mut self, out: &mut [T]) -> usize {
        let mut n = 0;
        while n < out.len() {
            match self.take() {
                Some(v) => out[n] = v,
                None => break,
            }
            n += 1;
        }
        self.release();
        n
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        // Taken items were moved out: release them so `Shared::drop` does not drop them again.
        self.release();
        self.shared.consumer_gone.store(true, Ordering::Release);
    }
}
