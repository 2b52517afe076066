//! Latency histograms: `.hgrm` percentile distributions (against output of Java HdrHistogram
//! 2.1.11's `outputPercentileDistribution(out, 5, 1.0)`), the percentile chart, `Percentiles`.

use hdrhistogram::Histogram;
use tickwatch::latency::{histogram, percentile_rows, write_hgrm, Percentiles};
#[cfg(feature = "plot")]
use tickwatch::latency::{plot_svg, StageLatency};

fn hgrm(h: &Histogram<u64>) -> String {
    let mut out = Vec::new();
    write_hgrm(&mut out, h).expect("writing to a Vec cannot fail");
    String::from_utf8(out).expect("hgrm is ASCII")
}

/// 1, 2, ..., n, once each.
fn uniform(n: u64) -> Histogram<u64> {
    let mut h = histogram();
    for v in 1..=n {
        h.record(v).unwrap();
    }
    h
}

const HEADER: &str = "       Value     Percentile TotalCount 1/(1-Percentile)\n\n";

/// Java: `new Histogram(1, 3_600_000_000_000L, 3)`, values 1..=10 recorded once each,
/// `outputPercentileDistribution(System.out, 5, 1.0)`. The crate's `iter_quantiles(5)` would put 4
/// at 30 % and 7 at 60 %, not 3 and 6 (it steps in fractions, Java in percents).
const JAVA_ONE_TO_TEN: &str = "       Value     Percentile TotalCount 1/(1-Percentile)

       1.000 0.000000000000          1           1.00
       1.000 0.100000000000          1           1.11
       2.000 0.200000000000          2           1.25
       3.000 0.300000000000          3           1.43
       4.000 0.400000000000          4           1.67
       5.000 0.500000000000          5           2.00
       6.000 0.550000000000          6           2.22
       6.000 0.600000000000          6           2.50
       7.000 0.650000000000          7           2.86
       7.000 0.700000000000          7           3.33
       8.000 0.750000000000          8           4.00
       8.000 0.775000000000          8           4.44
       8.000 0.800000000000          8           5.00
       9.000 0.825000000000          9           5.71
       9.000 0.850000000000          9           6.67
       9.000 0.875000000000          9           8.00
       9.000 0.887500000000          9           8.89
       9.000 0.900000000000          9          10.00
      10.000 0.912500000000         10          11.43
      10.000 1.000000000000         10
#[Mean    =        5.500, StdDeviation   =        2.872]
#[Max     =       10.000, Total count    =           10]
#[Buckets =           32, SubBuckets     =         2048]
";

/// Java, same histogram, 0 recorded 15 times and 1 once: the mean 0.0625 prints as `0.063`
/// (`java.util.Formatter` rounds half up; Rust's `{:.3}` would print `0.062`).
const JAVA_FIFTEEN_ZEROS_AND_A_ONE: &str = "       Value     Percentile TotalCount 1/(1-Percentile)

       0.000 0.000000000000         15           1.00
       0.000 0.100000000000         15           1.11
       0.000 0.200000000000         15           1.25
       0.000 0.300000000000         15           1.43
       0.000 0.400000000000         15           1.67
       0.000 0.500000000000         15           2.00
       0.000 0.550000000000         15           2.22
       0.000 0.600000000000         15           2.50
       0.000 0.650000000000         15           2.86
       0.000 0.700000000000         15           3.33
       0.000 0.750000000000         15           4.00
       0.000 0.775000000000         15           4.44
       0.000 0.800000000000         15           5.00
       0.000 0.825000000000         15           5.71
       0.000 0.850000000000         15           6.67
       0.000 0.875000000000         15           8.00
       0.000 0.887500000000         15           8.89
       0.000 0.900000000000         15          10.00
       0.000 0.912500000000         15          11.43
       0.000 0.925000000000         15          13.33
       0.000 0.937500000000         15          16.00
       1.000 0.943750000000         16          17.78
       1.000 1.000000000000         16
