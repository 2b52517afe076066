//! Surveillance: market-abuse and risk detectors on the live book, with alerts that explain
//! themselves.
//!
//! ```text
//!  market message ─▶ SurvEvent::classify (before the book applies it: the resting order's side,
//!        │           price, owner; the touch before)          participant flow (CSV, accounts)
//!        ▼                                                            │ joined by time, per stock
//!  Books::apply ─▶ SurvEvent.after = touch after ─▶ detectors ◀───────┘
//!                    spoofing · layering · quote stuffing · order-to-trade · momentum ignition ·
//!                    marking the close · abnormal move · locked/crossed · wash trade
//!                       │ Alerts (fixed buffer)            │ RiskInput (fills, marks, orders)
//!                       ▼                                  ▼
//!                 alerts JSONL  ◀──────────────────── RiskBook (per participant, all stocks)
//! ```
//!
//! Every detector but risk keeps its state per stock or per (stock, participant), so it runs in
//! the shard worker that owns the stock; risk needs a participant's every stock and runs once,
//! on the merged stream ([`risk::RiskBook`]). State is sized at construction ([`Capacity`]) and
//! never grows; a full table is counted. Thresholds come from a TOML rules file ([`Rules`]) whose
//! defaults are documented in [`Rules::defaults_toml`]; rules can be replaced while running
//! ([`Surveillance::set_rules`]) without losing state.

pub mod abnormal;
pub mod alert;
pub mod close;
pub mod custom;
pub mod eval;
pub mod event;
pub mod family;
pub mod flow;
pub mod ignition;
pub mod layering;
pub mod range;
pub mod risk;
pub mod scale;
pub mod spoofing;
pub mod stuffing;
pub mod wash;
pub mod watch;

pub use alert::{Alert, Alerts, DetectorId, Evidence, Severity, UserId};
pub use custom::{DetectorFactory, UserAlerts, UserDetector, UserDetectorError};
pub use event::{Kind, Party, SurvEvent, NOBODY};
pub use flow::{FlowEvent, FlowRecord};
pub use risk::{RiskBook, RiskInput};

use crate::book::Books;
use crate::itch::Message;
use crate::state::KeyedState;
use range::Key;
use std::path::Path;

/// What a detector can look at besides the event: the books after it, and the stock's symbol.
#[derive(Clone, Copy, Debug)]
pub struct Ctx<'a> {
    /// This shard's books, after the event.
    pub books: &'a Books,
    /// The event's stock symbol (spaces for a market-wide message).
    pub symbol: [u8; 8],
}

/// A detector: state per shard, thresholds passed in on every call (so rules can change while
/// it runs).
pub trait Detector {
    /// Its table of the rules file.
    type Rules;
    /// Its id on alerts.
    const ID: DetectorId;

    /// One market event, after the books applied it (`ev.after` is the touch after).
    fn on_event(&mut self, rules: &Self::Rules, ev: &SurvEvent, ctx: &Ctx<'_>, out: &mut Alerts);

    /// Event time has passed `wm` on the whole feed (a watermark mark; the same feed positions
    /// for any worker count): timers may fire. `seq` is the mark's feed position.
    fn on_watermark(
        &mut self,
        _rules: &Self::Rules,
        _wm: u64,
        _seq: u32,
        _ctx: &Ctx<'_>,
        _out: &mut Alerts,
    ) {
    }

    /// One participant-flow record of a stock this shard owns (`locate`), joined by time.
    fn on_flow(
        &mut self,
        _rules: &Self::Rules,
        _rec: &FlowRecord,
        _locate: u16,
        _seq: u32,
        _ctx: &Ctx<'_>,
        _out: &mut Alerts,
    ) {
    }
}

/// Table sizes, fixed at construction (the `[limits]` table; not reloadable).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Capacity {
    /// Orders a detector follows at once per shard (attributed or account-linked orders).
    pub orders: usize,
    /// Participants (MPIDs and accounts) per shard, and in the risk book.
    pub parties: usize,
    /// (stock, participant) pairs per shard.
    pub pairs: usize,
    /// Highest stock locate + 1.
    pub locates: usize,
}

impl Capacity {
    /// Its table in the rules file.
    pub const TABLE: &'static str = "limits";
    /// Every size with its allowed range: bounded so a shard's tables stay within memory.
    pub const KEYS: &'static [Key] = &[
        Key::int("orders", 1, 1 << 22).why("about 1 GiB of tables per shard at most"),
        Key::int("parties", 1, 1 << 20).why("about 128 MiB of tables per shard at most"),
        Key::int("pairs", 1, 1 << 20).why("about 1 GiB of tables per shard at most"),
        Key::int("locates", 1, 65_536).why("stock locates are 16-bit"),
    ];

    /// Checks every size is in its range.
    pub fn validate(&self) -> Result<(), RuleError> {
        range::check(Self::TABLE, self, Self::KEYS)
    }

    /// Each size no larger than `fit`'s (and at least 1).
    pub fn within(&self, fit: &Capacity) -> Capacity {
        let m = |a: usize, b: usize| a.min(b).max(1);
        Capacity {
            orders: m(self.orders, fit.orders),
            parties: m(self.parties, fit.parties),
            pairs: m(self.pairs, fit.pairs),
            locates: m(self.locates, fit.locates),
        }
    }

    /// Every size brought into its range: what the tables are sized by, so that limits built
    /// in code (never validated) cannot panic or allocate without bound either.
    pub fn clamped(&self) -> Capacity {
        let k = |name: &str| {
            Self::KEYS
                .iter()
                .find(|k| k.name == name)
                .expect("a listed key")
        };
        Capacity {
            orders: range::clamp(k("orders"), self.orders),
            parties: range::clamp(k("parties"), self.parties),
            pairs: range::clamp(k("pairs"), self.pairs),
            locates: range::clamp(k("locates"), self.locates),
        }
    }
}

impl Default for Capacity {
    fn default() -> Self {
        Capacity {
            orders: 1 << 18,
            parties: 4096,
            pairs: 1 << 16,
            locates: 65_536,
        }
    }
}

/// Every detector's thresholds: the rules file.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rules {
    /// Spoofing.
    pub spoofing: spoofing::SpoofingRules,
    /// Layering.
    pub layering: layering::LayeringRules,
    /// Quote stuffing.
    pub quote_stuffing: stuffing::QuoteStuffingRules,
    /// Order-to-trade ratio.
    pub order_to_trade: stuffing::OrderToTradeRules,
    /// Momentum ignition.
    pub momentum_ignition: ignition::MomentumIgnitionRules,
    /// Marking the close.
    pub marking_the_close: close::MarkingTheCloseRules,
    /// Abnormal moves.
    pub abnormal_move: abnormal::AbnormalMoveRules,
    /// Locked or crossed books.
    pub locked_crossed: abnormal::LockedCrossedRules,
    /// Wash trades.
    pub wash_trade: wash::WashTradeRules,
    /// Risk limits.
    pub risk: risk::RiskRules,
    /// Table sizes.
    pub limits: Capacity,
}

