//! Spoofing: a participant's large order that improves the best price (or makes up a large share
//! of the size at the touch), an execution of the same participant's resting order on the
//! *other* side while it stands, and then the large order pulled soon after — the shape of FINRA
//! Rule 5210, Supplementary Material .03 ("orders … that are cancelled before execution, in
//! order to induce others to trade against the entrant's other orders"; also MAR Annex I 1(a),
//! Dodd-Frank §747 "bidding or offering with the intent to cancel before execution").
//!
//! In ITCH a participant is only known from attributed `F` adds (the MPID), carried by the book
//! into that order's executions, cancels and replaces (the event's `party`), or from the
//! participant flow, which relabels a linked order's events with the account. So:
//!
//! 1. **Candidate.** An attributed add of at least `min_spoof_shares` that rests at the touch
//!    after it arrives (it improved the best price, or joined it) and makes up at least
//!    `min_touch_share` of the touch size there — or, on books too deep for any one order to be
//!    a large share, is at least `min_size_multiple` times the average order already there —
//!    becomes a candidate spoof, remembered per (stock, participant, side).
//! 2. **Inducement.** An execution of a resting order of that participant on the opposite side
//!    (the aggressor was induced to trade against it) while the candidate stands is credited to
//!    every candidate of the pair when it is plausibly a reaction: at least `min_reaction_ns`
//!    after the candidate's add (no one reacts in microseconds), and the candidate sits on its
//!    own side of the trade's price (an offer above the bid that was hit), within
//!    `max_price_gap_bps` of it. A candidate locked against the participant's own resting
//!    order, which executes within the reaction floor, is the self-trade shape and is dropped.
//!    The spoof must dwarf what it helped fill: at least `min_spoof_exec_ratio` times the
//!    participant's opposite shares executed (an order about the size of its own fill on the
//!    other side is two-sided quoting).
//! 3. **Pull.** When at least `min_cancel_ratio` of the candidate is cancelled (a delete, partial
//!    cancels, or a replace that moves it away from the touch or shrinks it), its timing is
//!    scored: the lifetime scores 1 up to `max_lifetime_ns` and falls smoothly to 0 over
//!    `lifetime_fade_ns`; the delay from the last opposite execution scores 1 up to
//!    `max_exec_to_cancel_ns` and falls to 0 over `exec_to_cancel_fade_ns`. With the product at
//!    least `min_timing_score` the detector fires, naming the participant, the spoof and the
//!    executed order; the evidence shows the score and its parts. When the same participant's
//!    orders layer that side (the layering detector armed on the same execution), the episode
//!    is reported once, as layering carrying the spoof's evidence.
//!
//! A candidate that executes more than `max_spoof_fill_ratio` of its own size was a genuine
//! order and is dropped. One alert per (stock, participant, side) per `cooldown_ns`.
//!
//! State: the candidates by order reference and the candidate list per (stock, participant,
//! side), in fixed [`KeyedState`] tables sized by [`Capacity`] (full tables are counted in
//! [`SpoofingCounters`]); stale entries expire by TTL when a table fills. Each table sits behind
//! a small counting filter (`Filtered`), so a lookup of an order or pair never followed (most
//! of them) reads one byte. Work per event: one or two filter reads or table probes, and at most
//! [`PAIR_CANDIDATES`] on an attributed execution.

use super::event::{Kind, Party, NOBODY};
use super::family::{SpoofNote, TakesOver};
use super::range::{self, Key, BPS, COUNT, DAY_NS, MULTIPLE};
use super::scale::{falling, ticks_between};
use super::RuleError;
use super::{Alert, Alerts, Capacity, Ctx, Detector, DetectorId, Severity, SurvEvent};
use crate::agg::Touch;
use crate::itch::Side;
use crate::state::KeyedState;

/// Candidates followed per (stock, participant, side); an older one is dropped (counted) for a
/// newer one.
pub const PAIR_CANDIDATES: usize = 4;

/// Entries of the tables expire when not written for this long (10 minutes of event time), so
/// a full table can reuse them; `max_lifetime_ns` and `cooldown_ns` may not exceed it.
pub const STATE_TTL_NS: u64 = 600_000_000_000;

