//! Abnormal price and volume moves, and locked or crossed books standing too long.
//!
//! **Abnormal move** ([`AbnormalMove`]), the market-monitoring screens exchanges and regulators
//! run on every instrument (price and volume alerts of MAR Art. 16 surveillance; the
//! "unusual price/volume movement" alerts of FINRA/NASDAQ market watch). Per stock, on every
//! continuous-session trade (printable executions and hidden prints; crosses are auctions and
//! are left out), three screens:
//!
//! * **return z-score**: the trade-to-trade return in basis points against the stock's rolling
//!   mean and standard deviation (Welford accumulators over two panes of
//!   [`AbnormalMoveRules::pane_samples`] returns: the baseline is the last one to two panes),
//!   after [`AbnormalMoveRules::min_samples`] returns; fires when `|z|` reaches
//!   [`AbnormalMoveRules::z_threshold`] and the return is at least
//!   [`AbnormalMoveRules::min_return_bps`] (a z-score alone on a very steady stock is no move).
//! * **price jump**: a trade at least [`AbnormalMoveRules::jump_bps`] beyond the touch the
//!   previous trade met (printed within [`AbnormalMoveRules::jump_window_ns`]; from the previous
//!   price when that book was one-sided), or beyond the touch of the book it met itself (a
//!   non-displayed print far outside the book). Spread-aware: trades between a thin, wide
//!   book's bid and ask — its bid-ask bounce — are no jump, however wide the spread.
//! * **volume spike**: the traded shares of the current [`AbnormalMoveRules::volume_window_ns`]
//!   window reach [`AbnormalMoveRules::min_volume_shares`] and
//!   [`AbnormalMoveRules::volume_multiple`] × the stock's rolling mean per window (windows
//!   without trades count as zero), after [`AbnormalMoveRules::min_volume_windows`] windows.
//!
//! One alert per event names every screen that fired; then the stock is quiet for
//! [`AbnormalMoveRules::cooldown_ns`].
//!
//! **Locked or crossed book** ([`LockedCrossed`]): the stock's best bid at or above its best
//! offer with both sides quoted (Reg NMS Rule 610(d) requires venues to avoid locking and
//! crossing quotations; on one venue's book it means a stale or broken feed). Fires once per
//! episode when it has stood [`LockedCrossedRules::standing_ns`] in event time, checked on the
//! stock's next events and at watermark marks over the stocks currently locked only (the
//! watermark, the same for every worker, is the clock: the result does not depend on how stocks
//! are sharded).

use super::range::{self, Key, BPS, COUNT, DAY_NS, MULTIPLE, VOLUME};
use super::RuleError;
use super::{Alert, Alerts, Capacity, Ctx, Detector, DetectorId, Kind, Severity, SurvEvent};
use crate::agg::{Touch, Welford};

/// Thresholds of `[abnormal_move]` in the rules file.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AbnormalMoveRules {
    /// Run this detector.
    pub enabled: bool,
    /// Returns a stock needs before its z-score is judged (default 100: a stable spread
    /// estimate).
    pub min_samples: u64,
    /// Returns per pane of the rolling baseline (default 1,000: the baseline covers the last
    /// 1,000-2,000 trades, so it follows the stock's regime through the day).
    pub pane_samples: u64,
    /// `|z|` of a trade-to-trade return that fires (default 8: bid-ask bounce makes returns
    /// fat-tailed; 8 standard deviations is far beyond it).
    pub z_threshold: f64,
    /// Least `|return|` for the z-score screen, bps (default 100: one percent between two
    /// trades).
    pub min_return_bps: f64,
    /// A price jump, bps beyond the touch the previous trade met (within `jump_window_ns`) or
    /// beyond the touch before the trade (default 500: five percent at once).
    pub jump_bps: f64,
    /// The previous trade counts for the jump screen if this recent, ns (default 1 s: a stock
    /// that has not traded for a while may open a gap legitimately).
    pub jump_window_ns: u64,
    /// Volume window, ns (default 1 s).
    pub volume_window_ns: u64,
    /// Least traded shares in one window for a volume spike (default 20,000: the busiest
    /// generated stocks trade a few hundred shares a second).
    pub min_volume_shares: u64,
    /// The window's volume must be this multiple of the stock's mean per window (default 20).
    pub volume_multiple: f64,
    /// Windows of history needed before the volume screen runs (default 30).
    pub min_volume_windows: u64,
    /// After an alert the stock is quiet this long, ns (default 60 s).
    pub cooldown_ns: u64,
}

