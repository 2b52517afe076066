//! What travels on the engine's rings: the events a source sends to its shards, and the
//! records the shards send back to the output stage.

/// An item on a reader → shard ring: a fixed-size, `Pod` value (built in place in its ring
/// slot) with the engine's header — its latency origin and feed position — and a way to be a
/// watermark mark instead of data.
pub trait Event: bytemuck::Pod + Send {
    /// When its latency clock started, in TSC ticks ([`UNTIMED`](super::UNTIMED): not timed).
    fn origin(&self) -> u64;
    /// Its feed position (0-based, counting the items sent; wraps after 2³²).
    fn seq(&self) -> u32;
    /// Sets the header of an item the source has just written.
    fn set_header(&mut self, origin: u64, seq: u32);
    /// Makes this slot a mark of clock `clock` carrying watermark `wm` (untimed).
    fn set_mark(&mut self, wm: u64, clock: u8, seq: u32);
    /// The (watermark, clock) of a mark; `None` for data.
    fn mark(&self) -> Option<(u64, u8)>;
}

/// What an operator says about one event, carried to the output stage: a key and a kind of
/// the user's choosing (e.g. stock locate and message type), and flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Tag {
    /// The event's key (as the operator sees it).
    pub key: u16,
    /// The event's kind.
    pub kind: u8,
    /// [`Tag::FLAGGED`], [`Tag::REJECTED`].
    pub flags: u8,
}

impl Tag {
    /// Counted by the output stage (e.g. "changed the best bid or offer").
    pub const FLAGGED: u8 = 1;
    /// The operator could not use the event (counted apart from the processed ones).
    pub const REJECTED: u8 = 2;
}

/// A shard's record of one processed event, for the output stage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Done {
    /// The event's origin.
    pub origin: u64,
    /// TSC ticks when the shard pushed this record.
    pub pushed: u64,
    /// The event's feed position.
    pub seq: u32,
    /// What the operator said about it.
    pub tag: Tag,
}

const _: () = assert!(std::mem::size_of::<Done>() == 24);

/// Checks that sequence numbers arrive in feed order on one stream (gaps are fine: other shards
/// take the numbers between), counting any that go backwards. Wrapping arithmetic, as feed
/// positions wrap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqOrder {
    next: u32,
    /// Sequence numbers seen at or before one already seen.
    pub violations: u64,
}

impl SeqOrder {
    /// Notes `seq`, the next number on this stream.
    #[inline(always)]
    pub fn observe(&mut self, seq: u32) {
        if seq.wrapping_sub(self.next) as i32 >= 0 {
            self.next = seq.wrapping_add(1);
        } else {
            self.violations += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SeqOrder;

    #[test]
    fn seq_order_allows_gaps_and_wrap_and_counts_regressions() {
        let mut o = SeqOrder::default();
        // Gaps (under 2³¹ apart), and the wrap from u32::MAX to 0, are in order.
        for s in [0, 1, 5, 1 << 30, 2 << 30, 3 << 30, u32::MAX, 0, 3] {
            o.observe(s);
        }
        assert_eq!(o.violations, 0);
        o.observe(3); // repeated
        o.observe(2); // backwards
        assert_eq!(o.violations, 2);
        o.observe(4);
        assert_eq!(o.violations, 2);
    }
}
