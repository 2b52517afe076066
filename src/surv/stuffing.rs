//! Quote stuffing (abusive messaging) and the order-to-trade ratio.
//!
//! **Quote stuffing** ([`QuoteStuffing`]): bursts of order messages (adds, cancels, replaces)
//! that flood a stock's feed within a fraction of a second — the "excessive messaging" that
//! SEC Rule 15c3-5 market-access controls and ESMA's guidelines on systems and controls
//! (ESMA/2012/122, 'quote stuffing': "entering large numbers of orders and/or cancellations/
//! updates to orders so as to create uncertainty for other participants") name as abusive.
//! Messages are counted in a sliding window ([`QuoteStuffingRules::window_ns`], 100 ms by
//! default) kept as a ring of [`BUCKETS`] fixed sub-buckets, per stock and per (stock,
//! participant). Two triggers, one alert per burst:
//!
//! * **participant**: an attributed participant (MPID, or the account a flow record links the
//!   order to) sends at least [`QuoteStuffingRules::party_min_msgs`] messages in the window, at
//!   least [`QuoteStuffingRules::min_cancel_share`] of them cancels or replaces — adds pulled as
//!   soon as they are shown. The alert names the participant.
//! * **stock**: the stock's messages in the window reach [`QuoteStuffingRules::stock_min_msgs`]
//!   *and* [`QuoteStuffingRules::rate_multiple`] × the stock's own baseline (an exponentially
//!   weighted messages-per-second rate over [`QuoteStuffingRules::baseline_ns`], or over the
//!   shorter [`QuoteStuffingRules::fast_baseline_ns`] when that is higher, scaled to the
//!   window), so a busy stock at its usual pace does not fire, *and* at least
//!   [`QuoteStuffingRules::stock_min_new_share`] of the window's messages are new orders (adds
//!   or replaces: a sweep's cascade of cancels shows none); for one fast horizon after the
//!   stock's opening cross (the pace changes regime at the open) the stock trigger waits. The alert names the participant
//!   of the triggering message when it sent at least half of the window, else nobody (anonymous
//!   flood).
//!
//! A trigger re-arms once the window has fallen below half its floor *and*
//! [`QuoteStuffingRules::cooldown_ns`] has passed since its alert; a participant alert also
//! silences the stock trigger of that burst and the other way round.
//!
//! **Order-to-trade ratio** ([`OrderToTrade`]), after MiFID II RTS 9 (Commission Delegated
//! Regulation (EU) 2017/566, Art. 3 and Annex): per member and per instrument over the trading
//! session, the *number* ratio `(orders + modifications + cancellations) / transactions` and the
//! *volume* ratio `order volume / traded volume`. Here per (stock, participant) for attributed or
//! account-linked orders: adds are orders, replaces modifications, cancels and deletes
//! cancellations, executions of the participant's resting orders transactions. Once the
//! participant has sent [`OrderToTradeRules::min_messages`] messages on the stock, the pair
//! fires once for the session when the number ratio exceeds
//! [`OrderToTradeRules::max_number_ratio`] or the volume ratio exceeds
//! [`OrderToTradeRules::max_volume_ratio`]. A pair without a transaction counts as one
//! (the ratios stay finite).
//!
//! Both keep their state in tables sized at construction (stocks by locate, (stock,
//! participant) pairs in [`KeyedState`]s, participants interned to small ids); a full table is
//! counted in the detector's `full` counter and the event skipped for that key.

use super::range::{self, Key, COUNT, DAY_NS, MULTIPLE};
use super::RuleError;
use super::{
    Alert, Alerts, Capacity, Ctx, Detector, DetectorId, Kind, Party, Severity, SurvEvent, NOBODY,
};
use crate::state::KeyedState;

/// Sub-buckets of the sliding message window.
pub const BUCKETS: usize = 10;

/// Idle time after which a (stock, participant) window is forgotten (its table slot reused).
const PAIR_TTL_NS: u64 = 120_000_000_000;

/// Participants interned to dense ids, so a (stock, participant) pair fits one `u64` key.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Parties {
    ids: KeyedState<u32>,
    #[serde(with = "crate::ckpt::cap")]
    names: Vec<Party>,
    cap: usize,
    /// Participants refused: the table was full, or a hash collided with another participant.
    pub full: u64,
}

impl Parties {
    /// Room for `cap` participants.
    pub(crate) fn new(cap: usize) -> Parties {
        let cap = cap.max(1);
        Parties {
            ids: KeyedState::new(cap, u32::MAX),
            names: Vec::with_capacity(cap),
            cap,
            full: 0,
        }
    }

