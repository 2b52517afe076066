//! A surveillance detector of your own, beside the built-in ones, without touching `src/surv`:
//! an **odd-lot storm** — at least `min_odd_lots` odd-lot adds (under 100 shares) on one stock
//! within `window_ns` of event time, the pattern of an algorithm probing the book below the
//! round-lot size (odd lots are not protected quotes and do not move the displayed touch).
//!
//! The detector implements `tickwatch::surv::UserDetector`; `surveil_feed_with` builds one from
//! its factory (a sharded run builds one per shard worker) and runs it after the
//! built-in detectors on every event, so its alerts come in the same order and JSON format.
//! The feed is generated (`tickwatch::gen`, a 10-minute session with every manipulation
//! scenario injected).
//!
//! `cargo run --release --example custom_detector [-- MESSAGES]`

use std::collections::HashMap;
use std::error::Error;

use tickwatch::book::{BookConfig, Books};
use tickwatch::gen::{generate_scenarios, GenConfig, ScenarioPlan};
use tickwatch::scenario::ScenarioKind;
use tickwatch::surv::custom::factory;
use tickwatch::surv::{
    surveil_feed_with, Alert, Ctx, DetectorId, Kind, Rules, Severity, SurvEvent, UserAlerts,
    UserDetector,
};

/// Odd lots a stock's window can hold (the largest `min_odd_lots`).
const MAX_LOTS: usize = 64;

/// The last odd-lot adds of one stock: a ring of their event times.
#[derive(Clone, Copy)]
struct Lots {
    times: [u64; MAX_LOTS],
    /// Adds seen (the next slot is `seen % MAX_LOTS`).
    seen: u64,
    /// No new alert on this stock before this time (one alert per storm).
    quiet_until: u64,
}

/// At least `min_odd_lots` odd-lot adds on one stock within `window_ns`.
struct OddLotStorm {
    min_odd_lots: usize,
    window_ns: u64,
    /// Per stock locate; at most `max_stocks` (the rest are counted, not followed).
    stocks: HashMap<u16, Lots>,
    max_stocks: usize,
    stocks_full: u64,
}

impl OddLotStorm {
    fn new(min_odd_lots: usize, window_ns: u64, max_stocks: usize) -> OddLotStorm {
        assert!((2..=MAX_LOTS).contains(&min_odd_lots));
        OddLotStorm {
            min_odd_lots,
            window_ns,
            stocks: HashMap::with_capacity(max_stocks),
            max_stocks,
            stocks_full: 0,
        }
    }

    /// The stock's ring, if it is followed (or there is room to follow it).
    fn lots(&mut self, locate: u16) -> Option<&mut Lots> {
        if !self.stocks.contains_key(&locate) && self.stocks.len() >= self.max_stocks {
            self.stocks_full += 1;
            return None;
        }
        Some(self.stocks.entry(locate).or_insert(Lots {
            times: [0; MAX_LOTS],
            seen: 0,
            quiet_until: 0,
        }))
    }
}

impl UserDetector for OddLotStorm {
    fn name(&self) -> &'static str {
        "odd_lot_storm"
    }

    fn on_event(&mut self, ev: &SurvEvent, ctx: &Ctx<'_>, out: &mut UserAlerts<'_>) {
        let Kind::Add {
            order_ref, shares, ..
        } = ev.kind
        else {
            return;
        };
        if shares >= 100 {
            return;
        }
        let (min, window) = (self.min_odd_lots, self.window_ns);
        let Some(l) = self.lots(ev.locate) else {
            return;
        };
        l.times[(l.seen % MAX_LOTS as u64) as usize] = ev.ts;
        l.seen += 1;
        if l.seen < min as u64 || ev.ts < l.quiet_until {
            return;
        }
        // The `min`-th most recent odd lot: within the window, it is a storm.
        let first = l.times[((l.seen - min as u64) % MAX_LOTS as u64) as usize];
        let span = ev.ts - first;
        if span > window {
            return;
        }
        l.quiet_until = ev.ts + window;
        let severity = if span * 4 <= window {
            Severity::High
        } else {
            Severity::Medium
        };
        let alert = Alert::new(DetectorId::Custom, ev.ts, ev.seq, ev.locate, ctx.symbol)
            .severity(severity)
            .order_ref(order_ref)
            .evidence("odd_lot_adds", min as f64, ">=", min as f64)
            .evidence("span_ns", span as f64, "<=", window as f64)
            .touch(ev.after)
            .since(first);
        out.push(alert);
    }

    fn table_pressure(&self) -> Vec<(&'static str, u64)> {
        vec![("odd_lot_storm stocks full", self.stocks_full)]
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let messages: u64 = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 1_000_000,
    };
    let mut feed = Vec::new();
    let cfg = GenConfig {
        messages,
        symbols: 60,
        live_orders: messages / 20,
        seed: 11,
    };
    let plan = ScenarioPlan {
        kinds: ScenarioKind::ALL.to_vec(),
        rate: 1.0,
    };
    let (_, episodes, flow) = generate_scenarios(&cfg, 600_000_000_000, &plan, &mut feed)?;
    let flow = flow.unwrap_or_default();
    println!(
        "feed: {messages} messages, {} stocks, {} injected episodes, {} flow records",
        cfg.symbols,
        episodes.len(),
        flow.len()
    );

    // One instance per shard; here one shard.
    let storms = factory(|| OddLotStorm::new(18, 1_000_000_000, 8192));
    let mut books = Books::new(BookConfig::small());
    let (alerts, _) =
        surveil_feed_with(&feed, &mut books, Rules::default(), &flow, 1024, &[storms])?;

    let mut by: Vec<(&str, usize)> = Vec::new();
    for a in &alerts {
        match by.iter_mut().find(|(n, _)| *n == a.detector_name()) {
            Some((_, c)) => *c += 1,
            None => by.push((a.detector_name(), 1)),
        }
    }
    by.sort();
    println!("\nalerts by detector (built-in and odd_lot_storm, one stream):");
    for (name, n) in &by {
        println!("  {name:<20} {n:>6}");
    }
    println!("\nthe first odd-lot storms, as written to an alerts file:");
    let mut line = Vec::new();
    for a in alerts.iter().filter(|a| a.user.is_some()).take(3) {
        line.clear();
        a.write_json(&mut line);
        print!("  {}", String::from_utf8_lossy(&line));
    }
    Ok(())
}
