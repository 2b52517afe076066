//! Every interleaving of small SPSC ring (`tickwatch::ring`) cases, explored by loom.
//!
//! Built only with `--cfg loom`, where the ring's atomics, `Arc` and slot cells are loom's:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --test ring_loom
//! ```
//!
//! Each model has a producer on a spawned thread and the consumer on the model's main thread,
//! capacity 2 and two or three items, so the ring is full and empty and wraps within the model.
//! Across every interleaving (no preemption bound: these models are small enough to explore
//! exhaustively in about two seconds; `LOOM_MAX_PREEMPTIONS=N` bounds them if they ever grow) loom
//! checks that no slot is read and written concurrently (the ring's `UnsafeCell`
//! accesses are tracked), that nothing reads a value its Acquire/Release pairs do not make
//! visible, and that every loom `Arc` is freed; the assertions add:
//! * `push`/`pop`/`peek`: items arrive exactly once and in order;
//! * `stage`+`publish`: a batch becomes visible all at once, never half;
//! * `take`+`release`: taken slots are not reused before `release`, and taken values are intact;
//! * `push_slice`/`pop_slice`: partial fills lose and repeat nothing;
//! * drops: items left in the ring are dropped exactly once whichever end goes last, taken items
//!   never by the ring, and a producer sees the consumer leave;
//! * abandonment: a consumer that sees the producer gone and then an empty ring has received
//!   every item, including ones the producer staged and never published itself.
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use tickwatch::ring::{ring, Consumer, Producer};

/// Runs `f` under every interleaving. `Builder::new` reads the `LOOM_*` environment; with no
/// `LOOM_MAX_PREEMPTIONS` the search is exhaustive, which these models afford.
fn model<F>(f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    loom::model::Builder::new().check(f);
}

/// Pushes `v`, yielding to the consumer while the ring is full.
fn push_wait<T>(tx: &mut Producer<T>, mut v: T) {
    loop {
        match tx.push(v) {
            Ok(()) => return,
            Err(back) => {
                v = back;
                thread::yield_now();
            }
        }
    }
}

/// Pops one item, yielding to the producer while the ring is empty.
fn pop_wait<T>(rx: &mut Consumer<T>) -> T {
    loop {
        if let Some(v) = rx.pop() {
            return v;
        }
        thread::yield_now();
    }
}

/// Takes one item (without releasing), yielding while the ring is empty.
fn take_wait<T>(rx: &mut Consumer<T>) -> T {
    loop {
        if let Some(v) = rx.take() {
            return v;
        }
        thread::yield_now();
    }
}

#[test]
fn push_pop_delivers_each_item_once_in_order() {
    model(|| {
        let (mut tx, mut rx) = ring::<u32>(2);
        let producer = thread::spawn(move || {
            for v in 0..3 {
                push_wait(&mut tx, v);
            }
        });
        assert_eq!(pop_wait(&mut rx), 0);
        // Peek shows the next item and leaves it in place.
        let peeked = loop {
            if let Some(&v) = rx.peek() {
                break v;
            }
            thread::yield_now();
        };
        assert_eq!(peeked, 1);
        assert_eq!(rx.pop(), Some(1));
        assert_eq!(pop_wait(&mut rx), 2);
        producer.join().unwrap();
        assert!(rx.is_abandoned());
        assert_eq!(rx.pop(), None, "an item arrived twice or from nowhere");
    });
}

#[test]
fn a_published_batch_becomes_visible_all_at_once() {
    model(|| {
        let (mut tx, mut rx) = ring::<u32>(2);
        let producer = thread::spawn(move || {
            tx.stage(0).unwrap();
            tx.stage(1).unwrap();
            tx.publish();
            let mut v = 2;
            while let Err(back) = tx.stage(v) {
                v = back;
                thread::yield_now();
            }
            assert_eq!(tx.staged(), 1);
            tx.publish();
        });
        // The first batch is two items published with one store: never seen half done.
        loop {
            match rx.available() {
                0 => thread::yield_now(),
                2 => break,
                n => panic!("saw {n} items of a 2-item batch"),
            }
        }
        assert_eq!(rx.take(), Some(0));
        assert_eq!(rx.take(), Some(1));
        rx.release();
        assert_eq!(pop_wait(&mut rx), 2);
        producer.join().unwrap();
        assert_eq!(rx.pop(), None);
    });
}

