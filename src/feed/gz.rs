//! Transparent `.gz` input: NASDAQ ships its sample days gzipped, and a gzip stream cannot be mapped.
//!
//! [`resolve`] decompresses a gzip file once into a cache file (by default the sibling with the `.gz`
//! removed) and returns that path for mapping. The cache is reused while it is newer than the `.gz`;
//! it is written to a temporary name and renamed into place, so an interrupted run never leaves a
//! half-written cache behind that a later run would trust.

use flate2::read::MultiGzDecoder;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read};
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
    if is_fresh(&target, path) {
        return Ok(target);
    }
    let tmp = target.with_extension(format!("tmp{}", std::process::id()));
    let result = decompress(path, &tmp, &target);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    Ok(target)
}

/// Decompresses `path` into `tmp`, then renames it to `target`.
fn decompress(path: &Path, tmp: &Path, target: &Path) -> Result<(), GzError> {
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
    fs::rename(tmp, target).map_err(cache)
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
