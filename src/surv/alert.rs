//! Alerts: fixed-size records that explain themselves, written one JSON object per line.

use super::event::{party_name, Party, NOBODY};
use crate::agg::Touch;
use std::io::Write;

/// The detectors, in the order they run on each event (also the tie-break of alerts raised by
/// one event).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum DetectorId {
    /// Spoofing (FINRA 5210 .03 shape).
    Spoofing = 0,
    /// Layering.
    Layering = 1,
    /// Message-rate bursts per stock and per participant.
    QuoteStuffing = 2,
    /// Order-to-trade ratio over the session (RTS 9).
    OrderToTrade = 3,
    /// Momentum ignition.
    MomentumIgnition = 4,
    /// Marking the close.
    MarkingTheClose = 5,
    /// Abnormal price or volume moves, price jumps.
    AbnormalMove = 6,
    /// A locked or crossed book standing too long.
    LockedCrossed = 7,
    /// Wash / self trades.
    WashTrade = 8,
    /// Risk limit breaches (and kill switches).
    Risk = 9,
    /// A user's own detector ([`crate::surv::custom`]): its alerts name it by
    /// [`Alert::user`]; counts under this id are the user detectors' total.
    Custom = 10,
}

impl DetectorId {
    /// Every detector.
    pub const ALL: [DetectorId; 11] = [
        DetectorId::Spoofing,
        DetectorId::Layering,
        DetectorId::QuoteStuffing,
        DetectorId::OrderToTrade,
        DetectorId::MomentumIgnition,
        DetectorId::MarkingTheClose,
        DetectorId::AbnormalMove,
        DetectorId::LockedCrossed,
        DetectorId::WashTrade,
        DetectorId::Risk,
        DetectorId::Custom,
    ];

    /// The name alerts carry.
    pub fn name(self) -> &'static str {
        match self {
            DetectorId::Spoofing => "spoofing",
            DetectorId::Layering => "layering",
            DetectorId::QuoteStuffing => "quote_stuffing",
            DetectorId::OrderToTrade => "order_to_trade",
            DetectorId::MomentumIgnition => "momentum_ignition",
            DetectorId::MarkingTheClose => "marking_the_close",
            DetectorId::AbnormalMove => "abnormal_move",
            DetectorId::LockedCrossed => "locked_crossed",
            DetectorId::WashTrade => "wash_trade",
            DetectorId::Risk => "risk",
            DetectorId::Custom => "custom",
        }
    }

    /// The detector named `name`.
    pub fn from_name(name: &str) -> Option<DetectorId> {
        DetectorId::ALL.into_iter().find(|d| d.name() == name)
    }
}

/// Which user detector ([`crate::surv::custom::UserDetector`]) raised an alert: its
/// registration slot (its place in the sort order) and its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserId {
    /// Registration order, from 0.
    pub slot: u8,
    /// The detector's name (the alert's JSON `detector`).
    pub name: &'static str,
}

impl UserId {
    /// Its byte in the output's sort key: after every built-in detector.
    pub fn sort_id(self) -> u8 {
        DetectorId::ALL.len() as u8 + self.slot
    }
}

/// How serious an alert is.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
pub enum Severity {
    /// Worth a look.
    #[default]
    Low,
    /// Clearly over a threshold.
    Medium,
    /// Far over a threshold, or several at once.
    High,
    /// A risk limit breach that stops the participant (kill switch).
    Critical,
}

impl Severity {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Medium at the threshold, high at `high_ratio` × the threshold (for "at least" metrics;
    /// pass the inverse ratio for "at most" ones).
    pub fn by_ratio(ratio: f64, high_ratio: f64) -> Severity {
        if ratio >= high_ratio {
            Severity::High
        } else {
            Severity::Medium
        }
    }
}

/// One metric that made a detector fire, with the threshold it crossed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evidence {
    /// Metric name (snake_case; units in the name: `_ns`, `_bps`, `_shares`, …).
    pub name: &'static str,
    /// Measured value.
    pub value: f64,
    /// The comparison that held when the detector fired (`value op threshold`): `">="`,
    /// `"<="`, `">"`, `"<"`, `"=="`; empty for context (a metric without a test of its own).
    pub op: &'static str,
    /// The rule's threshold (from the rules file); NaN for context.
    pub threshold: f64,
}

/// Order references an alert can name.
pub const MAX_REFS: usize = 8;
/// Evidence metrics an alert can carry.
pub const MAX_EVIDENCE: usize = 16;