#[Mean    =        0.063, StdDeviation   =        0.242]
#[Max     =        1.000, Total count    =           16]
#[Buckets =           32, SubBuckets     =         2048]
";

#[test]
fn hgrm_is_byte_identical_to_java_for_one_to_ten() {
    assert_eq!(hgrm(&uniform(10)), JAVA_ONE_TO_TEN);
}

#[test]
fn hgrm_rounds_like_java_formatter() {
    let mut h = histogram();
    h.record_n(0, 15).unwrap();
    h.record(1).unwrap();
    assert_eq!(hgrm(&h), JAVA_FIFTEEN_ZEROS_AND_A_ONE);
}

#[test]
fn hgrm_of_empty_histogram_is_header_and_zero_footer() {
    let expected = format!(
        "{HEADER}#[Mean    =        0.000, StdDeviation   =        0.000]
#[Max     =        0.000, Total count    =            0]
#[Buckets =           32, SubBuckets     =         2048]
"
    );
    assert_eq!(hgrm(&histogram()), expected);
    assert_eq!(percentile_rows(&histogram()).count(), 0);
}

/// A parsed `.hgrm` row: value, percentile, total count, `1/(1-p)` (absent on the 100 % row).
#[derive(Debug)]
struct Row {
    value: f64,
    percentile: f64,
    count: u64,
    inverse: Option<f64>,
}

/// Parses `text` into its rows and the footer's numbers, checking the layout on the way.
fn parse(text: &str) -> (Vec<Row>, Vec<f64>) {
    let body = text
        .strip_prefix(HEADER)
        .expect("header line, then a blank line");
    let mut rows = Vec::new();
    let mut footer = Vec::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("#[") {
            // "#[Mean    =     5000.500, StdDeviation   =     2886.751]"
            for part in rest.trim_end_matches(']').split(", ") {
                let (_, number) = part.split_once('=').expect("name = number");
                footer.push(number.trim().parse::<f64>().expect("footer number"));
            }
            continue;
        }
        assert!(footer.is_empty(), "row after the footer: {line:?}");
        let fields: Vec<&str> = line.split_whitespace().collect();
        // `%12.3f %2.12f %10d %14.2f`, or without the last column on the final row.
        match fields.len() {
            4 => assert_eq!(line.len(), 12 + 1 + 14 + 1 + 10 + 1 + 14, "{line:?}"),
            3 => assert_eq!(line.len(), 12 + 1 + 14 + 1 + 10, "{line:?}"),
            _ => panic!("bad row {line:?}"),
        }
        assert!(
            fields[1].len() == 14 && fields[1].as_bytes()[1] == b'.',
            "{line:?}"
        );
        rows.push(Row {
            value: fields[0].parse().unwrap(),
            percentile: fields[1].parse().unwrap(),
            count: fields[2].parse().unwrap(),
            inverse: fields.get(3).map(|f| f.parse().unwrap()),
        });
    }
    (rows, footer)
}

/// 1..=10000 once each, plus a slow tail: 25 values of 1 ms and 3 of 40 ms.
fn with_tail() -> Histogram<u64> {
    let mut h = uniform(10_000);
    h.record_n(1_000_000, 25).unwrap();
    h.record_n(40_000_000, 3).unwrap();
    h
}

