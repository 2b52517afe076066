//! Marking the close: unusual trading and price impact in the final minutes before the close.
//!
//! "Marking the close" is buying or selling a security at or near the close so as to alter its
//! closing price (SEC and FINRA enforcement under Exchange Act §9(a)(2) and FINRA Rule 2020; the
//! Market Abuse Regulation's indicator MAR Annex I A(g): "orders to trade given or transactions
//! undertaken ... at or around a specific time when reference prices, settlement prices and
//! valuations are calculated and lead to price changes which have an effect on such prices and
//! valuations"). It shows as volume out of line with the stock's session and a price pushed one
//! way into the close, often with one participant behind a large share of the trading.
//!
//! How: per stock, every printable trade (executions and hidden prints; crosses are not
//! continuous trading) goes into [`BUCKETS`] time buckets spanning the last `window_ns`
//! (trades, shares, the displayed-execution price before the bucket's first trade; hidden
//! prints count in the volume, not in the prices), plus the session's totals since
//! its first trade (the baseline rate), plus the shares executed against each attributed
//! participant's resting orders per bucket (a few participants per stock, the smallest evicted).
//! At the close — the stock's closing cross ('Q' with cross type 'C'), or, for a stock without
//! one, the end of market hours (system event 'M': closing crosses may still print just after
//! it, so the stocks without one are judged once the watermark is [`CROSS_GRACE_NS`] past it,
//! or at the end of system hours 'E' / of messages 'C', by their last trade, with the window
//! ending at 'M') — whichever comes first, for every stock that traded, with or without an
//! opening cross (a stock without NASDAQ crosses, a halt or IPO open 'H', a feed joined
//! mid-day, a LOBSTER conversion); pre-market trading is never taken for a close — the window is
//! compared with the baseline: volume ratio = window shares / (baseline shares per ns ×
//! window).
//!
//! The closing auction counts too. NASDAQ disseminates Net Order Imbalance Indicators ('I',
//! cross type 'C') before the closing cross: the shares paired at the current reference price,
//! the imbalance shares and their side. Each stock's closing NOIIs go into the same buckets (the
//! first reference price per bucket) and the last one is kept (time, paired shares, signed
//! imbalance, last reference price); NOIIs of the opening or halt crosses ('O', 'H') are
//! ignored. Two moves are measured from the last displayed execution before the window: the
//! *continuous push* (to the last displayed execution before the close) and the *auction's
//! move* (to the closing cross price: a manipulator can mark the close through market- and
//! limit-on-close orders alone, leaving continuous trading flat). With at least
//! `min_window_trades` trades in the window, it fires by either of two routes, each a move that
//! reaches `min_impact_bps` and `min_impact_ticks` paired with its own unusual activity:
//! the continuous push with the window's volume ratio at least `min_volume_ratio`; or the
//! auction's move with a one-sided auction — the window's last closing NOII showed an imbalance
//! on the side the cross price moved of at least `min_noii_imbalance_ratio` × its paired shares.
//! A third route needs neither: the mid pushed into the close by more than `min_move_sigmas`
//! standard deviations of the stock's own earlier mid moves (over the window's last 2, 4, 8 or
//! 16 buckets), with the aggressors leaning the way it moved (`min_aggressor_imbalance`) —
//! scale-free, for an anonymous push that adds little volume.
//! The reported impact is the move of the route that fired (the larger if both did). The cross
//! price never pairs with the volume test alone: a quiet stock's closing price can sit many
//! ticks from its last trade with nothing unusual about it. A large imbalance with the closing
//! price where the window began (an ordinary index-rebalance close), an auction that moved
//! against its imbalance, or a cross price far off with an ordinary imbalance, raises nothing.
//!
//! The participant whose attributed executions are the largest share of the window's shares is
//! named if that share reaches `min_party_share` (the auction's orders are anonymous in ITCH).
//! One alert per stock per day, carrying the auction evidence beside the window's:
//! `cross_px` (the closing cross price; null at a close by system event),
//! `noii_imbalance_shares` (signed: + buy, − sell, at the window's last closing NOII),
//! `noii_imbalance_ratio` (its imbalance over its paired shares) and `noii_ref_move_bps` (the
//! current reference price's move from the window's first closing NOII to its last); the NOII
//! metrics are left out when the window held no closing NOII, and the signed ones are context
//! (no threshold of their own). An ordinary last few minutes, or heavy volume that leaves the price
//! where it was, raise nothing.