    /// The id of `p`, assigned on first sight; `None` (counted) when the table is full.
    pub(crate) fn id(&mut self, p: &Party) -> Option<u32> {
        // FNV-1a over the 12 bytes: deterministic, and verified against the stored name.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in p {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        if let Some(&i) = self.ids.get(h, 0) {
            if self.names.get(i as usize) == Some(p) {
                return Some(i);
            }
            self.full += 1;
            return None;
        }
        if self.names.len() >= self.cap {
            self.full += 1;
            return None;
        }
        let i = self.names.len() as u32;
        if self.ids.set(h, 0, i).is_err() {
            self.full += 1;
            return None;
        }
        self.names.push(*p);
        Some(i)
    }
}

/// The key of a (stock, participant) pair.
#[inline]
fn pair_key(locate: u16, party: u32) -> u64 {
    (locate as u64) << 32 | party as u64
}

/// A sliding count of messages and cancels over [`BUCKETS`] sub-buckets of `width` ns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Ring {
    /// Absolute index (`ts / width`) of the newest bucket.
    head: u64,
    /// Bucket width the ring was filled with (a rules change resets it).
    width: u64,
    /// Start of the bucket after the newest (`(head + 1) * width`, saturating): a stamp
    /// before it needs no advance (no division per message).
    end: u64,
    msgs: [u32; BUCKETS],
    cancels: [u32; BUCKETS],
    total: u32,
    total_cancels: u32,
}

const EMPTY_RING: Ring = Ring {
    head: 0,
    width: 0,
    end: 0,
    msgs: [0; BUCKETS],
    cancels: [0; BUCKETS],
    total: 0,
    total_cancels: 0,
};

impl Ring {
    /// Moves the window so its newest bucket holds `ts` (never back: a late stamp counts in the
    /// newest bucket).
    #[inline]
    fn advance(&mut self, ts: u64, width: u64) {
        // Within (or before) the newest bucket: nothing moves.
        if ts < self.end && width == self.width {
            return;
        }
        self.advance_to(ts, width);
    }

    /// [`Ring::advance`] past the newest bucket's end (or to a new width).
    fn advance_to(&mut self, ts: u64, width: u64) {
        let b = ts / width;
        if width != self.width || b >= self.head.saturating_add(BUCKETS as u64) {
            *self = Ring {
                head: b,
                width,
                end: b.saturating_add(1).saturating_mul(width),
                ..EMPTY_RING
            };
            return;
        }
        self.end = b.saturating_add(1).saturating_mul(width);
        while self.head < b {
            self.head += 1;
            let i = (self.head % BUCKETS as u64) as usize;
            self.total -= self.msgs[i];
            self.total_cancels -= self.cancels[i];
            self.msgs[i] = 0;
            self.cancels[i] = 0;
        }
    }

    /// Counts one message (a cancel if `cancel`) in the newest bucket.
    fn count(&mut self, cancel: bool) {
        let i = (self.head % BUCKETS as u64) as usize;
        if self.total == u32::MAX {
            return;
        }
        self.msgs[i] += 1;
        self.total += 1;
        if cancel {
            self.cancels[i] += 1;
            self.total_cancels += 1;
        }
    }

    /// Start time of the oldest non-empty bucket (the burst's first message, to a bucket).
    fn first_ts(&self) -> u64 {
        let oldest = self.head.saturating_sub(BUCKETS as u64 - 1);
        (oldest..=self.head)
            .find(|&b| self.msgs[(b % BUCKETS as u64) as usize] > 0)
            .unwrap_or(self.head)
            * self.width
    }

    fn cancel_share(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.total_cancels as f64 / self.total as f64
        }
    }
}

/// Latch of a trigger: one alert per burst.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Latch {
    /// An alert fired and the trigger has not re-armed.
    fired: bool,
    /// Since the alert, the window fell below half its floor.
    quiet: bool,
    /// Time of the last alert.
    at: u64,
}

impl Latch {
    /// Updates the re-arm state with the window's `count` against `floor`; true if armed.
    fn armed(&mut self, count: u32, floor: u32, ts: u64, cooldown: u64) -> bool {
        if !self.fired {
            return true;
        }
        if count.saturating_mul(2) < floor {
            self.quiet = true;
        }
        if self.quiet && ts.saturating_sub(self.at) >= cooldown {
            self.fired = false;
        }
        !self.fired
    }

    fn fire(&mut self, ts: u64) {
        *self = Latch {
            fired: true,
            quiet: false,
            at: ts,
        };
    }
}