include!(concat!(env!("OUT_DIR"), "/rule_docs.rs"));

/// Every table's keys with their ranges, by table name.
const TABLE_KEYS: [(&str, &[Key]); 11] = [
    (
        spoofing::SpoofingRules::TABLE,
        spoofing::SpoofingRules::KEYS,
    ),
    (
        layering::LayeringRules::TABLE,
        layering::LayeringRules::KEYS,
    ),
    (
        stuffing::QuoteStuffingRules::TABLE,
        stuffing::QuoteStuffingRules::KEYS,
    ),
    (
        stuffing::OrderToTradeRules::TABLE,
        stuffing::OrderToTradeRules::KEYS,
    ),
    (
        ignition::MomentumIgnitionRules::TABLE,
        ignition::MomentumIgnitionRules::KEYS,
    ),
    (
        close::MarkingTheCloseRules::TABLE,
        close::MarkingTheCloseRules::KEYS,
    ),
    (
        abnormal::AbnormalMoveRules::TABLE,
        abnormal::AbnormalMoveRules::KEYS,
    ),
    (
        abnormal::LockedCrossedRules::TABLE,
        abnormal::LockedCrossedRules::KEYS,
    ),
    (wash::WashTradeRules::TABLE, wash::WashTradeRules::KEYS),
    (risk::RiskRules::TABLE, risk::RiskRules::KEYS),
    (Capacity::TABLE, Capacity::KEYS),
];

/// The printed range of a key (nothing for a flag).
fn allowed_note(k: &Key) -> String {
    match k.allowed {
        range::Allowed::Flag => String::new(),
        a if k.why.is_empty() => format!(" Allowed: {a}."),
        a => format!(" Allowed: {a} ({}).", k.why),
    }
}

/// `doc` as `# ` comment lines of at most 100 columns.
fn push_comment(s: &mut String, doc: &str) {
    let mut line = String::from("#");
    for w in doc.split_whitespace() {
        if line.len() + 1 + w.len() > 100 && line.len() > 1 {
            s.push_str(&line);
            s.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(w);
    }
    if line.len() > 1 {
        s.push_str(&line);
        s.push('\n');
    }
}

/// A rules file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// I/O.
    #[error("reading rules {path}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML, or an unknown table or key, or a value of the wrong type.
    #[error("rules {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A threshold out of range (named `table.key`, with its allowed range).
    #[error("rules {path}: [{table}] {table}.{rule}")]
    Invalid {
        /// The file.
        path: String,
        /// The table.
        table: &'static str,
        /// The key and what it must be.
        rule: RuleError,
    },
}

/// One rule value out of its range: the key, and what it must be (with the value found). The
/// table is the caller's (each table's `validate` checks only its own keys).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key} {must}")]
pub struct RuleError {
    /// The key, as in the rules file.
    pub key: &'static str,
    /// What is wrong, e.g. `= 2.0 is out of range; allowed [0, 1]` (from the key's range, see
    /// [`range::check`]) or `must be within 2..=top_levels (4) (got 5)` (between keys).
    pub must: String,
}

impl RuleError {
    /// `key` `must` be something else.
    pub fn new(key: &'static str, must: impl Into<String>) -> RuleError {
        RuleError {
            key,
            must: must.into(),
        }
    }
}

/// New rules whose `[limits]` differ from the running ones: the tables are sized at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("[limits] cannot change while running (tables are sized at start); restart to resize")]
pub struct LimitsChanged;

impl Rules {
    /// Parses rules from TOML text (`path` names it in errors); missing tables and keys take
    /// their defaults.
    ///
    /// # Errors
    /// Invalid TOML, unknown keys, wrong types, thresholds out of range.
    pub fn from_toml(text: &str, path: &str) -> Result<Rules, RulesError> {
        let rules: Rules = toml::from_str(text).map_err(|e| RulesError::Parse {
            path: path.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        rules
            .validate()
            .map_err(|(table, rule)| RulesError::Invalid {
                path: path.to_string(),
                table,
                rule,
            })?;
        Ok(rules)
    }

    /// Reads a rules file.
    ///
    /// # Errors
    /// As [`Rules::from_toml`], and I/O errors.
    pub fn load(path: &Path) -> Result<Rules, RulesError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| RulesError::Io {
            path: p.clone(),
            source,
        })?;
        Rules::from_toml(&text, &p)
    }

    /// Checks every key of every table against its allowed range (and the few keys bounded by
    /// another); the first bad one as (table, its key's error), shown by [`RulesError::Invalid`]
    /// as `table.key` with the range.
    pub fn validate(&self) -> Result<(), (&'static str, RuleError)> {
        for (t, r) in self.checks() {
            r.map_err(|m| (t, m))?;
        }
        Ok(())
    }

    /// Every table's name and check.
    fn checks(&self) -> [(&'static str, Result<(), RuleError>); 11] {
        [
            (spoofing::SpoofingRules::TABLE, self.spoofing.validate()),
            (layering::LayeringRules::TABLE, self.layering.validate()),
            (
                stuffing::QuoteStuffingRules::TABLE,
                self.quote_stuffing.validate(),
            ),
            (
                stuffing::OrderToTradeRules::TABLE,
                self.order_to_trade.validate(),
            ),
            (
                ignition::MomentumIgnitionRules::TABLE,
                self.momentum_ignition.validate(),
            ),
            (
                close::MarkingTheCloseRules::TABLE,
                self.marking_the_close.validate(),
            ),
            (
                abnormal::AbnormalMoveRules::TABLE,
                self.abnormal_move.validate(),
            ),
            (
                abnormal::LockedCrossedRules::TABLE,
                self.locked_crossed.validate(),
            ),
            (wash::WashTradeRules::TABLE, self.wash_trade.validate()),
            (risk::RiskRules::TABLE, self.risk.validate()),
            (Capacity::TABLE, self.limits.validate()),
        ]
    }

    /// The default rules as TOML (every key, with its default value).
    pub fn defaults_toml() -> String {
        let mut s = String::from(
            "# tickwatch surveillance rules: every key with its meaning and default.\n\
             # Missing tables and keys take these defaults; unknown keys are an error.\n\
             # Times are in nanoseconds of event time (`_ns`), prices moves in basis points (`_bps`).\n",
        );
        let text = toml::to_string(&Rules::default()).expect("the defaults serialise");
        let (mut table, mut keys): (&str, &[Key]) = ("", &[]);
        for line in text.lines() {
            if let Some(t) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                // The table's field in `Rules`: its type names the table's keys.
                let (ty, doc) = RULE_DOCS
                    .iter()
                    .find(|r| r.0 == "Rules" && r.1 == t)
                    .map_or(("", ""), |r| (r.2, r.3));
                table = ty;
                keys = TABLE_KEYS.iter().find(|k| k.0 == t).map_or(&[], |k| k.1);
                s.push('\n');
                push_comment(&mut s, doc);
            } else if let Some((key, _)) = line.split_once(" = ") {
                if let Some(r) = RULE_DOCS.iter().find(|r| r.0 == table && r.1 == key) {
                    let range = keys.iter().find(|k| k.name == key).map(allowed_note);
                    push_comment(&mut s, &format!("{}{}", r.3, range.unwrap_or_default()));
                }
            }
            if !line.is_empty() {
                s.push_str(line);
                s.push('\n');
            }
        }
        s
    }

