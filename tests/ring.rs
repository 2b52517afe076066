//! The SPSC ring (`tickwatch::ring`) delivers every item exactly once, in order, and owns what it
//! holds.
//!
//! What this file proves, against the public API only:
//! * **Edges.** Capacity rounds up to a power of two of at least 2 and exactly that many items fit;
//!   a push on a full ring hands back the very value it was given; a pop on an empty ring is
//!   `None`; the counters (`available`, `free_slots`, `staged`) are right at every step, including
//!   after the sequence numbers have lapped the slot mask many times (a single-threaded random
//!   walk checks every operation against a `VecDeque` model).
//! * **Batch boundaries.** Staged items are invisible until `publish`; taken items keep their slots
//!   until `release` (the producer sees a full ring meanwhile); `push_slice` / `pop_slice` fill
//!   partially at the full and empty edges and across the wrap point.
//! * **Two threads.** A producer mixing `push`, `stage`+`publish` and `push_slice` with random batch
//!   sizes and a consumer mixing `pop`, `take`+`release`, `pop_slice` and `peek` move millions of
//!   items (fewer in debug) through rings of several capacities, including 2; the consumer checks
//!   each item is the next expected one. The same runs with `String` payloads.
//! * **Ownership.** Items left in the ring are dropped exactly once when both ends are gone, in
//!   either order; taken items are never dropped by the ring; staged items are delivered when the
//!   producer drops.
//! * **Abandonment.** Each side sees the other's drop; a consumer still drains everything the
//!   producer published (or staged) before it left, also when the producer thread quits mid-stream.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use tickwatch::ring::{ring, Consumer, Producer};

/// Items per stress run: millions optimized, fewer in a debug build so `cargo test` stays quick.
const STRESS_ITEMS: u64 = if cfg!(debug_assertions) {
    1_000_000
} else {
    4_000_000
};

/// A small seeded xorshift64*: reproducible batch sizes and operation mixes without `rand`.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() >> 33) as usize % n
    }
}

/// Waits for the other side: spins briefly, then yields (two cores, shared with other work).
fn backoff(spins: &mut u32) {
    *spins += 1;
    if *spins < 64 {
        std::hint::spin_loop();
    } else {
        thread::yield_now();
    }
}

// ---------------------------------------------------------------------------------------------
// Full / empty edges
// ---------------------------------------------------------------------------------------------

#[test]
fn capacity_rounds_up_to_a_power_of_two_of_at_least_two_and_exactly_that_many_fit() {
    for (asked, want) in [(0, 2), (1, 2), (2, 2), (3, 4), (4, 4), (5, 8), (1000, 1024)] {
        let (mut tx, mut rx) = ring::<usize>(asked);
        assert_eq!(tx.capacity(), want, "producer capacity for {asked}");
        assert_eq!(rx.capacity(), want, "consumer capacity for {asked}");
        assert_eq!(tx.free_slots(), want, "fresh ring of {asked} is all free");
        let mut fitted = 0;
        while tx.push(fitted).is_ok() {
            fitted += 1;
            assert!(
                fitted <= want,
                "more than {want} items fit a ring of {asked}"
            );
        }
        assert_eq!(fitted, want, "items that fit a ring of {asked}");
        assert_eq!(tx.free_slots(), 0);
        assert_eq!(rx.available(), want);
        for expect in 0..want {
            assert_eq!(rx.pop(), Some(expect));
        }
        assert_eq!(rx.pop(), None);
    }
}

#[test]
fn push_on_full_hands_back_the_same_value_and_counters_track_every_step() {
    let (mut tx, mut rx) = ring::<Box<u64>>(4);
    for i in 0..4u64 {
        assert_eq!(tx.free_slots(), 4 - i as usize);
        // `available` reloads only when its cached view is empty: never more than is there,
        // never 0 while something is.
        let ready = rx.available();
        assert!(
            ready <= i as usize && (ready == 0) == (i == 0),
            "{ready} of {i}"
        );
        tx.push(Box::new(i)).unwrap();
        assert_eq!(tx.staged(), 0, "push publishes");
        assert_eq!(tx.free_slots(), 3 - i as usize);
    }
    assert!((1..=4).contains(&rx.available()));

    // The rejected value is the very allocation we passed in, not a copy.
    let rejected = Box::new(99u64);
    let addr = &*rejected as *const u64;
    let back = tx.push(rejected).unwrap_err();
    assert_eq!(
        &*back as *const u64, addr,
        "push on full returns the same Box"
    );
    assert_eq!(*back, 99);
    let back = tx.stage(back).unwrap_err();
    assert_eq!(
        &*back as *const u64, addr,
        "stage on full returns the same Box"
    );
    assert_eq!(tx.staged(), 0, "a rejected stage stages nothing");

    // One pop frees exactly one slot, and the rejected value then fits.
    assert_eq!(rx.pop().as_deref(), Some(&0));
    assert_eq!(tx.free_slots(), 1);
    tx.push(back).unwrap();
    assert_eq!(tx.free_slots(), 0);
    let (mut tx2, mut rx2) = ring::<String>(2);
    tx2.push("a".into()).unwrap();
    tx2.push("b".into()).unwrap();
    let s = String::from("full");
    let heap = s.as_ptr();
    let back = tx2.push(s).unwrap_err();
    assert_eq!(
        (back.as_str(), back.as_ptr()),
        ("full", heap),
        "the same String comes back"
    );
    assert_eq!(rx2.pop().as_deref(), Some("a"));
    tx2.push(back).unwrap();
    assert_eq!(rx2.pop().as_deref(), Some("b"));
    assert_eq!(rx2.pop().as_deref(), Some("full"));

    let got: Vec<u64> = std::iter::from_fn(|| rx.pop()).map(|b| *b).collect();
    assert_eq!(got, vec![1, 2, 3, 99]);
    assert_eq!(rx.available(), 0);
    assert_eq!(tx.free_slots(), 4);
}

