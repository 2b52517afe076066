//! Momentum ignition: a burst of aggressive trades that moves the price sharply, a participant
//! selling into (or buying into) the move with orders it rested beforehand, then a reversal.
//!
//! The Market Abuse Regulation lists it among the indicators of manipulation (MAR Annex I
//! A(e): "orders to trade given or transactions undertaken ... concentrated within a short
//! time span in the trading session and lead to a price change which is subsequently
//! reversed"); Delegated Regulation (EU) 2016/522, Annex II, names the practice "momentum
//! ignition": trading meant to start or exacerbate a trend, drawing others in, so that the
//! participant can unwind at the better price the trend produced. In ITCH the aggressor is
//! anonymous: the participant shows through its attributed resting orders ('F' adds, or orders
//! linked to an account by the participant flow), executed on the side the move runs into.
//!
//! How: per stock, the tape of displayed executions (whose resting side tells the aggressor's
//! direction; hidden prints 'P' and crosses do not) is folded into [`BUCKETS`] time buckets
//! spanning `max_burst_ns` (low and high price with their times, trades by aggressor direction,
//! shares); each bucket's move also feeds the stock's own volatility baseline. When an
//! attributed resting order executes — a sell executed by a buyer while the price rose, or a
//! buy while it fell — windows of several lengths (1/16 .. 1 of `max_burst_ns`) give each its
//! extreme before it: if the execution price's move from there, scaled by the run's window
//! score (1 up to `burst_ns`, then √(burst_ns / length)), is at least `min_move_bps`, at least
//! `min_move_sigma` times the stock's volatility over that length (once it has a baseline) and
//! `min_move_ticks` of the stock's own ticks (sub-penny below $1.00), with at least
//! `min_trades` trades in the run and `min_direction_ratio` of them aggressive in the move's
//! direction, an *episode* opens (from the best scoring window). It follows the peak and gathers every attributed execution on
//! that side (per participant, a few slots). When a trade retraces at least
//! `min_revert_fraction` of the move (extreme → peak) within `revert_ns` of the peak, after at
//! least `min_revert_trades` trades against the move, the alert fires once, naming the
//! participant with at least `min_party_shares` worth `min_party_value_usd` of the move — or
//! with `min_party_volume_share` of the shares traded in the move — executed nearest the peak (then with the most shares); then the stock is quiet for `cooldown_ns`. A move that does not revert in time, a
//! move too small, or a move with no attributed execution on the other side, raises nothing.

use super::event::{Kind, Party, NOBODY};
use super::range::{self, Key, BPS, COUNT, DAY_NS, MULTIPLE, USD, VOLUME};
use super::scale::{tick_of, ticks_between};
use super::RuleError;
use super::{Alert, Alerts, Capacity, Ctx, Detector, DetectorId, Severity, SurvEvent};
use crate::agg::Touch;
use crate::itch::Side;

