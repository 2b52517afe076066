//! `tickwatch bars` through the pinned pipeline: the rows equal a brute-force computation (every
//! message kept, windows computed by scanning), byte for byte, for tumbling and sliding windows,
//! on generated feeds and the real NASDAQ sample, and are identical for any worker count; late
//! messages are dropped and counted, or (with allowed lateness) fire updated rows.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64};

mod common;
use common::shared::Shared;

use tickwatch::agg::{
    participant_of, write_bar, Bar, BarFormat, BarInput, BarKey, Touch, CSV_HEADER,
    CSV_HEADER_PARTICIPANT,
};
use tickwatch::book::{BookConfig, Books};
use tickwatch::gen::{generate, GenConfig};
use tickwatch::itch::be::{BeU32, BeU64};
use tickwatch::itch::encode::{header, push_frame};
use tickwatch::itch::{StockDirectory, Trade};
use tickwatch::pipeline::{run_job, BarsConfig, PipelineConfig, RunOutcome, WaitStrategy};
use tickwatch::replay::{for_each_message, ReplayReport};
use tickwatch::window::{Emit, TimeWindowConfig};

const SEC: u64 = 1_000_000_000;

/// Equal row texts, or a failure naming the first row that differs (not both whole texts).
#[track_caller]
fn assert_rows(got: &str, want: &str, label: &str) {
    let (g, w): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
    if let Some(i) = (0..g.len().max(w.len())).find(|&i| g.get(i) != w.get(i)) {
        panic!(
            "{label}: row {i} differs ({} rows vs {} expected)\n got: {:?}\nwant: {:?}",
            g.len(),
            w.len(),
            g.get(i),
            w.get(i)
        );
    }
}

fn feed(messages: u64, symbols: u32, seed: u64) -> Vec<u8> {
    let mut v = Vec::new();
    generate(
        &GenConfig {
            messages,
            symbols,
            live_orders: (messages / 20).max(1),
            seed,
        },
        &mut v,
    )
    .unwrap();
    v
}

fn window(size: u64, slide: u64) -> TimeWindowConfig {
    TimeWindowConfig {
        size,
        slide,
        offset: 0,
        allowed_lateness: 0,
        max_out_of_orderness: 0,
        emit: Emit::OnClose,
    }
}

/// Runs the bars job; returns the rows (CSV text) and the outcome.
fn bars(
    buf: &[u8],
    workers: usize,
    w: TimeWindowConfig,
    format: BarFormat,
    symbol: Option<[u8; 8]>,
) -> (String, RunOutcome) {
    bars_by(buf, workers, w, format, symbol, BarKey::Stock)
}

fn bars_by(
    buf: &[u8],
    workers: usize,
    w: TimeWindowConfig,
    format: BarFormat,
    symbol: Option<[u8; 8]>,
    by: BarKey,
) -> (String, RunOutcome) {
    let out = Shared::default();
    let cfg = PipelineConfig {
        workers,
        wait: WaitStrategy::SpinYield,
        ring_capacity: 512,
        books: BookConfig::for_orders(1 << 16, 1 << 16),
        ..PipelineConfig::default()
    };
    let job = BarsConfig {
        window: w,
        mark_every: 1024,
        by,
        max_participants: 1024,
        symbol,
        format,
        sink: Box::new(out.clone()),
    };
    let outcome = run_job(
        buf,
        &cfg,
        Some(job),
        &AtomicBool::new(false),
        &AtomicU64::new(0),
    )
    .expect("bars run");
    outcome.report.check_conservation().expect("conservation");
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    (text, outcome)
}

