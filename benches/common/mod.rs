//! Inputs shared by the criterion benches: the generated feed, written once to
//! `target/bench-data/` and memory-mapped, sized by `TICKWATCH_BENCH_MESSAGES` /
//! `TICKWATCH_BENCH_SYMBOLS`, and small under `cargo test --benches`.
#![allow(dead_code)] // each bench uses a different subset

use std::io::{BufWriter, Write};
use std::path::Path;
use tickwatch::bench::decode_fold;
use tickwatch::feed::{MapOptions, MappedFile};
use tickwatch::gen::{generate, GenConfig};

/// Generated messages by default (`TICKWATCH_BENCH_MESSAGES` overrides).
pub const DEFAULT_MESSAGES: u64 = 1_000_000;
/// Generated messages under `cargo test --benches`.
pub const TEST_MODE_MESSAGES: u64 = 50_000;
/// Stocks below [`LARGE_FROM`] messages (`TICKWATCH_BENCH_SYMBOLS` overrides).
pub const DEFAULT_SYMBOLS: u32 = 500;
/// Stocks from [`LARGE_FROM`] messages up: a full NASDAQ day's universe.
pub const LARGE_SYMBOLS: u32 = 8_000;
/// Feeds of at least this many messages use [`LARGE_SYMBOLS`].
pub const LARGE_FROM: u64 = 10_000_000;
/// Generator seed (the `tickwatch gen` default, so the CLI can reproduce the file).
pub const SEED: u64 = 1;

/// `1M`, `10M`, `50k`, or the plain count.
pub fn count_label(n: u64) -> String {
    if n % 1_000_000 == 0 {
        format!("{}M", n / 1_000_000)
    } else if n % 1_000 == 0 {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

pub fn env_number<T: std::str::FromStr>(var: &str) -> Option<T> {
    let v = std::env::var(var).ok()?;
    match v.replace('_', "").parse() {
        Ok(n) => Some(n),
        Err(_) => panic!("{var}={v:?} is not a number"),
    }
}

/// The generator arguments for this run: small under `cargo test --benches` (no `--bench` flag).
pub fn gen_config() -> GenConfig {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let messages = if bench_mode {
        env_number("TICKWATCH_BENCH_MESSAGES").unwrap_or(DEFAULT_MESSAGES)
    } else {
        TEST_MODE_MESSAGES
    };
    let symbols = env_number("TICKWATCH_BENCH_SYMBOLS").unwrap_or(if messages >= LARGE_FROM {
        LARGE_SYMBOLS
    } else {
        DEFAULT_SYMBOLS
    });
    // As `tickwatch gen`: hold messages / 20 live orders, at most 2 M.
    GenConfig {
        messages,
        symbols,
        live_orders: (messages / 20).clamp(1, 2_000_000),
        seed: SEED,
    }
}

/// Maps the generated feed for this run, writing it first if `target/bench-data/` lacks it (or
/// holds a file that no longer decodes to the expected count, e.g. after a generator change).
pub fn generated_input(root: &Path) -> (GenConfig, MappedFile) {
    let cfg = gen_config();
    let dir = root.join("target").join("bench-data");
    let path = dir.join(format!(
        "gen-{}m-{}s-{}l-seed{}.itch",
        cfg.messages, cfg.symbols, cfg.live_orders, cfg.seed
    ));
    if let Some(map) = map_if_valid(&path, cfg.messages) {
        return (cfg, map);
    }
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    write_feed(&cfg, &path);
    let map = map_if_valid(&path, cfg.messages).unwrap_or_else(|| {
        panic!(
            "{}: freshly generated file does not decode to {} messages",
            path.display(),
            cfg.messages
        )
    });
    (cfg, map)
}

pub fn map_if_valid(path: &Path, messages: u64) -> Option<MappedFile> {
    let map = MappedFile::open(path, MapOptions::default()).ok()?;
    (decode_fold(map.bytes()).ok()?.messages == messages).then_some(map)
}

/// Writes through a temporary name and renames, so a file under the final name is complete.
pub fn write_feed(cfg: &GenConfig, path: &Path) {
    eprintln!(
        "generating {} messages over {} stocks -> {}",
        cfg.messages,
        cfg.symbols,
        path.display()
    );
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let file = std::fs::File::create(&tmp).unwrap_or_else(|e| panic!("{}: {e}", tmp.display()));
    let mut out = BufWriter::with_capacity(1 << 20, file);
    generate(cfg, &mut out).unwrap_or_else(|e| panic!("generating {}: {e}", tmp.display()));
    out.flush()
        .unwrap_or_else(|e| panic!("{}: {e}", tmp.display()));
    drop(out);
    std::fs::rename(&tmp, path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