/// Thresholds of `[spoofing]` in the rules file.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpoofingRules {
    /// Run this detector.
    pub enabled: bool,
    /// Smallest spoof order, shares. Default 1,000 (10 round lots): ordinary resting orders are
    /// a few round lots (in the generated background fewer than 0.2 % reach 1,000), so the size
    /// alone sets a candidate apart.
    pub min_spoof_shares: u32,
    /// Smallest share of the touch the order makes up right after it rests there, ratio 0..=1.
    /// Default 0.2: it adds at least a quarter to the size at the best price it joined (an
    /// order that improves the best price is the whole touch, 1.0). Touches of busy names hold
    /// dozens of orders (the generated busy stocks show 1,000–50,000 shares at the best, and a
    /// one-tick spread that leaves no room to improve), so a fifth of the touch from a single
    /// order is already a conspicuous concentration.
    pub min_touch_share: f64,
    /// Or: smallest size of the order over the average size of the other orders resting at the
    /// touch, ratio. Default 20: on the deepest books (the generated busiest stock shows
    /// 100,000–230,000 shares and over a thousand orders at the best) no single order can be a
    /// fifth of the touch, but a spoof still dwarfs the orders around it (ordinary orders are
    /// a few round lots; a spoof is a hundred times that).
    pub min_size_multiple: f64,
    /// Time from the spoof's add to its cancel up to which the lifetime scores 1, ns. Default
    /// 2 s: spoofs are pulled as soon as the other side trades (FINRA cases speak of orders
    /// live for seconds or less); genuine large orders usually rest longer.
    pub max_lifetime_ns: u64,
    /// Beyond `max_lifetime_ns`, the lifetime score falls smoothly to 0 over this long, ns.
    /// Default 6 s (0 at 8 s): others may take seconds to react to the spoof.
    pub lifetime_fade_ns: u64,
    /// Time from the participant's last opposite-side execution to the cancel up to which that
    /// delay scores 1, ns. Default 1 s: the pull follows the fill it induced.
    pub max_exec_to_cancel_ns: u64,
    /// Beyond `max_exec_to_cancel_ns`, the score falls smoothly to 0 over this long, ns.
    /// Default 2 s (0 at 3 s; a pull 1.4 s after the fill still scores 0.9).
    pub exec_to_cancel_fade_ns: u64,
    /// Reaction-time floor, ns: an opposite execution sooner than this after the spoof's add
    /// cannot have been induced by it (no one could have seen it and reacted), so it is not
    /// credited. Default 1 ms. An order that locks against the participant's own resting
    /// order, which then executes that soon, is a self-trade shape, not a spoof.
    pub min_reaction_ns: u64,
    /// Farthest the spoof's price may be from the price of the execution it induced, bps of
    /// that price (the spoof must also sit on its own side of it: never locking or crossing
    /// it). Default 200: it presses on the price the other side traded at.
    pub max_price_gap_bps: f64,
    /// Least timing score (the product of the lifetime and fill-to-cancel scores, each 0..=1)
    /// to fire, ratio. Default 0.5.
    pub min_timing_score: f64,
    /// Fewest opposite-side shares executed while the spoof stood. Default 1 (any execution:
    /// a fill of the participant's other-side order is the benefit the spoof sought).
    pub min_exec_shares: u32,
    /// Least size of the spoof over the participant's opposite-side shares executed while it
    /// stood, ratio. Default 3: a spoof dwarfs the genuine order it helps fill; a participant
    /// that pulls an order about the size of its own fill on the other side is quoting both
    /// sides, as a market maker does (on sub-dollar stocks, where every order is tens of
    /// thousands of shares, size alone sets nothing apart).
    pub min_spoof_exec_ratio: f64,
    /// Largest fraction of the spoof itself that may execute, ratio 0..=1. Default 0.25: an
    /// order a quarter or more filled was exposed to the market in earnest.
    pub max_spoof_fill_ratio: f64,
    /// Fraction of the spoof that must be cancelled (or replaced away) to count as pulled,
    /// ratio 0..=1. Default 0.9.
    pub min_cancel_ratio: f64,
    /// Quiet time after an alert for the same (stock, participant, side), ns. Default 5 s: one
    /// alert per episode.
    pub cooldown_ns: u64,
}

impl Default for SpoofingRules {
    fn default() -> Self {
        SpoofingRules {
            enabled: true,
            min_spoof_shares: 1_000,
            min_touch_share: 0.2,
            min_size_multiple: 20.0,
            max_lifetime_ns: 2_000_000_000,
            lifetime_fade_ns: 6_000_000_000,
            max_exec_to_cancel_ns: 1_000_000_000,
            exec_to_cancel_fade_ns: 2_000_000_000,
            min_reaction_ns: 1_000_000,
            max_price_gap_bps: 200.0,
            min_timing_score: 0.5,
            min_exec_shares: 1,
            min_spoof_exec_ratio: 3.0,
            max_spoof_fill_ratio: 0.25,
            min_cancel_ratio: 0.9,
            cooldown_ns: 5_000_000_000,
        }
    }
}

