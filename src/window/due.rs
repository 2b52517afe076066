//! An indexed min-heap of slots by the watermark at which each is next due: set, move and
//! remove any slot in O(log n), take the earliest in O(log n). All of it preallocated for a
//! fixed number of slots, so it never allocates.

use super::Ts;

const NONE: u32 = u32::MAX;

/// Slots `0..n`, each in the heap at most once, ordered by due time.
#[derive(Debug)]
pub(crate) struct DueHeap {
    /// Slots, heap-ordered by `due`.
    heap: Box<[u32]>,
    len: usize,
    /// Each slot's index in `heap`, or [`NONE`].
    pos: Box<[u32]>,
    due: Box<[Ts]>,
}

impl DueHeap {
    /// A heap for slots `0..n` (`n` < 2³²).
    pub(crate) fn new(n: usize) -> DueHeap {
        DueHeap {
            heap: vec![0; n].into_boxed_slice(),
            len: 0,
            pos: vec![NONE; n].into_boxed_slice(),
            due: vec![0; n].into_boxed_slice(),
        }
    }

    /// Slots in the heap.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The earliest slot and when it is due.
    #[inline]
    pub(crate) fn peek(&self) -> Option<(Ts, u32)> {
        (self.len > 0).then(|| (self.due[self.heap[0] as usize], self.heap[0]))
    }

    /// Puts `slot` in the heap due at `at`, or moves it there.
    pub(crate) fn set(&mut self, slot: u32, at: Ts) {
        let s = slot as usize;
        let i = match self.pos[s] {
            NONE => {
                self.heap[self.len] = slot;
                self.pos[s] = self.len as u32;
                self.len += 1;
                self.len - 1
            }
            i => i as usize,
        };
        self.due[s] = at;
        let i = self.up(i);
        self.down(i);
    }

    /// Takes `slot` out of the heap (nothing if it is not in).
    pub(crate) fn remove(&mut self, slot: u32) {
        let i = self.pos[slot as usize];
        if i == NONE {
            return;
        }
        let i = i as usize;
        self.len -= 1;
        self.pos[slot as usize] = NONE;
        if i < self.len {
            let last = self.heap[self.len];
            self.heap[i] = last;
            self.pos[last as usize] = i as u32;
            let i = self.up(i);
            self.down(i);
        }
    }

    fn before(&self, a: usize, b: usize) -> bool {
        self.due[self.heap[a] as usize] < self.due[self.heap[b] as usize]
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.pos[self.heap[a] as usize] = a as u32;
        self.pos[self.heap[b] as usize] = b as u32;
    }

    fn up(&mut self, mut i: usize) -> usize {
        while i > 0 && self.before(i, (i - 1) / 2) {
            self.swap(i, (i - 1) / 2);
            i = (i - 1) / 2;
        }
        i
    }

    fn down(&mut self, mut i: usize) {
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut m = i;
            if l < self.len && self.before(l, m) {
                m = l;
            }
            if r < self.len && self.before(r, m) {
                m = r;
            }
            if m == i {
                return;
            }
            self.swap(i, m);
            i = m;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any mix of sets and removes, then taking the earliest until empty, gives every slot
        /// left in due order, each at its last due time.
        #[test]
        fn takes_slots_in_due_order(ops in proptest::collection::vec((0u32..40, 0u64..100, any::<bool>()), 0..300)) {
            let mut h = DueHeap::new(40);
            let mut want = std::collections::BTreeMap::new();
            for (slot, at, remove) in ops {
                if remove {
                    h.remove(slot);
                    want.remove(&slot);
                } else {
                    h.set(slot, at);
                    want.insert(slot, at);
                }
            }
            prop_assert_eq!(h.len(), want.len());
            let mut got = Vec::new();
            while let Some((at, slot)) = h.peek() {
                prop_assert_eq!(want.get(&slot), Some(&at));
                got.push(at);
                h.remove(slot);
            }
            let mut sorted: Vec<u64> = want.values().copied().collect();
            sorted.sort_unstable();
            prop_assert_eq!(got, sorted);
        }
    }
}
