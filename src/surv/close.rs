//! TODO(detector): marking_the_close — a stub until its detector lands.
use super::{Alerts, Capacity, Ctx, Detector, DetectorId, SurvEvent};

/// Thresholds of `[marking_the_close]` in the rules file.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MarkingTheCloseRules {
    /// Run this detector.
    pub enabled: bool,
}

impl Default for MarkingTheCloseRules {
    fn default() -> Self {
        MarkingTheCloseRules { enabled: true }
    }
}

impl MarkingTheCloseRules {
    /// Checks the thresholds make sense.
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The `marking_the_close` detector's state in one shard.
#[derive(Debug)]
pub struct MarkingTheClose {}

impl MarkingTheClose {
    /// State sized by `cap`.
    pub fn new(_cap: &Capacity) -> Self {
        MarkingTheClose {}
    }
}

impl Detector for MarkingTheClose {
    type Rules = MarkingTheCloseRules;
    const ID: DetectorId = DetectorId::MarkingTheClose;

    fn on_event(
        &mut self,
        _r: &MarkingTheCloseRules,
        _ev: &SurvEvent,
        _ctx: &Ctx<'_>,
        _out: &mut Alerts,
    ) {
    }
}
