//! Spoofing and layering detectors on hand-made ITCH sequences, through `surveil_feed`: the
//! episodes that must fire (with the participant, the orders and the evidence named) and their
//! near misses that must not.

use tickwatch::book::{BookConfig, Books};
use tickwatch::gen::{generate_scenarios, GenConfig, ScenarioPlan};
use tickwatch::itch::be::{BeU32, BeU64};
use tickwatch::itch::encode::{header, push_frame};
use tickwatch::itch::wire::*;
use tickwatch::itch::Side;
use tickwatch::scenario::ScenarioKind;
use tickwatch::surv::eval::{parse_alerts, score};
use tickwatch::surv::event::{party_name, party_of_mpid, party_of_name};
use tickwatch::surv::layering::Layering;
use tickwatch::surv::spoofing::Spoofing;
use tickwatch::surv::{
    surveil_feed, Alert, Alerts, Capacity, Ctx, Detector, DetectorId, FlowEvent, FlowRecord, Rules,
    Severity, SurvEvent, NOBODY,
};
use tickwatch::truth::Truth;

mod common;

#[global_allocator]
static GLOBAL: common::Counting = common::Counting;

const LOC: u16 = 1;
const SYM: [u8; 8] = *b"TEST    ";
/// 10:00:00.
const T0: u64 = 36_000_000_000_000;
const MS: u64 = 1_000_000;

/// Dollars to Price(4).
fn px(d: f64) -> u32 {
    (d * 10_000.0).round() as u32
}

/// A feed under construction, on one stock.
struct Feed {
    v: Vec<u8>,
    next_match: u64,
}

impl Feed {
    fn new() -> Feed {
        let mut v = Vec::new();
        push_frame(
            &mut v,
            &SystemEvent {
                hdr: header(b'S', 0, 0, T0 - 1_000 * MS),
                event_code: b'Q',
            },
        );
        Feed { v, next_match: 1 }
    }

    /// An anonymous ('A') or attributed ('F') add.
    fn add(&mut self, t: u64, r: u64, side: u8, shares: u32, price: f64, mpid: Option<&[u8; 4]>) {
        match mpid {
            Some(m) => push_frame(
                &mut self.v,
                &AddOrderMpid {
                    hdr: header(b'F', LOC, 0, t),
                    order_ref: BeU64::new(r),
                    side,
                    shares: BeU32::new(shares),
                    stock: SYM,
                    price: BeU32::new(px(price)),
                    attribution: *m,
                },
            ),
            None => push_frame(
                &mut self.v,
                &AddOrder {
                    hdr: header(b'A', LOC, 0, t),
                    order_ref: BeU64::new(r),
                    side,
                    shares: BeU32::new(shares),
                    stock: SYM,
                    price: BeU32::new(px(price)),
                },
            ),
        }
    }

    fn exec(&mut self, t: u64, r: u64, shares: u32) {
        let m = self.next_match;
        self.next_match += 1;
        push_frame(
            &mut self.v,
            &OrderExecuted {
                hdr: header(b'E', LOC, 0, t),
                order_ref: BeU64::new(r),
                executed_shares: BeU32::new(shares),
                match_number: BeU64::new(m),
            },
        );
    }

    fn delete(&mut self, t: u64, r: u64) {
        push_frame(
            &mut self.v,
            &OrderDelete {
                hdr: header(b'D', LOC, 0, t),
                order_ref: BeU64::new(r),
            },
        );
    }

    fn cancel(&mut self, t: u64, r: u64, shares: u32) {
        push_frame(
            &mut self.v,
            &OrderCancel {
                hdr: header(b'X', LOC, 0, t),
                order_ref: BeU64::new(r),
                cancelled_shares: BeU32::new(shares),
            },
        );
    }

    fn replace(&mut self, t: u64, old: u64, new: u64, shares: u32, price: f64) {
        push_frame(
            &mut self.v,
            &OrderReplace {
                hdr: header(b'U', LOC, 0, t),
                original_order_ref: BeU64::new(old),
                new_order_ref: BeU64::new(new),
                shares: BeU32::new(shares),
                price: BeU32::new(px(price)),
            },
        );
    }

    /// A background book: bids 10.00 / 9.99, offers 10.02 / 10.03, 300 shares each, anonymous
    /// (refs 1..=4), at T0 − 1 s.
    fn with_book() -> Feed {
        let mut f = Feed::new();
        let t = T0 - 900 * MS;
        f.add(t, 1, b'B', 300, 10.00, None);
        f.add(t, 2, b'B', 300, 9.99, None);
        f.add(t, 3, b'S', 300, 10.02, None);
        f.add(t, 4, b'S', 300, 10.03, None);
        f
    }
}

fn rules() -> Rules {
    Rules {
        limits: Capacity {
            orders: 4096,
            parties: 64,
            pairs: 1024,
            locates: 16,
        },
        ..Rules::default()
    }
}

fn run_with(f: &Feed, rules: Rules, flow: &[FlowRecord]) -> Vec<Alert> {
    let mut books = Books::new(BookConfig::small());
    let (alerts, _) = surveil_feed(&f.v, &mut books, rules, flow, 1024).expect("a valid feed");
    books.check().expect("a consistent book");
    alerts
}

fn of(alerts: &[Alert], d: DetectorId) -> Vec<Alert> {
    alerts.iter().filter(|a| a.detector == d).copied().collect()
}