#[test]
fn empty_ring_yields_none_from_every_read() {
    let (mut tx, mut rx) = ring::<u32>(8);
    assert_eq!(rx.available(), 0);
    assert_eq!(rx.pop(), None);
    assert_eq!(rx.take(), None);
    assert_eq!(rx.peek(), None);
    let mut out = [0u32; 4];
    assert_eq!(rx.pop_slice(&mut out), 0);
    assert_eq!(out, [0; 4], "an empty pop_slice writes nothing");

    // Emptied again after traffic: still None everywhere, and the producer sees it all free.
    tx.push(7).unwrap();
    assert_eq!(rx.peek(), Some(&7));
    assert_eq!(rx.peek(), Some(&7), "peek does not consume");
    assert_eq!(rx.pop(), Some(7));
    assert_eq!(rx.pop(), None);
    assert_eq!(rx.take(), None);
    assert_eq!(rx.peek(), None);
    assert_eq!(rx.available(), 0);
    assert_eq!(tx.free_slots(), 8);
}

#[test]
fn available_is_a_lower_bound_that_becomes_exact_once_the_cached_view_is_drained() {
    let (mut tx, mut rx) = ring::<u32>(8);
    tx.push(0).unwrap();
    tx.push(1).unwrap();
    assert_eq!(rx.available(), 2);
    tx.push(2).unwrap();
    tx.push(3).unwrap();
    let seen = rx.available();
    assert!((2..=4).contains(&seen), "available {seen} outside [2, 4]");
    assert_eq!(rx.pop(), Some(0));
    assert_eq!(rx.pop(), Some(1));
    // Whatever the cached view said, the remaining two are there and counted.
    assert_eq!(rx.available(), 2);
    assert_eq!(rx.pop(), Some(2));
    assert_eq!(rx.available(), 1);
    assert_eq!(rx.pop(), Some(3));
    assert_eq!(rx.available(), 0);
}

#[test]
fn sequence_numbers_wrap_past_the_mask_many_times() {
    // Capacity 4; pushes and pops in uneven runs so the live window starts at every slot offset,
    // straddles the wrap point, and hits both the full and the empty edge again and again.
    let (mut tx, mut rx) = ring::<u64>(4);
    let (mut next_in, mut next_out, mut in_flight) = (0u64, 0u64, 0usize);
    let (mut hit_full, mut hit_empty) = (0, 0);
    for lap in 0..2000usize {
        for _ in 0..(lap * 7 + 1) % 6 {
            if in_flight == 4 {
                assert_eq!(tx.push(u64::MAX), Err(u64::MAX), "step {lap}: full");
                assert_eq!(tx.free_slots(), 0);
                hit_full += 1;
                break;
            }
            tx.push(next_in).unwrap();
            next_in += 1;
            in_flight += 1;
            assert_eq!(tx.free_slots(), 4 - in_flight, "step {lap}");
        }
        let ready = rx.available();
        assert!(
            ready <= in_flight,
            "step {lap}: available {ready} > {in_flight}"
        );
        assert_eq!(ready == 0, in_flight == 0, "step {lap}: available {ready}");
        for _ in 0..(lap * 5 + 2) % 6 {
            if in_flight == 0 {
                assert_eq!(rx.pop(), None, "step {lap}: empty");
                assert_eq!(rx.available(), 0);
                hit_empty += 1;
                break;
            }
            assert_eq!(rx.peek(), Some(&next_out), "step {lap}");
            assert_eq!(rx.pop(), Some(next_out), "step {lap}");
            next_out += 1;
            in_flight -= 1;
            assert_eq!(tx.free_slots(), 4 - in_flight, "step {lap}");
        }
    }
    while let Some(v) = rx.pop() {
        assert_eq!(v, next_out);
        next_out += 1;
    }
    assert_eq!(next_in, next_out, "every item came out once");
    assert!(
        next_in > 4 * 500,
        "only {next_in} items: too few laps of the mask"
    );
    assert!(
        hit_full > 100 && hit_empty > 100,
        "edges hit {hit_full} / {hit_empty} times"
    );
}

