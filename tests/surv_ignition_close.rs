//! Momentum ignition and marking the close on hand-made ITCH feeds: shapes that must fire (with
//! the participant and evidence checked) and near misses that must not.

mod common;

use tickwatch::agg::Touch;
use tickwatch::book::{BookConfig, Books};
use tickwatch::itch::be::{BeU32, BeU64};
use tickwatch::itch::encode::{common_stock, header, push_frame};
use tickwatch::itch::wire::*;
use tickwatch::itch::Side;
use tickwatch::surv::close::MarkingTheClose;
use tickwatch::surv::event::party_of_mpid;
use tickwatch::surv::ignition::MomentumIgnition;
use tickwatch::surv::{
    surveil_feed, Alert, Alerts, Capacity, Ctx, Detector, DetectorId, Kind, Rules, SurvEvent,
    NOBODY,
};

#[global_allocator]
static GLOBAL: common::Counting = common::Counting;

const SEC: u64 = 1_000_000_000;
const OPEN: u64 = 34_200 * SEC;
const SYM: [u8; 8] = *b"IGN     ";

/// Builds a feed of one stock (locate 1).
struct Feed {
    buf: Vec<u8>,
    next_ref: u64,
    next_match: u64,
    /// NOIIs to write, in time order, each before the first message at or after its time.
    noiis: std::collections::VecDeque<NoiiAt>,
}

/// A NOII of stock 1 (Price(4) prices).
#[derive(Clone, Copy, Debug)]
struct NoiiAt {
    ts: u64,
    paired: u64,
    imbalance: u64,
    direction: u8,
    reference: u32,
    cross_type: u8,
}

impl Feed {
    fn new() -> Feed {
        Feed::new_with(false)
    }

    /// A feed of one stock; with `premarket`, trading from 04:00 whose last five minutes before
    /// the 09:30 start of market hours are heavy buying that lifts the price 30 cents.
    fn new_with(premarket: bool) -> Feed {
        let mut f = Feed {
            buf: Vec::new(),
            next_ref: 1,
            next_match: 1,
            noiis: Default::default(),
        };
        f.system(b'O', 3 * 3600 * SEC);
        let m = common_stock(1, 3 * 3600 * SEC + 1, SYM);
        push_frame(&mut f.buf, &m);
        if premarket {
            f.system(b'S', 4 * 3600 * SEC);
            let mut t = 4 * 3600 * SEC + SEC;
            let mut i = 0;
            while t < OPEN - 300 * SEC {
                let (side, px) = if i % 2 == 0 {
                    (b'B', 999)
                } else {
                    (b'S', 1001)
                };
                f.print(t, side, c(px), 100, None);
                t += 60 * SEC;
                i += 1;
            }
            for k in 0..30u32 {
                f.print(
                    t + k as u64 * 9 * SEC,
                    b'S',
                    c(1001 + k),
                    3000,
                    Some(b"MSCO"),
                );
            }
        }
        f.system(b'Q', OPEN);
        f
    }

    /// Writes the scheduled NOIIs due at or before `ts`.
    fn noiis_until(&mut self, ts: u64) {
        while self.noiis.front().is_some_and(|n| n.ts <= ts) {
            let Some(n) = self.noiis.pop_front() else {
                break;
            };
            let m = Noii {
                hdr: header(b'I', 1, 0, n.ts),
                paired_shares: BeU64::new(n.paired),
                imbalance_shares: BeU64::new(n.imbalance),
                imbalance_direction: n.direction,
                stock: SYM,
                far_price: BeU32::new(n.reference),
                near_price: BeU32::new(n.reference),
                current_reference_price: BeU32::new(n.reference),
                cross_type: n.cross_type,
                price_variation_indicator: b'L',
            };
            push_frame(&mut self.buf, &m);
        }
    }

    fn system(&mut self, code: u8, ts: u64) {
        self.noiis_until(ts);
        let m = SystemEvent {
            hdr: header(b'S', 0, 0, ts),
            event_code: code,
        };
        push_frame(&mut self.buf, &m);
    }

    /// Adds an order (attributed to `mpid` if given); returns its reference.
    fn add(&mut self, ts: u64, side: u8, price: u32, shares: u32, mpid: Option<&[u8; 4]>) -> u64 {
        self.noiis_until(ts);
        let r = self.next_ref;
        self.next_ref += 1;
        match mpid {
            Some(m) => push_frame(
                &mut self.buf,
                &AddOrderMpid {
                    hdr: header(b'F', 1, 0, ts),
                    order_ref: BeU64::new(r),
                    side,
                    shares: BeU32::new(shares),
                    stock: SYM,
                    price: BeU32::new(price),
                    attribution: *m,
                },
            ),
            None => push_frame(
                &mut self.buf,
                &AddOrder {
                    hdr: header(b'A', 1, 0, ts),
                    order_ref: BeU64::new(r),
                    side,
                    shares: BeU32::new(shares),
                    stock: SYM,
                    price: BeU32::new(price),
                },
            ),
        }
        r
    }

    fn exec(&mut self, ts: u64, order_ref: u64, shares: u32) {
        let m = OrderExecuted {
            hdr: header(b'E', 1, 0, ts),
            order_ref: BeU64::new(order_ref),
            executed_shares: BeU32::new(shares),
            match_number: BeU64::new(self.next_match),
        };
        self.next_match += 1;
        push_frame(&mut self.buf, &m);
    }

    /// A resting order added and at once executed: a trade at `price` whose aggressor took
    /// `side` (the resting side).
    fn print(&mut self, ts: u64, side: u8, price: u32, shares: u32, mpid: Option<&[u8; 4]>) -> u64 {
        let r = self.add(ts, side, price, shares, mpid);
        self.exec(ts, r, shares);
        r
    }

    fn cross(&mut self, ts: u64, price: u32, shares: u64) {
        self.cross_of(ts, price, shares, b'C');
    }

    fn cross_of(&mut self, ts: u64, price: u32, shares: u64, cross_type: u8) {
        self.noiis_until(ts);
        let m = CrossTrade {
            hdr: header(b'Q', 1, 0, ts),
            shares: BeU64::new(shares),
            stock: SYM,
            cross_price: BeU32::new(price),
            match_number: BeU64::new(self.next_match),
            cross_type,
        };
        self.next_match += 1;
        push_frame(&mut self.buf, &m);
    }

    fn run(&self, rules: Rules, det: DetectorId) -> Vec<Alert> {
        let mut books = Books::new(BookConfig::for_orders(1 << 14, 4));
        let (alerts, _) = surveil_feed(&self.buf, &mut books, rules, &[], 1024).expect("feed");
        alerts.into_iter().filter(|a| a.detector == det).collect()
    }
}

/// Whether the alert carries metric `name` (context that was not measured is left out).
fn has(a: &Alert, name: &str) -> bool {
    a.evidence_list().iter().any(|e| e.name == name)
}

fn ev(a: &Alert, name: &str) -> f64 {
    a.evidence_list()
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("evidence {name} missing"))
        .value
}

// ---------------------------------------------------------------------------------------------
// Momentum ignition