/// One alert: fixed size, `Copy`, built on the hot path without allocating.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Alert {
    /// Event time of the message that raised it, ns since midnight.
    pub ts: u64,
    /// Feed position of that message.
    pub seq: u32,
    /// Which detector ([`DetectorId::Custom`] for a user detector, named by `user`).
    pub detector: DetectorId,
    /// The user detector that raised it (set when it is raised; `None` for built-ins).
    pub user: Option<UserId>,
    /// Stock locate (0 when the alert is not about one stock).
    pub locate: u16,
    /// Stock symbol (spaces for none).
    pub stock: [u8; 8],
    /// The participant (MPID or account), or [`NOBODY`].
    pub party: Party,
    /// The other side's participant, when a detector knows it (wash trades: the aggressor's
    /// account, the resting side's being `party`); [`NOBODY`] otherwise.
    pub counterparty: Party,
    /// Severity.
    pub severity: Severity,
    /// For risk alerts: the participant is stopped (kill switch).
    pub kill_switch: bool,
    refs: [u64; MAX_REFS],
    n_refs: u8,
    evidence: [Evidence; MAX_EVIDENCE],
    n_evidence: u8,
    /// The stock's top of book when it fired.
    pub touch: Touch,
    /// The episode's first event time (≤ `ts`), ns since midnight.
    pub since: u64,
}

const NO_EVIDENCE: Evidence = Evidence {
    name: "",
    value: 0.0,
    op: "",
    threshold: 0.0,
};

impl Alert {
    /// An alert of `detector` at `ts`/`seq` on `locate` (symbol `stock`).
    pub fn new(detector: DetectorId, ts: u64, seq: u32, locate: u16, stock: [u8; 8]) -> Alert {
        Alert {
            ts,
            seq,
            detector,
            user: None,
            locate,
            stock,
            party: NOBODY,
            counterparty: NOBODY,
            severity: Severity::Medium,
            kill_switch: false,
            refs: [0; MAX_REFS],
            n_refs: 0,
            evidence: [NO_EVIDENCE; MAX_EVIDENCE],
            n_evidence: 0,
            touch: Touch::default(),
            since: ts,
        }
    }

    /// Names the participant.
    pub fn party(mut self, p: Party) -> Alert {
        self.party = p;
        self
    }

    /// Names the other side's participant.
    pub fn counterparty(mut self, p: Party) -> Alert {
        self.counterparty = p;
        self
    }

    /// Sets the severity.
    pub fn severity(mut self, s: Severity) -> Alert {
        self.severity = s;
        self
    }

    /// Sets the top-of-book snapshot.
    pub fn touch(mut self, t: Touch) -> Alert {
        self.touch = t;
        self
    }

    /// Sets when the episode began.
    pub fn since(mut self, ts: u64) -> Alert {
        self.since = ts.min(self.ts);
        self
    }

    /// Adds an order reference (beyond [`MAX_REFS`] they are not kept).
    pub fn order_ref(mut self, r: u64) -> Alert {
        if (self.n_refs as usize) < MAX_REFS {
            self.refs[self.n_refs as usize] = r;
            self.n_refs += 1;
        }
        self
    }

    /// Adds a metric with its threshold (beyond [`MAX_EVIDENCE`] they are not kept).
    pub fn evidence(
        mut self,
        name: &'static str,
        value: f64,
        op: &'static str,
        threshold: f64,
    ) -> Alert {
        if (self.n_evidence as usize) < MAX_EVIDENCE {
            self.evidence[self.n_evidence as usize] = Evidence {
                name,
                value,
                op,
                threshold,
            };
            self.n_evidence += 1;
        }
        self
    }

    /// Adds a metric the analyst needs beside the tests that fired, with no threshold of its
    /// own (JSON: the value alone). A NaN value (not measured) is left out.
    pub fn context(self, name: &'static str, value: f64) -> Alert {
        if value.is_nan() {
            return self;
        }
        self.evidence(name, value, "", f64::NAN)
    }

    /// A test that fired on one route of the detector (`fired`), else context.
    pub fn test_if(
        self,
        fired: bool,
        name: &'static str,
        value: f64,
        op: &'static str,
        threshold: f64,
    ) -> Alert {
        if fired {
            self.evidence(name, value, op, threshold)
        } else {
            self.context(name, value)
        }
    }