fn spoofs(f: &Feed) -> Vec<Alert> {
    of(&run_with(f, rules(), &[]), DetectorId::Spoofing)
}

fn layerings(f: &Feed) -> Vec<Alert> {
    of(&run_with(f, rules(), &[]), DetectorId::Layering)
}

fn ev(a: &Alert, name: &str) -> f64 {
    a.evidence_list()
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("evidence {name} missing from {a:?}"))
        .value
}

const GSCO: &[u8; 4] = b"GSCO";
const MSCO: &[u8; 4] = b"MSCO";

/// GSCO rests a genuine bid (ref 10), shows a 3,000-share offer one tick inside the spread
/// (ref 11, 10.01); the bid is hit `fill_at` after the spoof; the spoof is deleted `cancel_at`
/// after it was added.
fn spoof_episode(fill_at: u64, cancel_at: u64) -> Feed {
    let mut f = Feed::with_book();
    f.add(T0, 10, b'B', 200, 10.00, Some(GSCO));
    let ts = T0 + 100 * MS;
    f.add(ts, 11, b'S', 3_000, 10.01, Some(GSCO));
    f.exec(ts + fill_at, 10, 200);
    f.delete(ts + cancel_at, 11);
    f
}

#[test]
fn spoofing_fires_at_the_cancel_naming_the_participant_orders_and_evidence() {
    let f = spoof_episode(50 * MS, 120 * MS);
    let alerts = run_with(&f, rules(), &[]);
    let s = of(&alerts, DetectorId::Spoofing);
    assert_eq!(s.len(), 1, "{s:?}");
    let a = &s[0];
    assert_eq!(party_name(&a.party), "GSCO");
    assert_eq!(a.locate, LOC);
    assert_eq!(&a.stock, &SYM);
    assert_eq!(a.ts, T0 + 220 * MS, "fires at the cancel");
    assert_eq!(a.since, T0 + 100 * MS, "the episode starts at the spoof");
    assert_eq!(a.refs(), &[11, 10]);
    assert_eq!(ev(a, "spoof_shares"), 3_000.0);
    assert_eq!(ev(a, "touch_share_ratio"), 1.0);
    assert_eq!(ev(a, "improve_ticks"), 1.0);
    assert_eq!(a.severity, Severity::High, "it moved the best price");
    assert_eq!(ev(a, "lifetime_ns"), (120 * MS) as f64);
    assert_eq!(ev(a, "exec_shares"), 200.0);
    assert_eq!(ev(a, "exec_to_cancel_ns"), (70 * MS) as f64);
    assert_eq!(ev(a, "spoof_fill_ratio"), 0.0);
    // The book after the cancel: the spoof is gone from the offer.
    assert_eq!(a.touch.ask, px(10.02));
    // Evidence names its thresholds: the timing score (its parts, the delays and their
    // scores, are context beside it).
    let find = |n: &str| *a.evidence_list().iter().find(|e| e.name == n).unwrap();
    let e = find("timing_score");
    assert_eq!((e.value, e.op, e.threshold), (1.0, ">=", 0.5));
    assert!(find("lifetime_ns").threshold.is_nan());
    assert_eq!(ev(a, "lifetime_score"), 1.0);
    let e = find("reaction_ns");
    assert_eq!((e.value, e.op, e.threshold), ((50 * MS) as f64, ">=", 1e6));
    // The spoof offer 10.01 over the bid 10.00 that was hit: 10 bps.
    assert!((ev(a, "price_gap_bps") - 10.0).abs() < 1e-9);
    // One large order on one level is not layering.
    assert!(of(&alerts, DetectorId::Layering).is_empty());
}

#[test]
fn spoofing_by_joining_the_touch_with_most_of_its_size_fires() {
    let mut f = Feed::with_book();
    f.add(T0, 10, b'S', 100, 10.03, Some(GSCO));
    // Joins the 300 bid at 10.00 with 2,700: 90 % of the touch.
    f.add(T0 + 10 * MS, 11, b'B', 2_700, 10.00, Some(GSCO));
    f.exec(T0 + 30 * MS, 10, 100);
    f.delete(T0 + 40 * MS, 11);
    let s = spoofs(&f);
    assert_eq!(s.len(), 1);
    assert_eq!(party_name(&s[0].party), "GSCO");
    assert_eq!(ev(&s[0], "improve_ticks"), 0.0);
    assert!((ev(&s[0], "touch_share_ratio") - 0.9).abs() < 1e-9);
}

#[test]
fn spoofing_pulled_by_a_replace_away_from_the_touch_fires() {
    let mut f = Feed::with_book();
    f.add(T0, 10, b'B', 200, 10.00, Some(GSCO));
    f.add(T0 + 100 * MS, 11, b'S', 3_000, 10.01, Some(GSCO));
    f.exec(T0 + 150 * MS, 10, 200);
    f.replace(T0 + 200 * MS, 11, 12, 3_000, 10.10);
    let s = spoofs(&f);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].refs()[0], 11);
}

