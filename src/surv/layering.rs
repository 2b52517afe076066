//! Layering: a participant stacks orders on several of the most competitive visible price levels
//! of one side (a large share of each), the price leans with that apparent pressure, the
//! participant trades on the *other* side, and then pulls the layers (after which the price
//! usually reverts). This is the multi-level form of spoofing described in FINRA Rule 5210
//! Supplementary Material .03 ("layering … multiple limit orders at different price levels …
//! cancelled"), SEC v. Biremis / Trillium (FINRA 2010) and MAR Annex I 1(a).
//!
//! The participant is known from attributed `F` adds (or the account the participant flow links
//! an order to). Per (stock, participant, side) the detector follows the participant's live
//! orders that rested within the top `top_levels` levels of their side when added (at most
//! [`LAYER_ORDERS`] each). Then:
//!
//! 1. **Arming.** When an order of the participant executes on one side, the other (layered)
//!    side's top `top_levels` levels are read from the book ([`crate::book::Books::depth`]):
//!    a level is *held* when the participant's own orders there make up at least
//!    `min_level_share` of its shares, or (books too deep for any one participant to own a large
//!    share) are at least `min_size_multiple` times the average other order there. With at least `min_levels_held` levels held (≥ 2: a single
//!    large order is the spoofing shape, not layering) and `min_layer_shares` in them, the
//!    layers are marked.
//! 2. **Pull.** When `min_cancelled_layers` of the marked layers are cancelled (deleted, or
//!    replaced to a worse price), the delay from that execution is scored (1 up to
//!    `max_cancel_after_exec_ns`, falling smoothly to 0 over `cancel_after_exec_fade_ns`); at
//!    least `min_timing_score`, it fires — once per arming, and at most once per `cooldown_ns`
//!    per (stock, participant, side). A spoof the spoofing detector finds on an armed side
//!    fires the arming at once, carrying the spoof's evidence ([`Layering::takes_over`]).
//!
//! Evidence: levels held, the smallest share held, the layered shares, the executed shares,
//! the cancelled layers and how soon, the mid's move in the layers' direction from the first
//! layer to the execution, and its reversion from the execution to the pull (both in bps,
//! gated by `min_move_bps` / `min_reversion_bps`, off by default).
//!
//! State: fixed [`KeyedState`](crate::state::KeyedState) tables (orders by reference, pairs by a
//! hash of the triple), each behind a small counting filter that answers most lookups, sized
//! by [`Capacity`], full tables counted in [`LayeringCounters`], stale entries expiring by TTL.
//! Work per event: a table probe or two; an attributed add also reads the top levels of its side,
//! an attributed execution with layers on the other side reads those levels and its ≤ 8 orders.

use super::event::{Kind, Party, NOBODY};
use super::family::{SpoofNote, TakesOver};
use super::range::{self, Key, BPS, MULTIPLE, VOLUME};
use super::scale::falling;
use super::spoofing::{better, opposite, pair_key, size_multiple, Filtered};
use super::RuleError;
use super::{Alert, Alerts, Capacity, Ctx, Detector, DetectorId, Severity, SurvEvent};
use crate::itch::Side;

/// Live orders followed per (stock, participant, side); the oldest is dropped (counted) for a
/// newer one.
pub const LAYER_ORDERS: usize = 8;

/// Most levels `top_levels` may name.
pub const MAX_TOP_LEVELS: u32 = 16;

/// Table entries expire when not written for this long (1 hour of event time), so a full table
/// can reuse them: layers may rest a while before they are used.
pub const STATE_TTL_NS: u64 = 3_600_000_000_000;

/// `min_move_bps` / `min_reversion_bps` at or below this ask nothing (the default): the move is
/// context on the alert, not a test.
const MOVE_OFF_BPS: f64 = -10_000.0;

/// Cancelled layer references kept for the alert.
const PULLED_REFS: usize = 6;

