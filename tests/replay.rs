//! End to end on the real ITCH sample (`shared/data/12302019_SNIPPET.NASDAQ_ITCH50`): counts,
//! timestamps and symbols checked against this test's own reading of the bytes and against the
//! counts documented in `shared/data/SOURCES.md`; the replayed books checked against an
//! independent model; `.gz` input checked through the library and the CLI.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::process::Command;

use tickwatch::book::{BookConfig, BookStats, Books};
use tickwatch::feed::gz;
use tickwatch::inspect::{inspect, InspectOptions, Summary};
use tickwatch::itch::{decode, Message, Side};
use tickwatch::replay::replay;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");
const SAMPLE: &str = "12302019_SNIPPET.NASDAQ_ITCH50";
const BIN: &str = env!("CARGO_BIN_EXE_tickwatch");

/// The counts by type that SOURCES.md documents for the sample.
const DOCUMENTED: [(char, u64); 11] = [
    ('A', 367),
    ('F', 193),
    ('U', 225),
    ('D', 167),
    ('E', 28),
    ('X', 6),
    ('C', 1),
    ('P', 4),
    ('Q', 4),
    ('I', 4),
    ('S', 1),
];

fn sample_path() -> String {
    format!("{DATA}/{SAMPLE}")
}

fn sample() -> Vec<u8> {
    std::fs::read(sample_path()).expect("reading the ITCH sample")
}

/// The message bodies (type byte first) with their frame offsets, from this test's own walk.
fn bodies(buf: &[u8]) -> Vec<(usize, &[u8])> {
    let mut out = Vec::new();
    let mut p = 0;
    while p < buf.len() {
        let n = u16::from_be_bytes([buf[p], buf[p + 1]]) as usize;
        out.push((p, &buf[p + 2..p + 2 + n]));
        p += 2 + n;
    }
    assert_eq!(p, buf.len(), "the sample is not cleanly framed");
    out
}

fn be(b: &[u8]) -> u64 {
    b.iter().fold(0, |a, &x| a << 8 | x as u64)
}

/// Timestamp: 6 bytes at offset 5.
fn ts(body: &[u8]) -> u64 {
    be(&body[5..11])
}

fn locate(body: &[u8]) -> u16 {
    be(&body[1..3]) as u16
}

fn my_counts(buf: &[u8]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for (_, b) in bodies(buf) {
        *m.entry((b[0] as char).to_string()).or_insert(0) += 1;
    }
    m
}

#[test]
fn sample_counts_by_type() {
    let buf = sample();
    assert_eq!(buf.len(), 35_570);
    let mine = my_counts(&buf);
    let documented: BTreeMap<String, u64> = DOCUMENTED
        .iter()
        .map(|&(t, n)| (t.to_string(), n))
        .collect();
    assert_eq!(
        mine, documented,
        "the test's own count disagrees with SOURCES.md"
    );
    assert_eq!(mine.values().sum::<u64>(), 1000);
    for threads in [1, 2, 8] {
        let s = inspect(
            &buf,
            InspectOptions {
                threads,
                lenient: false,
            },
        )
        .unwrap();
        assert_eq!(s.by_type, mine, "threads {threads}");
        assert_eq!(s.messages, 1000);
        assert_eq!(s.bytes, 35_570);
        assert_eq!(s.stocks, 0, "no directory messages after 09:30");
        assert!(s.skipped_unknown_types.is_empty());
        assert_eq!(s.skipped_bad_lengths, 0);
        assert_eq!(s.first_unknown_offset, None);
    }
}

