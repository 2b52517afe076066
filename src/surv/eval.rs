//! Detection quality: alerts scored against a generated feed's ground truth.
//!
//! An episode is **detected** when an alert of its detector names its stock, names its
//! participant (or no participant), and is stamped within the episode's detection window
//! [`detect_from_ns`, `detect_until_ns`]. An alert is a **true positive** when it detects some
//! episode. Per detector: recall = episodes detected / episodes; precision = true-positive alerts
//! / alerts. Detectors with no scenario (order-to-trade, abnormal move, locked/crossed, risk) have
//! no truth: their alerts are counted, not scored. Hard negatives (expected detector
//! [`NEGATIVE`]) have no row: an alert on one is simply not a true positive. Episodes that did
//! not play out ([`VOID`]) have no row either, and alerts on them are not counted.
//!
//! [`detect_from_ns`]: crate::truth::Episode::detect_from_ns
//! [`detect_until_ns`]: crate::truth::Episode::detect_until_ns

use crate::truth::Truth;
use serde::Serialize;
use std::collections::BTreeMap;

/// The expected detector of a hard negative: an episode on which no manipulation alert should
/// fire (any that does is a false alert).
pub const NEGATIVE: &str = "none";

/// The expected detector of an episode that did not play out as its definition needs (the
/// market took the manipulator's order first, say): alerts on it are neither true nor false.
pub const VOID: &str = "void";

/// The fields of an alert that scoring reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertRef {
    /// Event time.
    pub ts: u64,
    /// Detector name.
    pub detector: String,
    /// Symbol (empty: none).
    pub stock: String,
    /// Participant (empty: none).
    pub participant: String,
}

/// One detector's scores.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Score {
    /// Detector.
    pub detector: String,
    /// Episodes of its scenarios in the truth.
    pub episodes: u64,
    /// Of them, detected.
    pub detected: u64,
    /// Alerts it raised.
    pub alerts: u64,
    /// Of them, detecting an episode.
    pub true_positives: u64,
    /// detected / episodes (`None` without episodes).
    pub recall: Option<f64>,
    /// true positives / alerts (`None` without episodes or without alerts).
    pub precision: Option<f64>,
    /// Ids of the episodes missed.
    pub missed: Vec<u32>,
}

/// Parses alerts JSONL (the `ts_ns`, `detector`, `stock`, `participant` of each line).
///
/// # Errors
/// A line that is not a JSON object with those fields, naming the line.
pub fn parse_alerts(text: &str) -> Result<Vec<AlertRef>, String> {
    // A run's alerts file ends at the first NUL byte while the run goes on (or if it was
    // killed before cutting it: see `pipeline::journal`).
    let text = text.split('\0').next().unwrap_or("");
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("alerts line {}: {e}", i + 1))?;
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        let ts = v
            .get("ts_ns")
            .and_then(|x| x.as_u64())
            .ok_or_else(|| format!("alerts line {}: no ts_ns", i + 1))?;
        let detector = s("detector");
        if detector.is_empty() {
            return Err(format!("alerts line {}: no detector", i + 1));
        }
        out.push(AlertRef {
            ts,
            detector,
            stock: s("stock"),
            participant: s("participant"),
        });
    }
    Ok(out)
}

