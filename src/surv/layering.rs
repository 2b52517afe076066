//! TODO(detector): layering — a stub until its detector lands.
use super::{Alerts, Capacity, Ctx, Detector, DetectorId, SurvEvent};

/// Thresholds of `[layering]` in the rules file.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LayeringRules {
    /// Run this detector.
    pub enabled: bool,
}

impl Default for LayeringRules {
    fn default() -> Self {
        LayeringRules { enabled: true }
    }
}

impl LayeringRules {
    /// Checks the thresholds make sense.
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The `layering` detector's state in one shard.
#[derive(Debug)]
pub struct Layering {}

impl Layering {
    /// State sized by `cap`.
    pub fn new(_cap: &Capacity) -> Self {
        Layering {}
    }
}

impl Detector for Layering {
    type Rules = LayeringRules;
    const ID: DetectorId = DetectorId::Layering;

    fn on_event(&mut self, _r: &LayeringRules, _ev: &SurvEvent, _ctx: &Ctx<'_>, _out: &mut Alerts) {
    }
}
