//! TODO(detector): quote_stuffing, order_to_trade — a stub until its detector lands.
use super::{Alerts, Capacity, Ctx, Detector, DetectorId, SurvEvent};

/// Thresholds of `[quote_stuffing]` in the rules file.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuoteStuffingRules {
    /// Run this detector.
    pub enabled: bool,
}

impl Default for QuoteStuffingRules {
    fn default() -> Self {
        QuoteStuffingRules { enabled: true }
    }
}

impl QuoteStuffingRules {
    /// Checks the thresholds make sense.
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The `quote_stuffing` detector's state in one shard.
#[derive(Debug)]
pub struct QuoteStuffing {}

impl QuoteStuffing {
    /// State sized by `cap`.
    pub fn new(_cap: &Capacity) -> Self {
        QuoteStuffing {}
    }
}

impl Detector for QuoteStuffing {
    type Rules = QuoteStuffingRules;
    const ID: DetectorId = DetectorId::QuoteStuffing;

    fn on_event(
        &mut self,
        _r: &QuoteStuffingRules,
        _ev: &SurvEvent,
        _ctx: &Ctx<'_>,
        _out: &mut Alerts,
    ) {
    }
}

/// Thresholds of `[order_to_trade]` in the rules file.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrderToTradeRules {
    /// Run this detector.
    pub enabled: bool,
}

impl Default for OrderToTradeRules {
    fn default() -> Self {
        OrderToTradeRules { enabled: true }
    }
}

impl OrderToTradeRules {
    /// Checks the thresholds make sense.
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The `order_to_trade` detector's state in one shard.
#[derive(Debug)]
pub struct OrderToTrade {}

impl OrderToTrade {
    /// State sized by `cap`.
    pub fn new(_cap: &Capacity) -> Self {
        OrderToTrade {}
    }
}

impl Detector for OrderToTrade {
    type Rules = OrderToTradeRules;
    const ID: DetectorId = DetectorId::OrderToTrade;

    fn on_event(
        &mut self,
        _r: &OrderToTradeRules,
        _ev: &SurvEvent,
        _ctx: &Ctx<'_>,
        _out: &mut Alerts,
    ) {
    }
}