/// Thresholds of `[layering]` in the rules file.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LayeringRules {
    /// Run this detector.
    pub enabled: bool,
    /// How many of the best levels of the layered side count as "most competitive", levels.
    /// Default 5: layers sit at and just behind the touch, where other traders read depth.
    pub top_levels: u32,
    /// Fewest of those levels the participant must hold, levels. Default 3 (at least 2: one
    /// large order is spoofing, not layering).
    pub min_levels_held: u32,
    /// Smallest share of a level's displayed shares the participant's own orders must make up
    /// for the level to count as held, ratio 0..=1. Default 0.2: levels near the touch of busy
    /// names hold dozens of orders (10,000–40,000 shares in the generated busy stocks), and an
    /// ordinary participant makes up a few percent of one (ten MPIDs share the 15 % of the
    /// generated adds that are attributed); a fifth of each of several levels is a wall.
    pub min_level_share: f64,
    /// Or: smallest size of the participant's orders at a level over the average size of the
    /// other orders there, ratio, for the level to count as held. Default 20: the busiest
    /// generated book holds 70,000–125,000 shares in 250–550 orders per level, where no
    /// participant can own a fifth, but a layer of a hundred round lots dwarfs the orders
    /// around it (an ordinary order is a few round lots).
    pub min_size_multiple: f64,
    /// Fewest shares in the held levels together, shares. Default 5,000 (50 round lots): thin
    /// books can make a few small orders a large share of their levels; layers are built to be
    /// seen.
    pub min_layer_shares: u64,
    /// Fewest layer orders cancelled after the execution, orders. Default 2.
    pub min_cancelled_layers: u32,
    /// Time from the opposite-side execution to the cancel completing the pull up to which
    /// that delay scores 1, ns. Default 2 s: layers are withdrawn as soon as they have done
    /// their work.
    pub max_cancel_after_exec_ns: u64,
    /// Beyond `max_cancel_after_exec_ns`, the timing score falls smoothly to 0 over this long,
    /// ns. Default 3 s (0 at 5 s; a pull 2.6 s after the fill still scores 0.9).
    pub cancel_after_exec_fade_ns: u64,
    /// Least timing score to fire, ratio 0..=1. Default 0.5 (reached 3.5 s after the fill).
    pub min_timing_score: f64,
    /// Smallest move of the mid in the layers' direction (up for bid layers) from the first
    /// layer's add to the execution, bps. Default −10,000 (no requirement: it is reported; raise
    /// it to require the price to have leaned with the layers).
    pub min_move_bps: f64,
    /// Smallest reversion of the mid from the execution to the pull, bps (positive = back
    /// against the layers' direction). Default −10,000 (no requirement: it is reported; the
    /// reversion usually follows the pull rather than coinciding with it).
    pub min_reversion_bps: f64,
    /// Quiet time after an alert for the same (stock, participant, side), ns. Default 10 s.
    pub cooldown_ns: u64,
}

impl Default for LayeringRules {
    fn default() -> Self {
        LayeringRules {
            enabled: true,
            top_levels: 5,
            min_levels_held: 3,
            min_level_share: 0.2,
            min_size_multiple: 20.0,
            min_layer_shares: 5_000,
            min_cancelled_layers: 2,
            max_cancel_after_exec_ns: 2_000_000_000,
            cancel_after_exec_fade_ns: 3_000_000_000,
            min_timing_score: 0.5,
            min_move_bps: -10_000.0,
            min_reversion_bps: -10_000.0,
            cooldown_ns: 10_000_000_000,
        }
    }
}

impl LayeringRules {
    /// Its table in the rules file.
    pub const TABLE: &'static str = "layering";
    /// Every key with its allowed range.
    pub const KEYS: &'static [Key] = &[
        Key::flag("enabled"),
        Key::int("top_levels", 1, MAX_TOP_LEVELS as u64),
        Key::int("min_levels_held", 2, MAX_TOP_LEVELS as u64)
            .why("and at most top_levels; one level is spoofing"),
        Key::above("min_level_share", 0.0, 1.0),
        Key::real("min_size_multiple", 1.0, MULTIPLE),
        Key::int("min_layer_shares", 0, VOLUME),
        Key::int("min_cancelled_layers", 1, LAYER_ORDERS as u64)
            .why("orders followed per participant and side"),
        Key::int("max_cancel_after_exec_ns", 1, STATE_TTL_NS).why("state is kept this long"),
        Key::int("cancel_after_exec_fade_ns", 0, STATE_TTL_NS).why("state is kept this long"),
        Key::real("min_timing_score", 0.0, 1.0),
        Key::real("min_move_bps", -BPS, BPS),
        Key::real("min_reversion_bps", -BPS, BPS),
        Key::int("cooldown_ns", 0, STATE_TTL_NS).why("state is kept this long"),
    ];

    /// Checks every threshold is in its range, and the levels held fit the levels counted.
    pub fn validate(&self) -> Result<(), RuleError> {
        range::check(Self::TABLE, self, Self::KEYS)?;
        if self.min_levels_held > self.top_levels {
            return Err(RuleError::new(
                "min_levels_held",
                format!(
                    "must be within 2..=top_levels ({}) (got {}; one level is spoofing)",
                    self.top_levels, self.min_levels_held
                ),
            ));
        }
        Ok(())
    }

    /// Time after the execution beyond which a pull no longer counts (its score is 0), ns; at
    /// most the state's TTL (an arming is not kept longer).
    pub fn pull_window_ns(&self) -> u64 {
        self.max_cancel_after_exec_ns
            .saturating_add(self.cancel_after_exec_fade_ns)
            .min(STATE_TTL_NS)
    }

    /// The timing score of a pull `after` ns after the execution.
    pub fn timing_score(&self, after: u64) -> f64 {
        let zero = self.pull_window_ns();
        falling(
            after as f64,
            self.max_cancel_after_exec_ns.min(zero) as f64,
            zero as f64,
        )
    }
}