/// Thresholds of `[momentum_ignition]` in the rules file.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MomentumIgnitionRules {
    /// Run this detector.
    pub enabled: bool,
    /// T: the burst length up to which the move needs only `min_move_bps`, ns (default 2 s:
    /// ignition sweeps are often a run of aggressive orders within a second or two). A longer
    /// run needs a larger move: its window score √(T / length) scales the move down, as a
    /// random walk's moves grow with the square root of time.
    pub burst_ns: u64,
    /// The longest window searched for a burst, ns (default 10 s: slower ignitions run over
    /// several seconds). Windows of 1/16 .. 1 of this are each searched (0.6 s .. 10 s by
    /// default; a shorter burst lies within the shortest) and the best scoring one is kept.
    pub max_burst_ns: u64,
    /// N: trades at least in the burst, from the window's extreme to the participant's
    /// execution (default 10: a sweep through several price levels; ordinary trading of even
    /// the busiest names prints a few trades a second, in both directions).
    pub min_trades: u32,
    /// Share of the burst's trades whose aggressor traded in the move's direction (default
    /// 0.8: a run of one-sided sweeps, not bid/ask bounce), ratio 0..=1.
    pub min_direction_ratio: f64,
    /// X: the move from the window's extreme to the participant's execution price, bps
    /// (default 5: a sweep of a $500 stock through 25 price levels; the tick floor below keeps
    /// low-priced names, where one cent is many bps, from firing on a bounce).
    pub min_move_bps: f64,
    /// The same move over the stock's own volatility at that window length, at least (default
    /// 3: three times the typical move of the stock over one bucket, grown with the square root of the
    /// run's length; judged once the stock has [`VOL_SAMPLES`] buckets of history). 0: off.
    pub min_move_sigma: f64,
    /// The same move over the stock's typical quoted spread, at least (default 1: a trade at
    /// the bid then one at the ask moves the price by one spread without anyone moving the
    /// market; on thin, wide books — and sub-dollar stocks quoted many sub-penny ticks wide — a
    /// bounce spans many ticks and bps). Judged once the stock has a two-sided quote. 0: off.
    pub min_move_spreads: f64,
    /// The same move in the stock's own ticks (one cent at $1.00 and above, $0.0001 below, as
    /// Reg NMS Rule 612), at least (default 8: eight levels of the book taken within the
    /// burst, far beyond a bid/ask bounce; on our generator a 6-tick run of ordinary sweeps on a
    /// $37 stock met every other test).
    pub min_move_ticks: u32,
    /// T2: the reversion must come within this long after the peak, ns (default 5 s: the
    /// ignitor's exit and the collapse follow the burst closely; slower give-backs are ordinary
    /// mean reversion).
    pub revert_ns: u64,
    /// Retracement of the move (low → peak) a later trade must reach, ratio 0..=1 (default 0.5:
    /// half the move given back).
    pub min_revert_fraction: f64,
    /// Trades whose aggressor traded against the move since the peak, at least (default 5: a
    /// run of selling, not one print at a bid the sweep left behind).
    pub min_revert_trades: u32,
    /// Shares the named participant had executed on the move's side, at least (default 1,000:
    /// ten round lots, a position worth igniting a move for; a resting order or two of a firm
    /// that the sweep happens to take is a few hundred) — and `min_party_value_usd`; or see
    /// `min_party_volume_share`.
    pub min_party_shares: u64,
    /// With `min_party_shares`: what the move was worth to that exit, at least, dollars — its
    /// shares times the move (start → peak), the most the ignition could have earned it
    /// (default $250). Shares alone are no size below $1.00: 1,000 shares of a $0.30 stock
    /// are $300, and an ordinary firm's resting orders that a sweep of a sub-dollar stock
    /// happens to take are tens of thousands of shares worth a few dollars of the move.
    pub min_party_value_usd: f64,
    /// Or: the participant's executed shares over the shares traded in the move (from its
    /// start to the peak), at least, ratio 0..=1 (default 0.2), with at least a round lot: on a
    /// thin stock an exit of a few hundred shares is a large part of the move.
    pub min_party_volume_share: f64,
    /// After an alert, the stock raises no other for this long, ns (default 10 s: the rest of
    /// the reversal — whose sweeps through attributed bids look like a move of their own — raises
    /// nothing; a new ignition a little later does).
    pub cooldown_ns: u64,
}

impl Default for MomentumIgnitionRules {
    fn default() -> Self {
        MomentumIgnitionRules {
            enabled: true,
            burst_ns: 2_000_000_000,
            max_burst_ns: 10_000_000_000,
            min_trades: 10,
            min_direction_ratio: 0.8,
            min_move_bps: 5.0,
            min_move_sigma: 3.0,
            min_move_spreads: 1.0,
            min_move_ticks: 8,
            revert_ns: 5_000_000_000,
            min_revert_fraction: 0.5,
            min_revert_trades: 5,
            min_party_shares: 1_000,
            min_party_value_usd: 250.0,
            min_party_volume_share: 0.2,
            cooldown_ns: 10_000_000_000,
        }
    }
}