#[test]
fn hgrm_rows_and_footer_parse_back() {
    let h = with_tail();
    let (rows, footer) = parse(&hgrm(&h));
    assert!(rows.len() > 20, "{} rows", rows.len());
    for pair in rows.windows(2) {
        assert!(pair[0].value <= pair[1].value, "{pair:?}");
        assert!(pair[0].percentile <= pair[1].percentile, "{pair:?}");
        assert!(pair[0].count <= pair[1].count, "{pair:?}");
    }
    for r in &rows {
        assert!((0.0..=1.0).contains(&r.percentile), "{r:?}");
        // The row's count reaches its percentile.
        assert!(
            r.count as f64 >= r.percentile * h.len() as f64 - 1e-6,
            "{r:?}"
        );
        match r.inverse {
            Some(inverse) => {
                assert!(r.percentile < 1.0);
                assert!(
                    (inverse - 1.0 / (1.0 - r.percentile)).abs() <= 0.005 + 1e-9,
                    "{r:?}"
                );
            }
            None => assert_eq!(r.percentile, 1.0),
        }
    }
    // Only the last row is at 100 %, with every value counted, at the max.
    let last = rows.last().unwrap();
    assert!(last.inverse.is_none() && rows[..rows.len() - 1].iter().all(|r| r.inverse.is_some()));
    assert_eq!(last.count, h.len());
    assert_eq!(last.value, h.max() as f64);
    assert_eq!(rows[0].percentile, 0.0);
    assert_eq!(rows[0].value, 1.0);

    // #[Mean, StdDeviation] #[Max, Total count] #[Buckets, SubBuckets]
    assert_eq!(footer.len(), 6, "{footer:?}");
    assert!(
        (footer[0] - h.mean()).abs() <= 0.0005 + 1e-9,
        "{} vs {}",
        footer[0],
        h.mean()
    );
    assert!((footer[1] - h.stdev()).abs() <= 0.0005 + 1e-9);
    assert_eq!(footer[2], h.max() as f64);
    assert_eq!(footer[3], h.len() as f64);
    assert_eq!(footer[4], f64::from(h.buckets()));
    assert_eq!(footer[5], 2048.0);
}

#[test]
fn hgrm_median_row_is_the_median_within_precision() {
    let h = uniform(10_000);
    let (rows, _) = parse(&hgrm(&h));
    let median = rows
        .iter()
        .find(|r| r.percentile == 0.5)
        .expect("a 50 % row");
    // 3 significant digits: within 0.1 % of the true median, and the histogram's own answer.
    assert!((median.value - 5000.0).abs() <= 5.0, "{median:?}");
    assert_eq!(median.value, h.value_at_quantile(0.5) as f64);
    assert_eq!(median.count, 5003, "5000..=5003 share one bucket");
}

#[test]
fn percentile_rows_follow_javas_tick_schedule() {
    let h = uniform(10_000);
    let rows: Vec<_> = percentile_rows(&h).collect();
    // 5 ticks per half distance: 10 % steps to 50 %, 5 % to 75 %, 2.5 % to 87.5 %, ...
    let expected = [
        0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.775, 0.8, 0.825, 0.85, 0.875,
        0.8875,
    ];
    for (row, want) in rows.iter().zip(expected) {
        assert!((row.percentile - want).abs() < 1e-12, "{row:?} vs {want}");
        // With one value per ns up to 2048 and 3 significant digits above, every row's value is
        // the highest value of the bucket holding the `percentile`-th value.
        let nth = ((want * 10_000.0).round() as u64).max(1);
        assert_eq!(row.value, h.highest_equivalent(nth), "{row:?}");
    }
    let last = rows.last().unwrap();
    assert_eq!((last.percentile, last.total_count), (1.0, 10_000));
    assert_eq!(last.value, h.max());
    assert!(rows[..rows.len() - 1].iter().all(|r| r.percentile < 1.0));
}

#[test]
fn single_value_histogram_has_a_zero_and_a_hundred_percent_row() {
    let mut h = histogram();
    h.record_n(42, 7).unwrap();
    let rows: Vec<_> = percentile_rows(&h).collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        (rows[0].value, rows[0].percentile, rows[0].total_count),
        (42, 0.0, 7)
    );
    assert_eq!(
        (rows[1].value, rows[1].percentile, rows[1].total_count),
        (42, 1.0, 7)
    );
}

#[cfg(feature = "plot")]
fn stage(name: &str, h: &Histogram<u64>) -> StageLatency {
    StageLatency::merged(name, "test span", [h])
}

