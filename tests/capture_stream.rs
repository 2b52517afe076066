//! A capture streamed in place (`capture::CaptureStream`, `pipeline::run_capture`) gives what
//! the extraction path gave (`capture::extract`, then the image through the pipeline): the same
//! messages in the same order, the same gaps placed at the same feed positions, the same
//! counters, and the same alerts, bars, books and run counters — over captures of every link
//! type, pcapng with several sections, A/B lines, gaps, duplicates and reordered packets.

use std::sync::atomic::{AtomicBool, AtomicU64};

mod common;
use common::captures::{feed, fixtures, written};
use common::shared::Shared;
use serde_json::Value;
use tickwatch::book::{BookConfig, Books};
use tickwatch::capture::{extract, CaptureStream, ExtractOptions, Extracted, WriteOptions};
use tickwatch::gen::GenConfig;
use tickwatch::itch::Side;
use tickwatch::pipeline::alerts::SurvJob;
use tickwatch::pipeline::sizing::FeedCounts;
use tickwatch::pipeline::{
    run_capture, run_market_gapped, shard_of, BarsConfig, CaptureScan, MarketJobs, PipelineConfig,
    RunOutcome,
};
use tickwatch::surv::{FlowRecord, Rules};
use tickwatch::window::{Emit, TimeWindowConfig};

/// The messages of `CaptureStream` as a BinaryFILE image.
fn streamed_image(cap: &[u8], opts: &ExtractOptions) -> Vec<u8> {
    let mut s = CaptureStream::new(cap, opts, None).unwrap();
    let mut image = Vec::new();
    while let Some(r) = s.advance() {
        r.unwrap();
        let m = s.message();
        image.extend_from_slice(&(m.len() as u16).to_be_bytes());
        image.extend_from_slice(m);
    }
    image
}

/// The first pass finds what extraction found.
fn same_scan(what: &str, scan: &CaptureScan, x: &Extracted, workers: usize) {
    assert_eq!(scan.lost, x.lost, "{what}: lost ranges and positions");
    let json = |v: &dyn Json| v.value();
    assert_eq!(
        json(&scan.walked.report),
        json(&x.report),
        "{what}: MoldUDP64 report"
    );
    assert_eq!(
        json(&scan.walked.net),
        json(&x.net),
        "{what}: network counts"
    );
    assert_eq!(scan.walked.packets, x.packets, "{what}");
    assert_eq!(
        scan.counts,
        FeedCounts::of(&x.image, workers),
        "{what}: table sizes"
    );
}

/// Serializable, as a JSON value.
trait Json {
    fn value(&self) -> Value;
}

impl<T: serde::Serialize> Json for T {
    fn value(&self) -> Value {
        serde_json::to_value(self).unwrap()
    }
}

/// A run's outputs: alerts, bar rows, the deterministic counters.
struct Outputs {
    alerts: Vec<u8>,
    bars: Vec<u8>,
    counters: Value,
    outcome: RunOutcome,
}

fn jobs(flow: &[FlowRecord]) -> (MarketJobs, Shared, Shared) {
    let (alerts, bars) = (Shared::default(), Shared::default());
    let jobs = MarketJobs {
        bars: Some(BarsConfig {
            window: TimeWindowConfig {
                size: 1_000_000_000,
                slide: 1_000_000_000,
                offset: 0,
                allowed_lateness: 0,
                max_out_of_orderness: 0,
                emit: Emit::OnClose,
            },
            mark_every: 1024,
            by: tickwatch::agg::BarKey::Stock,
            max_participants: 1024,
            symbol: None,
            format: tickwatch::agg::BarFormat::Csv,
            sink: Box::new(bars.clone()),
        }),
        surv: Some(SurvJob {
            rules: Rules::default(),
            flow: flow.to_vec(),
            sink: alerts.clone().into(),
            mark_every: 1024,
            reload: None,
            detectors: Vec::new(),
        }),
    };
    (jobs, alerts, bars)
}

fn outputs(run: impl FnOnce(MarketJobs) -> RunOutcome, flow: &[FlowRecord]) -> Outputs {
    let (jobs, alerts, bars) = jobs(flow);
    let outcome = run(jobs);
    let r = &outcome.report;
    r.check_conservation().unwrap();
    let s = r.surv.as_ref().unwrap();
    let counters = serde_json::json!({
        "messages": r.messages, "offered": r.offered, "processed": r.processed,
        "output_received": r.output_received, "top_changes": r.top_changes,
        "skipped_unknown": r.skipped_unknown, "skipped_bad_lengths": r.skipped_bad_lengths,
        "out_of_order_ts": r.out_of_order_ts, "marks_sent": r.marks_sent, "marks": r.marks,
        "book_stats": r.book_stats.value(), "live_orders": r.live_orders,
        "bars": r.bars.value(), "alerts": s.alerts, "total": s.total,
        "surv_counters": s.counters.value(), "tables": s.tables,
    });
    Outputs {
        alerts: alerts.bytes(),
        bars: bars.bytes(),
        counters,
        outcome,
    }
}

