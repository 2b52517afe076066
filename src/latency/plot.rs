//! The latency-by-percentile chart ([`plot_svg`]), drawn with plotters as pure SVG (only with
//! the `plot` feature, which the command line enables).

use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;

use super::{percentile_rows, StageLatency};

/// A chart that could not be drawn or written.
#[derive(Debug, thiserror::Error)]
#[error("drawing latency chart {}", path.display())]
pub struct PlotError {
    /// The chart's file.
    pub path: PathBuf,
    /// Why (plotters' error is generic over its backend, hence boxed).
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
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
/// the legend. The points are the rows [`write_hgrm`](super::write_hgrm) writes, less the final 100 % one (it has no
/// finite `1/(1-p)`). Stages with empty histograms are left out; with none left the chart has
/// axes and title only.
///
/// Pure SVG: text is emitted as `<text>` elements and laid out with plotters' approximate
/// metrics, so no font files or system font libraries are needed.
///
/// # Errors
/// When the file cannot be created or written.
pub fn plot_svg(path: &Path, title: &str, stages: &[StageLatency]) -> Result<(), PlotError> {
    draw_chart(path, title, stages).map_err(|source| PlotError {
        path: path.to_path_buf(),
        source,
    })
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
