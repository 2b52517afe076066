//! The three joins of `tickwatch::join::market` (as in `examples/joins.rs`) against brute force,
//! on the real NASDAQ sample and on a generated feed; and what undersized capacities cost.

use tickwatch::gen::{generate, GenConfig};
use tickwatch::join::market::{
    brute_force, placement, run, summarize, MarketJoinConfig, MarketRun, Placement,
};

const SAMPLE: &str = "/work/shared/data/12302019_SNIPPET.NASDAQ_ITCH50";

fn sample() -> Vec<u8> {
    let path = std::env::var("TICKWATCH_ITCH_SAMPLE").unwrap_or_else(|_| SAMPLE.into());
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn generated(messages: u64) -> Vec<u8> {
    let mut feed = Vec::new();
    let cfg = GenConfig {
        messages,
        symbols: 10,
        live_orders: 2_000,
        seed: 7,
    };
    generate(&cfg, &mut feed).unwrap();
    feed
}

/// Runs the joins, checks every row and the summary against brute force, and that nothing was
/// lost to a capacity.
fn check_exact(buf: &[u8], cfg: &MarketJoinConfig) -> MarketRun {
    let r = run(buf, cfg).unwrap();
    let (brute, needed) = brute_force(&r.events, cfg);
    if let Some(d) = r.rows.first_difference(&brute) {
        panic!("join differs from brute force: {d}");
    }
    assert_eq!(r.rows, brute);
    assert_eq!(summarize(&r, &r.rows, cfg), summarize(&r, &brute, cfg));
    let c = &r.counters;
    assert_eq!(c.losses(), 0, "{c}");
    assert_eq!((c.asof.too_old, c.asof.out_of_range), (0, 0), "{c}");
    let i = &c.interval;
    assert_eq!(
        (i.late, i.keys_full, i.evicted_left, i.evicted_right),
        (0, 0, 0, 0),
        "{c}"
    );
    let w = &c.window;
    assert_eq!(
        (
            w.late,
            w.queue_full,
            w.out_of_range,
            w.evicted,
            w.incomplete
        ),
        (0, 0, 0, 0, 0),
        "{c}"
    );
    assert_eq!(c.stocks_full, 0);
    assert!(needed <= cfg.touch_versions, "{needed} versions needed");
    // Every event was joined: one as-of row per add, one window row per trade.
    assert_eq!(r.rows.adds.len(), r.events.adds.len());
    assert_eq!(r.rows.trades.len(), r.events.trades.len());
    assert_eq!(c.window.rows as usize, r.events.trades.len());
    assert_eq!(c.interval.pairs as usize, r.rows.pairs.len());
    r
}

#[test]
fn real_sample_equals_brute_force() {
    let cfg = MarketJoinConfig::default();
    let r = check_exact(&sample(), &cfg);
    // SOURCES.md: 1,000 messages, A 367 + F 193 adds, P 4 trades.
    assert_eq!(r.messages, 1_000);
    assert_eq!(r.events.adds.len(), 560);
    assert!(r.events.trades.iter().filter(|t| t.kind == b'P').count() == 4);
    assert!(!r.rows.pairs.is_empty(), "some adds end within the sample");
    assert!(r
        .rows
        .adds
        .iter()
        .any(|a| a.at_t.is_some() && a.lagged.is_some()));
    // The lagged view really is older: some adds see a different touch at t − 1 ms.
    assert!(r.rows.adds.iter().any(|a| a.at_t != a.lagged));
    // Windows of ±1 s span the whole 2.4 ms sample: a trade sees every change of its stock.
    for t in &r.rows.trades {
        let all = r
            .events
            .touches
            .iter()
            .filter(|c| c.stock == t.trade.stock)
            .count();
        assert_eq!(t.window.quotes as usize, all);
    }
}

#[test]
fn real_sample_short_windows_equal_brute_force() {
    // Windows and horizons inside the sample's span, so that the bounds matter.
    let cfg = MarketJoinConfig {
        latency: 200_000,
        horizons: [50_000, 300_000, 1_000_000],
        before: 300_000,
        after: 100_000,
        advance_every: 16,
        ..MarketJoinConfig::default()
    };
    let r = check_exact(&sample(), &cfg);
    assert!(r.counters.interval.expired_left > 0);
}

#[test]
fn generated_feed_equals_brute_force() {
    let buf = generated(50_000);
    let cfg = MarketJoinConfig::default();
    let r = check_exact(&buf, &cfg);
    assert_eq!(r.messages, 50_000);
    assert!(r.rows.adds.len() > 10_000);
    assert!(r.rows.trades.len() > 1_000);
    assert!(!r.rows.pairs.is_empty());
    assert!(r.rows.trades.iter().any(|t| t.window.quotes > 1));
    // The generator never crosses the book: no add reaches the other side.
    for a in &r.rows.adds {
        if let Some((_, t)) = a.at_t {
            assert_ne!(
                placement(a.add.side, a.add.price, &t),
                Placement::Crossing,
                "{a:?}"
            );
        }
    }
    // Tight windows too, on the generated feed.
    let tight = MarketJoinConfig {
        latency: 50 * 1_000_000,
        before: 20 * 1_000_000,
        after: 5 * 1_000_000,
        horizons: [1_000_000, 100_000_000, 10_000_000_000],
        advance_every: 64,
        ..MarketJoinConfig::default()
    };
    check_exact(&buf, &tight);
}

#[test]
fn undersized_capacities_are_counted_never_wrong() {
    let buf = sample();
    let cfg = MarketJoinConfig {
        touch_versions: 2,
        live_refs: 64,
        quotes_per_stock: 4,
        pending_trades: 2,
        stocks: 1_000,
        ..MarketJoinConfig::default()
    };
    let r = run(&buf, &cfg).unwrap();
    let (brute, _) = brute_force(&r.events, &cfg);
    let c = &r.counters;
    assert!(c.asof.too_old > 0, "{c}");
    assert!(c.interval.keys_full > 0, "{c}");
    assert!(c.window.queue_full > 0, "{c}");
    assert!(c.losses() > 0);
    // The as-of join answers `None` when its answer was evicted, never an older touch.
    assert_eq!(r.rows.adds.len(), brute.adds.len());
    let mut missing = 0u64;
    for (j, b) in r.rows.adds.iter().zip(&brute.adds) {
        assert_eq!(j.add, b.add);
        assert_eq!(j.at_t, b.at_t, "the newest version is always kept");
        if j.lagged != b.lagged {
            assert_eq!(j.lagged, None, "{j:?} vs {b:?}");
            missing += 1;
        }
    }
    // Each too_old lookup is a lagged lookup whose answer was gone (at-t lookups always hit).
    assert_eq!(missing, c.asof.too_old);
    // The interval join loses pairs, never invents them.
    for p in &r.rows.pairs {
        assert!(brute.pairs.binary_search(p).is_ok(), "{p:?}");
    }
    // Window rows that were accepted and flagged complete equal brute force.
    for t in &r.rows.trades {
        let b = brute
            .trades
            .iter()
            .find(|b| b.trade.seq == t.trade.seq)
            .unwrap();
        assert_eq!(t.at_t, b.at_t);
        if t.complete {
            assert_eq!(t, b);
        }
    }
    assert!(
        r.rows.trades.len() < brute.trades.len(),
        "queue_full drops trades"
    );
}