/// The rows by brute force: every stock message kept with its time and bar input, each window
/// of each stock computed by scanning them all, rows sorted by (window start, locate). A row's
/// symbol is the one the books knew before the window closed (as when the pipeline fires it).
fn brute_force(buf: &[u8], w: TimeWindowConfig) -> String {
    let mut books = Books::new(BookConfig::for_orders(1 << 16, 1 << 16));
    let mut events: Vec<(u16, u64, BarInput)> = Vec::new();
    let mut named_at: BTreeMap<u16, (u64, [u8; 8])> = BTreeMap::new();
    let mut r = ReplayReport::default();
    for_each_message(buf, &mut books, false, &mut r, |books, m, _| {
        let l = m.stock_locate();
        let mut x = BarInput::classify(m, books);
        let before = Touch::of(books, l);
        books.apply(m);
        let after = Touch::of(books, l);
        if after != before {
            x.touch = Some(after);
        }
        if l != 0 {
            events.push((l, m.timestamp(), x));
        }
        if l != 0 && !named_at.contains_key(&l) {
            if let Some(s) = books.symbol(l) {
                named_at.insert(l, (m.timestamp(), *s));
            }
        }
        true
    })
    .unwrap();
    // Panes of one slide, merged in time order into each window [k·slide, k·slide + size) that
    // holds an event (floating-point statistics then sum in the operator's order).
    let mut panes: BTreeMap<(u16, u64), Bar> = BTreeMap::new();
    for &(l, ts, x) in &events {
        panes.entry((l, ts / w.slide)).or_default().add(&x, ts);
    }
    let n = w.size / w.slide;
    let mut windows: BTreeMap<(u64, u16), Bar> = BTreeMap::new();
    for &(l, p) in panes.keys() {
        for k in p.saturating_sub(n - 1)..=p {
            windows.entry((k * w.slide, l)).or_insert_with(|| {
                let mut bar = Bar::EMPTY;
                for q in k..k + n {
                    if let Some(pane) = panes.get(&(l, q)) {
                        bar.merge(pane);
                    }
                }
                bar
            });
        }
    }
    let mut out = Vec::new();
    writeln!(out, "{CSV_HEADER}").unwrap();
    for ((start, l), bar) in &windows {
        let end = start + w.size;
        let sym = match named_at.get(l) {
            Some((t, s)) if *t < end => *s,
            _ => *b"?       ",
        };
        write_bar(
            &mut out,
            BarFormat::Csv,
            tickwatch::agg::BarKey::Stock,
            &sym,
            *start,
            bar,
            false,
        )
        .unwrap();
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn tumbling_bars_equal_brute_force_for_any_worker_count() {
    let buf = feed(60_000, 40, 7);
    let w = window(SEC, SEC);
    let want = brute_force(&buf, w);
    assert!(want.lines().count() > 1_000, "a real test needs many rows");
    for workers in [1, 2, 3, 5] {
        let (got, out) = bars(&buf, workers, w, BarFormat::Csv, None);
        assert_rows(&got, &want, &format!("{workers} workers"));
        let b = out.report.bars.unwrap();
        assert_eq!(b.rows as usize, want.lines().count() - 1);
        assert_eq!(
            (b.late_rows, b.dropped_late, b.overflow, b.lost),
            (0, 0, 0, 0)
        );
        assert_eq!(out.report.marks, b.marks * workers as u64);
    }
}

#[test]
fn sliding_bars_equal_brute_force_for_any_worker_count() {
    let buf = feed(30_000, 25, 11);
    let w = window(2 * SEC, SEC / 2);
    let want = brute_force(&buf, w);
    for workers in [1, 2, 4] {
        let (got, _) = bars(&buf, workers, w, BarFormat::Csv, None);
        assert_rows(&got, &want, &format!("{workers} workers"));
    }
}

#[test]
fn bars_of_the_real_sample_equal_brute_force() {
    let buf = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/12302019_SNIPPET.NASDAQ_ITCH50"
    ))
    .expect("the shared real sample");
    for (size, slide) in [(SEC, SEC), (SEC / 10, SEC / 10), (SEC, SEC / 5)] {
        let w = window(size, slide);
        let want = brute_force(&buf, w);
        assert!(want.lines().count() > 10);
        for workers in [1, 3] {
            let (got, _) = bars(&buf, workers, w, BarFormat::Csv, None);
            assert_rows(&got, &want, &format!("{size}/{slide}, {workers} workers"));
        }
    }
}

