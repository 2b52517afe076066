//! Checkpoint state, on the single-threaded path: surveillance run to message k, snapshotted,
//! restored into fresh objects and continued writes exactly the alerts of one unbroken pass,
//! for many k; and the restored state allocates no more than the unbroken one.

use tickwatch::book::{BookConfig, Books};
use tickwatch::engine::MarkGen;
use tickwatch::feed::Frames;
use tickwatch::itch::decode;
use tickwatch::surv::{phase, Capacity, FlowRecord, Rules, SurvOutput, Surveillance};

mod common;
use common::allocations;
use common::scenario::{scenario_feed, Scenarios};

#[global_allocator]
static GLOBAL: common::Counting = common::Counting;

const MARK_EVERY: u32 = 1024;

/// Everything the single-threaded surveillance loop holds, as a worker and the output stage
/// hold it in the pipeline.
#[derive(serde::Serialize, serde::Deserialize)]
struct Run {
    books: Books,
    s: Surveillance,
    out: SurvOutput,
    marks: MarkGen,
    seq: u32,
    epoch: u64,
    mark_seq: u32,
}

impl Run {
    fn new(flow: &[FlowRecord]) -> Run {
        // Small tables: a debug-build snapshot of the default ones takes seconds.
        let rules = Rules {
            limits: Capacity {
                orders: 1 << 14,
                parties: 1 << 10,
                pairs: 1 << 12,
                locates: 1 << 10,
            },
            ..Rules::default()
        };
        Run {
            books: Books::new(BookConfig::for_orders(1 << 15, 1 << 10)),
            s: Surveillance::new(rules, flow),
            out: SurvOutput::new(&rules),
            marks: MarkGen::periodic(MARK_EVERY),
            seq: 0,
            epoch: 0,
            mark_seq: 0,
        }
    }

    fn take(&mut self, phase: u8, rel: u32, json: &mut Vec<u8>) {
        let (s, out, epoch) = (&mut self.s, &mut self.out, self.epoch);
        s.drain_step(epoch, phase, rel, 0, |r, a| {
            out.take(&r, a, |a| a.write_json(json))
        });
    }

    /// A whole mark: its flow steps and timers, each drained.
    fn mark(&mut self, wm: u64, json: &mut Vec<u8>) {
        let (out, epoch, books) = (&mut self.out, self.epoch, &self.books);
        self.s.mark_all(wm, self.seq, books, |s, phase| {
            s.drain_step(epoch, phase, 0, 0, |r, a| {
                out.take(&r, a, |a| a.write_json(json))
            })
        });
    }

    /// The pipeline's order: due marks (timers), then the message.
    fn step(&mut self, body: &[u8], json: &mut Vec<u8>) {
        let msg = decode(body, 0).unwrap();
        let ts = msg.timestamp();
        while let Some(wm) = self.marks.due(ts) {
            self.epoch += 1;
            self.mark_seq = self.seq;
            self.mark(wm, json);
            self.marks.sent_mark(wm);
        }
        let mut ev = self.s.before(&msg, &self.books, self.seq);
        self.books.apply(&msg);
        self.s.after(&mut ev, &self.books);
        self.take(phase::EVENT, self.seq.wrapping_sub(self.mark_seq), json);
        self.marks.sent_message(ts);
        self.seq = self.seq.wrapping_add(1);
    }

    fn finish(&mut self, json: &mut Vec<u8>) {
        while let Some(wm) = self.marks.final_due(0) {
            self.epoch += 1;
            self.mark(wm, json);
            self.marks.sent_mark(wm);
        }
    }
}

/// The frames of `feed` as (offset, body) pairs.
fn frames(feed: &[u8]) -> Vec<(usize, &[u8])> {
    Frames::new(feed)
        .map(|f| f.unwrap())
        .map(|f| (f.offset as usize, f.body))
        .collect()
}

#[test]
fn a_restored_run_writes_the_alerts_of_an_unbroken_one_for_any_cut() {
    let Scenarios { feed, flow, .. } = scenario_feed(60_000, 40, 15);
    let frames = frames(&feed);
    let mut whole = Vec::new();
    let mut r = Run::new(&flow);
    for (_, b) in &frames {
        r.step(b, &mut whole);
    }
    r.finish(&mut whole);
    assert!(
        whole.iter().filter(|&&c| c == b'\n').count() > 20,
        "the feed raises alerts"
    );
    let mut rng = tickwatch::rng::SplitMix64::new(2026);
    let cuts: Vec<usize> = [0, 1, frames.len() - 1, frames.len()]
        .into_iter()
        .chain((0..8).map(|_| rng.below(frames.len() as u64) as usize))
        .collect();
    for k in cuts {
        let mut json = Vec::new();
        let mut r = Run::new(&flow);
        for (_, b) in &frames[..k] {
            r.step(b, &mut json);
        }
        let snap = tickwatch::ckpt::encode(&r).unwrap();
        drop(r);
        let mut r: Run = tickwatch::ckpt::decode(&snap, "test").unwrap();
        for (_, b) in &frames[k..] {
            r.step(b, &mut json);
        }
        r.finish(&mut json);
        assert!(json == whole, "cut at message {k}: alerts differ");
    }
}

#[test]
fn a_restored_run_allocates_no_more_than_an_unbroken_one() {
    let Scenarios { feed, flow, .. } = scenario_feed(60_000, 40, 15);
    let frames = frames(&feed);
    let k = frames.len() / 2;
    let mut json = Vec::with_capacity(1 << 24);
    let mut unbroken = Run::new(&flow);
    for (_, b) in &frames[..k] {
        unbroken.step(b, &mut json);
    }
    let snap = tickwatch::ckpt::encode(&unbroken).unwrap();
    let mut restored: Run = tickwatch::ckpt::decode(&snap, "test").unwrap();
    let (mut a, mut b) = (Vec::with_capacity(1 << 24), Vec::with_capacity(1 << 24));
    let (_, n_unbroken) = allocations(|| {
        for (_, f) in &frames[k..] {
            unbroken.step(f, &mut a);
        }
    });
    let (_, n_restored) = allocations(|| {
        for (_, f) in &frames[k..] {
            restored.step(f, &mut b);
        }
    });
    assert!(a == b);
    assert_eq!(
        n_restored, n_unbroken,
        "the restored tables kept their preallocated room"
    );
    assert_eq!(n_restored, 0, "the steady state allocates nothing");
}