#[test]
fn sample_timestamps() {
    let buf = sample();
    let b = bodies(&buf);
    let stamps: Vec<u64> = b.iter().map(|(_, m)| ts(m)).collect();
    assert!(
        stamps.windows(2).all(|w| w[0] <= w[1]),
        "timestamps decrease in the sample"
    );
    let (first, last) = (stamps[0], *stamps.last().unwrap());
    // SOURCES.md: 09:30:00.000000 to 09:30:00.002365, to the (rounded) microsecond.
    let open = 34_200_000_000_000u64;
    let micros = |t: u64| (t - open + 500) / 1_000;
    assert_eq!(micros(first), 0, "first {first}");
    assert_eq!(micros(last), 2_365, "last {last}");
    let s = inspect(
        &buf,
        InspectOptions {
            threads: 1,
            lenient: false,
        },
    )
    .unwrap();
    assert_eq!(s.first_timestamp_ns, Some(first));
    assert_eq!(s.last_timestamp_ns, Some(last));
    assert_eq!(s.timestamp_regressions, 0);
    assert_eq!(s.first_regression_offset, None);
    // Every decoded timestamp equals the test's own reading of the 6 bytes.
    for (off, body) in &b {
        assert_eq!(decode(body, *off as u64).unwrap().timestamp(), ts(body));
    }
    // The one system event: 'Q', start of market hours, at 09:30:00.000076.
    let (off, sys) = b.iter().find(|(_, m)| m[0] == b'S').unwrap();
    assert_eq!(sys[11], b'Q');
    assert_eq!(micros(ts(sys)), 76);
    match decode(sys, *off as u64).unwrap() {
        Message::SystemEvent(e) => assert_eq!(e.event_code, b'Q'),
        m => panic!("{m:?}"),
    }
}

#[test]
fn sample_symbols_and_adds() {
    let buf = sample();
    let b = bodies(&buf);
    // SOURCES.md: "A VIXM B 100 @21.33" is the first add.
    let (off, first) = b.iter().find(|(_, m)| m[0] == b'A').unwrap();
    assert_eq!(&first[24..32], b"VIXM    ");
    assert_eq!(
        (first[19], be(&first[20..24]), be(&first[32..36])),
        (b'B', 100, 213_300)
    );
    let Message::AddOrder(a) = decode(first, *off as u64).unwrap() else {
        panic!()
    };
    assert_eq!(
        (
            &a.stock,
            a.side,
            a.shares.get(),
            a.price.get(),
            a.order_ref.get()
        ),
        (b"VIXM    ", b'B', 100, 213_300, be(&first[11..19]))
    );
    // Every add decodes to what the test reads from the bytes, with a plausible symbol, side,
    // size and price.
    let mut symbols = HashSet::new();
    for (off, body) in &b {
        let m = decode(body, *off as u64).unwrap();
        if let Some(s) = m.stock() {
            let name = std::str::from_utf8(s).unwrap().trim_end();
            assert!(!name.is_empty() && name.len() <= 8, "{s:?}");
            assert!(
                name.bytes().all(|c| c.is_ascii_uppercase() || c == b'.'),
                "{name:?}"
            );
            assert!(s[name.len()..].iter().all(|&c| c == b' '), "{s:?}");
            symbols.insert(*s);
        }
        let (r, side, shares, stock, price) = match m {
            Message::AddOrder(a) => (
                a.order_ref.get(),
                a.side,
                a.shares.get(),
                a.stock,
                a.price.get(),
            ),
            Message::AddOrderMpid(a) => {
                assert!(
                    a.attribution.iter().all(|c| c.is_ascii_uppercase()),
                    "{:?}",
                    a.attribution
                );
                assert_eq!(&a.attribution[..], &body[36..40]);
                (
                    a.order_ref.get(),
                    a.side,
                    a.shares.get(),
                    a.stock,
                    a.price.get(),
                )
            }
            _ => continue,
        };
        assert_eq!(
            (r, side, shares as u64, &stock[..], price as u64),
            (
                be(&body[11..19]),
                body[19],
                be(&body[20..24]),
                &body[24..32],
                be(&body[32..36])
            )
        );
        assert!(side == b'B' || side == b'S');
        assert!(shares > 0 && shares < 10_000_000, "{shares}");
        assert!(price > 0 && price < 100_000_000, "price {price}"); // below $10,000
        assert_eq!(m.stock_locate(), locate(body));
    }
    // SOURCES.md: "about 185 symbols".
    assert!(
        (170..=200).contains(&symbols.len()),
        "{} symbols",
        symbols.len()
    );
}

/// The test's own book model: live orders by reference, and the counters `BookStats` keeps.
#[derive(Default)]
struct Model {
    live: HashMap<u64, (u16, u8, u32, u32)>, // locate, side, price, shares
    stats: BookStats,
    ever_added: HashSet<u64>,
    never_added_refs: u64,
}

impl Model {
    fn add(&mut self, r: u64, locate: u16, side: u8, price: u32, shares: u32) {
        self.ever_added.insert(r);
        match self.live.entry(r) {
            Entry::Occupied(_) => self.stats.duplicate_refs += 1,
            Entry::Vacant(v) => {
                v.insert((locate, side, price, shares));
                self.stats.adds += 1;
            }
        }
    }

