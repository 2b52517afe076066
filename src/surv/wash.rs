//! TODO(detector): wash_trade — a stub until its detector lands.
use super::{Alerts, Capacity, Ctx, Detector, DetectorId, SurvEvent};

/// Thresholds of `[wash_trade]` in the rules file.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WashTradeRules {
    /// Run this detector.
    pub enabled: bool,
}

impl Default for WashTradeRules {
    fn default() -> Self {
        WashTradeRules { enabled: true }
    }
}

impl WashTradeRules {
    /// Checks the thresholds make sense.
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The `wash_trade` detector's state in one shard.
#[derive(Debug)]
pub struct WashTrade {}

impl WashTrade {
    /// State sized by `cap`.
    pub fn new(_cap: &Capacity) -> Self {
        WashTrade {}
    }
}

impl Detector for WashTrade {
    type Rules = WashTradeRules;
    const ID: DetectorId = DetectorId::WashTrade;

    fn on_event(
        &mut self,
        _r: &WashTradeRules,
        _ev: &SurvEvent,
        _ctx: &Ctx<'_>,
        _out: &mut Alerts,
    ) {
    }
}