/// Thresholds of `[quote_stuffing]` in the rules file.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuoteStuffingRules {
    /// Run this detector.
    pub enabled: bool,
    /// Length of the sliding message window, ns (default 100 ms: stuffing is a sub-second
    /// flood; ten 10 ms sub-buckets). At most 10 s.
    pub window_ns: u64,
    /// Participant trigger: messages (adds, cancels, replaces) of one participant on one stock
    /// in the window (default 50: 500 per second, against a background MPID's few per second
    /// on the busiest generated stock).
    pub party_min_msgs: u32,
    /// Participant trigger: least share of cancels and replaces among those messages, 0..=1
    /// (default 0.4: an add-then-delete burst runs at 0.5; a participant merely adding many
    /// orders is not stuffing).
    pub min_cancel_share: f64,
    /// Stock trigger: messages on the stock in the window, whoever sent them (default 100:
    /// 1,000 per second, far above a generated stock's busiest pace).
    pub stock_min_msgs: u32,
    /// Stock trigger: the window's messages must also be this multiple of the stock's own
    /// baseline per window (default 5: a stock normally that busy does not fire).
    pub rate_multiple: f64,
    /// Stock trigger: least share of new orders (adds and replaces) among the window's
    /// messages, 0..=1 (default 0.1: a flood shows orders; a sweep's cascade of cancels and
    /// deletes shows none, and is not stuffing).
    pub stock_min_new_share: f64,
    /// Horizon of the stock's baseline rate, ns: an exponentially weighted messages-per-second
    /// average with weight `1 s / baseline_ns` per second (default 60 s).
    pub baseline_ns: u64,
    /// Horizon of the stock's fast baseline, ns: the baseline is the larger of the slow and the
    /// fast average, so a stock whose pace rose (the open, news) is judged against its new
    /// pace within seconds. The stock trigger also waits this long after the stock's opening
    /// (or reopening) cross (default 5 s).
    pub fast_baseline_ns: u64,
    /// After an alert, a trigger re-arms once its window fell below half its floor and this
    /// long has passed, ns (default 2 s: one alert per burst; at most 60 s).
    pub cooldown_ns: u64,
}

impl Default for QuoteStuffingRules {
    fn default() -> Self {
        QuoteStuffingRules {
            enabled: true,
            window_ns: 100_000_000,
            party_min_msgs: 50,
            min_cancel_share: 0.4,
            stock_min_msgs: 100,
            rate_multiple: 5.0,
            stock_min_new_share: 0.1,
            baseline_ns: 60_000_000_000,
            fast_baseline_ns: 5_000_000_000,
            cooldown_ns: 2_000_000_000,
        }
    }
}

impl QuoteStuffingRules {
    /// Its table in the rules file.
    pub const TABLE: &'static str = "quote_stuffing";
    /// Every key with its allowed range.
    pub const KEYS: &'static [Key] = &[
        Key::flag("enabled"),
        Key::int("window_ns", BUCKETS as u64, 10_000_000_000).why("one sub-bucket a ns, to 10 s"),
        Key::int("party_min_msgs", 2, COUNT),
        Key::real("min_cancel_share", 0.0, 1.0),
        Key::int("stock_min_msgs", 2, COUNT),
        Key::real("rate_multiple", 1.0, MULTIPLE),
        Key::real("stock_min_new_share", 0.0, 1.0),
        Key::int("baseline_ns", 1_000_000_000, DAY_NS),
        Key::int("fast_baseline_ns", 1_000_000_000, DAY_NS).why("and at most baseline_ns"),
        Key::int("cooldown_ns", 0, PAIR_TTL_NS / 2)
            .why("idle participant windows are forgotten after twice this"),
    ];

    /// Checks every threshold is in its range, and the fast baseline is the shorter.
    pub fn validate(&self) -> Result<(), RuleError> {
        range::check(Self::TABLE, self, Self::KEYS)?;
        if self.fast_baseline_ns > self.baseline_ns {
            return Err(RuleError::new(
                "fast_baseline_ns",
                format!(
                    "must be at least 1 s and at most baseline_ns ({}), got {}",
                    self.baseline_ns, self.fast_baseline_ns
                ),
            ));
        }
        Ok(())
    }
}

/// A stock's message window and baseline.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct StockRate {
    ring: Ring,
    /// The window's new orders (adds and replaces) alone.
    shown: Ring,
    /// Current second (`ts / 1 s`).
    sec: u64,
    /// Messages in the current second.
    sec_n: u32,
    /// Baseline messages per second (EWMA over past seconds, slow and fast horizons).
    base: f64,
    fast: f64,
    /// The stock trigger waits until then (after an opening cross).
    warm_until: u64,
    latch: Latch,
}

