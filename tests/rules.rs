//! Every rules key has an allowed range: a value outside it is refused by `Rules::validate`
//! (and `tickwatch rules --check`) with an error naming `table.key` and the range, and a file
//! that passes — every key at either end of its range — runs without a panic.

use std::process::Command;

use tickwatch::book::{BookConfig, Books};
use tickwatch::gen::{generate_scenarios, GenConfig, ScenarioPlan};
use tickwatch::scenario::ScenarioKind;
use tickwatch::surv::abnormal::{AbnormalMoveRules, LockedCrossedRules};
use tickwatch::surv::close::MarkingTheCloseRules;
use tickwatch::surv::ignition::MomentumIgnitionRules;
use tickwatch::surv::layering::LayeringRules;
use tickwatch::surv::range::{Allowed, Key};
use tickwatch::surv::risk::RiskRules;
use tickwatch::surv::spoofing::SpoofingRules;
use tickwatch::surv::stuffing::{OrderToTradeRules, QuoteStuffingRules};
use tickwatch::surv::wash::WashTradeRules;
use tickwatch::surv::{surveil_feed, Capacity, Rules};

const BIN: &str = env!("CARGO_BIN_EXE_tickwatch");

#[test]
fn rules_check_refuses_a_limit_of_2_pow_32_naming_the_key_and_range() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.toml");
    std::fs::write(&path, "[limits]\norders = 4294967296\n").unwrap();
    let o = Command::new(BIN)
        .args(["rules", "--check"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("limits.orders = 4294967296"), "{err}");
    assert!(err.contains("allowed 1..=4194304"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    std::fs::write(&path, "[limits]\norders = 4194304\n").unwrap();
    let o = Command::new(BIN)
        .args(["rules", "--check"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn out_of_range_keys_are_refused_naming_table_key_and_range() {
    let cases = [
        (
            "[limits]\nparties = 0\n",
            "limits.parties = 0",
            "1..=1048576",
        ),
        (
            "[limits]\npairs = 9999999999\n",
            "limits.pairs",
            "1..=1048576",
        ),
        ("[limits]\nlocates = 65537\n", "limits.locates", "1..=65536"),
        (
            "[spoofing]\ncooldown_ns = 700000000000\n",
            "spoofing.cooldown_ns",
            "0..=600000000000",
        ),
        (
            "[abnormal_move]\njump_window_ns = 100000000000000\n",
            "abnormal_move.jump_window_ns",
            "1..=86400000000000",
        ),
        (
            "[abnormal_move]\nz_threshold = inf\n",
            "abnormal_move.z_threshold = not a finite number",
            "(0, 1000000000000]",
        ),
        (
            "[momentum_ignition]\nmin_trades = 2000000000\n",
            "momentum_ignition.min_trades",
            "1..=1000000000",
        ),
        (
            "[wash_trade]\nowner_prefix_len = 13\n",
            "wash_trade.owner_prefix_len = 13",
            "0..=12 (accounts have at most 12 characters)",
        ),
        (
            "[risk]\nrearm_ratio = 0.0\n",
            "risk.rearm_ratio = 0.0",
            "(0, 1]",
        ),
        (
            "[risk]\nequity_usd = 1e20\n",
            "risk.equity_usd",
            "(0, 1000000000000000]",
        ),
        (
            "[layering]\ntop_levels = 17\n",
            "layering.top_levels = 17",
            "1..=16",
        ),
    ];
    for (text, key, range) in cases {
        let e = Rules::from_toml(text, "r.toml").unwrap_err().to_string();
        assert!(e.contains(key), "{text:?}: {e:?} should name {key:?}");
        assert!(
            e.contains(&format!("allowed {range}")),
            "{text:?}: {e:?} should give {range:?}"
        );
    }
}

/// Every table with its keys.
fn tables() -> [(&'static str, &'static [Key]); 11] {
    [
        (SpoofingRules::TABLE, SpoofingRules::KEYS),
        (LayeringRules::TABLE, LayeringRules::KEYS),
        (QuoteStuffingRules::TABLE, QuoteStuffingRules::KEYS),
        (OrderToTradeRules::TABLE, OrderToTradeRules::KEYS),
        (MomentumIgnitionRules::TABLE, MomentumIgnitionRules::KEYS),
        (MarkingTheCloseRules::TABLE, MarkingTheCloseRules::KEYS),
        (AbnormalMoveRules::TABLE, AbnormalMoveRules::KEYS),
        (LockedCrossedRules::TABLE, LockedCrossedRules::KEYS),
        (WashTradeRules::TABLE, WashTradeRules::KEYS),
        (RiskRules::TABLE, RiskRules::KEYS),
        (Capacity::TABLE, Capacity::KEYS),
    ]
}

/// A rules file with every key at the low (or high) end of its range; the limits always at
/// their lowest (the highest allocate gigabytes), and the few keys bounded by another key
/// within that bound.
fn extreme(high: bool) -> Rules {
    let mut text = String::new();
    for (table, keys) in tables() {
        text += &format!("[{table}]\n");
        for k in keys {
            let v = match k.allowed {
                Allowed::Flag => "true".to_string(),
                Allowed::Int { min, max } => {
                    (if high && table != "limits" { max } else { min }).to_string()
                }
                Allowed::Real { max, .. } if high => format!("{max:e}"),
                Allowed::Real { min, above, .. } => {
                    format!("{:e}", if above { min + 1e-9 } else { min })
                }
            };
            text += &format!("{} = {v}\n", k.name);
        }
    }
    let mut rules: Rules = toml::from_str(&text).unwrap();
    // Keys bounded by another key.
    let l = &mut rules.layering;
    l.min_levels_held = l.min_levels_held.min(l.top_levels).max(2);
    l.top_levels = l.top_levels.max(l.min_levels_held);
    let q = &mut rules.quote_stuffing;
    q.fast_baseline_ns = q.fast_baseline_ns.min(q.baseline_ns);
    let a = &mut rules.abnormal_move;
    a.min_samples = a.min_samples.min(2 * a.pane_samples);
    let w = &mut rules.wash_trade;
    w.quiet_ns = w.quiet_ns.min(w.cooldown_ns);
    let r = &mut rules.risk;
    r.kill_leverage = r.kill_leverage.max(r.max_leverage);
    r.kill_loss_usd = r.kill_loss_usd.max(r.max_loss_usd);
    rules
}

#[test]
fn every_key_at_either_end_of_its_range_passes_and_runs_without_panic() {
    let mut feed = Vec::new();
    let cfg = GenConfig {
        messages: 60_000,
        symbols: 20,
        live_orders: 3_000,
        seed: 4,
    };
    let plan = ScenarioPlan {
        kinds: ScenarioKind::ALL.to_vec(),
        rate: 2.0,
    };
    let (_, _, flow) = generate_scenarios(&cfg, 120_000_000_000, &plan, &mut feed).unwrap();
    let flow = flow.unwrap_or_default();
    for high in [false, true] {
        let rules = extreme(high);
        rules
            .validate()
            .unwrap_or_else(|e| panic!("high {high}: {e:?}"));
        let text = toml::to_string(&rules).unwrap();
        assert_eq!(Rules::from_toml(&text, "x").unwrap(), rules, "round trip");
        let mut books = Books::new(BookConfig::small());
        surveil_feed(&feed, &mut books, rules, &flow, 64).unwrap();
    }
}

#[test]
fn the_printed_rules_give_every_number_its_range() {
    let text = Rules::defaults_toml();
    let lines: Vec<&str> = text.lines().collect();
    let mut numbers = 0;
    for (i, l) in lines.iter().enumerate() {
        let Some((key, value)) = l.split_once(" = ") else {
            continue;
        };
        if l.starts_with('#') || value == "true" || value == "false" {
            continue;
        }
        let comment: Vec<&str> = lines[..i]
            .iter()
            .rev()
            .take_while(|c| c.starts_with('#'))
            .copied()
            .collect();
        let comment = comment.into_iter().rev().collect::<Vec<_>>().join(" ");
        assert!(comment.contains("Allowed: "), "{key}: {comment}");
        numbers += 1;
    }
    assert!(numbers > 70, "{numbers}");
    let unwrapped = text.replace("\n# ", " ");
    assert!(unwrapped
        .contains("Allowed: 1..=4194304 (about 1 GiB of tables per shard at most).\norders ="));
}
