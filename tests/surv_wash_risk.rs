//! Wash trades (participant flow) and the risk book: hand-made feeds and flows that must fire,
//! with their evidence and participant, and near misses that must not.

mod common;

use tickwatch::book::{BookConfig, Books};
use tickwatch::itch::be::{BeU32, BeU64};
use tickwatch::itch::encode::{header, push_frame};
use tickwatch::itch::wire::{AddOrder, AddOrderMpid, OrderExecuted, StockDirectory};
use tickwatch::itch::Side;
use tickwatch::surv::event::{party_name, party_of_mpid, party_of_name};
use tickwatch::surv::flow::{parse_flow, FLOW_HEADER};
use tickwatch::surv::risk::RiskRules;
use tickwatch::surv::{
    surveil_feed, Alert, Alerts, Capacity, DetectorId, FlowRecord, RiskBook, RiskInput, Rules,
    Severity,
};

#[global_allocator]
static GLOBAL: common::Counting = common::Counting;

const SEC: u64 = 1_000_000_000;
const T0: u64 = 34_200 * SEC; // 09:30

fn small_rules() -> Rules {
    Rules {
        limits: Capacity {
            orders: 1024,
            parties: 64,
            pairs: 1024,
            locates: 65_536,
        },
        ..Rules::default()
    }
}

/// Stock ABC (locate 1) with a 100.00 / 100.10 book, then `tail` messages.
fn feed(tail: &[Msg]) -> Vec<u8> {
    let mut v = Vec::new();
    push_frame(
        &mut v,
        &StockDirectory {
            hdr: header(b'R', 1, 0, T0 - SEC),
            stock: *b"ABC     ",
            ..bytemuck::Zeroable::zeroed()
        },
    );
    let add = |v: &mut Vec<u8>, r: u64, side: u8, px: u32, t: u64| {
        push_frame(
            v,
            &AddOrder {
                hdr: header(b'A', 1, 0, t),
                order_ref: BeU64::new(r),
                side,
                shares: BeU32::new(500),
                stock: *b"ABC     ",
                price: BeU32::new(px),
            },
        )
    };
    add(&mut v, 1, b'B', 1_000_000, T0);
    add(&mut v, 2, b'S', 1_001_000, T0);
    for m in tail {
        match *m {
            Msg::AddF(r, side, px, shares, t) => push_frame(
                &mut v,
                &AddOrderMpid {
                    hdr: header(b'F', 1, 0, t),
                    order_ref: BeU64::new(r),
                    side,
                    shares: BeU32::new(shares),
                    stock: *b"ABC     ",
                    price: BeU32::new(px),
                    attribution: *b"GSCO",
                },
            ),
            Msg::Exec(r, shares, mn, t) => push_frame(
                &mut v,
                &OrderExecuted {
                    hdr: header(b'E', 1, 0, t),
                    order_ref: BeU64::new(r),
                    executed_shares: BeU32::new(shares),
                    match_number: BeU64::new(mn),
                },
            ),
        }
    }
    v
}

#[derive(Clone, Copy)]
enum Msg {
    /// ref, side, price, shares, ts.
    AddF(u64, u8, u32, u32, u64),
    /// ref, shares, match number, ts.
    Exec(u64, u32, u64, u64),
}

fn flow(lines: &[&str]) -> Vec<FlowRecord> {
    let text = format!("{FLOW_HEADER}\n{}\n", lines.join("\n"));
    parse_flow(&text, "test.csv").unwrap()
}

fn washes(msgs: &[Msg], fl: &[FlowRecord], rules: Rules) -> Vec<Alert> {
    let mut books = Books::new(BookConfig::small());
    let (alerts, c) = surveil_feed(&feed(msgs), &mut books, rules, fl, 1024).unwrap();
    assert_eq!(
        c.flow_applied as usize,
        fl.len(),
        "every flow record applied"
    );
    alerts
        .into_iter()
        .filter(|a| a.detector == DetectorId::WashTrade)
        .collect()
}

fn ev(a: &Alert, name: &str) -> f64 {
    a.evidence_list()
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no evidence {name} in {a:?}"))
        .value
}

