//! Wash trades (self trades): one beneficial owner on both sides of an execution.
//!
//! A wash trade is a purchase and sale of the same security that changes no beneficial
//! ownership (SEC Exchange Act §9(a)(1): "any transaction in such security which involves no
//! change in the beneficial ownership thereof"; FINRA Rule 6140(b) and its self-trade
//! guidance). The public ITCH feed names at most the resting side of an execution (and only on
//! attributed 'F' orders), never the aggressor, so wash trades cannot be seen there. A firm's own
//! participant flow ([`super::flow`]) can: every execution of the firm's orders is a `fill`
//! record with the account and the feed's match number, so a self trade shows up as **two
//! `fill` records with one match number, opposite sides, whose accounts belong to one owner**.
//!
//! How: each fill waits in a fixed table keyed by match number ([`KeyedState`] with a TTL) for
//! at most `pair_window_ns`; when the other side of the match arrives it is paired. The pair is a
//! wash when the sides are opposite, the stock is the same, and the owners are the same: the
//! same account, or (configurable, fixed-size so the rules stay `Copy`) accounts sharing their
//! first `owner_prefix_len` characters, or any two accounts under the same firm MPID when
//! `same_mpid_same_owner` is on. Prints of one (owner, stock) less than `quiet_ns` apart are one
//! case and one alert (later prints are counted in [`WashCounters::suppressed`]); a case that
//! never pauses is raised again every `cooldown_ns`.
//!
//! Optional "near wash" (`near_wash_ns` > 0, off by default): one account buys and sells the same
//! stock at the same price within `near_wash_ns` on *different* match numbers (pre-arranged
//! trades matched against a colluding counterparty). It is off by default because a market
//! maker's ordinary round trips at one price look the same: on a generated day (2 M messages,
//! 30 wash episodes) a 1 s near-wash window adds 13 alerts on the firm's ordinary flow
//! (precision 1.0 → 0.70). A near wash inside a wash case is part of that case (one alert).
//!
//! Not a wash: the firm's two fills on different match numbers; one match number between two
//! unrelated accounts (different owners); two fills of one match number on the same side.
use super::event::Party;
use super::range::{self, Key, COUNT, DAY_NS};
use super::RuleError;
use super::SurvEvent;
use super::{Alert, Alerts, Capacity, Ctx, Detector, DetectorId, FlowEvent, FlowRecord, Severity};
use crate::agg::Touch;
use crate::itch::Side;
use crate::state::KeyedState;

/// Longest `pair_window_ns` accepted (the pending table's TTL), ns.
pub const MAX_PAIR_WINDOW_NS: u64 = 60_000_000_000;
/// Longest `near_wash_ns` accepted (the near-wash table's TTL), ns.
pub const MAX_NEAR_WASH_NS: u64 = 60_000_000_000;
/// Slots swept for expired entries per watermark mark (bounded work).
const SWEEP: usize = 64;

/// Thresholds of `[wash_trade]` in the rules file.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WashTradeRules {
    /// Run this detector.
    pub enabled: bool,
    /// How long a fill waits for the other side of its match number, ns (at most 60 s). Both
    /// sides of one execution are reported at the same instant; 1 s tolerates flow records
    /// stamped by different gateways.
    pub pair_window_ns: u64,
    /// Accounts equal in their first `owner_prefix_len` characters belong to one beneficial
    /// owner, e.g. `CLIENT7-A` and `CLIENT7-B` with 7 (0: only the same account is one
    /// owner). Default 0: the generator's firm accounts `ACCT01`…`ACCT08` are separate clients
    /// whose orders cross each other in the ordinary course (the firm's background aggressive
    /// fills hit another account's resting order: one match number, two accounts), so any
    /// grouping of them would flag ordinary internal crosses — set it to your naming scheme.
    pub owner_prefix_len: u8,
    /// Any two accounts with the same firm MPID on their flow records count as one owner (a
    /// firm trading with itself). Off by default: a broker crossing two unrelated clients is
    /// not a wash.
    pub same_mpid_same_owner: bool,
    /// Smallest execution considered, shares (default 1: any size; a self trade is a violation
    /// whatever its size).
    pub min_shares: u32,
    /// Wash prints of one (owner, stock) less than this apart are one case: one alert, the
    /// later prints counted, not raised, ns (default 5 s: the prints of one episode come
    /// seconds apart; a pause longer than this starts a new case).
    pub quiet_ns: u64,
    /// An ongoing case (prints never `quiet_ns` apart) is raised again at most this often, ns
    /// (default 300 s), so a wash trader who never pauses still shows up every few minutes.
    pub cooldown_ns: u64,
    /// Near wash: one account buys and sells the stock at the same price on different match
    /// numbers within this time, ns (0: off, the default — a market maker's ordinary round
    /// trips look the same; at most 60 s).
    pub near_wash_ns: u64,
}