/// One operation of the single-threaded random walk.
fn model_step(
    rng: &mut XorShift,
    tx: &mut Producer<u64>,
    rx: &mut Consumer<u64>,
    model: &mut Model,
) {
    let cap = tx.capacity();
    match rng.below(9) {
        0 => {
            let r = tx.push(model.next_in);
            if model.occupied() < cap {
                assert_eq!(r, Ok(()));
                model.staged += 1;
                model.next_in += 1;
                model.publish();
            } else {
                assert_eq!(r, Err(model.next_in));
            }
        }
        1 => {
            let r = tx.stage(model.next_in);
            if model.occupied() < cap {
                assert_eq!(r, Ok(()));
                model.staged += 1;
                model.next_in += 1;
            } else {
                assert_eq!(r, Err(model.next_in));
            }
        }
        2 => {
            tx.publish();
            model.publish();
        }
        3 => {
            let k = rng.below(cap + 3);
            let items: Vec<u64> = (model.next_in..model.next_in + k as u64).collect();
            let n = tx.push_slice(&items);
            assert_eq!(n, k.min(cap - model.occupied()), "push_slice count");
            model.staged += n;
            model.next_in += n as u64;
            model.publish();
        }
        4 => {
            let r = rx.take();
            assert_eq!(r, model.ready.pop_front());
            if r.is_some() {
                model.taken += 1;
            }
        }
        5 => {
            rx.release();
            model.taken = 0;
        }
        6 => {
            let r = rx.pop();
            assert_eq!(r, model.ready.pop_front());
            if r.is_some() {
                model.taken = 0; // a successful pop releases everything taken so far
            }
        }
        7 => {
            let k = rng.below(cap + 3);
            let mut out = vec![u64::MAX; k];
            let n = rx.pop_slice(&mut out);
            let want: Vec<u64> = model.ready.drain(..k.min(model.ready.len())).collect();
            assert_eq!(&out[..n], &want[..]);
            assert!(
                out[n..].iter().all(|&v| v == u64::MAX),
                "pop_slice wrote past n"
            );
            model.taken = 0;
        }
        _ => assert_eq!(rx.peek(), model.ready.front()),
    }
    assert_eq!(tx.staged(), model.staged, "staged");
    assert_eq!(tx.free_slots(), cap - model.occupied(), "free_slots");
    let avail = rx.available();
    assert!(
        avail <= model.ready.len(),
        "available {avail} > {}",
        model.ready.len()
    );
    assert_eq!(
        avail == 0,
        model.ready.is_empty(),
        "available says empty iff it is"
    );
}

/// The reference: what each end should see.
struct Model {
    next_in: u64,
    /// Published, not yet taken.
    ready: VecDeque<u64>,
    staged: usize,
    /// Taken, not yet released.
    taken: usize,
}

impl Model {
    fn occupied(&self) -> usize {
        self.ready.len() + self.staged + self.taken
    }

    fn publish(&mut self) {
        let first = self.next_in - self.staged as u64;
        self.ready.extend(first..self.next_in);
        self.staged = 0;
    }
}