#[test]
fn spoofing_partial_cancels_of_most_of_the_order_fire_once() {
    let mut f = Feed::with_book();
    f.add(T0, 10, b'B', 200, 10.00, Some(GSCO));
    f.add(T0 + 100 * MS, 11, b'S', 3_000, 10.01, Some(GSCO));
    f.exec(T0 + 150 * MS, 10, 200);
    f.cancel(T0 + 160 * MS, 11, 1_000); // a third: not yet pulled
    f.cancel(T0 + 170 * MS, 11, 1_800); // 2,800 of 3,000 gone
    f.cancel(T0 + 180 * MS, 11, 100);
    let s = spoofs(&f);
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0].ts, T0 + 170 * MS);
}

#[test]
fn spoofing_near_miss_cancel_without_an_opposite_execution() {
    let mut f = Feed::with_book();
    f.add(T0, 10, b'B', 200, 10.00, Some(GSCO));
    f.add(T0 + 100 * MS, 11, b'S', 3_000, 10.01, Some(GSCO));
    f.delete(T0 + 200 * MS, 11);
    assert!(spoofs(&f).is_empty());
}

#[test]
fn spoofing_near_miss_execution_before_the_spoof() {
    let mut f = Feed::with_book();
    f.add(T0, 10, b'B', 200, 10.00, Some(GSCO));
    f.exec(T0 + 50 * MS, 10, 100);
    f.add(T0 + 100 * MS, 11, b'S', 3_000, 10.01, Some(GSCO));
    f.delete(T0 + 200 * MS, 11);
    assert!(spoofs(&f).is_empty());
}

#[test]
fn spoofing_near_miss_the_execution_is_another_participants() {
    let mut f = Feed::with_book();
    f.add(T0, 10, b'B', 200, 10.00, Some(MSCO));
    f.add(T0 + 1, 12, b'B', 200, 10.00, None);
    f.add(T0 + 100 * MS, 11, b'S', 3_000, 10.01, Some(GSCO));
    f.exec(T0 + 150 * MS, 10, 200); // MSCO's bid
    f.exec(T0 + 160 * MS, 12, 200); // an anonymous bid
    f.delete(T0 + 200 * MS, 11);
    assert!(spoofs(&f).is_empty());
}

#[test]
fn spoofing_near_miss_same_side_execution() {
    // GSCO's own order on the spoof's side executing is no inducement.
    let mut f = Feed::with_book();
    f.add(T0, 10, b'S', 200, 10.02, Some(GSCO));
    f.add(T0 + 100 * MS, 11, b'S', 3_000, 10.01, Some(GSCO));
    f.exec(T0 + 150 * MS, 10, 200);
    f.delete(T0 + 200 * MS, 11);
    assert!(spoofs(&f).is_empty());
}

#[test]
fn spoofing_near_miss_cancelled_too_late() {
    // The timing scores fall from 1 (fill to cancel ≤ 1 s, lifetime ≤ 2 s) to 0 (3 s, 8 s).
    // The fill 3.1 s before the cancel: score 0.
    assert!(spoofs(&spoof_episode(100 * MS, 3_200 * MS)).is_empty());
    // The fill 2.4 s before the cancel: score ≈ 0.2, under 0.5.
    assert!(spoofs(&spoof_episode(100 * MS, 2_500 * MS)).is_empty());
    // Lifetime 8.5 s (the fill 0.5 s before the cancel): score 0.
    assert!(spoofs(&spoof_episode(8_000 * MS, 8_500 * MS)).is_empty());
    // Inside both full-score ranges.
    assert_eq!(spoofs(&spoof_episode(1_000 * MS, 1_900 * MS)).len(), 1);
}

#[test]
fn spoofing_cancels_a_little_over_a_second_after_the_fill_count_with_a_lower_score() {
    let mut last = 1.0;
    for ms in [1_100u64, 1_250, 1_400] {
        let s = spoofs(&spoof_episode(100 * MS, (100 + ms) * MS));
        assert_eq!(s.len(), 1, "cancel {ms} ms after the fill: {s:?}");
        let a = &s[0];
        let score = ev(a, "timing_score");
        assert!(
            (0.5..1.0).contains(&score) && score < last,
            "{ms} ms: {score}"
        );
        last = score;
        // Its parts: the lifetime (≤ 2 s) scores 1, the fill-to-cancel delay the rest.
        assert_eq!(ev(a, "lifetime_score"), 1.0);
        assert_eq!(ev(a, "exec_to_cancel_score"), score);
        assert_eq!(ev(a, "exec_to_cancel_ns"), (ms * MS) as f64);
    }
    // A spoof resting 3 s before the other side trades (slow reactions) still counts.
    assert_eq!(spoofs(&spoof_episode(3_000 * MS, 3_100 * MS)).len(), 1);
}

#[test]
fn spoofing_near_miss_an_execution_too_soon_after_the_add_to_be_a_reaction() {
    // The bid executes 200 µs after the offer appears: nobody could have seen it and reacted.
    assert!(spoofs(&spoof_episode(200_000, 50 * MS)).is_empty());
    // 2 ms after: a reaction (the floor is 1 ms); the evidence says how soon.
    let s = spoofs(&spoof_episode(2 * MS, 50 * MS));
    assert_eq!(s.len(), 1);
    assert_eq!(ev(&s[0], "reaction_ns"), (2 * MS) as f64);
}

