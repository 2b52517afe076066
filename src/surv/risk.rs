//! Risk exposure per participant, with limits and a kill switch.
//!
//! Pre- and post-trade risk controls in the sense of SEC Rule 15c3-5 (the Market Access Rule:
//! "credit or capital thresholds … erroneous orders") and MiFID II RTS 6 Art. 17 (kill
//! functionality, post-trade controls on positions and P&L). For every participant — an MPID
//! from attributed executions, or an account from the participant flow — the book keeps:
//!
//! - per stock: the net position (shares) and its cost (average-cost method), marked to the
//!   stock's mid ([`RiskInput::Mark`]; before a mark, to the last fill price);
//! - in total: gross notional (Σ |net| × mid), net notional (Σ net × mid), realised P&L (closed
//!   against the average cost) and unrealised P&L (net × mid − cost), leverage = gross notional /
//!   the configured equity;
//! - order and cancel rates per second over a sliding window (`rate_window_ns`, 8 sub-buckets).
//!
//! Limits (`[risk]` in the rules file): max gross notional, max net notional per stock, max
//! leverage, max loss, max order rate, max cancel rate; and two hard ones, `kill_leverage` and
//! `kill_loss`. A breach raises a [`DetectorId::Risk`] alert naming the participant, with the
//! metric and the limit as evidence, once per crossing (it re-arms when the metric falls back
//! to the limit, and not within `cooldown_ns`). A hard breach raises a Critical alert with
//! `kill_switch` set: the participant is stopped for that limit and never alerted on it again
//! (later crossings are counted in [`RiskCounters::suppressed`]).
//!
//! Risk is per participant across every stock, so it does not run in the shard workers: they
//! send [`RiskInput`]s (fills, marks, order and cancel counts) that the output stage applies in
//! feed order to one [`RiskBook`] (in a single-threaded run, the caller applies them inline).
//! All state is sized at construction (parties: `Capacity::parties`; positions:
//! `Capacity::pairs`; marks and symbols per locate: `Capacity::locates`; holder lists per
//! locate); [`RiskBook::apply`] never allocates. Party and position states live in dense arrays
//! behind their hash indexes, and a position carries its party's index, so an input finds its
//! party once (a recent-party cache usually skips the hash) and a mark finds none. Money is kept in exact integers (half-units of Price(4): price × 2, the
//! unit of a mid `bid + ask`), so results do not depend on the order of float additions.
use super::event::{Party, NOBODY};
use super::range::{self, Key, COUNT, DAY_NS, MULTIPLE};
use super::RuleError;
use super::{Alert, Alerts, Capacity, DetectorId, Severity};
use crate::agg::Touch;
use crate::itch::Side;
use crate::state::KeyedState;

/// Money units per dollar: Price(4) × 2 (a mid is `bid + ask`).
const UNITS_PER_USD: f64 = 20_000.0;
/// Sub-buckets of the rate window.
const RATE_BUCKETS: usize = 8;
/// The largest amount of money a risk key may name, dollars.
const MAX_USD: f64 = super::range::USD;
/// Open positions marked to mid at once per locate (a flat position leaves the list; holders
/// beyond are counted, and marked at their last fill price).
const HOLDERS: usize = 32;

/// Thresholds of `[risk]` in the rules file.
///
/// The defaults are set against the generator's participants, measured on a 2 M-message day
/// (200 stocks, 30 min session, seeds 7 and 8) and a 10 M-message day (2,000 stocks, full
/// session, seed 7). The generator's books never mean-revert, so gross notional grows with
/// the day: the ten MPIDs end at $18–22 M (2 M day) and $119–128 M (10 M day), the firm's
/// eight accounts at $12–14 M and $80–84 M. The largest net position in one stock stays at
/// $0.4–1.45 M; P&L marked to mid within ±$4 k (they trade at the touch, prices drift
/// slowly); at most 37 orders or cancels of one participant in any second. So: the one-stock
/// concentration limit catches the few biggest single-name positions (a handful of alerts a
/// day), the gross limit the biggest books late in a long day; leverage, loss and rates stay
/// silent on ordinary flow and fire on a participant levering up, losing real money or
/// bursting orders (quote stuffing) — and only those throw the kill switch.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskRules {
    /// Run this detector.
    pub enabled: bool,
    /// Equity per participant, dollars: the denominator of leverage (default $50 M).
    pub equity_usd: f64,
    /// Max gross notional (Σ |position| × mid over every stock), dollars (default $100 M:
    /// 2 × equity, reached by the generator's biggest books late in a long day; 0: off).
    pub max_gross_notional_usd: f64,
    /// Max net notional in one stock (|position| × mid), dollars (default $1 M: 2 % of equity
    /// in one name, a concentration limit the biggest single-name positions reach; 0: off).
    pub max_net_notional_per_stock_usd: f64,
    /// Max leverage, gross notional / equity (default 3; 0: off).
    pub max_leverage: f64,
    /// Leverage that stops the participant (kill switch; default 5: $250 M gross, twice the
    /// largest ordinary book measured; 0: off).
    pub kill_leverage: f64,
    /// Max loss (realised + unrealised, marked to mid), dollars (default $100 k: 0.2 % of
    /// equity, 25 × the worst ordinary day measured; 0: off).
    pub max_loss_usd: f64,
    /// Loss that stops the participant (kill switch; default $500 k: 1 % of equity; 0: off).
    pub kill_loss_usd: f64,
    /// Max new orders per second over `rate_window_ns` (default 100/s: over twice the busiest
    /// participant's busiest second, far below a quote-stuffing burst; 0: off).
    pub max_order_rate: f64,
    /// Max cancels per second over `rate_window_ns` (default 100/s; 0: off).
    pub max_cancel_rate: f64,
    /// The rate window, ns (default 1 s; in 8 sub-buckets).
    pub rate_window_ns: u64,
    /// Least time between two alerts of one participant and limit, ns (default 60 s): a limit
    /// that is crossed, left and crossed again within it is counted, not raised again.
    pub cooldown_ns: u64,
    /// A limit re-arms once its metric is back at or below this fraction of it (default 0.9:
    /// a book hovering around a limit is one alert, not one per wiggle).
    pub rearm_ratio: f64,
}