/// Scores `alerts` against `truth`, one row per detector that has episodes or alerts (in
/// detector order; detectors the crate does not know, such as user detectors, after them by
/// name).
pub fn score(truth: &Truth, alerts: &[AlertRef]) -> Vec<Score> {
    let mut rows: BTreeMap<(u8, String), Score> = BTreeMap::new();
    let id = detector_order;
    let scored = || {
        let skip = |d: &str| d == NEGATIVE || d == VOID;
        truth.episodes.iter().filter(move |ep| !skip(&ep.detector))
    };
    let on_void = |a: &AlertRef| {
        truth.episodes.iter().any(|ep| {
            ep.detector == VOID
                && a.stock == ep.stock
                && (ep.detect_from_ns..=ep.detect_until_ns).contains(&a.ts)
        })
    };
    for ep in scored() {
        let r = rows.entry(id(&ep.detector)).or_default();
        r.detector = ep.detector.clone();
        r.episodes += 1;
    }
    let detects = |a: &AlertRef, ep: &crate::truth::Episode| {
        a.detector == ep.detector
            && a.stock == ep.stock
            && (a.participant.is_empty() || a.participant == ep.participant)
            && (ep.detect_from_ns..=ep.detect_until_ns).contains(&a.ts)
    };
    for a in alerts {
        let hit = truth.episodes.iter().any(|ep| detects(a, ep));
        if !hit && on_void(a) {
            continue; // on an episode that did not play out: neither true nor false
        }
        let r = rows.entry(id(&a.detector)).or_default();
        r.detector = a.detector.clone();
        r.alerts += 1;
        r.true_positives += hit as u64;
    }
    for ep in scored() {
        let r = rows.get_mut(&id(&ep.detector)).expect("row made above");
        if alerts.iter().any(|a| detects(a, ep)) {
            r.detected += 1;
        } else {
            r.missed.push(ep.id);
        }
    }
    rows.into_values()
        .map(|mut r| {
            if r.episodes > 0 {
                r.recall = Some(r.detected as f64 / r.episodes as f64);
                if r.alerts > 0 {
                    r.precision = Some(r.true_positives as f64 / r.alerts as f64);
                }
            }
            r
        })
        .collect()
}

/// Adds `more` (another feed's scores) into `rows`, row by row, recomputing recall and
/// precision over the sums (missed ids are dropped: they name episodes of different feeds).
pub fn merge_scores(rows: &mut Vec<Score>, more: &[Score]) {
    for m in more {
        let pos = rows.iter().position(|r| r.detector == m.detector);
        let r = match pos {
            Some(i) => &mut rows[i],
            None => {
                rows.push(Score {
                    detector: m.detector.clone(),
                    ..Score::default()
                });
                rows.last_mut().expect("just pushed")
            }
        };
        r.episodes += m.episodes;
        r.detected += m.detected;
        r.alerts += m.alerts;
        r.true_positives += m.true_positives;
        r.missed.clear();
        r.recall = (r.episodes > 0).then(|| r.detected as f64 / r.episodes as f64);
        r.precision =
            (r.episodes > 0 && r.alerts > 0).then(|| r.true_positives as f64 / r.alerts as f64);
    }
    rows.sort_by_key(|r| detector_order(&r.detector));
}

/// Built-in detectors in [`DetectorId`](super::DetectorId) order, then others by name.
fn detector_order(name: &str) -> (u8, String) {
    let known = super::DetectorId::from_name(name).filter(|&d| d != super::DetectorId::Custom);
    (known.map_or(u8::MAX, |d| d as u8), name.to_string())
}

/// The scores as a table.
pub fn format_scores(rows: &[Score]) -> String {
    let mut s = format!(
        "{:<20} {:>8} {:>8} {:>7} {:>7} {:>7} {:>9}\n",
        "detector", "episodes", "detected", "recall", "alerts", "true+", "precision"
    );
    let f = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.3}"));
    for r in rows {
        s.push_str(&format!(
            "{:<20} {:>8} {:>8} {:>7} {:>7} {:>7} {:>9}\n",
            r.detector,
            r.episodes,
            r.detected,
            f(r.recall),
            r.alerts,
            r.true_positives,
            f(r.precision)
        ));
    }
    s
}

