//! A ready-made event for sources of fixed-layout records: the engine's header, then the
//! record itself.

use super::Event;
use bytemuck::{Pod, Zeroable};

/// A record of type `T` on its way to a shard, or a mark.
///
/// Packed, so it has no padding for any `T`: that is what makes it `Pod` for every `Pod`
/// record. Fields are read by copy ([`Record::value`]); a packed field cannot be borrowed.
#[derive(Clone, Copy)]
#[repr(C, packed)]
pub struct Record<T> {
    origin: u64,
    wm: u64,
    seq: u32,
    /// 0: data; 1 + clock: a mark of that clock.
    kind: u32,
    value: T,
}

// SAFETY: `repr(C, packed)` leaves no padding bytes, and every field is `Pod` (`T: Pod`), so
// every byte pattern is a valid `Record<T>` and all of its bytes are initialized.
unsafe impl<T: Pod> Zeroable for Record<T> {}
// SAFETY: as above; `Record<T>` is `Copy + 'static` when `T` is.
unsafe impl<T: Pod> Pod for Record<T> {}

impl<T: Pod> Record<T> {
    /// The record (a copy: the field is packed).
    #[inline(always)]
    pub fn value(&self) -> T {
        self.value
    }

    /// Sets the record (sources call this in [`Source::write`](super::Source::write)).
    #[inline(always)]
    pub fn set_value(&mut self, value: T) {
        self.value = value;
    }
}

impl<T: Pod + Send> Event for Record<T> {
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
        self.kind = 0;
    }

    #[inline(always)]
    fn set_mark(&mut self, wm: u64, clock: u8, seq: u32) {
        self.origin = super::UNTIMED;
        self.wm = wm;
        self.seq = seq;
        self.kind = 1 + u32::from(clock);
    }

    #[inline(always)]
    fn mark(&self) -> Option<(u64, u8)> {
        let kind = self.kind;
        (kind != 0).then(|| (self.wm, (kind - 1) as u8))
    }
}

impl<T: Pod + std::fmt::Debug> std::fmt::Debug for Record<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (seq, kind, value) = (self.seq, self.kind, self.value);
        f.debug_struct("Record")
            .field("seq", &seq)
            .field("kind", &kind)
            .field("value", &value)
            .finish()
    }
}
