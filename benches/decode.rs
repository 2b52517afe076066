//! Whole-file decode throughput: tickwatch's decoder against the memory-bound floor (the
//! length-prefix walks), its own two-thread split, and the `itchy` crate over the same bytes.
//!
//! One criterion group per input, with the same benchmark ids in each so reports line up:
//! - `decode_sample`: the real NASDAQ snippet `../shared/data/12302019_SNIPPET.NASDAQ_ITCH50`
//!   (1,000 messages, 35 KB: cache-resident).
//! - `decode_gen_<N>_<S>sym`: a synthetic day from [`tickwatch::gen`], N = 1,000,000 messages over
//!   S = 500 stocks by default. `TICKWATCH_BENCH_MESSAGES` overrides N (S becomes 8,000 from
//!   10,000,000 messages up, as in PERF.md) and `TICKWATCH_BENCH_SYMBOLS` overrides S:
//!   `TICKWATCH_BENCH_MESSAGES=10000000 cargo bench --bench decode`. The file is written once
//!   under `target/bench-data/` (delete it to regenerate) and memory-mapped, pre-faulted.
//!
//! Ids: `base` (the harness: a black-boxed slice length), `naive_walk`, `prefetch_walk`,
//! `tickwatch_decode` (decode + fold of every field), `tickwatch_par_decode_2` (the same on two
//! threads) and `itchy` (`itchy::MessageStream` folding the header and the main body fields).
//! Throughput is in messages. Inputs are built and cross-checked (every kernel must count the same
//! messages) outside the timed closures.
//!
//! Under `cargo test --benches` criterion runs each bench once; the generated input is then
//! 50,000 messages so CI stays fast.

mod common;

use common::{count_label, generated_input};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;
use tickwatch::bench::{
    decode_fold, decode_fold_by_type, naive_walk, par_decode_fold, prefetch_walk, Walked,
};
use tickwatch::feed::{MapOptions, MappedFile};

/// The real sample, relative to the crate root.
const SAMPLE: &str = "../shared/data/12302019_SNIPPET.NASDAQ_ITCH50";
/// Threads for the parallel decode.
const PAR_THREADS: usize = 2;
/// Criterion settings: short runs, the machine is small and shared.
const SAMPLE_SIZE: usize = 10;
const WARM_UP: Duration = Duration::from_secs(1);
const MEASUREMENT: Duration = Duration::from_secs(3);

fn main_benches(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sample = MappedFile::open(&root.join(SAMPLE), MapOptions::default())
        .unwrap_or_else(|e| panic!("{SAMPLE}: {e}"));
    // par_decode_fold only splits inputs of at least 1 MiB: on this 35 KB sample it runs serially
    // on the calling thread, so `tickwatch_par_decode_2` here measures the serial decode plus the
    // split's bookkeeping.
    decode_group(c, "decode_sample", sample.bytes(), false);

    let (cfg, generated) = generated_input(root);
    let name = format!(
        "decode_gen_{}_{}sym",
        count_label(cfg.messages),
        cfg.symbols
    );
    decode_group(c, &name, generated.bytes(), true);
}

/// One group of every kernel over `buf`.
fn decode_group(c: &mut Criterion, name: &str, buf: &[u8], large: bool) {
    let reference =
        decode_fold(buf).unwrap_or_else(|e| panic!("{name}: tickwatch decode failed: {e}"));
    let itchy = itchy_fold(buf);
    assert_eq!(
        itchy.messages, reference.messages,
        "{name}: itchy and tickwatch count different messages"
    );
    assert_eq!(
        naive_walk(buf).messages,
        reference.messages,
        "{name}: the length-prefix walk disagrees"
    );
    assert_eq!(
        prefetch_walk(buf).messages,
        reference.messages,
        "{name}: the prefetching walk disagrees"
    );
    assert_eq!(
        decode_fold_by_type(buf).expect("type-batched decode"),
        reference,
        "{name}: the type-batched decode disagrees with the in-order one"
    );
    let par = par_decode_fold(buf, PAR_THREADS)
        .unwrap_or_else(|e| panic!("{name}: parallel decode failed: {e}"));
    assert_eq!(
        par, reference,
        "{name}: the parallel decode disagrees with the serial one"
    );

    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(reference.messages))
        .sample_size(SAMPLE_SIZE)
        .warm_up_time(WARM_UP)
        .measurement_time(MEASUREMENT);
    if large {
        // Each iteration takes milliseconds: equal iteration counts per sample, not a ramp.
        g.sampling_mode(SamplingMode::Flat);
    }
    g.bench_function("base", |b| b.iter(|| black_box(buf).len()));
    g.bench_function("naive_walk", |b| b.iter(|| naive_walk(black_box(buf))));
    g.bench_function("prefetch_walk", |b| {
        b.iter(|| prefetch_walk(black_box(buf)))
    });
    g.bench_function("tickwatch_decode", |b| {
        b.iter(|| decode_fold(black_box(buf)).expect("decode"))
    });
    g.bench_function("tickwatch_decode_by_type", |b| {
        b.iter(|| decode_fold_by_type(black_box(buf)).expect("decode"))
    });
    g.bench_function("tickwatch_par_decode_2", |b| {
        b.iter(|| par_decode_fold(black_box(buf), PAR_THREADS).expect("parallel decode"))
    });
    g.bench_function("itchy", |b| b.iter(|| itchy_fold(black_box(buf))));
    g.finish();
}

/// Parses `buf` with `itchy` (it copies through its own 8 KiB buffer; that is its design) and
/// folds each message into a checksum, so no parse can be skipped.
fn itchy_fold(buf: &[u8]) -> Walked {
    let mut w = Walked::default();
    for m in itchy::MessageStream::from_reader(buf) {
        let m = m.unwrap_or_else(|e| panic!("itchy failed after {} messages: {e}", w.messages));
        w.messages += 1;
        w.checksum = w.checksum.wrapping_add(fold_itchy(&m));
    }
    w
}