impl Default for WashTradeRules {
    fn default() -> Self {
        WashTradeRules {
            enabled: true,
            pair_window_ns: 1_000_000_000,
            owner_prefix_len: 0,
            same_mpid_same_owner: false,
            min_shares: 1,
            quiet_ns: 5_000_000_000,
            cooldown_ns: 300_000_000_000,
            near_wash_ns: 0,
        }
    }
}

impl WashTradeRules {
    /// Its table in the rules file.
    pub const TABLE: &'static str = "wash_trade";
    /// Every key with its allowed range.
    pub const KEYS: &'static [Key] = &[
        Key::flag("enabled"),
        Key::int("pair_window_ns", 1, MAX_PAIR_WINDOW_NS),
        Key::int("owner_prefix_len", 0, 12).why("accounts have at most 12 characters"),
        Key::flag("same_mpid_same_owner"),
        Key::int("min_shares", 1, COUNT),
        Key::int("quiet_ns", 0, DAY_NS).why("and at most cooldown_ns"),
        Key::int("cooldown_ns", 1, DAY_NS),
        Key::int("near_wash_ns", 0, MAX_NEAR_WASH_NS).why("0: off"),
    ];

    /// Checks every threshold is in its range, and a case is quiet before it is raised again.
    pub fn validate(&self) -> Result<(), RuleError> {
        range::check(Self::TABLE, self, Self::KEYS)?;
        if self.quiet_ns > self.cooldown_ns {
            return Err(RuleError::new(
                "cooldown_ns",
                format!(
                    "must be at least 1 and at least quiet_ns (found cooldown_ns {}, quiet_ns {})",
                    self.cooldown_ns, self.quiet_ns
                ),
            ));
        }
        Ok(())
    }

    /// Whether accounts `a` (MPID `ma`) and `b` (MPID `mb`) belong to one owner.
    pub fn same_owner(&self, a: &Party, ma: [u8; 4], b: &Party, mb: [u8; 4]) -> bool {
        if a == b {
            return true;
        }
        if self.same_mpid_same_owner && ma != [0; 4] && ma == mb {
            return true;
        }
        let n = self.owner_prefix_len as usize;
        if n == 0 {
            return false;
        }
        let la = a.iter().position(|&c| c == 0).unwrap_or(12);
        let lb = b.iter().position(|&c| c == 0).unwrap_or(12);
        // Both accounts must have the whole prefix (a short account is its own owner).
        la >= n && lb >= n && a[..n] == b[..n]
    }

    /// The owner key of account `a` (MPID `m`): what [`WashTradeRules::same_owner`] groups.
    fn owner_key(&self, a: &Party, m: [u8; 4]) -> u64 {
        if self.same_mpid_same_owner && m != [0; 4] {
            return hash_bytes(b'M', &m);
        }
        let n = self.owner_prefix_len as usize;
        let len = a.iter().position(|&c| c == 0).unwrap_or(12);
        if n > 0 && len >= n {
            hash_bytes(b'P', &a[..n])
        } else {
            hash_bytes(b'A', a)
        }
    }
}

/// FNV-1a of a tag and bytes.
fn hash_bytes(tag: u8, b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &c in std::iter::once(&tag).chain(b) {
        h ^= c as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// One side of an execution waiting for the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Pending {
    ts: u64,
    locate: u16,
    account: Party,
    mpid: [u8; 4],
    side: Side,
    order_ref: u64,
    price: u32,
    shares: u32,
}

const NO_PENDING: Pending = Pending {
    ts: 0,
    locate: 0,
    account: super::NOBODY,
    mpid: [0; 4],
    side: Side::Buy,
    order_ref: 0,
    price: 0,
    shares: 0,
};

/// An account's last fill per side on one stock (near wash).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Last {
    account: Party,
    locate: u16,
    /// (ts, price, match number, order ref) of the last buy and the last sell; ts 0: none.
    side: [(u64, u32, u64, u64); 2],
}

const NO_LAST: Last = Last {
    account: super::NOBODY,
    locate: 0,
    side: [(0, 0, 0, 0); 2],
};