    /// The detector's name: the user detector's for its alerts, else [`DetectorId::name`].
    pub fn detector_name(&self) -> &'static str {
        self.user.map_or(self.detector.name(), |u| u.name)
    }

    /// Its detector's byte in the output's sort key: the [`DetectorId`] of a built-in, after
    /// them all for a user detector ([`UserId::sort_id`]).
    pub fn sort_id(&self) -> u8 {
        self.user.map_or(self.detector as u8, UserId::sort_id)
    }

    /// The order references.
    pub fn refs(&self) -> &[u64] {
        &self.refs[..self.n_refs as usize]
    }

    /// The evidence.
    pub fn evidence_list(&self) -> &[Evidence] {
        &self.evidence[..self.n_evidence as usize]
    }

    /// Writes the alert as one JSON line (no allocation when `out` has room: `core::fmt` into a
    /// `Vec` with capacity).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        // Hand-laid bytes, integers through `itoa` and fractions through `ryu`: no `fmt`
        // machinery, so a lone alert in a paced replay touches little cold code (see
        // `benches/alert.rs`).
        let w = out;
        w.extend_from_slice(b"{\"ts_ns\":");
        write_u64(w, self.ts);
        w.extend_from_slice(b",\"time\":\"");
        write_clock(w, self.ts);
        w.extend_from_slice(b"\",\"detector\":\"");
        w.extend_from_slice(self.detector_name().as_bytes());
        w.extend_from_slice(b"\",\"severity\":\"");
        w.extend_from_slice(self.severity.name().as_bytes());
        w.extend_from_slice(b"\",\"stock\":");
        let sym = trim_symbol(&self.stock);
        if sym.is_empty() {
            w.extend_from_slice(b"null");
        } else {
            write_json_str(w, sym);
        }
        w.extend_from_slice(b",\"participant\":");
        for (p, key) in [
            (&self.party, &b""[..]),
            (&self.counterparty, b",\"counterparty\":"),
        ] {
            w.extend_from_slice(key);
            if *p == NOBODY {
                w.extend_from_slice(b"null");
            } else {
                write_json_str(w, party_name(p));
            }
        }
        if self.detector == DetectorId::Risk {
            w.extend_from_slice(b",\"kill_switch\":");
            w.extend_from_slice(if self.kill_switch { b"true" } else { b"false" });
        }
        w.extend_from_slice(b",\"since_ns\":");
        write_u64(w, self.since);
        w.extend_from_slice(b",\"order_refs\":[");
        for (i, r) in self.refs().iter().enumerate() {
            if i > 0 {
                w.push(b',');
            }
            write_u64(w, *r);
        }
        w.extend_from_slice(b"],\"evidence\":{");
        for (i, e) in self.evidence_list().iter().enumerate() {
            if i > 0 {
                w.push(b',');
            }
            write_json_str(w, e.name);
            w.extend_from_slice(b":{\"value\":");
            write_f64(w, e.value);
            if !e.op.is_empty() {
                w.extend_from_slice(b",\"op\":\"");
                w.extend_from_slice(e.op.as_bytes());
                w.extend_from_slice(b"\",\"threshold\":");
                write_f64(w, e.threshold);
            }
            w.push(b'}');
        }
        w.extend_from_slice(b"},\"book\":{\"bid\":");
        write_price_or_null(w, self.touch.bid, self.touch.bid_shares);
        w.extend_from_slice(b",\"bid_shares\":");
        write_u64(w, self.touch.bid_shares);
        w.extend_from_slice(b",\"ask\":");
        write_price_or_null(w, self.touch.ask, self.touch.ask_shares);
        w.extend_from_slice(b",\"ask_shares\":");
        write_u64(w, self.touch.ask_shares);
        w.extend_from_slice(b"},\"seq\":");
        write_u64(w, self.seq as u64);
        w.extend_from_slice(b"}\n");
    }
}

/// The symbol without its padding.
pub fn trim_symbol(s: &[u8; 8]) -> &str {
    std::str::from_utf8(s)
        .unwrap_or("?")
        .trim_end_matches([' ', '\0'])
}

fn write_json_str(w: &mut Vec<u8>, s: &str) {
    w.push(b'"');
    for c in s.bytes() {
        match c {
            b'"' | b'\\' => {
                w.push(b'\\');
                w.push(c);
            }
            c if c < 0x20 => {
                let _ = write!(w, "\\u{c:04x}");
            }
            c => w.push(c),
        }
    }
    w.push(b'"');
}

