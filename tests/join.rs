//! Stream joins: hand-made edge cases, then property tests against brute force.

use proptest::prelude::*;
use std::collections::{BTreeMap, HashSet};
use tickwatch::join::{
    Admit, AsOf, Count, IntervalJoin, Joined, Last, Max, Mean, Min, Refused, Sum, WindowJoin,
    WindowRow,
};

// ---------- AsOf ----------

#[test]
fn asof_boundaries_and_miss() {
    let mut a = AsOf::new(2, 4);
    assert_eq!(a.lookup(0, 100), None);
    a.update(0, 100, 'a');
    a.update(0, 200, 'b');
    assert_eq!(a.lookup(0, 99), None, "before the first version");
    assert_eq!(
        a.lookup(0, 100),
        Some((100, &'a')),
        "version ts == lookup ts counts"
    );
    assert_eq!(a.lookup(0, 199), Some((100, &'a')));
    assert_eq!(a.lookup(0, 200), Some((200, &'b')));
    assert_eq!(a.lookup(0, u64::MAX), Some((200, &'b')));
    assert_eq!(a.lookup(1, 150), None, "keys are independent");
    let c = a.counters();
    assert_eq!((c.hits, c.misses, c.too_old), (4, 3, 0));
}

#[test]
fn asof_too_old_never_a_wrong_answer() {
    let mut a = AsOf::new(1, 2);
    a.update(0, 10, 1u32);
    a.update(0, 20, 2);
    a.update(0, 30, 3); // evicts (10, 1)
    assert_eq!(a.counters().evicted, 1);
    assert_eq!(
        a.lookup(0, 15),
        None,
        "answer (10, 1) evicted: not (20, 2), not a miss"
    );
    assert_eq!(a.lookup(0, 10), None);
    assert_eq!(
        a.lookup(0, 9),
        None,
        "before every version ever: a plain miss"
    );
    assert_eq!(a.lookup(0, 20), Some((20, &2)));
    let c = a.counters();
    assert_eq!((c.too_old, c.misses, c.hits), (2, 1, 1));
    a.clear(0);
    assert_eq!(a.lookup(0, 15), None);
    assert_eq!(a.counters().misses, 2, "clear forgets the losses too");
}

#[test]
fn asof_same_ts_replaces_and_out_of_order_inserts() {
    let mut a = AsOf::new(1, 3);
    a.update(0, 10, 1);
    a.update(0, 10, 2); // replaces
    assert_eq!(a.lookup(0, 10), Some((10, &2)));
    a.update(0, 30, 3);
    a.update(0, 20, 4); // out of order, inserted between
    a.update(0, 20, 5); // out-of-order replace
    let kept: Vec<_> = a.versions_of(0).copied().collect();
    assert_eq!(kept, [(10, 2), (20, 5), (30, 3)]);
    assert_eq!(a.lookup(0, 25), Some((20, &5)));
    a.update(0, 5, 6); // older than everything in a full ring: dropped
    assert_eq!(a.versions_of(0).count(), 3);
    assert_eq!(a.lookup(0, 7), None);
    let c = a.counters();
    assert_eq!(
        (c.replaced, c.out_of_order, c.evicted, c.too_old),
        (2, 3, 1, 1)
    );
    a.update(0, 15, 7); // evicts (10, 2)
    assert_eq!(a.lookup(0, 12), None);
    assert_eq!(a.lookup(0, 16), Some((15, &7)));
    assert_eq!(a.counters().too_old, 2);
}

#[test]
fn asof_out_of_range_and_zero_versions() {
    let mut a = AsOf::new(1, 0);
    assert!(!a.update(1, 0, ()));
    assert_eq!(a.lookup(1, 0), None);
    assert_eq!(a.counters().out_of_range, 2);
    assert!(a.update(0, 5, ()));
    assert_eq!(a.lookup(0, 5), None);
    assert_eq!(a.counters().too_old, 1);
    assert_eq!((a.keys(), a.versions()), (1, 0));
}

// ---------- IntervalJoin ----------

type Pair = (u32, u32);

fn ids(out: &[Joined<u32, u32>]) -> Vec<Pair> {
    let mut v: Vec<Pair> = out.iter().map(|j| (j.left, j.right)).collect();
    v.sort_unstable();
    v
}