/// What the detector counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WashCounters {
    /// Fills paired with the other side of their match number.
    pub paired: u64,
    /// Pairs that were washes (alerted or suppressed).
    pub washes: u64,
    /// Wash prints not raised because the (owner, stock) was in its cooldown.
    pub suppressed: u64,
    /// Pairs of one match number between different owners (not washes).
    pub different_owners: u64,
    /// Pairs of one match number on the same side (inconsistent flow; not washes).
    pub same_side: u64,
    /// Fills dropped because a table was full.
    pub overflow: u64,
}

/// The `wash_trade` detector's state in one shard.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct WashTrade {
    /// Fills waiting for their match number's other side, by match number.
    pending: KeyedState<Pending>,
    /// Per (owner, stock): the last alert's and the last wash print's times.
    alerted: KeyedState<(u64, u64)>,
    /// Last fill per side per (account, stock), for the near wash.
    last: KeyedState<Last>,
    /// Counters.
    pub counters: WashCounters,
}

impl WashTrade {
    /// State sized by `cap`.
    pub fn new(cap: &Capacity) -> Self {
        WashTrade {
            pending: KeyedState::with_ttl(cap.pairs.max(1), NO_PENDING, MAX_PAIR_WINDOW_NS),
            alerted: KeyedState::new(cap.pairs.max(1), (0, 0)),
            last: KeyedState::with_ttl(cap.pairs.max(1), NO_LAST, MAX_NEAR_WASH_NS),
            counters: WashCounters::default(),
        }
    }

