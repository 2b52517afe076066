//! Zero-run packing of a checkpoint's payload: preallocated tables are mostly empty slots, so
//! a snapshot is mostly zero bytes. The packed form is a sequence of (literal length, literal
//! bytes, zero-run length), lengths as little-endian u64; runs are found 8 bytes at a time.

/// Packs `src`.
pub fn pack(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len() / 8 + 32);
    let words = src.len() / 8;
    let word = |k: usize| src[k * 8..k * 8 + 8] == [0u8; 8];
    let (mut k, mut lit) = (0, 0);
    while k < words {
        // A run of two zero words or more is worth a record.
        if word(k) && k + 1 < words && word(k + 1) {
            let z = k;
            while k < words && word(k) {
                k += 1;
            }
            record(&mut out, &src[lit * 8..z * 8], ((k - z) * 8) as u64);
            lit = k;
        } else {
            k += 1;
        }
    }
    record(&mut out, &src[lit * 8..], 0);
    out
}

fn record(out: &mut Vec<u8>, literal: &[u8], zeros: u64) {
    out.extend_from_slice(&(literal.len() as u64).to_le_bytes());
    out.extend_from_slice(literal);
    out.extend_from_slice(&zeros.to_le_bytes());
}

/// Unpacks what [`pack`] made; `None` when it is malformed.
pub fn unpack(mut src: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let take_len = |src: &mut &[u8]| -> Option<usize> {
        let (n, rest) = src.split_first_chunk::<8>()?;
        *src = rest;
        usize::try_from(u64::from_le_bytes(*n)).ok()
    };
    while !src.is_empty() {
        let n = take_len(&mut src)?;
        let (lit, rest) = (src.get(..n)?, src.get(n..)?);
        out.extend_from_slice(lit);
        src = rest;
        let z = take_len(&mut src)?;
        // A guard against a corrupt length that passed its CRC.
        if z > 1 << 40 {
            return None;
        }
        out.resize(out.len() + z, 0);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips_any_bytes() {
        let mut rng = crate::rng::SplitMix64::new(9);
        for len in [0usize, 1, 7, 8, 9, 16, 17, 100, 4096, 10_000] {
            for zeros in [0u64, 50, 95, 100] {
                let v: Vec<u8> = (0..len)
                    .map(|_| {
                        if rng.below(100) < zeros {
                            0
                        } else {
                            rng.below(256) as u8
                        }
                    })
                    .collect();
                assert_eq!(unpack(&pack(&v)).as_deref(), Some(&v[..]), "len {len}");
            }
        }
        assert!(
            pack(&vec![0u8; 1 << 20]).len() < 64,
            "zeros pack to a record"
        );
    }
}