/// The firm's ACCT1 rests a sell of 300 at 100.10 (ref 10) and buys 200 of it itself.
fn self_trade(t: u64) -> (Vec<Msg>, Vec<String>) {
    let msgs = vec![
        Msg::AddF(10, b'S', 1_001_000, 300, t),
        Msg::Exec(10, 200, 777, t + SEC / 2),
    ];
    let fl = vec![
        format!("{t},ACCT1,GSCO,ABC,new,S,10,100.10,300,0"),
        format!("{},ACCT1,GSCO,ABC,fill,S,10,100.10,200,777", t + SEC / 2),
        format!("{},ACCT1,GSCO,ABC,fill,B,0,100.10,200,777", t + SEC / 2),
    ];
    (msgs, fl)
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn a_self_trade_in_the_flow_fires_naming_the_account_match_and_orders() {
    let (msgs, fl) = self_trade(T0 + SEC);
    let a = washes(&msgs, &flow(&strs(&fl)), small_rules());
    assert_eq!(a.len(), 1, "{a:?}");
    let a = &a[0];
    assert_eq!(party_name(&a.party), "ACCT1");
    assert_eq!(
        party_name(&a.counterparty),
        "ACCT1",
        "a self trade: the same account"
    );
    assert_eq!(&a.stock, b"ABC     ");
    assert_eq!(a.locate, 1);
    assert_eq!(a.ts, T0 + SEC + SEC / 2);
    assert_eq!(a.severity, Severity::High);
    assert_eq!(ev(a, "match_number"), 777.0);
    assert_eq!(ev(a, "shares"), 200.0);
    assert_eq!(ev(a, "price_usd"), 100.1);
    assert_eq!(ev(a, "same_account"), 1.0);
    assert_eq!(ev(a, "side_gap_ns"), 0.0);
    assert_eq!(a.refs(), &[10]);
    // The touch after: the firm's order still rests 100 at 100.10 beside ref 2's 500.
    assert_eq!(a.touch.ask, 1_001_000);
    assert_eq!(a.touch.bid, 1_000_000);
}

#[test]
fn wash_prints_of_one_owner_and_stock_seconds_apart_are_one_case() {
    // Prints at 1.5 s, 3.0 s and 4.5 s after the open.
    let (mut msgs, mut fl) = self_trade(T0 + SEC);
    for (k, mn) in [(2u64, 778u64), (3, 779)] {
        let t = T0 + k * 3 * SEC / 2;
        msgs.push(Msg::Exec(10, 50, mn, t));
        fl.push(format!("{t},ACCT1,GSCO,ABC,fill,S,10,100.10,50,{mn}"));
        fl.push(format!("{t},ACCT1,GSCO,ABC,fill,B,0,100.10,50,{mn}"));
    }
    let fl = flow(&strs(&fl));
    let matches = |a: &[Alert]| a.iter().map(|a| ev(a, "match_number")).collect::<Vec<_>>();
    // Default: one case (prints less than quiet_ns = 5 s apart).
    assert_eq!(matches(&washes(&msgs, &fl, small_rules())), vec![777.0]);
    // A 1 s quiet time: every print is a case of its own.
    let mut r = small_rules();
    r.wash_trade.quiet_ns = SEC;
    assert_eq!(matches(&washes(&msgs, &fl, r)), vec![777.0, 778.0, 779.0]);
    // An ongoing case is raised again once the cooldown has passed.
    r.wash_trade.quiet_ns = 2 * SEC;
    r.wash_trade.cooldown_ns = 2 * SEC;
    assert_eq!(matches(&washes(&msgs, &fl, r)), vec![777.0, 779.0]);
}

#[test]
fn two_accounts_of_one_owner_fire_when_grouped_and_not_otherwise() {
    let t = T0 + SEC;
    let (msgs, _) = self_trade(t);
    let fl = [
        format!("{t},GSCO1,GSCO,ABC,new,S,10,100.10,300,0"),
        format!("{},GSCO1,GSCO,ABC,fill,S,10,100.10,200,777", t + SEC / 2),
        format!("{},GSCO2,GSCO,ABC,fill,B,0,100.10,200,777", t + SEC / 2),
    ];
    let fl = flow(&strs(&fl));
    // Default rules: two accounts are two owners.
    assert!(washes(&msgs, &fl, small_rules()).is_empty());
    // Grouped by a 4-character prefix: one owner; the alert names the resting account.
    let mut r = small_rules();
    r.wash_trade.owner_prefix_len = 4;
    let a = washes(&msgs, &fl, r);
    assert_eq!(a.len(), 1);
    assert_eq!(party_name(&a[0].party), "GSCO1");
    assert_eq!(
        party_name(&a[0].counterparty),
        "GSCO2",
        "the aggressor's account"
    );
    assert_eq!(ev(&a[0], "same_account"), 0.0);
    assert_eq!(a[0].severity, Severity::Medium);
    // Or by the firm's MPID.
    let mut r = small_rules();
    r.wash_trade.same_mpid_same_owner = true;
    assert_eq!(washes(&msgs, &fl, r).len(), 1);
}

#[test]
fn near_misses_do_not_fire() {
    let t = T0 + SEC;
    let (msgs, _) = self_trade(t);
    let cases: [[String; 3]; 4] = [
        // The firm's buy and sell on different match numbers (each against an outsider).
        [
            format!("{t},ACCT1,GSCO,ABC,new,S,10,100.10,300,0"),
            format!("{},ACCT1,GSCO,ABC,fill,S,10,100.10,200,777", t + SEC / 2),
            format!("{},ACCT1,GSCO,ABC,fill,B,0,100.10,200,999", t + SEC / 2),
        ],
        // One match number between two unrelated accounts.
        [
            format!("{t},ACCT1,GSCO,ABC,new,S,10,100.10,300,0"),
            format!("{},ACCT1,GSCO,ABC,fill,S,10,100.10,200,777", t + SEC / 2),
            format!("{},OTHER9,MSCO,ABC,fill,B,0,100.10,200,777", t + SEC / 2),
        ],
        // One match number, both on the same side (inconsistent flow).
        [
            format!("{t},ACCT1,GSCO,ABC,new,S,10,100.10,300,0"),
            format!("{},ACCT1,GSCO,ABC,fill,S,10,100.10,200,777", t + SEC / 2),
            format!("{},ACCT1,GSCO,ABC,fill,S,0,100.10,200,777", t + SEC / 2),
        ],
        // The other side reported too late (beyond pair_window_ns).
        [
            format!("{t},ACCT1,GSCO,ABC,new,S,10,100.10,300,0"),
            format!("{},ACCT1,GSCO,ABC,fill,S,10,100.10,200,777", t + SEC / 2),
            format!("{},ACCT1,GSCO,ABC,fill,B,0,100.10,200,777", t + 3 * SEC),
        ],
    ];
    for c in &cases {
        let a = washes(&msgs, &flow(&strs(c)), small_rules());
        assert!(a.is_empty(), "{c:?} fired {a:?}");
    }
    // Two unrelated accounts stay two owners even with prefix grouping.
    let mut r = small_rules();
    r.wash_trade.owner_prefix_len = 4;
    assert!(washes(&msgs, &flow(&strs(&cases[1])), r).is_empty());
}

#[test]
fn near_wash_is_off_by_default_and_fires_when_enabled() {
    let t = T0 + SEC;
    let (msgs, _) = self_trade(t);
    let fl = [
        format!("{t},ACCT1,GSCO,ABC,new,S,10,100.10,300,0"),
        format!("{},ACCT1,GSCO,ABC,fill,S,10,100.10,200,777", t + SEC / 2),
        format!("{},ACCT1,GSCO,ABC,fill,B,0,100.10,200,999", t + SEC),
    ];
    let fl = flow(&strs(&fl));
    assert!(washes(&msgs, &fl, small_rules()).is_empty());
    let mut r = small_rules();
    r.wash_trade.near_wash_ns = 2 * SEC;
    let a = washes(&msgs, &fl, r);
    assert_eq!(a.len(), 1);
    assert_eq!(ev(&a[0], "near_wash"), 1.0);
    assert_eq!(ev(&a[0], "round_trip_ns"), (SEC / 2) as f64);
    assert_eq!(a[0].severity, Severity::Low);
    // Beyond the window: nothing.
    r.wash_trade.near_wash_ns = SEC / 4;
    assert!(washes(&msgs, &fl, r).is_empty());
}

#[test]
fn wash_rules_reject_nonsense() {
    let bad = [
        "[wash_trade]\npair_window_ns = 0\n",
        "[wash_trade]\nowner_prefix_len = 13\n",
        "[wash_trade]\nmin_shares = 0\n",
        "[wash_trade]\nquiet_ns = 10\ncooldown_ns = 5\n",
        "[wash_trade]\nnear_wash_ns = 61000000000\n",
        "[risk]\nequity_usd = 0.0\n",
        "[risk]\nmax_loss_usd = -1.0\n",
        "[risk]\nmax_leverage = 8.0\nkill_leverage = 4.0\n",
        "[risk]\nmax_loss_usd = 10.0\nkill_loss_usd = 5.0\n",
        "[risk]\nrate_window_ns = 0\n",
    ];
    for t in bad {
        assert!(Rules::from_toml(t, "r.toml").is_err(), "{t} accepted");
    }
    let r = Rules::from_toml(
        "[wash_trade]\nowner_prefix_len = 4\n[risk]\nmax_order_rate = 10.0\n",
        "r.toml",
    )
    .unwrap();
    assert_eq!(r.wash_trade.owner_prefix_len, 4);
    assert_eq!(r.risk.max_order_rate, 10.0);
    // The defaults round-trip through their own TOML.
    assert_eq!(
        Rules::from_toml(&Rules::defaults_toml(), "d").unwrap(),
        Rules::default()
    );
}

// ---------------------------------------------------------------- risk

fn p(name: &str) -> tickwatch::surv::Party {
    party_of_name(name).unwrap()
}

fn fill(party: &str, locate: u16, side: Side, price_cents: u32, shares: u32) -> RiskInput {
    RiskInput::Fill {
        party: p(party),
        locate,
        stock: *b"XYZ     ",
        side,
        price: price_cents * 100,
        shares,
        touch: Default::default(),
    }
}

fn mark(locate: u16, mid_cents: u32) -> RiskInput {
    RiskInput::Mark {
        locate,
        mid2: mid_cents as u64 * 200,
        touch: Default::default(),
    }
}

fn run(book: &mut RiskBook, r: &RiskRules, inputs: &[(u64, RiskInput)]) -> Vec<Alert> {
    let mut out = Alerts::new(64);
    let mut all = Vec::new();
    for (i, (ts, inp)) in inputs.iter().enumerate() {
        book.apply(r, *ts, i as u32, inp, &mut out);
        all.extend(out.drain());
    }
    all
}

fn cap() -> Capacity {
    small_rules().limits
}

#[test]
fn positions_and_pnl_are_marked_to_mid() {
    let mut b = RiskBook::new(&cap());
    let r = RiskRules::default();
    let a = run(
        &mut b,
        &r,
        &[
            (T0, fill("ACC1", 5, Side::Buy, 1000, 100)), // long 100 @ 10.00
            (T0 + 1, fill("ACC1", 5, Side::Sell, 1200, 50)), // close 50 @ 12.00: +100
            (T0 + 2, mark(5, 1100)),                     // mid 11.00
            (T0 + 3, fill("ACC1", 6, Side::Sell, 500, 200)), // short 200 @ 5.00 in another stock
        ],
    );
    assert!(a.is_empty());
    assert_eq!(b.position(&p("ACC1"), 5), Some(50));
    assert_eq!(b.position(&p("ACC1"), 6), Some(-200));
    let (gross, net, realised, unrealised) = b.exposure(&p("ACC1")).unwrap();
    assert_eq!(realised, 100.0);
    assert_eq!(unrealised, 50.0); // 50 × (11 − 10); the short is at its cost
    assert_eq!(gross, 550.0 + 1000.0);
    assert_eq!(net, 550.0 - 1000.0);
    // Flipping through zero: buy 300 of the short at 4.00 → +200 realised, long 100 @ 4.
    run(
        &mut b,
        &r,
        &[(T0 + 4, fill("ACC1", 6, Side::Buy, 400, 300))],
    );
    assert_eq!(b.position(&p("ACC1"), 6), Some(100));
    let (gross, _, realised, unrealised) = b.exposure(&p("ACC1")).unwrap();
    assert_eq!(realised, 300.0);
    // Stock 6 is still marked at its first fill (5.00): 100 × (5 − 4) unrealised.
    assert_eq!(unrealised, 50.0 + 100.0);
    assert_eq!(gross, 550.0 + 500.0);
}

#[test]
fn a_loss_over_the_kill_threshold_stops_the_participant_once() {
    let mut b = RiskBook::new(&cap());
    let r = RiskRules {
        max_loss_usd: 5_000.0,
        kill_loss_usd: 8_000.0,
        ..RiskRules::default()
    };
    let a = run(
        &mut b,
        &r,
        &[
            (T0, fill("GSCO", 7, Side::Buy, 10_000, 1_000)), // $100k long
            (T0 + SEC, mark(7, 9_500)),                      // −$5,000: not over
            (T0 + 2 * SEC, mark(7, 9_400)),                  // −$6,000: soft breach
            (T0 + 3 * SEC, mark(7, 9_300)),                  // −$7,000: still one alert
            (T0 + 4 * SEC, mark(7, 9_100)),                  // −$9,000: kill
            (T0 + 5 * SEC, mark(7, 8_000)),                  // deeper: nothing more
            (T0 + 6 * SEC, mark(7, 9_900)),                  // recovers
            (T0 + 7 * SEC, mark(7, 8_000)),                  // crosses again: suppressed
        ],
    );
    let losses: Vec<&Alert> = a
        .iter()
        .filter(|a| a.evidence_list().iter().any(|e| e.name == "loss_usd"))
        .collect();
    assert_eq!(losses.len(), 2, "{a:#?}");
    let soft = losses[0];
    assert_eq!(party_name(&soft.party), "GSCO");
    assert!(!soft.kill_switch);
    assert_eq!(soft.ts, T0 + 2 * SEC);
    assert_eq!(ev(soft, "loss_usd"), 6_000.0);
    let kill = losses[1];
    assert!(kill.kill_switch);
    assert_eq!(kill.severity, Severity::Critical);
    assert_eq!(kill.ts, T0 + 4 * SEC);
    assert_eq!(ev(kill, "loss_usd"), 9_000.0);
    let e = kill
        .evidence_list()
        .iter()
        .find(|e| e.name == "loss_usd")
        .unwrap();
    assert_eq!(e.threshold, 8_000.0);
    assert!(b.killed(&p("GSCO")));
    assert!(b.counters.suppressed >= 1);
    assert_eq!(b.counters.kills, 1);
    let day: Vec<_> = b.summary().collect();
    assert_eq!(day.len(), 1);
    assert!(day[0].killed);
    assert_eq!(day[0].peak_loss_usd, 20_000.0);
    assert_eq!(day[0].peak_net_notional_stock_usd, 100_000.0);
    assert_eq!(day[0].unrealised_pnl_usd, -20_000.0);
}

#[test]
fn gross_net_and_leverage_limits_fire_once_per_crossing() {
    let mut b = RiskBook::new(&cap());
    let r = RiskRules {
        equity_usd: 100_000.0,
        max_gross_notional_usd: 150_000.0,
        max_net_notional_per_stock_usd: 120_000.0,
        max_leverage: 1.9,
        kill_leverage: 0.0,
        ..RiskRules::default()
    };
    let inputs: Vec<(u64, RiskInput)> = (0..4u64)
        .map(|i| (T0 + i, fill("ACC1", 1 + i as u16, Side::Buy, 10_000, 500))) // $50k each
        .chain([(T0 + 10, fill("ACC1", 9, Side::Sell, 10_000, 1_300))]) // −$130k in one stock
        .collect();
    let a = run(&mut b, &r, &inputs);
    // $200k gross at the 4th fill (> $150k) and leverage 2.0 > 1.9; the stock's $130k net over
    // $120k at the 5th; gross and leverage stay over: not raised again.
    assert_eq!(a.len(), 3, "{a:#?}");
    assert!(a
        .iter()
        .all(|a| !a.kill_switch && party_name(&a.party) == "ACC1"));
    assert_eq!(a[0].ts, T0 + 3);
    assert_eq!(ev(&a[0], "gross_notional_usd"), 200_000.0);
    let net = a
        .iter()
        .find(|a| {
            a.evidence_list()
                .iter()
                .any(|e| e.name == "net_notional_stock_usd")
        })
        .unwrap();
    assert_eq!(net.locate, 9);
    assert_eq!(&net.stock, b"XYZ     ");
    assert_eq!(ev(net, "net_notional_stock_usd"), 130_000.0);
    let lev = a
        .iter()
        .find(|a| a.evidence_list().iter().any(|e| e.name == "leverage_ratio"))
        .unwrap();
    assert_eq!(lev.ts, T0 + 3);
    assert!((ev(lev, "leverage_ratio") - 2.0).abs() < 1e-9);
}

#[test]
fn order_and_cancel_rates_over_the_window_fire_and_quiet_flow_does_not() {
    let mut b = RiskBook::new(&cap());
    let r = RiskRules {
        max_order_rate: 10.0,
        max_cancel_rate: 10.0,
        ..RiskRules::default()
    };
    let order = |party: &str, cancel| RiskInput::Order {
        party: p(party),
        locate: 3,
        cancel,
    };
    // Quiet: 5 orders and 5 cancels a second for a minute.
    let quiet: Vec<(u64, RiskInput)> = (0..600u64)
        .map(|i| (T0 + i * SEC / 10, order("SLOW", i % 2 == 1)))
        .collect();
    assert!(run(&mut b, &r, &quiet).is_empty());
    // A burst: 40 orders and 40 cancels in 200 ms.
    let burst: Vec<(u64, RiskInput)> = (0..80u64)
        .map(|i| (T0 + 100 * SEC + i * SEC / 400, order("FAST", i % 2 == 1)))
        .collect();
    let a = run(&mut b, &r, &burst);
    assert_eq!(a.len(), 2, "{a:#?}");
    assert!(a
        .iter()
        .all(|a| party_name(&a.party) == "FAST" && !a.kill_switch));
    assert_eq!(ev(&a[0], "order_rate_per_s"), 11.0);
    assert_eq!(ev(&a[1], "cancel_rate_per_s"), 11.0);
}

#[test]
fn a_flat_participant_and_anonymous_input_raise_nothing() {
    let mut b = RiskBook::new(&cap());
    let r = RiskRules {
        max_gross_notional_usd: 1.0,
        ..RiskRules::default()
    };
    let a = run(
        &mut b,
        &r,
        &[
            (T0, fill("ACC1", 1, Side::Buy, 0, 100)), // zero price: ignored
            (T0, fill("ACC1", 1, Side::Buy, 1000, 0)), // zero shares: ignored
            (
                T0,
                RiskInput::Fill {
                    party: tickwatch::surv::NOBODY,
                    locate: 1,
                    stock: *b"XYZ     ",
                    side: Side::Buy,
                    price: u32::MAX,
                    shares: u32::MAX,
                    touch: Default::default(),
                },
            ),
            (T0, mark(0, 0)),
            (T0, mark(60_000, 1000)),
        ],
    );
    assert!(a.is_empty(), "{a:?}");
    // Huge prices and sizes do not overflow.
    let a = run(
        &mut b,
        &r,
        &[(T0, fill("BIG", 1, Side::Buy, u32::MAX / 100, u32::MAX))],
    );
    // Gross, leverage (over the kill threshold: stopped) and the stock's net notional.
    assert_eq!(a.len(), 3, "{a:#?}");
    assert!(a.iter().any(|a| a
        .evidence_list()
        .iter()
        .any(|e| e.name == "gross_notional_usd" && e.value > 1e15)));
    assert_eq!(a.iter().filter(|a| a.kill_switch).count(), 1);
    assert!(b.killed(&p("BIG")));
    // A round trip leaves no exposure.
    let mut b = RiskBook::new(&cap());
    let r = RiskRules {
        max_gross_notional_usd: 10_000.0,
        ..RiskRules::default()
    };
    let a = run(
        &mut b,
        &r,
        &[
            (T0, fill("MM", 1, Side::Buy, 1000, 500)),
            (T0 + 1, fill("MM", 1, Side::Sell, 1001, 500)),
            (T0 + 2, mark(1, 2000)),
        ],
    );
    assert!(a.is_empty());
    assert_eq!(b.exposure(&p("MM")).unwrap().0, 0.0);
    assert_eq!(b.exposure(&p("MM")).unwrap().2, 5.0);
    let _ = party_of_mpid(*b"GSCO");
}

#[test]
fn the_risk_book_does_not_allocate_per_input() {
    let mut b = RiskBook::new(&cap());
    let r = RiskRules {
        max_gross_notional_usd: 1_000.0,
        max_order_rate: 5.0,
        ..RiskRules::default()
    };
    let mut out = Alerts::new(64);
    let (_, n) = common::allocations(|| {
        for i in 0..2_000u64 {
            let party = if i % 3 == 0 { "A1" } else { "B2" };
            let input = match i % 4 {
                0 => fill(party, (i % 50) as u16 + 1, Side::Buy, 1000 + i as u32, 100),
                1 => fill(party, (i % 50) as u16 + 1, Side::Sell, 1000, 50),
                2 => mark((i % 50) as u16 + 1, 1000 + (i % 7) as u32),
                _ => RiskInput::Order {
                    party: p(party),
                    locate: 1,
                    cancel: i % 8 == 3,
                },
            };
            b.apply(&r, T0 + i * 1000, i as u32, &input, &mut out);
            out.drain().for_each(drop);
        }
    });
    assert_eq!(n, 0, "allocations in RiskBook::apply");
}

#[test]
fn flow_fills_reach_the_risk_book_through_surveillance() {
    // The self trade's first leg briefly holds $20k (over a tiny gross limit), the second
    // flattens it (re-arming the limit); a third, one-sided fill leaves $10k: two alerts.
    let (mut msgs, mut fl) = self_trade(T0 + SEC);
    msgs.push(Msg::Exec(10, 100, 900, T0 + 5 * SEC));
    fl.push(format!(
        "{},ACCT1,GSCO,ABC,fill,S,10,100.10,100,900",
        T0 + 5 * SEC
    ));
    let mut rules = small_rules();
    rules.risk.max_gross_notional_usd = 5_000.0;
    rules.risk.max_net_notional_per_stock_usd = 0.0;
    rules.risk.cooldown_ns = SEC;
    let mut books = Books::new(BookConfig::small());
    let (alerts, _) =
        surveil_feed(&feed(&msgs), &mut books, rules, &flow(&strs(&fl)), 1024).unwrap();
    let risk: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.detector == DetectorId::Risk)
        .collect();
    assert_eq!(risk.len(), 2, "{risk:#?}");
    assert!(risk.iter().all(|a| party_name(&a.party) == "ACCT1"));
    assert_eq!(risk[0].ts, T0 + SEC + SEC / 2);
    assert!((ev(risk[0], "gross_notional_usd") - 20_020.0).abs() < 1e-6);
    assert_eq!(risk[1].ts, T0 + 5 * SEC);
    // Marked to the mid, 100.05, by then.
    assert!((ev(risk[1], "gross_notional_usd") - 10_005.0).abs() < 1e-6);
}

