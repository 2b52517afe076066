//! User detectors (`surv::custom`) beside the built-in ones: they see events, marks and the
//! participant flow; their alerts come out in the one deterministic stream, in the alert JSON
//! with their own name; the built-in detectors' alerts are byte-identical with and without them;
//! bad registrations are refused.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

mod common;
use common::shared::Shared;

use tickwatch::book::{BookConfig, Books};
use tickwatch::gen::{generate_scenarios, GenConfig, ScenarioPlan};
use tickwatch::scenario::ScenarioKind;
use tickwatch::surv::custom::{factory, UserDetectorError, MAX_USER_DETECTORS};
use tickwatch::surv::eval::{parse_alerts, score};
use tickwatch::surv::{
    surveil_feed, surveil_feed_with, Alert, Ctx, DetectorFactory, DetectorId, FlowEvent,
    FlowRecord, Kind, Rules, SurvEvent, Surveillance, UserAlerts, UserDetector,
};
use tickwatch::truth::Truth;

/// An add of at least `min` shares; follows at most `max_stocks` stocks (the rest counted).
struct BigAdd {
    min: u32,
    stocks: Vec<u16>,
    max_stocks: usize,
    full: u64,
}

impl UserDetector for BigAdd {
    fn name(&self) -> &'static str {
        "big_add"
    }

    fn on_event(&mut self, ev: &SurvEvent, ctx: &Ctx<'_>, out: &mut UserAlerts<'_>) {
        let Kind::Add {
            order_ref, shares, ..
        } = ev.kind
        else {
            return;
        };
        if !self.stocks.contains(&ev.locate) {
            if self.stocks.len() == self.max_stocks {
                self.full += 1;
                return;
            }
            self.stocks.push(ev.locate);
        }
        if shares >= self.min {
            // Built with another detector's id: the sink stamps it as this detector's.
            let a = Alert::new(DetectorId::Spoofing, ev.ts, ev.seq, ev.locate, ctx.symbol)
                .order_ref(order_ref)
                .evidence("shares", shares as f64, ">=", self.min as f64)
                .touch(ev.after);
            out.push(a);
        }
    }

    fn table_pressure(&self) -> Vec<(&'static str, u64)> {
        vec![("big_add stocks full", self.full)]
    }
}

/// Every fill of the firm's participant flow.
struct FlowFills;

impl UserDetector for FlowFills {
    fn name(&self) -> &'static str {
        "flow_fill"
    }

    fn on_event(&mut self, _: &SurvEvent, _: &Ctx<'_>, _: &mut UserAlerts<'_>) {}

    fn on_flow(
        &mut self,
        rec: &FlowRecord,
        locate: u16,
        seq: u32,
        ctx: &Ctx<'_>,
        out: &mut UserAlerts<'_>,
    ) {
        if rec.event == FlowEvent::Fill {
            let a = Alert::new(DetectorId::Custom, rec.ts, seq, locate, ctx.symbol)
                .party(rec.account)
                .order_ref(rec.order_ref);
            out.push(a);
        }
    }
}

/// A timer: one alert at the first watermark at or past `at`.
struct Timer {
    at: u64,
    fired: bool,
}

impl UserDetector for Timer {
    fn name(&self) -> &'static str {
        "timer"
    }

    fn on_event(&mut self, _: &SurvEvent, _: &Ctx<'_>, _: &mut UserAlerts<'_>) {}

    fn on_watermark(&mut self, wm: u64, seq: u32, _: &Ctx<'_>, out: &mut UserAlerts<'_>) {
        if !self.fired && wm >= self.at && wm != u64::MAX {
            self.fired = true;
            out.push(Alert::new(DetectorId::Custom, wm, seq, 0, [b' '; 8]));
        }
    }
}

/// 09:32, two minutes into the generated session.
const TIMER_AT: u64 = (9 * 3600 + 32 * 60) * 1_000_000_000;

fn detectors() -> Vec<DetectorFactory> {
    vec![
        factory(|| BigAdd {
            min: 4_000,
            stocks: Vec::new(),
            max_stocks: 40,
            full: 0,
        }),
        factory(|| FlowFills),
        factory(|| Timer {
            at: TIMER_AT,
            fired: false,
        }),
    ]
}

/// A 10-minute session (09:30-09:40) with every scenario injected, and the firm's flow.
fn feed() -> (Vec<u8>, Vec<FlowRecord>) {
    let mut v = Vec::new();
    let cfg = GenConfig {
        messages: 300_000,
        symbols: 60,
        live_orders: 15_000,
        seed: 5,
    };
    let plan = ScenarioPlan {
        kinds: ScenarioKind::ALL.to_vec(),
        rate: 1.0,
    };
    let (_, _, flow) = generate_scenarios(&cfg, 600_000_000_000, &plan, &mut v).unwrap();
    (v, flow.unwrap())
}

