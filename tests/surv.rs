//! Surveillance end to end: the pipeline writes byte-identical alerts for any worker count and
//! wait strategy, equal to the single-threaded reference; generated scenarios are found; rules
//! files that make no sense are refused with a clear error.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

mod common;
use common::scenario::{assert_same_alerts, scenario_feed, Scenarios};
use common::shared::Shared;

use tickwatch::book::{BookConfig, Books};
use tickwatch::pipeline::alerts::SurvJob;
use tickwatch::pipeline::{run_surv, PipelineConfig, WaitStrategy};
use tickwatch::scenario::ScenarioKind;
use tickwatch::surv::{surveil_feed, FlowRecord, Rules};
use tickwatch::truth::Truth;

fn reference(feed: &[u8], rules: Rules, flow: &[FlowRecord]) -> Vec<u8> {
    let mut books = Books::new(BookConfig::small());
    let (alerts, _) = surveil_feed(feed, &mut books, rules, flow, 1024).unwrap();
    let mut out = Vec::new();
    for a in &alerts {
        a.write_json(&mut out);
    }
    out
}

fn pipeline(
    feed: &[u8],
    rules: Rules,
    flow: &[FlowRecord],
    workers: usize,
    wait: WaitStrategy,
) -> Vec<u8> {
    pipeline_paced(feed, rules, flow, workers, wait, None).0
}

/// [`pipeline`], paced at `speed` × the feed's time from the open on (`None`: full speed);
/// also the progress records the idle workers sent.
fn pipeline_paced(
    feed: &[u8],
    rules: Rules,
    flow: &[FlowRecord],
    workers: usize,
    wait: WaitStrategy,
    speed: Option<f64>,
) -> (Vec<u8>, u64) {
    let sink = Shared::default();
    let cfg = PipelineConfig {
        workers,
        wait,
        books: BookConfig::small(),
        ring_capacity: 1024,
        speed,
        pace_from: 34_200_000_000_000, // 09:30: the pre-open goes as fast as possible
        ..PipelineConfig::default()
    };
    let job = SurvJob {
        rules,
        flow: flow.to_vec(),
        sink: sink.clone().into(),
        mark_every: 1024,
        reload: None,
        detectors: Vec::new(),
    };
    let out = run_surv(feed, &cfg, job, &AtomicBool::new(false), &AtomicU64::new(0)).unwrap();
    out.report.check_conservation().unwrap();
    let s = out.report.surv.as_ref().expect("a surveillance report");
    assert_eq!(s.alert_overflow, 0);
    let bytes = sink.0.lock().unwrap().clone();
    assert_eq!(
        s.total as usize,
        bytes.iter().filter(|&&c| c == b'\n').count()
    );
    (bytes, s.progress)
}

#[test]
fn a_paced_replay_writes_the_same_alerts() {
    // Paced, workers sit idle between events and tell the merge how far they are (progress
    // records) instead of waiting for the next mark: the alerts must not change.
    let Scenarios { feed, flow, .. } = scenario_feed(100_000, 60, 12);
    let want = reference(&feed, Rules::default(), &flow);
    assert!(want.iter().filter(|&&c| c == b'\n').count() > 0);
    let (got, progress) = pipeline_paced(
        &feed,
        Rules::default(),
        &flow,
        2,
        WaitStrategy::BusySpin,
        Some(5000.0),
    );
    assert!(progress > 0, "idle workers sent progress");
    assert!(got == want, "paced alerts differ from the reference");
}

#[test]
fn the_pipeline_writes_the_reference_alerts_for_any_worker_count() {
    let Scenarios {
        feed,
        episodes: eps,
        flow,
        ..
    } = scenario_feed(300_000, 60, 11);
    assert!(
        eps.len() >= 6,
        "every scenario is injected: {} episodes",
        eps.len()
    );
    let want = reference(&feed, Rules::default(), &flow);
    let lines = want.iter().filter(|&&c| c == b'\n').count();
    assert!(lines > 0, "the scenarios raise alerts");
    for (workers, wait) in [
        (1, WaitStrategy::BusySpin),
        (2, WaitStrategy::SpinYield),
        (3, WaitStrategy::BusySpin),
        (4, WaitStrategy::Park),
    ] {
        let got = pipeline(&feed, Rules::default(), &flow, workers, wait);
        assert_same_alerts(&format!("{workers} workers, {wait:?}"), &got, &want);
    }
}

#[test]
fn every_episode_is_played_and_recorded_in_the_truth() {
    let Scenarios {
        feed,
        episodes: eps,
        flow,
        ..
    } = scenario_feed(200_000, 60, 5);
    let mut books = Books::new(BookConfig::small());
    let r = tickwatch::replay::replay(&feed, &mut books, None, false).unwrap();
    // The episodes' actions name live orders only: the books never meet an unknown reference.
    assert_eq!(books.stats().unknown_refs, 0);
    assert!(
        r.messages > 200_000,
        "episodes add messages: {}",
        r.messages
    );
    for k in ScenarioKind::ALL {
        assert!(
            eps.iter().any(|e| e.scenario == k.name()),
            "no {} episode",
            k.name()
        );
    }
    for e in &eps {
        assert!(
            e.start_ns <= e.end_ns && e.detect_from_ns <= e.detect_until_ns,
            "{e:?}"
        );
    }
    // Wash episodes are the firm's: their accounts are in the flow.
    let wash: Vec<_> = eps.iter().filter(|e| e.scenario == "wash").collect();
    for e in wash {
        assert!(flow
            .iter()
            .any(|f| tickwatch::surv::event::party_name(&f.account) == e.account));
    }
    let truth = Truth {
        episodes: eps,
        ..Truth::default()
    };
    let text = serde_json::to_string(&truth).unwrap();
    assert_eq!(serde_json::from_str::<Truth>(&text).unwrap(), truth);
}

