//! Latency histograms: preallocated, recorded in nanoseconds, summarised as percentiles.
//!
//! Each stage of each thread owns its own [`Histogram`] (no sharing, no atomics on the hot path);
//! they are merged after the run. Every histogram has fixed bounds (1 ns to one hour, 3
//! significant digits), so recording never allocates: values past the top are clamped and
//! counted by HdrHistogram's saturating record.
//!
//! Besides the summary table ([`write_table`]) a histogram can be written as HdrHistogram's
//! percentile-distribution text ([`write_hgrm`], the `.hgrm` files HdrHistogram's online plotter
//! reads) and a set of stages drawn as the classic latency-by-percentile chart ([`plot_svg`]);
//! both are built from the same rows, [`percentile_rows`].

use std::io::{self, Write};
use std::path::Path;

use anyhow::Context as _;
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

/// Writes a percentile table (ns) for `stages`, one row each.
pub fn write_table(out: &mut impl std::io::Write, stages: &[StageLatency]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<22} {:>11} {:>8} {:>8} {:>8} {:>9} {:>9} {:>10}",
        "latency (ns)", "count", "p50", "p90", "p99", "p99.9", "p99.99", "max"
    )?;
    for s in stages {
        let p = &s.percentiles;
        writeln!(
            out,
            "{:<22} {:>11} {:>8} {:>8} {:>8} {:>9} {:>9} {:>10}",
            s.stage, p.count, p.p50, p.p90, p.p99, p.p999, p.p9999, p.max
        )?;
    }
    Ok(())
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

/// Line colours of the stages, in order (the Tableau 10 palette: distinct, readable on white).
const SERIES_COLORS: [(u8, u8, u8); 10] = [
    (0x1f, 0x77, 0xb4),
    (0xff, 0x7f, 0x0e),
    (0x2c, 0xa0, 0x2c),
    (0xd6, 0x27, 0x28),
    (0x94, 0x67, 0xbd),
    (0x8c, 0x56, 0x4b),
    (0xe3, 0x77, 0xc2),
    (0x7f, 0x7f, 0x7f),
    (0xbc, 0xbd, 0x22),
    (0x17, 0xbe, 0xcf),
];

/// Width and height, in pixels, of the charts [`plot_svg`] draws.
const PLOT_SIZE: (u32, u32) = (800, 500);

/// Draws `stages` as the classic HdrHistogram latency-by-percentile chart into an SVG file at
/// `path` (800×500): x is the percentile on a log scale of `1/(1-p)` (labelled 0 %, 90 %, 99 %,
/// 99.9 %, ... and at least out to 99.999 %), y the latency (ns, shown in ns/µs/ms/s; log scale
/// when the values span more than two decades, else linear from 0), one line per stage named in
/// the legend. The points are the rows [`write_hgrm`] writes, less the final 100 % one (it has no
/// finite `1/(1-p)`). Stages with empty histograms are left out; with none left the chart has
/// axes and title only.
///
/// Pure SVG: text is emitted as `<text>` elements and laid out with plotters' approximate
/// metrics, so no font files or system font libraries are needed.
///
/// # Errors
/// When the file cannot be created or written.
pub fn plot_svg(path: &Path, title: &str, stages: &[StageLatency]) -> anyhow::Result<()> {
    draw_chart(path, title, stages)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("drawing latency chart {}", path.display()))
}

/// One stage's curve: `(log10(1/(1-p)), value in ns)` for every percentile row below 100 %.
fn percentile_curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    percentile_rows(h)
        .filter(|r| r.percentile < 1.0)
        .map(|r| ((1.0 / (1.0 - r.percentile)).log10(), r.value as f64))
        .collect()
}

/// The y axis: linear in ns, or `log10` of ns.
#[derive(Clone, Copy)]
enum YScale {
    Linear,
    Log,
}

impl YScale {
    fn to_axis(self, ns: f64) -> f64 {
        match self {
            YScale::Linear => ns,
            YScale::Log => ns.max(1.0).log10(),
        }
    }

    fn to_ns(self, axis: f64) -> f64 {
        match self {
            YScale::Linear => axis,
            YScale::Log => 10_f64.powf(axis),
        }
    }
}

/// A linear plotters axis over `range` with given major (`bold`, labelled) and minor (`light`)
/// grid points: plotters' own `with_key_points` loses the label formatter hook for `f64`.
struct TickAxis {
    range: std::ops::Range<f64>,
    bold: Vec<f64>,
    light: Vec<f64>,
}

impl plotters::coord::ranged1d::Ranged for TickAxis {
    type FormatOption = plotters::coord::ranged1d::NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.range.end - self.range.start;
        let fraction = if span > 0.0 {
            (value - self.range.start) / span
        } else {
            0.0
        };
        limit.0 + (fraction * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<H: plotters::coord::ranged1d::KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.light.clone()
        } else {
            self.bold.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.range.clone()
    }
}

