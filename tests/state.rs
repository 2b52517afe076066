//! Keyed state: hand-made edge cases, then property tests against a `HashMap` model.

use proptest::prelude::*;
use std::collections::{HashMap, VecDeque};
use tickwatch::state::{
    DenseState, Full, KeyedState, ListState, ReducingState, SparseIndex, StateCounters,
};

// ---------- DenseState ----------

#[test]
fn dense_smoke() {
    let mut s = DenseState::new(4, 0i64);
    assert!(s.is_empty());
    assert_eq!(s.get(0, 0), None);
    assert!(s.update(2, 10, |v| *v += 5));
    assert!(s.update(2, 11, |v| *v += 5));
    assert_eq!(s.get(2, 12), Some(&10));
    *s.get_mut(2, 13).unwrap() = 7;
    assert_eq!(s.get(2, 13), Some(&7));
    assert!(s.set(3, 13, 1));
    assert_eq!(s.len(), 2);
    assert_eq!(s.clear(2), Some(7));
    assert_eq!(s.clear(2), None);
    assert_eq!(s.get(2, 14), None);
    assert!(s.update(2, 15, |v| *v += 1), "restarts from the default");
    assert_eq!(s.get(2, 15), Some(&1));
    s.clear_all();
    assert!(s.is_empty());
    let c = s.counters();
    assert_eq!((c.inserts, c.overflow, c.expired), (3, 0, 0));
}

#[test]
fn dense_out_of_range_is_counted_overflow() {
    let mut s = DenseState::new(3, 0u8);
    assert!(s.set(2, 0, 1));
    assert!(!s.set(3, 0, 1));
    assert!(!s.update(u32::MAX, 0, |v| *v = 1));
    assert_eq!(s.get(3, 0), None);
    assert_eq!(s.counters().overflow, 2);
    let mut z = DenseState::new(0, 0u8);
    assert!(!z.set(0, 0, 1));
    assert_eq!(z.counters().overflow, 1);
}

#[test]
fn dense_ttl_expires_at_exactly_ttl() {
    let mut s = DenseState::with_ttl(2, 0u32, 50);
    s.set(1, 100, 9);
    assert_eq!(s.get(1, 149), Some(&9), "49 ns idle: live");
    assert_eq!(s.get(1, 150), None, "50 ns idle = ttl: expired");
    assert_eq!(s.counters().expired, 1);
    assert_eq!(s.get(1, 150), None);
    assert_eq!(s.counters().expired, 1, "expired is counted once");
    assert!(s.is_empty());
    s.update(1, 200, |v| *v += 1);
    assert_eq!(
        s.get(1, 200),
        Some(&1),
        "an expired value restarts from the default"
    );
}

#[test]
fn dense_ttl_refreshed_by_writes_not_reads() {
    let mut s = DenseState::with_ttl(2, 0u32, 50);
    s.set(0, 100, 1);
    s.update(0, 140, |v| *v += 1); // write: refresh
    assert_eq!(s.get(0, 185), Some(&2));
    assert_eq!(s.get(0, 189), Some(&2)); // read: no refresh
    assert_eq!(s.get(0, 190), None);
    s.set(1, 100, 1);
    assert!(s.get_mut(1, 149).is_some()); // get_mut is a write
    assert_eq!(s.get(1, 198), Some(&1));
    assert_eq!(s.get(1, 50), Some(&1), "an earlier time is never expired");
}

#[test]
#[should_panic(expected = "TTL of 0")]
fn dense_zero_ttl_panics() {
    let _ = DenseState::with_ttl(1, 0u8, 0);
}

// ---------- SparseIndex ----------

/// `n` distinct keys sharing one home bucket, all different from `avoid`.
fn colliding(ix: &SparseIndex, home: usize, n: usize) -> Vec<u64> {
    (1u64..).filter(|&k| ix.home(k) == home).take(n).collect()
}

#[test]
fn sparse_smoke() {
    let mut ix = SparseIndex::new(4);
    assert_eq!(ix.buckets(), 8);
    assert_eq!(ix.get(5, 0), None);
    let e = ix.insert(5, 0).unwrap();
    assert!(e.new);
    assert_eq!(e.slot, 0);
    let again = ix.insert(5, 1).unwrap();
    assert_eq!((again.slot, again.new), (0, false));
    assert_eq!(ix.get(5, 2), Some(0));
    assert_eq!(ix.key_of(0), Some(5));
    assert_eq!(ix.key_of(1), None);
    assert_eq!(ix.remove(5), Some(0));
    assert_eq!(ix.remove(5), None);
    assert!(ix.is_empty());
    let c = ix.counters();
    assert_eq!((c.inserts, c.hits, c.misses), (1, 2, 1));
    ix.check().unwrap();
}