#[test]
fn bad_rules_files_are_refused_naming_the_problem() {
    let cases = [
        ("[spoofing]\nenabled = 3\n", "enabled"),
        ("[spoofin]\nenabled = true\n", "spoofin"),
        ("[spoofing]\nwhatever = 1\n", "whatever"),
        ("[limits]\norders = 0\n", "[limits]"),
        ("not toml at all [", "rules r.toml"),
    ];
    for (text, want) in cases {
        let e = Rules::from_toml(text, "r.toml").unwrap_err().to_string();
        assert!(e.contains(want), "{text:?}: {e:?} should mention {want:?}");
    }
    // The documented defaults parse back to the defaults.
    assert_eq!(
        Rules::from_toml(&Rules::defaults_toml(), "defaults").unwrap(),
        Rules::default()
    );
}

#[test]
fn the_printed_defaults_explain_every_table_and_key() {
    // `tickwatch rules` prints each table and key under its doc comment from the source.
    let text = Rules::defaults_toml();
    let lines: Vec<&str> = text.lines().collect();
    let mut keys = 0;
    for (i, l) in lines.iter().enumerate() {
        let is_key = !l.starts_with('#') && l.contains(" = ");
        if is_key || l.starts_with('[') {
            let before = lines[..i].last().copied().unwrap_or("");
            assert!(before.starts_with("# "), "{l:?} has no comment above it");
            keys += is_key as usize;
        }
    }
    assert!(keys > 80, "only {keys} keys");
    assert!(text.contains("# Run this detector.\nenabled = true"));
}

#[test]
fn rules_replaced_while_running_take_effect_at_the_next_mark_and_keep_state() {
    let Scenarios { feed, flow, .. } = scenario_feed(200_000, 60, 3);
    let all = Rules::default();
    let mut fewer = all;
    fewer.spoofing.enabled = false;
    fewer.wash_trade.enabled = false;
    // The feed's first 1,024 messages are the directory and the pre-open: no alerts there, so
    // rules published before the run are in force for every alert.
    let want = reference(&feed, fewer, &flow);
    let cell = Arc::new(tickwatch::pipeline::alerts::RulesCell::new(all));
    cell.publish(fewer);
    let sink = Shared::default();
    let cfg = PipelineConfig {
        workers: 2,
        books: BookConfig::small(),
        ring_capacity: 1024,
        ..PipelineConfig::default()
    };
    let job = SurvJob {
        rules: all,
        flow: flow.clone(),
        sink: sink.clone().into(),
        mark_every: 1024,
        reload: Some(cell),
        detectors: Vec::new(),
    };
    let out = run_surv(
        &feed,
        &cfg,
        job,
        &AtomicBool::new(false),
        &AtomicU64::new(0),
    )
    .unwrap();
    assert_eq!(
        out.report.surv.as_ref().unwrap().counters.reloads,
        2,
        "each worker reloaded once"
    );
    let got = sink.0.lock().unwrap().clone();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
    // Limits size the tables: they cannot change while running.
    let mut s = tickwatch::surv::Surveillance::new(all, &[]);
    let mut bigger = all;
    bigger.limits.orders *= 2;
    assert!(s
        .set_rules(bigger)
        .unwrap_err()
        .to_string()
        .contains("[limits]"));
    assert!(s.set_rules(fewer).is_ok());
}

#[test]
fn every_scenario_is_found_with_recall_and_precision_over_the_floors() {
    // Floors = the targets (recall ≥ 0.95, precision ≥ 0.9). Measured in QUALITY.md:
    // 1.000 / 1.000 for every scenario at seeds 7, 8, 9 and on a full day; two small seeds here.
    for seed in [21, 22] {
        let Scenarios {
            feed,
            episodes: eps,
            flow,
            ..
        } = scenario_feed(400_000, 60, seed);
        let mut books = Books::new(BookConfig::small());
        let (alerts, _) = surveil_feed(&feed, &mut books, Rules::default(), &flow, 1024).unwrap();
        let mut text = Vec::new();
        for a in &alerts {
            a.write_json(&mut text);
        }
        let refs =
            tickwatch::surv::eval::parse_alerts(std::str::from_utf8(&text).unwrap()).unwrap();
        let truth = Truth {
            episodes: eps,
            ..Truth::default()
        };
        let rows = tickwatch::surv::eval::score(&truth, &refs);
        for k in ScenarioKind::ALL {
            let r = rows
                .iter()
                .find(|r| r.detector == k.detector().name())
                .unwrap_or_else(|| panic!("seed {seed}: no row for {}", k.name()));
            assert!(r.episodes >= 5, "seed {seed}: {r:?}");
            assert!(r.recall.unwrap() >= 0.95, "seed {seed}: {r:?}");
            assert!(r.precision.unwrap_or(0.0) >= 0.9, "seed {seed}: {r:?}");
        }
    }
}

#[test]
fn the_real_nasdaq_sample_runs_through_every_detector_alike_in_the_pipeline() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/12302019_SNIPPET.NASDAQ_ITCH50"
    );
    let feed = std::fs::read(path).expect("the shared NASDAQ sample");
    let mut books = Books::new(BookConfig::small());
    let (alerts, c) = surveil_feed(&feed, &mut books, Rules::default(), &[], 64).unwrap();
    assert_eq!(c.events, 1000, "every message reached the detectors");
    // 1,000 messages of the start of a day: too short for any pattern to complete.
    assert!(alerts.is_empty(), "{alerts:?}");
    for workers in [1, 3] {
        let got = pipeline(
            &feed,
            Rules::default(),
            &[],
            workers,
            WaitStrategy::BusySpin,
        );
        assert!(got.is_empty());
    }
}