impl SpoofingRules {
    /// Its table in the rules file.
    pub const TABLE: &'static str = "spoofing";
    /// Every key with its allowed range.
    pub const KEYS: &'static [Key] = &[
        Key::flag("enabled"),
        Key::int("min_spoof_shares", 1, COUNT),
        Key::real("min_touch_share", 0.0, 1.0),
        Key::real("min_size_multiple", 1.0, MULTIPLE),
        Key::int("max_lifetime_ns", 1, STATE_TTL_NS).why("state is kept this long"),
        Key::int("lifetime_fade_ns", 0, STATE_TTL_NS).why("state is kept this long"),
        Key::int("max_exec_to_cancel_ns", 1, DAY_NS),
        Key::int("exec_to_cancel_fade_ns", 0, DAY_NS),
        Key::int("min_reaction_ns", 0, DAY_NS),
        Key::above("max_price_gap_bps", 0.0, BPS),
        Key::real("min_timing_score", 0.0, 1.0),
        Key::int("min_exec_shares", 1, COUNT),
        Key::real("min_spoof_exec_ratio", 0.0, MULTIPLE),
        Key::real("max_spoof_fill_ratio", 0.0, 1.0),
        Key::above("min_cancel_ratio", 0.0, 1.0),
        Key::int("cooldown_ns", 0, STATE_TTL_NS).why("state is kept this long"),
    ];

    /// Checks every threshold is in its range.
    pub fn validate(&self) -> Result<(), RuleError> {
        range::check(Self::TABLE, self, Self::KEYS)
    }

    /// Lifetime at which its score reaches 0, ns (at most the state's TTL: a candidate is not
    /// kept longer).
    fn lifetime_zero(&self) -> u64 {
        self.max_lifetime_ns
            .saturating_add(self.lifetime_fade_ns)
            .min(STATE_TTL_NS)
    }

    /// The timing score and its parts: [score, lifetime's, fill-to-cancel's].
    pub fn timing(&self, lifetime: u64, exec_to_cancel: u64) -> [f64; 3] {
        let lt = falling(
            lifetime as f64,
            self.max_lifetime_ns.min(self.lifetime_zero()) as f64,
            self.lifetime_zero() as f64,
        );
        let ec = falling(
            exec_to_cancel as f64,
            self.max_exec_to_cancel_ns as f64,
            self.max_exec_to_cancel_ns
                .saturating_add(self.exec_to_cancel_fade_ns) as f64,
        );
        [lt * ec, lt, ec]
    }
}

/// The other side.
#[inline]
pub(crate) fn opposite(s: Side) -> Side {
    match s {
        Side::Buy => Side::Sell,
        Side::Sell => Side::Buy,
    }
}

#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The table key of (stock, participant, side): a 64-bit hash (callers keep the triple in the
/// value and check it, counting a collision instead of mixing two participants).
#[inline]
pub(crate) fn pair_key(locate: u16, party: &Party, side: Side) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&party[..8]);
    let mut b = [0u8; 4];
    b.copy_from_slice(&party[8..]);
    let a = u64::from_le_bytes(a);
    let b = u32::from_le_bytes(b) as u64;
    mix(mix(a ^ 0x9E37_79B9_7F4A_7C15) ^ (b << 18) ^ ((locate as u64) << 1) ^ (side as u64))
}

/// A [`KeyedState`] with a small counting filter in front: per hash bucket of keys, how many
/// keys were inserted and not removed since. A key whose bucket counts 0 is certainly absent, so
/// the lookups of most events (orders and pairs the detector never followed) read one byte of a
/// cache-resident array instead of probing a large table (several cache misses).
///
/// The counts only over-approximate: an entry that expires inside the table keeps its count
/// (the bucket just stays "maybe"), and a count that reaches 255 stays there. A skipped lookup
/// is one that would have found nothing, so results are those of the bare table.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Filtered<V: Copy> {
    table: KeyedState<V>,
    counts: Box<[u8]>,
    shift: u32,
}

impl<V: Copy> Filtered<V> {
    /// As [`KeyedState::with_ttl`], with a filter of about as many buckets as `capacity`
    /// (2^10..=2^18).
    pub(crate) fn with_ttl(capacity: usize, init: V, ttl: u64) -> Self {
        let n = capacity.next_power_of_two().clamp(1 << 10, 1 << 18);
        Filtered {
            table: KeyedState::with_ttl(capacity, init, ttl),
            counts: vec![0u8; n].into_boxed_slice(),
            shift: 64 - n.trailing_zeros(),
        }
    }

