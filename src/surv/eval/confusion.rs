//! The confusion matrix: for each scenario of the truth (hard negatives included), on how many
//! of its episodes each detector fired — an alert of that detector on the episode's stock,
//! stamped in its detection window, whoever it names — and the alerts that fell on no episode.
//! An alert of a manipulation family on a hard negative is a false alert.

use super::{AlertRef, NEGATIVE};
use crate::truth::{Episode, Truth};
use serde::Serialize;

/// The manipulation families: their alerts on a hard negative (or on a clean feed) are false.
pub const MANIPULATION: [&str; 6] = [
    "spoofing",
    "layering",
    "quote_stuffing",
    "momentum_ignition",
    "marking_the_close",
    "wash_trade",
];

/// One scenario's row.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ConfusionRow {
    /// Scenario.
    pub scenario: String,
    /// Its expected detector (`none`: a hard negative).
    pub expected: String,
    /// Episodes.
    pub episodes: u64,
    /// Per column of [`Confusion::detectors`]: episodes on which that detector fired.
    pub fired: Vec<u64>,
    /// Episodes on which no manipulation family nor abnormal move fired.
    pub silent: u64,
}

/// The matrix.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Confusion {
    /// Columns: detectors, in detector order then by name.
    pub detectors: Vec<String>,
    /// Rows: scenarios, families first, hard negatives last.
    pub rows: Vec<ConfusionRow>,
    /// Per column: alerts that fell on no episode at all.
    pub unmatched: Vec<u64>,
    /// Hard negatives.
    pub negatives: u64,
    /// Of them, with at least one manipulation-family alert.
    pub negatives_alerted: u64,
    /// Manipulation-family alerts that fell on a hard negative (false alerts).
    pub false_alerts_on_negatives: u64,
}

fn on(a: &AlertRef, ep: &Episode) -> bool {
    a.stock == ep.stock && (ep.detect_from_ns..=ep.detect_until_ns).contains(&a.ts)
}

fn order(name: &str) -> (u8, String) {
    super::detector_order(name)
}

/// The confusion matrix of `alerts` against `truth`.
pub fn confusion(truth: &Truth, alerts: &[AlertRef]) -> Confusion {
    let mut c = Confusion::default();
    for a in alerts {
        if !c.detectors.contains(&a.detector) {
            c.detectors.push(a.detector.clone());
        }
    }
    c.detectors.sort_by_key(|d| order(d));
    c.unmatched = vec![0; c.detectors.len()];
    let col = |d: &str, c: &Confusion| c.detectors.iter().position(|x| x == d);
    for ep in &truth.episodes {
        let same = |r: &ConfusionRow| r.scenario == ep.scenario && r.expected == ep.detector;
        let i = match c.rows.iter().position(same) {
            Some(i) => i,
            None => {
                c.rows.push(ConfusionRow {
                    scenario: ep.scenario.clone(),
                    expected: ep.detector.clone(),
                    fired: vec![0; c.detectors.len()],
                    ..ConfusionRow::default()
                });
                c.rows.len() - 1
            }
        };
        let mut fired = vec![false; c.detectors.len()];
        let mut manip = 0;
        for a in alerts.iter().filter(|a| on(a, ep)) {
            if let Some(k) = col(&a.detector, &c) {
                fired[k] = true;
            }
            if MANIPULATION.contains(&a.detector.as_str()) {
                manip += 1;
            }
        }
        let row = &mut c.rows[i];
        row.episodes += 1;
        for (k, f) in fired.iter().enumerate() {
            row.fired[k] += *f as u64;
        }
        let loud = c
            .detectors
            .iter()
            .zip(&fired)
            .any(|(d, f)| *f && (MANIPULATION.contains(&d.as_str()) || d == "abnormal_move"));
        row.silent += !loud as u64;
        if ep.detector == NEGATIVE {
            c.negatives += 1;
            c.negatives_alerted += (manip > 0) as u64;
            c.false_alerts_on_negatives += manip;
        }
    }
    for a in alerts {
        if !truth.episodes.iter().any(|ep| on(a, ep)) {
            if let Some(k) = col(&a.detector, &c) {
                c.unmatched[k] += 1;
            }
        }
    }
    c.rows.sort_by_key(row_order);
    c
}

impl Confusion {
    /// Adds `other` (another feed's matrix) into this one.
    pub fn merge(&mut self, other: &Confusion) {
        for d in &other.detectors {
            if !self.detectors.contains(d) {
                self.detectors.push(d.clone());
                self.unmatched.push(0);
                self.rows.iter_mut().for_each(|r| r.fired.push(0));
            }
        }
        let col = |d: &str, s: &Confusion| s.detectors.iter().position(|x| x == d).expect("added");
        for (k, d) in other.detectors.iter().enumerate() {
            let j = col(d, self);
            self.unmatched[j] += other.unmatched[k];
        }
        for r in &other.rows {
            let same = |x: &ConfusionRow| x.scenario == r.scenario && x.expected == r.expected;
            let i = match self.rows.iter().position(same) {
                Some(i) => i,
                None => {
                    self.rows.push(ConfusionRow {
                        scenario: r.scenario.clone(),
                        expected: r.expected.clone(),
                        fired: vec![0; self.detectors.len()],
                        ..ConfusionRow::default()
                    });
                    self.rows.len() - 1
                }
            };
            self.rows[i].episodes += r.episodes;
            self.rows[i].silent += r.silent;
            for (k, d) in other.detectors.iter().enumerate() {
                let j = col(d, self);
                self.rows[i].fired[j] += r.fired[k];
            }
        }
        self.negatives += other.negatives;
        self.negatives_alerted += other.negatives_alerted;
        self.false_alerts_on_negatives += other.false_alerts_on_negatives;
        // Keep the column and row orders of `confusion`.
        let mut idx: Vec<usize> = (0..self.detectors.len()).collect();
        idx.sort_by_key(|&k| order(&self.detectors[k]));
        let pick = |v: &[u64]| idx.iter().map(|&k| v[k]).collect::<Vec<_>>();
        self.unmatched = pick(&self.unmatched);
        for r in &mut self.rows {
            r.fired = pick(&r.fired);
        }
        self.detectors = idx.iter().map(|&k| self.detectors[k].clone()).collect();
        self.rows.sort_by_key(row_order);
    }
}

