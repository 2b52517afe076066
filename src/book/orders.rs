//! The live-order table: a fixed-capacity open-addressing hash map from (order reference, stock
//! locate) to order.
//!
//! A valid feed's references are unique for the day, so the locate never separates two live
//! orders there. It matters for a corrupt feed: an execution naming another stock's order, or an
//! add reusing a reference live in another stock, must mean the same whichever stocks share a
//! shard's table. Keyed by the pair, the first is an unknown reference and the second a new
//! order, for any worker count. The home slot still hashes the reference alone.
//!
//! Linear probing over a power-of-two array of 32-byte slots (two per cache line), Fibonacci
//! hashing of the reference, and backward-shift deletion, so there are no tombstones and a probe
//! sequence never grows with churn. The array is allocated zeroed once, at construction; a zero key
//! marks an empty slot, so references are stored plus one (reference `u64::MAX` is refused). The
//! table accepts at most `max_orders` entries and keeps the load at or below one half; an insert
//! past that is refused and counted by the caller, never a reallocation.

use crate::mem::HugeArray;
use bytemuck::{Pod, Zeroable};

/// One resting order.
#[repr(C)]
#[derive(
    Clone, Copy, Pod, Zeroable, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize,
)]
pub struct Order {
    /// Order reference + 1 (0 = empty slot).
    key: u64,
    /// Price(4).
    pub price: u32,
    /// Remaining displayed shares.
    pub shares: u32,
    /// Stock locate.
    pub locate: u16,
    /// `B` or `S`.
    pub side: u8,
    _pad: u8,
    /// MPID of an 'F' add (zero bytes for an anonymous 'A').
    pub mpid: [u8; 4],
    _pad2: [u8; 8],
}
const _: () = assert!(core::mem::size_of::<Order>() == 32);

impl Order {
    /// A new order record.
    pub fn new(
        order_ref: u64,
        locate: u16,
        side: u8,
        price: u32,
        shares: u32,
        mpid: [u8; 4],
    ) -> Order {
        Order {
            key: order_ref.wrapping_add(1),
            price,
            shares,
            locate,
            side,
            _pad: 0,
            mpid,
            _pad2: [0; 8],
        }
    }

    /// The order reference.
    pub fn order_ref(&self) -> u64 {
        self.key.wrapping_sub(1)
    }
}

/// Why an insert was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertError {
    /// The table holds `max_orders` orders already.
    Full,
    /// An order with this reference is live in this stock already.
    Duplicate,
    /// Reference `u64::MAX` cannot be stored.
    Unrepresentable,
}

/// Fixed-capacity order table.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct OrderTable {
    slots: HugeArray<Order>,
    mask: usize,
    shift: u32,
    len: usize,
    max: usize,
}

impl OrderTable {
    /// Backs every page of the table now (see [`HugeArray::prefault`]).
    pub fn prefault(&mut self) {
        self.slots.prefault();
    }

    /// A table for up to `max_orders` live orders (at least 1).
    pub fn new(max_orders: usize) -> OrderTable {
        let max = max_orders.max(1);
        let cap = (max * 2).next_power_of_two().max(16);
        OrderTable {
            slots: HugeArray::zeroed(cap),
            mask: cap - 1,
            shift: 64 - cap.trailing_zeros(),
            len: 0,
            max,
        }
    }

    /// Live orders.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no order is live.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most live orders the table accepts.
    pub fn capacity(&self) -> usize {
        self.max
    }