    #[inline]
    fn bucket(&self, key: u64) -> usize {
        // Fibonacci hashing, the top bits (a different hash than the table's own buckets would
        // not matter: any fixed function of the key keeps the filter exact-or-conservative).
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// Whether `key` may be present (false: certainly absent).
    #[inline]
    pub(crate) fn may_hold(&self, key: u64) -> bool {
        self.counts[self.bucket(key)] != 0
    }

    #[inline]
    fn inserted(&mut self, key: u64) {
        let i = self.bucket(key);
        self.counts[i] = self.counts[i].saturating_add(1);
    }

    /// Keys present (including expired ones not yet reclaimed).
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// As [`KeyedState::get`].
    #[inline]
    pub(crate) fn get(&mut self, key: u64, now: u64) -> Option<&V> {
        if !self.may_hold(key) {
            return None;
        }
        self.table.get(key, now)
    }

    /// As [`KeyedState::get_mut`].
    #[inline]
    pub(crate) fn get_mut(&mut self, key: u64, now: u64) -> Option<&mut V> {
        if !self.may_hold(key) {
            return None;
        }
        self.table.get_mut(key, now)
    }

    /// As [`KeyedState::entry`].
    #[inline]
    pub(crate) fn entry(&mut self, key: u64, now: u64) -> Result<&mut V, crate::state::Full> {
        let before = self.table.counters().inserts;
        self.table.entry(key, now)?;
        if self.table.counters().inserts != before {
            self.inserted(key);
        }
        // Present and written at `now`: found again at once (the probe's lines are cached).
        self.table.entry(key, now)
    }

    /// As [`KeyedState::set`].
    #[inline]
    pub(crate) fn set(&mut self, key: u64, now: u64, value: V) -> Result<(), crate::state::Full> {
        let before = self.table.counters().inserts;
        self.table.set(key, now, value)?;
        if self.table.counters().inserts != before {
            self.inserted(key);
        }
        Ok(())
    }

    /// As [`KeyedState::remove`].
    #[inline]
    pub(crate) fn remove(&mut self, key: u64) -> Option<V> {
        if !self.may_hold(key) {
            return None;
        }
        let v = self.table.remove(key)?;
        let i = self.bucket(key);
        if self.counts[i] != u8::MAX {
            self.counts[i] -= 1;
        }
        Some(v)
    }
}

/// The touch of `side`: (price, shares); shares 0 when the side is empty.
#[inline]
pub(crate) fn side_touch(t: &Touch, side: Side) -> (u32, u64) {
    match side {
        Side::Buy => (t.bid, t.bid_shares),
        Side::Sell => (t.ask, t.ask_shares),
    }
}

/// Whether `a` is a better price than `b` on `side` (higher bid, lower offer).
#[inline]
pub(crate) fn better(side: Side, a: u32, b: u32) -> bool {
    match side {
        Side::Buy => a > b,
        Side::Sell => a < b,
    }
}

/// `own` shares in `own_orders` orders over the average of the *other* orders of a level of
/// `level_shares` in `level_orders` orders (infinite when there are no others).
#[inline]
pub(crate) fn size_multiple(
    own: u64,
    own_orders: u32,
    level_shares: u64,
    level_orders: u32,
) -> f64 {
    let others = level_orders.saturating_sub(own_orders);
    let other_shares = level_shares.saturating_sub(own);
    if others == 0 || other_shares == 0 {
        return f64::INFINITY;
    }
    own as f64 / (other_shares as f64 / others as f64)
}

/// A candidate spoof.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct Cand {
    locate: u16,
    side: Side,
    party: Party,
    add_ts: u64,
    /// Shares when added.
    shares: u32,
    /// Shares resting now.
    resting: u32,
    /// Its own shares executed.
    filled: u32,
    /// Shares cancelled.
    cancelled: u32,
    /// Ticks it improved the best price by (0: joined it).
    improve_ticks: u32,
    /// Its share of the touch right after the add.
    touch_share: f64,
    /// Its size over the average of the other orders at the touch.
    multiple: f64,
    /// It qualified by its share of the touch (else by its size multiple).
    by_share: bool,
    /// The participant's opposite-side shares executed while it stood.
    opp_shares: u64,
    /// The last such execution: time and order.
    opp_last_ts: u64,
    opp_ref: u64,
    /// The first such execution, ns (its delay from the add is the reaction time).
    opp_first_ts: u64,
    /// Its price.
    price: u32,
    /// The last credited execution's distance from the spoof's price, bps.
    gap_bps: f64,
}

const NO_CAND: Cand = Cand {
    locate: 0,
    side: Side::Buy,
    party: NOBODY,
    add_ts: 0,
    shares: 0,
    resting: 0,
    filled: 0,
    cancelled: 0,
    improve_ticks: 0,
    touch_share: 0.0,
    multiple: 0.0,
    by_share: false,
    opp_shares: 0,
    opp_last_ts: 0,
    opp_ref: 0,
    opp_first_ts: 0,
    price: 0,
    gap_bps: 0.0,
};