    fn reduce(&mut self, r: u64, n: u32) -> bool {
        let Some(o) = self.live.get_mut(&r) else {
            self.stats.unknown_refs += 1;
            return false;
        };
        if n > o.3 {
            self.stats.overfills += 1;
        }
        o.3 -= n.min(o.3);
        if o.3 == 0 {
            self.live.remove(&r);
        }
        true
    }

    fn seen(&mut self, r: u64) {
        if !self.ever_added.contains(&r) {
            self.never_added_refs += 1;
        }
    }

    /// Applies one message read straight from its bytes (offsets from the specification).
    fn apply(&mut self, b: &[u8]) {
        let u32_at = |o: usize| be(&b[o..o + 4]) as u32;
        let u64_at = |o: usize| be(&b[o..o + 8]);
        match b[0] {
            b'A' | b'F' => self.add(u64_at(11), locate(b), b[19], u32_at(32), u32_at(20)),
            b'E' | b'C' => {
                self.seen(u64_at(11));
                if self.reduce(u64_at(11), u32_at(19)) {
                    self.stats.executions += 1;
                }
            }
            b'X' => {
                self.seen(u64_at(11));
                if self.reduce(u64_at(11), u32_at(19)) {
                    self.stats.cancels += 1;
                }
            }
            b'D' => {
                self.seen(u64_at(11));
                match self.live.remove(&u64_at(11)) {
                    Some(_) => self.stats.deletes += 1,
                    None => self.stats.unknown_refs += 1,
                }
            }
            b'U' => {
                self.seen(u64_at(11));
                match self.live.remove(&u64_at(11)) {
                    Some((loc, side, _, _)) => {
                        self.stats.replaces += 1;
                        self.add(u64_at(19), loc, side, u32_at(31), u32_at(27));
                    }
                    None => self.stats.unknown_refs += 1,
                }
            }
            b'P' => self.stats.trades += 1,
            b'Q' => self.stats.crosses += 1,
            b'B' => self.stats.broken_trades += 1,
            _ => {}
        }
    }

    /// Levels of one side, best first: (price, shares, orders).
    fn levels(&self, loc: u16, side: u8) -> Vec<(u32, u64, u32)> {
        let mut m: BTreeMap<u32, (u64, u32)> = BTreeMap::new();
        for &(l, s, p, n) in self.live.values() {
            if l == loc && s == side {
                let e = m.entry(p).or_default();
                e.0 += n as u64;
                e.1 += 1;
            }
        }
        let v = m.into_iter().map(|(p, (s, o))| (p, s, o));
        if side == b'B' {
            v.rev().collect()
        } else {
            v.collect()
        }
    }
}

#[test]
fn sample_replays_into_consistent_books() {
    let buf = sample();
    let mut model = Model::default();
    for (_, b) in bodies(&buf) {
        model.apply(b);
    }
    let mut books = Books::new(BookConfig::small());
    let r = replay(&buf, &mut books, None, false).unwrap();
    assert_eq!(r.messages, 1000);
    assert_eq!(
        (
            r.skipped_unknown_types,
            r.skipped_bad_lengths,
            r.stopped_early
        ),
        (0, 0, false)
    );
    let st = *books.stats();
    assert_eq!(st, model.stats);
    // The file starts mid-day: many of its references are to orders added before it begins.
    assert!(st.unknown_refs > 100, "{st:?}");
    assert_eq!(st.unknown_refs, model.never_added_refs);
    assert_eq!(
        st.duplicate_refs + st.overfills + st.bad_sides + st.locate_overflows,
        0,
        "{st:?}"
    );
    assert_eq!(st.order_overflows + st.level_overflows, 0);
    assert_eq!(st.trades, 4);
    assert_eq!(st.crosses, 4);
    books.check().unwrap();
    // A subset of a real (uncrossed) book is uncrossed.
    assert_eq!(books.crossed(), Vec::<u16>::new());
    assert_eq!(books.live_orders(), model.live.len());
    for (r, &(loc, side, price, shares)) in &model.live {
        let o = books.orders().get(*r).unwrap();
        assert_eq!(
            (o.locate, o.side, o.price, o.shares),
            (loc, side, price, shares),
            "order {r}"
        );
    }
    let locates: HashSet<u16> = model.live.values().map(|o| o.0).collect();
    assert_eq!(books.active_locates().collect::<HashSet<_>>(), locates);
    for &loc in &locates {
        for (side, s) in [(Side::Buy, b'B'), (Side::Sell, b'S')] {
            let got: Vec<_> = books
                .depth(loc, side)
                .map(|l| (l.price, l.shares, l.orders))
                .collect();
            assert_eq!(got, model.levels(loc, s), "locate {loc} side {s}");
        }
    }
    // The first add's stock is named by its locate.
    let first_add = bodies(&buf)
        .into_iter()
        .find(|(_, b)| b[0] == b'A')
        .unwrap()
        .1;
    assert_eq!(books.symbol(locate(first_add)), Some(b"VIXM    "));
    assert_eq!(books.locate_of(b"VIXM    "), Some(locate(first_add)));
}