#[test]
fn sparse_full_refuses_and_counts() {
    let mut ix = SparseIndex::new(3);
    for k in [10, 20, 30] {
        ix.insert(k, 0).unwrap();
    }
    assert_eq!(ix.insert(40, 0), Err(Full));
    assert_eq!(ix.insert(50, 0), Err(Full));
    assert_eq!(ix.counters().overflow, 2);
    assert!(
        !ix.insert(20, 0).unwrap().new,
        "present keys still resolve when full"
    );
    assert_eq!(ix.get(40, 0), None);
    let freed = ix.remove(10).unwrap();
    assert_eq!(ix.insert(40, 0).unwrap().slot, freed, "freed slot reused");
    ix.check().unwrap();
}

#[test]
fn sparse_zero_capacity() {
    let mut ix = SparseIndex::new(0);
    assert_eq!(ix.insert(1, 0), Err(Full));
    assert_eq!(ix.get(1, 0), None);
    assert_eq!(ix.remove(1), None);
    assert_eq!(ix.expire(100, 10), 0);
    assert_eq!(ix.counters().overflow, 1);
    ix.check().unwrap();
}

#[test]
fn backward_shift_keeps_colliding_keys_findable() {
    // Remove each position of a cluster of colliding keys in turn, with neighbours homed just
    // after the cluster's home interleaved, and check every other key is still found.
    let probe = SparseIndex::new(16);
    let home = 5;
    let same = colliding(&probe, home, 5);
    let next = colliding(&probe, home + 1, 3);
    let all: Vec<u64> = same.iter().chain(&next).copied().collect();
    for victim in 0..all.len() {
        let mut ix = SparseIndex::new(16);
        let mut slots = HashMap::new();
        // Interleave so the clusters overlap.
        for &k in [
            same[0], next[0], same[1], same[2], next[1], same[3], next[2], same[4],
        ]
        .iter()
        {
            slots.insert(k, ix.insert(k, 0).unwrap().slot);
        }
        ix.check().unwrap();
        let v = all[victim];
        assert_eq!(ix.remove(v), Some(slots[&v]));
        ix.check().unwrap();
        for &k in &all {
            let want = if k == v { None } else { Some(slots[&k]) };
            assert_eq!(ix.get(k, 0), want, "key {k} after removing {v}");
        }
    }
}

#[test]
fn backward_shift_across_the_wrap() {
    let mut ix = SparseIndex::new(8); // 16 buckets
    let last = ix.buckets() - 1;
    let at_end = colliding(&ix, last, 3); // occupy 15, 0, 1
    let at_zero = colliding(&ix, 0, 2); // pushed to 2, 3
    for &k in at_end.iter().chain(&at_zero) {
        ix.insert(k, 0).unwrap();
    }
    ix.check().unwrap();
    ix.remove(at_end[0]).unwrap();
    ix.check().unwrap();
    for &k in at_end[1..].iter().chain(&at_zero) {
        assert!(ix.get(k, 0).is_some(), "{k}");
    }
    ix.remove(at_end[1]).unwrap();
    ix.remove(at_zero[0]).unwrap();
    ix.check().unwrap();
    assert!(ix.get(at_end[2], 0).is_some());
    assert!(ix.get(at_zero[1], 0).is_some());
}

#[test]
fn sparse_ttl_expires_at_exactly_ttl() {
    let mut ix = SparseIndex::with_ttl(4, 100);
    ix.insert(1, 1_000).unwrap();
    assert!(ix.get(1, 1_099).is_some());
    assert_eq!(ix.get(1, 1_100), None);
    assert_eq!(ix.counters().expired, 1);
    assert!(ix.is_empty(), "expired on access and removed");
    ix.check().unwrap();
    // Re-inserting an expired key gives a new entry.
    ix.insert(2, 0).unwrap();
    assert!(ix.insert(2, 100).unwrap().new);
}