#[test]
fn spoofing_near_miss_an_order_locking_against_the_participants_own_order() {
    // GSCO bids 10.00, then offers 3,000 at 10.00 — locked against its own bid, which executes
    // 300 µs later: the self-trade (wash) shape, not a spoof; nor, executing 20 ms later, is an
    // order that is not on its own side of the trade it would have induced.
    for exec_after in [300_000u64, 20 * MS] {
        let mut f = Feed::with_book();
        f.add(T0, 10, b'B', 200, 10.00, Some(GSCO));
        let ts = T0 + 100 * MS;
        f.add(ts, 11, b'S', 3_000, 10.00, Some(GSCO));
        f.exec(ts + exec_after, 10, 200);
        f.delete(ts + 60 * MS, 11);
        assert!(spoofs(&f).is_empty(), "exec {exec_after} ns after");
    }
}

#[test]
fn a_spoof_on_a_side_the_participant_layered_is_reported_as_layering_with_its_evidence() {
    // GSCO's top layer joins the best bid 10.00 with 3,000 shares (the spoof shape), two more
    // layers sit behind it; its offer at 10.02 is lifted; the top layer is pulled first.
    let mut f = Feed::with_book();
    f.add(T0, 20, b'B', 3_000, 10.00, Some(GSCO));
    f.add(T0 + 50 * MS, 21, b'B', 2_000, 9.99, Some(GSCO));
    f.add(T0 + 100 * MS, 22, b'B', 2_000, 9.98, Some(GSCO));
    f.add(T0 + 200 * MS, 10, b'S', 200, 10.02, Some(GSCO));
    f.exec(T0 + 300 * MS, 10, 200);
    f.delete(T0 + 400 * MS, 20);
    f.delete(T0 + 420 * MS, 21);
    f.delete(T0 + 440 * MS, 22);
    let alerts = run_with(&f, rules(), &[]);
    assert!(of(&alerts, DetectorId::Spoofing).is_empty(), "{alerts:?}");
    let l = of(&alerts, DetectorId::Layering);
    assert_eq!(l.len(), 1, "{alerts:?}");
    let a = &l[0];
    assert_eq!(a.ts, T0 + 400 * MS, "at the spoof's pull");
    assert_eq!(party_name(&a.party), "GSCO");
    assert_eq!(a.refs(), &[10, 20]);
    assert_eq!(ev(a, "levels_held"), 3.0);
    assert_eq!(ev(a, "spoof_shares"), 3_000.0);
    assert_eq!(ev(a, "spoof_lifetime_ns"), (400 * MS) as f64);
    assert!((ev(a, "spoof_touch_share_ratio") - 3_000.0 / 3_300.0).abs() < 1e-9);
    // With layering off, the same episode is a spoof.
    let mut r = rules();
    r.layering.enabled = false;
    assert_eq!(of(&run_with(&f, r, &[]), DetectorId::Spoofing).len(), 1);
}

#[test]
fn spoofing_near_miss_an_order_about_the_size_of_its_own_fill() {
    // GSCO quotes both sides: a 2,000-share bid filled in full, its 3,000-share offer pulled
    // 70 ms later — a market maker's refresh, not a spoof dwarfing the order it helped fill.
    let mut f = Feed::with_book();
    f.add(T0, 10, b'B', 2_000, 10.00, Some(GSCO));
    let ts = T0 + 100 * MS;
    f.add(ts, 11, b'S', 3_000, 10.01, Some(GSCO));
    f.exec(ts + 50 * MS, 10, 2_000);
    f.delete(ts + 120 * MS, 11);
    assert!(spoofs(&f).is_empty());
    // The same with a 200-share fill: 15 times over, a spoof (ratio in the evidence).
    let s = spoofs(&spoof_episode(50 * MS, 120 * MS));
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(ev(&s[0], "spoof_exec_ratio"), 15.0);
    // The ratio comes from the rules.
    let mut r = rules();
    r.spoofing.min_spoof_exec_ratio = 1.0;
    assert_eq!(of(&run_with(&f, r, &[]), DetectorId::Spoofing).len(), 1);
}

#[test]
fn spoofing_near_miss_small_or_away_from_the_touch() {
    // 900 shares improving the offer: below 1,000.
    let mut f = Feed::with_book();
    f.add(T0, 10, b'B', 200, 10.00, Some(GSCO));
    f.add(T0 + 100 * MS, 11, b'S', 900, 10.01, Some(GSCO));
    f.exec(T0 + 150 * MS, 10, 200);
    f.delete(T0 + 200 * MS, 11);
    assert!(spoofs(&f).is_empty());
    // 5,000 shares behind the touch (10.03): neither improves nor joins the best.
    let mut f = Feed::with_book();
    f.add(T0, 10, b'B', 200, 10.00, Some(GSCO));
    f.add(T0 + 100 * MS, 11, b'S', 5_000, 10.03, Some(GSCO));
    f.exec(T0 + 150 * MS, 10, 200);
    f.delete(T0 + 200 * MS, 11);
    assert!(spoofs(&f).is_empty());
    // 1,200 joining a 5,100 offer: 19 % of the touch.
    let mut f = Feed::with_book();
    f.add(T0 - 1, 5, b'S', 4_800, 10.02, None);
    f.add(T0, 10, b'B', 200, 10.00, Some(GSCO));
    f.add(T0 + 100 * MS, 11, b'S', 1_200, 10.02, Some(GSCO));
    f.exec(T0 + 150 * MS, 10, 200);
    f.delete(T0 + 200 * MS, 11);
    assert!(spoofs(&f).is_empty());
}