const NEW_STOCK: StockRate = StockRate {
    ring: EMPTY_RING,
    shown: EMPTY_RING,
    sec: 0,
    sec_n: 0,
    base: 0.0,
    fast: 0.0,
    warm_until: 0,
    latch: Latch {
        fired: false,
        quiet: false,
        at: 0,
    },
};

/// A (stock, participant) message window.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct PartyRate {
    ring: Ring,
    latch: Latch,
}

/// The `quote_stuffing` detector's state in one shard.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct QuoteStuffing {
    #[serde(with = "crate::ckpt::cap")]
    stocks: Vec<StockRate>,
    pairs: KeyedState<PartyRate>,
    parties: Parties,
    /// Recent participants' ids, in front of `parties`.
    ids: PartyCache,
    /// Events skipped for a participant because a table was full (pairs or participants).
    pub full: u64,
}

/// Entries of a [`PartyCache`] (a power of two).
const PARTY_CACHE: usize = 256;

/// A direct-mapped cache of participant ids in front of [`Parties`]: a participant seen before
/// costs one multiply and one compare, not a 12-byte FNV hash and a table probe. Only ids
/// [`Parties`] assigned are cached (they never change), so refusals are still counted there.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct PartyCache {
    slots: Box<[(Party, u32)]>,
}

impl PartyCache {
    fn new() -> PartyCache {
        PartyCache {
            // NOBODY is never looked up, so an empty slot never matches.
            slots: vec![(NOBODY, u32::MAX); PARTY_CACHE].into_boxed_slice(),
        }
    }

    /// The id of `p` (not [`NOBODY`]), as [`Parties::id`].
    #[inline]
    fn id(&mut self, parties: &mut Parties, p: &Party) -> Option<u32> {
        let mut lo = [0u8; 8];
        lo.copy_from_slice(&p[..8]);
        let mut hi = [0u8; 4];
        hi.copy_from_slice(&p[8..]);
        let k = u64::from_le_bytes(lo) ^ (u32::from_le_bytes(hi) as u64).rotate_left(29);
        let i =
            (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - PARTY_CACHE.trailing_zeros())) as usize;
        let e = &mut self.slots[i];
        if e.0 == *p {
            return Some(e.1);
        }
        let id = parties.id(p)?;
        *e = (*p, id);
        Some(id)
    }
}

impl QuoteStuffing {
    /// State sized by `cap`.
    pub fn new(cap: &Capacity) -> Self {
        QuoteStuffing {
            stocks: vec![NEW_STOCK; cap.locates],
            pairs: KeyedState::with_ttl(
                cap.pairs.max(1),
                PartyRate {
                    ring: EMPTY_RING,
                    latch: Latch::default(),
                },
                PAIR_TTL_NS,
            ),
            parties: Parties::new(cap.parties),
            ids: PartyCache::new(),
            full: 0,
        }
    }

    /// Tables full so far: pair or participant refusals.
    pub fn overflow(&self) -> u64 {
        self.full + self.parties.full
    }
}

/// The inverse of the index's Fibonacci multiplier (`0x9E37_79B9_7F4A_7C15`) modulo 2^64.
const FIB_INV: u64 = 0xF1DE_83E1_9937_733D;

/// The key of a (stock, participant) pair in `pairs`, chosen so the pair's home bucket in the
/// index (the top bits of `key × FIB`) lies next to its stock's other participants' (bucket
/// `locate × 32 + id`, wrapping): the pairs in use share a few cache lines of the index rather
/// than one random line of a 2 MiB table each. Unique per pair: the low bits of `key × FIB`
/// hold the locate and the id's low bits, the home their rest.
#[inline]
fn local_pair_key(pairs: &KeyedState<PartyRate>, locate: u16, id: u32) -> u64 {
    let bits = pairs.index().buckets().trailing_zeros();
    let shift = 64 - bits;
    let uniq = locate as u64 | (id as u64) << 16;
    let mask = (1u64 << bits) - 1;
    let near = (locate as u64) << 5 | (id as u64 & 31);
    let home = (near ^ (uniq >> shift)) & mask;
    let key = (home << shift | (uniq & ((1u64 << shift) - 1))).wrapping_mul(FIB_INV);
    debug_assert_eq!(pairs.index().home(key) as u64, home);
    key
}