    /// The enabled flag of `d`.
    pub fn enabled(&self, d: DetectorId) -> bool {
        match d {
            DetectorId::Spoofing => self.spoofing.enabled,
            DetectorId::Layering => self.layering.enabled,
            DetectorId::QuoteStuffing => self.quote_stuffing.enabled,
            DetectorId::OrderToTrade => self.order_to_trade.enabled,
            DetectorId::MomentumIgnition => self.momentum_ignition.enabled,
            DetectorId::MarkingTheClose => self.marking_the_close.enabled,
            DetectorId::AbnormalMove => self.abnormal_move.enabled,
            DetectorId::LockedCrossed => self.locked_crossed.enabled,
            DetectorId::WashTrade => self.wash_trade.enabled,
            DetectorId::Risk => self.risk.enabled,
            // User detectors have their own switches.
            DetectorId::Custom => true,
        }
    }
}

/// Counters a surveillance run reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SurvCounters {
    /// Events seen.
    pub events: u64,
    /// Flow records applied (their stock is this shard's and known).
    pub flow_applied: u64,
    /// Order → account links dropped because the table was full.
    pub account_overflow: u64,
    /// Risk inputs dropped because the buffer was full (never expected: drained per event).
    pub risk_overflow: u64,
    /// Rules replaced while running.
    pub reloads: u64,
}

/// Bits of the account-link filter.
const LINK_FILTER_BITS: usize = 1 << 20;

#[inline]
fn link_bit(order_ref: u64) -> usize {
    (order_ref.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 44) as usize
}

/// Risk inputs one step (an event, or one stock's flow at a mark) can buffer before the
/// caller drains them; the rest are counted ([`SurvCounters::risk_overflow`]). A step concerns
/// one stock, so what overflows does not depend on the sharding.
const RISK_BUF: usize = 256;

/// The detectors of one shard (or of a whole single-threaded run).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Surveillance {
    rules: Rules,
    spoofing: spoofing::Spoofing,
    layering: layering::Layering,
    stuffing: stuffing::QuoteStuffing,
    otr: stuffing::OrderToTrade,
    ignition: ignition::MomentumIgnition,
    close: close::MarkingTheClose,
    abnormal: abnormal::AbnormalMove,
    locked: abnormal::LockedCrossed,
    wash: wash::WashTrade,
    /// Detectors of the user's own, run after the built-in ones.
    #[serde(skip)]
    user: custom::UserDetectors,
    /// Alerts raised and not yet drained.
    pub alerts: Alerts,
    /// Risk inputs produced and not yet drained: (ts, seq, input).
    #[serde(with = "crate::ckpt::cap")]
    pub risk: Vec<(u64, u32, RiskInput)>,
    /// Flow records grouped by stock (each group in time order), and each group's cursor.
    #[serde(with = "crate::ckpt::cap")]
    flow: Vec<(Vec<FlowRecord>, usize)>,
    /// Group index per locate (`u32::MAX`: none), resolved when the stock's directory arrives.
    #[serde(with = "crate::ckpt::cap")]
    flow_of: Vec<u32>,
    /// The locates with a flow group, ascending (at most one per flow stock: preallocated).
    #[serde(with = "crate::ckpt::cap")]
    flow_locates: Vec<u16>,
    /// Order reference → account (from flow `new` records).
    accounts: KeyedState<event::Party>,
    /// A one-hash filter over the linked order references (2²⁰ bits, 128 KiB): most orders are
    /// not the firm's, and a clear bit answers without probing the table.
    #[serde(with = "crate::ckpt::cap")]
    linked: Vec<u64>,
    /// Per locate: some party holds a position (risk marks are sent on touch changes).
    #[serde(with = "crate::ckpt::cap")]
    held: Vec<bool>,
    /// Per locate, the mark interval (`marks`) in which its mid last went to the risk book: a
    /// held stock's mid is sent on its first touch change of each interval, not on every one
    /// (the same events for any sharding; positions are marked at most one interval stale).
    #[serde(with = "crate::ckpt::cap")]
    marked: Vec<u32>,
    /// Marks seen.
    marks: u32,
    /// Flow stamped after this is never joined (the replay's `--until`; `u64::MAX`: none).
    flow_stop: u64,
    /// Counters.
    pub counters: SurvCounters,
    /// Scratch for [`Surveillance::drain_step`]: (locate, detector, index, source).
    #[serde(with = "crate::ckpt::cap")]
    order: Vec<(u16, u8, u16, u8)>,
}

impl Surveillance {
    /// Detectors with `rules` (their `[limits]` size the state), joined with the participant
    /// `flow` (in time order).
    pub fn new(rules: Rules, flow: &[FlowRecord]) -> Surveillance {
        Surveillance::sized(rules, flow, rules.limits)
    }

