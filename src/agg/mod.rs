//! Market aggregates built in: per-stock bars ([`Bar`]: OHLC, volume, VWAP, trades, messages,
//! order-to-trade ratio) and streaming statistics ([`Welford`], [`TouchStats`]). Each is a small
//! `Copy` value that adds one event and merges with another, so it lives in the fixed pane
//! arrays of [`crate::window`] and never allocates.

pub mod bar;
pub mod stats;

pub use bar::{
    format_bar, kind_of, participant_of, write_bar, Bar, BarFormat, BarInput, BarKey, Touch,
    CSV_HEADER, CSV_HEADER_PARTICIPANT, KINDS, MAX_ROW,
};
pub use stats::{TouchStats, Welford};