impl MomentumIgnitionRules {
    /// Its table in the rules file.
    pub const TABLE: &'static str = "momentum_ignition";
    /// Every key with its allowed range.
    pub const KEYS: &'static [Key] = &[
        Key::flag("enabled"),
        Key::int("burst_ns", 1, 60_000_000_000),
        Key::int("max_burst_ns", BUCKETS as u64, 60_000_000_000)
            .why("one bucket a ns, to 60 s; at least burst_ns"),
        Key::int("min_trades", 1, COUNT),
        Key::real("min_direction_ratio", 0.0, 1.0),
        Key::above("min_move_bps", 0.0, BPS),
        Key::real("min_move_sigma", 0.0, MULTIPLE),
        Key::real("min_move_spreads", 0.0, MULTIPLE),
        Key::int("min_move_ticks", 0, COUNT),
        Key::int("revert_ns", 1, DAY_NS),
        Key::above("min_revert_fraction", 0.0, 1.0),
        Key::int("min_revert_trades", 0, COUNT),
        Key::int("min_party_shares", 0, VOLUME),
        Key::real("min_party_value_usd", 0.0, USD),
        Key::real("min_party_volume_share", 0.0, 1.0),
        Key::int("cooldown_ns", 0, DAY_NS),
    ];

    /// Checks every threshold is in its range, and the longest window holds `burst_ns`.
    pub fn validate(&self) -> Result<(), RuleError> {
        range::check(Self::TABLE, self, Self::KEYS)?;
        if self.max_burst_ns < self.burst_ns {
            return Err(RuleError::new("max_burst_ns", "must be at least burst_ns"));
        }
        Ok(())
    }

    /// A run of `len` ns: its window score, 1 up to `burst_ns`, then √(burst_ns / len).
    pub fn window_score(&self, len: u64) -> f64 {
        if len <= self.burst_ns {
            1.0
        } else {
            (self.burst_ns as f64 / len as f64).sqrt()
        }
    }

    /// Whether a participant's `shares` in a move of `volume` shares and `move_px` (Price(4))
    /// qualify it: large in shares and in money, or a large part of the volume.
    fn party_qualifies(&self, shares: u64, volume: u64, move_px: u32) -> bool {
        self.party_is_large(shares, move_px)
            || (shares >= ROUND_LOT && shares as f64 >= self.min_party_volume_share * volume as f64)
    }

    /// At least `min_party_shares` worth at least `min_party_value_usd` of the move.
    fn party_is_large(&self, shares: u64, move_px: u32) -> bool {
        shares >= self.min_party_shares && party_value(shares, move_px) >= self.min_party_value_usd
    }
}

/// `shares` times a move of `move_px` (Price(4)), in dollars.
fn party_value(shares: u64, move_px: u32) -> f64 {
    shares as f64 * move_px as f64 / 10_000.0
}

/// Time buckets the longest window is folded into (the window is exact to one bucket).
pub const BUCKETS: usize = 32;
/// The windows searched, in buckets (1/16 .. 1 of `max_burst_ns`: 0.6 s .. 10 s by default; a
/// shorter burst lies within the shortest).
const WINDOWS: [usize; 5] = [2, 4, 8, 16, 32];
/// Bucket-to-bucket moves a stock needs before its volatility is judged.
pub const VOL_SAMPLES: u32 = 100;
/// The volatility's EWMA weight of a new bucket-to-bucket move (about the last 200 buckets).
const VOL_ALPHA: f64 = 1.0 / 200.0;
/// The typical spread's EWMA weight of a new quote (about the last 200 executions, so that a
/// burst's own widening moves it little).
const SPREAD_ALPHA: f64 = 1.0 / 200.0;
/// A round lot, shares.
const ROUND_LOT: u64 = 100;
/// Participants an episode follows (when full, the one with the fewest shares gives way;
/// counted in [`MomentumIgnition::party_overflow`]).
const SLOTS: usize = 8;
/// Order references kept per participant.
const REFS: usize = 4;
/// Stocks followed at most per shard (beyond, counted in [`MomentumIgnition::stock_overflow`]).
const MAX_STOCKS: usize = 16_384;
const NO_SLOT: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Bucket {
    /// `ts / width` (+1, so 0 is "never used").
    id: u64,
    lo: u32,
    hi: u32,
    lo_ts: u64,
    hi_ts: u64,
    /// Trades whose aggressor bought (a resting sell executed).
    up: u32,
    /// Trades whose aggressor sold.
    down: u32,
    /// Shares traded.
    vol: u64,
}

