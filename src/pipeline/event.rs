//! What travels on the pipeline's rings: fixed-size, `Copy`, one cache line or less.

/// Bytes of message body an [`Event`] carries: the longest ITCH 5.0 message (NOII, 50 bytes) fits.
pub const BODY: usize = 52;

/// One feed message on its way from the reader to a shard worker: exactly one cache line.
///
/// The message is copied (≤ 52 bytes, one line) rather than referenced, so a worker touches
/// only its ring slot, never the reader's buffer, and the same event works for a live feed whose
/// receive buffer is reused.
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
pub struct Event {
    /// When the event's latency clock starts, in TSC ticks: when the reader read it (`--speed
    /// max`) or when it was *due* (paced replay), so a late reader shows as latency.
    pub origin: u64,
    /// Position in the feed (0-based message index, counting only decoded messages; wraps
    /// after 2³² — compare with wrapping arithmetic).
    pub seq: u32,
    /// The ITCH message, type byte first, as framed (its length is the spec length of its type);
    /// bytes past the message are zero.
    pub body: [u8; BODY],
}

const _: () = assert!(std::mem::size_of::<Event>() == 64);

impl Event {
    /// The message bytes (its spec length; the whole body for an unknown type, which the
    /// reader never sends).
    #[inline(always)]
    pub fn message(&self) -> &[u8] {
        let n = crate::itch::spec_len(self.body[0]).unwrap_or(BODY);
        &self.body[..n.min(BODY)]
    }

    /// The stock locate from the message header.
    #[inline(always)]
    pub fn locate(&self) -> u16 {
        u16::from_be_bytes([self.body[1], self.body[2]])
    }
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("origin", &self.origin)
            .field("seq", &self.seq)
            .field("type", &(self.body[0] as char))
            .field("locate", &self.locate())
            .finish()
    }
}

/// A worker's record of one processed event, for the output stage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Done {
    /// The event's [`Event::origin`].
    pub origin: u64,
    /// TSC ticks when the worker pushed this record.
    pub pushed: u64,
    /// The event's [`Event::seq`].
    pub seq: u32,
    /// Stock locate.
    pub locate: u16,
    /// ITCH type letter.
    pub msg_type: u8,
    /// Bit 0: the stock's best bid or offer changed.
    pub flags: u8,
}

/// Checks that sequence numbers arrive in feed order on one stream (gaps are fine: other shards
/// take the numbers between), counting any that go backwards. Wrapping arithmetic, as
/// [`Event::seq`] wraps.
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

/// [`Done::flags`]: the event changed its stock's best bid or offer.
pub const TOP_CHANGED: u8 = 1;

const _: () = assert!(std::mem::size_of::<Done>() == 24);

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