/// The candidates of one (stock, participant, side), and its last alert.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct Pair {
    locate: u16,
    side: Side,
    party: Party,
    refs: [u64; PAIR_CANDIDATES],
    n: u8,
    /// Last alert, ns (0: none).
    last_alert: u64,
}

const NO_PAIR: Pair = Pair {
    locate: 0,
    side: Side::Buy,
    party: NOBODY,
    refs: [0; PAIR_CANDIDATES],
    n: 0,
    last_alert: 0,
};

impl Pair {
    fn is(&self, locate: u16, party: &Party, side: Side) -> bool {
        self.locate == locate && self.party == *party && self.side == side
    }

    fn drop_ref(&mut self, r: u64) {
        let n = self.n as usize;
        if let Some(i) = self.refs[..n].iter().position(|&x| x == r) {
            self.refs.copy_within(i + 1..n, i);
            self.n -= 1;
        }
    }
}

/// What the spoofing detector had to drop or skip.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SpoofingCounters {
    /// Candidates seen.
    pub candidates: u64,
    /// Candidates not followed: the order table was full.
    pub order_overflow: u64,
    /// Candidates not followed: the pair table was full.
    pub pair_overflow: u64,
    /// Older candidates dropped for newer ones of the same pair ([`PAIR_CANDIDATES`]).
    pub pair_evicted: u64,
    /// Pair-key hash collisions (two different triples on one key; the newer is skipped).
    pub collisions: u64,
    /// Candidates dropped as genuine (filled beyond `max_spoof_fill_ratio`).
    pub genuine: u64,
    /// Alerts held back by the cooldown.
    pub suppressed: u64,
    /// Candidates dropped as self-trade shapes (an opposite execution of the participant's own
    /// order at the candidate's price, within the reaction floor of its add).
    pub self_trades: u64,
    /// Spoofs reported as layering instead (the participant's side was layered).
    pub to_layering: u64,
}

/// The `spoofing` detector's state in one shard.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Spoofing {
    cands: Filtered<Cand>,
    pairs: Filtered<Pair>,
    /// Counters.
    pub counters: SpoofingCounters,
}

impl Spoofing {
    /// State sized by `cap`: `cap.orders` candidates, `cap.pairs` (stock, participant, side)
    /// lists.
    pub fn new(cap: &Capacity) -> Self {
        Spoofing {
            cands: Filtered::with_ttl(cap.orders.max(1), NO_CAND, STATE_TTL_NS),
            pairs: Filtered::with_ttl(cap.pairs.max(1), NO_PAIR, STATE_TTL_NS),
            counters: SpoofingCounters::default(),
        }
    }

    /// Candidates followed now (including expired ones not yet reclaimed).
    pub fn candidates(&self) -> usize {
        self.cands.len()
    }

    /// Stops following candidate `r` (and takes it off its pair's list).
    fn forget(&mut self, r: u64, c: &Cand, now: u64, cooldown_ns: u64) {
        self.cands.remove(r);
        let key = pair_key(c.locate, &c.party, c.side);
        let mut empty = false;
        if let Some(p) = self.pairs.get_mut(key, now) {
            if p.is(c.locate, &c.party, c.side) {
                p.drop_ref(r);
                empty = p.n == 0 && (p.last_alert == 0 || now >= p.last_alert + cooldown_ns);
            }
        }
        if empty {
            self.pairs.remove(key);
        }
    }