#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
struct PartySlot {
    party: Party,
    /// Its execution nearest the peak: the price for a rise, `u32::MAX - price` for a fall
    /// (larger is nearer).
    best: u32,
    shares: u64,
    refs: [u64; REFS],
    n_refs: u8,
}

#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Episode {
    /// +1: the price rose (the participant's sells executed), -1: fell; 0: none open.
    dir: i8,
    /// The extreme the move started from (low for +1), and when.
    start_px: u32,
    start_ts: u64,
    peak_px: u32,
    peak_ts: u64,
    trades: u32,
    /// Trades the other way since the peak.
    against: u32,
    /// Share of the burst's trades in the move's direction.
    direction: f64,
    burst_ns: u64,
    /// Shares traded from the start to the peak.
    volume: u64,
    /// The window score of the burst, and its move scaled by it, bps.
    window_score: f64,
    scaled_bps: f64,
    /// Its move over the stock's volatility at that length (NaN: no baseline yet).
    move_sigma: f64,
    /// Its move over the stock's typical spread (NaN: no two-sided quote yet).
    move_spreads: f64,
    parties: [PartySlot; SLOTS],
    n_parties: u8,
}

#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct Stock {
    buckets: [Bucket; BUCKETS],
    /// The volatility baseline: the last price and its bucket, the price and bucket of the
    /// last sample, the EWMA of absolute moves per √bucket (bps), and the samples taken.
    last_px: u32,
    last_id: u64,
    ref_px: u32,
    ref_id: u64,
    mad: f64,
    samples: u32,
    /// The typical quoted spread before an execution, Price(4) (EWMA; 0: none seen yet).
    spread: f64,
    ep: Episode,
    quiet_until: u64,
}

impl Default for Stock {
    fn default() -> Self {
        Stock {
            buckets: [Bucket::default(); BUCKETS],
            last_px: 0,
            last_id: 0,
            ref_px: 0,
            ref_id: 0,
            mad: 0.0,
            samples: 0,
            spread: 0.0,
            ep: Episode::default(),
            quiet_until: 0,
        }
    }
}

/// The `momentum_ignition` detector's state in one shard.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct MomentumIgnition {
    #[serde(with = "crate::ckpt::cap")]
    slot_of: Vec<u32>,
    #[serde(with = "crate::ckpt::cap")]
    stocks: Vec<Stock>,
    /// Trades of stocks not followed because the stock table was full.
    pub stock_overflow: u64,
    /// Attributed executions not followed because an episode's participant slots were full.
    pub party_overflow: u64,
}

impl MomentumIgnition {
    /// State sized by `cap` (a slot per locate, up to 16,384 stocks followed).
    pub fn new(cap: &Capacity) -> Self {
        MomentumIgnition {
            slot_of: vec![NO_SLOT; cap.locates],
            stocks: Vec::with_capacity(cap.locates.min(MAX_STOCKS)),
            stock_overflow: 0,
            party_overflow: 0,
        }
    }

    fn stock(&mut self, locate: u16) -> Option<&mut Stock> {
        let s = *self.slot_of.get(locate as usize)?;
        if s != NO_SLOT {
            return self.stocks.get_mut(s as usize);
        }
        if self.stocks.len() == self.stocks.capacity() {
            self.stock_overflow += 1;
            return None;
        }
        self.slot_of[locate as usize] = self.stocks.len() as u32;
        self.stocks.push(Stock::default());
        self.stocks.last_mut()
    }
}

/// `(a - b) / b` in bps (0 when `b` is 0).
fn bps(a: u32, b: u32) -> f64 {
    if b == 0 {
        0.0
    } else {
        (a as f64 - b as f64) / b as f64 * 10_000.0
    }
}