/// A followed order of a participant.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct LOrder {
    locate: u16,
    side: Side,
    party: Party,
    price: u32,
    /// Shares resting.
    shares: u32,
    add_ts: u64,
    /// Mid ×2 after its add (0: a side was empty).
    mid2: u64,
    /// The arming (execution time) that marked it a layer, 0 for none.
    layer_of: u64,
}

const NO_ORDER: LOrder = LOrder {
    locate: 0,
    side: Side::Buy,
    party: NOBODY,
    price: 0,
    shares: 0,
    add_ts: 0,
    mid2: 0,
    layer_of: 0,
};

/// A bucket of [`OrderTable`]: the reference, its last write and the order, in one cache line.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
#[repr(align(64))]
struct OrderSlot {
    key: u64,
    written: u64,
    /// Vacant when `o.party` is [`NOBODY`] (followed orders are attributed).
    o: LOrder,
}

const VACANT: OrderSlot = OrderSlot {
    key: 0,
    written: 0,
    o: NO_ORDER,
};

/// The followed orders by reference: open addressing (linear probing, backward-shift removal)
/// over twice as many buckets as orders allowed, each bucket holding the key, its write time
/// and the order, so a lookup reads one cache line (a [`KeyedState`](crate::state::KeyedState)
/// reads a bucket, a write time and a value in three arrays). Same rules as that table: at most
/// `cap` orders; an order not written for [`STATE_TTL_NS`] is gone (removed when met); a full
/// table first sweeps a few buckets for expired orders, then refuses (counted by the caller).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct OrderTable {
    slots: Box<[OrderSlot]>,
    shift: u32,
    mask: usize,
    len: usize,
    cap: usize,
    cursor: usize,
    /// Orders held per hash bucket of references (saturating at 255, then kept): a zero
    /// answers the lookup of an order never followed (most attributed executions and cancels)
    /// from a small cache-resident array.
    counts: Box<[u8]>,
    count_shift: u32,
}

impl OrderTable {
    fn new(cap: usize) -> Self {
        let cap = cap.max(1);
        let n = (cap.next_power_of_two() * 2).max(2);
        OrderTable {
            slots: vec![VACANT; n].into_boxed_slice(),
            shift: 64 - n.trailing_zeros(),
            mask: n - 1,
            len: 0,
            cap,
            cursor: 0,
            counts: vec![0u8; n.clamp(1 << 10, 1 << 18)].into_boxed_slice(),
            count_shift: 64 - n.clamp(1 << 10, 1 << 18).trailing_zeros(),
        }
    }

    #[inline]
    fn count_at(&self, key: u64) -> usize {
        // Different bits of the product than `home`, so a busy bucket run is spread out.
        (key.wrapping_mul(0xD6E8_FEB8_6659_FD93) >> self.count_shift) as usize
    }

