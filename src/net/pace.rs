//! Pacing: each packet leaves when its feed time, scaled by the speed, has passed since the
//! first packet. Long waits sleep; the last [`SPIN_NS`] spin on the monotonic clock, because a
//! sleep wakes tens of µs late (timer slack, scheduling) and a spin wakes within ns.
//! The error of each send (sent − scheduled) goes into an HdrHistogram.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Waits shorter than this spin instead of sleeping.
pub const SPIN_NS: u64 = 200_000;

/// Pacing error percentiles, ns (sent − scheduled).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PaceReport {
    /// Packets paced (0 at `--speed max`).
    pub samples: u64,
    /// Median error.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest error.
    pub max_ns: u64,
}

/// The clock of one send: feed time → wall deadline, and the error histogram.
#[derive(Debug)]
pub struct Pacer {
    speed: Option<f64>,
    origin: Option<(Instant, u64)>,
    hist: Histogram<u64>,
}

impl Pacer {
    /// `speed`: `None` sends as fast as possible; `Some(k)` plays k× the feed's pace.
    pub fn new(speed: Option<f64>) -> Pacer {
        let hist = Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid bounds");
        Pacer {
            speed,
            origin: None,
            hist,
        }
    }

    /// When feed time `ts_ns` is due (`None` at full speed). The first call sets the origin:
    /// that packet is due now.
    pub fn due(&mut self, ts_ns: u64) -> Option<Instant> {
        let speed = self.speed?;
        let (t0, ts0) = *self.origin.get_or_insert((Instant::now(), ts_ns));
        let ns = ts_ns.saturating_sub(ts0) as f64 / speed;
        Some(t0 + Duration::from_nanos(ns as u64))
    }

    /// Returns at `deadline` or just after: sleeps while more than [`SPIN_NS`] away, then spins.
    pub fn wait(deadline: Instant) {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            let left = deadline - now;
            if left > Duration::from_nanos(SPIN_NS) {
                std::thread::sleep(left - Duration::from_nanos(SPIN_NS));
            } else {
                std::hint::spin_loop();
            }
        }
    }

    /// Records a send made at `sent` for `deadline`.
    pub fn record(&mut self, deadline: Instant, sent: Instant) {
        let err = sent.saturating_duration_since(deadline).as_nanos() as u64;
        self.hist.saturating_record(err.max(1));
    }

    /// The error percentiles so far.
    pub fn report(&self) -> PaceReport {
        let h = &self.hist;
        if h.is_empty() {
            return PaceReport::default();
        }
        PaceReport {
            samples: h.len(),
            p50_ns: h.value_at_quantile(0.5),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_scales_feed_time_by_speed() {
        let mut p = Pacer::new(Some(10.0));
        let t0 = p.due(5_000_000).unwrap();
        let t1 = p.due(15_000_000).unwrap();
        assert_eq!(t1 - t0, Duration::from_millis(1));
        assert!(Pacer::new(None).due(1).is_none());
    }

    #[test]
    fn wait_is_not_early() {
        let mut p = Pacer::new(Some(1.0));
        let d = Instant::now() + Duration::from_micros(300);
        Pacer::wait(d);
        let sent = Instant::now();
        assert!(sent >= d);
        p.record(d, sent);
        assert_eq!(p.report().samples, 1);
    }
}
