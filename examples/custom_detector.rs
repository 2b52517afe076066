//! A surveillance detector of your own, beside the built-in ones, without touching `src/surv`:
//! an **odd-lot storm** — at least `min_odd_lots` odd-lot adds (under 100 shares) on one stock
//! within `window_ns` of event time, the pattern of an algorithm probing the book below the
//! round-lot size (odd lots are not protected quotes and do not move the displayed touch).
//!
//! The detector implements `tickwatch::surv::UserDetector`; `surveil_feed_with` builds one from
//! its factory and runs it after the built-in detectors on every event, so its alerts come in
//! the same order and JSON format. Then the same factory goes to the pinned pipeline
//! (`run --alerts`'s job: one instance per shard worker), whose alerts file is checked
//! byte-identical to the single-threaded one for 1, 2 and 3 workers.
//! The feed is generated (`tickwatch::gen`, a 10-minute session with every manipulation
//! scenario injected).
//!
//! `cargo run --release --example custom_detector [-- MESSAGES]`

use std::collections::HashMap;
use std::error::Error;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};

use tickwatch::book::{BookConfig, Books};
use tickwatch::gen::{generate_scenarios, GenConfig, ScenarioPlan};
use tickwatch::pipeline::alerts::SurvJob;
use tickwatch::pipeline::{run_surv, PipelineConfig};
use tickwatch::scenario::ScenarioKind;
use tickwatch::surv::custom::factory;
use tickwatch::surv::{
    surveil_feed_with, Alert, Ctx, DetectorFactory, DetectorId, FlowRecord, Kind, Rules, Severity,
    SurvEvent, UserAlerts, UserDetector,
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
    let (alerts, _) = surveil_feed_with(
        &feed,
        &mut books,
        Rules::default(),
        &flow,
        1024,
        std::slice::from_ref(&storms),
    )?;

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
    let mut want = Vec::new();
    for a in &alerts {
        a.write_json(&mut want);
    }
    pinned(&feed, &flow, &storms, &want)
}

/// The same detectors on the pinned pipeline: the alerts equal `want` for 1, 2 and 3 workers.
fn pinned(
    feed: &[u8],
    flow: &[FlowRecord],
    storms: &DetectorFactory,
    want: &[u8],
) -> Result<(), Box<dyn Error>> {
    println!("\non the pinned pipeline (reader → N workers → output):");
    for workers in 1..=3 {
        let sink = Shared::default();
        let cfg = PipelineConfig {
            workers,
            books: BookConfig::small(),
            ..PipelineConfig::default()
        };
        let job = SurvJob {
            rules: Rules::default(),
            flow: flow.to_vec(),
            sink: sink.clone().into(),
            mark_every: 1024,
            reload: None,
            detectors: vec![storms.clone()],
        };
        let (stop, progress) = (AtomicBool::new(false), AtomicU64::new(0));
        let out = run_surv(feed, &cfg, job, &stop, &progress)?;
        let s = out.report.surv.as_ref().expect("a surveillance report");
        let storms = s.alerts.iter().find(|(n, _)| n == "odd_lot_storm");
        println!(
            "  {workers} workers: {} alerts ({} odd-lot storms) in {:.1} ms",
            s.total,
            storms.map_or(0, |x| x.1),
            out.report.elapsed_ns as f64 / 1e6
        );
        let got = sink.0.lock().map_err(|_| "sink poisoned")?.clone();
        if got != want {
            return Err(format!(
                "{workers} workers: the alerts differ from the single-threaded run"
            )
            .into());
        }
    }
    println!("  verified: byte-identical to the single-threaded alerts for every worker count");
    Ok(())
}

/// A `Write` the example can read back after the run.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