    #[inline]
    fn home(&self, key: u64) -> usize {
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    #[inline]
    fn expired(written: u64, now: u64) -> bool {
        now.saturating_sub(written) >= STATE_TTL_NS
    }

    /// `Ok(bucket)` of `key` (live at `now`, when given), else `Err` (a vacant bucket where it
    /// would go, or `usize::MAX`: see [`vacant`](Self::vacant)). An expired `key` met is
    /// removed.
    #[inline]
    fn find(&mut self, key: u64, now: Option<u64>) -> Result<usize, usize> {
        if self.counts[self.count_at(key)] == 0 {
            return Err(usize::MAX);
        }
        let mut i = self.home(key);
        loop {
            let s = &self.slots[i];
            if s.o.party == NOBODY {
                return Err(i);
            }
            if s.key == key {
                if now.is_some_and(|now| Self::expired(s.written, now)) {
                    self.remove_at(i);
                    return Err(usize::MAX);
                }
                return Ok(i);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// The vacant bucket where `key` (absent) goes.
    #[inline]
    fn vacant(&self, key: u64) -> usize {
        let mut i = self.home(key);
        while self.slots[i].o.party != NOBODY {
            i = (i + 1) & self.mask;
        }
        i
    }

    fn remove_at(&mut self, i: usize) {
        self.len -= 1;
        let c = self.count_at(self.slots[i].key);
        if self.counts[c] != u8::MAX {
            self.counts[c] -= 1;
        }
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let s = self.slots[j];
            if s.o.party == NOBODY {
                break;
            }
            let home = self.home(s.key);
            if (j.wrapping_sub(home) & self.mask) >= (j.wrapping_sub(hole) & self.mask) {
                self.slots[hole] = s;
                hole = j;
            }
        }
        self.slots[hole] = VACANT;
    }

    fn len(&self) -> usize {
        self.len
    }

    /// Starts loading the bucket `key` goes to (a new order's: its miss then overlaps the
    /// pair lookup).
    #[inline]
    fn prefetch(&self, key: u64) {
        crate::feed::frame::prefetch(self.slots.as_ptr().wrapping_add(self.home(key)) as *const u8);
    }

    /// The order `key` at `now`, if followed (does not refresh its TTL).
    #[inline]
    fn get(&mut self, key: u64, now: u64) -> Option<&LOrder> {
        let i = self.find(key, Some(now)).ok()?;
        Some(&self.slots[i].o)
    }

    /// The order `key` to change, if followed; a write at `now`.
    #[inline]
    fn get_mut(&mut self, key: u64, now: u64) -> Option<&mut LOrder> {
        let i = self.find(key, Some(now)).ok()?;
        let s = &mut self.slots[i];
        s.written = now;
        Some(&mut s.o)
    }

    /// Follows `o` (attributed) as `key` at `now`; `Err` when the table is full.
    fn set(&mut self, key: u64, now: u64, o: LOrder) -> Result<(), crate::state::Full> {
        debug_assert!(o.party != NOBODY);
        let i = match self.find(key, Some(now)) {
            Ok(i) => i,
            Err(mut i) => {
                if i == usize::MAX {
                    i = self.vacant(key);
                }
                if self.len >= self.cap {
                    // Reclaim expired orders from a few buckets, as a full keyed table does.
                    for _ in 0..crate::state::SWEEP_ON_FULL {
                        let c = self.cursor;
                        self.cursor = (c + 1) & self.mask;
                        let s = &self.slots[c];
                        if s.o.party != NOBODY && Self::expired(s.written, now) {
                            self.remove_at(c);
                        }
                    }
                    if self.len >= self.cap {
                        return Err(crate::state::Full);
                    }
                    i = self.vacant(key);
                }
                self.len += 1;
                let c = self.count_at(key);
                self.counts[c] = self.counts[c].saturating_add(1);
                i
            }
        };
        self.slots[i] = OrderSlot {
            key,
            written: now,
            o,
        };
        Ok(())
    }

    /// Stops following `key` (whatever its TTL).
    fn remove(&mut self, key: u64) -> Option<LOrder> {
        let i = self.find(key, None).ok()?;
        let o = self.slots[i].o;
        self.remove_at(i);
        Some(o)
    }
}

/// One (stock, participant, side): its followed orders and the current arming.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct Pair {
    locate: u16,
    side: Side,
    party: Party,
    refs: [u64; LAYER_ORDERS],
    n: u8,
    /// Execution time that armed it (0: not armed).
    armed: u64,
    fired: bool,
    exec_ref: u64,
    exec_shares: u64,
    levels_held: u32,
    min_share: f64,
    /// Smallest size multiple among levels held by multiple, not share (∞: none).
    min_multiple: f64,
    layer_shares: u64,
    first_add: u64,
    mid2_first: u64,
    mid2_exec: u64,
    cancelled: u32,
    pulled: [u64; PULLED_REFS],
    last_alert: u64,
}

const NO_PAIR: Pair = Pair {
    locate: 0,
    side: Side::Buy,
    party: NOBODY,
    refs: [0; LAYER_ORDERS],
    n: 0,
    armed: 0,
    fired: false,
    exec_ref: 0,
    exec_shares: 0,
    levels_held: 0,
    min_share: 0.0,
    min_multiple: f64::INFINITY,
    layer_shares: 0,
    first_add: 0,
    mid2_first: 0,
    mid2_exec: 0,
    cancelled: 0,
    pulled: [0; PULLED_REFS],
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

    /// Nothing left worth keeping at `now`.
    fn idle(&self, now: u64, r: &LayeringRules) -> bool {
        self.n == 0
            && (self.armed == 0 || now > self.armed + r.pull_window_ns())
            && (self.last_alert == 0 || now >= self.last_alert + r.cooldown_ns)
    }
}

/// What the layering detector had to drop or skip.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayeringCounters {
    /// Orders followed.
    pub followed: u64,
    /// Orders not followed: the order table was full.
    pub order_overflow: u64,
    /// Orders not followed: the pair table was full.
    pub pair_overflow: u64,
    /// Older orders dropped for newer ones of the same pair ([`LAYER_ORDERS`]).
    pub pair_evicted: u64,
    /// Pair-key hash collisions (the newer triple is skipped).
    pub collisions: u64,
    /// Executions that found the other side layered (armings).
    pub armed: u64,
    /// Alerts held back by the cooldown.
    pub suppressed: u64,
}

/// The `layering` detector's state in one shard.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Layering {
    orders: OrderTable,
    pairs: Filtered<Pair>,
    /// Counters.
    pub counters: LayeringCounters,
}

#[inline]
fn mid2_of(t: &crate::agg::Touch) -> u64 {
    if t.bid_shares > 0 && t.ask_shares > 0 {
        t.bid as u64 + t.ask as u64
    } else {
        0
    }
}

