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

pub use crate::engine::{Done, SeqOrder};

/// [`Event`] type byte of a watermark mark (not an ITCH type letter).
pub const MARK: u8 = 0xFF;

impl crate::engine::Event for Event {
    #[inline(always)]
    fn origin(&self) -> u64 {
        self.origin
    }

    #[inline(always)]
    fn seq(&self) -> u32 {
        self.seq
    }

    #[inline(always)]
    fn set_header(&mut self, origin: u64, seq: u32) {
        self.origin = origin;
        self.seq = seq;
    }

    /// A mark: the type byte [`MARK`], its clock in byte 1, its watermark in bytes 3..11.
    #[inline]
    fn set_mark(&mut self, wm: u64, clock: u8, seq: u32) {
        self.origin = crate::engine::UNTIMED;
        self.seq = seq;
        self.body = [0; BODY];
        self.body[0] = MARK;
        self.body[1] = clock;
        self.body[3..11].copy_from_slice(&wm.to_le_bytes());
    }

    #[inline(always)]
    fn mark(&self) -> Option<(u64, u8)> {
        (self.body[0] == MARK).then(|| {
            let wm = u64::from_le_bytes(self.body[3..11].try_into().expect("8 bytes"));
            (wm, self.body[1])
        })
    }
}