pub mod confusion;
pub use confusion::{confusion, format_confusion, Confusion, ConfusionRow, MANIPULATION};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::truth::Episode;

    fn ep(id: u32, det: &str, stock: &str, who: &str, from: u64, until: u64) -> Episode {
        Episode {
            id,
            scenario: "x".into(),
            detector: det.into(),
            stock: stock.into(),
            locate: 1,
            participant: who.into(),
            mpid: who.into(),
            account: String::new(),
            start_ns: from,
            end_ns: until,
            detect_from_ns: from,
            detect_until_ns: until,
        }
    }

    fn al(ts: u64, det: &str, stock: &str, who: &str) -> AlertRef {
        AlertRef {
            ts,
            detector: det.into(),
            stock: stock.into(),
            participant: who.into(),
        }
    }

    #[test]
    fn an_alert_detects_only_its_own_detector_stock_participant_and_window() {
        let truth = Truth {
            episodes: vec![
                ep(0, "spoofing", "ABC", "GSCO", 100, 200),
                ep(1, "spoofing", "XYZ", "MSCO", 300, 400),
            ],
            ..Truth::default()
        };
        let alerts = [
            al(150, "spoofing", "ABC", "GSCO"), // detects 0
            al(150, "spoofing", "ABC", "GSCO"), // a duplicate: still a true positive
            al(350, "spoofing", "XYZ", "GSCO"), // wrong participant
            al(450, "spoofing", "XYZ", "MSCO"), // too late
            al(350, "layering", "XYZ", "MSCO"), // other detector: no episodes
        ];
        let rows = score(&truth, &alerts);
        assert_eq!(rows.len(), 2);
        let s = &rows[0];
        assert_eq!(
            (s.episodes, s.detected, s.alerts, s.true_positives),
            (2, 1, 4, 2)
        );
        assert_eq!(s.recall, Some(0.5));
        assert_eq!(s.precision, Some(0.5));
        assert_eq!(s.missed, vec![1]);
        let l = &rows[1];
        assert_eq!((l.episodes, l.alerts), (0, 1));
        assert_eq!((l.recall, l.precision), (None, None));
        // An alert on a void episode (one that did not play out) is neither true nor false.
        let mut with_void = truth.clone();
        with_void
            .episodes
            .push(ep(2, VOID, "VVV", "GSCO", 100, 200));
        let rows = score(&with_void, &[al(150, "spoofing", "VVV", "GSCO")]);
        assert_eq!((rows[0].episodes, rows[0].alerts), (2, 0));
        // An alert that names no participant may detect an episode.
        let rows = score(&truth, &[al(399, "spoofing", "XYZ", "")]);
        assert_eq!(rows[0].detected, 1);
        // Detectors the crate does not know (user detectors) get a row each, after the others.
        let user = [
            al(1, "odd_lots", "A", ""),
            al(2, "big_add", "A", ""),
            al(3, "odd_lots", "B", ""),
        ];
        let rows: Vec<_> = score(&truth, &user)
            .into_iter()
            .map(|r| (r.detector, r.alerts))
            .collect();
        let want = [("spoofing", 0), ("big_add", 1), ("odd_lots", 2)];
        assert_eq!(rows, want.map(|(d, n)| (d.to_string(), n)));
    }

    #[test]
    fn merged_scores_sum_and_keep_detector_order() {
        let a = score(
            &Truth {
                episodes: vec![ep(0, "layering", "A", "X", 0, 10)],
                ..Truth::default()
            },
            &[al(5, "layering", "A", "X")],
        );
        let b = score(
            &Truth {
                episodes: vec![
                    ep(0, "spoofing", "B", "X", 0, 10),
                    ep(1, "layering", "B", "X", 0, 10),
                ],
                ..Truth::default()
            },
            &[al(5, "spoofing", "B", "Y")],
        );
        let mut rows = a;
        merge_scores(&mut rows, &b);
        let got: Vec<_> = rows
            .iter()
            .map(|r| (r.detector.as_str(), r.episodes, r.detected, r.alerts))
            .collect();
        assert_eq!(got, [("spoofing", 1, 0, 1), ("layering", 2, 1, 1)]);
        assert_eq!((rows[1].recall, rows[0].precision), (Some(0.5), Some(0.0)));
    }

    #[test]
    fn alerts_jsonl_errors_name_the_line() {
        assert!(parse_alerts("{\"ts_ns\":1,\"detector\":\"x\"}\nnot json\n")
            .unwrap_err()
            .starts_with("alerts line 2"));
        let a = parse_alerts(
            "{\"ts_ns\":5,\"detector\":\"wash_trade\",\"stock\":\"A\",\"participant\":null}\n",
        )
        .unwrap();
        assert_eq!(a[0].participant, "");
        // A journal still open (or never cut): the alerts end at the first NUL.
        let open = format!(
            "{}\n{}",
            "{\"ts_ns\":5,\"detector\":\"risk\"}",
            "\0".repeat(100)
        );
        assert_eq!(parse_alerts(&open).unwrap().len(), 1);
    }
}
