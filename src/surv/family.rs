//! One episode, one alert family: the spoofing detector hands a spoof to the detector of a wider
//! pattern of the same participant (layering), which reports the episode carrying the spoof's
//! evidence. A module of its own so that neither detector imports the other.

use super::event::Party;
use super::{Alerts, Ctx, SurvEvent};
use crate::itch::Side;

/// A spoof's evidence, carried on the alert of the family that takes it over.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpoofNote {
    /// The spoof order.
    pub order_ref: u64,
    /// Its size when added.
    pub shares: u32,
    /// Its share of the touch when added.
    pub touch_share: f64,
    /// Add to pull, ns.
    pub lifetime_ns: u64,
    /// The spoofing timing score.
    pub timing_score: f64,
}

/// A detector that may report a spoof as part of its own pattern.
pub trait TakesOver {
    /// The spoof of `who` = (stock, participant, side), pulled at `ev`: true when this
    /// detector reports (or has reported) the episode, so the spoof raises no alert of its own.
    fn takes_over(
        &mut self,
        ev: &SurvEvent,
        ctx: &Ctx<'_>,
        who: (u16, Party, Side),
        note: &SpoofNote,
        out: &mut Alerts,
    ) -> bool;
}