/// `dir` × (to − from) / from in bps; 0 when either is unknown.
#[inline]
fn bps(from: u64, to: u64, dir: f64) -> f64 {
    if from == 0 || to == 0 {
        0.0
    } else {
        // `+ 0.0` turns a -0 (no move, direction down) into 0.
        dir * (to as f64 - from as f64) / from as f64 * 1e4 + 0.0
    }
}

impl Layering {
    /// State sized by `cap`: `cap.orders` followed orders, `cap.pairs` (stock, participant,
    /// side) entries.
    pub fn new(cap: &Capacity) -> Self {
        Layering {
            orders: OrderTable::new(cap.orders),
            pairs: Filtered::with_ttl(cap.pairs.max(1), NO_PAIR, STATE_TTL_NS),
            counters: LayeringCounters::default(),
        }
    }

    /// Orders followed now (including expired ones not yet reclaimed).
    pub fn followed(&self) -> usize {
        self.orders.len()
    }

    /// Follows a new order of `party` if it rests within the top levels of its side.
    #[allow(clippy::too_many_arguments)]
    fn follow(
        &mut self,
        r: &LayeringRules,
        ev: &SurvEvent,
        ctx: &Ctx<'_>,
        order_ref: u64,
        side: Side,
        price: u32,
        shares: u32,
        party: Party,
    ) {
        if shares == 0 {
            return;
        }
        let top = ctx
            .books
            .depth(ev.locate, side)
            .take(r.top_levels as usize)
            .any(|l| l.price == price);
        if !top {
            return;
        }
        self.orders.prefetch(order_ref);
        let key = pair_key(ev.locate, &party, side);
        let pair = match self.pairs.entry(key, ev.ts) {
            Ok(p) => p,
            Err(_) => {
                self.counters.pair_overflow += 1;
                return;
            }
        };
        if pair.party == NOBODY {
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
        if pair.n as usize == LAYER_ORDERS {
            evicted = Some(pair.refs[0]);
            pair.refs.copy_within(1.., 0);
            pair.n -= 1;
        }
        pair.refs[pair.n as usize] = order_ref;
        pair.n += 1;
        if let Some(old) = evicted {
            self.orders.remove(old);
            self.counters.pair_evicted += 1;
        }
        let o = LOrder {
            locate: ev.locate,
            side,
            party,
            price,
            shares,
            add_ts: ev.ts,
            mid2: mid2_of(&ev.after),
            layer_of: 0,
        };
        if self.orders.set(order_ref, ev.ts, o).is_err() {
            self.counters.order_overflow += 1;
            if let Some(p) = self.pairs.get_mut(key, ev.ts) {
                p.drop_ref(order_ref);
            }
        } else {
            self.counters.followed += 1;
        }
    }

    /// Stops following `r`; returns whether it was a layer of a live arming (and the pair key).
    fn unfollow(&mut self, rules: &LayeringRules, r: u64, o: &LOrder, now: u64) {
        self.orders.remove(r);
        let key = pair_key(o.locate, &o.party, o.side);
        let mut idle = false;
        if let Some(p) = self.pairs.get_mut(key, now) {
            if p.is(o.locate, &o.party, o.side) {
                p.drop_ref(r);
                idle = p.idle(now, rules);
            }
        }
        if idle {
            self.pairs.remove(key);
        }
    }

    /// An execution of `party`'s order on `side`: is the other side layered by it?
    fn on_exec(&mut self, r: &LayeringRules, ev: &SurvEvent, ctx: &Ctx<'_>, party: Party) {
        let Kind::Exec {
            order_ref,
            side,
            shares,
            ..
        } = ev.kind
        else {
            return;
        };
        let ls = opposite(side);
        let key = pair_key(ev.locate, &party, ls);
        let Some(p) = self.pairs.get_mut(key, ev.ts) else {
            return;
        };
        if !p.is(ev.locate, &party, ls) {
            return;
        }
        let rearm = p.armed != 0 && !p.fired && ev.ts <= p.armed + r.max_cancel_after_exec_ns;
        if rearm {
            // Armed already: more of the same trade (layers added since are marked below).
            p.exec_shares += shares as u64;
        } else if p.last_alert != 0 && ev.ts < p.last_alert + r.cooldown_ns {
            return;
        }
        if (p.n as u32) < r.min_levels_held {
            return;
        }
        let p = *p;
        // The participant's followed orders on the layered side.
        let mut mine = [(0u64, NO_ORDER); LAYER_ORDERS];
        let mut m = 0;
        for &x in &p.refs[..p.n as usize] {
            if let Some(o) = self.orders.get(x, ev.ts) {
                mine[m] = (x, *o);
                m += 1;
            }
        }
        let mine = &mine[..m];
        let (mut held, mut min_share, mut layer_shares) = (0u32, 1.0f64, 0u64);
        // The smallest size multiple among the levels held by it alone (not by share).
        let mut min_multiple = f64::INFINITY;
        let mut held_prices = [0u32; MAX_TOP_LEVELS as usize];
        for lvl in ctx.books.depth(ev.locate, ls).take(r.top_levels as usize) {
            if lvl.shares == 0 {
                continue;
            }
            let (mut own, mut own_orders) = (0u64, 0u32);
            for (_, o) in mine.iter().filter(|(_, o)| o.price == lvl.price) {
                own += o.shares as u64;
                own_orders += 1;
            }
            if own == 0 {
                continue;
            }
            let share = own as f64 / lvl.shares as f64;
            let by_share = share >= r.min_level_share;
            let multiple = size_multiple(own, own_orders, lvl.shares, lvl.orders);
            if by_share || multiple >= r.min_size_multiple {
                held_prices[held as usize] = lvl.price;
                held += 1;
                min_share = min_share.min(share);
                if !by_share {
                    min_multiple = min_multiple.min(multiple);
                }
                layer_shares += own.min(lvl.shares);
            }
        }
        if held < r.min_levels_held || layer_shares < r.min_layer_shares {
            return;
        }
        let held_prices = &held_prices[..held as usize];
        let tag = if rearm { p.armed } else { ev.ts };
        let (mut first_add, mut mid2_first) = (u64::MAX, 0u64);
        for &(x, o) in mine {
            if held_prices.contains(&o.price) {
                if o.add_ts < first_add {
                    first_add = o.add_ts;
                    mid2_first = o.mid2;
                }
                if let Some(om) = self.orders.get_mut(x, ev.ts) {
                    om.layer_of = tag;
                }
            }
        }
        let Some(pm) = self.pairs.get_mut(key, ev.ts) else {
            return;
        };
        if rearm {
            if held > pm.levels_held {
                pm.levels_held = held;
                pm.min_share = min_share;
                pm.min_multiple = min_multiple;
                pm.layer_shares = layer_shares;
            }
            if first_add < pm.first_add {
                pm.first_add = first_add;
                pm.mid2_first = mid2_first;
            }
        } else {
            self.counters.armed += 1;
            *pm = Pair {
                armed: ev.ts,
                fired: false,
                exec_ref: order_ref,
                exec_shares: shares as u64,
                levels_held: held,
                min_share,
                min_multiple,
                layer_shares,
                first_add,
                mid2_first,
                mid2_exec: mid2_of(&ev.before),
                cancelled: 0,
                pulled: [0; PULLED_REFS],
                ..p
            };
        }
    }

    /// Order `x` (a followed order, value `o`) was pulled by its owner: counts it against its
    /// arming and fires when enough layers are gone.
    fn on_pull(
        &mut self,
        r: &LayeringRules,
        ev: &SurvEvent,
        ctx: &Ctx<'_>,
        x: u64,
        o: &LOrder,
        out: &mut Alerts,
    ) {
        if o.layer_of == 0 {
            return;
        }
        let key = pair_key(o.locate, &o.party, o.side);
        let Some(p) = self.pairs.get_mut(key, ev.ts) else {
            return;
        };
        if !p.is(o.locate, &o.party, o.side) || p.armed != o.layer_of || p.fired {
            return;
        }
        if ev.ts.saturating_sub(p.armed) > r.pull_window_ns() {
            return;
        }
        if (p.cancelled as usize) < PULLED_REFS {
            p.pulled[p.cancelled as usize] = x;
        }
        p.cancelled += 1;
        if p.cancelled < r.min_cancelled_layers {
            return;
        }
        self.fire(r, ev, ctx, key, None, out);
    }

    /// The spoofing detector found a spoof of `who` = (stock, participant, side) pulled: if
    /// that side is layered by the same participant (armed by the same execution), the episode
    /// is layering — it fires now carrying the spoof's evidence (or has fired already) and
    /// true is returned: the spoof raises no alert of its own.
    pub fn takes_over(
        &mut self,
        r: &LayeringRules,
        ev: &SurvEvent,
        ctx: &Ctx<'_>,
        who: (u16, Party, Side),
        note: &SpoofNote,
        out: &mut Alerts,
    ) -> bool {
        let (locate, party, side) = who;
        let key = pair_key(locate, &party, side);
        let Some(p) = self.pairs.get(key, ev.ts) else {
            return false;
        };
        if !p.is(locate, &party, side)
            || p.armed == 0
            || ev.ts.saturating_sub(p.armed) > r.pull_window_ns()
        {
            return false;
        }
        p.fired || self.fire(r, ev, ctx, key, Some(note), out)
    }

    /// Fires the arming of pair `key` at `ev` (the pull that completes it, or a spoof of the
    /// pair pulled); false when a gate (timing, price move) holds it back.
    fn fire(
        &mut self,
        r: &LayeringRules,
        ev: &SurvEvent,
        ctx: &Ctx<'_>,
        key: u64,
        spoof: Option<&SpoofNote>,
        out: &mut Alerts,
    ) -> bool {
        let Some(p) = self.pairs.get_mut(key, ev.ts) else {
            return false;
        };
        let after = ev.ts.saturating_sub(p.armed);
        let score = r.timing_score(after);
        if score < r.min_timing_score {
            return false;
        }
        let dir = if p.side == Side::Buy { 1.0 } else { -1.0 };
        let move_bps = bps(p.mid2_first, p.mid2_exec, dir);
        let reversion_bps = bps(p.mid2_exec, mid2_of(&ev.after), -dir);
        if move_bps < r.min_move_bps || reversion_bps < r.min_reversion_bps {
            return false;
        }
        p.fired = true;
        if p.last_alert != 0 && ev.ts < p.last_alert + r.cooldown_ns {
            self.counters.suppressed += 1;
            return true;
        }
        p.last_alert = ev.ts;
        let p = *p;
        out.push(alert_of(
            r,
            &p,
            ev,
            ctx,
            (after, score, move_bps, reversion_bps),
            spoof,
        ));
        true
    }
}

/// The layering detector with its rules: the family a spoof on a layered side is handed to.
#[derive(Debug)]
pub struct WithRules<'a>(pub &'a mut Layering, pub &'a LayeringRules);

impl TakesOver for WithRules<'_> {
    fn takes_over(
        &mut self,
        ev: &SurvEvent,
        ctx: &Ctx<'_>,
        who: (u16, Party, Side),
        note: &SpoofNote,
        out: &mut Alerts,
    ) -> bool {
        self.0.takes_over(self.1, ev, ctx, who, note, out)
    }
}

