//! Latency histograms: preallocated, recorded in nanoseconds, summarised as percentiles.
//!
//! Each stage of each thread owns its own [`Histogram`] (no sharing, no atomics on the hot path);
//! they are merged after the run. Every histogram has fixed bounds (1 ns to one hour, 3
//! significant digits), so recording never allocates: values past the top are clamped and
//! counted by HdrHistogram's saturating record.
//!
//! Besides the summary table ([`write_table`]) a histogram can be written as HdrHistogram's
//! percentile-distribution text ([`write_hgrm`], the `.hgrm` files HdrHistogram's online plotter
//! reads) and a set of stages drawn as the classic latency-by-percentile chart (`plot_svg`, with
//! the `plot` feature); both are built from the same rows, [`percentile_rows`].

use std::io::{self, Write};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest value a latency histogram tracks: one hour, in nanoseconds.
pub const MAX_NS: u64 = 3_600_000_000_000;

/// A new latency histogram (nanoseconds, 3 significant digits, 1 ns .. [`MAX_NS`]), fully
/// allocated now.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_NS, 3).expect("static, valid bounds")
}

/// The usual percentiles of one histogram, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// 99.99th percentile.
    pub p9999: u64,
    /// Largest value.
    pub max: u64,
}

impl Percentiles {
    /// Summarises `h`.
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            p9999: h.value_at_quantile(0.9999),
            max: h.max(),
        }
    }
}

/// One named stage's merged latency.
#[derive(Clone, Debug, Serialize)]
pub struct StageLatency {
    /// What was timed, e.g. `"book update"`.
    pub stage: String,
    /// From where to where.
    pub span: String,
    /// Its percentiles.
    #[serde(flatten)]
    pub percentiles: Percentiles,
    /// The merged histogram itself.
    #[serde(skip)]
    pub histogram: Histogram<u64>,
}

impl StageLatency {
    /// Merges `parts` (histograms of the same stage from different threads).
    pub fn merged<'a>(
        stage: &str,
        span: &str,
        parts: impl IntoIterator<Item = &'a Histogram<u64>>,
    ) -> StageLatency {
        let mut h = histogram();
        for p in parts {
            // Same bounds everywhere: cannot fail.
            let _ = h.add(p);
        }
        StageLatency {
            stage: stage.to_string(),
            span: span.to_string(),
            percentiles: Percentiles::of(&h),
            histogram: h,
        }
    }
}

/// Writes a percentile table for `stages`, one row each, in the units people read (see
/// [`readable`]).
pub fn write_table(out: &mut impl std::io::Write, stages: &[StageLatency]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<22} {:>11} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "latency", "count", "p50", "p90", "p99", "p99.9", "p99.99", "max"
    )?;
    for s in stages {
        let p = &s.percentiles;
        let [a, b, c, d, e, f] = [p.p50, p.p90, p.p99, p.p999, p.p9999, p.max].map(readable);
        writeln!(
            out,
            "{:<22} {:>11} {a:>9} {b:>9} {c:>9} {d:>9} {e:>9} {f:>9}",
            s.stage, p.count
        )?;
    }
    Ok(())
}