impl Stock {
    fn record(&mut self, width: u64, ts: u64, px: u32, dir: i8, shares: u32) {
        let id = ts / width + 1;
        if id != self.last_id {
            self.sample_volatility();
            self.last_id = id;
        }
        self.last_px = px;
        let b = &mut self.buckets[(id % BUCKETS as u64) as usize];
        if b.id != id {
            *b = Bucket {
                id,
                lo: px,
                hi: px,
                lo_ts: ts,
                hi_ts: ts,
                up: 0,
                down: 0,
                vol: 0,
            };
        }
        b.vol += shares as u64;
        if px < b.lo {
            b.lo = px;
            b.lo_ts = ts;
        }
        if px > b.hi {
            b.hi = px;
            b.hi_ts = ts;
        }
        match dir {
            1 => b.up += 1,
            -1 => b.down += 1,
            _ => {}
        }
    }

    /// The touch an execution met: a two-sided, uncrossed one feeds the typical spread.
    fn note_spread(&mut self, t: &Touch) {
        if t.bid_shares == 0 || t.ask_shares == 0 || t.ask <= t.bid {
            return;
        }
        let s = (t.ask - t.bid) as f64;
        if self.spread == 0.0 {
            self.spread = s;
        } else {
            self.spread += SPREAD_ALPHA * (s - self.spread);
        }
    }

    /// A move of `move_px` (Price(4)) over the typical spread (None before a two-sided quote).
    fn spreads(&self, move_px: u32) -> Option<f64> {
        (self.spread > 0.0).then(|| move_px as f64 / self.spread)
    }

    /// A bucket ended (at `last_px`): its move from the last sample, per bucket of the time
    /// between, goes into the volatility baseline.
    fn sample_volatility(&mut self) {
        if self.ref_id != 0 && self.ref_px != 0 && self.last_id > self.ref_id {
            // Mean absolute move (robust to the odd jump), per √bucket of the time between.
            let ret = bps(self.last_px, self.ref_px).abs();
            let per_bucket = ret / ((self.last_id - self.ref_id) as f64).sqrt();
            self.mad += VOL_ALPHA * (per_bucket - self.mad);
            self.samples = self.samples.saturating_add(1);
        }
        self.ref_px = self.last_px;
        self.ref_id = self.last_id;
    }

    /// A move of `move_bps` over `len` ns against the stock's volatility over that long (None
    /// until the baseline has [`VOL_SAMPLES`]).
    fn sigmas(&self, move_bps: f64, len: u64, width: u64) -> Option<f64> {
        if self.samples < VOL_SAMPLES {
            return None;
        }
        let buckets = (len as f64 / width as f64).max(1.0);
        // A normal move's standard deviation is about 1.25 × its mean absolute value.
        let sd = 1.25 * self.mad * buckets.sqrt();
        Some(if sd > 0.0 {
            move_bps / sd
        } else {
            f64::INFINITY
        })
    }

    /// The extreme against `dir` (the low for +1) within the last `nb` buckets, and the run
    /// from there to `px` (the execution now). The run begins at the earliest trade within a
    /// quarter of the move (at least a tick) of the extreme, so a print at a bid the sweep left
    /// behind does not cut the run short.
    fn burst(&self, width: u64, ts: u64, nb: usize, dir: i8, px: u32) -> Option<Run> {
        let now = ts / width + 1;
        let oldest = now.saturating_sub(nb as u64 - 1);
        let live = |b: &&Bucket| b.id >= oldest && b.id <= now && b.id != 0;
        let ext = if dir > 0 {
            self.buckets.iter().filter(live).map(|b| b.lo).min()?
        } else {
            self.buckets.iter().filter(live).map(|b| b.hi).max()?
        };
        let near = (px.abs_diff(ext) / 4).max(tick_of(ext));
        let (from, t) = self
            .buckets
            .iter()
            .filter(live)
            .filter(|b| {
                if dir > 0 {
                    b.lo <= ext.saturating_add(near)
                } else {
                    b.hi >= ext.saturating_sub(near)
                }
            })
            .map(|b| (b.id, if dir > 0 { b.lo_ts } else { b.hi_ts }))
            .min()?;
        let mut run = Run {
            ext,
            ts: t,
            ..Run::default()
        };
        for b in &self.buckets {
            if b.id >= from && b.id <= now {
                run.with += if dir > 0 { b.up } else { b.down };
                run.all += b.up + b.down;
                run.vol += b.vol;
            }
        }
        Some(run)
    }
}