use super::event::{Kind, Party, NOBODY};
use super::range::{self, Key, BPS, COUNT, MULTIPLE};
use super::scale::ticks_between;
use super::RuleError;
use super::{Alert, Alerts, Capacity, Ctx, Detector, DetectorId, Severity, SurvEvent};
use crate::itch::Side;

/// How long after the end of market hours closing crosses are awaited before the stocks
/// without one are judged by their last trade (feed time).
pub const CROSS_GRACE_NS: u64 = 60_000_000_000;

/// Thresholds of `[marking_the_close]` in the rules file.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MarkingTheCloseRules {
    /// Run this detector.
    pub enabled: bool,
    /// M: the final stretch before the close that is examined, ns (default 5 min: the period
    /// regulators examine for closing-price manipulation).
    pub window_ns: u64,
    /// Trades at least in the window (default 5: too few prints say nothing about a rate).
    pub min_window_trades: u32,
    /// Window shares over the shares the session's rate predicts for the window, at least
    /// (default 2.0: twice the stock's usual pace). Needs a baseline at least as long as the
    /// window.
    pub min_volume_ratio: f64,
    /// |last price − last price before the window| / that price, bps, at least (default 5: 25
    /// cents on a $500 stock; with the tick floor below and the volume test, enough on the price
    /// that index and fund valuations use).
    pub min_impact_bps: f64,
    /// The same impact in the stock's own ticks (one cent at $1.00 and above, $0.0001 below, as
    /// Reg NMS Rule 612), at least (default 10:
    /// keeps the bid/ask bounce and drift of low-priced names, where a cent is many bps, out).
    pub min_impact_ticks: u32,
    /// A participant whose attributed executions are at least this share of the window's shares
    /// is named (default 0.15: ten times the share of any one of ten firms trading alike),
    /// ratio 0..=1.
    pub min_party_share: f64,
    /// The closing auction as the unusual activity, instead of the window's volume: the last
    /// closing NOII in the window must show imbalance shares at least this multiple of its
    /// paired shares, on the side the closing cross price moved (default 1.0: more unmatched
    /// interest than all the shares the auction matched — the one-sided market-on-close interest
    /// it takes to move a closing price; ordinary imbalances are a fraction of the paired
    /// shares). Only when the cross price itself passes the impact thresholds.
    pub min_noii_imbalance_ratio: f64,
    /// The push against the stock's own volatility, as a third route: the mid's move into the
    /// close over the window's last 2, 4, 8 or 16 buckets, in standard deviations of the
    /// stock's own mid moves over as many buckets earlier in the day, at least (default 2.5).
    /// Scale-free: a cent on a quiet $100 stock can be many deviations, ten cents on a volatile
    /// $2 stock none.
    pub min_move_sigmas: f64,
    /// With it, the executions over the same buckets must lean the way the mid moved: (shares
    /// bought by aggressors − shares sold) / shares traded, at least (default 0.15: 57.5 % of the shares one way; the
    /// aggressor is the side opposite the resting order, as ITCH shows only resting orders).
    pub min_aggressor_imbalance: f64,
}

impl Default for MarkingTheCloseRules {
    fn default() -> Self {
        MarkingTheCloseRules {
            enabled: true,
            window_ns: 300_000_000_000,
            min_window_trades: 5,
            min_volume_ratio: 2.0,
            min_impact_bps: 5.0,
            min_impact_ticks: 10,
            min_party_share: 0.15,
            min_noii_imbalance_ratio: 1.0,
            min_move_sigmas: 2.5,
            min_aggressor_imbalance: 0.15,
        }
    }
}