#[test]
fn spoofing_near_miss_the_large_order_was_meaningfully_executed() {
    let mut f = Feed::with_book();
    f.add(T0, 10, b'B', 200, 10.00, Some(GSCO));
    f.add(T0 + 100 * MS, 11, b'S', 3_000, 10.01, Some(GSCO));
    f.exec(T0 + 120 * MS, 11, 1_000); // a third of it traded: genuine
    f.exec(T0 + 150 * MS, 10, 200);
    f.delete(T0 + 200 * MS, 11);
    assert!(spoofs(&f).is_empty());
    // A small fill of it (10 %) does not clear it.
    let mut f = Feed::with_book();
    f.add(T0, 10, b'B', 200, 10.00, Some(GSCO));
    f.add(T0 + 100 * MS, 11, b'S', 3_000, 10.01, Some(GSCO));
    f.exec(T0 + 120 * MS, 11, 300);
    f.exec(T0 + 150 * MS, 10, 200);
    f.delete(T0 + 200 * MS, 11);
    let s = spoofs(&f);
    assert_eq!(s.len(), 1);
    assert!((ev(&s[0], "spoof_fill_ratio") - 0.1).abs() < 1e-9);
}

#[test]
fn spoofing_repeats_within_the_cooldown_raise_one_alert() {
    let mut f = Feed::with_book();
    f.add(T0, 10, b'B', 1_000, 10.00, Some(GSCO));
    for k in 0..3u64 {
        let t = T0 + 100 * MS + k * 500 * MS;
        f.add(t, 20 + k, b'S', 3_000, 10.01, Some(GSCO));
        f.exec(t + 50 * MS, 10, 100);
        f.delete(t + 100 * MS, 20 + k);
    }
    assert_eq!(spoofs(&f).len(), 1);
    // After the cooldown (5 s) it fires again.
    let t = T0 + 10_000 * MS;
    f.add(t, 30, b'S', 3_000, 10.01, Some(GSCO));
    f.exec(t + 50 * MS, 10, 100);
    f.delete(t + 100 * MS, 30);
    assert_eq!(spoofs(&f).len(), 2);
}

#[test]
fn spoofing_names_the_account_the_flow_links_the_orders_to() {
    let mut f = Feed::new();
    let mut dir: StockDirectory = bytemuck::Zeroable::zeroed();
    dir.hdr = header(b'R', LOC, 0, T0 - 950 * MS);
    dir.stock = SYM;
    push_frame(&mut f.v, &dir);
    let t = T0 - 900 * MS;
    f.add(t, 1, b'B', 300, 10.00, None);
    f.add(t, 3, b'S', 300, 10.02, None);
    // Anonymous adds: only the flow says whose they are.
    f.add(T0, 10, b'B', 200, 10.00, None);
    f.add(T0 + 100 * MS, 11, b'S', 3_000, 10.01, None);
    f.exec(T0 + 150 * MS, 10, 200);
    f.delete(T0 + 200 * MS, 11);
    let acct = party_of_name("ACCT7").unwrap();
    let rec = |ts, side, r, price: f64, shares| FlowRecord {
        ts,
        account: acct,
        mpid: *GSCO,
        stock: SYM,
        event: FlowEvent::New,
        side,
        order_ref: r,
        price: px(price),
        shares,
        match_number: 0,
    };
    let flow = [
        rec(T0, Side::Buy, 10, 10.00, 200),
        rec(T0 + 100 * MS, Side::Sell, 11, 10.01, 3_000),
    ];
    let s = of(&run_with(&f, rules(), &flow), DetectorId::Spoofing);
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(party_name(&s[0].party), "ACCT7");
    // Without the flow nobody is known: nothing fires.
    assert!(of(&run_with(&f, rules(), &[]), DetectorId::Spoofing).is_empty());
}

#[test]
fn spoofing_disabled_or_stricter_rules_do_not_fire() {
    let f = spoof_episode(50 * MS, 120 * MS);
    let mut r = rules();
    r.spoofing.enabled = false;
    assert!(of(&run_with(&f, r, &[]), DetectorId::Spoofing).is_empty());
    let mut r = rules();
    r.spoofing.min_spoof_shares = 5_000;
    assert!(of(&run_with(&f, r, &[]), DetectorId::Spoofing).is_empty());
}

/// GSCO stacks 2,000-share bids at 9.99, 9.98, 9.97 (refs 20..=22; the background has 300 at
/// 10.00 and 9.99), sells 200 at 10.02 (ref 10, executed at +300 ms), then deletes the layers
/// from `cancel_at` after the execution, 20 ms apart.
fn layering_episode(exec_party: &[u8; 4], cancel_at: Option<u64>) -> Feed {
    let mut f = Feed::with_book();
    f.add(T0, 20, b'B', 2_000, 9.99, Some(GSCO));
    f.add(T0 + 50 * MS, 21, b'B', 2_000, 9.98, Some(GSCO));
    f.add(T0 + 100 * MS, 22, b'B', 2_000, 9.97, Some(GSCO));
    f.add(T0 + 200 * MS, 10, b'S', 200, 10.02, Some(exec_party));
    let te = T0 + 300 * MS;
    f.exec(te, 10, 200);
    if let Some(c) = cancel_at {
        for (i, r) in [20u64, 21, 22].into_iter().enumerate() {
            f.delete(te + c + i as u64 * 20 * MS, r);
        }
    }
    f
}

