//! Detectors of your own, beside the built-in ones, without editing this crate.
//!
//! Implement [`UserDetector`] and register it with [`Surveillance::add_detector`] (or pass
//! [`DetectorFactory`]s to [`Surveillance::with_detectors`] or [`surveil_feed_with`], which
//! build one instance per shard). A user detector sees exactly what the built-in detectors
//! see — every classified event after the books applied it, every watermark mark, every
//! participant-flow record of its shard's stocks — and runs after them on each. Its alerts are
//! ordinary [`Alert`]s: the same buffer, the same deterministic order (by stock, then detector,
//! user detectors after the built-in ones in registration order, then raising order), the same
//! JSON line with `"detector"` set to its [`name`](UserDetector::name).
//!
//! A shard sees only its own stocks' events (the pipeline shards by stock locate), while marks
//! reach every shard at the same feed positions: keep state per stock (sized for every stock a
//! shard may own, not a share of them) and raise alerts about stocks from events or marks, and
//! the alerts are the same for any worker count. An alert raised at a mark that is not about a
//! stock of the shard (a market-wide timer, say) is raised once per shard.
//!
//! With no user detector registered the cost is one empty-`Vec` check per event and per mark.
//!
//! ```
//! use tickwatch::surv::custom::{UserAlerts, UserDetector};
//! use tickwatch::surv::{Alert, Ctx, DetectorId, Kind, SurvEvent};
//!
//! /// An add of at least `min_shares`.
//! struct BigAdd { min_shares: u32 }
//!
//! impl UserDetector for BigAdd {
//!     fn name(&self) -> &'static str { "big_add" }
//!     fn on_event(&mut self, ev: &SurvEvent, ctx: &Ctx<'_>, out: &mut UserAlerts<'_>) {
//!         if let Kind::Add { shares, order_ref, .. } = ev.kind {
//!             if shares >= self.min_shares {
//!                 let a = Alert::new(DetectorId::Custom, ev.ts, ev.seq, ev.locate, ctx.symbol)
//!                     .order_ref(order_ref)
//!                     .evidence("shares", shares as f64, ">=", self.min_shares as f64)
//!                     .touch(ev.after);
//!                 out.push(a);
//!             }
//!         }
//!     }
//! }
//!
//! let mut s = tickwatch::surv::Surveillance::new(Default::default(), &[]);
//! s.add_detector(Box::new(BigAdd { min_shares: 10_000 }))?;
//! # Ok::<(), tickwatch::surv::custom::UserDetectorError>(())
//! ```
//!
//! [`Surveillance::add_detector`]: super::Surveillance::add_detector
//! [`Surveillance::with_detectors`]: super::Surveillance::with_detectors
//! [`surveil_feed_with`]: super::surveil_feed_with

pub use super::alert::UserId;
use super::{Alert, Alerts, Ctx, DetectorId, FlowRecord, SurvEvent};
use std::sync::Arc;

/// User detectors one [`Surveillance`](super::Surveillance) can hold (their ids follow the
/// built-in detectors' in the output's sort key, a byte).
pub const MAX_USER_DETECTORS: usize = 64;

/// A detector of your own. Object safe: held as `Box<dyn UserDetector>`, one per shard.
///
/// Every method but [`name`](UserDetector::name) and [`on_event`](UserDetector::on_event) has a
/// default that does nothing. Thresholds are the detector's own business (the crate's
/// [`Rules`](super::Rules) know nothing of it); so is the size of its state, which it should
/// fix at construction and count when full ([`table_pressure`](UserDetector::table_pressure)).
pub trait UserDetector: Send {
    /// The name its alerts carry (the JSON `detector`), and the name it is counted by: unique
    /// among the detectors of a run, 1 to 32 characters of `a-z`, `0-9` and `_`, and not a
    /// built-in detector's name ([`DetectorId::ALL`]).
    fn name(&self) -> &'static str;

    /// One market event, after the books applied it (`ev.after` is the stock's touch after;
    /// `ctx.books` the shard's books).
    fn on_event(&mut self, ev: &SurvEvent, ctx: &Ctx<'_>, out: &mut UserAlerts<'_>);

    /// Event time has passed `wm` on the whole feed (a watermark mark at feed position `seq`,
    /// the same positions for any worker count): timers may fire.
    fn on_watermark(&mut self, _wm: u64, _seq: u32, _ctx: &Ctx<'_>, _out: &mut UserAlerts<'_>) {}

    /// One participant-flow record of a stock this shard owns (`locate`), joined by time;
    /// alerts it raises carry `seq`.
    fn on_flow(
        &mut self,
        _rec: &FlowRecord,
        _locate: u16,
        _seq: u32,
        _ctx: &Ctx<'_>,
        _out: &mut UserAlerts<'_>,
    ) {
    }

    /// Its table-pressure counters by name (overflows, evictions, …: nonzero means it saw less
    /// than the feed), reported beside the built-in detectors'. Called once per report.
    fn table_pressure(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
}

/// Builds one instance of a user detector: one per shard, so a sharded run (the pipeline's
/// workers) calls it once per worker; `tickwatch run --alerts` does not take user detectors yet.
pub type DetectorFactory = Arc<dyn Fn() -> Box<dyn UserDetector> + Send + Sync>;

/// A [`DetectorFactory`] from a closure.
pub fn factory<D, F>(make: F) -> DetectorFactory
where
    D: UserDetector + 'static,
    F: Fn() -> D + Send + Sync + 'static,
{
    Arc::new(move || Box::new(make()) as Box<dyn UserDetector>)
}

/// Where a user detector raises alerts: stamps each with the detector's identity
/// ([`DetectorId::Custom`] and its [`UserId`]) whatever detector it was built with.
#[derive(Debug)]
pub struct UserAlerts<'a> {
    alerts: &'a mut Alerts,
    id: UserId,
}