    /// Whether a wash print of (owner, stock) at `ts` starts a case (or re-raises an ongoing one
    /// past the cooldown); counts the suppressed ones.
    fn admit(&mut self, r: &WashTradeRules, owner: u64, locate: u16, ts: u64) -> bool {
        let key = owner ^ (locate as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        match self.alerted.entry(key, ts) {
            Ok((alert, print)) => {
                let ongoing = *print != 0
                    && ts.saturating_sub(*print) < r.quiet_ns
                    && ts.saturating_sub(*alert) < r.cooldown_ns;
                *print = ts.max(1);
                if ongoing {
                    self.counters.suppressed += 1;
                    false
                } else {
                    *alert = ts.max(1);
                    true
                }
            }
            Err(_) => {
                // Full: raise it anyway (a duplicate is better than a lost case), counted.
                self.counters.overflow += 1;
                true
            }
        }
    }

    fn pair(
        &mut self,
        r: &WashTradeRules,
        rec: &FlowRecord,
        locate: u16,
        seq: u32,
        ctx: &Ctx<'_>,
        out: &mut Alerts,
    ) {
        let m = rec.match_number;
        let other = match self.pending.get(m, rec.ts) {
            Some(p) if p.locate == locate && rec.ts.saturating_sub(p.ts) <= r.pair_window_ns => *p,
            _ => {
                let p = Pending {
                    ts: rec.ts,
                    locate,
                    account: rec.account,
                    mpid: rec.mpid,
                    side: rec.side,
                    order_ref: rec.order_ref,
                    price: rec.price,
                    shares: rec.shares,
                };
                if self.pending.set(m, rec.ts, p).is_err() {
                    self.counters.overflow += 1;
                }
                return;
            }
        };
        self.pending.remove(m);
        self.counters.paired += 1;
        if other.side == rec.side {
            self.counters.same_side += 1;
            return;
        }
        if !r.same_owner(&other.account, other.mpid, &rec.account, rec.mpid) {
            self.counters.different_owners += 1;
            return;
        }
        self.counters.washes += 1;
        let owner = r.owner_key(&rec.account, rec.mpid);
        if !self.admit(r, owner, locate, rec.ts) {
            return;
        }
        // The resting side's account is the participant (its order rested on the book: it has
        // an ITCH order reference; else the first reported), the aggressor's the counterparty.
        let (resting, aggressor) = if other.order_ref == 0 && rec.order_ref != 0 {
            (
                (rec.account, rec.order_ref),
                (other.account, other.order_ref),
            )
        } else {
            (
                (other.account, other.order_ref),
                (rec.account, rec.order_ref),
            )
        };
        let same_account = other.account == rec.account;
        let mut a = Alert::new(DetectorId::WashTrade, rec.ts, seq, locate, ctx.symbol)
            .party(resting.0)
            .counterparty(aggressor.0)
            .severity(if same_account {
                Severity::High
            } else {
                Severity::Medium
            })
            .evidence("match_number", m as f64, "==", m as f64)
            .evidence(
                "shares",
                rec.shares.min(other.shares) as f64,
                ">=",
                r.min_shares as f64,
            )
            .evidence(
                "price_usd",
                rec.price as f64 / 1e4,
                "==",
                other.price as f64 / 1e4,
            )
            .evidence(
                "side_gap_ns",
                rec.ts.saturating_sub(other.ts) as f64,
                "<=",
                r.pair_window_ns as f64,
            )
            .evidence("same_owner", 1.0, "==", 1.0)
            .context("same_account", same_account as u8 as f64)
            .touch(Touch::of(ctx.books, locate))
            .since(other.ts);
        for rf in [resting.1, aggressor.1] {
            if rf != 0 {
                a = a.order_ref(rf);
            }
        }
        out.push(a);
    }

    fn near(
        &mut self,
        r: &WashTradeRules,
        rec: &FlowRecord,
        locate: u16,
        seq: u32,
        ctx: &Ctx<'_>,
        out: &mut Alerts,
    ) {
        let key =
            hash_bytes(b'N', &rec.account) ^ (locate as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let Ok(l) = self.last.entry(key, rec.ts) else {
            self.counters.overflow += 1;
            return;
        };
        if l.account != rec.account || l.locate != locate {
            // A new key (or a hash collision: start over for this account).
            *l = Last {
                account: rec.account,
                locate,
                side: [(0, 0, 0, 0); 2],
            };
        }
        let side_ix = |s: Side| match s {
            Side::Buy => 0usize,
            Side::Sell => 1,
        };
        let mine = side_ix(rec.side);
        let (ots, oprice, omatch, oref) = l.side[1 - mine];
        l.side[mine] = (rec.ts.max(1), rec.price, rec.match_number, rec.order_ref);
        if ots == 0
            || oprice != rec.price
            || omatch == rec.match_number
            || rec.ts.saturating_sub(ots) > r.near_wash_ns
        {
            return;
        }
        let owner = r.owner_key(&rec.account, rec.mpid);
        if !self.admit(r, owner, locate, rec.ts) {
            return;
        }
        let mut a = Alert::new(DetectorId::WashTrade, rec.ts, seq, locate, ctx.symbol)
            .party(rec.account)
            .severity(Severity::Low)
            .evidence("near_wash", 1.0, "==", 1.0)
            .evidence(
                "price_usd",
                rec.price as f64 / 1e4,
                "==",
                oprice as f64 / 1e4,
            )
            .evidence(
                "round_trip_ns",
                rec.ts.saturating_sub(ots) as f64,
                "<=",
                r.near_wash_ns as f64,
            )
            .evidence("shares", rec.shares as f64, ">=", r.min_shares as f64)
            .touch(Touch::of(ctx.books, locate))
            .since(ots);
        for rf in [oref, rec.order_ref] {
            if rf != 0 {
                a = a.order_ref(rf);
            }
        }
        out.push(a);
    }
}

impl Detector for WashTrade {
    type Rules = WashTradeRules;
    const ID: DetectorId = DetectorId::WashTrade;

    /// The public feed never names both sides of an execution: nothing to do here (the flow
    /// carries the evidence).
    fn on_event(
        &mut self,
        _r: &WashTradeRules,
        _ev: &SurvEvent,
        _ctx: &Ctx<'_>,
        _out: &mut Alerts,
    ) {
    }

    fn on_watermark(
        &mut self,
        _r: &WashTradeRules,
        wm: u64,
        _seq: u32,
        _ctx: &Ctx<'_>,
        _out: &mut Alerts,
    ) {
        // Reclaim fills whose other side never came (the firm's trades with outsiders).
        self.pending.expire(wm, SWEEP);
        self.last.expire(wm, SWEEP);
    }

    fn on_flow(
        &mut self,
        r: &WashTradeRules,
        rec: &FlowRecord,
        locate: u16,
        seq: u32,
        ctx: &Ctx<'_>,
        out: &mut Alerts,
    ) {
        if rec.event != FlowEvent::Fill || rec.shares < r.min_shares || locate == 0 {
            return;
        }
        if rec.match_number != 0 {
            self.pair(r, rec, locate, seq, ctx, out);
        }
        if r.near_wash_ns > 0 {
            self.near(r, rec, locate, seq, ctx, out);
        }
    }
}