#[test]
fn layering_fires_when_the_layers_are_pulled_after_the_opposite_execution() {
    let f = layering_episode(GSCO, Some(100 * MS));
    let alerts = run_with(&f, rules(), &[]);
    let l = of(&alerts, DetectorId::Layering);
    assert_eq!(l.len(), 1, "{l:?}");
    let a = &l[0];
    assert_eq!(party_name(&a.party), "GSCO");
    assert_eq!(a.ts, T0 + 420 * MS, "fires at the second cancel");
    assert_eq!(a.since, T0, "the episode starts at the first layer");
    assert_eq!(a.refs(), &[10, 20, 21]);
    assert_eq!(ev(a, "levels_held"), 3.0);
    // 2,000 of 2,300 at 9.99.
    assert!((ev(a, "min_level_share_ratio") - 2_000.0 / 2_300.0).abs() < 1e-9);
    assert_eq!(ev(a, "layer_shares"), 6_000.0);
    assert_eq!(ev(a, "exec_shares"), 200.0);
    assert_eq!(ev(a, "cancelled_layers"), 2.0);
    assert_eq!(ev(a, "cancel_after_exec_ns"), (120 * MS) as f64);
    assert!(ev(a, "move_bps").is_finite() && ev(a, "reversion_bps").is_finite());
    // Layers behind the touch are not a spoof.
    assert!(of(&alerts, DetectorId::Spoofing).is_empty());
}

#[test]
fn layering_reports_the_move_with_the_layers_and_the_reversion() {
    let mut f = Feed::with_book();
    f.add(T0, 20, b'B', 2_000, 9.99, Some(GSCO)); // mid 10.01
    f.add(T0 + 50 * MS, 21, b'B', 2_000, 9.98, Some(GSCO));
    f.add(T0 + 100 * MS, 22, b'B', 2_000, 9.97, Some(GSCO));
    // Buyers take the 10.02 offer: mid 10.015; GSCO offers 10.03 and is lifted.
    f.exec(T0 + 150 * MS, 3, 300);
    f.add(T0 + 200 * MS, 10, b'S', 200, 10.03, Some(GSCO));
    f.exec(T0 + 300 * MS, 10, 200);
    // Sellers hit 10.00 (mid back down) before the pull.
    f.exec(T0 + 350 * MS, 1, 300);
    f.delete(T0 + 400 * MS, 20);
    f.delete(T0 + 410 * MS, 21);
    let l = layerings(&f);
    assert_eq!(l.len(), 1);
    // Mid 10.01 → 10.015 at the execution (before it: bid 10.00, ask 10.03) = +5 bps.
    let mv = ev(&l[0], "move_bps");
    assert!((mv - 4.995).abs() < 0.01, "{mv}");
    // At the pull the bid is the background's 9.99 and the ask 10.03: mid 10.01, back down
    // from 10.015.
    let rv = ev(&l[0], "reversion_bps");
    assert!(rv > 0.0, "{rv}");
    // Requiring a bigger move than that stops it.
    let mut r = rules();
    r.layering.min_move_bps = 10.0;
    assert!(of(&run_with(&f, r, &[]), DetectorId::Layering).is_empty());
}

#[test]
fn layering_near_miss_layers_left_in_place() {
    assert!(layerings(&layering_episode(GSCO, None)).is_empty());
}

#[test]
fn layering_near_miss_the_execution_is_another_participants() {
    assert!(layerings(&layering_episode(MSCO, Some(100 * MS))).is_empty());
}

#[test]
fn layering_near_miss_layers_pulled_too_late() {
    // The timing score falls from 1 (pull ≤ 2 s after the fill) to 0 (5 s): 5.1 s scores 0,
    // 4.2 s ≈ 0.15.
    assert!(layerings(&layering_episode(GSCO, Some(5_100 * MS))).is_empty());
    assert!(layerings(&layering_episode(GSCO, Some(4_200 * MS))).is_empty());
    // The second cancel just inside 2 s fires with a full score.
    let l = layerings(&layering_episode(GSCO, Some(1_970 * MS)));
    assert_eq!(l.len(), 1);
    assert_eq!(ev(&l[0], "timing_score"), 1.0);
}

#[test]
fn layering_pulled_a_little_over_two_seconds_after_the_fill_counts_with_a_lower_score() {
    let mut last = 1.0;
    for ms in [2_200u64, 2_400, 2_580] {
        // The second cancel, 20 ms after the first, completes the pull.
        let l = layerings(&layering_episode(GSCO, Some((ms - 20) * MS)));
        assert_eq!(l.len(), 1, "pulled {ms} ms after the fill");
        let score = ev(&l[0], "timing_score");
        assert!(
            (0.5..1.0).contains(&score) && score < last,
            "{ms} ms: {score}"
        );
        last = score;
        assert_eq!(ev(&l[0], "cancel_after_exec_ns"), (ms * MS) as f64);
    }
}

#[test]
fn layering_near_miss_a_single_large_order_is_spoofing_only() {
    let f = spoof_episode(50 * MS, 120 * MS);
    let alerts = run_with(&f, rules(), &[]);
    assert_eq!(of(&alerts, DetectorId::Spoofing).len(), 1);
    assert!(of(&alerts, DetectorId::Layering).is_empty());
    // Two large orders on two levels: under the three levels required.
    let mut f = Feed::with_book();
    f.add(T0, 20, b'B', 3_000, 9.99, Some(GSCO));
    f.add(T0 + 50 * MS, 21, b'B', 3_000, 9.98, Some(GSCO));
    f.add(T0 + 200 * MS, 10, b'S', 200, 10.02, Some(GSCO));
    f.exec(T0 + 300 * MS, 10, 200);
    f.delete(T0 + 400 * MS, 20);
    f.delete(T0 + 410 * MS, 21);
    assert!(layerings(&f).is_empty());
}