#[test]
fn sample_replay_until_stops_at_the_time() {
    let buf = sample();
    let b = bodies(&buf);
    let mid = ts(b[500].1);
    let upto = b.iter().filter(|(_, m)| ts(m) <= mid).count();
    let mut model = Model::default();
    for (_, m) in &b[..upto] {
        model.apply(m);
    }
    let mut books = Books::new(BookConfig::small());
    let r = replay(&buf, &mut books, Some(mid), false).unwrap();
    assert!(r.stopped_early);
    assert_eq!(r.messages, upto as u64);
    assert_eq!(*books.stats(), model.stats);
    assert_eq!(books.last_timestamp(), mid);
    assert_eq!(books.live_orders(), model.live.len());
    books.check().unwrap();
}

// ---------------------------------------------------------------------------------------------
// .gz input.

fn write_gz(dir: &Path, name: &str, data: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&p).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(data).unwrap();
    enc.finish().unwrap().sync_all().unwrap();
    p
}

fn summary_of(path: &Path) -> Summary {
    inspect(
        &std::fs::read(path).unwrap(),
        InspectOptions {
            threads: 2,
            lenient: false,
        },
    )
    .unwrap()
}

fn same(a: &Summary, b: &Summary) {
    assert_eq!(
        serde_json::to_value(a).unwrap(),
        serde_json::to_value(b).unwrap()
    );
}

#[test]
fn gz_resolves_to_an_identical_cache_and_reuses_it() {
    let raw = sample();
    let dir = tempfile::tempdir().unwrap();
    let gzp = write_gz(dir.path(), "day.NASDAQ_ITCH50.gz", &raw);
    assert!(gz::is_gzip(&gzp).unwrap());
    assert!(!gz::is_gzip(Path::new(&sample_path())).unwrap());
    // A non-gzip input resolves to itself.
    assert_eq!(
        gz::resolve(Path::new(&sample_path()), None).unwrap(),
        Path::new(&sample_path())
    );

    let cache = gz::resolve(&gzp, None).unwrap();
    assert_eq!(cache, dir.path().join("day.NASDAQ_ITCH50"));
    assert_eq!(std::fs::read(&cache).unwrap(), raw);
    same(&summary_of(&cache), &summary_of(Path::new(&sample_path())));

    // Reused: a second resolve does not rewrite a cache newer than the .gz. Prove it by putting
    // different (valid) content in the cache: the first 10 frames.
    let ten: usize = bodies(&raw)[..10].iter().map(|(_, b)| 2 + b.len()).sum();
    std::fs::write(&cache, &raw[..ten]).unwrap();
    assert_eq!(gz::resolve(&gzp, None).unwrap(), cache);
    assert_eq!(summary_of(&cache).messages, 10);

    // A .gz newer than its cache is decompressed again.
    let later =
        std::fs::metadata(&cache).unwrap().modified().unwrap() + std::time::Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&gzp)
        .unwrap()
        .set_modified(later)
        .unwrap();
    assert_eq!(gz::resolve(&gzp, None).unwrap(), cache);
    assert_eq!(std::fs::read(&cache).unwrap(), raw);

    // An explicit cache path.
    let elsewhere = dir.path().join("sub-cache.itch");
    assert_eq!(gz::resolve(&gzp, Some(&elsewhere)).unwrap(), elsewhere);
    assert_eq!(std::fs::read(&elsewhere).unwrap(), raw);
    // No temporary files are left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");
}