/// A latency as people read it: ns below 10 µs, then µs, then ms, then s.
pub fn readable(ns: u64) -> String {
    match ns {
        0..10_000 => format!("{ns} ns"),
        10_000..10_000_000 => format!("{:.1} µs", ns as f64 / 1e3),
        10_000_000..10_000_000_000 => format!("{:.2} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

/// Ticks per half distance to 100 % of the percentile iteration: the value Java's
/// `outputPercentileDistribution(out, 5, 1.0)` is called with, and the one the `.hgrm` files of the
/// HdrHistogram tools use.
const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// One step of a percentile iteration: a row of the `.hgrm` percentile distribution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PercentileRow {
    /// Highest value (ns) equivalent to the bucket where the percentile level was reached.
    pub value: u64,
    /// Percentile level iterated to, as a fraction in `[0, 1]`; the last row is exactly 1.
    pub percentile: f64,
    /// Count of recorded values up to and including that bucket.
    pub total_count: u64,
}

/// The rows of `h`'s percentile distribution, exactly as Java HdrHistogram's
/// `PercentileIterator(h, 5)` yields them: levels step from 0 % in 5 equal ticks per half distance
/// to 100 % (5 to 50 %, 5 more to 75 %, 5 more to 87.5 %, ...); each level yields the first
/// recorded bucket whose cumulative percentile reaches it (one bucket may yield several levels);
/// after the last recorded bucket one final row at exactly 100 %. Empty histogram: no rows.
///
/// Levels are kept in percent with Java's own arithmetic (`100 / (ticks * 2^(floor(log(100 /
/// (100 - level)) / log 2) + 1))` added per step, compared with `100 * count / total`). The
/// crate's [`Histogram::iter_quantiles`] follows the same schedule in fractions instead, which
/// picks a different bucket whenever a level falls exactly on a cumulative count: for the values
/// 1..=10 it puts 4 at 30 % where Java puts 3 (`0.1 + 0.1 + 0.1 > 0.3`, while
/// `10.0 + 10.0 + 10.0 == 30.0`), so it is not used for output meant to match Java's.
pub fn percentile_rows(h: &Histogram<u64>) -> impl Iterator<Item = PercentileRow> + '_ {
    let total = h.len();
    let mut buckets = h
        .iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()));
    let mut current: Option<u64> = None; // value of the bucket the walk stands on
    let mut count_to_current = 0_u64;
    let mut level = 0.0_f64; // percent
    let mut reached_last = false;
    std::iter::from_fn(move || {
        // Java's `hasNext()`: values left, or the one extra step to 100 %.
        if count_to_current >= total {
            if reached_last || total == 0 {
                return None;
            }
            level = 100.0;
            reached_last = true;
        }
        // Java's `next()`: stay on the current bucket while it reaches the level, else move on.
        loop {
            if let Some(value) = current {
                let percentile_here = 100.0 * count_to_current as f64 / total as f64;
                if percentile_here >= level {
                    let row = PercentileRow {
                        value,
                        percentile: level / 100.0,
                        total_count: count_to_current,
                    };
                    level += next_tick(level);
                    return Some(row);
                }
            }
            let (value, count) = buckets.next()?;
            current = Some(value);
            count_to_current = count_to_current.saturating_add(count);
        }
    })
}

/// Java `PercentileIterator.incrementIterationLevel()`'s step from `level` (percent), computed
/// the same way (natural logs, truncating casts) so the levels are bit-identical to Java's.
fn next_tick(level: f64) -> f64 {
    let halvings = ((100.0 / (100.0 - level)).ln() / 2_f64.ln()) as i64; // Java `(long)` cast
    let slices = 2_f64.powf(halvings.wrapping_add(1) as f64) as i64;
    let ticks = i64::from(TICKS_PER_HALF_DISTANCE).wrapping_mul(slices);
    100.0 / ticks as f64
}

