//! SPSC hand-off between two pinned threads: [`tickwatch::ring`] against `rtrb`,
//! `crossbeam-queue`'s `ArrayQueue`, the `disruptor` crate, `crossbeam-channel` (bounded) and
//! `std::sync::mpsc::sync_channel`, in the same criterion groups with the same parameters.
//!
//! **Setup shared by every peer.**
//! - Payload: [`Msg`], `#[derive(Clone, Copy)] #[repr(C, align(64))]`, exactly 64 bytes (one
//!   cache line): eight `u64`s, the first the sequence number, the others derived from it. The
//!   consumer checks the first word of every item against the sequence number it expects (order,
//!   loss) and the last against its complement (torn or partial copies), and passes the whole
//!   value to `black_box`, so all 64 bytes are read and nothing can be optimized away. The 64-byte
//!   alignment makes each slot of `tickwatch`, `rtrb` and `disruptor` exactly one line; the
//!   crossbeam queues add a stamp word to each slot, which the alignment pads to 128 bytes.
//! - Capacity: [`CAPACITY`] = 4096 slots for every queue (a power of two, so none rounds).
//! - Threads: the producer (ping side) is pinned to the first core of the process's affinity mask
//!   and the consumer (echo side) to the second, with `core_affinity`. With fewer than two cores
//!   nothing is pinned and every spin loop also yields, so the bench still finishes (slowly); a
//!   failed pin call is reported once and the run goes on unpinned.
//! - Queue ends: each endpoint struct is held in its own `CachePadded` in the benchmark's frame
//!   (the threads borrow them), so the producer's and the consumer's private per-item state never
//!   false-shares; the per-round-trip time buffer is allocated on the ping thread.
//! - Waiting: lock-free peers busy-spin with [`std::hint::spin_loop`] on full / empty
//!   (`disruptor`'s own `publish` spins internally without the hint). The two channels use their
//!   blocking `send` / `recv`, as a caller would.
//!
//! **`ring_throughput`**: [`ITEMS`] = 1,000,000 items per iteration (`Throughput::Elements`, so
//! criterion reports items/s; `TICKWATCH_BENCH_RING_ITEMS` overrides), through one queue from
//! core 0 to core 1. Each `iter_custom` call reuses the queue of that benchmark but spawns a fresh
//! pinned producer / consumer pair (scoped threads); both wait on a barrier and the timing runs
//! from the producer's first push to the consumer's receipt of the last of the `iters * ITEMS`
//! items. Thread spawn, pinning and queue construction are outside it. Ids:
//! - `tickwatch_push`: `push` / `pop`, one item at a time (publish and release every item).
//! - `tickwatch_batch`: `stage` up to [`BATCH`] = 64 items then one `publish`; `take` up to 64
//!   then one `release`.
//! - `tickwatch_slice`: `push_slice` / `pop_slice` with 64-item buffers (one copy more each side).
//! - `tickwatch_chunk`: producer as `tickwatch_batch`; the consumer reads up to 64 items in place
//!   with `read_slices` (no copy out), then one `advance` + `release`.
//! - `rtrb`: `push` / `pop`. `rtrb_chunk`: `write_chunk_uninit(≤ 64)` + `fill_from_iter`,
//!   `read_chunk(≤ 64)` + `commit_all`.
//! - `array_queue`: `ArrayQueue::push` / `pop`.
//! - `disruptor`: a single-producer disruptor built with the `BusySpin` wait strategy, consumed
//!   through an `EventPoller` on our pinned thread: `publish` one event, `take(1)` one event (one
//!   item at a time on both sides, like `tickwatch_push` and `rtrb`). `disruptor_batch`:
//!   `batch_publish(≤ 64)` / `take(64)`. `disruptor_handler`: the library's managed-thread form,
//!   a `handle_events_with` processor pinned to core 1 (`pin_at_core`) with `BusySpin`, which
//!   checks each event and stores its progress at the end of every batch; our producer on core 0
//!   publishes one event at a time and the timing ends when it sees the last one processed.
//! - `crossbeam_channel`: `bounded(4096)` `send` / `recv`. `std_sync_channel`:
//!   `sync_channel(4096)` `send` / `recv`.
//!
//! **`ring_rtt`**: round-trip latency. Two queues of the same peer, ping (core 0 → core 1) and
//! pong (core 1 → core 0); one 64-byte item bounces: the core-0 thread sends item `i`, the core-1
//! thread receives it, checks it and sends it back, and core 0 checks it before sending `i + 1`.
//! One criterion iteration is one round trip (so criterion's time is ns per round trip);
//! `iter_custom` spawns the pinned pair per sample, runs [`RTT_WARM`] untimed round trips, then
//! times `iters` round trips. Every round trip is timed on its own with `Instant` (clocksource
//! TSC here: one vDSO read per round trip, chained so the per-trip times add up to the sample's
//! time) into a preallocated buffer, which goes into one `hdrhistogram::Histogram` per peer after
//! the sample (criterion's warm-up samples included). At the end of the group p50 / p90 / p99 /
//! p99.9 / max in ns are printed to stderr, one line per peer, and, in bench mode, merged (by
//! peer) into `<criterion dir>/ring_rtt_percentiles.json`, where `<criterion dir>` is the one
//! criterion writes to: `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else
//! `target/criterion`. Ids: `tickwatch_push` (`push` / `pop`), `rtrb`, `array_queue`,
//! `disruptor` (two disruptors, each a `SingleProducer` + `EventPoller`, `publish` / `take(1)`),
//! `crossbeam_channel`, `std_sync_channel` (blocking: every hop parks and wakes a thread).
//!
//! A failed check panics its thread; a panic hook then aborts the process, since the other thread
//! of the pair would otherwise wait for it forever (a broken queue fails CI instead of hanging it).
//!
//! Under `cargo test --benches` (criterion's test mode, no `--bench` argument) each benchmark runs
//! once with [`TEST_ITEMS`] items and [`RTT_WARM`] + 1 round trips, still fully checked, and no
//! JSON is written.
//!
//! Run: `cargo bench --bench ring -- --noplot`. The machine has two cores: anything else running
//! competes with the two spinning threads, so check `uptime` before trusting a run.