// Regression: a cache newer than its `.gz` was trusted on its timestamp alone, so a cache left by
// another feed (the `.gz` replaced by an older file) was served.
#[test]
fn gz_cache_of_another_feed_is_not_served_on_its_timestamp() {
    let raw = sample();
    let dir = tempfile::tempdir().unwrap();
    let gzp = write_gz(dir.path(), "day.NASDAQ_ITCH50.gz", &raw);
    let cache = gz::resolve(&gzp, None).unwrap();
    assert!(gz::stamp_path(&cache).exists());

    // Another feed (the first 10 frames) under the same name, older than the cache.
    let ten: usize = bodies(&raw)[..10].iter().map(|(_, b)| 2 + b.len()).sum();
    write_gz(dir.path(), "day.NASDAQ_ITCH50.gz", &raw[..ten]);
    let earlier =
        std::fs::metadata(&cache).unwrap().modified().unwrap() - std::time::Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&gzp)
        .unwrap()
        .set_modified(earlier)
        .unwrap();
    assert_eq!(gz::resolve(&gzp, None).unwrap(), cache);
    assert_eq!(std::fs::read(&cache).unwrap(), &raw[..ten]);
    // Now it matches its source: reused, not rewritten.
    let made = std::fs::metadata(&cache).unwrap().modified().unwrap();
    assert_eq!(gz::resolve(&gzp, None).unwrap(), cache);
    assert_eq!(std::fs::metadata(&cache).unwrap().modified().unwrap(), made);

    // A cache without a record of its source (an older tickwatch's) is made again.
    std::fs::remove_file(gz::stamp_path(&cache)).unwrap();
    std::fs::write(&cache, b"stale").unwrap();
    assert_eq!(gz::resolve(&gzp, None).unwrap(), cache);
    assert_eq!(std::fs::read(&cache).unwrap(), &raw[..ten]);
}

#[test]
fn gz_corrupt_stream_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let gzp = write_gz(dir.path(), "bad.gz", &sample());
    let mut bytes = std::fs::read(&gzp).unwrap();
    let n = bytes.len();
    bytes.truncate(n / 2);
    std::fs::write(&gzp, &bytes).unwrap();
    let e = gz::resolve(&gzp, None).unwrap_err();
    assert!(format!("{e:#}").contains("bad.gz"), "{e:#}");
    // No (half-written) cache is left to be trusted by a later run.
    assert!(!dir.path().join("bad").exists());
}

fn cli_inspect_json(path: &Path, extra: &[&str]) -> serde_json::Value {
    let out = Command::new(BIN)
        .arg("inspect")
        .arg(path)
        .arg("--json")
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let o = v.as_object_mut().unwrap();
    for k in [
        "file",
        "decode_seconds",
        "messages_per_second",
        "chunks",
        "resync_fallbacks",
    ] {
        o.remove(k);
    }
    v
}

#[test]
fn gz_cli_inspects_identically_and_reuses_the_cache() {
    let raw = sample();
    let dir = tempfile::tempdir().unwrap();
    let gzp = write_gz(dir.path(), "s.NASDAQ_ITCH50.gz", &raw);
    let plain = cli_inspect_json(Path::new(&sample_path()), &[]);
    let mine = my_counts(&raw);
    assert_eq!(plain["messages"], 1000);
    assert_eq!(plain["by_type"], serde_json::to_value(&mine).unwrap());
    assert_eq!(cli_inspect_json(&gzp, &[]), plain);
    let cache = dir.path().join("s.NASDAQ_ITCH50");
    assert_eq!(std::fs::read(&cache).unwrap(), raw);
    // Second run: the cache is used as it is (prove it with different content in it).
    let ten: usize = bodies(&raw)[..10].iter().map(|(_, b)| 2 + b.len()).sum();
    std::fs::write(&cache, &raw[..ten]).unwrap();
    assert_eq!(cli_inspect_json(&gzp, &[])["messages"], 10);
    // --cache puts it elsewhere.
    let other = dir.path().join("other.bin");
    let v = cli_inspect_json(&gzp, &["--cache", other.to_str().unwrap()]);
    assert_eq!(v, plain);
    assert_eq!(std::fs::read(&other).unwrap(), raw);
}