/// Families in detector order, then void episodes, then hard negatives.
fn row_order(r: &ConfusionRow) -> (bool, bool, (u8, String), String) {
    let void = r.expected == super::VOID;
    (
        r.expected == NEGATIVE,
        void,
        order(&r.expected),
        r.scenario.clone(),
    )
}

/// A detector's column heading.
fn short(d: &str) -> &str {
    match d {
        "spoofing" => "spoof",
        "layering" => "layer",
        "quote_stuffing" => "stuff",
        "order_to_trade" => "o2t",
        "momentum_ignition" => "ignit",
        "marking_the_close" => "close",
        "abnormal_move" => "abnml",
        "locked_crossed" => "lockx",
        "wash_trade" => "wash",
        "risk" => "risk",
        d => &d[..d.len().min(6)],
    }
}

/// The matrix as text.
pub fn format_confusion(c: &Confusion) -> String {
    let mut s = String::from(
        "confusion: episodes of each scenario on which each detector fired (its stock, its window)\n",
    );
    s.push_str(&format!("{:<20} {:<18} {:>5}", "scenario", "expected", "n"));
    for d in &c.detectors {
        s.push_str(&format!(" {:>6}", short(d)));
    }
    s.push_str(&format!(" {:>7}\n", "silent"));
    for r in &c.rows {
        s.push_str(&format!(
            "{:<20} {:<18} {:>5}",
            r.scenario, r.expected, r.episodes
        ));
        for n in &r.fired {
            s.push_str(&format!(" {n:>6}"));
        }
        s.push_str(&format!(" {:>7}\n", r.silent));
    }
    s.push_str(&format!("{:<20} {:<18} {:>5}", "(on no episode)", "-", "-"));
    for n in &c.unmatched {
        s.push_str(&format!(" {n:>6}"));
    }
    s.push('\n');
    s.push_str(&format!(
        "hard negatives: {}, with a manipulation alert: {}; manipulation alerts on them (false): {}\n",
        c.negatives, c.negatives_alerted, c.false_alerts_on_negatives
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(id: u32, scenario: &str, det: &str, stock: &str, from: u64, until: u64) -> Episode {
        Episode {
            id,
            scenario: scenario.into(),
            detector: det.into(),
            stock: stock.into(),
            locate: 1,
            participant: "MMMM".into(),
            mpid: "MMMM".into(),
            account: String::new(),
            start_ns: from,
            end_ns: until,
            detect_from_ns: from,
            detect_until_ns: until,
        }
    }

    fn al(ts: u64, det: &str, stock: &str) -> AlertRef {
        AlertRef {
            ts,
            detector: det.into(),
            stock: stock.into(),
            participant: "OTHR".into(),
        }
    }

    #[test]
    fn rows_count_episodes_columns_count_detectors_negatives_count_false_alerts() {
        let truth = Truth {
            episodes: vec![
                ep(0, "layering", "layering", "A", 100, 200),
                ep(1, "layering", "layering", "B", 100, 200),
                ep(2, "neg_mm", NEGATIVE, "C", 100, 200),
            ],
            ..Truth::default()
        };
        let alerts = [
            al(150, "layering", "A"),
            al(160, "spoofing", "A"), // the same episode raised spoofing too
            al(150, "spoofing", "C"), // a false alert on the negative
            al(151, "spoofing", "C"),
            al(150, "abnormal_move", "D"), // on no episode
        ];
        let c = confusion(&truth, &alerts);
        assert_eq!(c.detectors, ["spoofing", "layering", "abnormal_move"]);
        assert_eq!(c.rows[0].scenario, "layering");
        assert_eq!((c.rows[0].episodes, c.rows[0].silent), (2, 1));
        assert_eq!(c.rows[0].fired, [1, 1, 0]);
        assert_eq!(c.rows[1].fired, [1, 0, 0]);
        assert_eq!(c.unmatched, [0, 0, 1]);
        assert_eq!(
            (
                c.negatives,
                c.negatives_alerted,
                c.false_alerts_on_negatives
            ),
            (1, 1, 2)
        );
        // Negatives get no precision/recall row of their own.
        let rows = super::super::score(&truth, &alerts);
        assert!(rows.iter().all(|r| r.detector != NEGATIVE));
        // Merging a matrix with new columns keeps every count under its detector.
        let mut m = c.clone();
        let other = confusion(&truth, &[al(150, "wash_trade", "B")]);
        m.merge(&other);
        assert_eq!(
            m.detectors,
            ["spoofing", "layering", "abnormal_move", "wash_trade"]
        );
        assert_eq!(m.rows[0].episodes, 4);
        assert_eq!(m.rows[0].fired, [1, 1, 0, 1]);
        assert_eq!(m.negatives, 2);
        assert!(format_confusion(&m).contains("manipulation alerts on them (false): 2"));
    }
}