/// Cents → Price(4).
fn c(cents: u32) -> u32 {
    cents * 100
}

struct Ign {
    /// P's orders are executed near the peak.
    party_at_peak: bool,
    /// Cents the twelve trades of the burst climb.
    climb: u32,
    /// Base price, cents.
    base: u32,
    /// The price falls back after the peak.
    revert: bool,
    /// The mirror image: P rests buys below, a sell-off, a rebound.
    down: bool,
    /// After P's fills, a small order of another firm is executed one cent beyond them.
    small_beyond: bool,
    /// Price(4) per price step (100: a cent; 1: $0.0001, the tick below $1.00).
    unit: u32,
    /// Time between the burst's trades, ns.
    spacing: u64,
    /// Shares of each trade of the burst.
    burst_shares: u32,
    /// Shares of each of P's three orders.
    party_shares: u32,
}

/// Quiet two-sided trading, then P rests sells above the market, a burst of twelve buys lifts
/// the price toward them, P's sells execute at the peak, then sells push the price back (or
/// the mirror image of all that).
fn ignition_feed(s: &Ign) -> (Feed, Vec<u64>) {
    let mut f = Feed::new();
    let t0 = OPEN + 60 * SEC;
    let b = s.base;
    // Prices (cents) and sides as in a run-up, mirrored around the base for a sell-off.
    let m = |p: u32| (if s.down { 2 * b - p } else { p }) * s.unit;
    let sd = |x: u8| match (s.down, x) {
        (false, x) => x,
        (true, b'B') => b'S',
        (true, _) => b'B',
    };
    // Quiet trading: bid/ask bounce around the base, one print every 2 s.
    for i in 0..20u64 {
        let (side, px) = if i % 2 == 0 {
            (b'B', b - 1)
        } else {
            (b'S', b + 1)
        };
        f.print(t0 + i * 2 * SEC, sd(side), m(px), 200, None);
    }
    // Resting book.
    let t1 = t0 + 41 * SEC;
    f.add(t1, sd(b'B'), m(b - 1), 1000, None);
    f.add(t1, sd(b'S'), m(b + 1), 1000, None);
    // P rests sells above the market.
    let top = b + 2 + s.climb;
    let mut p_refs = Vec::new();
    if s.party_at_peak {
        for k in 0..3 {
            p_refs.push(f.add(
                t1 + SEC,
                sd(b'S'),
                m(top + k),
                s.party_shares,
                Some(b"GSCO"),
            ));
        }
    }
    // The burst: twelve buys lifting the offers (within 1.1 s by default).
    let t2 = t1 + 5 * SEC;
    for k in 0..12u32 {
        let px = b + 1 + k * s.climb / 11;
        f.print(
            t2 + k as u64 * s.spacing,
            sd(b'S'),
            m(px),
            s.burst_shares,
            None,
        );
    }
    let t3 = t2 + 11 * s.spacing + 150_000_000;
    if s.party_at_peak {
        for (k, &r) in p_refs.iter().enumerate() {
            f.exec(t3 + k as u64 * 10_000_000, r, s.party_shares);
        }
    } else {
        // The top is taken from anonymous offers.
        for k in 0..3u32 {
            f.print(t3 + k as u64 * 10_000_000, sd(b'S'), m(top + k), 600, None);
        }
    }
    let mut peak = top + 2;
    if s.small_beyond {
        peak += 1;
        f.print(t3 + 50_000_000, sd(b'S'), m(peak), 200, Some(b"MSCO"));
    }
    // Then sells hit the bids on the way down (or the price holds at the top).
    let step = (peak - (b + 1)).div_ceil(4);
    let t4 = t3 + 2 * SEC;
    for k in 0..6u32 {
        let px = if s.revert {
            peak.saturating_sub((k + 1) * step).max(b - 1)
        } else {
            peak - k % 2
        };
        f.print(t4 + k as u64 * 200_000_000, sd(b'B'), m(px), 500, None);
    }
    // Quiet again.
    for i in 0..10u64 {
        let px = if s.revert { b } else { peak };
        let side = if i % 2 == 0 { b'B' } else { b'S' };
        f.print(t4 + 20 * SEC + i * 2 * SEC, sd(side), m(px), 200, None);
    }
    f.system(b'M', t4 + 120 * SEC);
    (f, p_refs)
}

const IGN_OK: Ign = Ign {
    party_at_peak: true,
    climb: 12,
    base: 1000,
    revert: true,
    down: false,
    small_beyond: false,
    unit: 100,
    spacing: 100_000_000,
    burst_shares: 500,
    party_shares: 600,
};

#[test]
fn ignition_fires_on_a_sell_off_naming_the_buyer_below_the_market() {
    let (f, refs) = ignition_feed(&Ign {
        down: true,
        ..IGN_OK
    });
    let alerts = f.run(Rules::default(), DetectorId::MomentumIgnition);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = &alerts[0];
    assert_eq!(a.party, party_of_mpid(*b"GSCO"));
    assert_eq!(a.refs(), &refs[..]);
    // high 9.99 → trough 9.84: 15 cents, ≈ 150 bps.
    assert_eq!(ev(a, "move_ticks"), 15.0);
    assert!((ev(a, "move_bps") - 150.15).abs() < 0.5);
}

#[test]
fn ignition_names_the_large_participant_though_a_small_order_traded_nearer_the_peak() {
    let (f, refs) = ignition_feed(&Ign {
        small_beyond: true,
        ..IGN_OK
    });
    let alerts = f.run(Rules::default(), DetectorId::MomentumIgnition);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].party, party_of_mpid(*b"GSCO"));
    assert_eq!(alerts[0].refs(), &refs[..]);
}

#[test]
fn ignition_fires_once_naming_the_participant_with_its_executed_orders() {
    let (f, refs) = ignition_feed(&IGN_OK);
    let alerts = f.run(Rules::default(), DetectorId::MomentumIgnition);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = &alerts[0];
    assert_eq!(a.party, party_of_mpid(*b"GSCO"));
    assert_eq!(a.refs(), &refs[..]);
    // low 10.01 (the first buy of the burst) → peak 10.16: ≈ 149.9 bps, 15 cents.
    let mv = ev(a, "move_bps");
    assert!((mv - 149.85).abs() < 0.5, "move {mv}");
    assert_eq!(ev(a, "move_ticks"), 15.0);
    assert!(ev(a, "trades_in_burst") >= 12.0);
    assert!(ev(a, "burst_ns") <= 2e9);
    assert_eq!(ev(a, "direction_ratio"), 1.0);
    assert_eq!(ev(a, "party_executed_shares"), 1800.0);
    assert!(ev(a, "reversion_ratio") >= 0.5);
    // The give-back in bps of the peak 10.16: the ratio of the 15-cent move, over 10.16.
    let rv = ev(a, "reversion_bps");
    let want = ev(a, "reversion_ratio") * 15.0 / 10.16 * 100.0;
    assert!((rv - want).abs() < 0.01, "reversion {rv} vs {want}");
    let rv_min = a
        .evidence_list()
        .iter()
        .find(|e| e.name == "reversion_bps")
        .map(|e| e.threshold)
        .unwrap();
    assert!(rv >= rv_min && (rv_min - 0.5 * 15.0 / 10.16 * 100.0).abs() < 0.01);
    assert!(ev(a, "reversion_ns") <= 10e9);
    assert_eq!(&a.stock, &SYM);
    assert!(a.since < a.ts);
}