impl plotters::coord::ranged1d::ValueFormatter<f64> for TickAxis {
    fn format(value: &f64) -> String {
        value.to_string()
    }
}

/// The y axis for values from `lo` to `hi` ns (`0 < lo <= hi`): log when they span more than two
/// decades, else linear from 0.
fn y_axis(lo: f64, hi: f64) -> (YScale, TickAxis) {
    if hi / lo > 100.0 {
        let (bottom, top) = (lo.log10().floor(), hi.log10().ceil());
        let few = top - bottom <= 4.0;
        let (mut bold, mut light) = (Vec::new(), Vec::new());
        let mut decade = bottom;
        while decade <= top {
            bold.push(decade);
            if decade < top {
                for m in 2..=9 {
                    let tick = decade + f64::from(m).log10();
                    if few && (m == 2 || m == 5) {
                        bold.push(tick);
                    } else {
                        light.push(tick);
                    }
                }
            }
            decade += 1.0;
        }
        let axis = TickAxis {
            range: bottom..top,
            bold,
            light,
        };
        (YScale::Log, axis)
    } else {
        let step = nice_step(hi / 6.0);
        let steps = (hi * 1.05 / step).ceil().max(1.0) as u32;
        let axis = TickAxis {
            range: 0.0..f64::from(steps) * step,
            bold: (0..=steps).map(|i| f64::from(i) * step).collect(),
            light: (0..steps).map(|i| (f64::from(i) + 0.5) * step).collect(),
        };
        (YScale::Linear, axis)
    }
}

/// Builds the chart; plotters' error type is generic over the backend, hence the boxed error.
fn draw_chart(
    path: &Path,
    title: &str,
    stages: &[StageLatency],
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use plotters::prelude::*;

    let curves: Vec<(&str, Vec<(f64, f64)>)> = stages
        .iter()
        .filter(|s| !s.histogram.is_empty())
        .map(|s| (s.stage.as_str(), percentile_curve(&s.histogram)))
        .collect();

    let points = || curves.iter().flat_map(|(_, c)| c.iter());
    let deepest = points().map(|p| p.0).fold(0.0_f64, f64::max);
    let decades = deepest.ceil().max(5.0) as u32;
    let lo = points().map(|p| p.1.max(1.0)).fold(f64::INFINITY, f64::min);
    let hi = points().map(|p| p.1).fold(0.0_f64, f64::max);
    let (lo, hi) = if lo.is_finite() && hi >= lo {
        (lo, hi)
    } else {
        (1.0, 1000.0)
    };
    let (scale, y) = y_axis(lo, hi);
    let x = TickAxis {
        range: 0.0..f64::from(decades),
        bold: (0..=decades).map(f64::from).collect(),
        light: Vec::new(),
    };

    let root = SVGBackend::new(path, PLOT_SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .margin_right(36) // room for the last percentile label, centred on the right edge
        .x_label_area_size(45)
        .y_label_area_size(75)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ns)")
        .x_label_formatter(&|x| percentile_label(*x))
        .y_label_formatter(&|y| ns_label(scale.to_ns(*y)))
        .draw()?;

    for (i, (name, curve)) in curves.iter().enumerate() {
        let (r, g, b) = SERIES_COLORS[i % SERIES_COLORS.len()];
        let style = RGBColor(r, g, b).stroke_width(2);
        chart
            .draw_series(
                LineSeries::new(curve.iter().map(|&(x, ns)| (x, scale.to_axis(ns))), style)
                    // A histogram of one bucket has a single row below 100 %: mark it.
                    .point_size(if curve.len() < 2 { 3 } else { 0 }),
            )?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    if !curves.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// A 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let magnitude = 10_f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * magnitude)
        .max(1.0)
}

/// The percentile at `decades` = `log10(1/(1-p))`: `0%`, `90%`, `99%`, `99.9%`, ...
fn percentile_label(decades: f64) -> String {
    match decades.round() as u32 {
        0 => "0%".to_string(),
        1 => "90%".to_string(),
        2 => "99%".to_string(),
        n => format!("99.{}%", "9".repeat(n as usize - 2)),
    }
}

/// `ns` nanoseconds with three significant digits at most, in ns, µs, ms or s.
fn ns_label(ns: f64) -> String {
    if ns.is_nan() || ns <= 0.0 || ns.is_infinite() {
        return "0 ns".to_string();
    }
    // Three significant digits first, so 999.9999 (10^3 computed from its log) reads "1 µs".
    let unit_of_third_digit = 10_f64.powf(ns.log10().floor() - 2.0);
    let ns = (ns / unit_of_third_digit).round() * unit_of_third_digit;
    let (value, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "µs")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    let text = format!("{value:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text} {unit}")
}
