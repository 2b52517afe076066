//! Decode + full-depth order books: the pipelined replay against the one-message-at-a-time loop,
//! and the per-message cost of single book operations when everything is in cache.
//!
//! - `book_gen_<N>_<S>sym`: a synthetic day from [`tickwatch::gen`] (1,000,000 messages over
//!   500 stocks by default; `TICKWATCH_BENCH_MESSAGES` and `TICKWATCH_BENCH_SYMBOLS` override them
//!   as in `benches/decode.rs`, and the file under `target/bench-data/` is shared with it). Ids:
//!   `base` (the harness), `decode_only` (decode + fold, no book: what the book adds is the
//!   difference), `decode_book` (pipelined, [`tickwatch::replay`]) and `decode_book_unpipelined`.
//!   Throughput is in messages. The books are allocated and faulted in once, outside the timing,
//!   and [`Books::clear`]ed before every iteration, also outside the timing (`iter_custom`).
//! - `book_ops`: one order added to and deleted from a warm book of [`LEVELS`] levels a side, at
//!   the touch (joining the best level), as a new best level, and at the back of the ladder.
//!   Throughput is 2 messages per iteration; the messages are decoded outside the timing.
//!
//! Under `cargo test --benches` criterion runs each bench once; the generated input is then
//! 50,000 messages.

mod common;

use common::{count_label, generated_input};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};
use tickwatch::bench::{decode_book, decode_book_unpipelined, decode_fold};
use tickwatch::book::{BookConfig, Books};
use tickwatch::itch::be::{BeU32, BeU64};
use tickwatch::itch::encode::header;
use tickwatch::itch::{AddOrder, Message, OrderDelete, Side};

/// Criterion settings for the whole-file group: short runs, the machine is small and shared.
const FILE_SAMPLE_SIZE: usize = 10;
const FILE_WARM_UP: Duration = Duration::from_secs(1);
const FILE_MEASUREMENT: Duration = Duration::from_secs(4);
/// Criterion settings for the single-operation group.
const OPS_SAMPLE_SIZE: usize = 20;
const OPS_WARM_UP: Duration = Duration::from_secs(1);
const OPS_MEASUREMENT: Duration = Duration::from_secs(2);

/// Price levels per side of the warm book.
const LEVELS: u32 = 100;
/// Resting orders per level of the warm book.
const ORDERS_PER_LEVEL: u64 = 4;
/// The warm book's stock.
const LOCATE: u16 = 1;
/// Best bid of the warm book, Price(4) ($100.00); levels are a cent apart.
const BEST_BID: u32 = 1_000_000;
const TICK: u32 = 100;
/// Reference of the order the operations add and delete (the warm book uses `1..`).
const OP_REF: u64 = 1 << 40;

fn file_benches(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (cfg, map) = generated_input(root);
    let buf = map.bytes();
    let name = format!("book_gen_{}_{}sym", count_label(cfg.messages), cfg.symbols);

    // Allocate once with room for the generator's live-order cap (twice, as `tickwatch demo`),
    // fault every table in with a first replay, and check both loops agree and skip nothing.
    let mut books = Books::new(BookConfig::for_orders(
        cfg.live_orders as usize * 2,
        cfg.symbols as usize + 1,
    ));
    let messages =
        decode_book(buf, &mut books).unwrap_or_else(|e| panic!("{name}: replay failed: {e}"));
    let (stats, live) = (*books.stats(), books.live_orders());
    assert_eq!(
        stats.skipped(),
        0,
        "{name}: the books skipped messages: {stats:?}"
    );
    books
        .check()
        .unwrap_or_else(|e| panic!("{name}: inconsistent books: {e}"));
    books.clear();
    let unpipelined =
        decode_book_unpipelined(buf, &mut books).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        unpipelined, messages,
        "{name}: the loops count different messages"
    );
    assert_eq!(
        (*books.stats(), books.live_orders()),
        (stats, live),
        "{name}: the loops built different books"
    );
    assert_eq!(
        decode_fold(buf).expect("decode").messages,
        messages,
        "{name}: decode and replay disagree"
    );

    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(messages))
        .sample_size(FILE_SAMPLE_SIZE)
        .warm_up_time(FILE_WARM_UP)
        .measurement_time(FILE_MEASUREMENT)
        .sampling_mode(SamplingMode::Flat);
    g.bench_function("base", |b| b.iter(|| black_box(buf).len()));
    g.bench_function("decode_only", |b| {
        b.iter(|| decode_fold(black_box(buf)).expect("decode"))
    });
    g.bench_function("decode_book", |b| {
        b.iter_custom(|iters| {
            timed_replays(iters, &mut books, |books| {
                decode_book(black_box(buf), books)
            })
        })
    });
    g.bench_function("decode_book_unpipelined", |b| {
        b.iter_custom(|iters| {
            timed_replays(iters, &mut books, |books| {
                decode_book_unpipelined(black_box(buf), books)
            })
        })
    });
    g.finish();
}