/// Writes `h` as HdrHistogram's percentile-distribution text (an `.hgrm` file), byte for byte the
/// layout of Java's `AbstractHistogram.outputPercentileDistribution(out, 5, 1.0)`: values in
/// nanoseconds (scaling ratio 1), readable by HdrHistogram's online plotter (`plotFiles.html`).
///
/// For the values 1..=10000, recorded once each:
/// ```text
///        Value     Percentile TotalCount 1/(1-Percentile)
///
///        1.000 0.000000000000          1           1.00
///        ...
///    10007.000 1.000000000000      10000
/// #[Mean    =     5000.898, StdDeviation   =     2886.893]
/// #[Max     =    10007.000, Total count    =        10000]
/// #[Buckets =           32, SubBuckets     =         2048]
/// ```
///
/// Rows are `%12.Nf %2.12f %10d %14.2f` (N = the histogram's significant digits, 3 here): the
/// highest value equivalent to the percentile's bucket, the percentile level iterated to (as a
/// fraction), the count of values up to that bucket and `1/(1-percentile)`; the final row, at
/// percentile 1, has no fourth column, as in Java. Rows come from [`percentile_rows`], Java's
/// `PercentileIterator` with 5 ticks per half distance. Numbers are rounded as
/// `java.util.Formatter` rounds: half up on the shortest decimal representation of the double.
///
/// An empty histogram writes the header and a footer of zeros, as Java does.
pub fn write_hgrm(out: &mut impl Write, h: &Histogram<u64>) -> io::Result<()> {
    let digits = usize::from(h.sigfig());
    write!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    )?;
    for row in percentile_rows(h) {
        let value = java_fixed(row.value as f64, digits);
        let percentile = java_fixed(row.percentile, 12);
        let total = row.total_count;
        if row.percentile < 1.0 {
            let inverse = java_fixed(1.0 / (1.0 - row.percentile), 2);
            writeln!(out, "{value:>12} {percentile:>2} {total:>10} {inverse:>14}")?;
        } else {
            writeln!(out, "{value:>12} {percentile:>2} {total:>10}")?;
        }
    }
    writeln!(
        out,
        "#[Mean    = {:>12}, StdDeviation   = {:>12}]",
        java_fixed(h.mean(), digits),
        java_fixed(h.stdev(), digits)
    )?;
    writeln!(
        out,
        "#[Max     = {:>12}, Total count    = {:>12}]",
        java_fixed(h.max() as f64, digits),
        h.len()
    )?;
    writeln!(
        out,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        sub_bucket_count(h.sigfig())
    )
}

/// The number of sub-buckets per bucket of a histogram with `sigfig` significant digits: the
/// smallest power of two that gives single-unit resolution up to `2 * 10^sigfig` (the crate keeps
/// it private; Java prints it in the `.hgrm` footer).
fn sub_bucket_count(sigfig: u8) -> u64 {
    let largest_single_unit = 2 * 10_u64.pow(u32::from(sigfig));
    largest_single_unit.next_power_of_two().max(2)
}

/// `x` formatted as Java's `String.format(Locale.US, "%.{prec}f", x)`: the shortest decimal
/// digits that round-trip (Java's `FloatingDecimal`), then rounded half up to `prec` decimals.
/// Rust's `{:.prec$}` rounds the exact binary value half to even instead, which differs on ties
/// such as `0.125` to two decimals (Java `0.13`, Rust `0.12`).
fn java_fixed(x: f64, prec: usize) -> String {
    if x.is_nan() {
        return "NaN".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    let sci = format!("{:e}", x.abs()); // shortest round-trip digits: "d[.ddd]e[-]N"
    let (mantissa, exponent) = sci.split_once('e').expect("LowerExp writes an exponent");
    let exponent: i64 = exponent.parse().expect("LowerExp exponent is an integer");
    let mut digits: Vec<u8> = mantissa
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect();
    // The value is 0.d1 d2 d3 ... × 10^int_len: `int_len` digits stand before the point.
    let mut int_len = exponent + 1;
    let keep = int_len + prec as i64;
    if keep < 0 {
        digits.clear(); // below half a unit of the last place: rounds to zero
    } else if (keep as usize) < digits.len() {
        let round_up = digits[keep as usize] >= 5;
        digits.truncate(keep as usize);
        if round_up {
            let mut i = digits.len();
            loop {
                if i == 0 {
                    digits.insert(0, 1);
                    int_len += 1;
                    break;
                }
                i -= 1;
                if digits[i] == 9 {
                    digits[i] = 0;
                } else {
                    digits[i] += 1;
                    break;
                }
            }
        }
    }
    let digit_at = |pos: i64| -> char {
        if pos < 0 {
            '0'
        } else {
            char::from(b'0' + digits.get(pos as usize).copied().unwrap_or(0))
        }
    };
    let mut s = String::with_capacity(24);
    if x.is_sign_negative() {
        s.push('-');
    }
    if int_len <= 0 {
        s.push('0');
    } else {
        s.extend((0..int_len).map(digit_at));
    }
    if prec > 0 {
        s.push('.');
        s.extend((int_len..int_len + prec as i64).map(digit_at));
    }
    s
}

#[cfg(feature = "plot")]
mod plot;
#[cfg(feature = "plot")]
pub use plot::{plot_svg, PlotError};