#[test]
fn sparse_ttl_refreshed_by_insert_and_touch() {
    let mut ix = SparseIndex::with_ttl(4, 100);
    let s = ix.insert(1, 0).unwrap().slot;
    ix.insert(1, 60).unwrap();
    assert!(ix.get(1, 159).is_some());
    ix.touch(s, 150);
    assert!(ix.get(1, 249).is_some());
    assert_eq!(ix.get(1, 250), None);
}

#[test]
fn sparse_probe_expires_colliding_entries_on_the_way() {
    let mut ix = SparseIndex::with_ttl(8, 10);
    let ks = colliding(&ix, 3, 4);
    ix.insert(ks[0], 0).unwrap();
    ix.insert(ks[1], 0).unwrap();
    ix.insert(ks[2], 5).unwrap();
    ix.insert(ks[3], 20).unwrap();
    // Looking for ks[3] at 20 walks over ks[0], ks[1] (idle 20) and ks[2] (idle 15).
    assert!(ix.get(ks[3], 20).is_some());
    assert_eq!(ix.counters().expired, 3);
    assert_eq!(ix.len(), 1);
    ix.check().unwrap();
}

#[test]
fn sparse_full_with_ttl_sweeps_before_refusing() {
    let mut ix = SparseIndex::with_ttl(2, 10);
    ix.insert(1, 0).unwrap();
    ix.insert(2, 5).unwrap();
    assert_eq!(ix.insert(3, 9), Err(Full), "nothing expired yet");
    assert!(
        ix.insert(3, 10).is_ok(),
        "key 1 expired at 10 and made room"
    );
    assert_eq!(ix.counters().expired, 1);
    assert_eq!(ix.counters().overflow, 1);
    ix.check().unwrap();
}

#[test]
fn sparse_expire_sweep_is_bounded() {
    let mut ix = SparseIndex::with_ttl(8, 10);
    for k in 0..8 {
        ix.insert(k * 1_000, 0).unwrap();
    }
    assert_eq!(ix.expire(9, 100), 0, "nothing idle for 10 yet");
    assert_eq!(ix.expire(10, 3), 3);
    assert_eq!(ix.expire(10, 3), 3);
    assert_eq!(ix.expire(10, 3), 2);
    assert_eq!(ix.expire(10, 3), 0);
    assert!(ix.is_empty());
    assert_eq!(ix.counters().expired, 8);
    ix.check().unwrap();
    let mut no_ttl = SparseIndex::new(2);
    no_ttl.insert(1, 0).unwrap();
    assert_eq!(no_ttl.expire(u64::MAX, 10), 0);
}

#[test]
fn sparse_clear() {
    let mut ix = SparseIndex::new(4);
    for k in 0..4 {
        ix.insert(k, 0).unwrap();
    }
    ix.clear();
    assert!(ix.is_empty());
    ix.check().unwrap();
    for k in 10..14 {
        ix.insert(k, 0).unwrap();
    }
    ix.check().unwrap();
}

// ---------- KeyedState, ReducingState, ListState ----------

#[test]
fn keyed_value_state() {
    let mut s = KeyedState::new(2, 0u64);
    s.update(7, 0, |v| *v += 3).unwrap();
    s.set(8, 0, 10).unwrap();
    assert_eq!(s.set(9, 0, 1), Err(Full));
    assert_eq!(s.get(7, 0), Some(&3));
    *s.get_mut(8, 0).unwrap() += 1;
    assert_eq!(s.get(8, 0), Some(&11));
    let mut all: Vec<_> = s.iter().map(|(k, v)| (k, *v)).collect();
    all.sort();
    assert_eq!(all, [(7, 3), (8, 11)]);
    assert_eq!(s.remove(7), Some(3));
    // The freed slot goes to a new key, which starts at init, not at 3.
    assert_eq!(*s.entry(9, 0).unwrap(), 0);
    assert_eq!(s.counters().overflow, 1);
    assert_eq!(s.len(), 2);
}

#[test]
fn keyed_ttl() {
    let mut s = KeyedState::with_ttl(4, 0u32, 100);
    s.set(1, 0, 5).unwrap();
    assert!(s.get_mut(1, 50).is_some()); // write: refreshed to 50
    assert_eq!(s.get(1, 149), Some(&5));
    assert_eq!(s.get(1, 150), None);
    s.update(1, 150, |v| *v += 1).unwrap();
    assert_eq!(s.get(1, 150), Some(&1), "expired value restarts at init");
    s.set(2, 150, 0).unwrap();
    assert_eq!(s.expire(250, 4), 2);
}