#[test]
fn interval_bounds_are_inclusive_both_orders() {
    let mut j = IntervalJoin::<u32, u32>::new(-5, 10, 8, 8);
    let mut out = Vec::new();
    j.push_left(1, 100, 0, |p| out.push(p));
    for (id, ts) in [(1, 94), (2, 95), (3, 110), (4, 111), (5, 100)] {
        j.push_right(1, ts, id, |p| out.push(p));
    }
    assert_eq!(ids(&out), [(0, 2), (0, 3), (0, 5)]);
    // Right first, then left: same rule.
    out.clear();
    j.push_right(2, 50, 9, |p| out.push(p));
    j.push_left(2, 40, 7, |p| out.push(p)); // 40 + 10 = 50: in
    j.push_left(2, 55, 8, |p| out.push(p)); // 55 - 5 = 50: in
    j.push_left(2, 56, 6, |p| out.push(p)); // out
    j.push_left(3, 50, 5, |p| out.push(p)); // other key
    assert_eq!(ids(&out), [(7, 9), (8, 9)]);
    assert_eq!(
        out[0],
        Joined {
            key: 2,
            left_ts: 40,
            left: 7,
            right_ts: 50,
            right: 9
        }
    );
    assert_eq!(j.counters().pairs, 5);
}

#[test]
fn interval_watermark_expiry_at_exact_boundary() {
    let mut j = IntervalJoin::<u32, u32>::new(-5, 10, 8, 8);
    let mut out = Vec::new();
    j.push_left(1, 100, 0, |p| out.push(p));
    j.push_right(1, 200, 1, |p| out.push(p));
    // The left can match rights up to 110: kept at wm 109, a right at 110 still joins.
    j.advance(109);
    assert_eq!(j.buffered(), (1, 1));
    j.push_right(1, 110, 2, |p| out.push(p));
    assert_eq!(ids(&out), [(0, 2)]);
    j.advance(110); // 100 + 10 <= 110: expired
    assert_eq!(j.counters().expired_left, 1);
    // The right at 110 matches lefts in [100, 115]: kept until wm 115.
    assert_eq!(j.buffered(), (0, 2));
    j.advance(114);
    assert_eq!(j.counters().expired_right, 0);
    j.advance(115);
    assert_eq!(j.counters().expired_right, 1);
    // The right at 200 matches lefts in [190, 205]: kept until wm 205.
    j.advance(204);
    assert_eq!(j.buffered(), (0, 1));
    j.advance(205);
    assert_eq!(j.buffered(), (0, 0));
    assert_eq!(j.keys(), 0, "empty keys give their slot back");
    assert_eq!(j.watermark(), Some(205));
    assert_eq!(j.advance(100), 0, "a watermark never goes back");
}

#[test]
fn interval_late_events_are_dropped_and_counted() {
    let mut j = IntervalJoin::<u32, u32>::new(0, 10, 8, 8);
    let mut out = Vec::new();
    j.push_right(1, 105, 1, |p| out.push(p));
    j.advance(100);
    assert_eq!(j.push_left(1, 100, 0, |p| out.push(p)), Admit::Late);
    assert_eq!(j.push_right(1, 50, 2, |p| out.push(p)), Admit::Late);
    assert_eq!(j.push_left(1, 101, 3, |p| out.push(p)), Admit::Buffered);
    assert_eq!(ids(&out), [(3, 1)]);
    assert_eq!(j.counters().late, 2);
}

#[test]
fn interval_element_that_cannot_match_later_is_not_buffered() {
    // Rights precede lefts: [l - 10, l - 2].
    let mut j = IntervalJoin::<u32, u32>::new(-10, -2, 8, 8);
    let mut out = Vec::new();
    j.push_right(1, 95, 1, |p| out.push(p));
    j.advance(99);
    // A left at 100 can only match rights <= 98 <= wm: joined, not buffered.
    assert_eq!(j.push_left(1, 100, 0, |p| out.push(p)), Admit::Done);
    assert_eq!(ids(&out), [(0, 1)]);
    assert_eq!(j.buffered(), (0, 1));
}