#[test]
fn ignition_on_a_sub_dollar_stock_is_judged_in_its_own_sub_penny_ticks() {
    // A $0.50 stock quoted in $0.0001: the run climbs 15 ticks ($0.0015, 30 bps).
    let (f, refs) = ignition_feed(&Ign {
        base: 5_000,
        unit: 1,
        ..IGN_OK
    });
    let alerts = f.run(Rules::default(), DetectorId::MomentumIgnition);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].refs(), &refs[..]);
    assert_eq!(ev(&alerts[0], "move_ticks"), 15.0);
    assert!((ev(&alerts[0], "move_bps") - 29.99).abs() < 0.1);
}

#[test]
fn ignition_on_a_sub_dollar_stock_needs_more_than_many_cheap_shares() {
    // Runs of 12 × 5,000 shares, P's 3 × 3,000 executed at the peak: 13 % of the move's volume,
    // above the 1,000-share floor. On a $0.50 stock (15 ticks of $0.0001) that exit was worth
    // 9,000 × $0.0015 = $13.50 of the move: an ordinary firm's orders the sweep took.
    let cheap = Ign {
        base: 5_000,
        unit: 1,
        burst_shares: 5_000,
        party_shares: 3_000,
        ..IGN_OK
    };
    let (f, _) = ignition_feed(&cheap);
    assert!(f
        .run(Rules::default(), DetectorId::MomentumIgnition)
        .is_empty());
    // The same shares on a $10 stock (15 cents): $1,350, a position worth igniting a move for.
    let (f, refs) = ignition_feed(&Ign {
        unit: 100,
        base: 1000,
        ..cheap
    });
    let alerts = f.run(Rules::default(), DetectorId::MomentumIgnition);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].refs(), &refs[..]);
    assert!((ev(&alerts[0], "party_move_value_usd") - 1_350.0).abs() < 1e-6);
}

#[test]
fn ignition_over_several_seconds_fires_with_its_window_score() {
    // The same climb over 5.5 s (a trade every 0.5 s): beyond the 2 s of a full window score,
    // within the 10 s searched; the move is scaled by √(2 s / its length).
    let (f, refs) = ignition_feed(&Ign {
        spacing: 500_000_000,
        ..IGN_OK
    });
    let alerts = f.run(Rules::default(), DetectorId::MomentumIgnition);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = &alerts[0];
    assert_eq!(a.refs(), &refs[..]);
    let len = ev(a, "burst_ns");
    assert!(len > 5e9 && len < 7e9, "{len}");
    let score = ev(a, "window_score");
    assert!((score - (2e9 / len).sqrt()).abs() < 1e-9, "{score}");
    assert!(ev(a, "scaled_move_bps") < ev(a, "move_bps"));
    // A window searched no longer than 2 s misses it.
    let mut rules = Rules::default();
    rules.momentum_ignition.max_burst_ns = 2_000_000_000;
    assert!(f.run(rules, DetectorId::MomentumIgnition).is_empty());
}

#[test]
fn ignition_on_a_thin_stock_counts_an_exit_of_a_few_hundred_shares() {
    // Trades of 100 shares: P's 3 × 250 = 750 shares are 38 % of the move's volume, though
    // under the 1,000-share floor.
    let thin = Ign {
        burst_shares: 100,
        party_shares: 250,
        ..IGN_OK
    };
    let (f, refs) = ignition_feed(&thin);
    let alerts = f.run(Rules::default(), DetectorId::MomentumIgnition);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].refs(), &refs[..]);
    let share = ev(&alerts[0], "party_volume_share");
    assert!((share - 750.0 / 1_950.0).abs() < 1e-9, "{share}");
    // The same 750 shares in a thick run (12 × 500 shares): 11 %, a firm's orders the sweep
    // happened to take.
    let (f, _) = ignition_feed(&Ign {
        burst_shares: 500,
        ..thin
    });
    assert!(f
        .run(Rules::default(), DetectorId::MomentumIgnition)
        .is_empty());
}

#[test]
fn ignition_near_miss_no_participant_on_the_other_side() {
    let (f, _) = ignition_feed(&Ign {
        party_at_peak: false,
        ..IGN_OK
    });
    assert!(f
        .run(Rules::default(), DetectorId::MomentumIgnition)
        .is_empty());
}

#[test]
fn ignition_near_miss_the_move_does_not_revert() {
    let (f, _) = ignition_feed(&Ign {
        revert: false,
        ..IGN_OK
    });
    assert!(f
        .run(Rules::default(), DetectorId::MomentumIgnition)
        .is_empty());
}

#[test]
fn ignition_near_miss_the_move_is_too_small() {
    // Six cents: under the tick floor (eight of the stock's ticks; though 60 bps).
    let (f, _) = ignition_feed(&Ign { climb: 3, ..IGN_OK });
    assert!(f
        .run(Rules::default(), DetectorId::MomentumIgnition)
        .is_empty());
    // Fifteen cents on a $400 stock: 3.7 bps.
    let (f, _) = ignition_feed(&Ign {
        base: 40_000,
        ..IGN_OK
    });
    assert!(f
        .run(Rules::default(), DetectorId::MomentumIgnition)
        .is_empty());
}

#[test]
fn ignition_thresholds_come_from_the_rules() {
    let (f, _) = ignition_feed(&Ign { climb: 3, ..IGN_OK });
    let mut rules = Rules::default();
    rules.momentum_ignition.min_move_ticks = 5;
    // The run reaches 5 ticks at P's second order: its 1,200 shares from there × the 6-cent
    // move are $72, under the default $250.
    assert!(f.run(rules, DetectorId::MomentumIgnition).is_empty());
    rules.momentum_ignition.min_party_value_usd = 50.0;
    let alerts = f.run(rules, DetectorId::MomentumIgnition);
    assert_eq!(alerts.len(), 1);
    let e = alerts[0].evidence_list();
    assert_eq!((e[1].name, e[1].threshold), ("move_ticks", 5.0));
    let v = e.iter().find(|e| e.name == "party_move_value_usd").unwrap();
    assert!(
        (v.value - 72.0).abs() < 1e-9 && v.threshold == 50.0,
        "{v:?}"
    );
    rules.momentum_ignition.enabled = false;
    assert!(f.run(rules, DetectorId::MomentumIgnition).is_empty());
}

