//! Cost of writing one alert as a JSON line ([`Alert::write_json`]), the output stage's part of
//! event-to-alert latency.
//!
//! The alert is a layering alert shaped like one of the generated day's (`q7`: eight evidence
//! metrics, three order refs, a two-sided touch). Two ids:
//! - `write_json/warm`: the same alert formatted again and again into a cleared buffer — the
//!   cost when alerts come in a burst.
//! - `write_json/cold`: before each formatting, 32 MiB are written (outside the timing) to push
//!   the formatting code and data out of the caches — the cost for a lone alert in a paced
//!   replay, when the output thread has spent the milliseconds since the last alert polling.
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use std::hint::black_box;
use tickwatch::agg::Touch;
use tickwatch::surv::{Alert, DetectorId, Severity};

fn layering_alert() -> Alert {
    let mut party = [b' '; 12];
    party[..4].copy_from_slice(b"NITE");
    Alert::new(
        DetectorId::Layering,
        34_226_003_643_358,
        140_319,
        17,
        *b"BAI     ",
    )
    .party(party)
    .severity(Severity::High)
    .since(31_899_428_002_722)
    .order_ref(10_056)
    .order_ref(115_088)
    .order_ref(115_138)
    .evidence("levels_held", 4.0, ">=", 3.0)
    .evidence("min_level_share_ratio", 0.383_239_652_529_381_7, ">=", 0.2)
    .evidence("layer_shares", 72_200.0, ">=", 5_000.0)
    .evidence("exec_shares", 500.0, ">=", 1.0)
    .evidence("cancelled_layers", 2.0, ">=", 2.0)
    .evidence("cancel_after_exec_ns", 301_260_704.0, "<=", 2e9)
    .evidence("move_bps", 0.699_790_062_981_105_7, ">=", -10_000.0)
    .evidence("reversion_bps", 0.0, ">=", -10_000.0)
    .touch(Touch {
        bid: 714_400,
        bid_shares: 21_812,
        ask: 714_500,
        ask_shares: 3_900,
    })
}

fn bench(c: &mut Criterion) {
    let alert = layering_alert();
    let mut buf = Vec::with_capacity(1 << 16);
    let mut g = c.benchmark_group("write_json");
    g.bench_function("warm", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&alert).write_json(&mut buf);
            black_box(buf.len())
        })
    });
    let mut sweep = vec![0u8; 32 << 20];
    g.bench_function("cold", |b| {
        b.iter_batched(
            || {
                for (i, x) in sweep.iter_mut().enumerate().step_by(64) {
                    *x = x.wrapping_add(i as u8);
                }
                black_box(&sweep);
            },
            |()| {
                buf.clear();
                black_box(&alert).write_json(&mut buf);
                black_box(buf.len())
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