impl MarkingTheCloseRules {
    /// Its table in the rules file.
    pub const TABLE: &'static str = "marking_the_close";
    /// Every key with its allowed range.
    pub const KEYS: &'static [Key] = &[
        Key::flag("enabled"),
        Key::int("window_ns", BUCKETS as u64 * 1_000, 3_600_000_000_000)
            .why("one µs a bucket, to 1 h"),
        Key::int("min_window_trades", 0, COUNT),
        Key::above("min_volume_ratio", 0.0, MULTIPLE),
        Key::real("min_impact_bps", 0.0, BPS),
        Key::int("min_impact_ticks", 0, COUNT),
        Key::above("min_party_share", 0.0, 1.0),
        Key::above("min_noii_imbalance_ratio", 0.0, MULTIPLE),
        Key::above("min_move_sigmas", 0.0, MULTIPLE),
        Key::above("min_aggressor_imbalance", 0.0, 1.0),
    ];

    /// Checks every threshold is in its range.
    pub fn validate(&self) -> Result<(), RuleError> {
        range::check(Self::TABLE, self, Self::KEYS)
    }
}

/// Time buckets the window is folded into (the window is exact to one bucket).
pub const BUCKETS: usize = 16;
/// Participants followed per stock (the one with the fewest window shares is evicted).
const SLOTS: usize = 4;
/// Stocks followed at most per shard (beyond, counted in [`MarkingTheClose::stock_overflow`]).
const MAX_STOCKS: usize = 16_384;
const NO_SLOT: u32 = u32::MAX;
/// Basis points in one.
const BPS_PER: f64 = 10_000.0;
/// The window's tails the push against volatility is measured over, in buckets.
const PUSH_SPANS: [u64; 4] = [2, 4, 8, 16];
/// Bucket widths of moves the day needs before its volatility is trusted.
const MIN_VOL_WIDTHS: u64 = 8;

/// The strongest push into the close against the stock's own volatility.
#[derive(Clone, Copy, Debug)]
struct Push {
    /// The mid's move, bps (signed).
    bps: f64,
    /// And in the stock's own ticks.
    ticks: u32,
    /// The move over the day's standard deviation for as many buckets.
    sigmas: f64,
    /// The aggressors' lean over the span, −1..=1.
    imbalance: f64,
    /// The span, buckets.
    buckets: u64,
}

#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Bucket {
    /// `ts / width` + 1 (0: never used).
    id: u64,
    trades: u32,
    shares: u64,
    /// Displayed executions signed by their aggressor: + bought, − sold.
    signed: i64,
    /// The stock's mid before this bucket's first trade (0: none).
    prev_mid: u32,
    /// The squared mid move, bps², from the previous bucket's start to this one's, and the
    /// bucket widths it spans.
    move_sq: f64,
    move_widths: u64,
    /// The last trade price before this bucket's first trade (0: none).
    prev_px: u32,
    first_px: u32,
    /// The current reference price of this bucket's first closing NOII (0: none).
    noii_ref: u32,
}

#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
struct PartySlot {
    party: Party,
    /// Executed shares per bucket (aligned with the stock's buckets).
    shares: [u64; BUCKETS],
}

/// The last closing NOII ('I' with cross type 'C') of a stock.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Noii {
    /// Its time (meaningful when `seen`).
    ts: u64,
    seen: bool,
    paired: u64,
    /// Imbalance shares, signed: + buy, − sell (0 for no imbalance or a paused/insufficient one).
    imbalance: i64,
    /// The last current reference price quoted (a NOII without one keeps the previous), Price(4).
    reference: u32,
}

#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct Stock {
    locate: u16,
    buckets: [Bucket; BUCKETS],
    parties: [PartySlot; SLOTS],
    n_parties: u8,
    first_ts: u64,
    trades: u64,
    shares: u64,
    last_px: u32,
    /// The mid after the last displayed execution with a two-sided book (0: none yet).
    mid: u32,
    /// The mid and bucket id at the last bucket's start, for the next move.
    roll_mid: u32,
    roll_id: u64,
    /// The day's squared mid moves between bucket starts, bps², and the widths they span.
    move_sq: f64,
    move_widths: u64,
    /// The last closing NOII.
    noii: Noii,
    /// Evaluated at the close already.
    done: bool,
}

impl Default for Stock {
    fn default() -> Self {
        Stock {
            locate: 0,
            buckets: [Bucket::default(); BUCKETS],
            parties: [PartySlot::default(); SLOTS],
            n_parties: 0,
            first_ts: 0,
            trades: 0,
            shares: 0,
            last_px: 0,
            mid: 0,
            roll_mid: 0,
            roll_id: 0,
            move_sq: 0.0,
            move_widths: 0,
            noii: Noii::default(),
            done: false,
        }
    }
}

