//! Many fixed-capacity rings in one preallocated array: the storage behind list state and the
//! per-key buffers of the joins.
//!
//! Ring `r` owns cells `r * cap .. (r + 1) * cap`. A cell holds `Option<T>` so that `T` needs only
//! `Copy` (no `Default`, no `unsafe` for uninitialised cells); live cells are exactly the `len`
//! cells from `head` on, and every other cell is `None`. Logical index 0 is the oldest element.

use core::fmt;

/// `n` rings of `cap` elements each, allocated once.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Rings<T: Copy> {
    cells: Box<[Option<T>]>,
    head: Box<[u32]>,
    len: Box<[u32]>,
    cap: usize,
}

impl<T: Copy> fmt::Debug for Rings<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rings")
            .field("rings", &self.head.len())
            .field("cap", &self.cap)
            .finish_non_exhaustive()
    }
}

impl<T: Copy> Rings<T> {
    /// At most [`MAX_CAPACITY`](super::MAX_CAPACITY) rings and cells in all: larger sizes are
    /// clamped, the rings' length first (a full ring evicts its oldest element, counted by the
    /// callers).
    pub(crate) fn new(rings: usize, cap: usize) -> Self {
        let rings = super::capped(rings);
        let cap = super::capped(cap).min(super::MAX_CAPACITY / rings.max(1));
        let total = rings * cap;
        Self {
            cells: vec![None; total].into_boxed_slice(),
            head: vec![0; rings].into_boxed_slice(),
            len: vec![0; rings].into_boxed_slice(),
            cap,
        }
    }

    /// Elements each ring holds at most.
    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    pub(crate) fn len(&self, r: usize) -> usize {
        self.len[r] as usize
    }

    /// Physical cell of logical index `i` (0 = oldest) of ring `r`.
    #[inline]
    fn cell(&self, r: usize, i: usize) -> usize {
        debug_assert!(i < self.cap, "i={i} cap={}", self.cap);
        let mut p = self.head[r] as usize + i;
        if p >= self.cap {
            p -= self.cap;
        }
        r * self.cap + p
    }

    /// Element `i` (0 = oldest) of ring `r`, if `i < len`.
    #[inline]
    pub(crate) fn get(&self, r: usize, i: usize) -> Option<&T> {
        if i >= self.len(r) {
            return None;
        }
        self.cells[self.cell(r, i)].as_ref()
    }

    /// Replaces element `i` (`i < len`).
    #[inline]
    pub(crate) fn set(&mut self, r: usize, i: usize, v: T) {
        debug_assert!(i < self.len(r), "i={i} len={}", self.len(r));
        let c = self.cell(r, i);
        self.cells[c] = Some(v);
    }

    /// Swaps elements `i` and `j` (both `< len`).
    #[inline]
    pub(crate) fn swap(&mut self, r: usize, i: usize, j: usize) {
        let (a, b) = (self.cell(r, i), self.cell(r, j));
        self.cells.swap(a, b);
    }

    /// Appends `v` as the newest element. A full ring first drops its oldest element, which is
    /// returned; a ring of capacity 0 returns `v` itself.
    pub(crate) fn push_back(&mut self, r: usize, v: T) -> Option<T> {
        if self.cap == 0 {
            return Some(v);
        }
        let evicted = if self.len(r) == self.cap {
            self.pop_front(r)
        } else {
            None
        };
        let c = self.cell(r, self.len(r));
        self.cells[c] = Some(v);
        self.len[r] += 1;
        evicted
    }

    /// Removes and returns the oldest element.
    pub(crate) fn pop_front(&mut self, r: usize) -> Option<T> {
        if self.len[r] == 0 {
            return None;
        }
        let c = self.cell(r, 0);
        let v = self.cells[c].take();
        let next = self.head[r] as usize + 1;
        self.head[r] = if next == self.cap { 0 } else { next as u32 };
        self.len[r] -= 1;
        v
    }

    /// Keeps the elements for which `keep` is true, in order; returns how many were removed.
    pub(crate) fn retain(&mut self, r: usize, mut keep: impl FnMut(&T) -> bool) -> usize {
        let n = self.len(r);
        let mut w = 0;
        for i in 0..n {
            let c = self.cell(r, i);
            let Some(v) = self.cells[c] else { continue };
            if keep(&v) {
                if w != i {
                    let cw = self.cell(r, w);
                    self.cells[cw] = Some(v);
                }
                w += 1;
            }
        }
        for i in w..n {
            let c = self.cell(r, i);
            self.cells[c] = None;
        }
        self.len[r] = w as u32;
        n - w
    }

    /// Empties ring `r`.
    pub(crate) fn clear(&mut self, r: usize) {
        for i in 0..self.len(r) {
            let c = self.cell(r, i);
            self.cells[c] = None;
        }
        self.head[r] = 0;
        self.len[r] = 0;
    }

    /// The elements of ring `r`, oldest first (double-ended: `.rev()` gives newest first).
    pub(crate) fn iter(&self, r: usize) -> impl DoubleEndedIterator<Item = &T> + '_ {
        let base = r * self.cap;
        let (h, n) = (self.head[r] as usize, self.len(r));
        let first_end = (h + n).min(self.cap);
        let wrapped = (h + n).saturating_sub(self.cap);
        self.cells[base + h..base + first_end]
            .iter()
            .chain(self.cells[base..base + wrapped].iter())
            .flatten()
    }

    /// First logical index whose element fails `pred`, given that `pred` holds for a prefix
    /// (binary search, like `slice::partition_point`).
    pub(crate) fn partition_point(&self, r: usize, mut pred: impl FnMut(&T) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.len(r));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(r, mid) {
                Some(v) if pred(v) => lo = mid + 1,
                _ => hi = mid,
            }
        }
        lo
    }
}

#[cfg(test)]
mod tests {
    use super::Rings;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    proptest! {
        /// Every ring behaves as a `VecDeque` capped at `cap` (push evicts the front).
        #[test]
        fn matches_vecdeque(cap in 0usize..5, ops in proptest::collection::vec((0usize..3, 0u8..4, any::<u16>()), 0..200)) {
            let mut rings = Rings::new(3, cap);
            let mut model = vec![VecDeque::new(); 3];
            for (r, op, v) in ops {
                let m = &mut model[r];
                match op {
                    0 | 1 => {
                        let want = if cap == 0 { Some(v) } else if m.len() == cap { m.pop_front() } else { None };
                        if cap > 0 { m.push_back(v); }
                        prop_assert_eq!(rings.push_back(r, v), want);
                    }
                    2 => prop_assert_eq!(rings.pop_front(r), m.pop_front()),
                    _ => {
                        let removed = rings.retain(r, |x| x % 3 != 0);
                        let before = m.len();
                        m.retain(|x| x % 3 != 0);
                        prop_assert_eq!(removed, before - m.len());
                    }
                }
                let got: Vec<u16> = rings.iter(r).copied().collect();
                prop_assert_eq!(&got, &m.iter().copied().collect::<Vec<_>>());
                let rev: Vec<u16> = rings.iter(r).rev().copied().collect();
                prop_assert_eq!(rev, m.iter().rev().copied().collect::<Vec<_>>());
                for (i, x) in m.iter().enumerate() {
                    prop_assert_eq!(rings.get(r, i), Some(x));
                }
                prop_assert_eq!(rings.len(r), m.len());
            }
        }
    }
}