#[test]
fn ignition_near_miss_bid_ask_bounce_with_attributed_orders() {
    // A busy stock bouncing between 10.00 and 10.04 (40 bps), attributed orders on both sides executed
    // all the time: no directional burst, no alert.
    let mut f = Feed::new();
    let t0 = OPEN + 10 * SEC;
    for i in 0..2000u64 {
        let up = i % 2 == 1;
        let mpid = (i % 3 == 0).then_some(b"MSCO");
        let (side, px) = if up { (b'S', 1004) } else { (b'B', 1000) };
        f.print(
            t0 + i * 50_000_000,
            side,
            c(px),
            100 + (i % 5) as u32 * 100,
            mpid,
        );
    }
    assert!(f
        .run(Rules::default(), DetectorId::MomentumIgnition)
        .is_empty());
}

#[test]
fn ignition_rules_reject_nonsense() {
    let bad = [
        "[momentum_ignition]\nburst_ns = 0\n",
        "[momentum_ignition]\nmin_move_bps = -1.0\n",
        "[momentum_ignition]\nmin_revert_fraction = 1.5\n",
        "[momentum_ignition]\nmin_direction_ratio = 2.0\n",
        "[momentum_ignition]\nmin_trades = 0\n",
        "[momentum_ignition]\nbogus = 1\n",
    ];
    for t in bad {
        assert!(Rules::from_toml(t, "t.toml").is_err(), "{t}");
    }
    assert!(Rules::from_toml("[momentum_ignition]\nmin_move_bps = 50.0\n", "t.toml").is_ok());
}

// ---------------------------------------------------------------------------------------------
// Marking the close

const CLOSE: u64 = OPEN + 1800 * SEC;

enum Tail {
    /// The last minutes like the rest of the session.
    Ordinary,
    /// P's bids executed and buys lifting the offers: volume and impact.
    Marked,
    /// Heavy two-sided trading, the price where it was.
    HeavyFlat,
    /// Heavy buying lifting the price, all anonymous.
    AnonymousPush,
}

/// A 30-minute session of one print every 10 s bouncing 9.99/10.01, then the tail, then the
/// closing cross (at the last price, or none) and the end of market hours.
fn close_feed(tail: Tail, cross: bool) -> (Feed, Vec<u64>) {
    close_feed_with(tail, cross, false)
}

/// [`close_feed`], with pre-market trading (04:00-09:30: a quiet start, then heavy buying
/// lifting the price in its last minutes) before the start of market hours if `premarket`.
fn close_feed_with(tail: Tail, cross: bool, premarket: bool) -> (Feed, Vec<u64>) {
    close_feed_auction(tail, cross.then_some(None), premarket, &[])
}

/// [`close_feed_with`], with `noiis` written in time order and the closing cross (if `cross`)
/// at the given price (`None`: the last price).
fn close_feed_auction(
    tail: Tail,
    cross: Option<Option<u32>>,
    premarket: bool,
    noiis: &[NoiiAt],
) -> (Feed, Vec<u64>) {
    close_feed_shaped(tail, cross, premarket, noiis, Some(b'O'), false)
}

/// [`close_feed_auction`] opened by a cross of type `open` (none: a stock without crosses, or a
/// feed joined mid-day), with the end of market hours before the closing cross if `m_first`.
fn close_feed_shaped(
    tail: Tail,
    cross: Option<Option<u32>>,
    premarket: bool,
    noiis: &[NoiiAt],
    open: Option<u8>,
    m_first: bool,
) -> (Feed, Vec<u64>) {
    let mut f = Feed::new_with(premarket);
    f.noiis = noiis.iter().copied().collect();
    if let Some(t) = open {
        f.cross_of(OPEN, c(1000), 20_000, t);
    }
    let tail_from = CLOSE - 180 * SEC;
    let mut t = OPEN + 5 * SEC;
    let mut i = 0u64;
    let mut last = c(1000);
    while t < tail_from {
        let (side, px) = if i % 2 == 0 {
            (b'B', 999)
        } else {
            (b'S', 1001)
        };
        f.print(t, side, c(px), 200, None);
        t += 10 * SEC;
        i += 1;
    }
    let mut refs = Vec::new();
    match tail {
        Tail::Ordinary => {
            while t < CLOSE {
                let (side, px) = if i % 2 == 0 {
                    (b'B', 999)
                } else {
                    (b'S', 1001)
                };
                f.print(t, side, c(px), 200, None);
                t += 10 * SEC;
                i += 1;
            }
            last = c(1000);
        }
        Tail::HeavyFlat => {
            while t < CLOSE {
                let (side, px) = if i % 2 == 0 {
                    (b'B', 999)
                } else {
                    (b'S', 1001)
                };
                f.print(t, side, c(px), 2000, Some(b"MSCO"));
                t += 5 * SEC;
                i += 1;
            }
            last = c(1000);
        }
        Tail::Marked | Tail::AnonymousPush => {
            let marked = matches!(tail, Tail::Marked);
            for k in 0..12u32 {
                let px = 1001 + k;
                let ts = tail_from + k as u64 * 14 * SEC;
                f.print(ts, b'S', c(px), 800, None);
                let r = f.print(
                    ts + SEC,
                    b'B',
                    c(px - 1),
                    700,
                    if marked { Some(b"MSCO") } else { None },
                );
                if marked {
                    refs.push(r);
                }
                last = c(px);
            }
        }
    }
    if m_first {
        f.system(b'M', CLOSE);
    }
    if let Some(px) = cross {
        f.cross(
            CLOSE + if m_first { 2 * SEC } else { 0 },
            px.unwrap_or(last),
            50_000,
        );
    }
    if !m_first {
        f.system(b'M', CLOSE);
    }
    f.system(b'E', CLOSE + 4 * 3600 * SEC);
    (f, refs)
}

#[test]
fn close_fires_at_the_closing_cross_naming_the_participant() {
    let (f, _) = close_feed(Tail::Marked, true);
    let alerts = f.run(Rules::default(), DetectorId::MarkingTheClose);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = &alerts[0];
    assert_eq!(a.ts, CLOSE);
    assert_eq!(a.party, party_of_mpid(*b"MSCO"));
    assert_eq!(&a.stock, &SYM);
    // From 9.99 or 10.01 (the last print before the window) to 10.11 (P's last bid filled).
    let imp = ev(a, "impact_bps");
    assert!((95.0..=125.0).contains(&imp), "impact {imp}");
    assert!(ev(a, "impact_ticks") >= 10.0);
    assert!(ev(a, "volume_ratio") >= 2.0);
    assert!(ev(a, "party_share_ratio") >= 0.3);
    assert!(ev(a, "window_trades") >= 24.0);
    assert_eq!(ev(a, "last_px"), 10.11);
}

#[test]
fn close_fires_at_end_of_market_hours_without_a_cross() {
    let (f, _) = close_feed(Tail::Marked, false);
    let alerts = f.run(Rules::default(), DetectorId::MarkingTheClose);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].ts, CLOSE);
    assert_eq!(alerts[0].party, party_of_mpid(*b"MSCO"));
}

#[test]
fn close_anonymous_push_fires_without_naming_anyone() {
    let (f, _) = close_feed(Tail::AnonymousPush, true);
    let alerts = f.run(Rules::default(), DetectorId::MarkingTheClose);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].party, NOBODY);
    assert!(ev(&alerts[0], "volume_ratio") >= 2.0);
}