#[test]
fn interval_full_ring_evicts_oldest_arrival() {
    let mut j = IntervalJoin::<u32, u32>::new(0, 100, 4, 2);
    let mut out = Vec::new();
    j.push_left(1, 10, 0, |p| out.push(p));
    j.push_left(1, 5, 1, |p| out.push(p));
    // Evicts left 0 (oldest by arrival, though not by ts).
    assert_eq!(
        j.push_left(1, 20, 2, |p| out.push(p)),
        Admit::Evicted { ts: 10, value: 0 }
    );
    j.push_right(1, 30, 9, |p| out.push(p));
    assert_eq!(ids(&out), [(1, 9), (2, 9)]);
    assert_eq!(j.counters().evicted_left, 1);
    // Key table full.
    let mut k = IntervalJoin::<u32, u32>::new(0, 1, 1, 2);
    k.push_left(1, 0, 0, |_| {});
    assert_eq!(k.push_right(2, 0, 0, |_| {}), Admit::KeysFull);
    assert_eq!(k.counters().keys_full, 1);
}

#[test]
#[should_panic(expected = "lower bound")]
fn interval_bad_bounds_panic() {
    let _ = IntervalJoin::<u8, u8>::new(1, 0, 1, 1);
}

// ---------- WindowJoin ----------

#[derive(Clone, Copy, Debug, PartialEq)]
struct Quote {
    bid: i64,
    ask: i64,
}

const fn q(bid: i64, ask: i64) -> Quote {
    Quote { bid, ask }
}

#[test]
fn window_boundaries_inclusive_and_final_only_at_watermark() {
    let fold = (
        Count,
        Min(|q: &Quote| q.bid),
        Max(|q: &Quote| q.ask),
        Mean(|q: &Quote| q.ask - q.bid),
    );
    let mut wj = WindowJoin::new(10, 5, 2, 16, 8, fold);
    for (ts, quote) in [(89, q(1, 1000)), (90, q(99, 101)), (100, q(98, 103))] {
        wj.push_right(0, ts, quote).unwrap();
    }
    wj.push_right(1, 100, q(0, 0)).unwrap(); // other key
    wj.push_left(0, 100, 'T').unwrap();
    wj.push_right(0, 105, q(97, 102)).unwrap();
    wj.push_right(0, 106, q(0, 9999)).unwrap();
    let mut rows = Vec::new();
    assert_eq!(
        wj.advance(104, |r| rows.push(r)),
        0,
        "window [90, 105] not closed"
    );
    assert_eq!(wj.pending(), 1);
    assert_eq!(wj.advance(105, |r| rows.push(r)), 1);
    assert_eq!(
        rows,
        [WindowRow {
            key: 0,
            ts: 100,
            left: 'T',
            out: (3, Some(97), Some(103), Some(4.0)),
            complete: true
        }]
    );
}

#[test]
fn window_late_queue_full_out_of_range() {
    let mut wj = WindowJoin::new(1, 1, 1, 4, 1, Count);
    wj.push_left(0, 10, ()).unwrap();
    assert_eq!(wj.push_left(0, 11, ()), Err(Refused::QueueFull));
    assert_eq!(wj.push_left(1, 11, ()), Err(Refused::OutOfRange));
    assert_eq!(wj.push_right(1, 11, 0u8), Err(Refused::OutOfRange));
    wj.advance(10, |_| {});
    assert_eq!(wj.push_left(0, 10, ()), Err(Refused::Late));
    assert_eq!(wj.push_right(0, 10, 0), Err(Refused::Late));
    let mut rows = Vec::new();
    wj.advance(11, |r| rows.push(r));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].out, 0);
    let c = wj.counters();
    assert_eq!((c.queue_full, c.out_of_range, c.late, c.rows), (1, 2, 2, 1));
}

#[test]
fn window_emits_in_time_then_arrival_order() {
    let mut wj = WindowJoin::<char, (), _>::new(0, 0, 2, 4, 8, Count);
    for (key, ts, id) in [(0, 30, 'a'), (1, 10, 'b'), (0, 20, 'c'), (1, 20, 'd')] {
        wj.push_left(key, ts, id).unwrap();
    }
    let mut order = String::new();
    wj.advance(Ts::MAX, |r| order.push(r.left));
    assert_eq!(order, "bcda");
}

type Ts = u64;