    /// Home slot of a key: Fibonacci hashing (multiply by 2^64/φ, keep the top bits), which
    /// scatters the interleaved stride-4 reference sequences of a real feed evenly. (Hashing
    /// blocks of 16 consecutive references to runs of slots was tried for locality and measured
    /// slower: removals then scan whole runs. See PERF.md.)
    #[inline(always)]
    fn home(&self, key: u64) -> usize {
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// Starts loading the cache line where `order_ref`'s probe sequence begins, so that a later
    /// lookup or insert finds it in cache. A hint only: never faults, changes nothing.
    #[inline(always)]
    pub fn prefetch(&self, order_ref: u64) {
        let i = self.home(order_ref.wrapping_add(1));
        let p = self.slots.as_ptr().wrapping_add(i) as *const u8;
        crate::feed::frame::prefetch(p);
        // A removal's backward shift reads the next slot too; it is on the next line only when
        // this slot is the second of its (64-byte, two-slot) line.
        if i & 1 == 1 {
            crate::feed::frame::prefetch(p.wrapping_add(core::mem::size_of::<Order>()));
        }
    }

    /// Slot index of a live order of stock `locate`, if any.
    #[inline(always)]
    fn find(&self, order_ref: u64, locate: u16) -> Option<usize> {
        let key = order_ref.wrapping_add(1);
        if key == 0 {
            return None;
        }
        let mut i = self.home(key);
        loop {
            let k = self.slots[i].key;
            if k == key && self.slots[i].locate == locate {
                return Some(i);
            }
            if k == 0 {
                return None;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Looks up a live order of stock `locate`.
    #[inline(always)]
    pub fn get(&self, order_ref: u64, locate: u16) -> Option<&Order> {
        self.find(order_ref, locate).map(|i| &self.slots[i])
    }

    /// Looks up a live order of stock `locate` for update.
    #[inline(always)]
    pub fn get_mut(&mut self, order_ref: u64, locate: u16) -> Option<&mut Order> {
        self.find(order_ref, locate).map(|i| &mut self.slots[i])
    }

    /// Inserts a new order.
    ///
    /// # Errors
    /// [`InsertError`]: full, reference live in the same stock, or reference `u64::MAX`.
    #[inline(always)]
    pub fn insert(&mut self, order: Order) -> Result<(), InsertError> {
        if order.key == 0 {
            return Err(InsertError::Unrepresentable);
        }
        if self.len >= self.max {
            return Err(if self.find(order.order_ref(), order.locate).is_some() {
                InsertError::Duplicate
            } else {
                InsertError::Full
            });
        }
        let mut i = self.home(order.key);
        loop {
            let k = self.slots[i].key;
            if k == 0 {
                self.slots[i] = order;
                self.len += 1;
                return Ok(());
            }
            if k == order.key && self.slots[i].locate == order.locate {
                return Err(InsertError::Duplicate);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Removes a live order of stock `locate` and returns it.
    #[inline(always)]
    pub fn remove(&mut self, order_ref: u64, locate: u16) -> Option<Order> {
        let mut hole = self.find(order_ref, locate)?;
        let removed = self.slots[hole];
        // Backward-shift deletion: pull later members of the probe run into the hole when the hole
        // lies on their path from their home slot.
        let mut i = hole;
        loop {
            i = (i + 1) & self.mask;
            let k = self.slots[i].key;
            if k == 0 {
                break;
            }
            let home = self.home(k);
            // Distance from home to i and to the hole, modulo the table size.
            if (i.wrapping_sub(home) & self.mask) >= (i.wrapping_sub(hole) & self.mask) {
                self.slots[hole] = self.slots[i];
                hole = i;
            }
        }
        self.slots[hole] = Order::zeroed();
        self.len -= 1;
        Some(removed)
    }

    /// Every live order, in table order (for checks and snapshots, not the hot path).
    pub fn iter(&self) -> impl Iterator<Item = &Order> {
        self.slots.iter().filter(|o| o.key != 0)
    }

    /// Removes every order (keeps the allocation).
    pub fn clear(&mut self) {
        self.slots.fill(Order::zeroed());
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn matches_a_hashmap_under_churn() {
        let mut t = OrderTable::new(1000);
        let mut m = HashMap::new();
        let mut x = 0x1234_5678_u64;
        for step in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let r = x % 3000;
            if x % 3 == 0 {
                assert_eq!(
                    t.remove(r, 1).map(|o| o.shares),
                    m.remove(&r),
                    "step {step}"
                );
            } else {
                let res = t.insert(Order::new(r, 1, b'B', 1, step, [0; 4]));
                let want = if m.contains_key(&r) {
                    Err(InsertError::Duplicate)
                } else if m.len() >= 1000 {
                    Err(InsertError::Full)
                } else {
                    m.insert(r, step);
                    Ok(())
                };
                assert_eq!(res, want, "step {step}");
            }
            assert_eq!(t.len(), m.len());
        }
        for (r, s) in &m {
            assert_eq!(t.get(*r, 1).unwrap().shares, *s);
        }
        assert_eq!(t.iter().count(), m.len());
        assert_eq!(
            t.insert(Order::new(u64::MAX, 1, b'B', 1, 1, [0; 4])),
            Err(InsertError::Unrepresentable)
        );
    }

    #[test]
    fn one_reference_in_two_stocks_is_two_orders() {
        let mut t = OrderTable::new(8);
        t.insert(Order::new(7, 1, b'B', 100, 10, [0; 4])).unwrap();
        t.insert(Order::new(7, 2, b'S', 200, 20, [0; 4])).unwrap();
        assert_eq!(
            t.insert(Order::new(7, 2, b'S', 200, 20, [0; 4])),
            Err(InsertError::Duplicate)
        );
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(7, 1).unwrap().shares, 10);
        assert_eq!(t.get(7, 2).unwrap().shares, 20);
        // Another stock's reference is unknown here.
        assert!(t.get(7, 3).is_none());
        assert_eq!(t.remove(7, 1).unwrap().price, 100);
        assert!(t.get(7, 1).is_none());
        assert_eq!(t.get(7, 2).unwrap().price, 200);
    }
}