mod common;

use common::env_number;
use core_affinity::CoreId;
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode, Throughput,
};
use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;
use disruptor::{
    BusySpin, EventPoller, Polling, ProcessorSettings as _, Producer as _, Sequence,
    SingleConsumerBarrier, SingleProducer, SingleProducerBarrier,
};
use hdrhistogram::Histogram;
use std::hint::{black_box, spin_loop};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Barrier, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tickwatch::ring;

/// Slots in every queue.
const CAPACITY: usize = 4096;
/// Items per staged publish / batched release (and per chunk for the peers that have chunks).
const BATCH: usize = 64;
/// Items per `ring_throughput` iteration in bench mode (`TICKWATCH_BENCH_RING_ITEMS` overrides).
const ITEMS: u64 = 1_000_000;
/// Items per `ring_throughput` iteration under `cargo test --benches`.
const TEST_ITEMS: u64 = 20_000;
/// Untimed round trips at the start of every `ring_rtt` sample (threads just spawned: cold).
const RTT_WARM: u64 = 1_000;
/// Criterion settings: short runs, the machine is small and shared.
const SAMPLE_SIZE: usize = 10;
const WARM_UP: Duration = Duration::from_secs(1);
const MEASUREMENT: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------------------------------------
// Payload

/// The 64-byte item: word 0 is the sequence number, words 1..7 are derived from it.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Msg {
    w: [u64; 8],
}

const _: () = assert!(std::mem::size_of::<Msg>() == 64 && std::mem::align_of::<Msg>() == 64);

impl Msg {
    const ZERO: Msg = Msg { w: [0; 8] };

    #[inline(always)]
    fn new(seq: u64) -> Msg {
        Msg {
            w: [
                seq,
                seq.wrapping_add(1),
                seq.wrapping_add(2),
                seq.wrapping_add(3),
                seq.wrapping_add(4),
                seq.wrapping_add(5),
                seq.wrapping_add(6),
                !seq,
            ],
        }
    }
}

/// Checks that `m` is item `expected` (its first word, the sequence number: order and loss; its
/// last word: a torn or partial copy) and hands the whole 64-byte value to `black_box`, so every
/// byte is read and no read can be optimized away. (Cheaper than a whole-item compare, which on
/// baseline x86-64 has no 64-bit vector compare; and unlike a checksum fold, LLVM cannot turn it
/// into loads that straddle the 16-byte stores of a by-value `pop`'s stack copy, which stall on
/// store forwarding and penalize by-value APIs only.)
#[inline(always)]
fn check(m: &Msg, expected: u64) {
    if m.w[0] != expected || m.w[7] != !expected {
        bad_item(expected, m);
    }
    black_box(*m);
}