/// A message of a participant's order flow: (party, is a cancel/replace, order ref).
fn order_message(kind: &Kind) -> Option<(Party, bool, u64)> {
    match *kind {
        Kind::Add {
            party, order_ref, ..
        } => Some((party, false, order_ref)),
        Kind::Cancel {
            party, order_ref, ..
        } => Some((party, true, order_ref)),
        Kind::Replace { party, new_ref, .. } => Some((party, true, new_ref)),
        _ => None,
    }
}

/// `">="` if `v` reached `t`, else `"<"`: context metrics say truthfully how they compare.
fn cmp(v: f64, t: f64) -> &'static str {
    if v >= t {
        ">="
    } else {
        "<"
    }
}

impl Detector for QuoteStuffing {
    type Rules = QuoteStuffingRules;
    const ID: DetectorId = DetectorId::QuoteStuffing;

    fn on_event(
        &mut self,
        r: &QuoteStuffingRules,
        ev: &SurvEvent,
        ctx: &Ctx<'_>,
        out: &mut Alerts,
    ) {
        if ev.locate == 0 {
            return;
        }
        if let Kind::Cross { cross_type, .. } = ev.kind {
            self.on_cross(r, ev, cross_type);
            return;
        }
        let Some((party, cancel, order_ref)) = order_message(&ev.kind) else {
            return;
        };
        let width = (r.window_ns / BUCKETS as u64).max(1);
        let QuoteStuffing {
            stocks,
            pairs,
            parties,
            ids,
            full,
        } = self;
        let Some(st) = stocks.get_mut(ev.locate as usize) else {
            return;
        };
        st.on_message(r, ev, cancel, width);
        // The participant's window (one table probe: the live entry is updated in place).
        let mut pair: Option<&mut PartyRate> = None;
        if party != NOBODY {
            match ids.id(parties, &party) {
                Some(id) => match pairs.entry(local_pair_key(pairs, ev.locate, id), ev.ts) {
                    Ok(p) => {
                        p.ring.advance(ev.ts, width);
                        p.ring.count(cancel);
                        pair = Some(p);
                    }
                    Err(_) => *full += 1,
                },
                None => *full += 1,
            }
        }
        let msg = Msg {
            r,
            ev,
            ctx,
            party,
            order_ref,
            window: width * BUCKETS as u64,
        };
        if let Some(p) = pair.as_deref_mut() {
            if let Some(a) = party_trigger(&msg, st, p) {
                out.push(a);
                return;
            }
        }
        if let Some(a) = stock_trigger(&msg, st, pair) {
            out.push(a);
        }
    }
}

impl QuoteStuffing {
    /// After an opening, reopening or IPO cross the stock's pace changes regime: the stock
    /// trigger waits one fast baseline horizon while the baseline catches up.
    fn on_cross(&mut self, r: &QuoteStuffingRules, ev: &SurvEvent, cross_type: u8) {
        if cross_type != b'C' {
            if let Some(st) = self.stocks.get_mut(ev.locate as usize) {
                st.warm_until = ev.ts.saturating_add(r.fast_baseline_ns);
            }
        }
    }
}

impl StockRate {
    /// One order message of the stock: rolls the seconds passed into the baselines' EWMAs and
    /// counts it in the windows (every message, cancels, and new orders shown).
    fn on_message(&mut self, r: &QuoteStuffingRules, ev: &SurvEvent, cancel: bool, width: u64) {
        let sec = ev.ts / 1_000_000_000;
        if sec > self.sec {
            let gap = (sec - self.sec - 1).min(1 << 20) as i32;
            let n = self.sec_n as f64;
            for (b, horizon) in [
                (&mut self.base, r.baseline_ns),
                (&mut self.fast, r.fast_baseline_ns),
            ] {
                let alpha = (1e9 / horizon as f64).min(1.0);
                *b += alpha * (n - *b);
                if gap > 0 {
                    *b *= (1.0 - alpha).powi(gap);
                }
            }
            self.sec = sec;
            self.sec_n = 0;
        }
        self.sec_n = self.sec_n.saturating_add(1);
        self.ring.advance(ev.ts, width);
        self.ring.count(cancel);
        self.shown.advance(ev.ts, width);
        if !matches!(ev.kind, Kind::Cancel { .. }) {
            self.shown.count(false);
        }
    }

    /// The baseline per window and the window's rate against it: only needed to judge a
    /// trigger or write an alert, not on every message.
    fn rates(&self, window: u64) -> (f64, f64) {
        let base_window = self.base.max(self.fast) * window as f64 / 1e9;
        (base_window, self.ring.total as f64 / base_window.max(1.0))
    }
}