fn same_books(what: &str, a: &[Books], b: &[Books]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        let locates: Vec<u16> = x.active_locates().collect();
        assert_eq!(locates, y.active_locates().collect::<Vec<_>>(), "{what}");
        for l in locates {
            for side in [Side::Buy, Side::Sell] {
                let dx: Vec<_> = x.depth(l, side).collect();
                let dy: Vec<_> = y.depth(l, side).collect();
                assert_eq!(
                    dx,
                    dy,
                    "{what}: locate {l} {side:?} (worker {})",
                    shard_of(l, 2)
                );
            }
        }
    }
}

#[test]
fn a_streamed_capture_gives_what_its_extraction_gave() {
    let (feed, flow) = feed(40_000);
    let workers = 2;
    let cfg = PipelineConfig {
        workers,
        books: BookConfig::small(),
        ring_capacity: 1024,
        ..PipelineConfig::default()
    };
    let (stop, progress) = (AtomicBool::new(false), AtomicU64::new(0));
    let opts = ExtractOptions::default();
    for (what, cap) in fixtures(&feed) {
        let x = extract(&cap, &opts).unwrap();
        let scan = CaptureScan::of(&cap, &opts, workers, None).unwrap();
        same_scan(what, &scan, &x, workers);
        assert!(
            streamed_image(&cap, &scan.opts) == x.image,
            "{what}: the same messages in the same order"
        );
        let old = outputs(
            |jobs| {
                run_market_gapped(&x.image, x.first_gap(), &cfg, jobs, &stop, &progress).unwrap()
            },
            &flow,
        );
        let new = outputs(
            |jobs| run_capture(&scan, &cfg, jobs, &stop, &progress).unwrap(),
            &flow,
        );
        assert!(!old.alerts.is_empty() && !old.bars.is_empty(), "{what}");
        assert!(old.alerts == new.alerts, "{what}: alerts");
        assert!(old.bars == new.bars, "{what}: bars");
        assert_eq!(old.counters, new.counters, "{what}: counters");
        same_books(what, &old.outcome.books, &new.outcome.books);
        if !x.lost.is_empty() {
            let flagged = |a: &[u8]| a.windows(15).filter(|w| w == b"\"book_gap\":true").count();
            assert!(
                flagged(&new.alerts) > 0,
                "{what}: alerts after the gap are flagged"
            );
            assert_eq!(flagged(&old.alerts), flagged(&new.alerts), "{what}");
        }
    }
}

#[test]
fn held_messages_are_found_again_in_their_packets_not_copied() {
    let (feed, _) = feed(5_000);
    for (what, cap) in fixtures(&feed) {
        let mut s = CaptureStream::new(&cap, &ExtractOptions::default(), None).unwrap();
        while let Some(r) = s.advance() {
            r.unwrap();
            // Every message is a slice of the capture itself, at the offset it names.
            let (m, at) = (s.message(), s.offset() as usize);
            assert!(cap[at..at + m.len()] == *m, "{what}");
        }
        assert_eq!(s.copied(), 0, "{what}");
        let x = extract(&cap, &ExtractOptions::default()).unwrap();
        let held: u64 = x
            .report
            .sessions
            .iter()
            .map(|s| s.counters.delivered_held)
            .sum();
        if what == "reordered" || what.starts_with("a/b") {
            assert!(held > 0, "{what}: some messages were held");
        }
    }
}

/// Records what a walk releases, and releases it for real (the pages of a mapped file).
struct Recording<'a> {
    map: &'a tickwatch::feed::MappedFile,
    ranges: std::sync::Mutex<Vec<std::ops::Range<usize>>>,
}

impl tickwatch::capture::Releaser for Recording<'_> {
    fn release(&self, range: std::ops::Range<usize>) {
        self.ranges.lock().unwrap().push(range.clone());
        self.map.release(range);
    }
}

#[test]
fn releasing_the_pages_read_past_changes_nothing() {
    use tickwatch::capture::Release;
    use tickwatch::feed::{MapOptions, MappedFile};
    let mut feed = Vec::new();
    let cfg = GenConfig {
        messages: 750_000,
        symbols: 50,
        live_orders: 10_000,
        seed: 3,
    };
    tickwatch::gen::generate(&cfg, &mut feed).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.pcap");
    let cap = written(&feed, WriteOptions::default());
    assert!(
        cap.len() > 72 << 20,
        "{} bytes: past two releases",
        cap.len()
    );
    std::fs::write(&path, &cap).unwrap();
    let map = MappedFile::open(&path, MapOptions::default()).unwrap();
    let rec = Recording {
        map: &map,
        ranges: Default::default(),
    };
    let opts = ExtractOptions::default();
    let mut s = CaptureStream::new(map.bytes(), &opts, Some(Release(&rec))).unwrap();
    let mut image = Vec::new();
    while let Some(r) = s.advance() {
        r.unwrap();
        let m = s.message();
        image.extend_from_slice(&(m.len() as u16).to_be_bytes());
        image.extend_from_slice(m);
    }
    assert!(
        image == feed,
        "the capture's messages, whole, after releasing"
    );
    // Contiguous ranges from the start, each behind what was read, short of the end.
    let ranges = rec.ranges.into_inner().unwrap();
    assert!(ranges.len() >= 2, "{ranges:?}");
    assert_eq!(ranges[0].start, 0);
    assert!(ranges.windows(2).all(|w| w[0].end == w[1].start));
    assert!(ranges.last().unwrap().end < cap.len());
}
