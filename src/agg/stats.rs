//! Streaming statistics: Welford's running mean and variance, and touch (spread, mid,
//! imbalance) statistics sampled on every change of a stock's best bid or offer.

/// Running count, mean and variance in one pass (Welford 1962), numerically stable; two
/// accumulators merge exactly (Chan et al.), so panes of a window combine.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Welford {
    /// Samples seen.
    pub n: u64,
    /// Their mean.
    pub mean: f64,
    /// Σ (x − mean)², the second central moment times n.
    pub m2: f64,
}

impl Welford {
    /// No samples.
    pub const EMPTY: Welford = Welford {
        n: 0,
        mean: 0.0,
        m2: 0.0,
    };

    /// Adds a sample.
    #[inline]
    pub fn add(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    /// Folds in another accumulator.
    pub fn merge(&mut self, o: &Welford) {
        if o.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *o;
            return;
        }
        let n = self.n + o.n;
        let d = o.mean - self.mean;
        self.mean += d * o.n as f64 / n as f64;
        self.m2 += o.m2 + d * d * (self.n as f64 * o.n as f64) / n as f64;
        self.n = n;
    }

    /// Sample standard deviation (`None` below two samples).
    pub fn stddev(&self) -> Option<f64> {
        (self.n > 1).then(|| (self.m2 / (self.n - 1) as f64).sqrt())
    }

    /// How many standard deviations `x` lies from the mean (`None` without a spread).
    pub fn z(&self, x: f64) -> Option<f64> {
        self.stddev()
            .filter(|s| *s > 0.0)
            .map(|s| (x - self.mean) / s)
    }
}

/// Statistics of a stock's touch, sampled at each change of its best bid or offer: spread and
/// mid (1/10,000 dollars) and the size imbalance `(bid − ask) / (bid + ask)` in [−1, 1]. Locked
/// or crossed samples (spread ≤ 0) are counted apart and kept out of the spread statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TouchStats {
    /// Spread of two-sided, uncrossed samples.
    pub spread: Welford,
    /// Mid of two-sided samples.
    pub mid: Welford,
    /// Size imbalance at the touch of two-sided samples.
    pub imbalance: Welford,
    /// Samples with bid ≥ ask.
    pub locked_or_crossed: u64,
    /// Samples with one side empty.
    pub one_sided: u64,
}

impl TouchStats {
    /// No samples.
    pub const EMPTY: TouchStats = TouchStats {
        spread: Welford::EMPTY,
        mid: Welford::EMPTY,
        imbalance: Welford::EMPTY,
        locked_or_crossed: 0,
        one_sided: 0,
    };

    /// Samples taken (two-sided or not).
    pub fn samples(&self) -> u64 {
        self.mid.n + self.one_sided
    }

    /// Adds a sample of the touch: (price, shares) of the best bid and offer, `None` when empty.
    pub fn add(&mut self, bid: Option<(u32, u64)>, ask: Option<(u32, u64)>) {
        let (Some((bp, bs)), Some((ap, az))) = (bid, ask) else {
            self.one_sided += 1;
            return;
        };
        self.mid.add((f64::from(bp) + f64::from(ap)) / 2.0);
        let total = bs + az;
        if total > 0 {
            self.imbalance.add((bs as f64 - az as f64) / total as f64);
        }
        if bp >= ap {
            self.locked_or_crossed += 1;
        } else {
            self.spread.add(f64::from(ap - bp));
        }
    }

    /// Folds in another pane's statistics.
    pub fn merge(&mut self, o: &TouchStats) {
        self.spread.merge(&o.spread);
        self.mid.merge(&o.mid);
        self.imbalance.merge(&o.imbalance);
        self.locked_or_crossed += o.locked_or_crossed;
        self.one_sided += o.one_sided;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var.sqrt())
    }

    #[test]
    fn welford_matches_two_pass_and_merges_exactly() {
        let xs: Vec<f64> = (0..1000)
            .map(|i| 1e9 + ((i * 7919) % 1013) as f64 * 0.25)
            .collect();
        let mut w = Welford::default();
        xs.iter().for_each(|&x| w.add(x));
        let (mean, sd) = naive(&xs);
        assert!((w.mean - mean).abs() < 1e-6);
        assert!((w.stddev().unwrap() - sd).abs() < 1e-6);
        let (mut a, mut b) = (Welford::default(), Welford::default());
        xs[..300].iter().for_each(|&x| a.add(x));
        xs[300..].iter().for_each(|&x| b.add(x));
        a.merge(&b);
        assert_eq!(a.n, 1000);
        assert!((a.mean - mean).abs() < 1e-6);
        assert!((a.stddev().unwrap() - sd).abs() < 1e-6);
        assert!(w.z(mean).unwrap().abs() < 1e-9);
        assert_eq!(Welford::default().stddev(), None);
    }

    #[test]
    fn touch_stats_split_crossed_and_one_sided() {
        let mut t = TouchStats::default();
        t.add(Some((100, 300)), Some((102, 100)));
        t.add(Some((101, 100)), Some((101, 100)));
        t.add(None, Some((101, 100)));
        assert_eq!(
            (t.spread.n, t.mid.n, t.locked_or_crossed, t.one_sided),
            (1, 2, 1, 1)
        );
        assert_eq!(t.spread.mean, 2.0);
        assert_eq!(t.imbalance.mean, 0.25); // (0.5 + 0) / 2
    }
}
