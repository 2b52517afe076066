//! Scale-free measures shared by the detectors: a stock's own tick, and timing scores that fall
//! (or rise) smoothly across a plausible range instead of a cliff at one value.
//!
//! Ticks follow Reg NMS Rule 612 (the minimum pricing increment): quotes of $1.00 or more are in
//! whole cents, below $1.00 in $0.0001. Prices are Price(4) (1 = $0.0001).

/// $1.00 in Price(4).
pub const ONE_DOLLAR: u32 = 10_000;

/// The tick of a stock quoted at `price` (Price(4)): one cent at or above $1.00, $0.0001 below.
#[inline]
pub fn tick_of(price: u32) -> u32 {
    if price >= ONE_DOLLAR {
        100
    } else {
        1
    }
}

/// Whole ticks between `a` and `b`, in the tick of the lower of the two (the finer grid when a
/// move crosses $1.00).
#[inline]
pub fn ticks_between(a: u32, b: u32) -> u32 {
    a.abs_diff(b) / tick_of(a.min(b))
}

/// 1 up to `full`, then a smooth (half-cosine) fall to 0 at `zero` and beyond; a cliff at
/// `full` when `zero <= full`.
#[inline]
pub fn falling(x: f64, full: f64, zero: f64) -> f64 {
    if x <= full {
        1.0
    } else if x >= zero {
        0.0
    } else {
        let t = (x - full) / (zero - full);
        0.5 * (1.0 + (std::f64::consts::PI * t).cos())
    }
}

/// 0 up to `zero`, then a smooth rise to 1 at `full` and beyond (the mirror of [`falling`]).
#[inline]
pub fn rising(x: f64, zero: f64, full: f64) -> f64 {
    if x <= zero {
        0.0
    } else {
        1.0 - falling(x, zero, full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_sub_penny_below_a_dollar() {
        assert_eq!(tick_of(9_999), 1);
        assert_eq!(tick_of(10_000), 100);
        assert_eq!(ticks_between(5_000, 5_030), 30);
        assert_eq!(ticks_between(100_000, 101_000), 10);
    }

    #[test]
    fn scores_fall_and_rise_smoothly_between_their_ends() {
        assert_eq!(falling(1.0, 1.0, 3.0), 1.0);
        assert_eq!(falling(3.0, 1.0, 3.0), 0.0);
        assert!((falling(2.0, 1.0, 3.0) - 0.5).abs() < 1e-12);
        let (a, b) = (falling(1.2, 1.0, 3.0), falling(1.4, 1.0, 3.0));
        assert!(a > b && b > 0.9, "{a} {b}");
        assert_eq!(rising(0.5, 1.0, 2.0), 0.0);
        assert_eq!(rising(2.5, 1.0, 2.0), 1.0);
        assert!((rising(1.5, 1.0, 2.0) - 0.5).abs() < 1e-12);
        // No range: a cliff.
        assert_eq!(falling(1.0 + 1e-9, 1.0, 1.0), 0.0);
    }
}