    /// [`Surveillance::new`] with tables no larger than `fit` — what the input can fill (e.g.
    /// a shard's orders added, see `pipeline::sizing`): tables that never fill behave as the
    /// configured ones, without paying for them. The rules keep their `[limits]` (a reload is
    /// compared with those).
    pub fn sized(rules: Rules, flow: &[FlowRecord], fit: Capacity) -> Surveillance {
        let cap = rules.limits.clamped().within(&fit);
        let mut groups: Vec<(Vec<FlowRecord>, usize)> = Vec::new();
        let mut by_stock: std::collections::BTreeMap<[u8; 8], usize> = Default::default();
        for r in flow {
            let g = *by_stock.entry(r.stock).or_insert_with(|| {
                groups.push((Vec::new(), 0));
                groups.len() - 1
            });
            groups[g].0.push(*r);
        }
        Surveillance {
            rules,
            spoofing: spoofing::Spoofing::new(&cap),
            layering: layering::Layering::new(&cap),
            stuffing: stuffing::QuoteStuffing::new(&cap),
            otr: stuffing::OrderToTrade::new(&cap),
            ignition: ignition::MomentumIgnition::new(&cap),
            close: close::MarkingTheClose::new(&cap),
            abnormal: abnormal::AbnormalMove::new(&cap),
            locked: abnormal::LockedCrossed::new(&cap),
            wash: wash::WashTrade::new(&cap),
            user: custom::UserDetectors::default(),
            alerts: Alerts::new(ALERTS_PER_STEP),
            risk: Vec::with_capacity(RISK_BUF),
            flow_of: vec![u32::MAX; cap.locates],
            flow_locates: Vec::with_capacity(groups.len()),
            flow: groups,
            // Links come from the flow's `new` records (and replaces of linked orders): sized to
            // them, so the table stays small and cache-resident, not to `limits.orders`.
            linked: vec![0; LINK_FILTER_BITS / 64],
            accounts: KeyedState::new(
                (2 * flow.iter().filter(|r| r.event == FlowEvent::New).count())
                    .clamp(1024, cap.orders.max(1024)),
                event::NOBODY,
            ),
            held: vec![false; cap.locates],
            marked: vec![u32::MAX; cap.locates],
            marks: 0,
            flow_stop: u64::MAX,
            counters: SurvCounters::default(),
            order: Vec::with_capacity(MAX_STEP_RECORDS),
        }
    }

    /// [`Surveillance::new`] with one instance of each user detector `factories` build, in
    /// that order.
    ///
    /// # Errors
    /// A user detector that cannot be registered ([`Surveillance::add_detector`]).
    pub fn with_detectors(
        rules: Rules,
        flow: &[FlowRecord],
        factories: &[DetectorFactory],
    ) -> Result<Surveillance, UserDetectorError> {
        let mut s = Surveillance::new(rules, flow);
        for f in factories {
            s.add_detector(f())?;
        }
        Ok(s)
    }

    /// Registers a detector of the user's own ([`custom`]): it runs after the built-in ones
    /// (and earlier user detectors) on every event, mark and flow record.
    ///
    /// # Errors
    /// Its name is malformed or taken, or there are already
    /// [`custom::MAX_USER_DETECTORS`].
    pub fn add_detector(&mut self, d: Box<dyn UserDetector>) -> Result<(), UserDetectorError> {
        self.user.add(d)
    }

    /// The user detectors' names, in registration order.
    pub fn user_detectors(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.user.names()
    }

    /// Joins no flow record stamped after `ts` (a replay that stops at `ts`; the earliest of
    /// several stops holds).
    pub fn set_flow_stop(&mut self, ts: u64) {
        self.flow_stop = self.flow_stop.min(ts);
    }

    /// The rules in force.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Replaces the rules while running; state is kept. The `[limits]` cannot change (the
    /// tables are sized at construction).
    ///
    /// # Errors
    /// New rules whose limits differ.
    pub fn set_rules(&mut self, rules: Rules) -> Result<(), LimitsChanged> {
        if rules.limits != self.rules.limits {
            return Err(LimitsChanged);
        }
        self.rules = rules;
        self.counters.reloads += 1;
        Ok(())
    }

    /// Classifies `msg` before the books apply it, applying first the flow records of its stock
    /// stamped at or before it. The party of an order linked to an account by the flow is the
    /// account.
    pub fn before(&mut self, msg: &Message<'_>, books: &Books, seq: u32) -> SurvEvent {
        let locate = msg.stock_locate();
        if let Message::StockDirectory(d) = msg {
            if let Some(g) = self
                .flow
                .iter()
                .position(|(recs, _)| recs[0].stock == d.stock)
            {
                if let Some(slot) = self.flow_of.get_mut(locate as usize) {
                    if *slot == u32::MAX && self.flow_locates.len() < self.flow_locates.capacity() {
                        let at = self.flow_locates.partition_point(|&l| l < locate);
                        self.flow_locates.insert(at, locate);
                    }
                    *slot = g as u32;
                }
            }
        }
        if locate != 0 {
            self.flow_until(locate, msg.timestamp(), seq, books);
        }
        let mut ev = SurvEvent::classify(msg, books, seq);
        if !self.flow.is_empty() {
            let link = |r: u64, acc: &mut KeyedState<Party>, linked: &[u64]| {
                let b = link_bit(r);
                if linked[b / 64] & (1 << (b % 64)) == 0 {
                    return None;
                }
                acc.get(r, 0).copied()
            };
            match &mut ev.kind {
                Kind::Add {
                    order_ref, party, ..
                }
                | Kind::Exec {
                    order_ref, party, ..
                }
                | Kind::Cancel {
                    order_ref, party, ..
                } => {
                    if let Some(a) = link(*order_ref, &mut self.accounts, &self.linked) {
                        *party = a;
                    }
                }
                Kind::Replace {
                    old_ref,
                    new_ref,
                    party,
                    ..
                } => {
                    if let Some(a) = link(*old_ref, &mut self.accounts, &self.linked) {
                        *party = a;
                        // The new order keeps the account.
                        if self.accounts.set(*new_ref, 0, a).is_err() {
                            self.counters.account_overflow += 1;
                        } else {
                            let b = link_bit(*new_ref);
                            self.linked[b / 64] |= 1 << (b % 64);
                        }
                    }
                }
                _ => {}
            }
        }
        ev
    }