/// A run of trades towards an execution: the extreme it began at and when, trades with the
/// move, all trades, shares.
#[derive(Clone, Copy, Debug, Default)]
struct Run {
    ext: u32,
    ts: u64,
    with: u32,
    all: u32,
    vol: u64,
}

impl Episode {
    /// Adds an execution; false if a participant had to give way (or this one was dropped).
    fn add_party(&mut self, party: Party, shares: u32, order_ref: u64, px: u32) -> bool {
        let key = if self.dir > 0 { px } else { u32::MAX - px };
        let n = self.n_parties as usize;
        let mut kept = true;
        let i = match self.parties[..n].iter().position(|p| p.party == party) {
            Some(i) => i,
            None => {
                let i = if n < SLOTS {
                    self.n_parties += 1;
                    n
                } else {
                    kept = false;
                    // The one with the fewest shares (then the farthest from the peak) gives way.
                    let (i, least) = self.parties[..n]
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, p)| (p.shares, p.best))
                        .map(|(i, p)| (i, p.shares))
                        .unwrap_or((0, 0));
                    if least >= shares as u64 {
                        return false;
                    }
                    i
                };
                self.parties[i] = PartySlot {
                    party,
                    ..PartySlot::default()
                };
                i
            }
        };
        let p = &mut self.parties[i];
        p.shares += shares as u64;
        p.best = p.best.max(key);
        if (p.n_refs as usize) < REFS && !p.refs[..p.n_refs as usize].contains(&order_ref) {
            p.refs[p.n_refs as usize] = order_ref;
            p.n_refs += 1;
        }
        kept
    }
}

impl Detector for MomentumIgnition {
    type Rules = MomentumIgnitionRules;
    const ID: DetectorId = DetectorId::MomentumIgnition;

    fn on_event(
        &mut self,
        r: &MomentumIgnitionRules,
        ev: &SurvEvent,
        ctx: &Ctx<'_>,
        out: &mut Alerts,
    ) {
        if ev.locate == 0 {
            return;
        }
        // (price, shares, aggressor direction, resting party, order ref, resting side)
        let (px, shares, dir, party, order_ref, side) = match ev.kind {
            Kind::Exec {
                order_ref,
                side,
                price,
                shares,
                party,
                printable: true,
                ..
            } => {
                let dir = if side == Side::Sell { 1 } else { -1 };
                (price, shares, dir, party, order_ref, Some(side))
            }
            _ => return,
        };
        if px == 0 || shares == 0 {
            return;
        }
        let width = (r.max_burst_ns / BUCKETS as u64).max(1);
        let Some(st) = self.stock(ev.locate) else {
            return;
        };
        st.record(width, ev.ts, px, dir, shares);
        st.note_spread(&ev.before);
        let mut overflow = false;
        Self::step(
            r,
            st,
            ev,
            ctx,
            out,
            (px, shares, party, order_ref, side),
            &mut overflow,
        );
        if overflow {
            self.party_overflow += 1;
        }
    }
}

impl MomentumIgnition {
    /// One trade of a followed stock (already in its buckets): it follows the open episode, or
    /// may open one.
    fn step(
        r: &MomentumIgnitionRules,
        st: &mut Stock,
        ev: &SurvEvent,
        ctx: &Ctx<'_>,
        out: &mut Alerts,
        trade: (u32, u32, Party, u64, Option<Side>),
        overflow: &mut bool,
    ) {
        if st.ep.dir != 0 && Self::follow(r, st, ev, ctx, out, trade, overflow) {
            return;
        }
        Self::open(r, st, ev.ts, trade);
    }

