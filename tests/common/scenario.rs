//! Generated feeds with every manipulation scenario, and the comparison of alert files that
//! names their first differing line: shared by the tests that hold results equal across worker
//! counts, wait strategies and jobs.

use tickwatch::gen::{generate_scenarios, GenConfig, ScenarioPlan};
use tickwatch::scenario::ScenarioKind;
use tickwatch::surv::FlowRecord;
use tickwatch::truth::Episode;

/// A generated feed with its episodes and the firm's flow.
pub struct Scenarios {
    pub feed: Vec<u8>,
    pub episodes: Vec<Episode>,
    pub flow: Vec<FlowRecord>,
}

/// A 10-minute session of `messages` over `symbols` stocks, every scenario injected at one
/// per scenario per minute.
pub fn scenario_feed(messages: u64, symbols: u32, seed: u64) -> Scenarios {
    let mut feed = Vec::new();
    let (_, episodes, flow) = generate_scenarios(
        &GenConfig {
            messages,
            symbols,
            live_orders: messages / 20,
            seed,
        },
        600_000_000_000,
        &ScenarioPlan {
            kinds: ScenarioKind::ALL.to_vec(),
            rate: 1.0,
        },
        &mut feed,
    )
    .expect("generate");
    Scenarios {
        feed,
        episodes,
        flow: flow.unwrap_or_default(),
    }
}

/// Panics, naming `what`, the line counts and the first differing line, unless the alert
/// files `got` and `want` are equal.
pub fn assert_same_alerts(what: &str, got: &[u8], want: &[u8]) {
    if got == want {
        return;
    }
    let (g, w) = (String::from_utf8_lossy(got), String::from_utf8_lossy(want));
    let i = g.lines().zip(w.lines()).position(|(a, b)| a != b);
    panic!(
        "{what}: {} lines vs {} in the reference; first difference at {i:?}:\n got {:?}\nwant {:?}",
        g.lines().count(),
        w.lines().count(),
        i.and_then(|i| g.lines().nth(i)),
        i.and_then(|i| w.lines().nth(i)),
    );
}