fn write_u64(w: &mut Vec<u8>, v: u64) {
    w.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// A finite number as JSON: a whole number (below 2^53) in integer form, any other in its
/// shortest round-trip form; NaN and infinities as `null`.
fn write_f64(w: &mut Vec<u8>, v: f64) {
    const EXACT: f64 = (1u64 << 53) as f64;
    if !v.is_finite() {
        w.extend_from_slice(b"null");
    } else if v.fract() == 0.0 && v.abs() < EXACT {
        if v < 0.0 {
            w.push(b'-');
        }
        write_u64(w, v.abs() as u64);
    } else {
        w.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
    }
}

fn write_price_or_null(w: &mut Vec<u8>, price: u32, shares: u64) {
    if shares == 0 {
        w.extend_from_slice(b"null");
    } else {
        w.push(b'"');
        write_u64(w, (price / 10_000) as u64);
        w.push(b'.');
        write_digits(w, (price % 10_000) as u64, 4);
        w.push(b'"');
    }
}

/// `v` in exactly `n` digits (zero-padded; `v < 10^n`).
fn write_digits(w: &mut Vec<u8>, mut v: u64, n: usize) {
    let at = w.len();
    w.resize(at + n, b'0');
    for d in w[at..].iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// `HH:MM:SS.nnnnnnnnn`.
fn write_clock(w: &mut Vec<u8>, ts: u64) {
    let s = ts / 1_000_000_000;
    let h = s / 3600;
    if h < 100 {
        write_digits(w, h, 2);
    } else {
        write_u64(w, h);
    }
    w.push(b':');
    write_digits(w, s / 60 % 60, 2);
    w.push(b':');
    write_digits(w, s % 60, 2);
    w.push(b'.');
    write_digits(w, ts % 1_000_000_000, 9);
}

/// Where detectors put alerts: a fixed-capacity buffer, drained by the caller after each event;
/// alerts beyond its capacity are counted, never lost silently.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Alerts {
    #[serde(with = "crate::ckpt::scratch")]
    buf: Vec<Alert>,
    cap: usize,
    /// Alerts that did not fit (the caller drains after every event, so only a detector raising
    /// more than the capacity on one event can overflow).
    pub overflow: u64,
    /// Alerts raised, by detector.
    pub raised: [u64; DetectorId::ALL.len()],
}

impl Alerts {
    /// A buffer of `cap` alerts.
    pub fn new(cap: usize) -> Alerts {
        Alerts {
            buf: Vec::with_capacity(cap),
            cap,
            overflow: 0,
            raised: [0; DetectorId::ALL.len()],
        }
    }

    /// Raises `a`.
    #[inline]
    pub fn push(&mut self, a: Alert) {
        self.raised[a.detector as usize] += 1;
        if self.buf.len() < self.cap {
            self.buf.push(a);
        } else {
            self.overflow += 1;
        }
    }

    /// The alerts raised since the last drain.
    pub fn pending(&self) -> &[Alert] {
        &self.buf
    }

    /// Takes the alerts raised since the last drain, in order.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Alert> {
        self.buf.drain(..)
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_is_one_line_of_valid_json_with_its_evidence_and_book() {
        let a = Alert::new(DetectorId::Spoofing, 34_200_000_000_123, 7, 3, *b"ABC     ")
            .party(super::super::event::party_of_mpid(*b"GSCO"))
            .severity(Severity::High)
            .order_ref(11)
            .order_ref(12)
            .evidence("lifetime_ns", 1500.0, "<=", 2e9)
            .evidence("ratio", f64::NAN, ">=", 2.5)
            .touch(Touch {
                bid: 1_000_100,
                bid_shares: 300,
                ask: 1_000_200,
                ask_shares: 0,
            })
            .since(34_200_000_000_000);
        let mut out = Vec::new();
        a.write_json(&mut out);
        assert_eq!(out.iter().filter(|&&c| c == b'\n').count(), 1);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(v["detector"], "spoofing");
        assert_eq!(v["time"], "09:30:00.000000123");
        assert_eq!(v["stock"], "ABC");
        assert_eq!(v["participant"], "GSCO");
        assert!(v["counterparty"].is_null(), "none known");
        assert_eq!(v["severity"], "high");
        assert_eq!(v["order_refs"], serde_json::json!([11, 12]));
        assert_eq!(v["evidence"]["lifetime_ns"]["value"], 1500.0);
        assert_eq!(v["evidence"]["lifetime_ns"]["threshold"], 2e9);
        assert!(v["evidence"]["ratio"]["value"].is_null());
        assert_eq!(v["book"]["bid"], "100.0100");
        assert!(v["book"]["ask"].is_null());
        assert_eq!(v["since_ns"], 34_200_000_000_000u64);
    }
}