#[test]
fn random_single_threaded_walk_matches_a_queue_model_across_many_laps() {
    for (cap, seed) in [(2, 1), (4, 2), (8, 3), (16, 4), (5, 5)] {
        let (mut tx, mut rx) = ring::<u64>(cap);
        let mut rng = XorShift::new(seed);
        let mut model = Model {
            next_in: 0,
            ready: VecDeque::new(),
            staged: 0,
            taken: 0,
        };
        for _ in 0..20_000 {
            model_step(&mut rng, &mut tx, &mut rx, &mut model);
        }
        assert!(
            model.next_in > 20 * tx.capacity() as u64,
            "capacity {cap}: only {} items went through, too few laps",
            model.next_in
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Batch boundaries
// ---------------------------------------------------------------------------------------------

#[test]
fn staged_items_are_invisible_until_publish() {
    let (mut tx, mut rx) = ring::<u32>(8);
    for v in 0..3 {
        tx.stage(v).unwrap();
        assert_eq!(tx.staged(), v as usize + 1);
        assert_eq!(rx.available(), 0, "staged item visible before publish");
        assert_eq!(rx.pop(), None);
        assert_eq!(rx.peek(), None);
    }
    assert_eq!(tx.free_slots(), 5, "staged items occupy their slots");
    tx.publish();
    assert_eq!(tx.staged(), 0);
    assert_eq!(rx.available(), 3);
    tx.publish(); // nothing staged: no change
    assert_eq!(rx.available(), 3);

    // A push publishes whatever was staged before it, in order.
    tx.stage(3).unwrap();
    tx.stage(4).unwrap();
    assert_eq!(tx.staged(), 2);
    tx.push(5).unwrap();
    assert_eq!(tx.staged(), 0);
    let got: Vec<u32> = std::iter::from_fn(|| rx.pop()).collect();
    assert_eq!(got, vec![0, 1, 2, 3, 4, 5]);

    // Staging up to full, unpublished: the producer sees full, the consumer sees empty.
    for v in 0..8 {
        tx.stage(v).unwrap();
    }
    assert_eq!(tx.stage(8), Err(8));
    assert_eq!(tx.free_slots(), 0);
    assert_eq!(rx.available(), 0);
    assert_eq!(rx.take(), None);
    tx.publish();
    assert_eq!(rx.available(), 8);
}

#[test]
fn taken_items_keep_their_slots_until_release() {
    let (mut tx, mut rx) = ring::<u32>(4);
    for v in 0..4 {
        tx.push(v).unwrap();
    }
    for v in 0..4 {
        assert_eq!(rx.take(), Some(v));
        assert_eq!(tx.free_slots(), 0, "take freed a slot before release");
    }
    assert_eq!(rx.available(), 0, "everything published was taken");
    assert_eq!(rx.take(), None);
    assert_eq!(
        tx.stage(10),
        Err(10),
        "ring of taken-but-unreleased items is full"
    );
    assert_eq!(tx.push(10), Err(10));
    assert_eq!(tx.push_slice(&[10, 11]), 0);

    rx.release();
    assert_eq!(tx.free_slots(), 4);
    rx.release(); // nothing taken: no change
    assert_eq!(tx.free_slots(), 4);

    // Partial: take two of three, release frees exactly two.
    for v in 10..13 {
        tx.stage(v).unwrap();
    }
    tx.publish();
    assert_eq!(tx.free_slots(), 1);
    assert_eq!(rx.take(), Some(10));
    assert_eq!(rx.take(), Some(11));
    assert_eq!(tx.free_slots(), 1);
    rx.release();
    assert_eq!(tx.free_slots(), 3);

    // pop releases what was taken before it too.
    tx.push(13).unwrap();
    assert_eq!(rx.take(), Some(12));
    assert_eq!(tx.free_slots(), 2);
    assert_eq!(rx.pop(), Some(13));
    assert_eq!(tx.free_slots(), 4);
}

#[test]
fn slices_fill_partially_at_the_full_and_empty_edges() {
    let (mut tx, mut rx) = ring::<u32>(8);
    assert_eq!(tx.push_slice(&[]), 0);
    assert_eq!(tx.push_slice(&[0, 1, 2, 3, 4]), 5);
    assert_eq!(tx.push_slice(&[5, 6, 7, 8, 9, 10]), 3, "only 3 free slots");
    assert_eq!(tx.free_slots(), 0);
    assert_eq!(tx.push_slice(&[99]), 0, "push_slice on a full ring");
    assert_eq!(rx.available(), 8);

    let mut out = [u32::MAX; 3];
    assert_eq!(rx.pop_slice(&mut out), 3);
    assert_eq!(out, [0, 1, 2]);
    assert_eq!(tx.free_slots(), 3, "pop_slice released its slots");
    let mut big = [u32::MAX; 20];
    assert_eq!(rx.pop_slice(&mut big), 5, "only 5 left");
    assert_eq!(&big[..5], &[3, 4, 5, 6, 7]);
    assert!(big[5..].iter().all(|&v| v == u32::MAX));
    assert_eq!(rx.pop_slice(&mut big), 0, "pop_slice on an empty ring");
    assert_eq!(rx.pop_slice(&mut []), 0);

    // push_slice also publishes what was staged before it, and staged items take room.
    tx.stage(100).unwrap();
    assert_eq!(tx.push_slice(&[101, 102, 103, 104, 105, 106, 107, 108]), 7);
    assert_eq!(tx.staged(), 0);
    assert_eq!(rx.pop_slice(&mut big), 8);
    assert_eq!(&big[..8], &[100, 101, 102, 103, 104, 105, 106, 107]);
}

#[test]
fn slices_cross_the_wrap_point_in_order() {
    let (mut tx, mut rx) = ring::<u32>(8);
    // Move head and tail to sequence 6: the next 8 slots are 6, 7, 0, 1, ..., 5.
    for v in 0..6 {
        tx.push(v).unwrap();
        assert_eq!(rx.pop(), Some(v));
    }
    let items: Vec<u32> = (0..10).collect();
    assert_eq!(tx.push_slice(&items), 8, "a full lap fits across the wrap");
    let mut out = [u32::MAX; 5];
    assert_eq!(rx.pop_slice(&mut out), 5);
    assert_eq!(out, [0, 1, 2, 3, 4]);
    assert_eq!(tx.push_slice(&[8, 9, 10, 11, 12, 13]), 5);
    let mut big = [u32::MAX; 20];
    assert_eq!(rx.pop_slice(&mut big), 8);
    assert_eq!(&big[..8], &[5, 6, 7, 8, 9, 10, 11, 12]);
    assert_eq!(rx.pop(), None);
    assert_eq!(tx.free_slots(), 8);
}

// ---------------------------------------------------------------------------------------------
// Two threads
// ---------------------------------------------------------------------------------------------

/// Producer: pushes `0..n` with a random mix of `push`, `stage`+`publish` and `push_slice`, then
/// drops its end.
fn produce_mixed(mut tx: Producer<u64>, n: u64, seed: u64) {
    let cap = tx.capacity();
    let mut rng = XorShift::new(seed);
    let mut next = 0u64;
    let mut spins = 0u32;
    let mut buf = Vec::with_capacity(2 * cap + 2);
    while next < n {
        // Fail rather than hang if the consumer died (say, on a failed assert).
        assert!(
            !tx.is_abandoned(),
            "consumer gone after {next} of {n} items"
        );
        let batch = (1 + rng.below(2 * cap + 1)).min((n - next) as usize);
        match rng.below(3) {
            0 => {
                for _ in 0..batch {
                    let mut v = next;
                    while let Err(back) = tx.push(v) {
                        assert!(!tx.is_abandoned(), "consumer gone at item {next}");
                        v = back;
                        backoff(&mut spins);
                    }
                    spins = 0;
                    next += 1;
                }
            }
            1 => {
                for _ in 0..batch {
                    if tx.stage(next).is_err() {
                        break; // full: publish what fits and come back
                    }
                    next += 1;
                }
                let staged = tx.staged();
                assert!(staged <= batch);
                tx.publish();
                if staged == 0 {
                    backoff(&mut spins);
                } else {
                    spins = 0;
                }
            }
            _ => {
                buf.clear();
                buf.extend(next..next + batch as u64);
                let pushed = tx.push_slice(&buf);
                assert!(pushed <= batch);
                assert_eq!(tx.staged(), 0, "push_slice publishes");
                next += pushed as u64;
                if pushed == 0 {
                    backoff(&mut spins);
                } else {
                    spins = 0;
                }
            }
        }
    }
    assert!(
        !tx.is_abandoned(),
        "consumer left before reading everything"
    );
}

/// Consumer: reads until `n` items arrived, each checked against the next expected value, with a
/// random mix of `pop`, `take`+`release`, `pop_slice` and `peek`. Returns how many items it read.
fn consume_mixed(mut rx: Consumer<u64>, n: u64, seed: u64) -> u64 {
    let cap = rx.capacity();
    let mut rng = XorShift::new(seed);
    let mut expected = 0u64;
    let mut spins = 0u32;
    let mut out = vec![0u64; 2 * cap + 2];
    while expected < n {
        let batch = 1 + rng.below(2 * cap + 1);
        let before = expected;
        match rng.below(5) {
            0 => {
                for _ in 0..batch {
                    match rx.pop() {
                        Some(v) => {
                            assert_eq!(v, expected, "pop out of order");
                            expected += 1;
                        }
                        None => break,
                    }
                }
            }
            1 => {
                for _ in 0..batch {
                    match rx.take() {
                        Some(v) => {
                            assert_eq!(v, expected, "take out of order");
                            expected += 1;
                        }
                        None => break,
                    }
                }
                rx.release();
            }
            2 => {
                let got = rx.pop_slice(&mut out[..batch]);
                for &v in &out[..got] {
                    assert_eq!(v, expected, "pop_slice out of order");
                    expected += 1;
                }
            }
            3 => {
                if let Some(&v) = rx.peek() {
                    assert_eq!(v, expected, "peek shows the wrong item");
                    assert_eq!(rx.peek(), Some(&v), "second peek differs");
                    assert_eq!(rx.pop(), Some(v), "pop after peek differs");
                    expected += 1;
                }
            }
            _ => {
                // Whatever `available` reports is really there: that many takes must succeed.
                let ready = rx.available();
                assert!(ready <= cap, "available {ready} > capacity {cap}");
                for _ in 0..ready {
                    let v = rx.take().expect("available() promised an item");
                    assert_eq!(v, expected, "take after available out of order");
                    expected += 1;
                }
                rx.release();
            }
        }
        if expected == before {
            // Stuck: fail rather than hang if the producer died (say, on a failed assert).
            if rx.is_abandoned() && rx.available() == 0 {
                panic!("producer gone after {expected} of {n} items");
            }
            backoff(&mut spins);
        } else {
            spins = 0;
        }
    }
    // The producer stops at n: once it is gone, nothing else may show up.
    while !rx.is_abandoned() {
        thread::yield_now();
    }
    assert_eq!(rx.pop(), None, "an item past n arrived");
    expected
}

fn stress(asked_cap: usize, n: u64, seed: u64) {
    let (tx, rx) = ring::<u64>(asked_cap);
    let got = thread::scope(|s| {
        s.spawn(move || produce_mixed(tx, n, seed));
        s.spawn(move || consume_mixed(rx, n, seed ^ 0xDEAD_BEEF))
            .join()
            .unwrap()
    });
    assert_eq!(got, n, "capacity {asked_cap}: items received");
}

#[test]
fn stress_capacity_2() {
    stress(2, STRESS_ITEMS / 2, 11);
}

#[test]
fn stress_capacity_8() {
    stress(7, STRESS_ITEMS, 12);
}

#[test]
fn stress_capacity_64() {
    stress(64, STRESS_ITEMS, 13);
}

#[test]
fn stress_capacity_1024() {
    stress(1000, STRESS_ITEMS, 14);
}

#[test]
fn stress_non_copy_strings_arrive_intact_and_in_order() {
    let n = STRESS_ITEMS / 4;
    for cap in [2, 16] {
        let (mut tx, mut rx) = ring::<String>(cap);
        thread::scope(|s| {
            s.spawn(move || {
                let mut rng = XorShift::new(21);
                let mut spins = 0;
                let mut i = 0u64;
                while i < n {
                    let batch = 1 + rng.below(cap + 2);
                    for _ in 0..batch.min((n - i) as usize) {
                        let mut v = format!("item-{i}");
                        // Alternate push and stage so both paths carry heap payloads.
                        let stage = rng.below(2) == 0;
                        loop {
                            let r = if stage { tx.stage(v) } else { tx.push(v) };
                            match r {
                                Ok(()) => break,
                                Err(back) => {
                                    assert_eq!(back, format!("item-{i}"), "rejected value altered");
                                    v = back;
                                    tx.publish(); // never wait on our own staged items
                                    backoff(&mut spins);
                                }
                            }
                        }
                        spins = 0;
                        i += 1;
                    }
                    tx.publish();
                }
            });
            let mut rng = XorShift::new(22);
            let mut expected = 0u64;
            let mut spins = 0;
            while expected < n {
                let got = if rng.below(2) == 0 {
                    rx.pop()
                } else {
                    let v = rx.take();
                    if rng.below(4) == 0 {
                        rx.release();
                    }
                    v
                };
                match got {
                    Some(s) => {
                        assert_eq!(s, format!("item-{expected}"));
                        expected += 1;
                        spins = 0;
                    }
                    None => {
                        rx.release(); // taken slots must go back or the producer stalls
                        backoff(&mut spins);
                    }
                }
            }
            rx.release();
        });
    }
}

#[test]
fn non_copy_boxes_move_through_without_copies() {
    let (mut tx, mut rx) = ring::<Box<[u8]>>(4);
    let mut addrs = VecDeque::new();
    for lap in 0..50u8 {
        for k in 0..3u8 {
            let b: Box<[u8]> = vec![lap, k, lap ^ k].into_boxed_slice();
            addrs.push_back(b.as_ptr());
            tx.push(b).unwrap();
        }
        for k in 0..3u8 {
            let b = rx.pop().unwrap();
            assert_eq!(&*b, &[lap, k, lap ^ k]);
            assert_eq!(
                b.as_ptr(),
                addrs.pop_front().unwrap(),
                "the same allocation"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Ownership: drops
// ---------------------------------------------------------------------------------------------

/// Counts drops per item id, so a double drop or a leak of any one item shows.
#[derive(Clone)]
struct DropLog(Arc<Vec<AtomicUsize>>);

impl DropLog {
    fn new(n: usize) -> Self {
        DropLog(Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect()))
    }

    fn item(&self, id: usize) -> Tracked {
        Tracked {
            id,
            log: self.clone(),
        }
    }

    fn drops(&self, id: usize) -> usize {
        self.0[id].load(Ordering::SeqCst)
    }

    fn total(&self) -> usize {
        (0..self.0.len()).map(|i| self.drops(i)).sum()
    }

    /// Every id in `ids` dropped exactly once; every other id not at all.
    fn assert_dropped_exactly(&self, ids: &[usize], when: &str) {
        for id in 0..self.0.len() {
            let want = usize::from(ids.contains(&id));
            assert_eq!(
                self.drops(id),
                want,
                "{when}: item {id} dropped {} times",
                self.drops(id)
            );
        }
    }
}

struct Tracked {
    id: usize,
    log: DropLog,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.log.0[self.id].fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn items_left_in_the_ring_drop_exactly_once_when_both_ends_drop_in_either_order() {
    for producer_first in [true, false] {
        let log = DropLog::new(6);
        let (mut tx, mut rx) = ring::<Tracked>(8);
        for id in 0..5 {
            assert!(tx.push(log.item(id)).is_ok());
        }
        assert!(tx.stage(log.item(5)).is_ok()); // staged, never published by hand
        drop(rx.pop().unwrap()); // 0
        drop(rx.pop().unwrap()); // 1
        let held = rx.take().unwrap(); // 2: taken, never released by hand
        assert_eq!(held.id, 2);
        log.assert_dropped_exactly(&[0, 1], "after two pops");

        if producer_first {
            drop(tx);
        } else {
            drop(rx);
            log.assert_dropped_exactly(&[0, 1], "consumer gone, producer alive");
            drop(tx);
            log.assert_dropped_exactly(&[0, 1, 3, 4, 5], "both gone (consumer first)");
            drop(held);
            log.assert_dropped_exactly(&[0, 1, 2, 3, 4, 5], "taken item dropped by its owner");
            continue;
        }
        log.assert_dropped_exactly(&[0, 1], "producer gone, consumer alive");
        drop(rx);
        log.assert_dropped_exactly(&[0, 1, 3, 4, 5], "both gone (producer first)");
        drop(held);
        log.assert_dropped_exactly(&[0, 1, 2, 3, 4, 5], "taken item dropped by its owner");
    }
}

#[test]
fn leftovers_drop_once_after_the_indices_have_wrapped() {
    let lanes = 4 * 37 + 3;
    let log = DropLog::new(lanes);
    let (mut tx, mut rx) = ring::<Tracked>(4);
    let mut id = 0;
    let mut popped = Vec::new();
    while id + 3 <= lanes - 3 {
        for _ in 0..3 {
            assert!(tx.push(log.item(id)).is_ok());
            id += 1;
        }
        for _ in 0..3 {
            let t = rx.pop().unwrap();
            popped.push(t.id);
        }
    }
    // Leave 3 behind, straddling the slot boundary on most alignments.
    let left: Vec<usize> = (id..id + 3).collect();
    for &i in &left {
        assert!(tx.push(log.item(i)).is_ok());
    }
    assert_eq!(popped, (0..id).collect::<Vec<_>>());
    log.assert_dropped_exactly(&popped, "before the ends drop");
    drop(tx);
    drop(rx);
    let all: Vec<usize> = (0..id + 3).collect();
    log.assert_dropped_exactly(&all, "after the ends drop");
}

#[test]
fn taken_items_are_not_dropped_by_the_ring() {
    let log = DropLog::new(4);
    let (mut tx, mut rx) = ring::<Tracked>(4);
    for id in 0..4 {
        assert!(tx.push(log.item(id)).is_ok());
    }
    let taken: Vec<Tracked> = std::iter::from_fn(|| rx.take()).collect();
    assert_eq!(taken.len(), 4);
    drop(rx); // never released by hand: its drop must release, not leave them "in the ring"
    drop(tx);
    assert_eq!(log.total(), 0, "the ring dropped items it had handed out");
    drop(taken);
    log.assert_dropped_exactly(&[0, 1, 2, 3], "after the caller drops them");
}

#[test]
fn staged_items_are_delivered_when_the_producer_drops() {
    let log = DropLog::new(3);
    let (mut tx, mut rx) = ring::<Tracked>(4);
    for id in 0..3 {
        assert!(tx.stage(log.item(id)).is_ok());
    }
    assert_eq!(rx.available(), 0);
    assert!(!rx.is_abandoned());
    drop(tx);
    assert!(rx.is_abandoned());
    assert_eq!(log.total(), 0, "producer drop dropped staged items");
    assert_eq!(rx.available(), 3);
    for id in 0..3 {
        let t = rx.take().expect("staged item lost");
        assert_eq!(t.id, id);
        drop(t);
    }
    assert!(rx.take().is_none());
    rx.release();
    drop(rx);
    log.assert_dropped_exactly(&[0, 1, 2], "all delivered");
}

#[test]
fn producer_writes_after_the_consumer_left_are_dropped_with_the_ring() {
    let log = DropLog::new(3);
    let (mut tx, rx) = ring::<Tracked>(2);
    assert!(!tx.is_abandoned());
    drop(rx);
    assert!(tx.is_abandoned());
    assert!(tx.push(log.item(0)).is_ok(), "free slots stay usable");
    assert!(tx.stage(log.item(1)).is_ok());
    let back = tx.push(log.item(2)).unwrap_err();
    assert_eq!(back.id, 2);
    drop(back);
    log.assert_dropped_exactly(&[2], "rejected item is the caller's");
    drop(tx);
    log.assert_dropped_exactly(&[0, 1, 2], "ring dropped with both ends");
}

// ---------------------------------------------------------------------------------------------
// Abandonment
// ---------------------------------------------------------------------------------------------

#[test]
fn consumer_drains_everything_published_after_the_producer_drops() {
    let (mut tx, mut rx) = ring::<u32>(8);
    for v in 0..5 {
        tx.push(v).unwrap();
    }
    assert_eq!(rx.pop(), Some(0));
    assert!(!rx.is_abandoned());
    drop(tx);
    assert!(rx.is_abandoned());
    let rest: Vec<u32> = std::iter::from_fn(|| rx.pop()).collect();
    assert_eq!(rest, vec![1, 2, 3, 4]);
    assert!(rx.is_abandoned(), "stays abandoned");
    assert_eq!(rx.pop(), None);
}

#[test]
fn producer_sees_the_consumer_leave() {
    let (mut tx, mut rx) = ring::<u32>(4);
    tx.push(1).unwrap();
    assert_eq!(rx.take(), Some(1));
    assert!(!tx.is_abandoned());
    drop(rx);
    assert!(tx.is_abandoned());
    assert_eq!(tx.free_slots(), 4, "consumer drop released what it took");
}

#[test]
fn threaded_producer_quitting_mid_stream_is_drained_exactly() {
    for (cap, seed) in [(2, 31), (8, 32), (128, 33)] {
        let mut rng = XorShift::new(seed);
        // Stop at an arbitrary point, not a multiple of anything.
        let quit_at = 1000 + rng.below(STRESS_ITEMS as usize / 8) as u64;
        let (tx, mut rx) = ring::<u64>(cap);
        let got = thread::scope(|s| {
            s.spawn(move || {
                let mut tx = tx;
                let mut rng = XorShift::new(seed ^ 1);
                let mut spins = 0;
                let mut i = 0;
                while i < quit_at {
                    if rng.below(2) == 0 {
                        match tx.push(i) {
                            Ok(()) => i += 1,
                            Err(_) => backoff(&mut spins),
                        }
                    } else {
                        // Leave a staged tail unpublished now and then: the drop must deliver it.
                        match tx.stage(i) {
                            Ok(()) => i += 1,
                            Err(_) => {
                                tx.publish();
                                backoff(&mut spins);
                            }
                        }
                        if rng.below(8) == 0 {
                            tx.publish();
                        }
                    }
                }
                // Returning drops `tx` mid-stream, possibly with items still staged.
            });
            let mut expected = 0u64;
            let mut spins = 0;
            loop {
                // Read the flag *before* the pop: an empty pop after seeing it means done.
                let gone = rx.is_abandoned();
                match rx.pop() {
                    Some(v) => {
                        assert_eq!(v, expected, "capacity {cap}");
                        expected += 1;
                        spins = 0;
                    }
                    None if gone => break,
                    None => backoff(&mut spins),
                }
            }
            expected
        });
        assert_eq!(
            got, quit_at,
            "capacity {cap}: items drained after abandonment"
        );
    }
}

#[test]
fn threaded_consumer_quitting_mid_stream_is_seen_by_the_producer() {
    const CAP: usize = 8;
    const READ_BEFORE_QUIT: usize = 1234;
    // At most a ring's worth can be pushed past what the consumer read, plus the one in hand.
    let log = DropLog::new(READ_BEFORE_QUIT + 1 + CAP + 1);
    let (mut tx, mut rx) = ring::<Tracked>(CAP);
    let pushed = thread::scope(|s| {
        s.spawn(move || {
            let mut spins = 0;
            for want in 0..READ_BEFORE_QUIT {
                loop {
                    match rx.pop() {
                        Some(t) => {
                            assert_eq!(t.id, want);
                            break;
                        }
                        None => backoff(&mut spins),
                    }
                }
            }
            // Take one without releasing; the drop must hand its slot back, not drop it twice.
            let last = loop {
                match rx.take() {
                    Some(t) => break t,
                    None => backoff(&mut spins),
                }
            };
            assert_eq!(last.id, READ_BEFORE_QUIT);
            drop(rx);
            drop(last);
        });
        let mut spins = 0;
        let mut id = 0;
        let mut in_hand = Some(log.item(0));
        while !tx.is_abandoned() {
            match tx.push(in_hand.take().unwrap()) {
                Ok(()) => {
                    id += 1;
                    in_hand = Some(log.item(id));
                    spins = 0;
                }
                Err(back) => {
                    assert_eq!(back.id, id, "push handed back another item");
                    in_hand = Some(back);
                    backoff(&mut spins);
                }
            }
        }
        drop(in_hand); // item `id` never entered the ring
        id
    });
    assert!(
        (READ_BEFORE_QUIT + 1..=READ_BEFORE_QUIT + 1 + CAP).contains(&pushed),
        "pushed {pushed}: the ring held more than its capacity past what was read"
    );
    drop(tx);
    let all: Vec<usize> = (0..=pushed).collect();
    log.assert_dropped_exactly(&all, "after both ends are gone");
}

#[test]
fn read_slices_reads_in_place_across_the_wrap_and_advance_frees_nothing_until_release() {
    let (mut tx, mut rx) = ring::<u64>(8);
    let mut next_in = 0u64;
    let mut next_out = 0u64;
    // Walk the ring many laps with reads of every size, so runs start at every slot and many
    // wrap past the end (two slices).
    let mut wrapped = 0;
    for round in 0..200u64 {
        let room = tx.free_slots();
        let k = (round as usize % 9).min(room);
        for _ in 0..k {
            tx.stage(next_in).unwrap();
            next_in += 1;
        }
        tx.publish();
        let max = (round as usize * 7) % 10;
        let (a, b) = rx.read_slices(max);
        let got: Vec<u64> = a.iter().chain(b).copied().collect();
        assert!(got.len() <= max);
        if !b.is_empty() {
            wrapped += 1;
            assert!(!a.is_empty(), "the second slice follows a non-empty first");
        }
        let want: Vec<u64> = (next_out..next_out + got.len() as u64).collect();
        assert_eq!(got, want, "round {round}: in order, nothing skipped");
        // Read but not advanced: the same items come back.
        let (a2, b2) = rx.read_slices(max);
        assert_eq!(a2.iter().chain(b2).copied().collect::<Vec<_>>(), got);
        let before = tx.free_slots();
        rx.advance(got.len());
        assert_eq!(tx.free_slots(), before, "advance alone frees no slot");
        rx.release();
        next_out += got.len() as u64;
        assert_eq!(
            tx.free_slots(),
            8 - (next_in - next_out) as usize,
            "release frees exactly what was advanced over"
        );
    }
    assert!(wrapped > 10, "reads wrapped past the end ({wrapped} times)");
    // advance never runs past what is published.
    let (a, b) = rx.read_slices(usize::MAX);
    let left = a.len() + b.len();
    rx.advance(usize::MAX);
    rx.release();
    assert_eq!(tx.free_slots(), 8);
    assert_eq!(next_out + left as u64, next_in);
    assert_eq!(rx.pop(), None);
}

#[test]
fn read_slices_under_two_thread_stress() {
    let n: u64 = if cfg!(debug_assertions) {
        300_000
    } else {
        3_000_000
    };
    let (mut tx, mut rx) = ring::<u64>(64);
    thread::scope(|s| {
        s.spawn(move || {
            let mut i = 0;
            let mut spins = 0;
            while i < n {
                let mut k = 0;
                while k < 17 && i < n && tx.stage(i).is_ok() {
                    i += 1;
                    k += 1;
                }
                tx.publish();
                if k == 0 {
                    backoff(&mut spins);
                }
            }
        });
        let mut expect = 0;
        let mut spins = 0;
        while expect < n {
            let (a, b) = rx.read_slices(23);
            let got = a.len() + b.len();
            for &v in a.iter().chain(b) {
                assert_eq!(v, expect);
                expect += 1;
            }
            if got == 0 {
                backoff(&mut spins);
            }
            rx.advance(got);
            rx.release();
        }
    });
}

#[test]
fn stage_with_builds_items_in_place_and_refuses_when_full() {
    let (mut tx, mut rx) = ring::<[u32; 4]>(4);
    // A fresh slot is zeroed.
    assert!(tx.stage_with(|slot| {
        assert_eq!(*slot, [0; 4]);
        slot[0] = 1;
    }));
    for i in 2..=4u32 {
        assert!(tx.stage_with(|slot| *slot = [i, i, i, i]));
    }
    let mut called = false;
    assert!(!tx.stage_with(|_| called = true), "full: nothing staged");
    assert!(!called, "fill is not called on a full ring");
    assert_eq!(rx.pop(), None, "staged in place, not yet published");
    tx.publish();
    assert_eq!(rx.pop(), Some([1, 0, 0, 0]));
    assert_eq!(rx.pop(), Some([2; 4]));
    // The freed slot is handed back with its old bytes: `fill` must set what it needs.
    assert!(tx.stage_with(|slot| {
        assert_eq!(*slot, [1, 0, 0, 0], "the slot's previous item");
        slot[1] = 9;
    }));
    tx.publish();
    assert_eq!(rx.pop(), Some([3; 4]));
    assert_eq!(rx.pop(), Some([4; 4]));
    assert_eq!(rx.pop(), Some([1, 9, 0, 0]));
    assert_eq!(rx.pop(), None);
}