#[cold]
#[inline(never)]
fn bad_item(expected: u64, m: &Msg) -> ! {
    panic!("expected item {expected}, got {m:?} (out of order, lost or torn)");
}

// ---------------------------------------------------------------------------------------------
// Cores and waiting

/// Where the two threads go.
struct Cores {
    /// Producer / ping side, and consumer / echo side; `None` when there are not two cores.
    pair: Option<(CoreId, CoreId)>,
    /// Fewer than two cores: spin loops also yield so the other side can run.
    yield_when_waiting: bool,
}

static YIELD_WHEN_WAITING: AtomicBool = AtomicBool::new(false);
static PIN_FAILED: AtomicBool = AtomicBool::new(false);

fn cores() -> &'static Cores {
    static CORES: OnceLock<Cores> = OnceLock::new();
    CORES.get_or_init(|| {
        // A failed check panics one thread of a pair while the other waits for it forever: abort
        // the whole bench instead, so a broken queue fails CI rather than hanging it.
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            report(info);
            std::process::abort();
        }));
        let ids = core_affinity::get_core_ids().unwrap_or_default();
        let c = match ids.as_slice() {
            [a, b, ..] => {
                eprintln!(
                    "ring bench: producer/ping pinned to core {}, consumer/echo to core {}",
                    a.id, b.id
                );
                Cores {
                    pair: Some((*a, *b)),
                    yield_when_waiting: false,
                }
            }
            _ => {
                eprintln!(
                    "ring bench: {} core(s) available: threads unpinned, spin loops yield",
                    ids.len()
                );
                Cores {
                    pair: None,
                    yield_when_waiting: true,
                }
            }
        };
        YIELD_WHEN_WAITING.store(c.yield_when_waiting, Ordering::Relaxed);
        c
    })
}

#[derive(Clone, Copy)]
enum Side {
    /// Producer / ping: the first core.
    A,
    /// Consumer / echo: the second core.
    B,
}

/// Pins the calling thread to its side's core, if there are two; reports a failure once.
fn pin(side: Side) {
    if let Some((a, b)) = cores().pair {
        let core = match side {
            Side::A => a,
            Side::B => b,
        };
        if !core_affinity::set_for_current(core) && !PIN_FAILED.swap(true, Ordering::Relaxed) {
            eprintln!(
                "ring bench: pinning to core {} failed; running unpinned",
                core.id
            );
        }
    }
}

/// One turn of a wait loop.
#[inline(always)]
fn spin() {
    spin_loop();
    if YIELD_WHEN_WAITING.load(Ordering::Relaxed) {
        thread::yield_now();
    }
}

// ---------------------------------------------------------------------------------------------
// One-item ends, so the single-item throughput loop and the round trip are written once.

/// Sends one item, waiting (spinning or blocking, per peer) while the queue is full.
trait Tx: Send {
    fn send(&mut self, m: Msg);
}

/// Receives one item, waiting (spinning or blocking, per peer) while the queue is empty.
trait Rx: Send {
    fn recv(&mut self) -> Msg;
}

impl Tx for ring::Producer<Msg> {
    #[inline(always)]
    fn send(&mut self, mut m: Msg) {
        while let Err(back) = self.push(m) {
            m = back;
            spin();
        }
    }
}

impl Rx for ring::Consumer<Msg> {
    #[inline(always)]
    fn recv(&mut self) -> Msg {
        loop {
            if let Some(m) = self.pop() {
                return m;
            }
            spin();
        }
    }
}

impl Tx for rtrb::Producer<Msg> {
    #[inline(always)]
    fn send(&mut self, mut m: Msg) {
        while let Err(rtrb::PushError::Full(back)) = self.push(m) {
            m = back;
            spin();
        }
    }
}

impl Rx for rtrb::Consumer<Msg> {
    #[inline(always)]
    fn recv(&mut self) -> Msg {
        loop {
            if let Ok(m) = self.pop() {
                return m;
            }
            spin();
        }
    }
}

/// One end of a shared `ArrayQueue` (both ends are `&ArrayQueue`).
struct Aq<'a>(&'a ArrayQueue<Msg>);

impl Tx for Aq<'_> {
    #[inline(always)]
    fn send(&mut self, mut m: Msg) {
        while let Err(back) = self.0.push(m) {
            m = back;
            spin();
        }
    }
}

