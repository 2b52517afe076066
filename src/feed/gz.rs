//! Transparent `.gz` input: NASDAQ ships its sample days gzipped, and a gzip stream cannot be mapped.
//!
//! [`resolve`] decompresses a gzip file once into a cache file (by default the sibling with the `.gz`
//! removed) and returns that path for mapping. The cache is reused while it is newer than the `.gz`
//! **and** was made from that `.gz`: beside it, `CACHE.source` records the `.gz`'s size and a hash
//! of its first and last MiB (the last holds the gzip trailer: the CRC-32 and length of the whole
//! content), so a cache left by another feed is never served on its timestamp alone. The cache is
//! written to a temporary name and renamed into place, so an interrupted run never leaves a
//! half-written cache behind that a later run would trust.

use flate2::read::MultiGzDecoder;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// A `.gz` input that cannot be resolved to a mappable file.
#[derive(Debug, thiserror::Error)]
pub enum GzError {
    /// The input cannot be opened or read.
    #[error("opening {}", path.display())]
    Open {
        /// The input.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The cache would overwrite the input.
    #[error("{}: gzip input and cache path are the same file", .0.display())]
    SameFile(PathBuf),
    /// The gzip stream is corrupt or cannot be read.
    #[error("writing decompressed cache {}: decompressing {}", cache.display(), path.display())]
    Decompress {
        /// The input.
        path: PathBuf,
        /// The cache being written.
        cache: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The cache cannot be written or renamed into place.
    #[error("writing decompressed cache {}", cache.display())]
    Cache {
        /// The cache being written.
        cache: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// True when the file starts with the gzip magic bytes.
pub fn is_gzip(path: &Path) -> io::Result<bool> {
    let mut magic = [0u8; 2];
    let mut f = File::open(path)?;
    let n = f.read(&mut magic)?;
    Ok(n == 2 && magic == [0x1f, 0x8b])
}

/// The path to map for `path`: itself when it is not gzip, otherwise a decompressed cache.
///
/// `cache` overrides where the decompressed copy goes.
///
/// # Errors
/// I/O errors, and a corrupt gzip stream (reported with the path).
pub fn resolve(path: &Path, cache: Option<&Path>) -> Result<PathBuf, GzError> {
    let gzip = is_gzip(path).map_err(|source| GzError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    if !gzip {
        return Ok(path.to_path_buf());
    }
    let target = match cache {
        Some(c) => c.to_path_buf(),
        None => default_cache(path),
    };
    if target == path {
        return Err(GzError::SameFile(path.to_path_buf()));
    }
    let stamp = Stamp::of(path).map_err(|source| GzError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    if is_fresh(&target, path) && Stamp::read(&stamp_path(&target)) == Some(stamp) {
        return Ok(target);
    }
    let tmp = target.with_extension(format!("tmp{}", std::process::id()));
    let result = decompress(path, &tmp, &target, stamp);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    Ok(target)
}

/// Decompresses `path` into `tmp`, then renames it to `target` and records `stamp` beside it
/// (the old record removed first: a cache never sits beside another source's record).
fn decompress(path: &Path, tmp: &Path, target: &Path, stamp: Stamp) -> Result<(), GzError> {
    let cache = |source| GzError::Cache {
        cache: target.to_path_buf(),
        source,
    };
    let src = File::open(path).map_err(cache)?;
    let mut dec = MultiGzDecoder::new(BufReader::with_capacity(1 << 20, src));
    let mut out = BufWriter::with_capacity(1 << 20, File::create(tmp).map_err(cache)?);
    io::copy(&mut dec, &mut out).map_err(|source| GzError::Decompress {
        path: path.to_path_buf(),
        cache: target.to_path_buf(),
        source,
    })?;
    let file = out.into_inner().map_err(|e| cache(e.into_error()))?;
    file.sync_all().map_err(cache)?;
    let record = stamp_path(target);
    match fs::remove_file(&record) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(cache(e)),
        _ => {}
    }
    fs::rename(tmp, target).map_err(cache)?;
    fs::write(&record, stamp.line()).map_err(cache)
}

/// Where the record of a cache's source goes: `CACHE.source`.
pub fn stamp_path(cache: &Path) -> PathBuf {
    let mut name = cache.as_os_str().to_owned();
    name.push(".source");
    PathBuf::from(name)
}

/// What identifies a `.gz`: its size and a hash of its first and last [`Stamp::EDGE`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    hash: u64,
}

impl Stamp {
    /// Bytes hashed at each end.
    const EDGE: u64 = 1 << 20;
    const TAG: &'static str = "tickwatch gz cache v1";

    fn of(gz: &Path) -> io::Result<Stamp> {
        let mut f = File::open(gz)?;
        let len = f.metadata()?.len();
        let mut buf = Vec::with_capacity(2 * Self::EDGE as usize);
        (&mut f).take(Self::EDGE).read_to_end(&mut buf)?;
        let tail = len.saturating_sub(Self::EDGE).max(Self::EDGE.min(len));
        f.seek(SeekFrom::Start(tail))?;
        f.take(Self::EDGE).read_to_end(&mut buf)?;
        Ok(Stamp {
            len,
            hash: fnv1a(&buf),
        })
    }

    fn line(&self) -> String {
        format!("{} len={} hash={:016x}\n", Self::TAG, self.len, self.hash)
    }

    /// The stamp recorded at `record`; `None` when missing or not one.
    fn read(record: &Path) -> Option<Stamp> {
        let text = fs::read_to_string(record).ok()?;
        let rest = text.strip_suffix('\n')?.strip_prefix(Self::TAG)?;
        let (len, hash) = rest.strip_prefix(" len=")?.split_once(" hash=")?;
        Some(Stamp {
            len: len.parse().ok()?,
            hash: u64::from_str_radix(hash, 16).ok()?,
        })
    }
}

/// 64-bit FNV-1a: a fixed, dependency-free hash (stable across builds, unlike `DefaultHasher`).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn default_cache(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.strip_suffix(".gz") {
        Some(stem) if !stem.is_empty() => path.with_file_name(stem),
        _ => path.with_file_name(format!("{name}.raw")),
    }
}

fn is_fresh(cache: &Path, gz: &Path) -> bool {
    let (Ok(c), Ok(g)) = (fs::metadata(cache), fs::metadata(gz)) else {
        return false;
    };
    match (c.modified(), g.modified()) {
        (Ok(cm), Ok(gm)) => cm >= gm && c.len() > 0,
        _ => false,
    }
}