fn run(feed: &[u8], flow: &[FlowRecord], user: &[DetectorFactory]) -> Vec<Alert> {
    let mut books = Books::new(BookConfig::small());
    surveil_feed_with(feed, &mut books, Rules::default(), flow, 1024, user)
        .unwrap()
        .0
}

fn jsonl<'a>(alerts: impl IntoIterator<Item = &'a Alert>) -> Vec<u8> {
    let mut out = Vec::new();
    for a in alerts {
        a.write_json(&mut out);
    }
    out
}

#[test]
fn user_detectors_alert_beside_the_builtins_which_stay_byte_identical() {
    let (feed, flow) = feed();
    let mut books = Books::new(BookConfig::small());
    let (plain, _) = surveil_feed(&feed, &mut books, Rules::default(), &flow, 1024).unwrap();
    let with = run(&feed, &flow, &detectors());

    let builtin: Vec<&Alert> = with.iter().filter(|a| a.user.is_none()).collect();
    assert!(plain.len() > 50, "the scenarios raise built-in alerts");
    assert_eq!(jsonl(builtin), jsonl(&plain), "built-in alerts unchanged");

    let count = |name: &str| with.iter().filter(|a| a.detector_name() == name).count();
    assert!(count("big_add") >= 3, "big_add: {}", count("big_add"));
    assert!(count("flow_fill") >= 3, "flow_fill: {}", count("flow_fill"));
    assert_eq!(count("timer"), 1);
    assert_eq!(
        with.len(),
        plain.len() + count("big_add") + count("flow_fill") + count("timer")
    );
    for a in with.iter().filter(|a| a.user.is_some()) {
        assert_eq!(
            a.detector,
            DetectorId::Custom,
            "stamped as a user detector's"
        );
    }
    let timer = with.iter().find(|a| a.detector_name() == "timer").unwrap();
    let late = timer.ts - TIMER_AT;
    assert!(
        late < 10_000_000_000,
        "fires at the first mark past its time: {late} ns late"
    );

    // The JSON names the detector; eval reads it as a detector of its own.
    let text = String::from_utf8(jsonl(&with)).unwrap();
    let line = text.lines().find(|l| l.contains("\"big_add\"")).unwrap();
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["detector"], "big_add");
    assert!(v["evidence"]["shares"]["value"].as_f64().unwrap() >= 4000.0);
    let rows = score(&Truth::default(), &parse_alerts(&text).unwrap());
    let big = rows.iter().find(|r| r.detector == "big_add").unwrap();
    assert_eq!(big.alerts as usize, count("big_add"));
}

#[test]
fn user_alerts_are_deterministic_and_sort_after_the_builtins_of_their_event() {
    let (feed, flow) = feed();
    let (a, b) = (
        run(&feed, &flow, &detectors()),
        run(&feed, &flow, &detectors()),
    );
    assert_eq!(jsonl(&a), jsonl(&b));
    // A wash alert is raised on a flow fill, as is a flow_fill alert (same position, stock and
    // time): the user detector's comes after it.
    let mut pairs = 0;
    for (i, w) in a.iter().enumerate() {
        if w.detector == DetectorId::WashTrade {
            let same = |x: &Alert| (x.seq, x.locate) == (w.seq, w.locate);
            let before = a[..i].iter().filter(|x| same(x) && x.user.is_some());
            assert_eq!(before.count(), 0, "no user alert of its step before it");
            pairs += a[i..]
                .iter()
                .any(|x| same(x) && x.detector_name() == "flow_fill") as usize;
        }
    }
    assert!(pairs > 0, "wash alerts with a flow fill beside them");
}

#[test]
fn registration_refuses_bad_or_taken_names_and_too_many() {
    struct Named(&'static str);
    impl UserDetector for Named {
        fn name(&self) -> &'static str {
            self.0
        }
        fn on_event(&mut self, _: &SurvEvent, _: &Ctx<'_>, _: &mut UserAlerts<'_>) {}
    }
    let mut s = Surveillance::new(Rules::default(), &[]);
    for bad in ["", "Big", "has space", "a-b", "x".repeat(33).leak()] {
        let e = s.add_detector(Box::new(Named(bad))).unwrap_err();
        assert!(matches!(e, UserDetectorError::BadName(_)), "{bad:?}: {e}");
    }
    s.add_detector(Box::new(Named("mine"))).unwrap();
    for taken in ["spoofing", "risk", "custom", "mine"] {
        let e = s.add_detector(Box::new(Named(taken))).unwrap_err();
        assert!(matches!(e, UserDetectorError::Taken(_)), "{taken}: {e}");
        assert!(e.to_string().contains(taken), "{e}");
    }
    for i in 1..MAX_USER_DETECTORS {
        s.add_detector(Box::new(Named(format!("d{i}").leak())))
            .unwrap();
    }
    let e = s.add_detector(Box::new(Named("one_more"))).unwrap_err();
    assert!(matches!(e, UserDetectorError::TooMany), "{e}");
    assert_eq!(s.user_detectors().count(), MAX_USER_DETECTORS);
    assert_eq!(s.user_detectors().next(), Some("mine"));
}