    /// Runs the detectors on `ev` (from [`Surveillance::before`]) now that `books` applied it.
    pub fn after(&mut self, ev: &mut SurvEvent, books: &Books) {
        self.counters.events += 1;
        if ev.locate != 0 {
            ev.after = crate::agg::Touch::of(books, ev.locate);
        }
        let ctx = Ctx {
            books,
            symbol: books.symbol(ev.locate).copied().unwrap_or([b' '; 8]),
        };
        let r = &self.rules;
        let out = &mut self.alerts;
        if r.spoofing.enabled {
            // A spoof on a side the same participant layered is reported as layering.
            let mut layering = layering::WithRules(&mut self.layering, &r.layering);
            let fam: spoofing::Family<'_> = if r.layering.enabled {
                Some(&mut layering)
            } else {
                None
            };
            self.spoofing.on_event_with(&r.spoofing, ev, &ctx, out, fam);
        }
        if r.layering.enabled {
            self.layering.on_event(&r.layering, ev, &ctx, out);
        }
        if r.quote_stuffing.enabled {
            self.stuffing.on_event(&r.quote_stuffing, ev, &ctx, out);
        }
        if r.order_to_trade.enabled {
            self.otr.on_event(&r.order_to_trade, ev, &ctx, out);
        }
        if r.momentum_ignition.enabled {
            self.ignition.on_event(&r.momentum_ignition, ev, &ctx, out);
        }
        if r.marking_the_close.enabled {
            self.close.on_event(&r.marking_the_close, ev, &ctx, out);
        }
        if r.abnormal_move.enabled {
            self.abnormal.on_event(&r.abnormal_move, ev, &ctx, out);
        }
        if r.locked_crossed.enabled {
            self.locked.on_event(&r.locked_crossed, ev, &ctx, out);
        }
        if r.wash_trade.enabled {
            self.wash.on_event(&r.wash_trade, ev, &ctx, out);
        }
        if !self.user.is_empty() {
            self.user.on_event(ev, &ctx, out);
        }
        if r.risk.enabled {
            self.risk_inputs(ev, &ctx);
        }
    }

    /// What `ev` tells the risk book: fills and orders of known parties (a flow-linked order's
    /// fills come from the flow, not from here), and marks of stocks someone holds.
    fn risk_inputs(&mut self, ev: &SurvEvent, ctx: &Ctx<'_>) {
        let flow_linked = |s: &mut Self, r: u64| {
            let b = link_bit(r);
            !s.flow.is_empty()
                && s.linked[b / 64] & (1 << (b % 64)) != 0
                && s.accounts.get(r, 0).is_some()
        };
        let input = match ev.kind {
            Kind::Exec {
                order_ref,
                side,
                price,
                shares,
                party,
                ..
            } if party != NOBODY && !flow_linked(self, order_ref) => Some(RiskInput::Fill {
                party,
                locate: ev.locate,
                stock: ctx.symbol,
                side,
                price,
                shares,
                touch: ev.after,
            }),
            Kind::Add { party, .. } if party != NOBODY => Some(RiskInput::Order {
                party,
                locate: ev.locate,
                cancel: false,
            }),
            Kind::Cancel { party, .. } if party != NOBODY => Some(RiskInput::Order {
                party,
                locate: ev.locate,
                cancel: true,
            }),
            _ => None,
        };
        if let Some(i) = input {
            if let RiskInput::Fill { locate, .. } = i {
                if let Some(h) = self.held.get_mut(locate as usize) {
                    *h = true;
                }
            }
            self.push_risk(ev.ts, ev.seq, i);
        }
        let l = ev.locate as usize;
        if ev.before != ev.after
            && self.held.get(l).copied().unwrap_or(false)
            && self.marked[l] != self.marks
        {
            if let Some(mid2) = ev.mid2() {
                self.marked[l] = self.marks;
                let mark = RiskInput::Mark {
                    locate: ev.locate,
                    mid2,
                    touch: ev.after,
                };
                self.push_risk(ev.ts, ev.seq, mark);
            }
        }
    }

    fn push_risk(&mut self, ts: u64, seq: u32, i: RiskInput) {
        if self.risk.len() < RISK_BUF {
            self.risk.push((ts, seq, i));
        } else {
            self.counters.risk_overflow += 1;
        }
    }

    /// Applies the flow records of `locate` stamped at or before `ts` (alerts they raise carry
    /// `seq`, the position of the message or mark that let them in).
    fn flow_until(&mut self, locate: u16, ts: u64, seq: u32, books: &Books) {
        let Some(&g) = self.flow_of.get(locate as usize) else {
            return;
        };
        if g == u32::MAX {
            return;
        }
        let g = g as usize;
        while let Some(rec) = self.flow[g].0.get(self.flow[g].1).copied() {
            if rec.ts > ts {
                break;
            }
            self.flow[g].1 += 1;
            self.apply_flow(&rec, locate, seq, books);
        }
    }

    // Out of line: once per flow record, while `flow_until` runs on every event.
    #[inline(never)]
    fn apply_flow(&mut self, rec: &FlowRecord, locate: u16, seq: u32, books: &Books) {
        self.counters.flow_applied += 1;
        if rec.event == FlowEvent::New && rec.order_ref != 0 {
            if self.accounts.set(rec.order_ref, 0, rec.account).is_err() {
                self.counters.account_overflow += 1;
            } else {
                let b = link_bit(rec.order_ref);
                self.linked[b / 64] |= 1 << (b % 64);
            }
        }
        let ctx = Ctx {
            books,
            symbol: rec.stock,
        };
        let r = &self.rules;
        if r.wash_trade.enabled {
            self.wash
                .on_flow(&r.wash_trade, rec, locate, seq, &ctx, &mut self.alerts);
        }
        if r.spoofing.enabled {
            self.spoofing
                .on_flow(&r.spoofing, rec, locate, seq, &ctx, &mut self.alerts);
        }
        if !self.user.is_empty() {
            self.user.on_flow(rec, locate, seq, &ctx, &mut self.alerts);
        }
        if r.risk.enabled {
            let i = match rec.event {
                FlowEvent::Fill => {
                    if let Some(h) = self.held.get_mut(locate as usize) {
                        *h = true;
                    }
                    RiskInput::Fill {
                        party: rec.account,
                        locate,
                        stock: rec.stock,
                        side: rec.side,
                        price: rec.price,
                        shares: rec.shares,
                        touch: crate::agg::Touch::of(ctx.books, locate),
                    }
                }
                FlowEvent::New | FlowEvent::Cancel => RiskInput::Order {
                    party: rec.account,
                    locate,
                    cancel: rec.event == FlowEvent::Cancel,
                },
            };
            self.push_risk(rec.ts, seq, i);
        }
    }

    /// Drain steps a mark's flow takes: one per flow stock ([`Surveillance::mark_flow`]).
    pub fn mark_flow_steps(&self) -> usize {
        self.flow_locates.len()
    }

    /// Step `i` of a mark at feed position `seq`: the flow records of the `i`-th flow stock (in
    /// locate order) stamped at or before `wm` are applied (none after
    /// [`Surveillance::set_flow_stop`]). One stock per step, drained before the next: what a
    /// step can hold then depends on that stock's flow alone, never on which stocks share a
    /// shard, and a mark over many stocks waits for ring room step by step instead of dropping.
    pub fn mark_flow(&mut self, i: usize, wm: u64, seq: u32, books: &Books) {
        // A replay stopped early (`--until`) joins no flow stamped after its stop: those records
        // have no market to be joined with and are reported as never applied.
        if let Some(&locate) = self.flow_locates.get(i) {
            self.flow_until(locate, wm.min(self.flow_stop), seq, books);
        }
    }

    /// A whole mark on this thread: its flow steps, then its timers, each step handed to
    /// `drain` with its phase ([`phase`]).
    pub fn mark_all(
        &mut self,
        wm: u64,
        seq: u32,
        books: &Books,
        mut drain: impl FnMut(&mut Surveillance, u8),
    ) {
        for i in 0..self.mark_flow_steps() {
            self.mark_flow(i, wm, seq, books);
            drain(self, phase::MARK_FLOW);
        }
        self.mark_timers(wm, seq, books);
        drain(self, phase::MARK_TIMERS);
    }

    /// The last step of a mark at feed position `seq`, after its flow steps: the detectors'
    /// timers run with watermark `wm`.
    pub fn mark_timers(&mut self, wm: u64, seq: u32, books: &Books) {
        self.marks = self.marks.wrapping_add(1);
        let ctx = Ctx {
            books,
            symbol: [b' '; 8],
        };
        let r = &self.rules;
        let out = &mut self.alerts;
        if r.spoofing.enabled {
            self.spoofing.on_watermark(&r.spoofing, wm, seq, &ctx, out);
        }
        if r.layering.enabled {
            self.layering.on_watermark(&r.layering, wm, seq, &ctx, out);
        }
        if r.quote_stuffing.enabled {
            self.stuffing
                .on_watermark(&r.quote_stuffing, wm, seq, &ctx, out);
        }
        if r.order_to_trade.enabled {
            self.otr.on_watermark(&r.order_to_trade, wm, seq, &ctx, out);
        }
        if r.momentum_ignition.enabled {
            self.ignition
                .on_watermark(&r.momentum_ignition, wm, seq, &ctx, out);
        }
        if r.marking_the_close.enabled {
            self.close
                .on_watermark(&r.marking_the_close, wm, seq, &ctx, out);
        }
        if r.abnormal_move.enabled {
            self.abnormal
                .on_watermark(&r.abnormal_move, wm, seq, &ctx, out);
        }
        if r.locked_crossed.enabled {
            self.locked
                .on_watermark(&r.locked_crossed, wm, seq, &ctx, out);
        }
        if r.wash_trade.enabled {
            self.wash.on_watermark(&r.wash_trade, wm, seq, &ctx, out);
        }
        if !self.user.is_empty() {
            self.user.on_watermark(wm, seq, &ctx, out);
        }
    }

    /// Flow records never applied: their stock was not this shard's or never listed.
    pub fn flow_pending(&self) -> u64 {
        self.flow
            .iter()
            .map(|(recs, at)| (recs.len() - at) as u64)
            .sum()
    }
}