impl Default for AbnormalMoveRules {
    fn default() -> Self {
        AbnormalMoveRules {
            enabled: true,
            min_samples: 100,
            pane_samples: 1_000,
            z_threshold: 8.0,
            min_return_bps: 100.0,
            jump_bps: 500.0,
            jump_window_ns: 1_000_000_000,
            volume_window_ns: 1_000_000_000,
            min_volume_shares: 20_000,
            volume_multiple: 20.0,
            min_volume_windows: 30,
            cooldown_ns: 60_000_000_000,
        }
    }
}

impl AbnormalMoveRules {
    /// Its table in the rules file.
    pub const TABLE: &'static str = "abnormal_move";
    /// Every key with its allowed range.
    pub const KEYS: &'static [Key] = &[
        Key::flag("enabled"),
        Key::int("min_samples", 2, COUNT).why("and at most two panes, 2 x pane_samples"),
        Key::int("pane_samples", 2, COUNT),
        Key::above("z_threshold", 0.0, MULTIPLE),
        Key::above("min_return_bps", 0.0, BPS),
        Key::above("jump_bps", 0.0, BPS),
        Key::int("jump_window_ns", 1, DAY_NS),
        Key::int("volume_window_ns", 1, DAY_NS),
        Key::int("min_volume_shares", 1, VOLUME),
        Key::real("volume_multiple", 1.0, MULTIPLE),
        Key::int("min_volume_windows", 0, COUNT),
        Key::int("cooldown_ns", 0, DAY_NS),
    ];

    /// Checks every threshold is in its range, and the samples needed fit the baseline.
    pub fn validate(&self) -> Result<(), RuleError> {
        range::check(Self::TABLE, self, Self::KEYS)?;
        if self.min_samples > 2 * self.pane_samples {
            return Err(RuleError::new(
                "min_samples",
                format!(
                    "({}) cannot exceed two panes (2 x pane_samples = {})",
                    self.min_samples,
                    2 * self.pane_samples
                ),
            ));
        }
        Ok(())
    }
}

/// A stock's price and volume history.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct PriceState {
    /// Previous trade price (0: none yet) and time.
    last_px: u32,
    last_ts: u64,
    /// The two-sided touch before the previous trade (0, 0: one-sided or none): a jump is
    /// measured beyond it, so a bounce between a wide book's bid and ask is no jump.
    ref_bid: u32,
    ref_ask: u32,
    /// Returns, bps: current and previous pane.
    ret: [Welford; 2],
    /// Current volume window (absolute index), its shares, and per-window volumes (panes).
    vol_win: u64,
    vol_cur: u64,
    vol: [Welford; 2],
    /// Last alert (`None` before the first).
    alerted: Option<u64>,
}

const NEW_PRICE: PriceState = PriceState {
    last_px: 0,
    last_ts: 0,
    ref_bid: 0,
    ref_ask: 0,
    ret: [Welford::EMPTY; 2],
    vol_win: 0,
    vol_cur: 0,
    vol: [Welford::EMPTY; 2],
    alerted: None,
};

/// Adds `w` to the two-pane accumulator, starting a new pane when the current one is full.
fn pane_add(p: &mut [Welford; 2], w: &Welford, pane: u64) {
    p[0].merge(w);
    if p[0].n >= pane {
        p[1] = p[0];
        p[0] = Welford::EMPTY;
    }
}

fn panes(p: &[Welford; 2]) -> Welford {
    let mut all = p[1];
    all.merge(&p[0]);
    all
}

/// The `abnormal_move` detector's state in one shard.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct AbnormalMove {
    #[serde(with = "crate::ckpt::cap")]
    stocks: Vec<PriceState>,
}

