//! TODO(detector): abnormal_move, locked_crossed — a stub until its detector lands.
use super::{Alerts, Capacity, Ctx, Detector, DetectorId, SurvEvent};

/// Thresholds of `[abnormal_move]` in the rules file.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AbnormalMoveRules {
    /// Run this detector.
    pub enabled: bool,
}

impl Default for AbnormalMoveRules {
    fn default() -> Self {
        AbnormalMoveRules { enabled: true }
    }
}

impl AbnormalMoveRules {
    /// Checks the thresholds make sense.
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The `abnormal_move` detector's state in one shard.
#[derive(Debug)]
pub struct AbnormalMove {}

impl AbnormalMove {
    /// State sized by `cap`.
    pub fn new(_cap: &Capacity) -> Self {
        AbnormalMove {}
    }
}

impl Detector for AbnormalMove {
    type Rules = AbnormalMoveRules;
    const ID: DetectorId = DetectorId::AbnormalMove;

    fn on_event(
        &mut self,
        _r: &AbnormalMoveRules,
        _ev: &SurvEvent,
        _ctx: &Ctx<'_>,
        _out: &mut Alerts,
    ) {
    }
}

/// Thresholds of `[locked_crossed]` in the rules file.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LockedCrossedRules {
    /// Run this detector.
    pub enabled: bool,
}

impl Default for LockedCrossedRules {
    fn default() -> Self {
        LockedCrossedRules { enabled: true }
    }
}

impl LockedCrossedRules {
    /// Checks the thresholds make sense.
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The `locked_crossed` detector's state in one shard.
#[derive(Debug)]
pub struct LockedCrossed {}

impl LockedCrossed {
    /// State sized by `cap`.
    pub fn new(_cap: &Capacity) -> Self {
        LockedCrossed {}
    }
}

impl Detector for LockedCrossed {
    type Rules = LockedCrossedRules;
    const ID: DetectorId = DetectorId::LockedCrossed;

    fn on_event(
        &mut self,
        _r: &LockedCrossedRules,
        _ev: &SurvEvent,
        _ctx: &Ctx<'_>,
        _out: &mut Alerts,
    ) {
    }
}