#[test]
fn window_out_of_order_quotes_and_eviction_flags_incomplete() {
    let mut wj = WindowJoin::new(100, 0, 1, 3, 8, (Count, Last(|x: &i64| *x)));
    wj.push_right(0, 30, 3).unwrap();
    wj.push_right(0, 10, 1).unwrap(); // out of order
    wj.push_right(0, 20, 2).unwrap();
    // Full: a quote older than all is itself dropped.
    assert_eq!(wj.push_right(0, 5, 0), Ok(Some((5, 0))));
    // Full: a newer quote evicts the oldest (10).
    assert_eq!(wj.push_right(0, 40, 4), Ok(Some((10, 1))));
    wj.push_left(0, 50, 'x').unwrap(); // window [0, 50] lost quotes 5 and 10
    wj.push_left(0, 111, 'y').unwrap(); // window [11, 111] starts after them
    let mut rows = Vec::new();
    wj.advance(200, |r| rows.push(r));
    assert_eq!((rows[0].out, rows[0].complete), ((3, Some(4)), false));
    assert_eq!((rows[1].out, rows[1].complete), ((3, Some(4)), true));
    let c = wj.counters();
    assert_eq!((c.evicted, c.incomplete), (2, 1));
}

#[test]
fn window_expires_quotes_no_window_can_see() {
    let mut wj = WindowJoin::new(10, 0, 1, 4, 8, Count);
    wj.push_right(0, 100, ()).unwrap();
    wj.push_right(0, 105, ()).unwrap();
    wj.advance(110, |_| {});
    // Future trades have t >= 111, windows from 101: quote 100 is dead, 105 is not.
    wj.push_right(0, 120, ()).unwrap();
    assert_eq!(wj.counters().expired, 1);
    assert_eq!(wj.quotes(0), 2);
    // A pending trade keeps its quotes alive.
    wj.push_left(0, 115, ()).unwrap(); // needs [105, 115]
    wj.advance(114, |_| {});
    wj.push_right(0, 130, ()).unwrap();
    assert_eq!(
        wj.counters().expired,
        1,
        "105 still needed by the pending trade"
    );
    let mut rows = Vec::new();
    wj.advance(115, |r| rows.push(r));
    assert_eq!(rows[0].out, 1);
}

// ---------- properties ----------

#[derive(Clone, Debug)]
enum Ev {
    Left(u64, Ts),
    Right(u64, Ts),
    Advance(Ts),
}

/// Events whose times are offsets from the current watermark; a few are late (offset 0).
fn events(keys: u64) -> impl Strategy<Value = Vec<Ev>> {
    proptest::collection::vec(
        prop_oneof![
            4 => (0..keys, 0u64..40).prop_map(|(k, d)| Ev::Left(k, d)),
            4 => (0..keys, 0u64..40).prop_map(|(k, d)| Ev::Right(k, d)),
            1 => (0u64..15).prop_map(Ev::Advance),
        ],
        0..150,
    )
}

/// Turns offsets into absolute times (`wm + d`, so `d = 0` is late once a watermark exists).
fn absolute(evs: &[Ev]) -> Vec<Ev> {
    let mut wm = 0;
    evs.iter()
        .map(|e| match *e {
            Ev::Left(k, d) => Ev::Left(k, wm + d),
            Ev::Right(k, d) => Ev::Right(k, wm + d),
            Ev::Advance(d) => {
                wm += d;
                Ev::Advance(wm)
            }
        })
        .collect()
}

/// The join, its pairs, the brute-force pairs, and the `(is_left, id)` of every lost event.
type IntervalRun = (
    IntervalJoin<u32, u32>,
    Vec<Pair>,
    Vec<Pair>,
    HashSet<(bool, u32)>,
);