impl Default for RiskRules {
    fn default() -> Self {
        RiskRules {
            enabled: true,
            equity_usd: 50_000_000.0,
            max_gross_notional_usd: 100_000_000.0,
            max_net_notional_per_stock_usd: 1_000_000.0,
            max_leverage: 3.0,
            kill_leverage: 5.0,
            max_loss_usd: 100_000.0,
            kill_loss_usd: 500_000.0,
            max_order_rate: 100.0,
            max_cancel_rate: 100.0,
            rate_window_ns: 1_000_000_000,
            cooldown_ns: 60_000_000_000,
            rearm_ratio: 0.9,
        }
    }
}

impl RiskRules {
    /// Its table in the rules file.
    pub const TABLE: &'static str = "risk";
    /// Every key with its allowed range (0: off, for the limits).
    pub const KEYS: &'static [Key] = &[
        Key::flag("enabled"),
        Key::above("equity_usd", 0.0, MAX_USD).why("it divides gross notional"),
        Key::real("max_gross_notional_usd", 0.0, MAX_USD),
        Key::real("max_net_notional_per_stock_usd", 0.0, MAX_USD),
        Key::real("max_leverage", 0.0, MULTIPLE),
        Key::real("kill_leverage", 0.0, MULTIPLE).why("and 0 or at least max_leverage"),
        Key::real("max_loss_usd", 0.0, MAX_USD),
        Key::real("kill_loss_usd", 0.0, MAX_USD).why("and 0 or at least max_loss_usd"),
        Key::real("max_order_rate", 0.0, COUNT as f64),
        Key::real("max_cancel_rate", 0.0, COUNT as f64),
        Key::int("rate_window_ns", RATE_BUCKETS as u64, DAY_NS).why("one ns a sub-bucket at least"),
        Key::int("cooldown_ns", 0, DAY_NS),
        Key::above("rearm_ratio", 0.0, 1.0),
    ];

    /// Checks every limit is in its range, and a kill switch is not below its alert.
    pub fn validate(&self) -> Result<(), RuleError> {
        range::check(Self::TABLE, self, Self::KEYS)?;
        if self.kill_leverage > 0.0 && self.kill_leverage < self.max_leverage {
            return Err(RuleError::new(
                "kill_leverage",
                format!(
                    "({}) must be at least max_leverage ({}) or 0",
                    self.kill_leverage, self.max_leverage
                ),
            ));
        }
        if self.kill_loss_usd > 0.0 && self.kill_loss_usd < self.max_loss_usd {
            return Err(RuleError::new(
                "kill_loss_usd",
                format!(
                    "({}) must be at least max_loss_usd ({}) or 0",
                    self.kill_loss_usd, self.max_loss_usd
                ),
            ));
        }
        Ok(())
    }
}