impl Rx for Aq<'_> {
    #[inline(always)]
    fn recv(&mut self) -> Msg {
        loop {
            if let Some(m) = self.0.pop() {
                return m;
            }
            spin();
        }
    }
}

/// The producer of a single-producer disruptor whose only consumer is an [`EventPoller`].
type DisruptorTx = SingleProducer<Msg, SingleConsumerBarrier>;
/// That disruptor's poller.
type DisruptorRx = EventPoller<Msg, SingleProducerBarrier>;

/// A single-producer disruptor of [`CAPACITY`] events, `BusySpin` wait strategy, read through an
/// [`EventPoller`] (the wait strategy only governs managed processor threads, of which this has
/// none: our loop spins on `Polling::NoEvents` instead).
fn disruptor_pair() -> (DisruptorTx, DisruptorRx) {
    let (poller, builder) =
        disruptor::build_single_producer(CAPACITY, || Msg::ZERO, BusySpin).new_event_poller();
    (builder.build(), poller)
}

impl Tx for DisruptorTx {
    #[inline(always)]
    fn send(&mut self, m: Msg) {
        // Spins (inside the library) while the ring is full.
        self.publish(|e| *e = m);
    }
}

impl Rx for DisruptorRx {
    #[inline(always)]
    fn recv(&mut self) -> Msg {
        loop {
            match self.take(1) {
                Ok(mut events) => {
                    if let Some(m) = (&mut events).next() {
                        return *m;
                    }
                }
                Err(Polling::NoEvents) => spin(),
                Err(Polling::Shutdown) => panic!("disruptor shut down mid-benchmark"),
            }
        }
    }
}

impl Tx for crossbeam_channel::Sender<Msg> {
    #[inline(always)]
    fn send(&mut self, m: Msg) {
        crossbeam_channel::Sender::send(self, m).expect("crossbeam receiver gone");
    }
}

impl Rx for crossbeam_channel::Receiver<Msg> {
    #[inline(always)]
    fn recv(&mut self) -> Msg {
        crossbeam_channel::Receiver::recv(self).expect("crossbeam sender gone")
    }
}

impl Tx for mpsc::SyncSender<Msg> {
    #[inline(always)]
    fn send(&mut self, m: Msg) {
        mpsc::SyncSender::send(self, m).expect("std receiver gone");
    }
}

impl Rx for mpsc::Receiver<Msg> {
    #[inline(always)]
    fn recv(&mut self) -> Msg {
        mpsc::Receiver::recv(self).expect("std sender gone")
    }
}

/// Each end in its own cache-line pair. The ends stay in the benchmark's frame between samples
/// and the threads only borrow them; both sides' private state (cached indices, written on every
/// push / pop) would otherwise sit side by side and false-share.
fn padded<T, R>((tx, rx): (T, R)) -> (CachePadded<T>, CachePadded<R>) {
    (CachePadded::new(tx), CachePadded::new(rx))
}

// ---------------------------------------------------------------------------------------------
// Throughput

fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Runs `produce` on core A and `consume` on core B (fresh scoped threads, pinned, released
/// together by a barrier) and returns the time from the producer's start to the consumer's end.
fn timed_pair(produce: impl FnOnce() + Send, consume: impl FnOnce() + Send) -> Duration {
    let barrier = Barrier::new(2);
    thread::scope(|s| {
        let p = s.spawn(|| {
            pin(Side::A);
            barrier.wait();
            let start = Instant::now();
            produce();
            start
        });
        let c = s.spawn(|| {
            pin(Side::B);
            barrier.wait();
            consume();
            Instant::now()
        });
        let start = p.join().expect("producer panicked");
        let end = c.join().expect("consumer panicked");
        end.saturating_duration_since(start)
    })
}

/// Sends items `0..total` one at a time.
#[inline(always)]
fn produce_single<T: Tx>(tx: &mut T, total: u64) {
    for seq in 0..total {
        tx.send(Msg::new(seq));
    }
}

/// Receives and checks items `0..total` one at a time.
#[inline(always)]
fn consume_single<R: Rx>(rx: &mut R, total: u64) {
    for seq in 0..total {
        check(&rx.recv(), seq);
    }
}

/// One throughput benchmark over one long-lived queue: each iteration batch runs `produce` on
/// the pinned producer thread and `consume` on the pinned consumer thread for `iters * n` items.
fn pair<T: Send, R: Send>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    n: u64,
    ends: (T, R),
    produce: fn(&mut T, u64),
    consume: fn(&mut R, u64),
) {
    let (mut tx, mut rx) = padded(ends);
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let total = iters * n;
            let (tx, rx) = (&mut *tx, &mut *rx);
            timed_pair(move || produce(tx, total), move || consume(rx, total))
        })
    });
}