fn run_interval(evs: &[Ev], lower: i64, upper: i64, keys: usize, per_key: usize) -> IntervalRun {
    let mut j = IntervalJoin::new(lower, upper, keys, per_key);
    let mut out = Vec::new();
    let mut lost = HashSet::new();
    let mut lefts = Vec::new();
    let mut rights = Vec::new();
    let mut wm = None;
    for (id, e) in evs.iter().enumerate() {
        let id = id as u32;
        let late = |ts: Ts| wm.is_some_and(|w| ts <= w);
        match *e {
            Ev::Left(k, ts) => {
                if !late(ts) {
                    lefts.push((k, ts, id));
                }
                match j.push_left(k, ts, id, |p| out.push((p.left, p.right))) {
                    Admit::Evicted { value, .. } => drop(lost.insert((true, value))),
                    Admit::KeysFull => drop(lost.insert((true, id))),
                    Admit::Late => assert!(late(ts)),
                    _ => {}
                }
            }
            Ev::Right(k, ts) => {
                if !late(ts) {
                    rights.push((k, ts, id));
                }
                match j.push_right(k, ts, id, |p| out.push((p.left, p.right))) {
                    Admit::Evicted { value, .. } => drop(lost.insert((false, value))),
                    Admit::KeysFull => drop(lost.insert((false, id))),
                    Admit::Late => assert!(late(ts)),
                    _ => {}
                }
            }
            Ev::Advance(w) => {
                if w > 0 {
                    j.advance(w);
                    wm = Some(w);
                }
            }
        }
    }
    let mut brute = Vec::new();
    for &(lk, lts, lid) in &lefts {
        for &(rk, rts, rid) in &rights {
            let (l, r) = (lts as i64, rts as i64);
            if lk == rk && l + lower <= r && r <= l + upper {
                brute.push((lid, rid));
            }
        }
    }
    out.sort_unstable();
    brute.sort_unstable();
    (j, out, brute, lost)
}

fn run_window(
    evs: &[Ev],
    before: Ts,
    after: Ts,
    per_key: usize,
    pending: usize,
) -> (WindowJoinCounters, Vec<Row>, Vec<(u32, Out)>, u64) {
    let fold = (
        Count,
        Sum(|q: &(u32, i64)| q.1),
        Min(|q: &(u32, i64)| q.1),
        Last(|q: &(u32, i64)| q.0 as i64),
    );
    let mut wj = WindowJoin::new(before, after, 4, per_key, pending, fold);
    let mut rows = Vec::new();
    let mut lefts = Vec::new();
    let mut quotes = Vec::new();
    let mut queue_full = 0u64;
    for (id, e) in evs.iter().enumerate() {
        let id = id as u32;
        match *e {
            Ev::Left(k, ts) => match wj.push_left(k as u32, ts, id) {
                Ok(()) => lefts.push((k, ts, id)),
                Err(Refused::QueueFull) => queue_full += 1,
                Err(_) => {}
            },
            Ev::Right(k, ts) => {
                let v = (id as i64 * 7919) % 101 - 50;
                if wj.push_right(k as u32, ts, (id, v)).is_ok() {
                    quotes.push((k, ts, id, v));
                }
            }
            Ev::Advance(w) => drop(wj.advance(w, |r| rows.push(r))),
        }
    }
    wj.advance(Ts::MAX, |r| rows.push(r));
    // Brute force: quotes in (ts, arrival) order.
    quotes.sort_by_key(|&(_, ts, id, _)| (ts, id));
    let brute = lefts
        .iter()
        .map(|&(k, t, id)| {
            let lo = t.saturating_sub(before);
            let hi = t + after;
            let w: Vec<_> = quotes
                .iter()
                .filter(|&&(qk, ts, _, _)| qk == k && lo <= ts && ts <= hi)
                .collect();
            let out = (
                w.len() as u64,
                w.iter().map(|x| x.3 as i128).sum::<i128>(),
                w.iter().map(|x| x.3).min(),
                w.last().map(|x| x.2 as i64),
            );
            (id, out)
        })
        .collect();
    (wj.counters(), rows, brute, queue_full)
}

type Out = (u64, i128, Option<i64>, Option<i64>);
type Row = WindowRow<u32, Out>;
use tickwatch::join::WindowJoinCounters;