#[test]
fn reducing_state() {
    let mut sum = ReducingState::new(2, 0i64, |a: &mut i64, x: &i64| *a += x);
    assert_eq!(sum.add(1, 0, &5), Ok(&5));
    assert_eq!(sum.add(1, 0, &-2), Ok(&3));
    sum.add(2, 0, &1).unwrap();
    assert_eq!(sum.add(3, 0, &1), Err(Full));
    assert_eq!(sum.get(1, 0), Some(&3));
    assert_eq!(sum.remove(1), Some(3));
    assert_eq!(sum.len(), 1);
    assert_eq!(sum.counters().overflow, 1);
    let mut ttl = ReducingState::with_ttl(2, 0u32, 10, |a: &mut u32, x: &u32| *a = (*a).max(*x));
    ttl.add(1, 0, &4).unwrap();
    assert_eq!(ttl.get(1, 10), None);
    assert_eq!(ttl.add(1, 10, &2), Ok(&2));
    assert!(!ttl.is_empty());
    assert_eq!(ttl.expire(20, 2), 1);
}

#[test]
fn list_state_evicts_oldest_and_counts() {
    let mut l = ListState::new(2, 3);
    assert_eq!(l.per_key(), 3);
    for (i, v) in [1u32, 2, 3].into_iter().enumerate() {
        assert_eq!(l.push(5, i as u64, v), Ok(None));
    }
    assert_eq!(l.push(5, 3, 4), Ok(Some(1)));
    assert_eq!(l.push(5, 4, 5), Ok(Some(2)));
    assert_eq!(l.iter(5, 4).copied().collect::<Vec<_>>(), [3, 4, 5]);
    assert_eq!(l.last(5, 4), Some(&5));
    assert_eq!(l.counters().evicted, 2);
    l.push(6, 0, 9).unwrap();
    assert_eq!(l.push(7, 0, 9), Err(Full));
    assert_eq!(l.remove(5), Some(3));
    assert_eq!(l.iter(5, 5).count(), 0);
    l.push(7, 5, 1).unwrap();
    assert_eq!(
        l.iter(7, 5).copied().collect::<Vec<_>>(),
        [1],
        "a reused slot starts with an empty list"
    );
    let mut z = ListState::new(1, 0);
    assert_eq!(z.push(1, 0, 3u8), Ok(Some(3)), "capacity 0 evicts at once");
}

#[test]
fn list_state_ttl_reuse_clears_list() {
    let mut l = ListState::with_ttl(1, 4, 10);
    l.push(1, 0, 'a').unwrap();
    l.push(1, 1, 'b').unwrap();
    assert_eq!(l.iter(1, 11).count(), 0, "expired at 1 + 10");
    l.push(2, 11, 'c').unwrap();
    assert_eq!(l.iter(2, 11).copied().collect::<String>(), "c");
    assert_eq!(l.len(), 1);
    assert_eq!(l.expire(21, 1), 1);
    assert!(l.is_empty());
}

#[test]
fn counters_merge_and_display() {
    let mut a = StateCounters {
        inserts: 1,
        hits: 2,
        misses: 3,
        overflow: 4,
        expired: 5,
        evicted: 6,
    };
    a.merge(&a.clone());
    assert_eq!(a.evicted, 12);
    assert_eq!(
        a.to_string(),
        "inserts=2 hits=4 misses=6 overflow=8 expired=10 evicted=12"
    );
}

// ---------- properties ----------

#[derive(Clone, Debug)]
enum Op {
    Insert(u64),
    Remove(u64),
    Get(u64),
}

fn ops(keys: u64) -> impl Strategy<Value = Vec<Op>> {
    // Keys from a small range, spread with a multiplier so they collide in varied ways.
    let key = (0..keys).prop_map(|k| k.wrapping_mul(0x1000_0001));
    proptest::collection::vec(
        prop_oneof![
            3 => key.clone().prop_map(Op::Insert),
            2 => key.clone().prop_map(Op::Remove),
            2 => key.prop_map(Op::Get),
        ],
        0..300,
    )
}