/// A single-item throughput benchmark over one long-lived queue.
fn single<T: Tx, R: Rx>(g: &mut BenchmarkGroup<'_, WallTime>, id: &str, n: u64, ends: (T, R)) {
    pair(g, id, n, ends, produce_single::<T>, consume_single::<R>);
}

fn throughput(c: &mut Criterion) {
    let n = if bench_mode() {
        env_number("TICKWATCH_BENCH_RING_ITEMS").unwrap_or(ITEMS)
    } else {
        TEST_ITEMS
    };
    cores();
    let mut g = c.benchmark_group("ring_throughput");
    g.throughput(Throughput::Elements(n))
        .sample_size(SAMPLE_SIZE)
        .warm_up_time(WARM_UP)
        .measurement_time(MEASUREMENT)
        // Each iteration takes milliseconds: equal iteration counts per sample, not a ramp.
        .sampling_mode(SamplingMode::Flat);

    single(&mut g, "tickwatch_push", n, ring::ring::<Msg>(CAPACITY));
    tickwatch_batch(&mut g, n);
    tickwatch_slice(&mut g, n);
    tickwatch_chunk(&mut g, n);
    single(&mut g, "rtrb", n, rtrb::RingBuffer::<Msg>::new(CAPACITY));
    rtrb_chunk(&mut g, n);
    {
        let q = ArrayQueue::<Msg>::new(CAPACITY);
        single(&mut g, "array_queue", n, (Aq(&q), Aq(&q)));
    }
    single(&mut g, "disruptor", n, disruptor_pair());
    disruptor_batch(&mut g, n);
    disruptor_handler(&mut g, n);
    single(
        &mut g,
        "crossbeam_channel",
        n,
        crossbeam_channel::bounded::<Msg>(CAPACITY),
    );
    single(
        &mut g,
        "std_sync_channel",
        n,
        mpsc::sync_channel::<Msg>(CAPACITY),
    );
    g.finish();
}

/// The batched producer of `tickwatch_batch` and `tickwatch_chunk`: `stage` up to [`BATCH`]
/// items, then one `publish`.
fn stage_in_batches(tx: &mut ring::Producer<Msg>, total: u64) {
    let mut seq = 0;
    while seq < total {
        let end = (seq + BATCH as u64).min(total);
        let start = seq;
        while seq < end && tx.stage(Msg::new(seq)).is_ok() {
            seq += 1;
        }
        tx.publish();
        if seq == start {
            spin();
        }
    }
}

/// `stage` up to [`BATCH`] items then `publish` once; `take` up to [`BATCH`] then `release` once.
fn tickwatch_batch(g: &mut BenchmarkGroup<'_, WallTime>, n: u64) {
    pair(
        g,
        "tickwatch_batch",
        n,
        ring::ring::<Msg>(CAPACITY),
        stage_in_batches,
        tickwatch_batch_consume,
    );
}

fn tickwatch_batch_consume(rx: &mut ring::Consumer<Msg>, total: u64) {
    let mut seq = 0;
    while seq < total {
        let end = seq + BATCH as u64;
        let start = seq;
        while seq < end {
            match rx.take() {
                Some(m) => {
                    check(&m, seq);
                    seq += 1;
                }
                None => break,
            }
        }
        rx.release();
        if seq == start {
            spin();
        }
    }
}

/// `push_slice` / `pop_slice` through 64-item buffers.
fn tickwatch_slice(g: &mut BenchmarkGroup<'_, WallTime>, n: u64) {
    pair(
        g,
        "tickwatch_slice",
        n,
        ring::ring::<Msg>(CAPACITY),
        tickwatch_slice_produce,
        tickwatch_slice_consume,
    );
}

fn tickwatch_slice_produce(tx: &mut ring::Producer<Msg>, total: u64) {
    let mut buf = [Msg::ZERO; BATCH];
    let mut seq = 0;
    while seq < total {
        let k = (total - seq).min(BATCH as u64) as usize;
        for (i, slot) in buf[..k].iter_mut().enumerate() {
            *slot = Msg::new(seq + i as u64);
        }
        match tx.push_slice(&buf[..k]) {
            0 => spin(),
            pushed => seq += pushed as u64,
        }
    }
}

