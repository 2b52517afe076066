//! `tickwatch gen`: a synthetic feed, with its labelled episodes and the firm's flow.

use super::args::GenArgs;
use super::files::sibling;
use anyhow::{Context, Result};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tickwatch::gen::GenConfig;
use tickwatch::scenario::ScenarioKind;

pub fn cmd_gen(a: GenArgs) -> Result<()> {
    let cfg = GenConfig {
        messages: a.messages,
        symbols: a.symbols,
        live_orders: a
            .live_orders
            .unwrap_or((a.messages / 20).clamp(1, 2_000_000)),
        seed: a.seed,
    };
    let t0 = Instant::now();
    let file =
        std::fs::File::create(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let w = io::BufWriter::with_capacity(1 << 20, file);
    let mut kinds = Vec::new();
    for name in a.scenarios.iter().filter(|s| !s.is_empty()) {
        let k = ScenarioKind::from_name(name).with_context(|| {
            format!(
                "unknown scenario `{name}`: expected any of {}",
                ScenarioKind::ALL.map(|k| k.name()).join(", ")
            )
        })?;
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    let session = a
        .session
        .map_or(23_400_000_000_000, |d| d.as_nanos() as u64);
    let plan = tickwatch::gen::ScenarioPlan {
        kinds,
        rate: a.scenario_rate,
    };
    let (rep, episodes, flow) = tickwatch::gen::generate_scenarios(&cfg, session, &plan, w)?;
    if !plan.kinds.is_empty() {
        let mut flow_path = None;
        if let Some(flow) = &flow {
            let p = write_flow(&a.out, flow)?;
            eprintln!(
                "wrote {} participant-flow records to {}",
                flow.len(),
                p.display()
            );
            flow_path = Some(p.display().to_string());
        }
        let truth = tickwatch::truth::Truth {
            feed: a.out.display().to_string(),
            seed: a.seed,
            scenarios: plan.kinds.iter().map(|k| k.name().to_string()).collect(),
            rate: a.scenario_rate,
            flow: flow_path,
            episodes,
        };
        let p = sibling(&a.out, "truth.json");
        std::fs::write(&p, serde_json::to_string_pretty(&truth)? + "\n")
            .with_context(|| format!("writing {}", p.display()))?;
        eprintln!("wrote {} episodes to {}", truth.episodes.len(), p.display());
    }
    eprintln!(
        "wrote {} messages, {} bytes, {} symbols, peak {} live orders to {} in {:.2} s",
        rep.messages,
        rep.bytes,
        cfg.symbols,
        rep.peak_live_orders,
        a.out.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Writes the firm's participant flow beside the feed at `feed` (`FEED.flow.csv`, where
/// `surveil`, `run --alerts` and `eval` look for it); returns its path.
pub(super) fn write_flow(feed: &Path, flow: &[tickwatch::surv::FlowRecord]) -> Result<PathBuf> {
    let p = sibling(feed, "flow.csv");
    let mut w = io::BufWriter::new(
        std::fs::File::create(&p).with_context(|| format!("creating {}", p.display()))?,
    );
    writeln!(w, "{}", tickwatch::surv::flow::FLOW_HEADER)?;
    for r in flow {
        r.write_csv(&mut w)?;
    }
    w.flush()?;
    Ok(p)
}

/// `tickwatch gen-indep`'s arguments.
#[derive(clap::Args, Debug)]
pub struct GenIndepArgs {
    /// Random seed (seeds ≥ 1000 are held out: never use them for tuning).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The regime: penny, thin, deep, halt (held out: never for tuning), nocross, mixed;
    /// default: drawn from the seed.
    #[arg(long)]
    pub regime: Option<String>,
    /// A clean feed: the seed's regime, background and hard negatives without its manipulation
    /// episodes (any manipulation-family alert on it is false).
    #[arg(long)]
    pub clean: bool,
    /// Output file.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn cmd_gen_indep(a: GenIndepArgs) -> Result<()> {
    let t0 = Instant::now();
    let cfg = tickwatch::indep::Config {
        seed: a.seed,
        regime: a.regime.clone(),
        clean: a.clean,
    };
    let out = tickwatch::indep::generate(&cfg)?;
    let checked = tickwatch::indep::check::check(&out.itch)
        .map_err(|e| anyhow::anyhow!("the generated feed breaks an invariant: {e}"))?;
    std::fs::write(&a.out, &out.itch).with_context(|| format!("writing {}", a.out.display()))?;
    let flow = match &out.flow {
        Some(f) => Some(write_flow(&a.out, f)?.display().to_string()),
        None => None,
    };
    let mut scenarios: Vec<String> = out.episodes.iter().map(|e| e.scenario.clone()).collect();
    scenarios.sort();
    scenarios.dedup();
    let r = &out.regime;
    let truth = tickwatch::truth::Truth {
        feed: a.out.display().to_string(),
        seed: a.seed,
        scenarios,
        rate: out.episodes.len() as f64 / r.minutes as f64,
        flow,
        episodes: out.episodes,
    };
    let p = sibling(&a.out, "truth.json");
    std::fs::write(&p, serde_json::to_string_pretty(&truth)? + "\n")
        .with_context(|| format!("writing {}", p.display()))?;
    let role = if tickwatch::indep::is_tuning(a.seed, &r.name) {
        "tuning"
    } else {
        "held-out"
    };
    eprintln!("{}", describe(r, role));
    let void = truth
        .episodes
        .iter()
        .filter(|e| e.detector == tickwatch::surv::eval::VOID)
        .count();
    eprintln!(
        "wrote {} messages ({} adds, {} executions, {} hidden, {} crosses, {} sub-penny prices; invariants hold) to {}, {} episodes ({void} void: the market took their orders first) to {} in {:.2} s",
        out.messages,
        checked.adds,
        checked.executions,
        checked.hidden,
        checked.crosses,
        checked.sub_penny,
        a.out.display(),
        truth.episodes.len(),
        p.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One line on the regime drawn, and whether the feed may be used for tuning.
fn describe(r: &tickwatch::indep::regime::Regime, role: &str) -> String {
    format!(
        "regime {} ({role}): {} stocks at {}, spread {} ticks, {} orders/level, {:.0} events/s/stock, {} min, {:?}, closing cross {}, NOII {}, flow {}",
        r.name,
        r.stocks,
        r.prices
            .iter()
            .map(|p| format!("${:.4}", *p as f64 / 1e4))
            .collect::<Vec<_>>()
            .join(" "),
        r.spread_ticks,
        r.orders_per_level,
        r.rate,
        r.minutes,
        r.start,
        r.closing_cross,
        r.noii,
        r.flow
    )
}
