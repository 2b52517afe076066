//! Preallocated, zero-filled, huge-page-backed arrays for the book's large tables.
//!
//! A 2 M-order book spans hundreds of megabytes touched at random; with 4 KiB pages nearly every
//! access also misses the TLB. [`HugeArray`] takes its memory from an anonymous mapping (zero-filled
//! by the kernel, so an untouched page costs nothing) and advises `MADV_HUGEPAGE`, which Linux
//! honours in its default `madvise` THP mode: one TLB entry then covers 2 MiB instead of 4 KiB.
//! The element type is `Pod`, so the byte mapping is viewed as `[T]` with a checked cast; the
//! array never grows.

use bytemuck::Pod;
use memmap2::MmapMut;
use std::marker::PhantomData;

/// A fixed-length array of `T` in an anonymous, huge-page-advised mapping.
pub struct HugeArray<T: Pod> {
    map: MmapMut,
    len: usize,
    _t: PhantomData<T>,
}

impl<T: Pod> std::fmt::Debug for HugeArray<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HugeArray").field("len", &self.len).finish()
    }
}

impl<T: Pod> HugeArray<T> {
    /// `len` zeroed elements.
    ///
    /// # Panics
    /// When the memory cannot be mapped (a construction-time resource error, like `Vec`'s).
    pub fn zeroed(len: usize) -> Self {
        let bytes = (len.max(1) * std::mem::size_of::<T>()).max(1);
        let map = MmapMut::map_anon(bytes).unwrap_or_else(|e| {
            panic!("could not map {bytes} bytes for a preallocated table: {e}")
        });
        #[cfg(target_os = "linux")]
        if bytes >= 2 << 20 {
            // A hint: without THP the table still works, only with more TLB misses.
            let _ = map.advise(memmap2::Advice::HugePage);
        }
        HugeArray {
            map,
            len,
            _t: PhantomData,
        }
    }

    /// Touches every page now (one write per 4 KiB), so the hot path never takes a page fault
    /// on first use: a latency engine pays for its memory at startup. With transparent huge
    /// pages the kernel backs each 2 MiB with one fault.
    pub fn prefault(&mut self) {
        let bytes = &mut self.map[..];
        let mut i = 0;
        while i < bytes.len() {
            // A byte over itself (zero, or a restored table's own): changes nothing but makes
            // the kernel back the page.
            bytes[i] = std::hint::black_box(bytes[i]);
            i += 4096;
        }
    }

    /// The elements.
    #[inline(always)]
    pub fn as_slice(&self) -> &[T] {
        // Page-aligned, and sized as a whole number of `T`, so the cast cannot fail.
        &bytemuck::cast_slice(&self.map[..])[..self.len]
    }

    /// The elements, mutably.
    #[inline(always)]
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut bytemuck::cast_slice_mut(&mut self.map[..])[..self.len]
    }
}

impl<T: Pod> std::ops::Deref for HugeArray<T> {
    type Target = [T];
    #[inline(always)]
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T: Pod> std::ops::DerefMut for HugeArray<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        self.as_mut_slice()
    }
}

/// Bytes per run of a [`HugeArray`]'s snapshot: only the runs that are not all zero are stored
/// (a book's tables are mostly empty slots).
const RUN: usize = 4096;

/// Serialised as its length, then each non-zero 4 KiB run with its index.
impl<T: Pod> serde::Serialize for HugeArray<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let bytes: &[u8] = bytemuck::cast_slice(self.as_slice());
        let runs: Vec<(u64, Bytes<'_>)> = bytes
            .chunks(RUN)
            .enumerate()
            .filter(|(_, c)| c.iter().any(|&b| b != 0))
            .map(|(i, c)| (i as u64, Bytes(c)))
            .collect();
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&(self.len as u64))?;
        t.serialize_element(&runs)?;
        t.end()
    }
}

impl<'de, T: Pod> serde::Deserialize<'de> for HugeArray<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let (len, runs): (u64, Vec<(u64, ByteBuf)>) = serde::Deserialize::deserialize(d)?;
        // A guard against a corrupt length: no table a run builds is near 2^40 bytes.
        let size = (len as usize).checked_mul(std::mem::size_of::<T>());
        if size.map_or(true, |b| b > 1 << 40) {
            return Err(D::Error::custom(format!("a table of {len} elements")));
        }
        let mut a = HugeArray::<T>::zeroed(len as usize);
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(a.as_mut_slice());
        for (i, run) in runs {
            let at = (i as usize).saturating_mul(RUN);
            let Some(dst) = bytes.get_mut(at..at.saturating_add(run.0.len())) else {
                return Err(D::Error::custom("a table run past the table's end"));
            };
            dst.copy_from_slice(&run.0);
        }
        Ok(a)
    }
}

/// Bytes serialised as one byte string (not a sequence of numbers).
struct Bytes<'a>(&'a [u8]);

impl serde::Serialize for Bytes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// An owned byte string, read back from [`Bytes`].
struct ByteBuf(Vec<u8>);

impl<'de> serde::Deserialize<'de> for ByteBuf {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ByteBuf;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// Hints the CPU to start loading the cache line at `p`. Never faults, whatever the address.
#[inline(always)]
pub fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: PREFETCHT0 is an SSE instruction (baseline on x86_64) and is only a hint: it
        // never faults and never reads memory architecturally, so any address is allowed.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p as *const i8) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