/// One order message being judged: the rules, the event, who sent it, the window's length.
struct Msg<'a> {
    r: &'a QuoteStuffingRules,
    ev: &'a SurvEvent,
    ctx: &'a Ctx<'a>,
    party: Party,
    order_ref: u64,
    window: u64,
}

/// The participant trigger: its own window full of messages, most of them cancels.
fn party_trigger(m: &Msg<'_>, st: &mut StockRate, p: &mut PartyRate) -> Option<Alert> {
    let (r, ev) = (m.r, m.ev);
    let msgs = p.ring.total;
    if !p.latch.armed(msgs, r.party_min_msgs, ev.ts, r.cooldown_ns) || msgs < r.party_min_msgs {
        return None;
    }
    let share = p.ring.cancel_share();
    if share < r.min_cancel_share {
        return None;
    }
    p.latch.fire(ev.ts);
    st.latch.fire(ev.ts);
    let stock_msgs = st.ring.total;
    let (base_window, rate_ratio) = st.rates(m.window);
    let per_rate = stock_msgs as f64 / r.rate_multiple;
    Some(
        Alert::new(QuoteStuffing::ID, ev.ts, ev.seq, ev.locate, m.ctx.symbol)
            .party(m.party)
            .severity(Severity::by_ratio(
                msgs as f64 / r.party_min_msgs as f64,
                4.0,
            ))
            .order_ref(m.order_ref)
            .evidence("msgs_in_window", msgs as f64, ">=", r.party_min_msgs as f64)
            .evidence("cancel_share_ratio", share, ">=", r.min_cancel_share)
            .evidence("window_ns", m.window as f64, "<=", r.window_ns as f64)
            .evidence(
                "stock_msgs_in_window",
                stock_msgs as f64,
                cmp(stock_msgs as f64, r.stock_min_msgs as f64),
                r.stock_min_msgs as f64,
            )
            .evidence(
                "baseline_msgs_per_window",
                base_window,
                if base_window <= per_rate { "<=" } else { ">" },
                per_rate,
            )
            .evidence(
                "rate_ratio",
                rate_ratio,
                cmp(rate_ratio, r.rate_multiple),
                r.rate_multiple,
            )
            .touch(ev.after)
            .since(p.ring.first_ts()),
    )
}

/// The stock trigger: the stock's window many times its own baseline rate, with new orders in
/// it (a sweep's cancel cascade alone is not stuffing); names the sender of this message if it
/// sent at least half the window.
fn stock_trigger(m: &Msg<'_>, st: &mut StockRate, pair: Option<&mut PartyRate>) -> Option<Alert> {
    let (r, ev) = (m.r, m.ev);
    let stock_msgs = st.ring.total;
    let armed = st
        .latch
        .armed(stock_msgs, r.stock_min_msgs, ev.ts, r.cooldown_ns);
    if !armed || ev.ts < st.warm_until || stock_msgs < r.stock_min_msgs {
        return None;
    }
    let new_share = st.shown.total as f64 / stock_msgs.max(1) as f64;
    if new_share < r.stock_min_new_share {
        return None;
    }
    let (base_window, rate_ratio) = st.rates(m.window);
    if rate_ratio < r.rate_multiple {
        return None;
    }
    st.latch.fire(ev.ts);
    let mut named = NOBODY;
    let mut share = st.ring.cancel_share();
    if let Some(p) = pair {
        if p.ring.total.saturating_mul(2) >= stock_msgs {
            named = m.party;
            share = p.ring.cancel_share();
            p.latch.fire(ev.ts);
        }
    }
    Some(
        Alert::new(QuoteStuffing::ID, ev.ts, ev.seq, ev.locate, m.ctx.symbol)
            .party(named)
            .severity(Severity::by_ratio(rate_ratio / r.rate_multiple, 4.0))
            .order_ref(m.order_ref)
            .evidence(
                "stock_msgs_in_window",
                stock_msgs as f64,
                ">=",
                r.stock_min_msgs as f64,
            )
            .evidence("rate_ratio", rate_ratio, ">=", r.rate_multiple)
            .evidence(
                "new_order_share_ratio",
                new_share,
                ">=",
                r.stock_min_new_share,
            )
            .evidence(
                "baseline_msgs_per_window",
                base_window,
                "<=",
                stock_msgs as f64 / r.rate_multiple,
            )
            .evidence("window_ns", m.window as f64, "<=", r.window_ns as f64)
            .evidence(
                "cancel_share_ratio",
                share,
                cmp(share, r.min_cancel_share),
                r.min_cancel_share,
            )
            .touch(ev.after)
            .since(st.ring.first_ts()),
    )
}

