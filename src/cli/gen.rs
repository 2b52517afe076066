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
