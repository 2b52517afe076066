//! Serde helpers that keep preallocated room across a snapshot: a restored `Vec` gets the
//! capacity it had, so a resumed run allocates no more in its steady state than an unbroken one.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The most elements a restored `Vec`'s capacity may claim (a guard against a corrupt length
/// that passed its checksum: 2³² elements is past any table a run builds).
const MAX_CAP: u64 = 1 << 32;

/// `#[serde(with = "crate::ckpt::cap")]` on a `Vec<T>` field: its capacity, then its elements.
pub fn serialize<S: Serializer, T: Serialize>(v: &Vec<T>, s: S) -> Result<S::Ok, S::Error> {
    (v.capacity() as u64, v.as_slice()).serialize(s)
}

/// The inverse of [`serialize`]: the elements, in a `Vec` of the recorded capacity.
pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    let (cap, items): (u64, Vec<T>) = Deserialize::deserialize(d)?;
    if cap > MAX_CAP {
        return Err(serde::de::Error::custom(format!(
            "a table capacity of {cap} elements"
        )));
    }
    let mut v = Vec::with_capacity((cap as usize).max(items.len()));
    v.extend(items);
    Ok(v)
}