proptest! {
    /// AsOf agrees with a sorted history of every update: a `Some` answer is always the right
    /// version, and a `None` is either a true miss or counted as `too_old`.
    #[test]
    fn asof_matches_sorted_history(
        versions in 0usize..6,
        ops in proptest::collection::vec((any::<bool>(), 0u32..3, 0u64..50, any::<u16>()), 0..200),
    ) {
        let mut a = AsOf::new(3, versions);
        let mut hist: Vec<BTreeMap<u64, u16>> = vec![BTreeMap::new(); 3];
        for (is_update, k, ts, v) in ops {
            if is_update {
                a.update(k, ts, v);
                hist[k as usize].insert(ts, v);
            } else {
                let want = hist[k as usize].range(..=ts).next_back().map(|(&t, &v)| (t, v));
                let before = a.counters();
                let got = a.lookup(k, ts).map(|(t, &v)| (t, v));
                let after = a.counters();
                match (got, want) {
                    (Some(g), Some(w)) => prop_assert_eq!(g, w),
                    (Some(g), None) => prop_assert!(false, "answer {:?} where there is none", g),
                    (None, None) => prop_assert_eq!(after.misses, before.misses + 1),
                    (None, Some(_)) => prop_assert_eq!(after.too_old, before.too_old + 1),
                }
            }
        }
    }

    /// With room for every version, AsOf equals the sorted history exactly.
    #[test]
    fn asof_exact_without_eviction(
        ops in proptest::collection::vec((any::<bool>(), 0u32..3, 0u64..50, any::<u16>()), 0..200),
    ) {
        let mut a = AsOf::new(3, 200);
        let mut hist: Vec<BTreeMap<u64, u16>> = vec![BTreeMap::new(); 3];
        for (is_update, k, ts, v) in ops {
            if is_update {
                a.update(k, ts, v);
                hist[k as usize].insert(ts, v);
            } else {
                let want = hist[k as usize].range(..=ts).next_back().map(|(&t, &v)| (t, v));
                prop_assert_eq!(a.lookup(k, ts).map(|(t, &v)| (t, v)), want);
            }
        }
        prop_assert_eq!(a.counters().too_old, 0);
        prop_assert_eq!(a.counters().evicted, 0);
    }

    /// With room enough, the interval join emits exactly the nested-loop pairs over non-late
    /// events, each once.
    #[test]
    fn interval_join_matches_nested_loop(
        evs in events(4),
        lower in -20i64..20,
        width in 0i64..30,
    ) {
        let evs = absolute(&evs);
        let (j, out, brute, lost) = run_interval(&evs, lower, lower + width, 8, 200);
        prop_assert!(lost.is_empty());
        let c = j.counters();
        prop_assert_eq!(c.evicted_left + c.evicted_right + c.keys_full, 0);
        prop_assert_eq!(c.pairs as usize, out.len());
        prop_assert_eq!(out, brute);
    }

    /// With small rings and key tables, every emitted pair is right, and every missing pair has
    /// an element that was evicted or refused for a full key table (and counted).
    #[test]
    fn interval_join_overflow_accounts_for_missing_pairs(
        evs in events(4),
        lower in -20i64..20,
        width in 0i64..30,
        keys in 1usize..4,
        per_key in 0usize..3,
    ) {
        let evs = absolute(&evs);
        let (j, out, brute, lost) = run_interval(&evs, lower, lower + width, keys, per_key);
        let c = j.counters();
        prop_assert_eq!(lost.len() as u64, c.evicted_left + c.evicted_right + c.keys_full);
        let brute_set: HashSet<Pair> = brute.iter().copied().collect();
        let out_set: HashSet<Pair> = out.iter().copied().collect();
        prop_assert_eq!(out_set.len(), out.len(), "a pair emitted twice");
        prop_assert!(out_set.is_subset(&brute_set));
        for (l, r) in brute_set.difference(&out_set) {
            prop_assert!(lost.contains(&(true, *l)) || lost.contains(&(false, *r)), "({}, {}) lost unaccounted", l, r);
        }
    }

    /// With room enough, every trade gets exactly the brute-force fold of its window.
    #[test]
    fn window_join_matches_brute_force(evs in events(4), before in 0u64..20, after in 0u64..20) {
        let evs = absolute(&evs);
        let (c, rows, brute, queue_full) = run_window(&evs, before, after, 200, 200);
        prop_assert_eq!(c.evicted + c.queue_full + c.incomplete + queue_full, 0);
        prop_assert_eq!(rows.len(), brute.len());
        let got: Vec<(u32, Out)> = {
            let mut g: Vec<_> = rows.iter().map(|r| { assert!(r.complete); (r.left, r.out) }).collect();
            g.sort_by_key(|x| x.0);
            g
        };
        prop_assert_eq!(got, brute);
        // Emission order: by (ts, arrival).
        let keys: Vec<_> = rows.iter().map(|r| (r.ts, r.left)).collect();
        prop_assert!(keys.windows(2).all(|w| w[0] <= w[1]));
    }

    /// With small rings and queues, rows flagged complete are exact, incomplete rows and refused
    /// trades are counted, and every accepted trade gets a row.
    #[test]
    fn window_join_overflow_is_accounted(
        evs in events(4),
        before in 0u64..20,
        after in 0u64..20,
        per_key in 0usize..4,
        pending in 0usize..4,
    ) {
        let evs = absolute(&evs);
        let (c, rows, brute, queue_full) = run_window(&evs, before, after, per_key, pending);
        prop_assert_eq!(queue_full, c.queue_full);
        prop_assert_eq!(rows.len(), brute.len());
        prop_assert_eq!(rows.iter().filter(|r| !r.complete).count() as u64, c.incomplete);
        let brute: std::collections::HashMap<u32, Out> = brute.into_iter().collect();
        for r in rows.iter().filter(|r| r.complete) {
            prop_assert_eq!(&r.out, &brute[&r.left]);
        }
        if c.evicted == 0 {
            prop_assert_eq!(c.incomplete, 0);
        }
    }
}