/// The layering alert of pair `p` fired at `ev`; `t` = (pull delay, timing score, move,
/// reversion).
fn alert_of(
    r: &LayeringRules,
    p: &Pair,
    ev: &SurvEvent,
    ctx: &Ctx<'_>,
    t: (u64, f64, f64, f64),
    spoof: Option<&SpoofNote>,
) -> Alert {
    let (after, score, move_bps, reversion_bps) = t;
    let sev = Severity::by_ratio(p.levels_held as f64 / r.min_levels_held as f64, 4.0 / 3.0);
    let mut a = Alert::new(DetectorId::Layering, ev.ts, ev.seq, ev.locate, ctx.symbol)
        .party(p.party)
        .severity(sev)
        .order_ref(p.exec_ref);
    if let Some(s) = spoof {
        a = a.order_ref(s.order_ref);
    }
    for &pr in &p.pulled[..(p.cancelled as usize).min(PULLED_REFS)] {
        a = a.order_ref(pr);
    }
    let a = a.evidence(
        "levels_held",
        p.levels_held as f64,
        ">=",
        r.min_levels_held as f64,
    );
    let a = if p.min_multiple.is_finite() {
        // Some level was held by size, not share: the weakest such level.
        a.evidence(
            "min_size_multiple_ratio",
            p.min_multiple,
            ">=",
            r.min_size_multiple,
        )
    } else {
        a.evidence(
            "min_level_share_ratio",
            p.min_share,
            ">=",
            r.min_level_share,
        )
    };
    let a = a
        .evidence(
            "layer_shares",
            p.layer_shares as f64,
            ">=",
            r.min_layer_shares as f64,
        )
        .evidence("exec_shares", p.exec_shares as f64, ">=", 1.0)
        // Without a spoof it is the test that fired; with one, the spoof's pull fired it.
        .test_if(
            spoof.is_none(),
            "cancelled_layers",
            p.cancelled as f64,
            ">=",
            r.min_cancelled_layers as f64,
        )
        .evidence("timing_score", score, ">=", r.min_timing_score)
        .context("cancel_after_exec_ns", after as f64)
        .test_if(
            r.min_move_bps > MOVE_OFF_BPS,
            "move_bps",
            move_bps,
            ">=",
            r.min_move_bps,
        )
        .test_if(
            r.min_reversion_bps > MOVE_OFF_BPS,
            "reversion_bps",
            reversion_bps,
            ">=",
            r.min_reversion_bps,
        );
    let a = match spoof {
        Some(s) => a
            .context("spoof_shares", s.shares as f64)
            .context("spoof_touch_share_ratio", s.touch_share)
            .context("spoof_lifetime_ns", s.lifetime_ns as f64)
            .context("spoof_timing_score", s.timing_score),
        None => a,
    };
    a.touch(ev.after).since(p.first_add.min(ev.ts))
}