    fn on_add(
        &mut self,
        r: &SpoofingRules,
        ev: &SurvEvent,
        ctx: &Ctx<'_>,
        order_ref: u64,
        side: Side,
    ) {
        let Kind::Add {
            price,
            shares,
            party,
            ..
        } = ev.kind
        else {
            return;
        };
        if party == NOBODY || ev.locate == 0 || shares < r.min_spoof_shares {
            return;
        }
        // It must rest at the touch after the add, and make up enough of it.
        let (best_after, touch_after) = side_touch(&ev.after, side);
        if touch_after == 0 || best_after != price {
            return;
        }
        let touch_share = shares as f64 / touch_after as f64;
        // Or it dwarfs the orders already there (deep touches of busy names).
        let multiple = match ctx.books.best(ev.locate, side) {
            Some(l) if l.price == price => size_multiple(shares as u64, 1, l.shares, l.orders),
            _ => 0.0,
        };
        let by_share = touch_share >= r.min_touch_share;
        if !by_share && multiple < r.min_size_multiple {
            return;
        }
        let (best_before, touch_before) = side_touch(&ev.before, side);
        let improve_ticks = if touch_before > 0 && better(side, price, best_before) {
            ticks_between(price, best_before)
        } else {
            0
        };
        self.counters.candidates += 1;
        let key = pair_key(ev.locate, &party, side);
        let pair = match self.pairs.entry(key, ev.ts) {
            Ok(p) => p,
            Err(_) => {
                self.counters.pair_overflow += 1;
                return;
            }
        };
        if pair.n == 0 && pair.party == NOBODY {
            *pair = Pair {
                locate: ev.locate,
                side,
                party,
                ..NO_PAIR
            };
        } else if !pair.is(ev.locate, &party, side) {
            self.counters.collisions += 1;
            return;
        }
        let mut evicted = None;
        if pair.n as usize == PAIR_CANDIDATES {
            evicted = Some(pair.refs[0]);
            pair.refs.copy_within(1.., 0);
            pair.n -= 1;
        }
        pair.refs[pair.n as usize] = order_ref;
        pair.n += 1;
        if let Some(old) = evicted {
            self.cands.remove(old);
            self.counters.pair_evicted += 1;
        }
        let c = Cand {
            locate: ev.locate,
            side,
            party,
            add_ts: ev.ts,
            shares,
            resting: shares,
            improve_ticks,
            touch_share,
            multiple,
            by_share,
            price,
            ..NO_CAND
        };
        if self.cands.set(order_ref, ev.ts, c).is_err() {
            self.counters.order_overflow += 1;
            if let Some(p) = self.pairs.get_mut(key, ev.ts) {
                p.drop_ref(order_ref);
            }
        }
    }

    /// Credits an execution of `party`'s order on `side` to its candidates on the other side.
    fn credit(&mut self, r: &SpoofingRules, ev: &SurvEvent, party: Party, side: Side, q: u32) {
        let key = pair_key(ev.locate, &party, opposite(side));
        let Some(p) = self.pairs.get(key, ev.ts).copied() else {
            return;
        };
        if !p.is(ev.locate, &party, opposite(side)) {
            return;
        }
        let (exec_ref, exec_px) = match ev.kind {
            Kind::Exec {
                order_ref, price, ..
            } => (order_ref, price),
            _ => (0, 0),
        };
        let mut self_trade = [0u64; PAIR_CANDIDATES];
        let mut n_self = 0;
        for &cr in &p.refs[..p.n as usize] {
            let Some(c) = self.cands.get_mut(cr, ev.ts) else {
                continue;
            };
            if ev.ts < c.add_ts || ev.ts - c.add_ts > r.lifetime_zero() {
                continue;
            }
            let reaction = ev.ts - c.add_ts;
            // Price relation: the spoof sits on its own side of the price the other side
            // traded at (a spoof offer above the bid that was hit), near enough to press on it.
            let own_side = exec_px == 0 || better(opposite(c.side), c.price, exec_px);
            if !own_side {
                // Locked against the participant's own resting order, which executed at once:
                // the self-trade shape, not a spoof.
                if reaction < r.min_reaction_ns {
                    self_trade[n_self] = cr;
                    n_self += 1;
                }
                continue;
            }
            let gap_bps = exec_px.abs_diff(c.price) as f64 / exec_px.max(1) as f64 * 1e4;
            if reaction < r.min_reaction_ns || gap_bps > r.max_price_gap_bps {
                continue;
            }
            c.opp_shares += q as u64;
            if c.opp_first_ts == 0 {
                c.opp_first_ts = ev.ts;
            }
            c.opp_last_ts = ev.ts;
            c.opp_ref = exec_ref;
            c.gap_bps = gap_bps;
        }
        for &cr in &self_trade[..n_self] {
            if let Some(c) = self.cands.get(cr, ev.ts).copied() {
                self.counters.self_trades += 1;
                self.forget(cr, &c, ev.ts, r.cooldown_ns);
            }
        }
    }