#[inline(always)]
fn mix(acc: u64, v: u64) -> u64 {
    acc.rotate_left(5) ^ v
}

/// The first 8 bytes of an itchy symbol (it keeps the space padding).
#[inline(always)]
fn sym(s: &str) -> u64 {
    let mut b = [b' '; 8];
    let n = s.len().min(8);
    b[..n].copy_from_slice(&s.as_bytes()[..n]);
    u64::from_ne_bytes(b)
}

/// Header and main body fields of an itchy message, as [`tickwatch::bench::fold`] does for ours.
fn fold_itchy(m: &itchy::Message) -> u64 {
    use itchy::Body;
    let mut a = mix(m.tag as u64, m.stock_locate as u64);
    a = mix(a, m.tracking_number as u64);
    a = mix(a, m.timestamp);
    match &m.body {
        Body::AddOrder(x) => {
            let a = mix(
                mix(a, x.reference),
                (x.side as u64) ^ ((x.shares as u64) << 8),
            );
            let a = mix(mix(a, sym(&x.stock)), x.price.raw() as u64);
            match &x.mpid {
                Some(p) => mix(a, sym(p)),
                None => a,
            }
        }
        Body::Breach(l) => mix(a, *l as u64),
        Body::BrokenTrade { match_number } => mix(a, *match_number),
        Body::CrossTrade(x) => {
            let a = mix(
                mix(mix(a, x.shares), sym(&x.stock)),
                x.cross_price.raw() as u64,
            );
            mix(mix(a, x.match_number), x.cross_type as u64)
        }
        Body::DeleteOrder { reference } => mix(a, *reference),
        Body::Imbalance(x) => {
            let a = mix(
                mix(mix(a, x.paired_shares), x.imbalance_shares),
                x.imbalance_direction as u64,
            );
            let a = mix(
                mix(mix(a, sym(&x.stock)), x.far_price.raw() as u64),
                x.near_price.raw() as u64,
            );
            let a = mix(a, x.current_ref_price.raw() as u64);
            mix(
                a,
                (x.cross_type as u64) ^ ((x.price_variation_indicator as u64) << 8),
            )
        }
        Body::IpoQuotingPeriod(x) => {
            let a = mix(mix(a, sym(&x.stock)), x.release_time as u64);
            mix(
                a,
                (x.release_qualifier as u64) ^ ((x.price.raw() as u64) << 8),
            )
        }
        Body::LULDAuctionCollar {
            stock,
            ref_price,
            upper_price,
            lower_price,
            extension,
        } => {
            let a = mix(mix(a, sym(stock)), ref_price.raw() as u64);
            mix(
                mix(mix(a, upper_price.raw() as u64), lower_price.raw() as u64),
                *extension as u64,
            )
        }
        Body::MwcbDeclineLevel {
            level1,
            level2,
            level3,
        } => mix(mix(mix(a, level1.raw()), level2.raw()), level3.raw()),
        Body::NonCrossTrade(x) => {
            let a = mix(
                mix(a, x.reference),
                (x.side as u64) ^ ((x.shares as u64) << 8),
            );
            mix(
                mix(mix(a, sym(&x.stock)), x.price.raw() as u64),
                x.match_number,
            )
        }
        Body::OrderCancelled {
            reference,
            cancelled,
        } => mix(mix(a, *reference), *cancelled as u64),
        Body::OrderExecuted {
            reference,
            executed,
            match_number,
        } => mix(mix(mix(a, *reference), *executed as u64), *match_number),
        Body::OrderExecutedWithPrice {
            reference,
            executed,
            match_number,
            printable,
            price,
        } => {
            let a = mix(mix(mix(a, *reference), *executed as u64), *match_number);
            mix(a, (*printable as u64) ^ ((price.raw() as u64) << 8))
        }
        Body::ParticipantPosition(x) => {
            let a = mix(mix(a, sym(&x.mpid)), sym(&x.stock));
            let flags = (x.primary_market_maker as u64)
                ^ ((x.market_maker_mode as u64) << 8)
                ^ ((x.market_participant_state as u64) << 16);
            mix(a, flags)
        }
        Body::RegShoRestriction { stock, action } => mix(mix(a, sym(stock)), *action as u64),
        Body::ReplaceOrder(x) => {
            let a = mix(mix(a, x.old_reference), x.new_reference);
            mix(mix(a, x.shares as u64), x.price.raw() as u64)
        }
        Body::StockDirectory(x) => {
            let a = mix(mix(a, sym(&x.stock)), x.round_lot_size as u64);
            let a = mix(
                a,
                (x.market_category as u64) ^ ((x.financial_status as u64) << 8),
            );
            let a = mix(
                a,
                (x.issue_classification as u64) ^ ((x.issue_subtype as u64) << 8),
            );
            let a = mix(
                a,
                (x.luld_ref_price_tier as u64) ^ ((x.authenticity as u64) << 8),
            );
            mix(
                mix(a, x.etp_leverage_factor as u64),
                x.inverse_indicator as u64,
            )
        }
        Body::SystemEvent { event } => mix(a, *event as u64),
        Body::TradingAction {
            stock,
            trading_state,
            reason,
        } => mix(mix(mix(a, sym(stock)), *trading_state as u64), sym(reason)),
        Body::RetailPriceImprovementIndicator(x) => {
            mix(mix(a, sym(&x.stock)), x.interest_flag as u64)
        }
    }
}

criterion_group!(benches, main_benches);
criterion_main!(benches);