/// Thresholds of `[order_to_trade]` in the rules file.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrderToTradeRules {
    /// Run this detector.
    pub enabled: bool,
    /// Messages (orders + modifications + cancellations) a participant must have sent on the
    /// stock before its ratios are judged (default 1,000: ratios of a handful of messages say
    /// nothing; a stuffing burst alone sends 400 to 1,600).
    pub min_messages: u32,
    /// Limit of the number ratio `(orders + modifications + cancellations) / transactions`
    /// (default 200: trading venues set RTS 9 limits per instrument, commonly in the hundreds;
    /// background MPIDs on a generated day stay far below it).
    pub max_number_ratio: f64,
    /// Limit of the volume ratio `order volume (shares) / traded volume (shares)`; 0 disables
    /// it (default 0: on ITCH the volume of replaces and resting size inflates it, the number
    /// ratio is the primary RTS 9 measure).
    pub max_volume_ratio: f64,
}

impl Default for OrderToTradeRules {
    fn default() -> Self {
        OrderToTradeRules {
            enabled: true,
            min_messages: 1_000,
            max_number_ratio: 200.0,
            max_volume_ratio: 0.0,
        }
    }
}

impl OrderToTradeRules {
    /// Its table in the rules file.
    pub const TABLE: &'static str = "order_to_trade";
    /// Every key with its allowed range.
    pub const KEYS: &'static [Key] = &[
        Key::flag("enabled"),
        Key::int("min_messages", 1, COUNT),
        Key::real("max_number_ratio", 1.0, MULTIPLE),
        Key::real("max_volume_ratio", 0.0, MULTIPLE).why("0 disables it"),
    ];

    /// Checks every threshold is in its range.
    pub fn validate(&self) -> Result<(), RuleError> {
        range::check(Self::TABLE, self, Self::KEYS)
    }
}

/// A (stock, participant)'s session counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Counts {
    orders: u32,
    mods: u32,
    cancels: u32,
    trades: u32,
    order_volume: u64,
    traded_volume: u64,
    first_ts: u64,
    fired: bool,
}

impl Counts {
    fn messages(&self) -> u64 {
        self.orders as u64 + self.mods as u64 + self.cancels as u64
    }

    fn number_ratio(&self) -> f64 {
        self.messages() as f64 / self.trades.max(1) as f64
    }

    fn volume_ratio(&self) -> f64 {
        self.order_volume as f64 / self.traded_volume.max(1) as f64
    }
}

/// A bucket of [`OrderToTradePairs`]: the key beside its counts, aligned so a probe reads one
/// cache line (56 bytes unaligned would straddle two lines in most buckets).
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
#[repr(align(64))]
struct OrderToTradeSlot {
    /// [`pair_key`] (never 0: stock locates start at 1); 0 = empty.
    key: u64,
    counts: Counts,
}

/// The (stock, participant) counts of [`OrderToTrade`]: open addressing (linear probing) over
/// twice as many buckets as entries allowed, the key stored beside its counts. Entries are kept
/// for the session (never removed), so a new key is refused once `cap` are held — as a
/// [`KeyedState`] of that capacity without TTL, at one cache line per lookup instead of three
/// arrays.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct OrderToTradePairs {
    slots: Box<[OrderToTradeSlot]>,
    shift: u32,
    mask: usize,
    len: usize,
    cap: usize,
}

impl OrderToTradePairs {
    fn new(cap: usize) -> Self {
        let cap = cap.max(1);
        let n = (cap.next_power_of_two() * 2).max(2);
        OrderToTradePairs {
            slots: vec![OrderToTradeSlot::default(); n].into_boxed_slice(),
            shift: 64 - n.trailing_zeros(),
            mask: n - 1,
            len: 0,
            cap,
        }
    }

    /// The bucket holding `key`, or the empty one where it would go.
    #[inline]
    fn find(&self, key: u64) -> usize {
        let mut i = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize;
        loop {
            let k = self.slots[i].key;
            if k == key || k == 0 {
                return i;
            }
            i = (i + 1) & self.mask;
        }
    }

    fn get(&self, key: u64) -> Option<&Counts> {
        if key == 0 {
            return None;
        }
        let s = &self.slots[self.find(key)];
        (s.key == key).then_some(&s.counts)
    }

    /// The counts of `key` (`key != 0`), new ones zero; `None` when new and the table is full.
    #[inline]
    fn entry(&mut self, key: u64) -> Option<&mut Counts> {
        let i = self.find(key);
        if self.slots[i].key == 0 {
            if self.len >= self.cap {
                return None;
            }
            self.len += 1;
            self.slots[i] = OrderToTradeSlot {
                key,
                counts: Counts::default(),
            };
        }
        Some(&mut self.slots[i].counts)
    }
}