impl AbnormalMove {
    /// State sized by `cap`.
    pub fn new(cap: &Capacity) -> Self {
        AbnormalMove {
            stocks: vec![NEW_PRICE; cap.locates],
        }
    }
}

/// `(a - b) / b` in bps.
fn bps(a: f64, b: f64) -> f64 {
    (a - b) / b * 10_000.0
}

/// How far `px` printed beyond the touch `bid`..`ask` (both > 0), bps of the side passed;
/// 0 inside it.
fn beyond(px: f64, bid: u32, ask: u32) -> f64 {
    if px > ask as f64 {
        bps(px, ask as f64)
    } else if px < bid as f64 {
        -bps(px, bid as f64)
    } else {
        0.0
    }
}

impl Detector for AbnormalMove {
    type Rules = AbnormalMoveRules;
    const ID: DetectorId = DetectorId::AbnormalMove;

    fn on_event(&mut self, r: &AbnormalMoveRules, ev: &SurvEvent, ctx: &Ctx<'_>, out: &mut Alerts) {
        if matches!(ev.kind, Kind::Cross { .. }) || ev.locate == 0 {
            return;
        }
        let Some((price, shares)) = ev.trade() else {
            return;
        };
        let Some(s) = self.stocks.get_mut(ev.locate as usize) else {
            return;
        };
        if price == 0 {
            return;
        }
        let px = price as f64;

        // Volume: close the windows passed (empty ones count as zero), then add this trade.
        let win = ev.ts / r.volume_window_ns;
        if s.last_px == 0 {
            s.vol_win = win;
        } else if win > s.vol_win {
            let mut closed = Welford::EMPTY;
            closed.add(s.vol_cur as f64);
            pane_add(&mut s.vol, &closed, r.pane_samples);
            let empty = (win - s.vol_win - 1).min(r.pane_samples);
            if empty > 0 {
                let zeros = Welford {
                    n: empty,
                    mean: 0.0,
                    m2: 0.0,
                };
                pane_add(&mut s.vol, &zeros, r.pane_samples);
            }
            s.vol_win = win;
            s.vol_cur = 0;
        }
        s.vol_cur = s.vol_cur.saturating_add(shares);

        // Screens.
        let mut ret_hit: Option<(f64, f64, u64)> = None;
        let mut jump_hit: Option<(f64, u64)> = None;
        let mut mid_hit: Option<f64> = None;
        let mut vol_hit: Option<(u64, f64)> = None;
        let mut ret = None;
        if s.last_px > 0 {
            let r_bps = bps(px, s.last_px as f64);
            ret = Some(r_bps);
            let base = panes(&s.ret);
            if base.n >= r.min_samples && r_bps.abs() >= r.min_return_bps {
                if let Some(z) = base.z(r_bps) {
                    if z.abs() >= r.z_threshold {
                        ret_hit = Some((z, r_bps, base.n));
                    }
                }
            }
            // From the touch the previous trade met (from its price if the book was
            // one-sided): a wide book's bid-ask bounce moves nothing beyond it.
            let dt = ev.ts.saturating_sub(s.last_ts);
            let j = if s.ref_bid > 0 && s.ref_ask > 0 {
                beyond(px, s.ref_bid, s.ref_ask)
            } else {
                r_bps.abs()
            };
            if dt <= r.jump_window_ns && j >= r.jump_bps {
                jump_hit = Some((j, dt));
            }
        }
        let two_sided = ev.before.bid_shares > 0 && ev.before.ask_shares > 0;
        if two_sided && ev.before.bid > 0 && ev.before.ask > 0 {
            // Printed through the touch it met (a non-displayed order far outside the book).
            let t = beyond(px, ev.before.bid, ev.before.ask);
            if t >= r.jump_bps {
                mid_hit = Some(t);
            }
        }
        let vol_base = panes(&s.vol);
        if vol_base.n >= r.min_volume_windows && s.vol_cur >= r.min_volume_shares {
            let ratio = s.vol_cur as f64 / vol_base.mean.max(1.0);
            if ratio >= r.volume_multiple {
                vol_hit = Some((s.vol_cur, ratio));
            }
        }
        if let Some(r_bps) = ret {
            let mut one = Welford::EMPTY;
            one.add(r_bps);
            pane_add(&mut s.ret, &one, r.pane_samples);
        }
        let since_prev = s.last_ts;
        s.last_px = price;
        s.last_ts = ev.ts;
        (s.ref_bid, s.ref_ask) = if two_sided {
            (ev.before.bid, ev.before.ask)
        } else {
            (0, 0)
        };

        let hits = ret_hit.is_some() as u8
            + (jump_hit.is_some() || mid_hit.is_some()) as u8
            + vol_hit.is_some() as u8;
        if hits == 0 {
            return;
        }
        if s.alerted
            .is_some_and(|t| ev.ts.saturating_sub(t) < r.cooldown_ns)
        {
            return;
        }
        s.alerted = Some(ev.ts);
        let mut a = Alert::new(Self::ID, ev.ts, ev.seq, ev.locate, ctx.symbol)
            .touch(ev.after)
            .severity(if hits > 1 {
                Severity::High
            } else {
                Severity::Medium
            });
        if let Kind::Exec { order_ref, .. } = ev.kind {
            a = a.order_ref(order_ref);
        }
        if let Some((z, r_bps, n)) = ret_hit {
            a = a
                .evidence("return_z", z.abs(), ">=", r.z_threshold)
                .evidence("return_bps", r_bps, ">=", r.min_return_bps)
                .evidence("samples", n as f64, ">=", r.min_samples as f64)
                .since(since_prev);
        }
        if let Some((j, dt)) = jump_hit {
            a = a
                .evidence("jump_bps", j, ">=", r.jump_bps)
                .evidence(
                    "since_prev_trade_ns",
                    dt as f64,
                    "<=",
                    r.jump_window_ns as f64,
                )
                .since(since_prev);
        }
        if let Some(m) = mid_hit {
            a = a.evidence("through_touch_bps", m, ">=", r.jump_bps);
        }
        if let Some((v, ratio)) = vol_hit {
            a = a
                .evidence(
                    "window_volume_shares",
                    v as f64,
                    ">=",
                    r.min_volume_shares as f64,
                )
                .evidence("volume_ratio", ratio, ">=", r.volume_multiple)
                .since(win * r.volume_window_ns);
        }
        out.push(a);
    }
}