/// Where a surveillance record sorts in the output: the same for any worker count.
///
/// `epoch` counts the watermark marks before it (marks reach every worker at the same feed
/// positions); `phase` ([`phase`]) orders a mark's flow steps, its timers, the events after it
/// and the end of the epoch; `rel` is the event's feed position counted from the epoch's mark
/// (no wrap within an epoch); then the stock, the detector, and the order the detector raised
/// them in within one step (all of one stock's records come from one worker, and a step
/// concerns one stock, except a mark's timers).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct OutKey {
    /// Marks before it.
    pub epoch: u64,
    /// See [`phase`].
    pub phase: u8,
    /// Feed position from the epoch's mark.
    pub rel: u32,
    /// Stock locate.
    pub locate: u16,
    /// Detector ([`DetectorId`] as u8; risk inputs sort as [`DetectorId::Risk`]).
    pub det: u8,
    /// Raising order within (stock, detector).
    pub idx: u16,
}

/// The phases of an epoch, in output order.
pub mod phase {
    /// A mark's flow steps, one stock each.
    pub const MARK_FLOW: u8 = 0;
    /// A mark's timers.
    pub const MARK_TIMERS: u8 = 1;
    /// The events after the mark.
    pub const EVENT: u8 = 2;
    /// The end of the epoch.
    pub const EPOCH_END: u8 = 3;
}

/// What a worker sends the output stage (records travel by value in a preallocated ring: no
/// boxing). Small — most records are risk inputs — so an alert's body travels beside it, in a
/// ring of its own, in the same order (see `pipeline::alerts`).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum OutBody {
    /// An alert to write (its [`Alert`] comes with it: [`Surveillance::drain_step`] hands it
    /// over beside the record).
    Alert,
    /// An input for the risk book.
    Risk {
        /// Event time.
        ts: u64,
        /// Feed position.
        seq: u32,
        /// The input.
        input: RiskInput,
    },
    /// The worker has sent everything of its epoch.
    EpochEnd,
    /// The worker has sent everything keyed up to this record's key (sent while it waits for
    /// events, so that the merge need not wait for the next mark).
    Progress,
    /// The worker took a checkpoint mark and saved its state: everything it sends before this
    /// is before the cut (a progress record to the merge otherwise).
    Checkpoint,
}

/// A keyed record for the output stage.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SurvRecord {
    /// Sort key.
    pub key: OutKey,
    /// When the event that raised it was read (TSC ticks; 0: untimed), for event-to-alert
    /// latency.
    pub origin: u64,
    /// When the worker staged it (TSC ticks; 0: untimed), for the alert latency's detect / hop
    /// split. Set for the alerts of timed events only.
    pub staged: u64,
    /// The record.
    pub body: OutBody,
}

/// Records one step (an event or a mark) can raise at most: alerts, then risk inputs; the
/// rest are counted in [`Alerts::overflow`] and [`SurvCounters::risk_overflow`].
pub const MAX_STEP_RECORDS: usize = ALERTS_PER_STEP + RISK_BUF;
/// Alerts one step can raise at most (the rest are counted in [`Alerts::overflow`]).
pub const ALERTS_PER_STEP: usize = 256;