#[test]
fn layering_near_miss_small_shares_of_busy_levels() {
    // The levels are deep (10,000 anonymous shares each): GSCO's 2,000 are a sixth of them.
    let mut f = Feed::with_book();
    for (i, p) in [9.99, 9.98, 9.97].into_iter().enumerate() {
        f.add(T0 - 500 * MS, 30 + i as u64, b'B', 10_000, p, None);
    }
    f.add(T0, 20, b'B', 2_000, 9.99, Some(GSCO));
    f.add(T0 + 50 * MS, 21, b'B', 2_000, 9.98, Some(GSCO));
    f.add(T0 + 100 * MS, 22, b'B', 2_000, 9.97, Some(GSCO));
    f.add(T0 + 200 * MS, 10, b'S', 200, 10.02, Some(GSCO));
    f.exec(T0 + 300 * MS, 10, 200);
    for r in [20, 21, 22] {
        f.delete(T0 + 400 * MS, r);
    }
    assert!(layerings(&f).is_empty());
}

#[test]
fn layering_on_the_offer_side_with_replaces_away() {
    let mut f = Feed::with_book();
    f.add(T0, 20, b'S', 2_000, 10.03, Some(GSCO));
    f.add(T0 + 10 * MS, 21, b'S', 2_000, 10.04, Some(GSCO));
    f.add(T0 + 20 * MS, 22, b'S', 2_000, 10.05, Some(GSCO));
    f.add(T0 + 30 * MS, 10, b'B', 200, 10.00, Some(GSCO));
    f.exec(T0 + 100 * MS, 10, 200);
    f.replace(T0 + 150 * MS, 20, 40, 2_000, 10.50);
    f.replace(T0 + 160 * MS, 21, 41, 2_000, 10.51);
    let l = layerings(&f);
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(party_name(&l[0].party), "GSCO");
    assert_ne!(l[0].party, NOBODY);
    let _ = party_of_mpid(*GSCO);
}

/// A deep book: 100 anonymous orders of 300 at the 10.00 bid and at the 10.01 offer, and a
/// few levels behind each (refs from 1,000).
fn deep_book() -> Feed {
    let mut f = Feed::new();
    let t = T0 - 900 * MS;
    let mut r = 1_000;
    for (side, prices) in [
        (b'B', [10.00, 9.99, 9.98, 9.97]),
        (b'S', [10.01, 10.02, 10.03, 10.04]),
    ] {
        for p in prices {
            for _ in 0..100 {
                f.add(t, r, side, 300, p, None);
                r += 1;
            }
        }
    }
    f
}

#[test]
fn spoofing_on_a_deep_touch_fires_by_size_multiple() {
    // 7,000 joining 30,000 in 100 orders: 19 % of the touch, 23× the average order there.
    let mut f = deep_book();
    f.add(T0, 10, b'B', 200, 10.00, Some(GSCO));
    f.add(T0 + 100 * MS, 11, b'S', 7_000, 10.01, Some(GSCO));
    f.exec(T0 + 150 * MS, 10, 200);
    f.delete(T0 + 200 * MS, 11);
    let s = spoofs(&f);
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0].severity, Severity::Medium, "just over the multiple");
    let m = ev(&s[0], "size_multiple_ratio");
    assert!((m - 7_000.0 / 300.0).abs() < 1e-9, "{m}");
    assert!(s[0]
        .evidence_list()
        .iter()
        .all(|e| e.name != "touch_share_ratio"));
    // 5,000 there: 14 % and 17×: neither.
    let mut f = deep_book();
    f.add(T0, 10, b'B', 200, 10.00, Some(GSCO));
    f.add(T0 + 100 * MS, 11, b'S', 5_000, 10.01, Some(GSCO));
    f.exec(T0 + 150 * MS, 10, 200);
    f.delete(T0 + 200 * MS, 11);
    assert!(spoofs(&f).is_empty());
}

#[test]
fn layering_on_deep_levels_holds_them_by_size_multiple() {
    // 6,500 on each of 9.99, 9.98, 9.97 (30,000 in 100 orders each): 18 %, 21.7×.
    let build = |shares: u32| {
        let mut f = deep_book();
        f.add(T0, 20, b'B', shares, 9.99, Some(GSCO));
        f.add(T0 + 10 * MS, 21, b'B', shares, 9.98, Some(GSCO));
        f.add(T0 + 20 * MS, 22, b'B', shares, 9.97, Some(GSCO));
        f.add(T0 + 30 * MS, 10, b'S', 200, 10.01, Some(GSCO));
        f.exec(T0 + 100 * MS, 10, 200);
        f.delete(T0 + 150 * MS, 20);
        f.delete(T0 + 160 * MS, 21);
        f
    };
    let l = layerings(&build(6_500));
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(ev(&l[0], "levels_held"), 3.0);
    assert!((ev(&l[0], "min_size_multiple_ratio") - 6_500.0 / 300.0).abs() < 1e-9);
    // 5,000 each: 14 %, 16.7×: not held.
    assert!(layerings(&build(5_000)).is_empty());
}