    /// The open episode takes a trade: a new peak, a trade against the move, the move's volume
    /// and its parties; on a reversion in time it is judged and closed. False when it had
    /// expired (no reversion in time: a near miss), so the trade may open a new one.
    fn follow(
        r: &MomentumIgnitionRules,
        st: &mut Stock,
        ev: &SurvEvent,
        ctx: &Ctx<'_>,
        out: &mut Alerts,
        (px, shares, party, order_ref, side): (u32, u32, Party, u64, Option<Side>),
        overflow: &mut bool,
    ) -> bool {
        let ts = ev.ts;
        let ep = &mut st.ep;
        if ts > ep.peak_ts.saturating_add(r.revert_ns) {
            ep.dir = 0;
            return false;
        }
        let up = ep.dir > 0;
        if (up && px > ep.peak_px) || (!up && px < ep.peak_px) {
            ep.peak_px = px;
            ep.peak_ts = ts;
            ep.against = 0;
        } else if side == Some(if up { Side::Buy } else { Side::Sell }) {
            ep.against += 1;
        }
        let into = if up { Side::Sell } else { Side::Buy };
        if side == Some(into) {
            ep.volume += shares as u64;
        }
        if party != NOBODY && side == Some(into) && !ep.add_party(party, shares, order_ref, px) {
            *overflow = true;
        }
        let mv = ep.peak_px.abs_diff(ep.start_px) as f64;
        let back = if up {
            ep.peak_px.saturating_sub(px)
        } else {
            px.saturating_sub(ep.peak_px)
        } as f64;
        if mv > 0.0 && back >= r.min_revert_fraction * mv && ep.against >= r.min_revert_trades {
            Self::judge(r, st, ev, ctx, out, back, mv);
            st.ep.dir = 0;
        }
        true
    }

    /// A reverted episode: the alert, naming the party whose exit qualifies best, if any.
    fn judge(
        r: &MomentumIgnitionRules,
        st: &mut Stock,
        ev: &SurvEvent,
        ctx: &Ctx<'_>,
        out: &mut Alerts,
        back: f64,
        mv: f64,
    ) {
        let ts = ev.ts;
        let ep = &st.ep;
        let mv_px = ep.peak_px.abs_diff(ep.start_px);
        let best = ep.parties[..ep.n_parties as usize]
            .iter()
            .filter(|p| r.party_qualifies(p.shares, ep.volume, mv_px))
            .max_by(|a, b| {
                (a.best, a.shares)
                    .cmp(&(b.best, b.shares))
                    .then(b.party.cmp(&a.party))
            })
            .copied();
        if let Some(p) = best {
            let large = r.party_is_large(p.shares, mv_px);
            let move_bps = bps(ep.peak_px, ep.start_px).abs();
            let peak = ep.peak_px.max(1) as f64;
            let mut a = Alert::new(
                DetectorId::MomentumIgnition,
                ts,
                ev.seq,
                ev.locate,
                ctx.symbol,
            )
            .party(p.party)
            .severity(Severity::by_ratio(move_bps / r.min_move_bps, 2.0))
            .context("move_bps", move_bps)
            .evidence(
                "move_ticks",
                ticks_between(ep.peak_px, ep.start_px) as f64,
                ">=",
                r.min_move_ticks as f64,
            )
            // The move when the episode opened, scaled by its window score (1 up
            // to burst_ns), and over the stock's own volatility at that length.
            .evidence("scaled_move_bps", ep.scaled_bps, ">=", r.min_move_bps)
            .context("window_score", ep.window_score)
            .test_if(
                !ep.move_sigma.is_nan(),
                "move_sigma",
                ep.move_sigma,
                ">=",
                r.min_move_sigma,
            )
            .test_if(
                !ep.move_spreads.is_nan(),
                "move_spreads",
                ep.move_spreads,
                ">=",
                r.min_move_spreads,
            )
            .evidence(
                "trades_in_burst",
                ep.trades as f64,
                ">=",
                r.min_trades as f64,
            )
            .evidence("burst_ns", ep.burst_ns as f64, "<=", r.max_burst_ns as f64)
            .test_if(
                large,
                "party_executed_shares",
                p.shares as f64,
                ">=",
                r.min_party_shares as f64,
            )
            .test_if(
                large,
                "party_move_value_usd",
                party_value(p.shares, mv_px),
                ">=",
                r.min_party_value_usd,
            )
            .test_if(
                !large,
                "party_volume_share",
                p.shares as f64 / ep.volume.max(1) as f64,
                ">=",
                r.min_party_volume_share,
            )
            .evidence("direction_ratio", ep.direction, ">=", r.min_direction_ratio)
            .evidence("reversion_ratio", back / mv, ">=", r.min_revert_fraction)
            // The give-back from the peak in bps of the peak price; the threshold is
            // the retracement `min_revert_fraction` asks of this move.
            .evidence(
                "reversion_bps",
                back / peak * 10_000.0,
                ">=",
                r.min_revert_fraction * mv / peak * 10_000.0,
            )
            .evidence(
                "reversion_ns",
                ts.saturating_sub(ep.peak_ts) as f64,
                "<=",
                r.revert_ns as f64,
            )
            .touch(ev.after)
            .since(ep.start_ts);
            for &x in &p.refs[..p.n_refs as usize] {
                a = a.order_ref(x);
            }
            out.push(a);
            st.quiet_until = ts.saturating_add(r.cooldown_ns);
        }
    }