/// What the workers tell the risk book.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RiskInput {
    /// `party` bought (`side` Buy) or sold `shares` of `locate` at `price` (Price(4)).
    Fill {
        /// Who.
        party: Party,
        /// Which stock.
        locate: u16,
        /// Symbol.
        stock: [u8; 8],
        /// The party's side.
        side: Side,
        /// Price(4).
        price: u32,
        /// Shares.
        shares: u32,
        /// The stock's touch when it filled (what its alerts show).
        touch: Touch,
    },
    /// The mid of `locate` (bid + ask, Price(4) ×2) changed, for a stock some party holds.
    Mark {
        /// Which stock.
        locate: u16,
        /// Bid + ask.
        mid2: u64,
        /// The touch it was taken from (what its alerts show).
        touch: Touch,
    },
    /// `party` sent a new order (`cancel` false) or cancelled one (true) on `locate`.
    Order {
        /// Who.
        party: Party,
        /// Which stock.
        locate: u16,
        /// A cancel rather than a new order.
        cancel: bool,
    },
}

/// The per-party limits, in the order of their alert state (the per-stock net limit's state
/// lives in each position).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[repr(u8)]
enum Limit {
    Gross = 0,
    Leverage = 1,
    Loss = 2,
    OrderRate = 3,
    CancelRate = 4,
}
const LIMITS: usize = 5;

/// Alert state of one (party, limit): below, alerted, killed.
const BELOW: u8 = 0;
const ALERTED: u8 = 1;
const KILLED: u8 = 2;

/// The alert state of one (participant, limit) or (participant, stock) net limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct LimitState {
    /// BELOW, ALERTED or KILLED.
    level: u8,
    /// Over the limit at the last check (to count crossings while stopped).
    over: bool,
    /// The last alert's time (0: none).
    last: u64,
}

const NO_LIMIT: LimitState = LimitState {
    level: BELOW,
    over: false,
    last: 0,
};

impl LimitState {
    /// One check: `over` the soft (or hard) limit, `kill` over the hard one, `rearm` at or
    /// below the re-arm level. `Some(kill)` to raise; what is not raised is counted in
    /// `suppressed`.
    fn step(
        &mut self,
        r: &RiskRules,
        ts: u64,
        over: bool,
        kill: bool,
        rearm: bool,
        suppressed: &mut u64,
    ) -> Option<bool> {
        let crossed = over && !self.over;
        self.over = over;
        if self.level == KILLED {
            // Stopped: never alerted on this limit again; a new crossing is counted.
            if crossed {
                *suppressed += 1;
            }
            return None;
        }
        if !over {
            // Re-armed only once clearly back under (no alert storm around the limit).
            if rearm {
                self.level = BELOW;
            }
            return None;
        }
        let want = if kill { KILLED } else { ALERTED };
        if want <= self.level {
            return None;
        }
        if !kill && self.last != 0 && ts.saturating_sub(self.last) < r.cooldown_ns {
            // Re-crossed within the cooldown: counted, not raised.
            self.level = ALERTED;
            *suppressed += 1;
            return None;
        }
        self.level = want;
        self.last = ts.max(1);
        Some(kill)
    }
}

/// One participant's totals.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct PartyState {
    party: Party,
    /// Σ |net| × mark, money units.
    gross: i128,
    /// Σ net × mark.
    net: i128,
    /// Σ (net × mark − cost).
    unrealised: i128,
    /// Closed P&L.
    realised: i128,
    /// Sub-bucket of the last rate update.
    bucket: u64,
    orders: [u32; RATE_BUCKETS],
    cancels: [u32; RATE_BUCKETS],
    /// Alert state per limit ([`Limit`] order; the per-stock one lives in each position).
    limits: [LimitState; LIMITS],
    /// Peaks of the day: gross, one stock's net notional, loss (money units), order and
    /// cancel rates (per window).
    peak_gross: i128,
    peak_net_stock: i128,
    peak_loss: i128,
    peak_orders: u64,
    peak_cancels: u64,
}

const NO_PARTY: PartyState = PartyState {
    party: NOBODY,
    gross: 0,
    net: 0,
    unrealised: 0,
    realised: 0,
    bucket: 0,
    orders: [0; RATE_BUCKETS],
    cancels: [0; RATE_BUCKETS],
    limits: [NO_LIMIT; LIMITS],
    peak_gross: 0,
    peak_net_stock: 0,
    peak_loss: 0,
    peak_orders: 0,
    peak_cancels: 0,
};

/// One participant's position in one stock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Position {
    party: Party,
    /// The party's index in the book's party states.
    owner: u32,
    locate: u16,
    /// Net shares (long > 0).
    net: i64,
    /// Signed cost of the open position, money units (same sign as `net`).
    cost: i128,
    /// The mark its contribution to the party's totals was computed at, money units per share.
    mark: u64,
    /// In the locate's holder list.
    listed: bool,
    /// The per-stock net notional limit's state.
    limit: LimitState,
}

const NO_POSITION: Position = Position {
    party: NOBODY,
    owner: 0,
    locate: 0,
    net: 0,
    cost: 0,
    mark: 0,
    listed: false,
    limit: NO_LIMIT,
};