#[test]
fn close_near_miss_an_ordinary_last_few_minutes() {
    let (f, _) = close_feed(Tail::Ordinary, true);
    assert!(f
        .run(Rules::default(), DetectorId::MarkingTheClose)
        .is_empty());
}

#[test]
fn close_near_miss_heavy_volume_without_price_impact() {
    let (f, _) = close_feed(Tail::HeavyFlat, true);
    assert!(f
        .run(Rules::default(), DetectorId::MarkingTheClose)
        .is_empty());
}

/// Closing NOIIs every 20 s over the last 10 minutes (cross type `cross_type`): `paired`
/// shares, an imbalance of `ratio` × paired on `direction`, the reference moving linearly from
/// `from` to `to` (Price(4)).
fn noiis(cross_type: u8, direction: u8, ratio: f64, from: u32, to: u32) -> Vec<NoiiAt> {
    let n = 30u64;
    (0..n)
        .map(|k| NoiiAt {
            ts: CLOSE - 600 * SEC + 10 * SEC + k * 20 * SEC,
            paired: 40_000,
            imbalance: (40_000.0 * ratio) as u64,
            direction,
            reference: (from as i64 + (to as i64 - from as i64) * k as i64 / (n as i64 - 1)) as u32,
            cross_type,
        })
        .collect()
}

fn threshold(a: &Alert, name: &str) -> f64 {
    a.evidence_list()
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("evidence {name} missing"))
        .threshold
}

#[test]
fn close_alert_carries_the_noii_and_cross_evidence() {
    // P marks the close (10.01 → 10.11); the closing NOIIs show a buy imbalance of 1.5× the
    // paired shares, the reference rising 10.00 → 10.10 over the last ten minutes.
    let n = noiis(b'C', b'B', 1.5, c(1000), c(1010));
    let (f, _) = close_feed_auction(Tail::Marked, Some(Some(c(1012))), false, &n);
    let alerts = f.run(Rules::default(), DetectorId::MarkingTheClose);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = &alerts[0];
    assert_eq!(a.party, party_of_mpid(*b"MSCO"));
    assert_eq!(ev(a, "cross_px"), 10.12);
    assert_eq!(ev(a, "last_px"), 10.11);
    assert_eq!(ev(a, "noii_imbalance_shares"), 60_000.0);
    assert_eq!(ev(a, "noii_imbalance_ratio"), 1.5);
    assert_eq!(threshold(a, "noii_imbalance_ratio"), 1.0);
    // The window's NOIIs, from the first in its oldest bucket (the window is exact to one of
    // its 16 buckets of 18.75 s: here from 281.25 s before the close) to the last.
    let first = n
        .iter()
        .find(|x| x.ts >= CLOSE - 281_250_000_000)
        .unwrap()
        .reference as f64;
    let want = (c(1010) as f64 - first) / first * 10_000.0;
    let mv = ev(a, "noii_ref_move_bps");
    assert!(
        (mv - want).abs() < 1e-9 && mv > 40.0,
        "ref move {mv} vs {want}"
    );
    // The cross's move is the larger impact: 9.99 or 10.01 → 10.12.
    assert!(ev(a, "impact_ticks") >= 11.0);
    assert!(a.evidence_list().len() <= tickwatch::surv::alert::MAX_EVIDENCE);
    assert_eq!(a.evidence_list().len(), 12);
    // JSON: the signed metrics have no threshold.
    let mut out = Vec::new();
    a.write_json(&mut out);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["evidence"]["noii_imbalance_shares"]["value"], 60_000);
    assert!(v["evidence"]["noii_imbalance_shares"]["threshold"].is_null());

    // A sell imbalance is negative.
    let n = noiis(b'C', b'S', 0.2, c(1000), c(1010));
    let (f, _) = close_feed_auction(Tail::Marked, Some(None), false, &n);
    let alerts = f.run(Rules::default(), DetectorId::MarkingTheClose);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(ev(&alerts[0], "noii_imbalance_shares"), -8_000.0);
}

#[test]
fn close_without_noii_leaves_the_auction_evidence_out() {
    let (f, _) = close_feed(Tail::Marked, false);
    let alerts = f.run(Rules::default(), DetectorId::MarkingTheClose);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    for name in [
        "cross_px",
        "noii_imbalance_shares",
        "noii_imbalance_ratio",
        "noii_ref_move_bps",
    ] {
        assert!(!has(&alerts[0], name), "{name}");
    }
}

#[test]
fn close_pushed_only_through_the_auction_fires() {
    // Continuous trading bounces 9.99/10.01 at its usual pace to the end; the closing NOIIs show
    // a buy imbalance twice the paired shares and the reference climbing; the cross prints at
    // 10.25, 24 cents above the window's start.
    let n = noiis(b'C', b'B', 2.0, c(1000), c(1024));
    let (f, _) = close_feed_auction(Tail::Ordinary, Some(Some(c(1025))), false, &n);
    let alerts = f.run(Rules::default(), DetectorId::MarkingTheClose);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = &alerts[0];
    assert_eq!(a.ts, CLOSE);
    assert_eq!(a.party, NOBODY);
    assert!(
        ev(a, "volume_ratio") < 2.0,
        "continuous trading is ordinary"
    );
    assert_eq!(ev(a, "cross_px"), 10.25);
    assert!(ev(a, "impact_ticks") >= 24.0);
    assert!(ev(a, "impact_bps") >= 230.0);
    assert_eq!(ev(a, "noii_imbalance_ratio"), 2.0);
    assert!(ev(a, "noii_ref_move_bps") > 0.0);
    // A sell-side push through the auction, the same way.
    let n = noiis(b'C', b'S', 2.0, c(1000), c(976));
    let (f, _) = close_feed_auction(Tail::Ordinary, Some(Some(c(975))), false, &n);
    let alerts = f.run(Rules::default(), DetectorId::MarkingTheClose);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(ev(&alerts[0], "noii_imbalance_shares"), -80_000.0);
    // The threshold is the rules'.
    let mut rules = Rules::default();
    rules.marking_the_close.min_noii_imbalance_ratio = 2.5;
    let n = noiis(b'C', b'B', 2.0, c(1000), c(1024));
    let (f, _) = close_feed_auction(Tail::Ordinary, Some(Some(c(1025))), false, &n);
    assert!(f.run(rules, DetectorId::MarkingTheClose).is_empty());
}

#[test]
fn close_near_miss_a_big_natural_imbalance_at_an_ordinary_close() {
    // A sell imbalance three times the paired shares (an index rebalance), but the cross prints
    // where the window began: no impact, nothing.
    let n = noiis(b'C', b'S', 3.0, c(1000), c(1000));
    let (f, _) = close_feed_auction(Tail::Ordinary, Some(Some(c(1000))), false, &n);
    assert!(f
        .run(Rules::default(), DetectorId::MarkingTheClose)
        .is_empty());
}

