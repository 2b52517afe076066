//! Memory latency and memory-level parallelism of this machine, for reading book benchmarks.
//!
//! Three loops over a 256 MiB huge-page-backed array (`tickwatch::mem::HugeArray`, as the book
//! uses): a dependent pointer chase (one miss at a time: the latency), independent random loads
//! (as many misses in flight as the core allows: the throughput), and independent random
//! read-modify-writes of one line each (what a hash-table book does per message).
//!
//! `cargo run --release --example memlat`

use std::hint::black_box;
use std::time::Instant;
use tickwatch::mem::HugeArray;
use tickwatch::rng::SplitMix64;

const BYTES: usize = 256 << 20;
const LINE_WORDS: usize = 8; // u64 words per 64-byte line
const OPS: usize = 10_000_000;

fn main() {
    let lines = BYTES / 64;
    let mut a: HugeArray<u64> = HugeArray::zeroed(lines * LINE_WORDS);
    let mut rng = SplitMix64::new(42);
    // A random cyclic permutation of the lines (Sattolo), stored as the chase's next pointers.
    let mut perm: Vec<u32> = (0..lines as u32).collect();
    for i in (1..lines).rev() {
        let j = rng.below(i as u64) as usize;
        perm.swap(i, j);
    }
    for i in 0..lines {
        a[perm[i] as usize * LINE_WORDS] = perm[(i + 1) % lines] as u64 * LINE_WORDS as u64;
    }
    let idx: Vec<u32> = (0..OPS).map(|_| rng.below(lines as u64) as u32).collect();

    let mut p = perm[0] as usize * LINE_WORDS;
    let t0 = Instant::now();
    for _ in 0..OPS / 2 {
        p = a[p] as usize;
    }
    println!(
        "dependent random load (latency):        {:6.1} ns",
        t0.elapsed().as_nanos() as f64 / (OPS / 2) as f64
    );
    black_box(p);

    let t0 = Instant::now();
    let mut sum = 0u64;
    for &i in &idx {
        sum = sum.wrapping_add(a[i as usize * LINE_WORDS + 1]);
    }
    println!(
        "independent random loads (throughput):  {:6.1} ns",
        t0.elapsed().as_nanos() as f64 / OPS as f64
    );
    black_box(sum);

    let t0 = Instant::now();
    for &i in &idx {
        let w = &mut a[i as usize * LINE_WORDS + 1];
        *w = w.wrapping_add(1);
    }
    println!(
        "independent random read-modify-writes:  {:6.1} ns",
        t0.elapsed().as_nanos() as f64 / OPS as f64
    );
    black_box(&a[..]);
}