#[test]
fn symbol_filter_and_jsonl_rows() {
    let buf = feed(20_000, 10, 3);
    let w = window(SEC, SEC);
    let (all, _) = bars(&buf, 2, w, BarFormat::Csv, None);
    let sym = all
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let mut field = [b' '; 8];
    field[..sym.len()].copy_from_slice(sym.as_bytes());
    let (json, out) = bars(&buf, 2, w, BarFormat::Jsonl, Some(field));
    let rows: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let want = all
        .lines()
        .filter(|l| l.starts_with(&format!("{sym},")))
        .count();
    assert_eq!(rows.len(), want);
    assert_eq!(out.report.bars.unwrap().rows as usize, want);
    for r in &rows {
        assert_eq!(r["symbol"], sym.as_str());
        for k in ["window_start_ns", "volume", "trades", "messages"] {
            assert!(r[k].is_u64(), "{k} in {r}");
        }
    }
}

/// Stock 1 trades at the given times (ns), one share each at price 10 + i.
fn trades(times: &[u64]) -> Vec<u8> {
    let mut v = Vec::new();
    push_frame(
        &mut v,
        &StockDirectory {
            hdr: header(b'R', 1, 0, times[0]),
            stock: *b"LATE    ",
            ..bytemuck::Zeroable::zeroed()
        },
    );
    for (i, &t) in times.iter().enumerate() {
        push_frame(
            &mut v,
            &Trade {
                hdr: header(b'P', 1, 0, t),
                order_ref: BeU64::new(0),
                side: b'B',
                shares: BeU32::new(1),
                stock: *b"LATE    ",
                price: BeU32::new(10_0000 + i as u32 * 10_000),
                match_number: BeU64::new(i as u64 + 1),
            },
        );
    }
    v
}

#[test]
fn late_messages_are_counted_or_fire_updated_rows() {
    // Windows [10 s, 11 s) and [11 s, 12 s); the trade at 10.7 s arrives after one at 11.2 s.
    let buf = trades(&[
        10 * SEC,
        10 * SEC + SEC / 2,
        11 * SEC + SEC / 5,
        10 * SEC + 7 * SEC / 10,
    ]);
    for workers in [1, 2] {
        // No lateness allowed: dropped, counted, and the first window's row stays as it was.
        let (rows, out) = bars(&buf, workers, window(SEC, SEC), BarFormat::Csv, None);
        let b = out.report.bars.unwrap();
        assert_eq!((b.dropped_late, b.late_rows), (1, 0));
        assert_eq!(b.max_lateness_ns, 11 * SEC - 1 - (10 * SEC + 7 * SEC / 10));
        let lines: Vec<&str> = rows.lines().collect();
        assert_eq!(lines.len(), 1 + 2);
        assert!(lines[1].starts_with("LATE,10000000000,10.0000,11.0000,10.0000,11.0000,2,"));
        // Two seconds of lateness: the late trade joins its window, which fires again.
        let mut w = window(SEC, SEC);
        w.allowed_lateness = 2 * SEC;
        let (rows, out) = bars(&buf, workers, w, BarFormat::Csv, None);
        let b = out.report.bars.unwrap();
        assert_eq!((b.dropped_late, b.late_rows), (0, 1));
        let lines: Vec<&str> = rows.lines().collect();
        assert_eq!(lines.len(), 1 + 3, "{rows}");
        // On time: [10, 11) with two trades; then the late row of [10, 11) with three (the late
        // trade is the latest by event time: it closes the bar); then [11, 12).
        assert!(lines[1].starts_with("LATE,10000000000,10.0000,11.0000,10.0000,11.0000,2,"));
        assert!(
            lines[2].starts_with("LATE,10000000000,10.0000,13.0000,10.0000,13.0000,3,"),
            "{}",
            lines[2]
        );
        assert!(lines[2].ends_with(",1"), "late flag: {}", lines[2]);
        assert!(lines[3].starts_with("LATE,11000000000,12.0000,"));
    }
}