// ---------- no allocation after construction ----------

mod common;

#[global_allocator]
static GLOBAL: common::Counting = common::Counting;

mod no_alloc {
    //! A counting global allocator armed per thread (the shape of `tests/no_alloc.rs`): after
    //! construction, the hot paths of every keyed-state and join structure allocate nothing.

    use std::hint::black_box;
    use tickwatch::join::{AsOf, Count, IntervalJoin, Max, Mean, Min, WindowJoin};
    use tickwatch::state::{DenseState, KeyedState, ListState, ReducingState, SparseIndex};

    /// Runs `f` with counting armed on this thread; returns the allocator calls it made.
    fn allocations(f: impl FnOnce()) -> u64 {
        super::common::allocations(f).1
    }

    #[test]
    fn hot_paths_do_not_allocate() {
        let mut dense = DenseState::with_ttl(64, 0u64, 1_000);
        let mut index = SparseIndex::with_ttl(64, 1_000);
        let mut keyed = KeyedState::with_ttl(64, 0u64, 1_000);
        let mut reducing = ReducingState::new(64, 0u64, |a: &mut u64, x: &u64| *a += x);
        let mut list = ListState::new(64, 4);
        let mut asof = AsOf::new(16, 8);
        let mut ij = IntervalJoin::<u64, u64>::new(-50, 50, 32, 4);
        let fold = (
            Count,
            Min(|q: &i64| *q),
            Max(|q: &i64| *q),
            Mean(|q: &i64| *q),
        );
        let mut wj = WindowJoin::new(20, 10, 16, 8, 16, fold);
        let mut sink = 0u64;
        let n = allocations(|| {
            for i in 0..20_000u64 {
                let ts = i * 3 + 100;
                let k = i.wrapping_mul(0x9E37_79B9) % 100; // more keys than room: overflows
                dense.update((k % 80) as u32, ts, |v| *v += 1);
                sink += dense.get((k % 64) as u32, ts).copied().unwrap_or(0);
                let _ = index.insert(k, ts);
                sink += index.get(k ^ 1, ts).unwrap_or(0) as u64;
                if i % 7 == 0 {
                    index.remove(k);
                    index.expire(ts, 8);
                }
                let _ = keyed.update(k, ts, |v| *v += 1);
                let _ = reducing.add(k, ts, &i);
                let _ = list.push(k, ts, i);
                sink += list.iter(k, ts).count() as u64;
                asof.update((k % 16) as u32, ts - (i % 5), i);
                sink += asof.lookup((k % 16) as u32, ts - 30).map_or(0, |(t, _)| t);
                let emit = |p: tickwatch::join::Joined<u64, u64>| sink += p.left ^ p.right;
                let _ = ij.push_left(k % 40, ts, i, emit);
                let _ = ij.push_right(k % 40, ts + 1, i, |p| {
                    black_box(p);
                });
                let _ = wj.push_right((k % 16) as u32, ts, (i % 100) as i64);
                let _ = wj.push_left((k % 16) as u32, ts, i);
                if i % 16 == 0 {
                    ij.advance(ts - 60);
                    wj.advance(ts - 10, |r| sink += r.out.0);
                }
            }
            black_box(sink);
        });
        assert_eq!(n, 0, "allocator calls on the hot paths");
        assert!(index.counters().overflow > 0 || index.counters().expired > 0);
        assert!(wj.counters().rows > 0 && ij.counters().pairs > 0);
    }
}
