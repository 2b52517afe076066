//! Where a run's events come from.

use super::Event;

/// Which shard an item goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// One shard (its number, below the shard count).
    One(usize),
    /// Every shard (e.g. a market-wide message).
    All,
}

/// A source of items, read by the reader stage one at a time.
///
/// The reader calls [`Source::advance`] to read the next item, then [`Source::time`] and
/// [`Source::route`] about it, and [`Source::write`] once per ring slot it goes to. An item the
/// rings have no room for stays current: the reader asks again later, without advancing.
pub trait Source: Send {
    /// What goes on the rings.
    type Event: Event;
    /// Why the source stopped early.
    type Error: std::error::Error + Send + 'static;

    /// Reads the next item: `None` at the end, or the error that ends the feed. Items the
    /// source skips (and counts) are not returned.
    fn advance(&mut self) -> Option<Result<(), Self::Error>>;

    /// The current item's event time, ns (marks and `until` are computed from it).
    fn time(&self) -> u64;

    /// Which of `shards` shards the current item goes to.
    fn route(&self, shards: usize) -> Route;

    /// Writes the current item into a ring slot (the engine sets the header after).
    fn write(&self, slot: &mut Self::Event);

    /// Asked after [`Source::advance`] returned `None`: whether the feed is over (the default)
    /// or merely has nothing yet — a live feed between packets. Then the reader yields (its
    /// thread may wait or run other stages, and sees the stop flag) and asks again later.
    fn ended(&self) -> bool {
        true
    }

    /// When the current item arrived, in TSC ticks (e.g. a packet's kernel receive time):
    /// when not pacing, its latency starts there instead of when the reader read it, so the
    /// end-to-end latency covers the time it waited before the reader. `None` (the default):
    /// from the read.
    fn arrival(&self) -> Option<u64> {
        None
    }

    /// The source's state at a checkpoint, positioned at the current item (which is not yet
    /// sent): what it needs to start again there, e.g. the item's byte offset. Empty (the
    /// default): the source cannot be resumed.
    fn checkpoint(&self) -> Vec<u8> {
        Vec::new()
    }
}