    /// The candidate `cr` lost `q` shares to its owner (cancel, or replaced away): fires if that
    /// completes the pull.
    #[allow(clippy::too_many_arguments)]
    fn pulled(
        &mut self,
        r: &SpoofingRules,
        ev: &SurvEvent,
        ctx: &Ctx<'_>,
        cr: u64,
        q: u32,
        out: &mut Alerts,
        fam: &mut Family<'_>,
    ) {
        let Some(c) = self.cands.get_mut(cr, ev.ts) else {
            return;
        };
        c.cancelled = c.cancelled.saturating_add(q);
        c.resting = c.resting.saturating_sub(q);
        let c = *c;
        let cancel_ratio = c.cancelled as f64 / c.shares.max(1) as f64;
        if cancel_ratio < r.min_cancel_ratio && c.resting > 0 {
            return;
        }
        self.forget(cr, &c, ev.ts, r.cooldown_ns);
        let lifetime = ev.ts.saturating_sub(c.add_ts);
        if c.opp_shares < r.min_exec_shares as u64 {
            return;
        }
        let exec_to_cancel = ev.ts.saturating_sub(c.opp_last_ts);
        let [score, lt_score, ec_score] = r.timing(lifetime, exec_to_cancel);
        if score < r.min_timing_score {
            return;
        }
        if let Some(l) = fam {
            let note = SpoofNote {
                order_ref: cr,
                shares: c.shares,
                touch_share: c.touch_share,
                lifetime_ns: lifetime,
                timing_score: score,
            };
            // The participant's side is layered: one episode, reported as layering.
            if l.takes_over(ev, ctx, (c.locate, c.party, c.side), &note, out) {
                self.counters.to_layering += 1;
                return;
            }
        }
        let exec_ratio = c.shares as f64 / c.opp_shares.max(1) as f64;
        if exec_ratio < r.min_spoof_exec_ratio {
            return;
        }
        let fill_ratio = c.filled as f64 / c.shares.max(1) as f64;
        let key = pair_key(c.locate, &c.party, c.side);
        if let Some(p) = self.pairs.get_mut(key, ev.ts) {
            if p.is(c.locate, &c.party, c.side) {
                if p.last_alert != 0 && ev.ts < p.last_alert + r.cooldown_ns {
                    self.counters.suppressed += 1;
                    return;
                }
                p.last_alert = ev.ts;
            }
        } else if let Ok(p) = self.pairs.entry(key, ev.ts) {
            // Keep the cooldown even though no candidate is left.
            *p = Pair {
                locate: c.locate,
                side: c.side,
                party: c.party,
                last_alert: ev.ts,
                ..NO_PAIR
            };
        }
        // High when it moved the best price, or outweighs the touch twice over the rule.
        let over = if c.by_share {
            c.touch_share / r.min_touch_share.max(f64::MIN_POSITIVE)
        } else {
            c.multiple / r.min_size_multiple
        };
        let sev = if c.improve_ticks >= 1 {
            Severity::High
        } else {
            Severity::by_ratio(over, 2.0)
        };
        let a = Alert::new(DetectorId::Spoofing, ev.ts, ev.seq, ev.locate, ctx.symbol)
            .party(c.party)
            .severity(sev)
            .order_ref(cr)
            .order_ref(c.opp_ref)
            .evidence(
                "spoof_shares",
                c.shares as f64,
                ">=",
                r.min_spoof_shares as f64,
            );
        let a = if c.by_share {
            a.evidence("touch_share_ratio", c.touch_share, ">=", r.min_touch_share)
        } else {
            a.evidence("size_multiple_ratio", c.multiple, ">=", r.min_size_multiple)
        };
        out.push(
            a.context("improve_ticks", c.improve_ticks as f64)
                .evidence(
                    "exec_shares",
                    c.opp_shares as f64,
                    ">=",
                    r.min_exec_shares as f64,
                )
                .evidence("spoof_exec_ratio", exec_ratio, ">=", r.min_spoof_exec_ratio)
                .evidence(
                    "reaction_ns",
                    c.opp_first_ts.saturating_sub(c.add_ts) as f64,
                    ">=",
                    r.min_reaction_ns as f64,
                )
                .evidence("price_gap_bps", c.gap_bps, "<=", r.max_price_gap_bps)
                .evidence("timing_score", score, ">=", r.min_timing_score)
                // The score's parts: each falls smoothly past its limit.
                .context("lifetime_ns", lifetime as f64)
                .context("lifetime_score", lt_score)
                .context("exec_to_cancel_ns", exec_to_cancel as f64)
                .context("exec_to_cancel_score", ec_score)
                .evidence("spoof_fill_ratio", fill_ratio, "<=", r.max_spoof_fill_ratio)
                .evidence("cancel_ratio", cancel_ratio, ">=", r.min_cancel_ratio)
                .touch(ev.after)
                .since(c.add_ts),
        );
    }
}

impl Detector for Spoofing {
    type Rules = SpoofingRules;
    const ID: DetectorId = DetectorId::Spoofing;

    fn on_event(&mut self, r: &SpoofingRules, ev: &SurvEvent, ctx: &Ctx<'_>, out: &mut Alerts) {
        self.on_event_with(r, ev, ctx, out, None);
    }
}

/// The detector a spoof is handed to when the same participant's side is layered (layering with
/// its rules); `None` when it does not run.
pub type Family<'a> = Option<&'a mut dyn TakesOver>;