/// Thresholds of `[locked_crossed]` in the rules file.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LockedCrossedRules {
    /// Run this detector.
    pub enabled: bool,
    /// How long a book must stand locked or crossed to fire, ns (default 1 s: arbitrage and
    /// the matching engine clear a real lock within milliseconds; one standing a second is a
    /// broken or stale book).
    pub standing_ns: u64,
}

impl Default for LockedCrossedRules {
    fn default() -> Self {
        LockedCrossedRules {
            enabled: true,
            standing_ns: 1_000_000_000,
        }
    }
}

impl LockedCrossedRules {
    /// Its table in the rules file.
    pub const TABLE: &'static str = "locked_crossed";
    /// Every key with its allowed range.
    pub const KEYS: &'static [Key] = &[
        Key::flag("enabled"),
        Key::int("standing_ns", 1, DAY_NS).why("0 would fire on every lock at once"),
    ];

    /// Checks every threshold is in its range.
    pub fn validate(&self) -> Result<(), RuleError> {
        range::check(Self::TABLE, self, Self::KEYS)
    }
}

const NOT_LOCKED: u64 = u64::MAX;

/// The `locked_crossed` detector's state in one shard.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct LockedCrossed {
    /// Per locate: when the current lock began ([`NOT_LOCKED`]: none).
    #[serde(with = "crate::ckpt::cap")]
    since: Vec<u64>,
    /// Per locate: the current lock has fired.
    #[serde(with = "crate::ckpt::cap")]
    fired: Vec<bool>,
    /// Per locate: its index in `active`.
    #[serde(with = "crate::ckpt::cap")]
    pos: Vec<u32>,
    /// Locates currently locked or crossed (capacity: every locate; never grows).
    #[serde(with = "crate::ckpt::cap")]
    active: Vec<u16>,
}