/// The positions marked on each stock's mid (indices into the book's positions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Holders {
    n: u8,
    keys: [u32; HOLDERS],
}

const NO_HOLDERS: Holders = Holders {
    n: 0,
    keys: [0; HOLDERS],
};

/// Entries of the recent-participants cache (a power of two).
const RECENT: usize = 256;

/// Not an index (a new entry of an index table).
const NONE: u32 = u32::MAX;

/// What the risk book counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RiskCounters {
    /// Inputs applied.
    pub inputs: u64,
    /// Alerts raised.
    pub alerts: u64,
    /// Kill switches thrown.
    pub kills: u64,
    /// Breaches not raised: the participant was stopped on that limit, or in its cooldown.
    pub suppressed: u64,
    /// Inputs dropped because the party or position table was full (or a key collided).
    pub overflow: u64,
    /// Positions not marked to mid because their stock had too many holders.
    pub holder_overflow: u64,
}

/// Positions, exposure and P&L per participant.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct RiskBook {
    /// Participant (FNV key) → index in `states`; the stored party is checked on every find.
    parties: KeyedState<u32>,
    /// Participants' states in first-seen order (preallocated to `Capacity::parties`).
    #[serde(with = "crate::ckpt::cap")]
    states: Vec<PartyState>,
    /// Direct-mapped cache of recent participants' indices (a hit skips the FNV hash and the
    /// probe; only found participants are cached).
    recent: Box<[(Party, u32)]>,
    /// Position (party, locate) key → index in `pos`.
    positions: KeyedState<u32>,
    /// Positions in opening order (preallocated to `Capacity::pairs`).
    #[serde(with = "crate::ckpt::cap")]
    pos: Vec<Position>,
    /// Holder list per locate (dense; `n == 0`: no list yet).
    #[serde(with = "crate::ckpt::cap")]
    holders: Vec<Holders>,
    /// Locates with a holder list, and how many may have one.
    holder_lists: usize,
    holder_cap: usize,
    /// Last mark per locate (money units per share; 0: none yet).
    #[serde(with = "crate::ckpt::cap")]
    marks: Vec<u64>,
    /// Each stock's touch at its last mark or fill, for its alerts.
    #[serde(with = "crate::ckpt::cap")]
    touches: Vec<Touch>,
    /// Symbol per locate (from fills).
    #[serde(with = "crate::ckpt::cap")]
    symbols: Vec<[u8; 8]>,
    /// Counters.
    pub counters: RiskCounters,
}

