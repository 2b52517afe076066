//! Watermark generators: bounded out-of-orderness for one input, and the idle-aware minimum
//! over several inputs.
//!
//! Both are driven by event time only (no wall clock), so a replay gives the same watermarks,
//! hence the same window results, every time. A watermark `wm` promises that no more events with
//! `ts <= wm` are expected; `None` means no promise yet.

use super::{Ts, WindowError};

/// The watermark of one input: `max_ts - max_out_of_orderness - 1`.
///
/// `None` before any event, and while that difference would be negative (an event at `ts = 0`
/// may still come). After [`finish`](Self::finish) the watermark is `u64::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundedOutOfOrderness {
    ooo: Ts,
    max_ts: Option<Ts>,
    finished: bool,
}

/// `max_ts - ooo - 1`, or `None` while negative.
fn bounded(max_ts: Option<Ts>, ooo: Ts) -> Option<Ts> {
    max_ts?.checked_sub(ooo)?.checked_sub(1)
}

impl BoundedOutOfOrderness {
    /// A generator allowing events up to `max_out_of_orderness` ns behind the maximum seen.
    pub fn new(max_out_of_orderness: Ts) -> Self {
        Self {
            ooo: max_out_of_orderness,
            max_ts: None,
            finished: false,
        }
    }

    /// Observes one event's timestamp and returns the watermark after it.
    #[inline]
    pub fn observe(&mut self, ts: Ts) -> Option<Ts> {
        self.max_ts = Some(self.max_ts.map_or(ts, |m| m.max(ts)));
        self.watermark()
    }

    /// The current watermark.
    #[inline]
    pub fn watermark(&self) -> Option<Ts> {
        if self.finished {
            return Some(Ts::MAX);
        }
        bounded(self.max_ts, self.ooo)
    }

    /// The largest timestamp observed.
    pub fn max_timestamp(&self) -> Option<Ts> {
        self.max_ts
    }

    /// End of stream: the watermark becomes `u64::MAX` (every window fires). Returns it.
    pub fn finish(&mut self) -> Ts {
        self.finished = true;
        Ts::MAX
    }
}

/// The combined watermark of several inputs: the minimum over the *active* ones.
///
/// Input `i`'s own watermark is `max_ts_i - ooo - 1` (as [`BoundedOutOfOrderness`]). An input is
/// **idle** while its maximum timestamp is more than `idle_after_ns` behind the maximum timestamp
/// over all inputs; an input that has seen no event counts as being at timestamp 0 (midnight),
/// so it holds the combined watermark back (at `None`) until the other inputs are
/// `idle_after_ns` into the day. An idle input becomes active again when its events catch up;
/// the combined watermark never goes backwards, so a re-activated input only holds it back from
/// then on, and its events older than the combined watermark are late.
#[derive(Debug, Clone)]
pub struct Watermarks {
    ooo: Ts,
    idle_after: Ts,
    max_ts: Box<[Option<Ts>]>,
    global_max: Option<Ts>,
    current: Option<Ts>,
    finished: bool,
    rejected: u64,
}

impl Watermarks {
    /// Watermarks for `inputs` inputs with the same out-of-orderness bound and idle timeout.
    ///
    /// # Errors
    /// [`WindowError::NoInputs`] when `inputs == 0`.
    pub fn new(
        inputs: usize,
        max_out_of_orderness: Ts,
        idle_after_ns: Ts,
    ) -> Result<Self, WindowError> {
        if inputs == 0 {
            return Err(WindowError::NoInputs);
        }
        Ok(Self {
            ooo: max_out_of_orderness,
            idle_after: idle_after_ns,
            max_ts: vec![None; inputs].into_boxed_slice(),
            global_max: None,
            current: None,
            finished: false,
            rejected: 0,
        })
    }

    /// Observes one event of `input` and returns the combined watermark after it.
    ///
    /// An out-of-range `input` changes nothing and is counted in [`rejected`](Self::rejected).
    /// O(inputs).
    pub fn observe(&mut self, input: usize, ts: Ts) -> Option<Ts> {
        let Some(slot) = self.max_ts.get_mut(input) else {
            self.rejected += 1;
            return self.watermark();
        };
        *slot = Some(slot.map_or(ts, |m| m.max(ts)));
        self.global_max = Some(self.global_max.map_or(ts, |m| m.max(ts)));
        // `None < Some(_)`: an active input without a watermark holds the minimum at `None`.
        let mut min: Option<Option<Ts>> = None;
        for i in 0..self.max_ts.len() {
            if !self.is_idle(i) {
                let w = bounded(self.max_ts[i], self.ooo);
                min = Some(min.map_or(w, |m| m.min(w)));
            }
        }
        // The input holding the global maximum is always active, so `min` is `Some`.
        if let Some(candidate) = min {
            self.current = self.current.max(candidate);
        }
        self.watermark()
    }

    /// The combined watermark (never decreasing; `u64::MAX` after [`finish`](Self::finish)).
    pub fn watermark(&self) -> Option<Ts> {
        if self.finished {
            Some(Ts::MAX)
        } else {
            self.current
        }
    }

    /// Whether `input` is currently idle (ignored by the minimum). Out-of-range inputs are idle.
    pub fn is_idle(&self, input: usize) -> bool {
        let Some(&m) = self.max_ts.get(input) else {
            return true;
        };
        let g = self.global_max.unwrap_or(0);
        g.saturating_sub(m.unwrap_or(0)) > self.idle_after
    }

    /// Input `input`'s own watermark (`None` before it has one or when out of range).
    pub fn input_watermark(&self, input: usize) -> Option<Ts> {
        bounded(*self.max_ts.get(input)?, self.ooo)
    }

    /// Number of inputs.
    pub fn inputs(&self) -> usize {
        self.max_ts.len()
    }

    /// Observations rejected for an out-of-range input.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// End of stream: the combined watermark becomes `u64::MAX`. Returns it.
    pub fn finish(&mut self) -> Ts {
        self.finished = true;
        Ts::MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_is_none_while_negative() {
        assert_eq!(bounded(None, 0), None);
        assert_eq!(bounded(Some(0), 0), None);
        assert_eq!(bounded(Some(1), 0), Some(0));
        assert_eq!(bounded(Some(10), 10), None);
        assert_eq!(bounded(Some(10), 9), Some(0));
        assert_eq!(bounded(Some(10), 8), Some(1));
    }

    #[test]
    fn single_input_tracks_max() {
        let mut w = BoundedOutOfOrderness::new(5);
        assert_eq!(w.watermark(), None);
        assert_eq!(w.observe(100), Some(94));
        assert_eq!(w.observe(50), Some(94));
        assert_eq!(w.observe(200), Some(194));
        assert_eq!(w.finish(), Ts::MAX);
        assert_eq!(w.watermark(), Some(Ts::MAX));
    }
}
