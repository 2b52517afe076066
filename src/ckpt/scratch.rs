//! `#[serde(with = "crate::ckpt::scratch")]` on a scratch `Vec` that is empty whenever a
//! snapshot is taken (drained after every step): only its capacity is stored, and it comes back
//! empty with that capacity.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Its capacity (it is empty: a snapshot is taken between steps).
pub fn serialize<S: Serializer, T>(v: &Vec<T>, s: S) -> Result<S::Ok, S::Error> {
    debug_assert!(
        v.is_empty(),
        "scratch buffers are drained before a snapshot"
    );
    (v.capacity() as u64).serialize(s)
}

/// An empty `Vec` of the recorded capacity.
pub fn deserialize<'de, D: Deserializer<'de>, T>(d: D) -> Result<Vec<T>, D::Error> {
    let cap = u64::deserialize(d)?;
    if cap > 1 << 32 {
        return Err(serde::de::Error::custom(format!(
            "a scratch capacity of {cap}"
        )));
    }
    Ok(Vec::with_capacity(cap as usize))
}