/// The `marking_the_close` detector's state in one shard.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct MarkingTheClose {
    #[serde(with = "crate::ckpt::cap")]
    slot_of: Vec<u32>,
    #[serde(with = "crate::ckpt::cap")]
    stocks: Vec<Stock>,
    /// Trades of stocks not followed because the stock table was full.
    pub stock_overflow: u64,
    /// Participants evicted from a stock's slots to make room for another.
    pub party_evictions: u64,
    /// The end of market hours ('M': time, feed position), while the closing crosses after it
    /// are awaited.
    market_close: Option<(u64, u32)>,
    /// Every stock has been judged (at its closing cross, or after the end of market hours).
    closed: bool,
}

impl MarkingTheClose {
    /// State sized by `cap` (a slot per locate, up to 16,384 stocks followed).
    pub fn new(cap: &Capacity) -> Self {
        MarkingTheClose {
            slot_of: vec![NO_SLOT; cap.locates],
            stocks: Vec::with_capacity(cap.locates.min(MAX_STOCKS)),
            stock_overflow: 0,
            party_evictions: 0,
            market_close: None,
            closed: false,
        }
    }

    /// Judges every stock not judged yet (no closing cross came), at the end of market hours
    /// `ts` (feed position `seq`), by its last trade. O(stocks followed), once a day.
    fn close_all(
        &mut self,
        r: &MarkingTheCloseRules,
        ts: u64,
        seq: u32,
        ctx: &Ctx<'_>,
        out: &mut Alerts,
    ) {
        if self.closed {
            return;
        }
        self.closed = true;
        for s in 0..self.stocks.len() {
            let locate = self.stocks[s].locate;
            let sym = ctx.books.symbol(locate).copied().unwrap_or([b' '; 8]);
            self.evaluate(r, s, ts, seq, None, ctx, sym, out);
            self.stocks[s].done = true;
        }
    }

    fn slot(&mut self, locate: u16) -> Option<usize> {
        let s = *self.slot_of.get(locate as usize)?;
        if s != NO_SLOT {
            return Some(s as usize);
        }
        if self.stocks.len() == self.stocks.capacity() {
            self.stock_overflow += 1;
            return None;
        }
        self.slot_of[locate as usize] = self.stocks.len() as u32;
        self.stocks.push(Stock {
            locate,
            ..Stock::default()
        });
        Some(self.stocks.len() - 1)
    }
}

/// What the window held, at the close.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct Window {
    trades: u32,
    shares: u64,
    start_px: u32,
    /// Shares the session's pace predicts for the window (`None`: baseline too short).
    expected: Option<f64>,
    /// The participant with the most window shares, and its shares.
    top: Option<(Party, u64)>,
    /// The reference prices of the window's first and last closing NOII.
    noii_ref: Option<(u32, u32)>,
    /// The window's last closing NOII.
    noii: Option<Noii>,
}

impl Stock {
    /// The bucket of time `ts` (its index and id), emptied if it held an older time.
    fn roll(&mut self, width: u64, ts: u64) -> (usize, u64) {
        let id = ts / width + 1;
        let i = (id % BUCKETS as u64) as usize;
        if self.buckets[i].id != id {
            let (move_sq, move_widths) = self.roll_move(id);
            self.buckets[i] = Bucket {
                id,
                prev_px: self.last_px,
                prev_mid: self.mid,
                move_sq,
                move_widths,
                ..Bucket::default()
            };
            for p in &mut self.parties[..self.n_parties as usize] {
                p.shares[i] = 0;
            }
        }
        (i, id)
    }

    /// The mid's move since the last bucket began (bps², widths), added to the day's.
    fn roll_move(&mut self, id: u64) -> (f64, u64) {
        let mut out = (0.0, 0);
        if self.roll_mid != 0 && self.mid != 0 {
            let r = (self.mid as f64 - self.roll_mid as f64) / self.roll_mid as f64 * BPS_PER;
            out = (r * r, id - self.roll_id);
            self.move_sq += out.0;
            self.move_widths += out.1;
        }
        if self.mid != 0 {
            (self.roll_mid, self.roll_id) = (self.mid, id);
        }
        out
    }