proptest! {
    /// SparseIndex equals a HashMap, capacity-bounded, and keeps its invariants.
    #[test]
    fn sparse_index_matches_hashmap(cap in 0usize..20, ops in ops(40)) {
        let mut ix = SparseIndex::new(cap);
        let mut model: HashMap<u64, u32> = HashMap::new();
        let mut overflow = 0;
        for op in ops {
            match op {
                Op::Insert(k) => match (ix.insert(k, 0), model.get(&k)) {
                    (Ok(e), Some(&s)) => prop_assert_eq!((e.slot, e.new), (s, false)),
                    (Ok(e), None) => {
                        prop_assert!(e.new);
                        prop_assert!(model.values().all(|&s| s != e.slot), "slot handed out twice");
                        prop_assert!((e.slot as usize) < cap);
                        model.insert(k, e.slot);
                    }
                    (Err(Full), None) => {
                        prop_assert_eq!(model.len(), cap);
                        overflow += 1;
                    }
                    (Err(Full), Some(_)) => prop_assert!(false, "present key refused"),
                },
                Op::Remove(k) => prop_assert_eq!(ix.remove(k), model.remove(&k)),
                Op::Get(k) => prop_assert_eq!(ix.get(k, 0), model.get(&k).copied()),
            }
            prop_assert_eq!(ix.len(), model.len());
            ix.check().map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        prop_assert_eq!(ix.counters().overflow, overflow);
        let mut got: Vec<_> = ix.iter().collect();
        got.sort_unstable();
        let mut want: Vec<_> = model.into_iter().collect();
        want.sort_unstable();
        prop_assert_eq!(got, want);
    }

    /// With a TTL and non-decreasing time, SparseIndex equals a HashMap that drops entries idle
    /// for `ttl` or more; every expiry is counted.
    #[test]
    fn sparse_index_ttl_matches_model(
        cap in 1usize..12,
        steps in proptest::collection::vec((0u64..4, 0u8..4, 0u64..24), 0..300),
    ) {
        let ttl = 10;
        let mut ix = SparseIndex::with_ttl(cap, ttl);
        let mut model: HashMap<u64, (u32, u64)> = HashMap::new();
        let mut now = 0;
        for (dt, op, k) in steps {
            now += dt;
            // Model: entries idle >= ttl are gone.
            model.retain(|_, &mut (_, w)| now - w < ttl);
            match op {
                0 | 1 => match ix.insert(k, now) {
                    Ok(e) => {
                        match model.get_mut(&k) {
                            Some(m) => { prop_assert_eq!((e.slot, e.new), (m.0, false)); m.1 = now; }
                            None => { prop_assert!(e.new); model.insert(k, (e.slot, now)); }
                        }
                    }
                    Err(Full) => prop_assert!(!model.contains_key(&k) && model.len() == cap),
                },
                2 => prop_assert_eq!(ix.get(k, now), model.get(&k).map(|m| m.0)),
                _ => { ix.expire(now, 3); }
            }
            ix.check().map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(ix.len() >= model.len());
        }
        let c = ix.counters();
        prop_assert_eq!(c.inserts - c.expired, ix.len() as u64);
    }

    /// ListState equals a map of capped VecDeques; evictions are counted.
    #[test]
    fn list_state_matches_model(
        cap in 1usize..6,
        per_key in 0usize..4,
        pushes in proptest::collection::vec((0u64..8, any::<u16>()), 0..200),
    ) {
        let mut l = ListState::new(cap, per_key);
        let mut model: HashMap<u64, VecDeque<u16>> = HashMap::new();
        let mut evicted = 0;
        for (k, v) in pushes {
            let full = !model.contains_key(&k) && model.len() == cap;
            match l.push(k, 0, v) {
                Err(Full) => prop_assert!(full),
                Ok(out) => {
                    let m = model.entry(k).or_default();
                    m.push_back(v);
                    let want = if m.len() > per_key { m.pop_front() } else { None };
                    evicted += want.is_some() as u64;
                    prop_assert_eq!(out, want);
                }
            }
        }
        prop_assert_eq!(l.counters().evicted, evicted);
        for (k, m) in &model {
            let got: Vec<u16> = l.iter(*k, 0).copied().collect();
            prop_assert_eq!(got, m.iter().copied().collect::<Vec<_>>());
        }
    }
}