impl Surveillance {
    /// The detectors' table-pressure counters, by name: a nonzero count means a detector saw
    /// less than the feed (raise the `[limits]`), or for the eviction and collision counts, that
    /// older state made room for newer. The built-in detectors' come first, always the same
    /// 13, then the user detectors' (the same names and order on every shard).
    pub fn table_pressure(&self) -> Vec<(&'static str, u64)> {
        let builtin = [
            (
                "spoofing orders full",
                self.spoofing.counters.order_overflow,
            ),
            ("spoofing pairs full", self.spoofing.counters.pair_overflow),
            (
                "spoofing pair evictions",
                self.spoofing.counters.pair_evicted,
            ),
            (
                "spoofing pair-key collisions",
                self.spoofing.counters.collisions,
            ),
            (
                "layering orders full",
                self.layering.counters.order_overflow,
            ),
            ("layering pairs full", self.layering.counters.pair_overflow),
            (
                "layering pair evictions",
                self.layering.counters.pair_evicted,
            ),
            (
                "layering pair-key collisions",
                self.layering.counters.collisions,
            ),
            ("ignition stocks full", self.ignition.stock_overflow),
            ("ignition participants full", self.ignition.party_overflow),
            ("close stocks full", self.close.stock_overflow),
            ("close participant evictions", self.close.party_evictions),
            (
                "wash fills dropped (table full)",
                self.wash.counters.overflow,
            ),
        ];
        builtin
            .into_iter()
            .chain(self.user.table_pressure())
            .collect()
    }
}

impl Surveillance {
    /// Hands over what the last step raised, as records sorted by key (`epoch`, `phase`, `rel`
    /// as in [`OutKey`]), each alert record with its [`Alert`]. No allocation: the scratch order
    /// is preallocated.
    pub fn drain_step(
        &mut self,
        epoch: u64,
        phase: u8,
        rel: u32,
        origin: u64,
        mut f: impl FnMut(SurvRecord, Option<&Alert>),
    ) {
        if self.alerts.is_empty() && self.risk.is_empty() {
            return;
        }
        self.order.clear();
        for (i, a) in self.alerts.pending().iter().enumerate() {
            self.order.push((a.locate, a.sort_id(), i as u16, 0));
        }
        for (i, (_, _, r)) in self.risk.iter().enumerate() {
            let locate = match *r {
                RiskInput::Fill { locate, .. }
                | RiskInput::Mark { locate, .. }
                | RiskInput::Order { locate, .. } => locate,
            };
            self.order
                .push((locate, DetectorId::Risk as u8, i as u16, 1));
        }
        // Unique keys (the raising index is part of them): an unstable sort is deterministic.
        self.order.sort_unstable();
        let mut last: Option<(u16, u8)> = None;
        let mut idx = 0u16;
        for &(locate, det, i, src) in &self.order {
            idx = if last == Some((locate, det)) {
                idx + 1
            } else {
                0
            };
            last = Some((locate, det));
            let key = OutKey {
                epoch,
                phase,
                rel,
                locate,
                det,
                idx,
            };
            let (body, alert) = if src == 0 {
                (OutBody::Alert, Some(&self.alerts.pending()[i as usize]))
            } else {
                let (ts, seq, input) = self.risk[i as usize];
                (OutBody::Risk { ts, seq, input }, None)
            };
            f(
                SurvRecord {
                    key,
                    origin,
                    staged: 0,
                    body,
                },
                alert,
            );
        }
        self.alerts.drain();
        self.risk.clear();
    }
}

