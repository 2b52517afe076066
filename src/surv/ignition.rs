//! TODO(detector): momentum_ignition — a stub until its detector lands.
use super::{Alerts, Capacity, Ctx, Detector, DetectorId, SurvEvent};

/// Thresholds of `[momentum_ignition]` in the rules file.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MomentumIgnitionRules {
    /// Run this detector.
    pub enabled: bool,
}

impl Default for MomentumIgnitionRules {
    fn default() -> Self {
        MomentumIgnitionRules { enabled: true }
    }
}

impl MomentumIgnitionRules {
    /// Checks the thresholds make sense.
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The `momentum_ignition` detector's state in one shard.
#[derive(Debug)]
pub struct MomentumIgnition {}

impl MomentumIgnition {
    /// State sized by `cap`.
    pub fn new(_cap: &Capacity) -> Self {
        MomentumIgnition {}
    }
}

impl Detector for MomentumIgnition {
    type Rules = MomentumIgnitionRules;
    const ID: DetectorId = DetectorId::MomentumIgnition;

    fn on_event(
        &mut self,
        _r: &MomentumIgnitionRules,
        _ev: &SurvEvent,
        _ctx: &Ctx<'_>,
        _out: &mut Alerts,
    ) {
    }
}