impl UserAlerts<'_> {
    /// Raises `a` as this detector's alert (beyond the buffer's room it is counted as an
    /// overflow, like any detector's).
    #[inline]
    pub fn push(&mut self, mut a: Alert) {
        a.detector = DetectorId::Custom;
        a.user = Some(self.id);
        self.alerts.push(a);
    }

    /// This detector's identity.
    pub fn id(&self) -> UserId {
        self.id
    }
}

/// A user detector that cannot be registered.
#[derive(Debug, thiserror::Error)]
pub enum UserDetectorError {
    /// The name breaks [`UserDetector::name`]'s rules.
    #[error("user detector name {0:?}: use 1 to 32 characters of a-z, 0-9 and _")]
    BadName(&'static str),
    /// The name is a built-in detector's or an earlier user detector's.
    #[error("user detector name {0:?} is taken (by a built-in or an earlier user detector)")]
    Taken(&'static str),
    /// More than [`MAX_USER_DETECTORS`].
    #[error("at most {MAX_USER_DETECTORS} user detectors")]
    TooMany,
}

/// The user detectors of one shard, in registration order.
#[derive(Default)]
pub(super) struct UserDetectors(Vec<Box<dyn UserDetector>>);

impl std::fmt::Debug for UserDetectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|d| d.name()))
            .finish()
    }
}

impl UserDetectors {
    /// Registers `d` after the others.
    pub(super) fn add(&mut self, d: Box<dyn UserDetector>) -> Result<(), UserDetectorError> {
        let name = d.name();
        let ok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_';
        if name.is_empty() || name.len() > 32 || !name.bytes().all(ok) {
            return Err(UserDetectorError::BadName(name));
        }
        let builtin = DetectorId::ALL.iter().any(|b| b.name() == name);
        if builtin || self.0.iter().any(|u| u.name() == name) {
            return Err(UserDetectorError::Taken(name));
        }
        if self.0.len() >= MAX_USER_DETECTORS {
            return Err(UserDetectorError::TooMany);
        }
        self.0.push(d);
        Ok(())
    }

    /// Whether none is registered (the hot path's only cost then).
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Each detector with its sink, in registration order.
    fn each(
        &mut self,
        alerts: &mut Alerts,
        mut f: impl FnMut(&mut dyn UserDetector, &mut UserAlerts<'_>),
    ) {
        for (slot, d) in self.0.iter_mut().enumerate() {
            let id = UserId {
                slot: slot as u8,
                name: d.name(),
            };
            f(d.as_mut(), &mut UserAlerts { alerts, id });
        }
    }

    // Out of line: the built-in detectors' hot path holds only the empty check.
    #[inline(never)]
    pub(super) fn on_event(&mut self, ev: &SurvEvent, ctx: &Ctx<'_>, alerts: &mut Alerts) {
        self.each(alerts, |d, out| d.on_event(ev, ctx, out));
    }

    // Out of line: the built-in detectors' hot path holds only the empty check.
    #[inline(never)]
    pub(super) fn on_watermark(&mut self, wm: u64, seq: u32, ctx: &Ctx<'_>, alerts: &mut Alerts) {
        self.each(alerts, |d, out| d.on_watermark(wm, seq, ctx, out));
    }

    // Out of line: the built-in detectors' hot path holds only the empty check.
    #[inline(never)]
    pub(super) fn on_flow(
        &mut self,
        rec: &FlowRecord,
        locate: u16,
        seq: u32,
        ctx: &Ctx<'_>,
        alerts: &mut Alerts,
    ) {
        self.each(alerts, |d, out| d.on_flow(rec, locate, seq, ctx, out));
    }

    /// Every detector's table pressure, in registration order.
    pub(super) fn table_pressure(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.0.iter().flat_map(|d| d.table_pressure())
    }

    /// The names, in registration order.
    pub(super) fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().map(|d| d.name())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{OutBody, OutKey, Rules, SurvOutput, SurvRecord};
    use super::*;

    #[test]
    fn the_output_counts_each_user_detector_by_name() {
        let mut out = SurvOutput::new(&Rules::default());
        out.name_user_detectors(["first", "second"]);
        let mut alerts = Alerts::new(4);
        let mut sink = UserAlerts {
            alerts: &mut alerts,
            id: UserId {
                slot: 1,
                name: "second",
            },
        };
        sink.push(Alert::new(DetectorId::Layering, 5, 1, 2, *b"AB      "));
        let a = alerts.pending()[0];
        assert_eq!(
            (a.detector, a.detector_name()),
            (DetectorId::Custom, "second")
        );
        assert_eq!(a.sort_id(), DetectorId::ALL.len() as u8 + 1);
        assert_eq!(alerts.raised[DetectorId::Custom as usize], 1);
        let rec = SurvRecord {
            key: OutKey {
                epoch: 0,
                phase: crate::surv::phase::EVENT,
                rel: 0,
                locate: 2,
                det: a.sort_id(),
                idx: 0,
            },
            origin: 0,
            staged: 0,
            body: OutBody::Alert,
        };
        let mut written = Vec::new();
        out.take(&rec, Some(&a), |a| a.write_json(&mut written));
        assert!(String::from_utf8(written)
            .unwrap()
            .contains("\"detector\":\"second\""));
        let by = out.written_by_name();
        assert_eq!(
            by.len(),
            DetectorId::ALL.len() - 1 + 2,
            "built-ins, then both"
        );
        assert_eq!(&by[by.len() - 2..], [("first", 0), ("second", 1)]);
        assert_eq!(out.written[DetectorId::Custom as usize], 1);
    }
}