#[test]
fn a_position_hovering_at_its_limit_is_one_alert_and_each_stock_has_its_own() {
    let mut b = RiskBook::new(&cap());
    let r = RiskRules {
        max_net_notional_per_stock_usd: 100_000.0,
        cooldown_ns: 10 * SEC,
        ..RiskRules::default()
    };
    // 1,000 shares: $100k at a mid of $100; the mid wiggles around it.
    let mut inputs = vec![(T0, fill("ACC1", 4, Side::Buy, 10_000, 1_000))];
    for (i, mid) in [10_100, 9_950, 10_050, 9_990, 10_200]
        .into_iter()
        .enumerate()
    {
        inputs.push((T0 + (i as u64 + 1) * SEC, mark(4, mid)));
    }
    // Clearly back under (below 90 %) and over again after the cooldown: a second alert.
    inputs.push((T0 + 20 * SEC, mark(4, 8_000)));
    inputs.push((T0 + 40 * SEC, mark(4, 10_500)));
    // Another stock over its limit: its own alert.
    inputs.push((T0 + 41 * SEC, fill("ACC1", 5, Side::Sell, 20_000, 600)));
    let a = run(&mut b, &r, &inputs);
    let at: Vec<(u64, u16)> = a.iter().map(|a| (a.ts, a.locate)).collect();
    assert_eq!(
        at,
        vec![(T0 + SEC, 4), (T0 + 40 * SEC, 4), (T0 + 41 * SEC, 5)],
        "{a:#?}"
    );
    assert_eq!(ev(&a[0], "net_notional_stock_usd"), 101_000.0);
    assert_eq!(ev(&a[2], "net_notional_stock_usd"), 120_000.0);
}