/// The `order_to_trade` detector's state in one shard.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct OrderToTrade {
    pairs: OrderToTradePairs,
    parties: Parties,
    /// The last participant looked up and its id (participants repeat from event to event; ids
    /// never change once given).
    last: (Party, u32),
    /// Events skipped because a table was full (pairs or participants).
    pub full: u64,
}

impl OrderToTrade {
    /// State sized by `cap`.
    pub fn new(cap: &Capacity) -> Self {
        OrderToTrade {
            pairs: OrderToTradePairs::new(cap.pairs),
            parties: Parties::new(cap.parties),
            last: (NOBODY, u32::MAX),
            full: 0,
        }
    }

    /// The id of `party` (as [`Parties::id`], the last one remembered).
    #[inline]
    fn party_id(&mut self, party: &Party) -> Option<u32> {
        if self.last.1 != u32::MAX && self.last.0 == *party {
            return Some(self.last.1);
        }
        let id = self.parties.id(party)?;
        self.last = (*party, id);
        Some(id)
    }

    /// Tables full so far: pair or participant refusals.
    pub fn overflow(&self) -> u64 {
        self.full + self.parties.full
    }

    /// The session's number and volume ratios of (`locate`, `party`), if it is followed.
    pub fn ratios(&mut self, locate: u16, party: &Party) -> Option<(f64, f64)> {
        let id = self.party_id(party)?;
        let c = self.pairs.get(pair_key(locate, id))?;
        Some((c.number_ratio(), c.volume_ratio()))
    }
}

impl Detector for OrderToTrade {
    type Rules = OrderToTradeRules;
    const ID: DetectorId = DetectorId::OrderToTrade;

    fn on_event(&mut self, r: &OrderToTradeRules, ev: &SurvEvent, ctx: &Ctx<'_>, out: &mut Alerts) {
        let party = ev.party();
        if party == NOBODY || ev.locate == 0 {
            return;
        }
        let Some(id) = self.party_id(&party) else {
            self.full += 1;
            return;
        };
        let Some(c) = self.pairs.entry(pair_key(ev.locate, id)) else {
            self.full += 1;
            return;
        };
        if c.first_ts == 0 {
            c.first_ts = ev.ts;
        }
        match ev.kind {
            Kind::Add { shares, .. } => {
                c.orders = c.orders.saturating_add(1);
                c.order_volume += shares as u64;
            }
            Kind::Replace { shares, .. } => {
                c.mods = c.mods.saturating_add(1);
                c.order_volume += shares as u64;
            }
            Kind::Cancel { .. } => c.cancels = c.cancels.saturating_add(1),
            Kind::Exec { shares, .. } => {
                c.trades = c.trades.saturating_add(1);
                c.traded_volume += shares as u64;
                return; // a fill lowers the ratios: nothing to judge
            }
            _ => return,
        }
        if c.fired || c.messages() < r.min_messages as u64 {
            return;
        }
        let number = c.number_ratio();
        let volume = c.volume_ratio();
        let over_number = number > r.max_number_ratio;
        let over_volume = r.max_volume_ratio > 0.0 && volume > r.max_volume_ratio;
        if !(over_number || over_volume) {
            return;
        }
        c.fired = true;
        let worst = (number / r.max_number_ratio).max(if r.max_volume_ratio > 0.0 {
            volume / r.max_volume_ratio
        } else {
            0.0
        });
        let mut a = Alert::new(Self::ID, ev.ts, ev.seq, ev.locate, ctx.symbol)
            .party(party)
            .severity(Severity::by_ratio(worst, 4.0));
        // The ratios that fired are tests; the other (or a disabled one) is context.
        a = if over_number {
            a.evidence("number_ratio", number, ">", r.max_number_ratio)
        } else {
            a.context("number_ratio", number)
        };
        a = if over_volume {
            a.evidence("volume_ratio", volume, ">", r.max_volume_ratio)
        } else {
            a.context("volume_ratio", volume)
        };
        out.push(
            a.evidence("messages", c.messages() as f64, ">=", r.min_messages as f64)
                .context("orders", c.orders as f64)
                .context("modifications", c.mods as f64)
                .context("cancellations", c.cancels as f64)
                .context("trades", c.trades as f64)
                .context("traded_shares", c.traded_volume as f64)
                .touch(ev.after)
                .since(c.first_ts),
        );
    }
}
