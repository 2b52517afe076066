//! Big-endian integers as they sit on the wire, with alignment 1.
//!
//! Each wrapper is a `[u8; N]` so that a `#[repr(C)]` message made of them has no padding and can be
//! cast straight from any byte offset of a memory-mapped file (`bytemuck` checks both at compile time).
//! Reading a field is one unaligned load plus a byte swap; nothing is copied until `get` is called.

use bytemuck::{Pod, Zeroable};

macro_rules! be_int {
    ($(#[$doc:meta])* $name:ident, $n:expr, $t:ty) => {
        $(#[$doc])*
        #[repr(transparent)]
        #[derive(Clone, Copy, Pod, Zeroable, PartialEq, Eq, Hash, Default)]
        pub struct $name(pub [u8; $n]);

        impl $name {
            /// Wraps a native integer, storing it big-endian.
            #[inline]
            pub fn new(v: $t) -> Self {
                let b = v.to_be_bytes();
                let mut out = [0u8; $n];
                out.copy_from_slice(&b[b.len() - $n..]);
                $name(out)
            }

            /// Reads the integer in native byte order.
            #[inline(always)]
            pub fn get(self) -> $t {
                let mut b = [0u8; core::mem::size_of::<$t>()];
                let off = b.len() - $n;
                b[off..].copy_from_slice(&self.0);
                <$t>::from_be_bytes(b)
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                core::fmt::Debug::fmt(&self.get(), f)
            }
        }
    };
}

be_int!(
    /// Big-endian `u16` (stock locate, tracking number, issue sub-type).
    BeU16, 2, u16
);
be_int!(
    /// Big-endian `u32` (shares, 4-decimal prices, MPID-free counts).
    BeU32, 4, u32
);
be_int!(
    /// Big-endian 48-bit unsigned integer: the ITCH timestamp, nanoseconds since midnight.
    BeU48, 6, u64
);
be_int!(
    /// Big-endian `u64` (order reference numbers, match numbers, 8-byte share counts and prices).
    BeU64, 8, u64
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        assert_eq!(BeU16::new(0xABCD).0, [0xAB, 0xCD]);
        assert_eq!(BeU16([0x12, 0x34]).get(), 0x1234);
        assert_eq!(BeU32::new(0x0102_0304).get(), 0x0102_0304);
        assert_eq!(
            BeU48::new(0x0000_1234_5678_9ABC).0,
            [0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC]
        );
        assert_eq!(BeU48([1, 2, 3, 4, 5, 6]).get(), 0x0102_0304_0506);
        assert_eq!(BeU64::new(u64::MAX - 1).get(), u64::MAX - 1);
        assert_eq!(core::mem::align_of::<BeU64>(), 1);
    }
}
