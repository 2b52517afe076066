//! Value parsers for the flags, each with its allowed range: a value outside it stops the command
//! before any work, with an error naming the flag (clap adds it) and the range. The limits are
//! what the code handles in bounded memory and time (measured on the 2-core, 23 GB test VM; see
//! the comments).

use clap::builder::RangedU64ValueParser;
use std::ops::RangeInclusive;
use std::time::Duration;
use tickwatch::itch::parse_time;

/// Shard workers, decode threads: every thread gets its rings, books and histograms (1,024
/// workers on the snippet: 3.4 GB, 3 s).
pub const THREADS: RangeInclusive<u64> = 1..=1024;
/// Cores to pin to: Linux's `cpu_set_t` holds 1,024.
pub const CORES: RangeInclusive<usize> = 0..=1023;
/// Slots per ring (rounded up to a power of two): 2^24 slots of 64 bytes is 1 GiB per ring.
pub const RING_SLOTS: RangeInclusive<u64> = 2..=1 << 24;
/// Live orders: 2^26 is 16 times the default; a 3-worker `run` prefaults 9.5 GB for it (13 s).
pub const ORDERS: RangeInclusive<u64> = 1..=1 << 26;
/// Price-level slots (a few per order).
pub const LEVELS: RangeInclusive<u64> = 1..=1 << 28;
/// Participants a bars worker tracks.
pub const PARTICIPANTS: RangeInclusive<u64> = 1..=1 << 16;
/// Messages between watermark marks.
pub const MARK_EVERY: RangeInclusive<u64> = 1..=1 << 20;
/// Messages to generate: 10^10 is about 25 busy NASDAQ days (≈ 300 GB).
pub const MESSAGES: RangeInclusive<u64> = 1..=10_000_000_000;
/// Stocks: a stock locate is 16 bits, 0 is market-wide.
pub const SYMBOLS: RangeInclusive<u64> = 1..=65_535;
/// Book levels to print.
pub const DEPTH: RangeInclusive<u64> = 1..=1_000_000;
/// Timed repetitions of each kernel.
pub const REPEAT: RangeInclusive<u64> = 1..=1000;
/// Every N-th message timed.
pub const SAMPLE_EVERY: RangeInclusive<u64> = 1..=1 << 20;

/// VLAN IDs: 12 bits.
pub const VLAN_ID: RangeInclusive<u64> = 0..=4095;
/// `convert itch --drop-every`: leave out every N-th packet (1 drops them all).
pub const DROP_EVERY: RangeInclusive<u64> = 1..=1 << 32;
/// MoldUDP64 bytes per packet: 64 up to a 9000-byte jumbo frame's UDP payload.
pub const MOLD_PAYLOAD: RangeInclusive<u64> = 64..=8972;

/// Shortest window slide: the reader sends a watermark mark every slide across the feed's time
/// span, wherever there are messages or not. Measured: 1 ms bars of a generated feed spanning 17
/// hours take 30 s (1 worker; 20 s with 2), 100 µs ones minutes.
const MIN_SLIDE: Duration = Duration::from_millis(1);
/// Longest window, slide, offset, lateness or out-of-orderness: a day.
const DAY: Duration = Duration::from_secs(86_400);
/// Generated sessions: 2 s up to the real 6.5 hours.
const SESSION: (Duration, Duration) = (Duration::from_secs(2), Duration::from_secs(23_400));
/// Most episodes of each scenario per minute of session: at 10 a 6.5-hour session holds 3,900
/// of each and takes 30 s to write; the time grows faster than the rate.
const MAX_SCENARIO_RATE: f64 = 10.0;
/// Replay speeds: below 1/1000 a second of feed takes 17 minutes; above 10^6, use `max`.
const SPEEDS: RangeInclusive<f64> = 0.001..=1_000_000.0;

/// An integer flag within `range`, as `T`.
pub fn count<T>(range: RangeInclusive<u64>) -> RangedU64ValueParser<T>
where
    T: TryFrom<u64> + Clone + Send + Sync + 'static,
    <T as TryFrom<u64>>::Error: std::error::Error + Send + Sync + 'static,
{
    RangedU64ValueParser::<T>::new().range(range)
}

/// `s` as a duration within `lo..=hi` (`range` names it).
fn duration_within(s: &str, lo: Duration, hi: Duration, range: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d < lo || d > hi {
        return Err(format!("{s} is not in {range}"));
    }
    Ok(d)
}

/// `--window`, `--slide`.
pub fn window_len(s: &str) -> Result<Duration, String> {
    duration_within(s, MIN_SLIDE, DAY, "1ms..=24h")
}

/// `--offset`, `--lateness`, `--out-of-orderness`.
pub fn time_span(s: &str) -> Result<Duration, String> {
    duration_within(s, Duration::ZERO, DAY, "0s..=24h")
}

/// `--session`.
pub fn session(s: &str) -> Result<Duration, String> {
    duration_within(s, SESSION.0, SESSION.1, "2s..=6h30m")
}

/// `--scenario-rate`: episodes of each scenario per minute.
pub fn scenario_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= MAX_SCENARIO_RATE => Ok(v),
        _ => Err(format!("{s} is not in (0, {MAX_SCENARIO_RATE}]")),
    }
}