    /// No episode open: an attributed resting order executed on the side a move runs into
    /// opens one when a recent run of trades, at one of the window lengths, passes every test.
    fn open(
        r: &MomentumIgnitionRules,
        st: &mut Stock,
        ts: u64,
        (px, shares, party, order_ref, side): (u32, u32, Party, u64, Option<Side>),
    ) {
        let width = (r.max_burst_ns / BUCKETS as u64).max(1);
        let (Some(side), true) = (side, party != NOBODY) else {
            return;
        };
        if ts < st.quiet_until {
            return;
        }
        let dir: i8 = if side == Side::Sell { 1 } else { -1 };
        // Each window length; the run with the best scaled move that passes every test.
        let mut best: Option<(f64, f64, f64, f64, Run)> = None;
        for nb in WINDOWS {
            let Some(run) = st.burst(width, ts, nb, dir, px) else {
                continue;
            };
            let len = ts.saturating_sub(run.ts);
            let score = r.window_score(len);
            let move_bps = bps(px, run.ext) * dir as f64;
            let scaled = move_bps * score;
            let sigmas = st.sigmas(move_bps, len, width);
            let spreads = st.spreads(px.abs_diff(run.ext));
            if scaled < r.min_move_bps
                || sigmas.is_some_and(|z| z < r.min_move_sigma)
                || spreads.is_some_and(|x| x < r.min_move_spreads)
                || ticks_between(px, run.ext) < r.min_move_ticks
                || run.with < r.min_trades
                || (run.with as f64) < r.min_direction_ratio * run.all as f64
            {
                continue;
            }
            if best.map_or(true, |(b, ..)| scaled > b) {
                let nan = f64::NAN;
                best = Some((
                    scaled,
                    score,
                    sigmas.unwrap_or(nan),
                    spreads.unwrap_or(nan),
                    run,
                ));
            }
        }
        let Some((scaled_bps, window_score, move_sigma, move_spreads, run)) = best else {
            return;
        };
        let mut ep = Episode {
            dir,
            start_px: run.ext,
            start_ts: run.ts,
            peak_px: px,
            peak_ts: ts,
            trades: run.with,
            direction: run.with as f64 / run.all.max(1) as f64,
            burst_ns: ts - run.ts.min(ts),
            volume: run.vol,
            window_score,
            scaled_bps,
            move_sigma,
            move_spreads,
            ..Episode::default()
        };
        ep.add_party(party, shares, order_ref, px);
        st.ep = ep;
    }
}