impl LockedCrossed {
    /// State sized by `cap`.
    pub fn new(cap: &Capacity) -> Self {
        LockedCrossed {
            since: vec![NOT_LOCKED; cap.locates],
            fired: vec![false; cap.locates],
            pos: vec![u32::MAX; cap.locates],
            active: Vec::with_capacity(cap.locates),
        }
    }

    /// Stocks locked or crossed now.
    pub fn active(&self) -> usize {
        self.active.len()
    }

    fn unlock(&mut self, l: usize) {
        let i = self.pos[l] as usize;
        self.active.swap_remove(i);
        if let Some(&moved) = self.active.get(i) {
            self.pos[moved as usize] = i as u32;
        }
        self.pos[l] = u32::MAX;
        self.since[l] = NOT_LOCKED;
        self.fired[l] = false;
    }
}

fn locked(t: &Touch) -> bool {
    t.bid_shares > 0 && t.ask_shares > 0 && t.bid >= t.ask
}

/// The alert of a lock of `locate` that began at `since`, judged at `now`.
#[allow(clippy::too_many_arguments)]
fn lock_alert(
    r: &LockedCrossedRules,
    now: u64,
    seq: u32,
    locate: u16,
    symbol: [u8; 8],
    since: u64,
    t: Touch,
) -> Alert {
    let standing = now.saturating_sub(since);
    let mid = (t.bid as f64 + t.ask as f64) / 2.0;
    let spread_bps = if mid > 0.0 {
        (t.ask as f64 - t.bid as f64) / mid * 10_000.0
    } else {
        0.0
    };
    Alert::new(DetectorId::LockedCrossed, now, seq, locate, symbol)
        .severity(Severity::by_ratio(
            standing as f64 / r.standing_ns as f64,
            10.0,
        ))
        .evidence("standing_ns", standing as f64, ">=", r.standing_ns as f64)
        .evidence("spread_bps", spread_bps, "<=", 0.0)
        .evidence(
            if t.bid == t.ask { "locked" } else { "crossed" },
            1.0,
            "==",
            1.0,
        )
        .touch(t)
        .since(since)
}

impl Detector for LockedCrossed {
    type Rules = LockedCrossedRules;
    const ID: DetectorId = DetectorId::LockedCrossed;

    fn on_event(
        &mut self,
        r: &LockedCrossedRules,
        ev: &SurvEvent,
        ctx: &Ctx<'_>,
        out: &mut Alerts,
    ) {
        let l = ev.locate as usize;
        if ev.locate == 0 || l >= self.since.len() {
            return;
        }
        let since = self.since[l];
        // The book stood locked (as `before`) until this event.
        if since != NOT_LOCKED && !self.fired[l] && ev.ts.saturating_sub(since) >= r.standing_ns {
            self.fired[l] = true;
            out.push(lock_alert(
                r, ev.ts, ev.seq, ev.locate, ctx.symbol, since, ev.before,
            ));
        }
        match (since != NOT_LOCKED, locked(&ev.after)) {
            (false, true) => {
                self.since[l] = ev.ts;
                self.fired[l] = false;
                self.pos[l] = self.active.len() as u32;
                self.active.push(ev.locate);
            }
            (true, false) => self.unlock(l),
            _ => {}
        }
    }

    fn on_watermark(
        &mut self,
        r: &LockedCrossedRules,
        wm: u64,
        seq: u32,
        ctx: &Ctx<'_>,
        out: &mut Alerts,
    ) {
        // The end-of-feed marks carry no time (and a lock standing by the last real mark has
        // fired there already).
        if wm >= u64::MAX - 1 {
            return;
        }
        let now = wm;
        for i in 0..self.active.len() {
            let locate = self.active[i];
            let l = locate as usize;
            let since = self.since[l];
            if self.fired[l] || now.saturating_sub(since) < r.standing_ns || now < since {
                continue;
            }
            self.fired[l] = true;
            let symbol = ctx.books.symbol(locate).copied().unwrap_or([b' '; 8]);
            out.push(lock_alert(
                r,
                now,
                seq,
                locate,
                symbol,
                since,
                Touch::of(ctx.books, locate),
            ));
        }
    }
}