impl Detector for Layering {
    type Rules = LayeringRules;
    const ID: DetectorId = DetectorId::Layering;

    fn on_event(&mut self, r: &LayeringRules, ev: &SurvEvent, ctx: &Ctx<'_>, out: &mut Alerts) {
        if ev.locate == 0 {
            return;
        }
        match ev.kind {
            Kind::Add {
                order_ref,
                side,
                price,
                shares,
                party,
            } if party != NOBODY => {
                self.follow(r, ev, ctx, order_ref, side, price, shares, party);
            }
            Kind::Exec {
                order_ref,
                shares,
                remaining,
                party,
                ..
            } => {
                // Only attributed orders are followed: an anonymous one needs no lookup.
                let followed = if party == NOBODY {
                    None
                } else {
                    self.orders.get_mut(order_ref, ev.ts)
                };
                if let Some(o) = followed {
                    o.shares = remaining;
                    let o = *o;
                    if remaining == 0 {
                        self.unfollow(r, order_ref, &o, ev.ts);
                    }
                }
                if party != NOBODY && shares > 0 {
                    self.on_exec(r, ev, ctx, party);
                }
            }
            Kind::Cancel {
                order_ref,
                remaining,
                party,
                ..
            } if party != NOBODY => {
                let Some(o) = self.orders.get_mut(order_ref, ev.ts) else {
                    return;
                };
                o.shares = remaining;
                let o = *o;
                if remaining == 0 {
                    self.unfollow(r, order_ref, &o, ev.ts);
                    self.on_pull(r, ev, ctx, order_ref, &o, out);
                }
            }
            Kind::Replace {
                old_ref,
                new_ref,
                side,
                old_price,
                old_shares,
                price,
                shares,
                party,
            } if party != NOBODY => {
                if let Some(o) = self.orders.get(old_ref, ev.ts).copied() {
                    self.unfollow(r, old_ref, &o, ev.ts);
                    if better(side, old_price, price) || (shares as u64) * 2 < old_shares as u64 {
                        // Moved back or mostly withdrawn: the layer is pulled.
                        self.on_pull(r, ev, ctx, old_ref, &o, out);
                    } else if o.layer_of != 0 {
                        // Kept its place: still the same layer under its new reference.
                        self.follow(r, ev, ctx, new_ref, side, price, shares, party);
                        if let Some(n) = self.orders.get_mut(new_ref, ev.ts) {
                            n.layer_of = o.layer_of;
                            n.add_ts = o.add_ts;
                            n.mid2 = o.mid2;
                        }
                        return;
                    }
                }
                if party != NOBODY {
                    self.follow(r, ev, ctx, new_ref, side, price, shares, party);
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
        assert!(LayeringRules::default().validate().is_ok());
        let one_level = LayeringRules {
            min_levels_held: 1,
            ..LayeringRules::default()
        };
        assert!(one_level
            .validate()
            .unwrap_err()
            .to_string()
            .contains("spoofing"));
        let too_many = LayeringRules {
            min_levels_held: 6,
            ..LayeringRules::default()
        };
        assert!(too_many.validate().is_err());
        let share = LayeringRules {
            min_level_share: 0.0,
            ..LayeringRules::default()
        };
        assert!(share.validate().is_err());
    }

    #[test]
    fn order_table_follows_expires_and_refuses_when_full() {
        let o = LOrder {
            party: super::super::event::party_of_mpid(*b"GSCO"),
            ..NO_ORDER
        };
        let mut t = OrderTable::new(4);
        for k in 1..=4u64 {
            assert!(t
                .set(
                    k,
                    10,
                    LOrder {
                        shares: k as u32,
                        ..o
                    }
                )
                .is_ok());
        }
        assert!(t.set(5, 10, o).is_err(), "full");
        assert_eq!(t.get(3, 20).map(|o| o.shares), Some(3));
        assert_eq!(t.remove(3).map(|o| o.shares), Some(3));
        assert!(t.get(3, 20).is_none());
        assert!(t.remove(3).is_none());
        assert!(t.set(5, 20, o).is_ok(), "room again");
        assert!(t.get(77, 20).is_none());
        // Not written for the TTL: gone, and its room reclaimed by a full table.
        assert!(t.get_mut(1, STATE_TTL_NS).is_some());
        assert!(t.get(2, 10 + STATE_TTL_NS).is_none());
        assert_eq!(t.len(), 3);
        assert!(t.set(6, 10 + STATE_TTL_NS, o).is_ok());
        assert!(t.set(7, 10 + STATE_TTL_NS, o).is_ok(), "expired 4 swept");
        assert!(t.get(1, 10 + STATE_TTL_NS).is_some());
    }

    #[test]
    fn bps_is_signed_by_direction() {
        assert_eq!(bps(10_000, 10_010, 1.0), 10.0);
        assert_eq!(bps(10_000, 10_010, -1.0), -10.0);
        assert_eq!(bps(0, 10_010, 1.0), 0.0);
        assert!(bps(10_000, 10_000, -1.0).is_sign_positive());
    }
}