fn tickwatch_slice_consume(rx: &mut ring::Consumer<Msg>, total: u64) {
    let mut buf = [Msg::ZERO; BATCH];
    let mut seq = 0;
    while seq < total {
        match rx.pop_slice(&mut buf) {
            0 => spin(),
            got => {
                for m in &buf[..got] {
                    check(m, seq);
                    seq += 1;
                }
            }
        }
    }
}

/// `stage` up to [`BATCH`] then `publish`; `read_slices(≤ 64)` in place, `advance` + `release`.
fn tickwatch_chunk(g: &mut BenchmarkGroup<'_, WallTime>, n: u64) {
    pair(
        g,
        "tickwatch_chunk",
        n,
        ring::ring::<Msg>(CAPACITY),
        stage_in_batches,
        tickwatch_chunk_consume,
    );
}

fn tickwatch_chunk_consume(rx: &mut ring::Consumer<Msg>, total: u64) {
    let mut seq = 0;
    while seq < total {
        let (a, b) = rx.read_slices(BATCH);
        let got = a.len() + b.len();
        for m in a.iter().chain(b) {
            check(m, seq);
            seq += 1;
        }
        if got == 0 {
            spin();
        } else {
            rx.advance(got);
            rx.release();
        }
    }
}

/// `write_chunk_uninit(≤ 64)` + `fill_from_iter`; `read_chunk(≤ 64)` + `commit_all`.
fn rtrb_chunk(g: &mut BenchmarkGroup<'_, WallTime>, n: u64) {
    pair(
        g,
        "rtrb_chunk",
        n,
        rtrb::RingBuffer::<Msg>::new(CAPACITY),
        rtrb_chunk_produce,
        rtrb_chunk_consume,
    );
}

fn rtrb_chunk_produce(tx: &mut rtrb::Producer<Msg>, total: u64) {
    let mut seq = 0;
    while seq < total {
        let want = (total - seq).min(BATCH as u64) as usize;
        let chunk = match tx.write_chunk_uninit(want) {
            Ok(c) => c,
            Err(rtrb::chunks::ChunkError::TooFewSlots(0)) => {
                spin();
                continue;
            }
            Err(rtrb::chunks::ChunkError::TooFewSlots(k)) => {
                tx.write_chunk_uninit(k).expect("slots only grow")
            }
        };
        let k = chunk.len() as u64;
        let filled = chunk.fill_from_iter((seq..seq + k).map(Msg::new));
        seq += filled as u64;
    }
}

fn rtrb_chunk_consume(rx: &mut rtrb::Consumer<Msg>, total: u64) {
    let mut seq = 0;
    while seq < total {
        let chunk = match rx.read_chunk(BATCH) {
            Ok(c) => c,
            Err(rtrb::chunks::ChunkError::TooFewSlots(0)) => {
                spin();
                continue;
            }
            Err(rtrb::chunks::ChunkError::TooFewSlots(k)) => {
                rx.read_chunk(k).expect("items only grow")
            }
        };
        let (first, second) = chunk.as_slices();
        for m in first.iter().chain(second) {
            check(m, seq);
            seq += 1;
        }
        chunk.commit_all();
    }
}

/// `batch_publish(≤ 64)` / `EventPoller::take(64)`.
fn disruptor_batch(g: &mut BenchmarkGroup<'_, WallTime>, n: u64) {
    pair(
        g,
        "disruptor_batch",
        n,
        disruptor_pair(),
        disruptor_batch_produce,
        disruptor_batch_consume,
    );
}

fn disruptor_batch_produce(tx: &mut DisruptorTx, total: u64) {
    let mut seq = 0;
    while seq < total {
        let k = (total - seq).min(BATCH as u64);
        // Spins (inside the library) until k slots are free.
        tx.batch_publish(k as usize, |events| {
            for (i, e) in events.enumerate() {
                *e = Msg::new(seq + i as u64);
            }
        });
        seq += k;
    }
}