/// `--speed`: `None` is max.
#[derive(Clone, Copy, Debug)]
pub struct Speed(pub Option<f64>);

/// `max`, or a multiple of the feed's pace (`1`, `10`, `0.5`, `100x`).
pub fn speed(s: &str) -> Result<Speed, String> {
    if s.trim().eq_ignore_ascii_case("max") {
        return Ok(Speed(None));
    }
    let t = s.trim().trim_end_matches(['x', 'X']);
    match t.parse::<f64>() {
        Ok(v) if SPEEDS.contains(&v) => Ok(Speed(Some(v))),
        _ => Err(format!(
            "expected `max` or a number in {}..={} such as 1, 10 or 0.5",
            SPEEDS.start(),
            SPEEDS.end()
        )),
    }
}

/// `--checkpoint-every`: feed time with a unit (`10s`), or a message count (`5000000`).
pub fn checkpoint_every(s: &str) -> Result<tickwatch::engine::CkptEvery, String> {
    use tickwatch::engine::CkptEvery;
    let t = s.trim();
    if let Ok(n) = t.parse::<u64>() {
        return match n {
            0 => Err("a message count of at least 1".into()),
            n => Ok(CkptEvery::Messages(n)),
        };
    }
    match humantime::parse_duration(t) {
        Ok(d) if !d.is_zero() => Ok(CkptEvery::FeedNs(d.as_nanos().min(u64::MAX as u128) as u64)),
        _ => Err(format!(
            "expected feed time with a unit such as 10s or 500ms, or a message count such as 5000000; got {s:?}"
        )),
    }
}

/// A core number, or `none` (no pinning).
pub fn core(s: &str) -> Result<Option<usize>, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    match s.trim().parse::<u64>() {
        Ok(c) if c <= *CORES.end() as u64 => Ok(Some(c as usize)),
        Ok(c) => Err(format!(
            "core {c} is not available (core numbers are {}..={})",
            CORES.start(),
            CORES.end()
        )),
        Err(_) => Err(format!(
            "expected a core number in {}..={} or `none`",
            CORES.start(),
            CORES.end()
        )),
    }
}

/// A time of day.
pub fn time_of_day(s: &str) -> Result<u64, String> {
    parse_time(s)
        .ok_or_else(|| "expected HH:MM:SS[.fffffffff] in 00:00:00..=23:59:59.999999999".to_string())
}

/// `--group`: an IPv4 address and a port (1..=65535), `233.54.12.111:26477`.
pub fn group(s: &str) -> Result<std::net::SocketAddrV4, String> {
    match s.trim().parse::<std::net::SocketAddrV4>() {
        Ok(a) if a.port() != 0 => Ok(a),
        _ => Err("expected IPV4:PORT with a port in 1..=65535, such as 233.54.12.111:26477".into()),
    }
}

/// `--session`: a MoldUDP64 session name, 1..=10 printable ASCII characters.
pub fn mold_session(s: &str) -> Result<String, String> {
    if (1..=10).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(s.to_string())
    } else {
        Err("expected 1..=10 printable ASCII characters".into())
    }
}

/// `--date`: YYYY-MM-DD in 1970-01-01..=2199-12-31, as days since the Unix epoch.
pub fn date(s: &str) -> Result<u64, String> {
    let err = || "expected a date YYYY-MM-DD in 1970-01-01..=2199-12-31".to_string();
    let mut it = s.trim().splitn(3, '-').map(|p| p.parse::<u32>().ok());
    let (Some(Some(y)), Some(Some(m)), Some(Some(d))) = (it.next(), it.next(), it.next()) else {
        return Err(err());
    };
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days_in = [
        31,
        28 + u32::from(leap),
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1970..=2199).contains(&y)
        || !(1..=12).contains(&m)
        || d == 0
        || d > days_in[m as usize - 1]
    {
        return Err(err());
    }
    Ok(tickwatch::capture::days_from_civil(i64::from(y), m, d) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_rates_in_range() {
        assert!(window_len("1ns").is_err());
        assert_eq!(window_len("1ms"), Ok(Duration::from_millis(1)));
        assert!(window_len("25h").is_err());
        assert_eq!(time_span("0s"), Ok(Duration::ZERO));
        assert!(session("1s").is_err() && session("7h").is_err());
        assert!(scenario_rate("1e9").is_err() && scenario_rate("0").is_err());
        assert!(scenario_rate("NaN").is_err());
        assert_eq!(scenario_rate("0.2"), Ok(0.2));
        assert!(speed("1e-9").is_err() && speed("inf").is_err());
        assert_eq!(speed("10x").unwrap().0, Some(10.0));
        assert_eq!(core("none"), Ok(None));
        assert!(core("100000").is_err());
        assert!(group("233.54.12.111:0").is_err() && group("::1:5").is_err());
        assert_eq!(group("233.54.12.111:26477").unwrap().port(), 26477);
        assert!(mold_session("").is_err() && mold_session("ELEVENCHARS").is_err());
        assert_eq!(date("1970-01-01"), Ok(0));
        assert_eq!(date("2019-12-30"), Ok(18_260));
        assert!(date("2019-02-29").is_err() && date("2200-01-01").is_err());
    }
}