fn generated(seed: u64, messages: u64) -> (Vec<u8>, Vec<tickwatch::truth::Episode>) {
    let mut feed = Vec::new();
    let (_, episodes, _) = generate_scenarios(
        &GenConfig {
            messages,
            symbols: 60,
            live_orders: messages / 20,
            seed,
        },
        600_000_000_000,
        &ScenarioPlan {
            kinds: vec![ScenarioKind::Spoofing, ScenarioKind::Layering],
            rate: 3.0,
        },
        &mut feed,
    )
    .unwrap();
    (feed, episodes)
}

#[test]
fn the_detectors_allocate_nothing_on_the_hot_path() {
    let (feed, _) = generated(5, 200_000);
    let r = rules();
    let mut books = Books::new(BookConfig::small());
    let mut spoofing = Spoofing::new(&r.limits);
    let mut layering = Layering::new(&r.limits);
    let mut out = Alerts::new(256);
    let mut report = tickwatch::replay::ReplayReport::default();
    let mut seq = 0u32;
    let (raised, n) = common::allocations(|| {
        let mut raised = [0u64; 2];
        tickwatch::replay::for_each_message(&feed, &mut books, false, &mut report, |b, msg, _| {
            let mut ev = SurvEvent::classify(msg, b, seq);
            seq += 1;
            b.apply(msg);
            if ev.locate != 0 {
                ev.after = tickwatch::agg::Touch::of(b, ev.locate);
            }
            let ctx = Ctx {
                books: b,
                symbol: b.symbol(ev.locate).copied().unwrap_or([b' '; 8]),
            };
            spoofing.on_event(&r.spoofing, &ev, &ctx, &mut out);
            layering.on_event(&r.layering, &ev, &ctx, &mut out);
            for a in out.drain() {
                raised[(a.detector == DetectorId::Layering) as usize] += 1;
            }
            true
        })
        .unwrap();
        raised
    });
    assert_eq!(n, 0, "the detectors allocated {n} times");
    assert!(raised[0] >= 20 && raised[1] >= 20, "{raised:?}");
    assert_eq!(
        spoofing.counters.order_overflow + layering.counters.order_overflow,
        0
    );
}

#[test]
fn generated_episodes_are_found_with_recall_and_precision_floors() {
    // A 10-minute session, 60 stocks, 30 episodes of each scenario among the background's
    // attributed orders of the same MPIDs.
    for seed in [3, 4] {
        let (feed, episodes) = generated(seed, 300_000);
        let mut books = Books::new(BookConfig::small());
        let (alerts, _) = surveil_feed(&feed, &mut books, rules(), &[], 1024).unwrap();
        let mut jsonl = Vec::new();
        for a in &alerts {
            a.write_json(&mut jsonl);
        }
        let refs = parse_alerts(std::str::from_utf8(&jsonl).unwrap()).unwrap();
        let truth = Truth {
            episodes,
            ..Truth::default()
        };
        for d in ["spoofing", "layering"] {
            let s = score(&truth, &refs)
                .into_iter()
                .find(|s| s.detector == d)
                .unwrap();
            assert!(s.episodes >= 25, "seed {seed} {d}: {s:?}");
            assert!(s.recall.unwrap() >= 0.95, "seed {seed} {d}: {s:?}");
            assert!(s.precision.unwrap() >= 0.9, "seed {seed} {d}: {s:?}");
        }
    }
}

#[test]
fn layering_marks_layers_added_after_the_first_execution_of_the_trade() {
    let mut f = layering_episode(GSCO, None);
    // A fourth layer at 9.96 after the first fill, a second fill, then the new layer and one
    // old one are pulled.
    f.add(T0 + 350 * MS, 23, b'B', 2_000, 9.96, Some(GSCO));
    f.add(T0 + 360 * MS, 11, b'S', 100, 10.02, Some(GSCO));
    f.exec(T0 + 400 * MS, 11, 100);
    f.delete(T0 + 500 * MS, 23);
    f.delete(T0 + 510 * MS, 20);
    let l = layerings(&f);
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(ev(&l[0], "levels_held"), 4.0);
    assert_eq!(ev(&l[0], "exec_shares"), 300.0);
    assert_eq!(l[0].refs(), &[10, 23, 20]);
}

#[test]
fn rules_tables_parse_and_refuse_nonsense_by_name() {
    let r = Rules::from_toml(
        "[spoofing]\nmin_spoof_shares = 5000\n[layering]\nmin_levels_held = 4\n",
        "t.toml",
    )
    .unwrap();
    assert_eq!(r.spoofing.min_spoof_shares, 5_000);
    assert_eq!(r.layering.min_levels_held, 4);
    let e = Rules::from_toml("[layering]\nmin_levels_held = 1\n", "t.toml").unwrap_err();
    assert!(e.to_string().contains("[layering]"), "{e}");
    let e = Rules::from_toml("[spoofing]\nmin_touch_share = 2.0\n", "t.toml").unwrap_err();
    assert!(e.to_string().contains("min_touch_share"), "{e}");
    let e = Rules::from_toml("[spoofing]\nmin_touch_shares = 0.3\n", "t.toml").unwrap_err();
    assert!(e.to_string().contains("min_touch_shares"), "{e}");
}