#[test]
fn close_near_miss_an_auction_move_without_a_one_sided_imbalance() {
    // The cross prints 24 cents up, but the imbalance is ordinary (half the paired shares), or
    // on the other side of the move, or there was no closing NOII in the window at all.
    let cases = [
        noiis(b'C', b'B', 0.5, c(1000), c(1024)),
        noiis(b'C', b'S', 3.0, c(1000), c(1024)),
        noiis(b'C', b'N', 0.0, c(1000), c(1024)),
        // NOIIs only before the window (the first ten of them, up to 6:50 before the close).
        noiis(b'C', b'B', 3.0, c(1000), c(1024))[..10].to_vec(),
        Vec::new(),
    ];
    for (i, n) in cases.iter().enumerate() {
        let (f, _) = close_feed_auction(Tail::Ordinary, Some(Some(c(1025))), false, n);
        let alerts = f.run(Rules::default(), DetectorId::MarkingTheClose);
        assert!(alerts.is_empty(), "case {i}: {alerts:#?}");
    }
}

#[test]
fn close_near_miss_heavy_volume_with_only_the_cross_price_moved() {
    // Heavy two-sided trading leaves the price where it was; the cross prints 24 cents up with
    // an ordinary imbalance (or no NOII): the volume does not make the auction's move unusual.
    for n in [noiis(b'C', b'B', 0.3, c(1000), c(1024)), Vec::new()] {
        let (f, _) = close_feed_auction(Tail::HeavyFlat, Some(Some(c(1025))), false, &n);
        let alerts = f.run(Rules::default(), DetectorId::MarkingTheClose);
        assert!(alerts.is_empty(), "{alerts:#?}");
    }
    // With a one-sided imbalance it is the auction route, and the alert says so.
    let n = noiis(b'C', b'B', 2.0, c(1000), c(1024));
    let (f, _) = close_feed_auction(Tail::HeavyFlat, Some(Some(c(1025))), false, &n);
    let alerts = f.run(Rules::default(), DetectorId::MarkingTheClose);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert!(ev(&alerts[0], "volume_ratio") >= 2.0);
    assert!(ev(&alerts[0], "impact_ticks") >= 24.0);
}

#[test]
fn close_ignores_noii_of_other_crosses() {
    // The same one-sided NOIIs as the auction push, but for the opening or a halt cross: the
    // closing auction's move alone is not unusual activity.
    for ct in [b'O', b'H'] {
        let n = noiis(ct, b'B', 2.0, c(1000), c(1024));
        let (f, _) = close_feed_auction(Tail::Ordinary, Some(Some(c(1025))), false, &n);
        let alerts = f.run(Rules::default(), DetectorId::MarkingTheClose);
        assert!(alerts.is_empty(), "cross type {}: {alerts:#?}", ct as char);
        // …and they leave a marked close's auction evidence empty.
        let (f, _) = close_feed_auction(Tail::Marked, Some(None), false, &n);
        let alerts = f.run(Rules::default(), DetectorId::MarkingTheClose);
        assert_eq!(alerts.len(), 1);
        assert!(!has(&alerts[0], "noii_imbalance_shares"));
    }
}

#[test]
fn close_is_judged_without_an_opening_cross_and_after_an_h_cross() {
    // A stock without NASDAQ crosses (or a feed joined mid-day), or opened by a halt/IPO cross:
    // the marked close is found at the end of market hours, the ordinary one raises nothing.
    for open in [None, Some(b'H')] {
        for cross in [None, Some(None)] {
            let (f, refs) = close_feed_shaped(Tail::Marked, cross, false, &[], open, false);
            let alerts = f.run(Rules::default(), DetectorId::MarkingTheClose);
            assert_eq!(
                alerts.len(),
                1,
                "open {open:?}, cross {cross:?}: {alerts:#?}"
            );
            assert_eq!(alerts[0].ts, CLOSE);
            assert!(alerts[0].refs().iter().all(|r| refs.contains(r)));
            let (f, _) = close_feed_shaped(Tail::Ordinary, cross, false, &[], open, false);
            assert!(f
                .run(Rules::default(), DetectorId::MarkingTheClose)
                .is_empty());
        }
    }
}

#[test]
fn a_closing_cross_after_the_end_of_market_hours_still_counts() {
    // NASDAQ may print the closing cross just after the 'M' event: the auction route (its cross
    // price with a one-sided imbalance) must still be judged, once, at the cross.
    let n = noiis(b'C', b'B', 2.0, c(1000), c(1024));
    let (f, _) = close_feed_shaped(
        Tail::Ordinary,
        Some(Some(c(1025))),
        false,
        &n,
        Some(b'O'),
        true,
    );
    let alerts = f.run(Rules::default(), DetectorId::MarkingTheClose);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(ev(&alerts[0], "cross_px"), 10.25);
}

#[test]
fn close_rules_reject_nonsense() {
    let bad = [
        "[marking_the_close]\nwindow_ns = 0\n",
        "[marking_the_close]\nmin_volume_ratio = 0.0\n",
        "[marking_the_close]\nmin_party_share = 1.5\n",
        "[marking_the_close]\nmin_impact_bps = -3.0\n",
        "[marking_the_close]\nmin_noii_imbalance_ratio = 0.0\n",
        "[marking_the_close]\nmin_noii_imbalance_ratio = nan\n",
        "[marking_the_close]\nnoii_ratio = 1.0\n",
        "[marking_the_close]\nmin_move_sigmas = 0.0\n",
        "[marking_the_close]\nmin_aggressor_imbalance = 1.5\n",
    ];
    for t in bad {
        assert!(Rules::from_toml(t, "t.toml").is_err(), "{t}");
    }
}

// ---------------------------------------------------------------------------------------------
// The scenario scripts, played by the generator into a background feed, caught by the detectors