    /// Adds a closing NOII: the bucket's first reference price, the stock's last NOII.
    fn record_noii(&mut self, width: u64, ts: u64, paired: u64, imbalance: i64, reference: u32) {
        let (i, _) = self.roll(width, ts);
        if self.buckets[i].noii_ref == 0 {
            self.buckets[i].noii_ref = reference;
        }
        if !self.noii.seen || ts >= self.noii.ts {
            self.noii = Noii {
                ts,
                seen: true,
                paired,
                imbalance,
                reference: if reference != 0 {
                    reference
                } else {
                    self.noii.reference
                },
            };
        }
    }

    /// Adds a trade; returns true when a participant had to be evicted.
    fn record(&mut self, width: u64, ts: u64, px: Option<u32>, shares: u64, party: Party) -> bool {
        self.record_signed(width, ts, px, shares, party, 0)
    }

    /// [`Stock::record`], `sign` (+1 bought, −1 sold by the aggressor, 0 unknown) giving the
    /// shares' direction.
    fn record_signed(
        &mut self,
        width: u64,
        ts: u64,
        px: Option<u32>,
        shares: u64,
        party: Party,
        sign: i64,
    ) -> bool {
        let (i, id) = self.roll(width, ts);
        let b = &mut self.buckets[i];
        b.trades += 1;
        b.signed += sign * shares as i64;
        b.shares += shares;
        if b.first_px == 0 {
            b.first_px = px.unwrap_or(0);
        }
        if self.trades == 0 {
            self.first_ts = ts;
        }
        self.trades += 1;
        self.shares += shares;
        if let Some(p) = px {
            self.last_px = p;
        }
        if party == NOBODY {
            return false;
        }
        let n = self.n_parties as usize;
        let mut evicted = false;
        let k = match self.parties[..n].iter().position(|p| p.party == party) {
            Some(k) => k,
            None if n < SLOTS => {
                self.n_parties += 1;
                self.parties[n] = PartySlot {
                    party,
                    shares: [0; BUCKETS],
                };
                n
            }
            None => {
                let now = id;
                let k = (0..n)
                    .min_by_key(|&k| self.party_window(k, now))
                    .unwrap_or(0);
                self.parties[k] = PartySlot {
                    party,
                    shares: [0; BUCKETS],
                };
                evicted = true;
                k
            }
        };
        self.parties[k].shares[i] += shares;
        evicted
    }

    /// The mid's standard deviation per bucket width, bps, from the day's moves before the
    /// buckets at or after `from` (at least half a tick at `mid`: a mid moves in half ticks).
    fn sigma(&self, from: u64) -> Option<f64> {
        let (mut sq, mut widths) = (self.move_sq, self.move_widths);
        for b in self.buckets.iter().filter(|b| b.id != 0 && b.id >= from) {
            sq -= b.move_sq;
            widths = widths.saturating_sub(b.move_widths);
        }
        let half_tick = super::scale::tick_of(self.mid) as f64 / 2.0 / self.mid as f64 * BPS_PER;
        (widths >= MIN_VOL_WIDTHS).then(|| (sq.max(0.0) / widths as f64).sqrt().max(half_tick))
    }

    /// The span of the window's tail (see [`PUSH_SPANS`]) whose mid moved the most standard
    /// deviations with the aggressors leaning its way, when any passes the rules.
    fn push(&self, r: &MarkingTheCloseRules, now: u64) -> Option<Push> {
        if self.mid == 0 {
            return None;
        }
        let sigma = self.sigma(now.saturating_sub(BUCKETS as u64 - 1))?;
        PUSH_SPANS
            .iter()
            .filter_map(|&k| {
                let span = || {
                    self.buckets
                        .iter()
                        .filter(move |b| b.id != 0 && b.id + k > now)
                };
                let start = span().filter(|b| b.prev_mid != 0).min_by_key(|b| b.id)?;
                let shares: u64 = span().map(|b| b.shares).sum();
                let signed: i64 = span().map(|b| b.signed).sum();
                let from = start.prev_mid as f64;
                let bps = (self.mid as f64 - from) / from * BPS_PER;
                Some(Push {
                    bps,
                    ticks: ticks_between(self.mid, start.prev_mid),
                    sigmas: bps.abs() / (sigma * (k as f64).sqrt()),
                    imbalance: signed as f64 / shares.max(1) as f64,
                    buckets: k,
                })
            })
            .filter(|p| {
                p.sigmas >= r.min_move_sigmas
                    && p.bps.abs() >= r.min_impact_bps
                    && p.imbalance * p.bps.signum() >= r.min_aggressor_imbalance
            })
            .max_by(|a, b| a.sigmas.total_cmp(&b.sigmas))
    }

