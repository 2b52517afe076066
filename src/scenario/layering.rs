//! TODO(scenario): the layering episode — a stub until its script lands.
use super::{EpisodeCtx, Script};
use crate::gen::SplitMix64;

/// The script of one layering episode.
pub fn script(_rng: &mut SplitMix64, c: &EpisodeCtx) -> Script {
    Script {
        start: c.start,
        ..Script::default()
    }
}