#[test]
fn the_wash_script_rests_an_attributed_flow_order_then_washes_it_two_or_three_times() {
    use tickwatch::rng::SplitMix64;
    use tickwatch::scenario::{EpisodeCtx, Op, ScenarioKind};
    let c = EpisodeCtx {
        start: T0 + 60 * SEC,
        open: T0,
        close: T0 + 3_600 * SEC,
        locate: 3,
        mpid: *b"GSCO",
        account: p("ACCT01"),
        account2: p("ACCT02"),
    };
    for seed in 0..200 {
        let mut rng = SplitMix64::new(seed);
        let s = ScenarioKind::Wash.script(&mut rng, &c);
        assert_eq!(s.start, c.start);
        let mut added = [0u32; 16];
        let mut washes = 0;
        let mut last = 0;
        for a in &s.actions {
            assert!(a.at >= last, "actions in time order");
            last = a.at;
            match a.op {
                Op::Add {
                    h,
                    shares,
                    attributed,
                    flow,
                    ..
                } => {
                    assert!(attributed && flow == 1);
                    added[h as usize] = shares;
                }
                Op::Wash { h, shares, flow } => {
                    assert_eq!(flow, 1, "the same account on both sides");
                    assert!(
                        shares > 0 && shares <= added[h as usize],
                        "washes a resting order"
                    );
                    added[h as usize] -= shares;
                    washes += 1;
                }
                Op::Cancel { h } => added[h as usize] = 0,
                op => panic!("unexpected {op:?}"),
            }
        }
        assert!((2..=3).contains(&washes), "{washes} prints");
        assert_eq!(s.detect_from, 0);
        assert!(s.detect_until >= last + SEC);
        assert!(last < 15 * SEC, "an episode lasts seconds");
    }
}