impl Spoofing {
    /// [`Detector::on_event`], handing a spoof to `fam`'s layering detector when its side is
    /// layered by the same participant (one episode, one alert family).
    pub fn on_event_with(
        &mut self,
        r: &SpoofingRules,
        ev: &SurvEvent,
        ctx: &Ctx<'_>,
        out: &mut Alerts,
        mut fam: Family<'_>,
    ) {
        if ev.locate == 0 {
            return;
        }
        match ev.kind {
            Kind::Add {
                order_ref, side, ..
            } => self.on_add(r, ev, ctx, order_ref, side),
            Kind::Exec {
                order_ref,
                side,
                shares,
                remaining,
                party,
                ..
            } => {
                // Candidates are attributed orders only: an anonymous order needs no lookup (a
                // cache miss in a large table on most events).
                let cand = if party == NOBODY {
                    None
                } else {
                    self.cands.get_mut(order_ref, ev.ts)
                };
                if let Some(c) = cand {
                    c.filled = c.filled.saturating_add(shares);
                    c.resting = remaining;
                    let c = *c;
                    if remaining == 0 || c.filled as f64 > r.max_spoof_fill_ratio * c.shares as f64
                    {
                        self.counters.genuine += 1;
                        self.forget(order_ref, &c, ev.ts, r.cooldown_ns);
                    }
                }
                if party != NOBODY && shares > 0 {
                    self.credit(r, ev, party, side, shares);
                }
            }
            Kind::Cancel {
                order_ref,
                shares,
                party,
                ..
            } if party != NOBODY => self.pulled(r, ev, ctx, order_ref, shares, out, &mut fam),
            Kind::Replace {
                old_ref,
                new_ref,
                side,
                old_price,
                old_shares,
                price,
                shares,
                party,
                ..
            } if party != NOBODY => {
                let Some(c) = self.cands.get(old_ref, ev.ts).copied() else {
                    return;
                };
                let kept = shares as f64 >= (1.0 - r.min_cancel_ratio) * old_shares as f64;
                if !better(side, old_price, price) && kept {
                    // Still as aggressive and most of its size: follow it under its new
                    // reference (a shrink counts as cancelled shares).
                    self.cands.remove(old_ref);
                    let key = pair_key(c.locate, &c.party, c.side);
                    let moved = Cand {
                        resting: shares,
                        cancelled: c
                            .cancelled
                            .saturating_add(old_shares.saturating_sub(shares)),
                        ..c
                    };
                    if self.cands.set(new_ref, ev.ts, moved).is_err() {
                        self.counters.order_overflow += 1;
                        self.forget(old_ref, &c, ev.ts, r.cooldown_ns);
                    } else if let Some(p) = self.pairs.get_mut(key, ev.ts) {
                        if let Some(x) = p.refs[..p.n as usize].iter_mut().find(|x| **x == old_ref)
                        {
                            *x = new_ref;
                        }
                    }
                } else {
                    // Moved away from the touch or mostly withdrawn: the size it showed is
                    // pulled (the new order is a new order).
                    self.pulled(r, ev, ctx, old_ref, c.resting.max(1), out, &mut fam);
                    if let Some(c) = self.cands.get(old_ref, ev.ts).copied() {
                        self.forget(old_ref, &c, ev.ts, r.cooldown_ns);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_nonsense_is_rejected() {
        assert!(SpoofingRules::default().validate().is_ok());
        let bad = SpoofingRules {
            min_touch_share: 1.5,
            ..SpoofingRules::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("min_touch_share"));
        let bad = SpoofingRules {
            max_lifetime_ns: 0,
            ..SpoofingRules::default()
        };
        assert!(bad.validate().is_err());
        let bad = SpoofingRules {
            min_spoof_shares: 0,
            ..SpoofingRules::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn filtered_table_answers_as_the_bare_table() {
        let mut t = Filtered::with_ttl(4, 0u32, 100);
        assert!(!t.may_hold(7));
        assert!(t.set(7, 0, 70).is_ok());
        *t.entry(8, 0).unwrap() += 80;
        *t.entry(8, 0).unwrap() += 1;
        assert_eq!(t.get(7, 1), Some(&70));
        assert_eq!(t.get_mut(8, 1).copied(), Some(81));
        assert_eq!(t.remove(7), Some(70));
        assert!(t.get(7, 1).is_none());
        assert!(t.remove(7).is_none());
        // Expired inside the table: absent, though its filter bucket may still say "maybe".
        assert!(t.get(8, 200).is_none());
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn pair_keys_differ_by_stock_party_and_side() {
        let p = super::super::event::party_of_mpid(*b"GSCO");
        let q = super::super::event::party_of_mpid(*b"MSCO");
        let k = pair_key(1, &p, Side::Buy);
        assert_ne!(k, pair_key(2, &p, Side::Buy));
        assert_ne!(k, pair_key(1, &q, Side::Buy));
        assert_ne!(k, pair_key(1, &p, Side::Sell));
        assert_eq!(k, pair_key(1, &p, Side::Buy));
    }
}
