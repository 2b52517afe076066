//! Order-reference integrity: one serial pass that follows every order's life by reference,
//! over the whole file, so it sees what a sharded run cannot — a message naming an order live
//! in another stock, or an add reusing a reference that is live.
//!
//! The books key orders by (reference, locate), so a run treats the first as an unknown
//! reference and the second as a new order whatever the sharding; this pass says how often the
//! feed did either, and where it first did.

use crate::feed::Frames;
use crate::itch::{decode, Message};
use serde::Serialize;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Multiplicative (Fibonacci) hashing of a reference: references are spread already, and
/// SipHash made the pass 4× slower.
#[derive(Default)]
struct RefHasher(u64);

impl Hasher for RefHasher {
    fn finish(&self) -> u64 {
        // The table indexes by the low bits: fold the well-mixed high half into them.
        self.0 ^ (self.0 >> 32)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, r: u64) {
        self.0 = (self.0 ^ r).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_u16(&mut self, l: u16) {
        self.write_u64(u64::from(l));
    }
}

/// What the pass found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RefSummary {
    /// Most orders live at once.
    pub peak_live: u64,
    /// E/C/X/D/U naming a reference never live (normal for a file that starts mid-day).
    pub unknown: u64,
    /// E/C/X/D/U naming an order live in another stock: a corrupt feed.
    pub other_stock: u64,
    /// File offset of the first of those.
    pub first_other_stock_offset: Option<u64>,
    /// Adds (and replaces' new references) reusing a reference live in the same stock.
    pub reused_same_stock: u64,
    /// Adds (and replaces' new references) reusing a reference live in another stock.
    pub reused_other_stock: u64,
    /// File offset of the first reuse of either kind.
    pub first_reuse_offset: Option<u64>,
}

impl RefSummary {
    /// Whether the feed broke the reference rules (unknown references alone do not: a file may
    /// start after its orders were added).
    pub fn is_corrupt(&self) -> bool {
        self.other_stock + self.reused_same_stock + self.reused_other_stock > 0
    }
}

/// The pass's state: live orders by (reference, locate) → shares, as the books key them, and
/// how many stocks each reference is live in.
#[derive(Debug, Default)]
struct Refs {
    live: HashMap<(u64, u16), u32, BuildHasherDefault<RefHasher>>,
    stocks: HashMap<u64, u32, BuildHasherDefault<RefHasher>>,
    s: RefSummary,
}

impl Refs {
    fn add(&mut self, r: u64, locate: u16, shares: u32, offset: u64) {
        let in_stocks = self.stocks.get(&r).copied().unwrap_or(0);
        if in_stocks > 0 {
            self.s.first_reuse_offset.get_or_insert(offset);
            if self.live.contains_key(&(r, locate)) {
                // The books refuse it (a duplicate reference).
                self.s.reused_same_stock += 1;
                return;
            }
            self.s.reused_other_stock += 1;
        }
        self.live.insert((r, locate), shares);
        *self.stocks.entry(r).or_insert(0) += 1;
        self.s.peak_live = self.s.peak_live.max(self.live.len() as u64);
    }

    /// The order `r` of `locate` loses `shares` (`None`: all of them). Whether it was live in
    /// that stock.
    fn take(&mut self, r: u64, locate: u16, shares: Option<u32>, offset: u64) -> bool {
        let Some(left) = self.live.get_mut(&(r, locate)) else {
            if self.stocks.contains_key(&r) {
                self.s.other_stock += 1;
                self.s.first_other_stock_offset.get_or_insert(offset);
            } else {
                self.s.unknown += 1;
            }
            return false;
        };
        *left -= shares.unwrap_or(*left).min(*left);
        if *left == 0 {
            self.live.remove(&(r, locate));
            match self.stocks.get_mut(&r) {
                Some(n) if *n > 1 => *n -= 1,
                _ => {
                    self.stocks.remove(&r);
                }
            }
        }
        true
    }

    fn message(&mut self, m: &Message<'_>, offset: u64) {
        let l = m.stock_locate();
        match *m {
            Message::AddOrder(a) => self.add(a.order_ref.get(), l, a.shares.get(), offset),
            Message::AddOrderMpid(a) => self.add(a.order_ref.get(), l, a.shares.get(), offset),
            Message::OrderExecuted(e) => {
                self.take(e.order_ref.get(), l, Some(e.executed_shares.get()), offset);
            }
            Message::OrderExecutedWithPrice(e) => {
                self.take(e.order_ref.get(), l, Some(e.executed_shares.get()), offset);
            }
            Message::OrderCancel(c) => {
                self.take(c.order_ref.get(), l, Some(c.cancelled_shares.get()), offset);
            }
            Message::OrderDelete(d) => {
                self.take(d.order_ref.get(), l, None, offset);
            }
            // The guard counts the old reference either way; only a live one brings the new.
            Message::OrderReplace(u) if self.take(u.original_order_ref.get(), l, None, offset) => {
                self.add(u.new_order_ref.get(), l, u.shares.get(), offset);
            }
            _ => {}
        }
    }
}

/// Follows every order of the BinaryFILE in `buf` by reference. Frames that do not decode are
/// passed over: the main walk reports them.
pub fn check_refs(buf: &[u8]) -> RefSummary {
    let mut refs = RefPass::default();
    for f in Frames::new(buf) {
        let Ok(f) = f else { break };
        refs.frame(f.body, f.offset);
    }
    refs.summary()
}

/// The pass a message at a time (a capture's messages, read in place).
#[derive(Debug, Default)]
pub struct RefPass(Refs);

impl RefPass {
    /// The message `body` whose length prefix is at `offset`; one that does not decode is
    /// passed over.
    pub fn frame(&mut self, body: &[u8], offset: u64) {
        if let Ok(m) = decode(body, offset) {
            self.0.message(&m, offset);
        }
    }

    /// What the pass found so far.
    pub fn summary(&self) -> RefSummary {
        self.0.s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::itch::be::{BeU32, BeU64};
    use crate::itch::encode::{header, push_frame};
    use crate::itch::{AddOrder, OrderDelete};

    fn add(buf: &mut Vec<u8>, locate: u16, r: u64) {
        let m = AddOrder {
            hdr: header(b'A', locate, 0, 1),
            order_ref: BeU64::new(r),
            side: b'B',
            shares: BeU32::new(100),
            stock: *b"X       ",
            price: BeU32::new(10_000),
        };
        push_frame(buf, &m);
    }

    fn delete(buf: &mut Vec<u8>, locate: u16, r: u64) {
        let m = OrderDelete {
            hdr: header(b'D', locate, 0, 2),
            order_ref: BeU64::new(r),
        };
        push_frame(buf, &m);
    }

    #[test]
    fn finds_other_stock_references_and_reuse() {
        let mut b = Vec::new();
        add(&mut b, 1, 5);
        add(&mut b, 2, 5); // reuse across stocks
        add(&mut b, 2, 5); // reuse in the same stock
        delete(&mut b, 3, 5); // names stock 3: live only in 2
        delete(&mut b, 2, 5);
        delete(&mut b, 2, 9); // never live
        let s = check_refs(&b);
        assert_eq!(s.reused_other_stock, 1);
        assert_eq!(s.reused_same_stock, 1);
        assert_eq!(s.other_stock, 1);
        assert_eq!(s.unknown, 1, "{s:?}"); // ref 9
        assert!(s.is_corrupt());
        // The second frame, after one add (2 + 36 bytes).
        assert_eq!(s.first_reuse_offset, Some(38));
        assert_eq!(s.first_other_stock_offset, Some(3 * 38));
    }
}