    fn in_window(&self, i: usize, now: u64) -> bool {
        let id = self.buckets[i].id;
        id != 0 && id + (BUCKETS as u64 - 1) >= now && id <= now
    }

    fn party_window(&self, k: usize, now: u64) -> u64 {
        (0..BUCKETS)
            .filter(|&i| self.in_window(i, now))
            .map(|i| self.parties[k].shares[i])
            .sum()
    }

    fn window(&self, width: u64, window_ns: u64, ts: u64) -> Window {
        let now = ts / width + 1;
        let (mut trades, mut shares) = (0u32, 0u64);
        let mut first: Option<&Bucket> = None;
        let mut first_noii: Option<&Bucket> = None;
        for (i, b) in self.buckets.iter().enumerate() {
            if !self.in_window(i, now) {
                continue;
            }
            trades += b.trades;
            shares += b.shares;
            // A bucket with only NOIIs has no price of its own before the first trade.
            if (b.trades > 0 || b.prev_px != 0) && first.map_or(true, |f| b.id < f.id) {
                first = Some(b);
            }
            if b.noii_ref != 0 && first_noii.map_or(true, |f| b.id < f.id) {
                first_noii = Some(b);
            }
        }
        let start_px = first.map_or(0, |b| {
            if b.prev_px != 0 {
                b.prev_px
            } else {
                b.first_px
            }
        });
        // The buckets cover from the start of the oldest one: 15 to 16 bucket widths.
        let start_ts = now.saturating_sub(BUCKETS as u64).saturating_mul(width);
        let span = ts.saturating_sub(start_ts).max(1);
        let base_ns = start_ts.saturating_sub(self.first_ts);
        let base_shares = self.shares.saturating_sub(shares);
        let expected = (self.first_ts < start_ts && base_ns >= window_ns && base_shares > 0)
            .then(|| base_shares as f64 / base_ns as f64 * span as f64);
        let top = (0..self.n_parties as usize)
            .map(|k| (self.parties[k].party, self.party_window(k, now)))
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            .filter(|&(_, s)| s > 0);
        let noii_id = self.noii.ts / width + 1;
        let noii = (self.noii.seen && noii_id + (BUCKETS as u64 - 1) >= now && noii_id <= now)
            .then_some(self.noii);
        // The last reference quoted is at or after the window's first one.
        let noii_ref = first_noii.map(|f| (f.noii_ref, self.noii.reference.max(1)));
        Window {
            trades,
            shares,
            start_px,
            expected,
            top,
            noii_ref,
            noii,
        }
    }
}

