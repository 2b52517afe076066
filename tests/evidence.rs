//! Alerts an analyst can read: every evidence metric with a threshold states the comparison
//! that fired (`value op threshold` holds), over every detector on generated scenarios with
//! default rules and with tight risk limits; risk alerts carry the stock's touch.

mod common;
use common::scenario::{scenario_feed, Scenarios};

use tickwatch::book::{BookConfig, Books};
use tickwatch::surv::alert::{Alert, DetectorId};
use tickwatch::surv::{surveil_feed, Rules};

fn holds(value: f64, op: &str, threshold: f64) -> bool {
    match op {
        ">=" => value >= threshold,
        "<=" => value <= threshold,
        ">" => value > threshold,
        "<" => value < threshold,
        "==" => value == threshold,
        _ => false,
    }
}

fn alerts(rules: Rules, seed: u64) -> Vec<Alert> {
    let Scenarios { feed, flow, .. } = scenario_feed(150_000, 40, seed);
    let mut books = Books::new(BookConfig::small());
    surveil_feed(&feed, &mut books, rules, &flow, 1024)
        .unwrap()
        .0
}

fn check(alerts: &[Alert]) -> Vec<String> {
    let mut bad = Vec::new();
    for a in alerts {
        for e in a.evidence_list() {
            // A context metric (no threshold of its own) tests nothing, and is measured.
            if e.op.is_empty() {
                assert!(
                    e.threshold.is_nan() && !e.value.is_nan(),
                    "{}: {e:?}",
                    a.detector_name()
                );
                continue;
            }
            if !holds(e.value, e.op, e.threshold) {
                bad.push(format!(
                    "{}: {} = {} {} {} does not hold",
                    a.detector_name(),
                    e.name,
                    e.value,
                    e.op,
                    e.threshold
                ));
            }
        }
    }
    bad.sort();
    bad.dedup_by(|a, b| a.split(" = ").next() == b.split(" = ").next());
    bad
}

fn tight_risk() -> Rules {
    let mut r = Rules::default();
    r.risk.enabled = true;
    r.risk.equity_usd = 200_000.0;
    r.risk.max_gross_notional_usd = 50_000.0;
    r.risk.max_net_notional_per_stock_usd = 20_000.0;
    r.risk.max_leverage = 0.2;
    r.risk.max_loss_usd = 100.0;
    r.risk.max_order_rate = 5.0;
    r.risk.max_cancel_rate = 5.0;
    r
}

#[test]
fn every_evidence_metric_states_the_comparison_that_fired() {
    let mut all = alerts(Rules::default(), 41);
    let risk = alerts(tight_risk(), 42);
    assert!(
        risk.iter().any(|a| a.detector == DetectorId::Risk),
        "tight limits raise risk alerts"
    );
    all.extend(risk);
    let kinds: std::collections::BTreeSet<_> = all.iter().map(|a| a.detector_name()).collect();
    assert!(kinds.len() >= 6, "{kinds:?}");
    let bad = check(&all);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    // In JSON a context metric is its value alone; a test names its comparison.
    let mut line = Vec::new();
    for a in &all {
        line.clear();
        a.write_json(&mut line);
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        for (name, m) in v["evidence"].as_object().unwrap() {
            let tested = m.get("op").is_some();
            assert_eq!(tested, m.get("threshold").is_some(), "{name}: {m}");
            assert!(
                m["value"].is_number() || m["value"].is_null(),
                "{name}: {m}"
            );
        }
    }
}

#[test]
fn risk_alerts_carry_the_touch_of_their_stock() {
    let risk = alerts(tight_risk(), 43);
    let stock_level: Vec<&Alert> = risk
        .iter()
        .filter(|a| a.detector == DetectorId::Risk && a.locate != 0)
        .collect();
    assert!(!stock_level.is_empty());
    for a in stock_level {
        assert!(
            a.touch.bid != 0 || a.touch.ask != 0,
            "a per-stock risk alert without its touch: {a:?}"
        );
    }
}