#[test]
fn out_of_orderness_holds_windows_open_for_stragglers() {
    let buf = trades(&[10 * SEC, 11 * SEC + SEC / 5, 10 * SEC + 7 * SEC / 10]);
    let mut w = window(SEC, SEC);
    w.max_out_of_orderness = SEC;
    let (rows, out) = bars(&buf, 2, w, BarFormat::Csv, None);
    let b = out.report.bars.unwrap();
    assert_eq!((b.dropped_late, b.late_rows), (0, 0));
    let lines: Vec<&str> = rows.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[1].starts_with("LATE,10000000000,10.0000,12.0000,10.0000,12.0000,2,"));
}

#[test]
fn invalid_windows_are_refused() {
    let buf = feed(1_000, 2, 1);
    let out = Shared::default();
    let job = BarsConfig {
        window: window(SEC, 3 * SEC / 10),
        mark_every: 1024,
        by: tickwatch::agg::BarKey::Stock,
        max_participants: 1024,
        symbol: None,
        format: BarFormat::Csv,
        sink: Box::new(out),
    };
    let e = run_job(
        &buf,
        &PipelineConfig::default(),
        Some(job),
        &AtomicBool::new(false),
        &AtomicU64::new(0),
    )
    .unwrap_err();
    assert!(e.to_string().contains("multiple"), "{e}");
}

/// Per-participant rows by brute force: every attributed message, summed over all stocks per
/// participant and window (tumbling).
fn brute_force_participants(buf: &[u8], size: u64) -> String {
    let mut books = Books::new(BookConfig::for_orders(1 << 16, 1 << 16));
    let mut windows: BTreeMap<(u64, [u8; 4]), Bar> = BTreeMap::new();
    let mut r = ReplayReport::default();
    for_each_message(buf, &mut books, false, &mut r, |books, m, _| {
        if m.stock_locate() != 0 {
            if let Some(p) = participant_of(m, books) {
                let x = BarInput::classify(m, books);
                let ts = m.timestamp();
                windows
                    .entry((ts / size * size, p))
                    .or_default()
                    .add(&x, ts);
            }
        }
        books.apply(m);
        true
    })
    .unwrap();
    let mut out = Vec::new();
    writeln!(out, "{CSV_HEADER_PARTICIPANT}").unwrap();
    for ((start, p), bar) in &windows {
        let mut label = [b' '; 8];
        label[..4].copy_from_slice(p);
        write_bar(
            &mut out,
            BarFormat::Csv,
            BarKey::Participant,
            &label,
            *start,
            bar,
            false,
        )
        .unwrap();
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn participant_bars_equal_brute_force_for_any_worker_count() {
    let buf = feed(40_000, 30, 9);
    let want = brute_force_participants(&buf, SEC);
    assert!(
        want.lines().count() > 100,
        "the generator attributes orders"
    );
    for workers in [1, 2, 3] {
        let (got, out) = bars_by(
            &buf,
            workers,
            window(SEC, SEC),
            BarFormat::Csv,
            None,
            BarKey::Participant,
        );
        assert_rows(&got, &want, &format!("{workers} workers"));
        assert_eq!(out.report.bars.unwrap().participants_overflow, 0);
    }
    // Lateness cannot make whole per-participant rows: refused.
    let mut w = window(SEC, SEC);
    w.allowed_lateness = SEC;
    let job = BarsConfig {
        window: w,
        mark_every: 1024,
        by: BarKey::Participant,
        max_participants: 64,
        symbol: None,
        format: BarFormat::Csv,
        sink: Box::new(Shared::default()),
    };
    let e = run_job(
        &buf,
        &PipelineConfig::default(),
        Some(job),
        &AtomicBool::new(false),
        &AtomicU64::new(0),
    )
    .unwrap_err();
    assert!(e.to_string().contains("lateness"), "{e}");
}
