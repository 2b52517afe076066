//! The ground truth of a generated feed: every injected manipulation episode, as the generator
//! writes it (`OUT.truth.json`) and the evaluator ([`crate::surv::eval`]) reads it. Plain data
//! in a module of its own, so the generator, the scenarios and surveillance share it without
//! importing one another.

/// One injected episode, as the truth file records it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Episode {
    /// Episode number (0-based, in start order).
    pub id: u32,
    /// Scenario name.
    pub scenario: String,
    /// The detector expected to fire.
    pub detector: String,
    /// Symbol.
    pub stock: String,
    /// Stock locate.
    pub locate: u16,
    /// The participant the alert should name: the MPID, or the account for flow scenarios.
    pub participant: String,
    /// The MPID used.
    pub mpid: String,
    /// The account used.
    pub account: String,
    /// First action, ns since midnight.
    pub start_ns: u64,
    /// Last action, ns since midnight.
    pub end_ns: u64,
    /// An alert of the detector on this stock stamped in [detect_from_ns, detect_until_ns]
    /// detects the episode.
    pub detect_from_ns: u64,
    /// End of the detection window.
    pub detect_until_ns: u64,
}

/// The ground truth of a generated feed.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Truth {
    /// The feed it describes.
    pub feed: String,
    /// Generator seed.
    pub seed: u64,
    /// Scenarios injected.
    pub scenarios: Vec<String>,
    /// Episodes per scenario per minute of session.
    pub rate: f64,
    /// The participant-flow file written beside the feed, if any.
    pub flow: Option<String>,
    /// Every episode.
    pub episodes: Vec<Episode>,
}
