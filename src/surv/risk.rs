//! TODO(detector): risk — a stub until its detector lands.
//!
//! Risk is per participant across every stock, so it does not run in the shard workers: they
//! send [`RiskInput`]s (fills, marks, order and cancel counts) that the output stage applies in
//! feed order to one [`RiskBook`] (in a single-threaded run, the caller applies them inline).
use super::event::Party;
use super::{Alerts, Capacity};
use crate::itch::Side;

/// Thresholds of `[risk]` in the rules file.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskRules {
    /// Run this detector.
    pub enabled: bool,
}

impl Default for RiskRules {
    fn default() -> Self {
        RiskRules { enabled: true }
    }
}

impl RiskRules {
    /// Checks the thresholds make sense.
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// What the workers tell the risk book.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RiskInput {
    /// `party` bought (`side` Buy) or sold `shares` of `locate` at `price` (Price(4)).
    Fill {
        /// Who.
        party: Party,
        /// Which stock.
        locate: u16,
        /// Symbol.
        stock: [u8; 8],
        /// The party's side.
        side: Side,
        /// Price(4).
        price: u32,
        /// Shares.
        shares: u32,
    },
    /// The mid of `locate` (bid + ask, Price(4) ×2) changed, for a stock some party holds.
    Mark {
        /// Which stock.
        locate: u16,
        /// Bid + ask.
        mid2: u64,
    },
    /// `party` sent a new order (`cancel` false) or cancelled one (true) on `locate`.
    Order {
        /// Who.
        party: Party,
        /// Which stock.
        locate: u16,
        /// A cancel rather than a new order.
        cancel: bool,
    },
}

/// Positions, exposure and P&L per participant.
#[derive(Debug)]
pub struct RiskBook {}

impl RiskBook {
    /// A book sized by `cap`.
    pub fn new(_cap: &Capacity) -> Self {
        RiskBook {}
    }

    /// Applies one input (event time `ts`, feed position `seq`), raising limit breaches.
    pub fn apply(
        &mut self,
        _r: &RiskRules,
        _ts: u64,
        _seq: u32,
        _input: &RiskInput,
        _out: &mut Alerts,
    ) {
    }
}