#[test]
fn flat_positions_leave_the_mark_list_so_open_ones_are_marked() {
    // 32 open positions per stock are marked to mid at once; the 33rd is counted and stays at
    // its fill price — until one of the 32 goes flat and gives its place up.
    let mut b = RiskBook::new(&Capacity {
        parties: 256,
        ..cap()
    });
    let r = RiskRules::default();
    let mut inputs: Vec<(u64, RiskInput)> = (0..33)
        .map(|i| (T0 + i, fill(&format!("H{i:02}"), 7, Side::Buy, 1000, 100)))
        .collect();
    inputs.push((T0 + 40, mark(7, 1100)));
    run(&mut b, &r, &inputs);
    assert_eq!(b.counters.holder_overflow, 1);
    let unrealised = |b: &mut RiskBook, who: &str| b.exposure(&p(who)).unwrap().3;
    assert_eq!(unrealised(&mut b, "H00"), 100.0); // 100 × (11 − 10)
    assert_eq!(
        unrealised(&mut b, "H32"),
        0.0,
        "not listed: still at its fill price"
    );
    // H00 sells out: flat, it leaves the list; H33 opens and is listed without overflow.
    run(
        &mut b,
        &r,
        &[
            (T0 + 50, fill("H00", 7, Side::Sell, 1100, 100)),
            (T0 + 51, fill("H33", 7, Side::Buy, 1100, 100)),
            (T0 + 52, mark(7, 1200)),
        ],
    );
    assert_eq!(
        b.counters.holder_overflow, 1,
        "the flat position's place was reused"
    );
    assert_eq!(b.position(&p("H00"), 7), Some(0));
    assert_eq!(unrealised(&mut b, "H00"), 0.0);
    assert_eq!(unrealised(&mut b, "H33"), 100.0); // 100 × (12 − 11)
    assert_eq!(unrealised(&mut b, "H01"), 200.0); // 100 × (12 − 10)
}