/// The output side of surveillance: takes the records in key order, applies risk inputs to the
/// one risk book, and hands every alert to `emit`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct SurvOutput {
    /// Positions, exposure, P&L.
    pub risk: RiskBook,
    rules: risk::RiskRules,
    scratch: Alerts,
    /// Alerts written, by detector (the user detectors' total under [`DetectorId::Custom`]).
    pub written: [u64; DetectorId::ALL.len()],
    /// Alerts written by each user detector, by registration slot, with its name (not in a
    /// checkpoint: runs with user detectors are not checkpointed).
    #[serde(skip, default = "no_user_counts")]
    written_user: [(&'static str, u64); custom::MAX_USER_DETECTORS],
}

fn no_user_counts() -> [(&'static str, u64); custom::MAX_USER_DETECTORS] {
    [("", 0); custom::MAX_USER_DETECTORS]
}

impl SurvOutput {
    /// The output side for `rules`.
    pub fn new(rules: &Rules) -> SurvOutput {
        SurvOutput {
            risk: RiskBook::new(&rules.limits.clamped()),
            rules: rules.risk,
            scratch: Alerts::new(ALERTS_PER_STEP),
            written: [0; DetectorId::ALL.len()],
            written_user: [("", 0); custom::MAX_USER_DETECTORS],
        }
    }

    /// Names the user detectors (in registration order), so that those which write no alert
    /// are counted too.
    pub fn name_user_detectors(&mut self, names: impl IntoIterator<Item = &'static str>) {
        for (w, n) in self.written_user.iter_mut().zip(names) {
            w.0 = n;
        }
    }

    /// Alerts written by each detector, by name: the built-in ones in [`DetectorId`] order, then
    /// every named user detector (or one that wrote an alert) in registration order.
    pub fn written_by_name(&self) -> Vec<(&'static str, u64)> {
        let builtin = DetectorId::ALL
            .into_iter()
            .filter(|&d| d != DetectorId::Custom)
            .map(|d| (d.name(), self.written[d as usize]));
        let user = self.written_user.iter().filter(|w| !w.0.is_empty());
        builtin.chain(user.copied()).collect()
    }

    fn count(&mut self, a: &Alert) {
        self.written[a.detector as usize] += 1;
        if let Some(u) = a.user {
            let w = &mut self.written_user[u.slot as usize];
            *w = (u.name, w.1 + 1);
        }
    }

    /// Replaces the risk rules (state kept).
    pub fn set_rules(&mut self, rules: &Rules) {
        self.rules = rules.risk;
    }

    /// Alerts the risk book could not hold for one input (counted).
    pub fn overflow(&self) -> u64 {
        self.scratch.overflow
    }

    /// Takes the next record in key order (with its alert, for an alert record).
    pub fn take(&mut self, rec: &SurvRecord, alert: Option<&Alert>, mut emit: impl FnMut(&Alert)) {
        match &rec.body {
            OutBody::Alert => {
                if let Some(a) = alert {
                    self.count(a);
                    emit(a);
                }
            }
            OutBody::Risk { ts, seq, input } => {
                if self.rules.enabled {
                    self.risk
                        .apply(&self.rules, *ts, *seq, input, &mut self.scratch);
                    // The risk book's alerts (never a user detector's).
                    for a in self.scratch.drain() {
                        self.written[a.detector as usize] += 1;
                        emit(&a);
                    }
                }
            }
            OutBody::EpochEnd | OutBody::Progress | OutBody::Checkpoint => {}
        }
    }
}

/// Runs surveillance over a whole feed on this thread — decode, books, detectors, risk — with
/// a watermark mark every `mark_every` messages, exactly as the pipeline places them; returns
/// the alerts in the order the pipeline writes them, and the counters. For tests, and the
/// reference the pipeline's output is checked against.
///
/// # Errors
/// A malformed feed, naming the byte offset.
pub fn surveil_feed(
    feed: &[u8],
    books: &mut Books,
    rules: Rules,
    flow: &[FlowRecord],
    mark_every: u32,
) -> Result<(Vec<Alert>, SurvCounters), crate::inspect::InspectError> {
    let s = Surveillance::new(rules, flow);
    run_feed(feed, books, s, mark_every, false).map(|(a, c, _)| (a, c))
}

/// [`surveil_feed`] that counts and skips known message types of a wrong length (`--lenient`)
/// instead of stopping at the first; also returns how many it skipped.
///
/// # Errors
/// A framing error, or a message that does not decode for another reason.
pub fn surveil_feed_lenient(
    feed: &[u8],
    books: &mut Books,
    rules: Rules,
    flow: &[FlowRecord],
    mark_every: u32,
) -> Result<(Vec<Alert>, SurvCounters, u64), crate::inspect::InspectError> {
    run_feed(
        feed,
        books,
        Surveillance::new(rules, flow),
        mark_every,
        true,
    )
}

/// Why [`surveil_feed_with`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum SurveilError {
    /// A malformed feed.
    #[error(transparent)]
    Feed(#[from] crate::inspect::InspectError),
    /// A user detector that cannot be registered.
    #[error(transparent)]
    Detector(#[from] UserDetectorError),
}

/// [`surveil_feed`] with user detectors beside the built-in ones: one instance from each of
/// `detectors`, run after the built-in detectors; their alerts come in the same order and
/// format (the built-in detectors' alerts are the same as without them).
///
/// # Errors
/// A malformed feed, or a user detector that cannot be registered.
pub fn surveil_feed_with(
    feed: &[u8],
    books: &mut Books,
    rules: Rules,
    flow: &[FlowRecord],
    mark_every: u32,
    detectors: &[DetectorFactory],
) -> Result<(Vec<Alert>, SurvCounters), SurveilError> {
    let s = Surveillance::with_detectors(rules, flow, detectors)?;
    let (alerts, counters, _) = run_feed(feed, books, s, mark_every, false)?;
    Ok((alerts, counters))
}

/// The single-threaded run of `s` over `feed`, marks placed as the pipeline places them; with
/// `lenient`, known types of a wrong length are skipped (and counted: the third value).
fn run_feed(
    feed: &[u8],
    books: &mut Books,
    s: Surveillance,
    mark_every: u32,
    lenient: bool,
) -> Result<(Vec<Alert>, SurvCounters, u64), crate::inspect::InspectError> {
    let mut report = crate::replay::ReplayReport::default();
    let (alerts, counters) = surveil_messages(books, s, mark_every, |books, f| {
        crate::replay::for_each_message(feed, books, lenient, &mut report, |b, m, _| f(b, m))
    })?;
    Ok((alerts, counters, report.skipped_bad_lengths))
}

/// The single-threaded run of `s` over the messages `each` hands out: `each` calls its
/// argument with the books and every message the engine takes, in feed order (e.g. a capture
/// streamed in place), and stops when it returns false. Marks are placed as the pipeline places
/// them; the alerts and counters are [`surveil_feed`]'s over the same messages.
///
/// # Errors
/// The error `each` returns.
pub fn surveil_messages<E>(
    books: &mut Books,
    mut s: Surveillance,
    mark_every: u32,
    each: impl FnOnce(&mut Books, &mut dyn FnMut(&mut Books, &Message<'_>) -> bool) -> Result<(), E>,
) -> Result<(Vec<Alert>, SurvCounters), E> {
    use crate::engine::MarkGen;
    let mut out = SurvOutput::new(&s.rules);
    out.name_user_detectors(s.user_detectors());
    let mut alerts = Vec::new();
    let mut marks = MarkGen::periodic(mark_every);
    let (mut seq, mut epoch, mut mark_seq) = (0u32, 0u64, 0u32);
    let mut take = |s: &mut Surveillance, epoch: u64, phase: u8, rel: u32, books: &Books| {
        let _ = books;
        s.drain_step(epoch, phase, rel, 0, |r, a| {
            out.take(&r, a, |a| alerts.push(*a))
        });
    };
    each(books, &mut |books, msg| {
        let ts = msg.timestamp();
        while let Some(wm) = marks.due(ts) {
            epoch += 1;
            mark_seq = seq;
            s.mark_all(wm, seq, books, |s, ph| take(s, epoch, ph, 0, books));
            marks.sent_mark(wm);
        }
        let mut ev = s.before(msg, books, seq);
        books.apply(msg);
        s.after(&mut ev, books);
        take(
            &mut s,
            epoch,
            phase::EVENT,
            seq.wrapping_sub(mark_seq),
            books,
        );
        marks.sent_message(ts);
        seq = seq.wrapping_add(1);
        true
    })?;
    while let Some(wm) = marks.final_due(0) {
        epoch += 1;
        s.mark_all(wm, seq, books, |s, ph| take(s, epoch, ph, 0, books));
        marks.sent_mark(wm);
    }
    Ok((alerts, s.counters))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_of_the_rules_is_checked_and_has_its_ranges() {
        let rules = serde_json::to_value(Rules::default()).unwrap();
        let tables: Vec<&str> = rules
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        let mut checked: Vec<&str> = Rules::default().checks().iter().map(|c| c.0).collect();
        let mut ranged: Vec<&str> = TABLE_KEYS.iter().map(|t| t.0).collect();
        checked.sort_unstable();
        ranged.sort_unstable();
        assert_eq!(checked, tables);
        assert_eq!(ranged, tables);
        for (t, r) in Rules::default().checks() {
            assert_eq!(r, Ok(()), "{t}: the defaults are in range");
        }
    }

    #[test]
    fn absurd_limits_built_in_code_are_clamped() {
        let huge = Capacity {
            orders: usize::MAX,
            parties: 1 << 40,
            pairs: usize::MAX,
            locates: 1 << 32,
        };
        let c = huge.clamped();
        assert_eq!(
            (c.orders, c.parties, c.pairs, c.locates),
            (1 << 22, 1 << 20, 1 << 20, 65_536)
        );
        let zero = Capacity {
            orders: 0,
            parties: 0,
            pairs: 0,
            locates: 0,
        }
        .clamped();
        assert_eq!(
            (zero.orders, zero.parties, zero.pairs, zero.locates),
            (1, 1, 1, 1)
        );
        assert_eq!(Capacity::default().clamped(), Capacity::default());
    }
}
