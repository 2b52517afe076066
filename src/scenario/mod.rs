//! Labelled manipulation scenarios injected into the synthetic feed, with their ground truth.
//!
//! `tickwatch gen --scenarios spoofing,layering,… --scenario-rate R` plans episodes of each
//! listed scenario (R per minute of the continuous session, on busy stocks, never two of one
//! kind on one stock at once), each a [`Script`] of [`Action`]s at offsets from its start. The
//! generator plays the actions between its background messages — its own book keeps every
//! action consistent (the orders an action names exist, prices never cross) — and the
//! background never touches an episode's orders. The ground truth (every episode: scenario,
//! detector expected to fire, stock, participant, start and end) is written beside the feed as
//! JSON, and the participant flow (account-level records, for wash trades) as CSV.

pub mod close;
pub mod ignition;
pub mod layering;
pub mod spoofing;
pub mod stuffing;
pub mod wash;

use crate::rng::SplitMix64;
/// The truth format (in [`crate::truth`]; re-exported for older users).
pub use crate::truth::{Episode, Truth};

/// The scenarios the generator can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScenarioKind {
    /// Spoofing.
    Spoofing,
    /// Layering.
    Layering,
    /// Quote stuffing.
    Stuffing,
    /// Momentum ignition.
    Ignition,
    /// Marking the close.
    Close,
    /// Wash trades (needs the participant flow).
    Wash,
}

impl ScenarioKind {
    /// Every scenario.
    pub const ALL: [ScenarioKind; 6] = [
        ScenarioKind::Spoofing,
        ScenarioKind::Layering,
        ScenarioKind::Stuffing,
        ScenarioKind::Ignition,
        ScenarioKind::Close,
        ScenarioKind::Wash,
    ];

    /// The name on the command line and in the truth file.
    pub fn name(self) -> &'static str {
        match self {
            ScenarioKind::Spoofing => "spoofing",
            ScenarioKind::Layering => "layering",
            ScenarioKind::Stuffing => "stuffing",
            ScenarioKind::Ignition => "ignition",
            ScenarioKind::Close => "close",
            ScenarioKind::Wash => "wash",
        }
    }

    /// The scenario named `s`.
    pub fn from_name(s: &str) -> Option<ScenarioKind> {
        ScenarioKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The detector that should catch it.
    pub fn detector(self) -> crate::surv::DetectorId {
        use crate::surv::DetectorId as D;
        match self {
            ScenarioKind::Spoofing => D::Spoofing,
            ScenarioKind::Layering => D::Layering,
            ScenarioKind::Stuffing => D::QuoteStuffing,
            ScenarioKind::Ignition => D::MomentumIgnition,
            ScenarioKind::Close => D::MarkingTheClose,
            ScenarioKind::Wash => D::WashTrade,
        }
    }

    /// The episode's script.
    pub fn script(self, rng: &mut SplitMix64, c: &EpisodeCtx) -> Script {
        match self {
            ScenarioKind::Spoofing => spoofing::script(rng, c),
            ScenarioKind::Layering => layering::script(rng, c),
            ScenarioKind::Stuffing => stuffing::script(rng, c),
            ScenarioKind::Ignition => ignition::script(rng, c),
            ScenarioKind::Close => close::script(rng, c),
            ScenarioKind::Wash => wash::script(rng, c),
        }
    }
}

/// Where an episode happens.
#[derive(Clone, Copy, Debug)]
pub struct EpisodeCtx {
    /// Planned start, ns since midnight (a script may start later, e.g. near the close).
    pub start: u64,
    /// The continuous session's open and close, ns since midnight.
    pub open: u64,
    /// Close.
    pub close: u64,
    /// The stock.
    pub locate: u16,
    /// The manipulator's MPID (attributed adds).
    pub mpid: [u8; 4],
    /// The manipulator's account (participant flow).
    pub account: crate::surv::Party,
    /// A second account of the same firm (wash trades between two accounts of one owner).
    pub account2: crate::surv::Party,
}

/// An order price, resolved when the action plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Px {
    /// `ticks` (one cent each) from the same side's best price: positive improves it (a higher
    /// bid, a lower offer), 0 joins it, negative rests behind it. Clamped so it never locks or
    /// crosses the other side. With the side empty, from the mid.
    Best(i32),
    /// `ticks` from the other side's best price, away from it (1 = one tick inside the spread
    /// from the opposite touch, on this side). With that side empty, from the mid.
    Opposite(i32),
}

/// Script-local order handle (an index, 0..16).
pub type Handle = u8;

/// One step of a script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// A new displayed order of the manipulator: `attributed` as an 'F' add with the MPID
    /// (else an anonymous 'A'); with `flow`, the participant flow gets a `new` record for
    /// `account` (the episode's first or second account).
    Add {
        /// Handle to name it by.
        h: Handle,
        /// `b'B'` or `b'S'`.
        side: u8,
        /// Price.
        px: Px,
        /// Shares.
        shares: u32,
        /// 'F' with the MPID.
        attributed: bool,
        /// Record it in the participant flow (0: no; 1: account; 2: account2).
        flow: u8,
    },
    /// The manipulator deletes order `h` (flow `cancel` if it was in the flow).
    Cancel {
        /// Which.
        h: Handle,
    },
    /// Someone else trades against the manipulator's resting order `h` (an E message; a flow
    /// `fill` if it was in the flow).
    Fill {
        /// Which.
        h: Handle,
        /// Shares (capped at what rests).
        shares: u32,
    },
    /// Aggressive trading that takes `shares` from the best orders of `side` (`b'S'`: buying
    /// the offers, which lifts the price), background orders only; the mid follows the last
    /// traded price. With `flow` (1 or 2), the aggressor is that account: flow `fill` records.
    Sweep {
        /// The side taken.
        side: u8,
        /// Shares.
        shares: u32,
        /// Aggressor in the flow (0: anonymous).
        flow: u8,
    },
    /// `n` add-then-delete pairs of the manipulator (attributed) within `span_ns`, at the touch
    /// or `depth` ticks behind it, alternating sides (quote stuffing).
    Burst {
        /// Pairs.
        n: u32,
        /// Span, ns.
        span_ns: u64,
        /// Ticks behind the touch.
        depth: u32,
    },
    /// A wash trade: the manipulator's resting order `h` (in the flow) executes against an
    /// aggressive order of the flow's other account (`flow`: 1 or 2) of the same firm — one
    /// match number, both sides in the flow.
    Wash {
        /// The resting order.
        h: Handle,
        /// Shares.
        shares: u32,
        /// The aggressor's account (1 or 2).
        flow: u8,
    },
}

/// An action at an offset from the episode's start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Action {
    /// Offset from [`Script::start`], ns.
    pub at: u64,
    /// What.
    pub op: Op,
}

/// An episode's plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Script {
    /// When it starts (≥ the planned start), ns since midnight.
    pub start: u64,
    /// Its actions, by offset (stable order for equal offsets).
    pub actions: Vec<Action>,
    /// The window in which the detector is expected to fire, as offsets from `start`
    /// (usually 0 to the last action plus the detector's reaction time).
    pub detect_from: u64,
    /// End of that window.
    pub detect_until: u64,
}