fn disruptor_batch_consume(rx: &mut DisruptorRx, total: u64) {
    let mut seq = 0;
    while seq < total {
        match rx.take(BATCH as u64) {
            Ok(mut events) => {
                for m in &mut events {
                    check(m, seq);
                    seq += 1;
                }
            }
            Err(Polling::NoEvents) => spin(),
            Err(Polling::Shutdown) => panic!("disruptor shut down mid-benchmark"),
        }
    }
}

/// The library's own processor thread (pinned to core B, `BusySpin`) checks the events; our
/// producer on core A publishes one at a time and the timing stops when it sees the processor's
/// progress reach the last item.
fn disruptor_handler(g: &mut BenchmarkGroup<'_, WallTime>, n: u64) {
    // The processor's count of checked events.
    let progress = Arc::new(CachePadded::new(AtomicU64::new(0)));
    let seen = Arc::clone(&progress);
    let mut expected = 0u64;
    let handler = move |m: &Msg, _seq: Sequence, end_of_batch: bool| {
        // A bad item panics the processor thread, which the panic hook turns into an abort.
        check(m, expected);
        expected += 1;
        if end_of_batch {
            seen.store(expected, Ordering::Release);
        }
    };
    let builder = disruptor::build_single_producer(CAPACITY, || Msg::ZERO, BusySpin);
    let mut tx = CachePadded::new(match cores().pair {
        Some((_, b)) => builder
            .pin_at_core(b.id)
            .handle_events_with(handler)
            .build(),
        None => builder.handle_events_with(handler).build(),
    });
    // Items published so far (the processor's sequence never restarts).
    let mut next = 0u64;
    g.bench_function("disruptor_handler", |b| {
        b.iter_custom(|iters| {
            let total = iters * n;
            let first = next;
            next += total;
            let (tx, progress) = (&mut *tx, &progress);
            thread::scope(|s| {
                s.spawn(move || {
                    pin(Side::A);
                    let start = Instant::now();
                    for seq in first..first + total {
                        tx.publish(|e| *e = Msg::new(seq));
                    }
                    loop {
                        if progress.load(Ordering::Acquire) >= first + total {
                            break;
                        }
                        spin();
                    }
                    start.elapsed()
                })
                .join()
                .expect("producer panicked")
            })
        })
    });
    // Dropping the producer shuts the processor down and joins its thread.
    drop(tx);
}

// ---------------------------------------------------------------------------------------------
// Round trip

/// Round-trip times of one peer, in ns.
struct Rtt {
    id: &'static str,
    hist: Histogram<u64>,
}

/// Times `iters` round trips (after [`RTT_WARM`] untimed ones) between a pinned ping thread on
/// core A (sends on `ping_tx`, receives on `pong_rx`) and a pinned echo thread on core B (receives
/// on `ping_rx`, sends back on `pong_tx`); records each into `hist` and returns their sum.
fn round_trips<T: Tx, R: Rx>(
    iters: u64,
    (ping_tx, ping_rx): (&mut T, &mut R),
    (pong_tx, pong_rx): (&mut T, &mut R),
    hist: &mut Histogram<u64>,
) -> Duration {
    let rounds = RTT_WARM + iters;
    let barrier = Barrier::new(2);
    let (total, times) = thread::scope(|s| {
        s.spawn(|| {
            pin(Side::B);
            barrier.wait();
            for seq in 0..rounds {
                let m = ping_rx.recv();
                check(&m, seq);
                pong_tx.send(m);
            }
        });
        let pinger = s.spawn(|| {
            pin(Side::A);
            barrier.wait();
            for seq in 0..RTT_WARM {
                ping_tx.send(Msg::new(seq));
                check(&pong_rx.recv(), seq);
            }
            // Allocated here, on the ping thread: nothing it writes shares a line with the echo side.
            let mut times = Vec::with_capacity(iters as usize);
            let start = Instant::now();
            let mut prev = start;
            for seq in RTT_WARM..rounds {
                ping_tx.send(Msg::new(seq));
                check(&pong_rx.recv(), seq);
                let now = Instant::now();
                times.push((now - prev).as_nanos() as u64);
                prev = now;
            }
            (prev - start, times)
        });
        pinger.join().expect("ping thread panicked")
    });
    for t in times {
        hist.saturating_record(t.max(1));
    }
    total
}

