//! TODO(detector): spoofing — a stub until its detector lands.
use super::{Alerts, Capacity, Ctx, Detector, DetectorId, SurvEvent};

/// Thresholds of `[spoofing]` in the rules file.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpoofingRules {
    /// Run this detector.
    pub enabled: bool,
}

impl Default for SpoofingRules {
    fn default() -> Self {
        SpoofingRules { enabled: true }
    }
}

impl SpoofingRules {
    /// Checks the thresholds make sense.
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The `spoofing` detector's state in one shard.
#[derive(Debug)]
pub struct Spoofing {}

impl Spoofing {
    /// State sized by `cap`.
    pub fn new(_cap: &Capacity) -> Self {
        Spoofing {}
    }
}

impl Detector for Spoofing {
    type Rules = SpoofingRules;
    const ID: DetectorId = DetectorId::Spoofing;

    fn on_event(&mut self, _r: &SpoofingRules, _ev: &SurvEvent, _ctx: &Ctx<'_>, _out: &mut Alerts) {
    }
}
