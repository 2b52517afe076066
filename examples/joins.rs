//! The three stream joins on real market data, each checked against brute force.
//!
//! 1. **As-of** (stream–table): each add (A, F) with its stock's touch when it arrives and as of
//!    `t − 1 ms` (what its sender could have seen): distance from the touch by side.
//! 2. **Interval** (stream–stream): each add with its executions, cancels, deletes and replaces
//!    in `[t, t + 1 s]`: fleeting orders within 1 ms / 10 ms / 1 s, time to cancel.
//! 3. **Window** (kdb+ `wj`, TCA): each trade (E priced from the book, printable C, P) with its
//!    stock's touch changes in `[t − 1 s, t + 1 s]`, and its effective spread against the mid as
//!    of `t`.
//!
//! The logic is in `tickwatch::join::market`; this prints its summary for the real NASDAQ sample
//! and, with `--messages N` (and optionally `--symbols S`, `--seed X`), for a generated feed.
//!
//! `cargo run --example joins [-- --messages 200000]`

use std::process::ExitCode;
use tickwatch::gen::{generate, GenConfig};
use tickwatch::join::market::{brute_force, run, summarize, MarketJoinConfig};

const SAMPLE: &str = "/work/shared/data/12302019_SNIPPET.NASDAQ_ITCH50";

/// Runs the joins on `buf`, checks them against brute force and prints the summary. Returns
/// false if a join disagreed with brute force.
fn report(name: &str, buf: &[u8], cfg: &MarketJoinConfig) -> anyhow::Result<bool> {
    let r = run(buf, cfg)?;
    let (brute, needed) = brute_force(&r.events, cfg);
    let s = summarize(&r, &r.rows, cfg);
    let mut out = String::new();
    s.write(&mut out, 5)?;
    println!("== {name}: {} stocks", r.symbols.len());
    print!("{out}");
    println!("counters:\n{}", r.counters);
    println!(
        "   (touch versions needed for t−Δ lookups: {needed}, kept: {})",
        cfg.touch_versions
    );
    let mut ok = true;
    let checks = [
        ("as-of", r.rows.adds.len(), r.rows.adds == brute.adds),
        ("interval", r.rows.pairs.len(), r.rows.pairs == brute.pairs),
        ("window", r.rows.trades.len(), r.rows.trades == brute.trades),
    ];
    for (join, n, same) in checks {
        if same {
            println!("{join:>9}: {n} rows verified against brute force");
        } else {
            ok = false;
            println!("{join:>9}: MISMATCH with brute force");
        }
    }
    if let Some(d) = r.rows.first_difference(&brute) {
        println!("first difference: {d}");
    }
    if s != summarize(&r, &brute, cfg) {
        ok = false;
        println!("summaries differ");
    }
    Ok(ok)
}

fn main() -> anyhow::Result<ExitCode> {
    let mut args = std::env::args().skip(1);
    let (mut messages, mut symbols, mut seed, mut file) = (None, 10u32, 1u64, SAMPLE.to_string());
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .ok_or_else(|| anyhow::anyhow!("{a} needs a value"))
        };
        match a.as_str() {
            "--messages" => messages = Some(val()?.parse::<u64>()?),
            "--symbols" => symbols = val()?.parse()?,
            "--seed" => seed = val()?.parse()?,
            "--file" => file = val()?,
            _ => {
                anyhow::bail!("usage: joins [--file ITCH] [--messages N [--symbols S] [--seed X]]")
            }
        }
    }
    let cfg = MarketJoinConfig::default();
    let buf = std::fs::read(&file)?;
    let mut ok = report(&file, &buf, &cfg)?;
    if let Some(messages) = messages {
        let mut feed = Vec::new();
        let g = GenConfig {
            messages,
            symbols,
            live_orders: 2_000,
            seed,
        };
        generate(&g, &mut feed)?;
        println!();
        ok &= report(
            &format!("generated feed ({messages} messages, {symbols} symbols, seed {seed})"),
            &feed,
            &cfg,
        )?;
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