/// `iters` replays into cleared books; only the replays are timed.
fn timed_replays<E: std::fmt::Display>(
    iters: u64,
    books: &mut Books,
    mut replay: impl FnMut(&mut Books) -> Result<u64, E>,
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        books.clear();
        let t0 = Instant::now();
        let n = replay(books).unwrap_or_else(|e| panic!("replay failed: {e}"));
        total += t0.elapsed();
        black_box(n);
    }
    total
}

fn add_order(order_ref: u64, side: Side, price: u32, shares: u32) -> AddOrder {
    AddOrder {
        hdr: header(AddOrder::TYPE, LOCATE, 0, 34_200_000_000_000),
        order_ref: BeU64::new(order_ref),
        side: side.as_byte(),
        shares: BeU32::new(shares),
        stock: *b"BENCH   ",
        price: BeU32::new(price),
    }
}

fn delete_order(order_ref: u64) -> OrderDelete {
    OrderDelete {
        hdr: header(OrderDelete::TYPE, LOCATE, 0, 34_200_000_000_001),
        order_ref: BeU64::new(order_ref),
    }
}

/// A book with [`LEVELS`] levels a side on [`LOCATE`], [`ORDERS_PER_LEVEL`] orders each.
fn warm_book() -> Books {
    let mut books = Books::new(BookConfig::small());
    let mut order_ref = 1;
    for level in 0..LEVELS {
        for _ in 0..ORDERS_PER_LEVEL {
            let bid = add_order(order_ref, Side::Buy, BEST_BID - level * TICK, 100);
            let ask = add_order(
                order_ref + 1,
                Side::Sell,
                BEST_BID + (level + 1) * TICK,
                100,
            );
            books.apply(&Message::AddOrder(&bid));
            books.apply(&Message::AddOrder(&ask));
            order_ref += 2;
        }
    }
    books
}

fn ops_benches(c: &mut Criterion) {
    let mut books = warm_book();
    let before = (
        books.live_orders(),
        books.best(LOCATE, Side::Buy),
        books.depth(LOCATE, Side::Buy).count(),
    );
    assert_eq!(before.0 as u64, 2 * LEVELS as u64 * ORDERS_PER_LEVEL);
    assert_eq!(before.2, LEVELS as usize);
    let del = delete_order(OP_REF);
    let del = Message::OrderDelete(&del);
    let cases = [
        // Joins the best bid level: find at the touch, no level insert or removal.
        ("add_delete_at_touch", BEST_BID),
        // Improves the bid by half a tick: a new level at the touch, removed by the delete.
        ("add_delete_new_level", BEST_BID + TICK / 2),
        // Joins the worst bid level, LEVELS - 1 levels behind the touch (the binary search).
        ("add_delete_deep", BEST_BID - (LEVELS - 1) * TICK),
    ];

    let mut g = c.benchmark_group("book_ops");
    g.throughput(Throughput::Elements(2))
        .sample_size(OPS_SAMPLE_SIZE)
        .warm_up_time(OPS_WARM_UP)
        .measurement_time(OPS_MEASUREMENT);
    let add = add_order(OP_REF, Side::Buy, BEST_BID, 100);
    let add = Message::AddOrder(&add);
    g.bench_function("base", |b| {
        b.iter(|| {
            black_box(&add);
            black_box(&del);
        })
    });
    for (id, price) in cases {
        let add = add_order(OP_REF, Side::Buy, price, 100);
        let add = Message::AddOrder(&add);
        let stats = *books.stats();
        g.bench_function(id, |b| {
            b.iter(|| {
                books.apply(black_box(&add));
                books.apply(black_box(&del));
            })
        });
        // Every add found its level and every delete its order; the book is as it was.
        let after = *books.stats();
        assert_eq!(
            after.adds - stats.adds,
            after.deletes - stats.deletes,
            "{id}: adds and deletes differ"
        );
        assert_eq!(
            after.skipped(),
            0,
            "{id}: the book skipped messages: {after:?}"
        );
        let now = (
            books.live_orders(),
            books.best(LOCATE, Side::Buy),
            books.depth(LOCATE, Side::Buy).count(),
        );
        assert_eq!(now, before, "{id}: the book changed");
    }
    g.finish();
}

criterion_group!(benches, file_benches, ops_benches);
criterion_main!(benches);