impl MarkingTheClose {
    /// Evaluates stock slot `s` at the close (`close_px`: the closing cross price, if any: the
    /// end price when the stock had no displayed execution).
    #[allow(clippy::too_many_arguments)]
    fn evaluate(
        &mut self,
        r: &MarkingTheCloseRules,
        s: usize,
        ts: u64,
        seq: u32,
        close_px: Option<u32>,
        ctx: &Ctx<'_>,
        symbol: [u8; 8],
        out: &mut Alerts,
    ) -> bool {
        let st = &mut self.stocks[s];
        if st.done || st.trades == 0 {
            return false;
        }
        let width = (r.window_ns / BUCKETS as u64).max(1);
        let w = st.window(width, r.window_ns, ts);
        let end_px = if st.last_px != 0 {
            st.last_px
        } else {
            close_px.unwrap_or(0)
        };
        if w.start_px == 0 || end_px == 0 || w.trades < r.min_window_trades {
            return false;
        }
        let bps = |px: u32| (px as f64 - w.start_px as f64) / w.start_px as f64 * 10_000.0;
        let passes =
            |b: f64, ticks: u32| b.abs() >= r.min_impact_bps && ticks >= r.min_impact_ticks;
        // The continuous push, and the closing cross price's move (0 without a cross).
        let (cont_bps, cont_ticks) = (bps(end_px), ticks_between(end_px, w.start_px));
        let (cross_bps, cross_ticks) =
            close_px.map_or((0.0, 0), |c| (bps(c), ticks_between(c, w.start_px)));
        let ratio = w.expected.map(|e| w.shares as f64 / e.max(1.0));
        let share = w.top.map(|(_, s)| s as f64 / w.shares.max(1) as f64);
        let busy = ratio.is_some_and(|x| x >= r.min_volume_ratio);
        // The auction's one-sided interest: the last NOII's imbalance over its paired shares.
        let imb_ratio = w
            .noii
            .map(|n| n.imbalance.unsigned_abs() as f64 / n.paired.max(1) as f64);
        let one_sided_auction = passes(cross_bps, cross_ticks)
            && w.noii.is_some_and(|n| {
                (n.imbalance > 0 && cross_bps > 0.0) || (n.imbalance < 0 && cross_bps < 0.0)
            })
            && imb_ratio.is_some_and(|x| x >= r.min_noii_imbalance_ratio);
        let party = w
            .top
            .filter(|_| share.is_some_and(|x| x >= r.min_party_share))
            .map(|(p, _)| p);
        // Two routes: the continuous push with heavy volume, the auction's move with a one-sided
        // imbalance. The cross price alone never pairs with the volume: a quiet stock's closing
        // price can sit many ticks from its last trade (seen on a generated full day: a 15-tick
        // cross on an ordinary stock at 2× its pace).
        let pushed = passes(cont_bps, cont_ticks) && busy;
        // The third route: the mid pushed against the stock's own volatility, aggressors
        // leaning its way (scale-free: no tick or volume floor of its own).
        let vol_push = st.push(r, ts / width + 1);
        let (impact_bps, ticks) = match (pushed, one_sided_auction, vol_push) {
            (false, false, None) => return false,
            (false, false, Some(p)) => (p.bps, p.ticks),
            (true, false, _) => (cont_bps, cont_ticks),
            (false, true, _) => (cross_bps, cross_ticks),
            (true, true, _) if cross_bps.abs() > cont_bps.abs() => (cross_bps, cross_ticks),
            (true, true, _) => (cont_bps, cont_ticks),
        };
        let sev = if party.is_some()
            || (pushed && one_sided_auction)
            || impact_bps.abs() >= 2.0 * r.min_impact_bps
        {
            Severity::High
        } else {
            Severity::Medium
        };
        let ref_move = w
            .noii_ref
            .map(|(a, b)| (b as f64 - a as f64) / a.max(1) as f64 * 10_000.0);
        let mut a = Alert::new(DetectorId::MarkingTheClose, ts, seq, st.locate, symbol)
            .party(party.unwrap_or(NOBODY))
            .severity(sev)
            .evidence("impact_bps", impact_bps.abs(), ">=", r.min_impact_bps)
            .test_if(
                pushed || one_sided_auction,
                "impact_ticks",
                ticks as f64,
                ">=",
                r.min_impact_ticks as f64,
            )
            .evidence(
                "window_trades",
                w.trades as f64,
                ">=",
                r.min_window_trades as f64,
            )
            .context("window_shares", w.shares as f64)
            // Each route's test where it fired; the rest is context.
            .test_if(
                pushed,
                "volume_ratio",
                ratio.unwrap_or(f64::NAN),
                ">=",
                r.min_volume_ratio,
            )
            .test_if(
                party.is_some(),
                "party_share_ratio",
                share.unwrap_or(f64::NAN),
                ">=",
                r.min_party_share,
            )
            .context("start_px", w.start_px as f64 / 10_000.0)
            .context("last_px", end_px as f64 / 10_000.0)
            .context(
                "cross_px",
                close_px.map_or(f64::NAN, |c| c as f64 / 10_000.0),
            )
            .context(
                "noii_imbalance_shares",
                w.noii.map_or(f64::NAN, |n| n.imbalance as f64),
            )
            .test_if(
                one_sided_auction,
                "noii_imbalance_ratio",
                imb_ratio.unwrap_or(f64::NAN),
                ">=",
                r.min_noii_imbalance_ratio,
            )
            .context("noii_ref_move_bps", ref_move.unwrap_or(f64::NAN))
            .since(ts.saturating_sub(r.window_ns));
        if let Some(p) = vol_push {
            a = a
                .evidence("move_sigmas", p.sigmas, ">=", r.min_move_sigmas)
                .evidence(
                    "aggressor_imbalance",
                    p.imbalance.abs(),
                    ">=",
                    r.min_aggressor_imbalance,
                )
                .context("push_span_ns", (p.buckets * width) as f64);
        }
        if st.locate != 0 {
            a = a.touch(crate::agg::Touch::of(ctx.books, st.locate));
        }
        out.push(a);
        st.done = true;
        true
    }
}