#[test]
fn generated_ignition_and_close_episodes_are_caught_with_no_false_alerts() {
    use tickwatch::gen::{generate_scenarios, GenConfig, ScenarioPlan};
    use tickwatch::scenario::ScenarioKind;
    use tickwatch::surv::eval::{parse_alerts, score};
    use tickwatch::truth::Truth;
    let cfg = GenConfig {
        messages: 400_000,
        symbols: 60,
        live_orders: 20_000,
        seed: 5,
    };
    // A 25-minute session: the planner keeps other episodes out of its last 5 minutes, the
    // close detector's window (an ignition there is heavy trading with impact into the close).
    let plan = ScenarioPlan {
        kinds: vec![ScenarioKind::Ignition, ScenarioKind::Close],
        rate: 0.25,
    };
    let mut feed = Vec::new();
    let (_, episodes, _) =
        generate_scenarios(&cfg, 1500 * SEC, &plan, &mut feed).expect("generate");
    assert!(episodes.iter().any(|e| e.scenario == "ignition"));
    assert!(episodes.iter().any(|e| e.scenario == "close"));
    let mut books = Books::new(BookConfig::for_orders(1 << 17, 64));
    let (alerts, _) = surveil_feed(&feed, &mut books, Rules::default(), &[], 1024).expect("feed");
    let mut jsonl = Vec::new();
    for a in &alerts {
        a.write_json(&mut jsonl);
    }
    let truth = Truth {
        episodes,
        ..Truth::default()
    };
    let text = std::str::from_utf8(&jsonl).unwrap();
    if std::env::var_os("SHOW_ALERTS").is_some() {
        eprintln!("{text}");
        eprintln!("{:#?}", truth.episodes);
    }
    let refs = parse_alerts(text).unwrap();
    for det in ["momentum_ignition", "marking_the_close"] {
        let s = score(&truth, &refs)
            .into_iter()
            .find(|s| s.detector == det)
            .expect("scored");
        assert!(s.episodes >= 5, "{s:?}");
        assert_eq!(s.detected, s.episodes, "{s:?}");
        assert_eq!(s.true_positives, s.alerts, "{s:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The hot path: no allocation, bad input never panics

/// Runs both detectors over `feed` directly (no framework), counting allocator calls; returns
/// (ignition alerts, close alerts, allocator calls).
fn run_direct(
    feed: &[u8],
    ign: &mut MomentumIgnition,
    close: &mut MarkingTheClose,
) -> (u32, u32, u64) {
    let rules = Rules::default();
    let mut out = Alerts::new(64);
    let mut books = Books::new(BookConfig::for_orders(1 << 14, 64));
    let mut report = tickwatch::replay::ReplayReport::default();
    let (mut n_ign, mut n_close, mut seq) = (0u32, 0u32, 0u32);
    let (r, n) = common::allocations(|| {
        tickwatch::replay::for_each_message(
            feed,
            &mut books,
            false,
            &mut report,
            |books, msg, _| {
                let mut ev = SurvEvent::classify(msg, books, seq);
                books.apply(msg);
                if ev.locate != 0 {
                    ev.after = Touch::of(books, ev.locate);
                }
                let ctx = Ctx {
                    books,
                    symbol: books.symbol(ev.locate).copied().unwrap_or([b' '; 8]),
                };
                ign.on_event(&rules.momentum_ignition, &ev, &ctx, &mut out);
                close.on_event(&rules.marking_the_close, &ev, &ctx, &mut out);
                for a in out.drain() {
                    match a.detector {
                        DetectorId::MomentumIgnition => n_ign += 1,
                        _ => n_close += 1,
                    }
                }
                seq += 1;
                true
            },
        )
    });
    r.unwrap();
    (n_ign, n_close, n)
}

fn small_cap() -> Capacity {
    Capacity {
        orders: 1 << 12,
        parties: 64,
        pairs: 1 << 12,
        locates: 64,
    }
}

#[test]
fn the_detectors_do_not_allocate_per_event() {
    let mut ign = MomentumIgnition::new(&small_cap());
    let mut close = MarkingTheClose::new(&small_cap());
    let (f, _) = ignition_feed(&IGN_OK);
    assert_eq!(run_direct(&f.buf, &mut ign, &mut close), (1, 0, 0));
    let mut ign = MomentumIgnition::new(&small_cap());
    let mut close = MarkingTheClose::new(&small_cap());
    let (f, _) = close_feed(Tail::Marked, true);
    assert_eq!(run_direct(&f.buf, &mut ign, &mut close), (0, 1, 0));
    assert_eq!(ign.stock_overflow + close.stock_overflow, 0);
    // The closing NOIIs and the auction push.
    let mut ign = MomentumIgnition::new(&small_cap());
    let mut close = MarkingTheClose::new(&small_cap());
    let n = noiis(b'C', b'B', 2.0, c(1000), c(1024));
    let (f, _) = close_feed_auction(Tail::Ordinary, Some(Some(c(1025))), false, &n);
    assert_eq!(run_direct(&f.buf, &mut ign, &mut close), (0, 1, 0));
}

#[test]
fn bad_input_never_panics() {
    let rules = Rules::default();
    let cap = small_cap();
    let mut ign = MomentumIgnition::new(&cap);
    let mut close = MarkingTheClose::new(&cap);
    let books = Books::new(BookConfig::for_orders(1 << 10, 64));
    let ctx = Ctx {
        books: &books,
        symbol: SYM,
    };
    let mut out = Alerts::new(64);
    let exec = |price: u32, shares: u32, side, party| Kind::Exec {
        order_ref: 7,
        side,
        price,
        shares,
        remaining: 0,
        party,
        match_number: 1,
        printable: true,
    };
    let gs = party_of_mpid(*b"GSCO");
    let kinds = [
        exec(u32::MAX, u32::MAX, Side::Sell, gs),
        exec(0, 100, Side::Sell, gs),
        exec(100, 0, Side::Buy, gs),
        exec(1, 1, Side::Buy, gs),
        exec(u32::MAX, 1, Side::Sell, NOBODY),
        Kind::Trade {
            side: Side::Buy,
            price: u32::MAX,
            shares: u32::MAX,
            match_number: 2,
        },
        Kind::Cross {
            price: 0,
            shares: 0,
            cross_type: b'C',
        },
        Kind::Cross {
            price: u32::MAX,
            shares: u64::MAX,
            cross_type: b'C',
        },
        Kind::Imbalance {
            paired: 0,
            imbalance: u64::MAX,
            direction: b'B',
            reference: 0,
            near: u32::MAX,
            far: 0,
            cross_type: b'C',
        },
        Kind::Unknown,
        Kind::System { code: b'M' },
        Kind::System { code: b'E' },
    ];
    // Every kind on a known locate, locate 0 and a locate past the table; time going backwards.
    let mut seq = 0;
    for round in 0..50u64 {
        for (i, &kind) in kinds.iter().enumerate() {
            for locate in [1u16, 0, 63, 64, u16::MAX] {
                let ts = if round % 2 == 0 {
                    OPEN + round * SEC + i as u64
                } else {
                    u64::MAX - i as u64
                };
                let ev = SurvEvent {
                    seq,
                    ts,
                    locate,
                    kind,
                    before: Touch::default(),
                    after: Touch::default(),
                };
                ign.on_event(&rules.momentum_ignition, &ev, &ctx, &mut out);
                close.on_event(&rules.marking_the_close, &ev, &ctx, &mut out);
                seq += 1;
            }
        }
        ign.on_watermark(&rules.momentum_ignition, u64::MAX, seq, &ctx, &mut out);
        close.on_watermark(&rules.marking_the_close, u64::MAX, seq, &ctx, &mut out);
    }
    let _ = out.drain().count();
}

#[test]
fn close_pre_market_trading_is_not_taken_for_a_close() {
    // Heavy buying lifting the price into the 09:30 start of market hours: the system event is
    // not the close (no opening cross yet); the ordinary close later raises nothing either.
    let (f, _) = close_feed_with(Tail::Ordinary, true, true);
    assert!(f
        .run(Rules::default(), DetectorId::MarkingTheClose)
        .is_empty());
    // The marked close of that day is still caught.
    let (f, _) = close_feed_with(Tail::Marked, true, true);
    let alerts = f.run(Rules::default(), DetectorId::MarkingTheClose);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].ts, CLOSE);
}

#[test]
fn the_scripts_keep_to_their_shape() {
    use tickwatch::rng::SplitMix64;
    use tickwatch::scenario::{EpisodeCtx, Op, ScenarioKind};
    let mut rng = SplitMix64::new(9);
    for i in 0..200u64 {
        let c = EpisodeCtx {
            start: OPEN + 60 * SEC + i * SEC,
            open: OPEN,
            close: OPEN + 1800 * SEC,
            locate: 3,
            mpid: *b"GSCO",
            account: NOBODY,
            account2: NOBODY,
        };
        for kind in [ScenarioKind::Ignition, ScenarioKind::Close] {
            let s = kind.script(&mut rng, &c);
            assert!(s.start >= c.start && !s.actions.is_empty());
            assert!(s.detect_from <= s.detect_until);
            let last = s.actions.iter().map(|a| a.at).max().unwrap();
            assert!(last <= s.detect_until);
            for a in &s.actions {
                match a.op {
                    Op::Add { h, attributed, .. } => assert!(h < 16 && attributed),
                    Op::Fill { h, .. } | Op::Cancel { h } => assert!(h < 16),
                    Op::Sweep { flow, .. } => assert_eq!(flow, 0),
                    _ => panic!("{kind:?}: unexpected {:?}", a.op),
                }
            }
            if kind == ScenarioKind::Close {
                // Everything happens in the last minutes, before the close; detection runs
                // through the closing cross.
                assert!(s.start + last < c.close);
                assert!(c.close - s.start <= 300 * SEC);
                assert!(s.start + s.detect_until > c.close);
            } else {
                // A burst of sweeps one way, the manipulator's fills, sweeps the other way.
                let sides: Vec<u8> = s
                    .actions
                    .iter()
                    .filter_map(|a| match a.op {
                        Op::Sweep { side, .. } => Some(side),
                        _ => None,
                    })
                    .collect();
                assert!(sides.len() >= 10);
                assert_ne!(sides[0], sides[sides.len() - 1]);
            }
        }
    }
}

// Marking the close against the stock's own volatility: a quoted book (a bid and an offer
// that stay until requoted), trades against it, no volume surge and no auction imbalance.

/// A two-sided quote of stock 1 and the trades against it.
struct Quoted {
    f: Feed,
    bid: (u64, u32),
    ask: (u64, u32),
    /// The shares left on the bid and the offer.
    left: (u32, u32),
}

impl Quoted {
    fn new() -> Quoted {
        let mut f = Feed::new();
        let bid = f.add(OPEN, b'B', c(999), 1_000_000, None);
        let ask = f.add(OPEN, b'S', c(1001), 1_000_000, None);
        Quoted {
            f,
            bid: (bid, c(999)),
            ask: (ask, c(1001)),
            left: (1_000_000, 1_000_000),
        }
    }

    /// Replaces the quote with a bid at `bid` and an offer at `ask` (cents).
    fn requote(&mut self, ts: u64, bid: u32, ask: u32) {
        for r in [self.bid.0, self.ask.0] {
            let m = OrderDelete {
                hdr: header(b'D', 1, 0, ts),
                order_ref: BeU64::new(r),
            };
            push_frame(&mut self.f.buf, &m);
        }
        self.bid = (self.f.add(ts, b'B', c(bid), 1_000_000, None), c(bid));
        self.ask = (self.f.add(ts, b'S', c(ask), 1_000_000, None), c(ask));
        self.left = (1_000_000, 1_000_000);
    }

    /// A trade of `shares`: an aggressive buy lifts the offer, else a sell hits the bid.
    fn trade(&mut self, ts: u64, buy: bool, shares: u32) {
        let (r, left) = match buy {
            true => (self.ask.0, &mut self.left.1),
            false => (self.bid.0, &mut self.left.0),
        };
        *left -= shares;
        self.f.exec(ts, r, shares);
    }
}

/// A 30-minute day of 200-share trades every 10 s, buys and sells alternating, the quote
/// 9.99/10.01 moving `swing` cents up and back every 40 s; then the last 2 minutes, the quote
/// lifted a cent every 10 s (12 cents), the trades buys if `buys`, else sells; then the
/// closing cross at the last trade's price and the end of market hours.
fn pushed_close(swing: u32, buys: bool) -> Feed {
    let mut q = Quoted::new();
    let tail_from = CLOSE - 120 * SEC;
    let (mut t, mut i) = (OPEN + 10 * SEC, 0u64);
    while t < tail_from {
        if i % 4 == 0 {
            let up = if i % 8 == 0 { swing } else { 0 };
            q.requote(t, 999 + up, 1001 + up);
        }
        q.trade(t + SEC, i % 2 == 0, 200);
        t += 10 * SEC;
        i += 1;
    }
    q.requote(t, 999, 1001);
    for k in 1..=12u32 {
        q.requote(t, 999 + k, 1001 + k);
        q.trade(t + SEC, buys, 200);
        t += 10 * SEC;
    }
    let last = if buys { q.ask.1 } else { q.bid.1 };
    q.f.cross(CLOSE, last, 50_000);
    q.f.system(b'M', CLOSE);
    q.f.system(b'E', CLOSE + 4 * 3600 * SEC);
    q.f
}

#[test]
fn close_fires_on_a_push_out_of_line_with_the_stocks_own_moves() {
    // A quiet day (the mid still), then 12 cents in 2 minutes, every trade a buy: about 120
    // bps, many times the day's moves, at the day's pace (the volume test alone is silent).
    let alerts = pushed_close(0, true).run(Rules::default(), DetectorId::MarkingTheClose);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = &alerts[0];
    assert_eq!(a.ts, CLOSE);
    assert_eq!(a.party, NOBODY);
    assert!(ev(a, "move_sigmas") >= 2.5, "{a:#?}");
    assert_eq!(ev(a, "aggressor_imbalance"), 1.0);
    let imp = ev(a, "impact_bps");
    assert!((90.0..=130.0).contains(&imp), "impact {imp}");
    assert!(ev(a, "volume_ratio") < 2.0, "the volume route did not fire");
}

#[test]
fn close_near_miss_the_same_push_on_a_stock_that_moves_as_much_all_day() {
    // The quote swings 20 cents up and back every 40 s all day: 12 cents at the close is
    // ordinary for this stock.
    let f = pushed_close(20, true);
    let alerts = f.run(Rules::default(), DetectorId::MarkingTheClose);
    assert!(alerts.is_empty(), "{alerts:#?}");
    // The day's moves are what keep it quiet: measured against a fraction of them, it fires.
    let loose = "[marking_the_close]\nmin_move_sigmas = 0.05\n";
    let rules = Rules::from_toml(loose, "loose.toml").expect("rules");
    let alerts = f.run(rules, DetectorId::MarkingTheClose);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert!(ev(&alerts[0], "move_sigmas") < 2.5);
}

#[test]
fn close_near_miss_the_mid_rises_while_sellers_hit_the_bid() {
    // The quote is lifted but every trade is a sell: nobody bought the price up.
    let alerts = pushed_close(0, false).run(Rules::default(), DetectorId::MarkingTheClose);
    assert!(alerts.is_empty(), "{alerts:#?}");
}