#[test]
#[cfg(feature = "plot")]
fn plot_svg_draws_every_non_empty_stage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latency.svg");
    let mut fast = histogram();
    for v in 80..=120 {
        fast.record_n(v, 100).unwrap();
    }
    let stages = [
        stage("book update", &with_tail()),
        stage("ring hop", &fast),
        stage("idle stage", &histogram()),
        stage("decode <a&b>", &uniform(500)),
    ];
    plot_svg(&path, "tickwatch: latency by percentile", &stages).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
    assert!(svg.contains(r#"width="800" height="500""#));
    assert!(svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("tickwatch: latency by percentile"));
    assert!(svg.contains("book update") && svg.contains("ring hop"));
    assert!(
        svg.contains("decode &lt;a&amp;b&gt;"),
        "stage names are escaped"
    );
    assert!(!svg.contains("idle stage"), "empty histograms are skipped");
    // The percentile axis, and a log latency axis (1 ns .. 40 ms spans > 2 decades).
    for label in [
        "0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "1 µs", "1 ms",
    ] {
        assert!(
            svg.contains(&format!(">\n{label}\n<")),
            "no axis label {label:?}"
        );
    }
    // One line per non-empty stage, plus its legend swatch, in the first three series colours.
    let lines = |colour: &str| {
        let style = format!(r#"stroke="{colour}" stroke-width="2""#);
        svg.matches(style.as_str()).count()
    };
    assert_eq!(svg.matches(r#"stroke-width="2""#).count(), 6);
    for colour in ["#1F77B4", "#FF7F0E", "#2CA02C"] {
        assert_eq!(lines(colour), 2, "{colour}");
    }
}

#[test]
#[cfg(feature = "plot")]
fn plot_svg_uses_a_linear_axis_for_a_narrow_range() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("narrow.svg");
    let mut h = histogram();
    for v in 1000..=1500 {
        h.record(v).unwrap();
    }
    plot_svg(&path, "narrow", &[stage("hop", &h)]).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.contains(">\n0 ns\n<"), "a linear axis starts at 0");
    assert!(svg.contains("hop"));
}

#[test]
#[cfg(feature = "plot")]
fn plot_svg_without_data_still_writes_a_chart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.svg");
    plot_svg(&path, "no samples", &[stage("idle", &histogram())]).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("no samples"));
    assert!(!svg.contains(r#"stroke-width="2""#), "no series lines");
}

#[test]
#[cfg(feature = "plot")]
fn plot_svg_reports_an_unwritable_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no such dir").join("x.svg");
    let err = plot_svg(&path, "t", &[stage("s", &uniform(10))]).unwrap_err();
    assert!(format!("{err:#}").contains("x.svg"), "{err:#}");
}

#[test]
fn percentiles_of_a_uniform_distribution() {
    let h = uniform(10_000);
    let p = Percentiles::of(&h);
    let within = |got: u64, want: f64| (got as f64 - want).abs() <= want * 0.001;
    assert_eq!(p.count, 10_000);
    assert!((p.mean - 5000.5).abs() <= 5000.5 * 0.001, "{}", p.mean);
    assert!(within(p.p50, 5000.0), "{p:?}");
    assert!(within(p.p90, 9000.0), "{p:?}");
    assert!(within(p.p99, 9900.0), "{p:?}");
    assert!(within(p.p999, 9990.0), "{p:?}");
    assert!(within(p.p9999, 9999.0), "{p:?}");
    // The max is reported as the highest value of its bucket: 10000..=10007 share one.
    assert!(within(p.max, 10_000.0), "{p:?}");
    assert_eq!(p.max, h.highest_equivalent(10_000));
    assert!(p.p50 <= p.p90 && p.p90 <= p.p99 && p.p99 <= p.p999 && p.p999 <= p.p9999);
    assert!(p.p9999 <= p.max);
}

#[test]
fn percentiles_of_empty_histogram_are_zero() {
    assert_eq!(Percentiles::of(&histogram()), Percentiles::default());
}