#[test]
fn table_pressure_lists_the_builtins_then_the_user_detectors() {
    let s = Surveillance::with_detectors(Rules::default(), &[], &detectors()).unwrap();
    let plain = Surveillance::new(Rules::default(), &[]).table_pressure();
    let p = s.table_pressure();
    assert_eq!(p.len(), plain.len() + 1);
    assert_eq!(&p[..plain.len()], &plain[..]);
    assert_eq!(p[plain.len()], ("big_add stocks full", 0));

    // A full table is counted (60 stocks, 40 followed).
    let (feed, flow) = feed();
    let one: Vec<DetectorFactory> = vec![detectors().remove(0)];
    let mut books = Books::new(BookConfig::small());
    let mut s = Surveillance::with_detectors(Rules::default(), &flow, &one).unwrap();
    let mut seq = 0;
    tickwatch::replay::for_each_message(
        &feed,
        &mut books,
        false,
        &mut Default::default(),
        |books, msg, _| {
            let mut ev = s.before(msg, books, seq);
            books.apply(msg);
            s.after(&mut ev, books);
            s.alerts.drain();
            s.risk.clear();
            seq += 1;
            true
        },
    )
    .unwrap();
    let full = s.table_pressure().last().unwrap().1;
    assert!(full > 0, "{full}");
}

#[test]
fn a_factory_builds_one_instance_per_surveillance() {
    let built = Arc::new(AtomicUsize::new(0));
    let count = built.clone();
    let f: DetectorFactory = Arc::new(move || {
        count.fetch_add(1, Ordering::Relaxed);
        Box::new(FlowFills)
    });
    let shards: Vec<Surveillance> = (0..3)
        .map(|_| Surveillance::with_detectors(Rules::default(), &[], std::slice::from_ref(&f)))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(built.load(Ordering::Relaxed), 3);
    for s in &shards {
        assert_eq!(s.user_detectors().collect::<Vec<_>>(), ["flow_fill"]);
    }
}

#[test]
fn user_detectors_on_the_pinned_pipeline_write_the_single_threaded_alerts() {
    use std::sync::atomic::{AtomicBool, AtomicU64};
    use tickwatch::pipeline::alerts::SurvJob;
    use tickwatch::pipeline::{run_surv, PipelineConfig, WaitStrategy};
    let (feed, flow) = feed();
    // Per-stock detectors (a market-wide timer would fire once per shard), each instance able
    // to follow every stock.
    let per_stock = || -> Vec<DetectorFactory> {
        vec![
            factory(|| BigAdd {
                min: 4_000,
                stocks: Vec::new(),
                max_stocks: 100,
                full: 0,
            }),
            factory(|| FlowFills),
        ]
    };
    let want = jsonl(&run(&feed, &flow, &per_stock()));
    for workers in 1..=3 {
        let sink = Shared::default();
        let cfg = PipelineConfig {
            workers,
            wait: WaitStrategy::SpinYield,
            books: BookConfig::small(),
            ring_capacity: 1024,
            ..PipelineConfig::default()
        };
        let job = SurvJob {
            rules: Rules::default(),
            flow: flow.clone(),
            sink: sink.clone().into(),
            mark_every: 1024,
            reload: None,
            detectors: per_stock(),
        };
        let out = run_surv(
            &feed,
            &cfg,
            job,
            &AtomicBool::new(false),
            &AtomicU64::new(0),
        )
        .unwrap();
        out.report.check_conservation().unwrap();
        let s = out.report.surv.as_ref().unwrap();
        // The report counts the user detectors by name, beside the built-ins.
        let user: u64 = s
            .alerts
            .iter()
            .filter(|(n, _)| DetectorId::ALL.iter().all(|d| d.name() != n))
            .map(|(_, c)| c)
            .sum();
        assert!(
            user > 0,
            "{workers} workers: no user alerts counted: {:?}",
            s.alerts
        );
        let got = sink.0.lock().unwrap().clone();
        assert!(
            got == want,
            "{workers} workers: alerts differ from the single-threaded run"
        );
    }
}