/// A round-trip benchmark over two long-lived queues of one peer.
fn rtt<T: Tx, R: Rx>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    out: &mut Vec<Rtt>,
    id: &'static str,
    ping: (T, R),
    pong: (T, R),
) {
    let (mut ping_tx, mut ping_rx) = padded(ping);
    let (mut pong_tx, mut pong_rx) = padded(pong);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram");
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            round_trips(
                iters,
                (&mut *ping_tx, &mut *ping_rx),
                (&mut *pong_tx, &mut *pong_rx),
                &mut hist,
            )
        })
    });
    if !hist.is_empty() {
        out.push(Rtt { id, hist });
    }
}

fn round_trip(c: &mut Criterion) {
    cores();
    let mut out = Vec::new();
    let mut g = c.benchmark_group("ring_rtt");
    g.sample_size(SAMPLE_SIZE)
        .warm_up_time(WARM_UP)
        .measurement_time(MEASUREMENT);
    rtt(
        &mut g,
        &mut out,
        "tickwatch_push",
        ring::ring::<Msg>(CAPACITY),
        ring::ring::<Msg>(CAPACITY),
    );
    rtt(
        &mut g,
        &mut out,
        "rtrb",
        rtrb::RingBuffer::<Msg>::new(CAPACITY),
        rtrb::RingBuffer::<Msg>::new(CAPACITY),
    );
    {
        let (ping, pong) = (ArrayQueue::new(CAPACITY), ArrayQueue::new(CAPACITY));
        rtt(
            &mut g,
            &mut out,
            "array_queue",
            (Aq(&ping), Aq(&ping)),
            (Aq(&pong), Aq(&pong)),
        );
    }
    rtt(
        &mut g,
        &mut out,
        "disruptor",
        disruptor_pair(),
        disruptor_pair(),
    );
    rtt(
        &mut g,
        &mut out,
        "crossbeam_channel",
        crossbeam_channel::bounded::<Msg>(CAPACITY),
        crossbeam_channel::bounded::<Msg>(CAPACITY),
    );
    rtt(
        &mut g,
        &mut out,
        "std_sync_channel",
        mpsc::sync_channel::<Msg>(CAPACITY),
        mpsc::sync_channel::<Msg>(CAPACITY),
    );
    g.finish();
    report_rtt(&out);
}

/// Prints one line of percentiles per peer and, in bench mode, merges them into the JSON file.
fn report_rtt(out: &[Rtt]) {
    let pct = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q);
    for r in out {
        let h = &r.hist;
        eprintln!(
            "ring_rtt/{:<18} n={:<9} p50={:>7} p90={:>7} p99={:>7} p99.9={:>8} max={:>9} ns",
            r.id,
            h.len(),
            pct(h, 0.50),
            pct(h, 0.90),
            pct(h, 0.99),
            pct(h, 0.999),
            h.max()
        );
    }
    if !bench_mode() || out.is_empty() {
        return;
    }
    let dir = criterion_dir();
    let path = dir.join("ring_rtt_percentiles.json");
    // Keep peers this run did not measure (a filtered run), replace the ones it did.
    let mut doc: serde_json::Value = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::json!({}));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    doc["unit"] = "ns".into();
    doc["what"] = "one 64-byte item bouncing core 0 -> core 1 -> core 0 through two queues \
                   (benches/ring.rs, group ring_rtt)"
        .into();
    doc["capacity"] = CAPACITY.into();
    doc["pinned"] = cores()
        .pair
        .map_or("unpinned".to_string(), |(a, b)| {
            format!("{}/{}", a.id, b.id)
        })
        .into();
    if !doc["peers"].is_object() {
        doc["peers"] = serde_json::json!({});
    }
    for r in out {
        let h = &r.hist;
        doc["peers"][r.id] = serde_json::json!({
            "round_trips": h.len(),
            "mean": h.mean(),
            "p50": pct(h, 0.50),
            "p90": pct(h, 0.90),
            "p99": pct(h, 0.99),
            "p99_9": pct(h, 0.999),
            "max": h.max(),
            "unix_time": now,
        });
    }
    let text = serde_json::to_string_pretty(&doc).expect("json") + "\n";
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, text)) {
        Ok(()) => eprintln!("ring_rtt: percentiles written to {}", path.display()),
        Err(e) => eprintln!("ring_rtt: could not write {}: {e}", path.display()),
    }
}

/// Where criterion writes its reports (the same rule criterion uses).
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        PathBuf::from(home)
    } else if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        PathBuf::from(target).join("criterion")
    } else {
        PathBuf::from("target").join("criterion")
    }
}

criterion_group!(benches, throughput, round_trip);
criterion_main!(benches);