#[test]
fn taken_slots_are_not_reused_before_release() {
    model(|| {
        let (mut tx, mut rx) = ring::<String>(2);
        let third_pushed = Arc::new(AtomicBool::new(false));
        let flag = third_pushed.clone();
        let producer = thread::spawn(move || {
            for v in ["zero", "one", "two"] {
                push_wait(&mut tx, v.to_string());
            }
            flag.store(true, Ordering::SeqCst);
        });
        let a = take_wait(&mut rx);
        let b = take_wait(&mut rx);
        // Both slots are taken, not released: the producer cannot have written the third item,
        // so the taken values are still what was pushed.
        assert!(
            !third_pushed.load(Ordering::SeqCst),
            "slot reused before release"
        );
        assert_eq!((a.as_str(), b.as_str()), ("zero", "one"));
        rx.release();
        assert_eq!(pop_wait(&mut rx), "two");
        producer.join().unwrap();
        assert!(third_pushed.load(Ordering::SeqCst));
    });
}

#[test]
fn slices_lose_and_repeat_nothing() {
    model(|| {
        let (mut tx, mut rx) = ring::<u32>(2);
        let producer = thread::spawn(move || {
            let items = [0u32, 1, 2];
            let mut sent = 0;
            while sent < items.len() {
                let n = tx.push_slice(&items[sent..]);
                assert!(n <= 2, "pushed {n} into a ring of 2");
                if n == 0 {
                    thread::yield_now();
                }
                sent += n;
            }
        });
        let mut got = Vec::new();
        let mut buf = [u32::MAX; 3];
        while got.len() < 3 {
            let n = rx.pop_slice(&mut buf);
            got.extend_from_slice(&buf[..n]);
            if n == 0 {
                thread::yield_now();
            }
        }
        assert_eq!(got, [0, 1, 2]);
        producer.join().unwrap();
        assert_eq!(rx.pop(), None);
    });
}

/// Counts drops per id in loom atomics.
struct Counted {
    id: usize,
    drops: Arc<Vec<AtomicUsize>>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops[self.id].fetch_add(1, Ordering::SeqCst);
    }
}

fn drop_counters(n: usize) -> Arc<Vec<AtomicUsize>> {
    Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect())
}

fn assert_each_dropped_once(drops: &[AtomicUsize]) {
    for (id, d) in drops.iter().enumerate() {
        assert_eq!(
            d.load(Ordering::SeqCst),
            1,
            "item {id} dropped the wrong number of times"
        );
    }
}

#[test]
fn items_left_in_the_ring_drop_once_whichever_end_goes_last() {
    model(|| {
        let drops = drop_counters(2);
        let (mut tx, mut rx) = ring::<Counted>(2);
        let d = drops.clone();
        let producer = thread::spawn(move || {
            for id in 0..2 {
                push_wait(
                    &mut tx,
                    Counted {
                        id,
                        drops: d.clone(),
                    },
                );
            }
            // `tx` drops here, racing the consumer's drop below.
        });
        let first = pop_wait(&mut rx);
        assert_eq!(first.id, 0);
        drop(first);
        drop(rx); // item 1 may or may not be in the ring yet
        producer.join().unwrap();
        assert_each_dropped_once(&drops);
    });
}

#[test]
fn producer_sees_the_consumer_leave_and_taken_items_are_not_dropped_twice() {
    model(|| {
        let drops = drop_counters(3);
        let (mut tx, mut rx) = ring::<Counted>(2);
        let d = drops.clone();
        let producer = thread::spawn(move || {
            let mut pushed = 0;
            for id in 0..3 {
                let mut item = Counted {
                    id,
                    drops: d.clone(),
                };
                loop {
                    match tx.push(item) {
                        Ok(()) => {
                            pushed += 1;
                            break;
                        }
                        // The consumer left: nobody will free a slot. Our item is ours to drop.
                        Err(_back) if tx.is_abandoned() => return pushed,
                        Err(back) => {
                            item = back;
                            thread::yield_now();
                        }
                    }
                }
            }
            pushed
        });
        // Take one and leave without releasing it: the consumer's drop must hand the slot
        // back so the ring does not drop this item again.
        let held = take_wait(&mut rx);
        assert_eq!(held.id, 0);
        drop(rx);
        assert_eq!(
            drops[0].load(Ordering::SeqCst),
            0,
            "the ring dropped a taken item"
        );
        drop(held);
        let pushed = producer.join().unwrap();
        assert!((1..=3).contains(&pushed));
        assert_each_dropped_once(&drops);
    });
}

#[test]
fn abandoned_consumer_drains_everything_including_staged_items() {
    model(|| {
        let (mut tx, mut rx) = ring::<u32>(2);
        let producer = thread::spawn(move || {
            tx.push(0).unwrap();
            tx.stage(1).unwrap();
            // Dropped with item 1 staged: the drop publishes it, then flags abandonment.
        });
        let mut got = Vec::new();
        loop {
            // The flag first: an empty ring after seeing it means nothing more can come.
            let gone = rx.is_abandoned();
            match rx.pop() {
                Some(v) => got.push(v),
                None if gone => break,
                None => thread::yield_now(),
            }
        }
        assert_eq!(got, [0, 1], "items lost or reordered on abandonment");
        producer.join().unwrap();
    });
}