impl Detector for MarkingTheClose {
    type Rules = MarkingTheCloseRules;
    const ID: DetectorId = DetectorId::MarkingTheClose;

    fn on_watermark(
        &mut self,
        r: &MarkingTheCloseRules,
        wm: u64,
        _seq: u32,
        ctx: &Ctx<'_>,
        out: &mut Alerts,
    ) {
        if let Some((ts, seq)) = self.market_close {
            if wm >= ts.saturating_add(CROSS_GRACE_NS) {
                self.close_all(r, ts, seq, ctx, out);
            }
        }
    }

    fn on_event(
        &mut self,
        r: &MarkingTheCloseRules,
        ev: &SurvEvent,
        ctx: &Ctx<'_>,
        out: &mut Alerts,
    ) {
        match ev.kind {
            Kind::Exec {
                price,
                shares,
                party,
                side,
                printable: true,
                ..
            } if ev.locate != 0 && price > 0 && shares > 0 => {
                let width = (r.window_ns / BUCKETS as u64).max(1);
                // The aggressor took the other side of the resting order.
                let sign = if side == Side::Sell { 1 } else { -1 };
                if let Some(s) = self.slot(ev.locate) {
                    let st = &mut self.stocks[s];
                    if st.record_signed(width, ev.ts, Some(price), shares as u64, party, sign) {
                        self.party_evictions += 1;
                    }
                    let t = crate::agg::Touch::of(ctx.books, ev.locate);
                    if t.bid != 0 && t.bid < t.ask {
                        st.mid = ((t.bid as u64 + t.ask as u64) / 2) as u32;
                    }
                }
            }
            Kind::Trade { price, shares, .. } if ev.locate != 0 && price > 0 && shares > 0 => {
                let width = (r.window_ns / BUCKETS as u64).max(1);
                if let Some(s) = self.slot(ev.locate) {
                    self.stocks[s].record(width, ev.ts, None, shares as u64, NOBODY);
                }
            }
            Kind::Imbalance {
                paired,
                imbalance,
                direction,
                reference,
                cross_type: b'C',
                ..
            } if ev.locate != 0 => {
                let width = (r.window_ns / BUCKETS as u64).max(1);
                let shares = imbalance.min(i64::MAX as u64) as i64;
                let signed = match direction {
                    b'B' => shares,
                    b'S' => -shares,
                    _ => 0,
                };
                if let Some(s) = self.slot(ev.locate) {
                    self.stocks[s].record_noii(width, ev.ts, paired, signed, reference);
                }
            }
            Kind::Cross {
                price,
                cross_type: b'C',
                ..
            } if ev.locate != 0 => {
                let Some(&s) = self.slot_of.get(ev.locate as usize) else {
                    return;
                };
                if s != NO_SLOT {
                    let px = (price > 0).then_some(price);
                    self.evaluate(r, s as usize, ev.ts, ev.seq, px, ctx, ctx.symbol, out);
                    self.stocks[s as usize].done = true;
                }
            }
            // The end of market hours: closing crosses may still follow (NASDAQ prints them
            // at or just after 16:00); the stocks without one are judged once the watermark is
            // CROSS_GRACE_NS past it, with the window ending at it.
            Kind::System { code: b'M' } if self.market_close.is_none() => {
                self.market_close = Some((ev.ts, ev.seq));
            }
            // The end of system hours or of messages: no cross can follow.
            Kind::System { code: b'E' | b'C' } => {
                let (ts, seq) = self.market_close.unwrap_or((ev.ts, ev.seq));
                self.close_all(r, ts, seq, ctx, out);
            }
            _ => {}
        }
    }
}