/// FNV-1a of a party.
fn party_key(p: &Party) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &c in p {
        h ^= c as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The recent-participants cache slot of a party (one multiply, not FNV's twelve).
#[inline]
fn recent_slot(p: &Party) -> usize {
    let mut lo = [0u8; 8];
    lo.copy_from_slice(&p[..8]);
    let mut hi = [0u8; 4];
    hi.copy_from_slice(&p[8..]);
    let k = u64::from_le_bytes(lo) ^ (u32::from_le_bytes(hi) as u64).rotate_left(29);
    (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - RECENT.trailing_zeros())) as usize
}

/// The inverse of the index's Fibonacci multiplier (`0x9E37_79B9_7F4A_7C15`) modulo 2^64.
const FIB_INV: u64 = 0xF1DE_83E1_9937_733D;

/// The key of the position of the party at index `pi` in `locate`, chosen so its home bucket
/// in the `positions` index (the top bits of `key × FIB`) lies next to the stock's other
/// holders' (bucket `locate × 32 + pi`, wrapping): the positions in use share a few cache
/// lines of the index rather than one random line of a 2 MiB table each. Unique per (party,
/// locate): the low bits of `key × FIB` hold the locate and the index's low bits, the home
/// their rest.
#[inline]
fn position_key(positions: &KeyedState<u32>, pi: usize, locate: u16) -> u64 {
    let bits = positions.index().buckets().trailing_zeros();
    let shift = 64 - bits;
    let uniq = locate as u64 | (pi as u64) << 16;
    let mask = (1u64 << bits) - 1;
    let near = (locate as u64) << 5 | (pi as u64 & 31);
    let home = (near ^ (uniq >> shift)) & mask;
    let key = (home << shift | (uniq & ((1u64 << shift) - 1))).wrapping_mul(FIB_INV);
    debug_assert_eq!(positions.index().home(key) as u64, home);
    key
}

fn usd(units: i128) -> f64 {
    units as f64 / UNITS_PER_USD
}

impl RiskBook {
    /// A book sized by `cap`.
    pub fn new(cap: &Capacity) -> Self {
        let locates = cap.locates.clamp(1, 65_536);
        RiskBook {
            parties: KeyedState::new(cap.parties.max(1), NONE),
            states: Vec::with_capacity(cap.parties.max(1)),
            recent: vec![(NOBODY, NONE); RECENT].into_boxed_slice(),
            positions: KeyedState::new(cap.pairs.max(1), NONE),
            pos: Vec::with_capacity(cap.pairs.max(1)),
            holders: vec![NO_HOLDERS; 1 << 16],
            holder_lists: 0,
            holder_cap: locates.min(cap.pairs.max(1)),
            marks: vec![0; locates],
            touches: vec![Touch::default(); locates],
            symbols: vec![[b' '; 8]; locates],
            counters: RiskCounters::default(),
        }
    }

    /// Applies one input (event time `ts`, feed position `seq`), raising limit breaches.
    pub fn apply(&mut self, r: &RiskRules, ts: u64, seq: u32, input: &RiskInput, out: &mut Alerts) {
        self.counters.inputs += 1;
        match *input {
            RiskInput::Fill {
                party,
                locate,
                stock,
                side,
                price,
                shares,
                touch,
            } => {
                self.set_touch(locate, touch);
                self.fill(r, ts, seq, party, locate, stock, side, price, shares, out)
            }
            RiskInput::Mark {
                locate,
                mid2,
                touch,
            } => {
                self.set_touch(locate, touch);
                self.mark(r, ts, seq, locate, mid2, out)
            }
            RiskInput::Order {
                party,
                locate,
                cancel,
            } => self.order(r, ts, seq, party, locate, cancel, out),
        }
    }

    /// The index of the party's state, inserted if new; `None` if the table is full or the key
    /// collides (counted).
    #[inline]
    fn party_idx(&mut self, p: &Party) -> Option<usize> {
        if *p == NOBODY {
            return None;
        }
        let c = recent_slot(p);
        let (q, i) = self.recent[c];
        if q == *p {
            return Some(i as usize);
        }
        let i = match self.parties.entry(party_key(p), 0) {
            Ok(v) if *v == NONE => {
                let i = self.states.len();
                self.states.push(PartyState {
                    party: *p,
                    ..NO_PARTY
                });
                *v = i as u32;
                i
            }
            Ok(v) if self.states[*v as usize].party == *p => *v as usize,
            _ => {
                self.counters.overflow += 1;
                return None;
            }
        };
        self.recent[c] = (*p, i as u32);
        Some(i)
    }

    #[allow(clippy::too_many_arguments)]
    fn fill(
        &mut self,
        r: &RiskRules,
        ts: u64,
        seq: u32,
        party: Party,
        locate: u16,
        stock: [u8; 8],
        side: Side,
        price: u32,
        shares: u32,
        out: &mut Alerts,
    ) {
        if shares == 0 || price == 0 || party == NOBODY {
            return;
        }
        let li = locate as usize;
        if li < self.symbols.len() {
            self.symbols[li] = stock;
            if self.marks[li] == 0 {
                self.marks[li] = price as u64 * 2;
            }
        }
        let mark = self.marks.get(li).copied().unwrap_or(price as u64 * 2);
        let Some(pi) = self.party_idx(&party) else {
            return;
        };
        let key = position_key(&self.positions, pi, locate);
        let qi = match self.positions.entry(key, ts) {
            Ok(v) if *v == NONE => {
                let qi = self.pos.len();
                self.pos.push(Position {
                    party,
                    owner: pi as u32,
                    locate,
                    mark,
                    ..NO_POSITION
                });
                *v = qi as u32;
                qi
            }
            Ok(v)
                if {
                    let p = &self.pos[*v as usize];
                    p.party == party && p.locate == locate
                } =>
            {
                *v as usize
            }
            _ => {
                self.counters.overflow += 1;
                return;
            }
        };
        let pos = &mut self.pos[qi];
        let old = contribution(pos);
        // Average cost: a fill in the position's direction adds at its price; against it,
        // closes at the average cost (realising the difference), and any rest opens the
        // other way.
        let p2 = price as i128 * 2;
        let d = match side {
            Side::Buy => shares as i64,
            Side::Sell => -(shares as i64),
        };
        let mut realised = 0i128;
        if pos.net == 0 || (pos.net > 0) == (d > 0) {
            pos.net += d;
            pos.cost += d as i128 * p2;
        } else {
            let c = d.unsigned_abs().min(pos.net.unsigned_abs()) as i128;
            let removed = pos.cost * c / pos.net.unsigned_abs() as i128;
            let sign = if pos.net > 0 { 1 } else { -1 };
            realised = sign * c * p2 - removed;
            pos.cost -= removed;
            pos.net += d;
            let rest = d.unsigned_abs() as i128 - c;
            if rest > 0 {
                pos.cost = d.signum() as i128 * rest * p2;
            } else if pos.net == 0 {
                pos.cost = 0;
            }
        }
        pos.mark = mark;
        let new = contribution(pos);
        let listed = pos.listed;
        let net_notional = pos.net.unsigned_abs() as i128 * mark as i128;
        if !listed && pos.net != 0 {
            if self.list_holder(locate, qi) {
                self.pos[qi].listed = true;
            } else {
                self.counters.holder_overflow += 1;
            }
        } else if listed && pos.net == 0 {
            // Flat: nothing to mark until it trades again; its place goes to another holder.
            self.unlist_holder(locate, qi);
            self.pos[qi].listed = false;
        }
        let ps = &mut self.states[pi];
        ps.realised += realised;
        apply_delta(ps, old, new);
        self.check_stock(r, ts, seq, pi, locate, qi, net_notional, out);
        self.check_totals(r, ts, seq, pi, out);
    }

    /// Adds a position to its locate's holder list (false if the list is full, or no more
    /// locates may have one).
    fn list_holder(&mut self, locate: u16, qi: usize) -> bool {
        let h = &mut self.holders[locate as usize];
        if h.n == 0 {
            if self.holder_lists >= self.holder_cap {
                return false;
            }
            self.holder_lists += 1;
        }
        if (h.n as usize) < HOLDERS {
            h.keys[h.n as usize] = qi as u32;
            h.n += 1;
            true
        } else {
            false
        }
    }

    /// Removes a position from its locate's holder list.
    fn unlist_holder(&mut self, locate: u16, qi: usize) {
        let h = &mut self.holders[locate as usize];
        let n = h.n as usize;
        if let Some(i) = h.keys[..n].iter().position(|&k| k == qi as u32) {
            h.keys[i] = h.keys[n - 1];
            h.n -= 1;
            if h.n == 0 {
                self.holder_lists -= 1;
            }
        }
    }

    fn set_touch(&mut self, locate: u16, touch: Touch) {
        if let Some(t) = self.touches.get_mut(locate as usize) {
            *t = touch;
        }
    }

    fn mark(&mut self, r: &RiskRules, ts: u64, seq: u32, locate: u16, mid2: u64, out: &mut Alerts) {
        let li = locate as usize;
        if mid2 == 0 || li >= self.marks.len() || self.marks[li] == mid2 {
            return;
        }
        self.marks[li] = mid2;
        let h = self.holders[li];
        for &qi in &h.keys[..h.n as usize] {
            let qi = qi as usize;
            let pos = &mut self.pos[qi];
            let old = contribution(pos);
            pos.mark = mid2;
            let new = contribution(pos);
            let pi = pos.owner as usize;
            let net_notional = pos.net.unsigned_abs() as i128 * mid2 as i128;
            if old == new {
                continue;
            }
            apply_delta(&mut self.states[pi], old, new);
            self.check_stock(r, ts, seq, pi, locate, qi, net_notional, out);
            self.check_totals(r, ts, seq, pi, out);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn order(
        &mut self,
        r: &RiskRules,
        ts: u64,
        seq: u32,
        party: Party,
        locate: u16,
        cancel: bool,
        out: &mut Alerts,
    ) {
        let _ = locate;
        let bucket_ns = (r.rate_window_ns / RATE_BUCKETS as u64).max(1);
        let Some(pi) = self.party_idx(&party) else {
            return;
        };
        let ps = &mut self.states[pi];
        let b = ts / bucket_ns;
        if b > ps.bucket {
            if b - ps.bucket >= RATE_BUCKETS as u64 {
                ps.orders = [0; RATE_BUCKETS];
                ps.cancels = [0; RATE_BUCKETS];
            } else {
                for i in ps.bucket + 1..=b {
                    ps.orders[i as usize % RATE_BUCKETS] = 0;
                    ps.cancels[i as usize % RATE_BUCKETS] = 0;
                }
            }
            ps.bucket = b;
        } else if ps.bucket - b >= RATE_BUCKETS as u64 {
            // The window was shortened by a rules reload: start over on the new buckets.
            ps.orders = [0; RATE_BUCKETS];
            ps.cancels = [0; RATE_BUCKETS];
            ps.bucket = b;
        }
        // A late input (b < bucket) counts in the current bucket.
        let i = ps.bucket as usize % RATE_BUCKETS;
        let window_s = (bucket_ns * RATE_BUCKETS as u64) as f64 / 1e9;
        let (lim, limit, count, name) = if cancel {
            ps.cancels[i] = ps.cancels[i].saturating_add(1);
            (
                Limit::CancelRate,
                r.max_cancel_rate,
                ps.cancels.iter().map(|&c| c as u64).sum::<u64>(),
                "cancel_rate_per_s",
            )
        } else {
            ps.orders[i] = ps.orders[i].saturating_add(1);
            (
                Limit::OrderRate,
                r.max_order_rate,
                ps.orders.iter().map(|&c| c as u64).sum::<u64>(),
                "order_rate_per_s",
            )
        };
        if cancel {
            ps.peak_cancels = ps.peak_cancels.max(count);
        } else {
            ps.peak_orders = ps.peak_orders.max(count);
        }
        let rate = count as f64 / window_s;
        if limit <= 0.0 {
            return;
        }
        let hit = self.breach(
            r,
            ts,
            pi,
            lim,
            rate > limit,
            false,
            rate <= limit * r.rearm_ratio,
        );
        if let Some(kill) = hit {
            let a = Alert::new(DetectorId::Risk, ts, seq, 0, [b' '; 8])
                .party(party)
                .severity(Severity::by_ratio(rate / limit, 2.0))
                .evidence(name, rate, ">", limit)
                .context("rate_window_ns", (bucket_ns * RATE_BUCKETS as u64) as f64);
            self.raise(a, kill, out);
        }
    }

    /// Whether a (party, limit) at `over` (above the soft limit) / `kill` (above the hard one)
    /// raises now: `Some(kill)` to raise ([`LimitState::step`]).
    #[allow(clippy::too_many_arguments)]
    fn breach(
        &mut self,
        r: &RiskRules,
        ts: u64,
        pi: usize,
        lim: Limit,
        over: bool,
        kill: bool,
        rearm: bool,
    ) -> Option<bool> {
        self.states[pi].limits[lim as usize].step(
            r,
            ts,
            over,
            kill,
            rearm,
            &mut self.counters.suppressed,
        )
    }

    fn raise(&mut self, a: Alert, kill: bool, out: &mut Alerts) {
        let a = if kill {
            self.counters.kills += 1;
            let mut a = a.severity(Severity::Critical);
            a.kill_switch = true;
            a
        } else {
            a
        };
        self.counters.alerts += 1;
        out.push(a);
    }

    #[allow(clippy::too_many_arguments)]
    fn check_stock(
        &mut self,
        r: &RiskRules,
        ts: u64,
        seq: u32,
        pi: usize,
        locate: u16,
        qi: usize,
        net_notional: i128,
        out: &mut Alerts,
    ) {
        let ps = &mut self.states[pi];
        ps.peak_net_stock = ps.peak_net_stock.max(net_notional);
        let party = &ps.party;
        let limit = r.max_net_notional_per_stock_usd;
        if limit <= 0.0 {
            return;
        }
        let v = usd(net_notional);
        let hit = self.pos[qi].limit.step(
            r,
            ts,
            v > limit,
            false,
            v <= limit * r.rearm_ratio,
            &mut self.counters.suppressed,
        );
        if let Some(kill) = hit {
            let li = locate as usize;
            let stock = self.symbols.get(li).copied().unwrap_or([b' '; 8]);
            let a = Alert::new(DetectorId::Risk, ts, seq, locate, stock)
                .party(*party)
                .severity(Severity::by_ratio(v / limit, 2.0))
                .touch(self.touches.get(li).copied().unwrap_or_default())
                .evidence("net_notional_stock_usd", v, ">", limit)
                .context(
                    "mark_usd",
                    self.marks.get(li).copied().unwrap_or(0) as f64 / UNITS_PER_USD,
                );
            self.raise(a, kill, out);
        }
    }

    fn check_totals(&mut self, r: &RiskRules, ts: u64, seq: u32, pi: usize, out: &mut Alerts) {
        let s = &mut self.states[pi];
        s.peak_gross = s.peak_gross.max(s.gross);
        s.peak_loss = s.peak_loss.max(-(s.realised + s.unrealised));
        let ps = &*s;
        let ps = *ps;
        let ps = &ps;
        let gross = usd(ps.gross);
        let lev = gross / r.equity_usd;
        let pnl = usd(ps.realised + ps.unrealised);
        let loss = (-pnl).max(0.0);
        let base = |ts| {
            Alert::new(DetectorId::Risk, ts, seq, 0, [b' '; 8])
                .party(ps.party)
                .context("pnl_usd", pnl)
                .context("net_notional_usd", usd(ps.net))
                .context("realised_pnl_usd", usd(ps.realised))
                .context("unrealised_pnl_usd", usd(ps.unrealised))
        };
        // The kill switches first: a hard breach is raised even if the soft one was.
        let checks = [
            (
                Limit::Loss,
                loss,
                r.max_loss_usd,
                r.kill_loss_usd,
                "loss_usd",
            ),
            (
                Limit::Leverage,
                lev,
                r.max_leverage,
                r.kill_leverage,
                "leverage_ratio",
            ),
            (
                Limit::Gross,
                gross,
                r.max_gross_notional_usd,
                0.0,
                "gross_notional_usd",
            ),
        ];
        for (lim, v, soft, hard, name) in checks {
            let over_soft = soft > 0.0 && v > soft;
            let over_hard = hard > 0.0 && v > hard;
            if soft <= 0.0 && hard <= 0.0 {
                continue;
            }
            let rearm = v <= if soft > 0.0 { soft } else { hard } * r.rearm_ratio;
            if let Some(kill) =
                self.breach(r, ts, pi, lim, over_soft || over_hard, over_hard, rearm)
            {
                let (threshold, ratio) = if kill {
                    (hard, v / hard)
                } else {
                    (soft, v / soft)
                };
                let mut a = base(ts)
                    .severity(Severity::by_ratio(ratio, 2.0))
                    .evidence(name, v, ">", threshold);
                if lim != Limit::Gross {
                    a = a.context("gross_notional_usd", gross);
                }
                if lim == Limit::Leverage {
                    a = a.context("equity_usd", r.equity_usd);
                }
                self.raise(a, kill, out);
            }
        }
    }

    /// A participant's totals: (gross notional, net notional, realised P&L, unrealised P&L) in
    /// dollars, if it is known.
    pub fn exposure(&mut self, party: &Party) -> Option<(f64, f64, f64, f64)> {
        let s = self.state(party)?;
        Some((usd(s.gross), usd(s.net), usd(s.realised), usd(s.unrealised)))
    }

    /// A participant's net position in `locate`, shares.
    pub fn position(&mut self, party: &Party, locate: u16) -> Option<i64> {
        let &pi = self.parties.get(party_key(party), 0)?;
        let key = position_key(&self.positions, pi as usize, locate);
        let &i = self.positions.get(key, 0)?;
        let p = self.pos.get(i as usize)?;
        (p.party == *party && p.locate == locate).then_some(p.net)
    }

    /// Every participant's day so far, in table order (O(parties): for end-of-day reports, not
    /// the hot path).
    pub fn summary(&self) -> impl Iterator<Item = PartySummary> + '_ {
        self.states.iter().map(|s| PartySummary {
            party: s.party,
            gross_notional_usd: usd(s.gross),
            net_notional_usd: usd(s.net),
            realised_pnl_usd: usd(s.realised),
            unrealised_pnl_usd: usd(s.unrealised),
            peak_gross_notional_usd: usd(s.peak_gross),
            peak_net_notional_stock_usd: usd(s.peak_net_stock),
            peak_loss_usd: usd(s.peak_loss),
            peak_orders_per_window: s.peak_orders,
            peak_cancels_per_window: s.peak_cancels,
            killed: s.limits.iter().any(|l| l.level == KILLED),
        })
    }

    /// Whether `party` has been stopped (any kill switch thrown).
    pub fn killed(&mut self, party: &Party) -> bool {
        self.state(party)
            .is_some_and(|s| s.limits.iter().any(|l| l.level == KILLED))
    }

    /// A known participant's state.
    fn state(&mut self, party: &Party) -> Option<&PartyState> {
        let &i = self.parties.get(party_key(party), 0)?;
        self.states.get(i as usize).filter(|s| s.party == *party)
    }
}

/// One participant's exposure now and its peaks of the day ([`RiskBook::summary`]).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PartySummary {
    /// The participant.
    pub party: Party,
    /// Gross notional now, dollars.
    pub gross_notional_usd: f64,
    /// Net notional now, dollars.
    pub net_notional_usd: f64,
    /// Realised P&L, dollars.
    pub realised_pnl_usd: f64,
    /// Unrealised P&L (marked to mid), dollars.
    pub unrealised_pnl_usd: f64,
    /// Highest gross notional, dollars.
    pub peak_gross_notional_usd: f64,
    /// Highest net notional in one stock, dollars.
    pub peak_net_notional_stock_usd: f64,
    /// Deepest loss (realised + unrealised), dollars (0 if never negative).
    pub peak_loss_usd: f64,
    /// Most new orders in one rate window.
    pub peak_orders_per_window: u64,
    /// Most cancels in one rate window.
    pub peak_cancels_per_window: u64,
    /// Stopped by a kill switch.
    pub killed: bool,
}

/// A position's (|net| × mark, net × mark, net × mark − cost).
fn contribution(p: &Position) -> (i128, i128, i128) {
    let v = p.net as i128 * p.mark as i128;
    (v.abs(), v, v - p.cost)
}

fn apply_delta(ps: &mut PartyState, old: (i128, i128, i128), new: (i128, i128, i128)) {
    ps.gross += new.0 - old.0;
    ps.net += new.1 - old.1;
    ps.unrealised += new.2 - old.2;
}
