//! Transparent `.gz` input: NASDAQ ships its sample days gzipped, and a gzip stream cannot be mapped.
//!
//! [`resolve`] decompresses a gzip file once into a cache file (by default the sibling with the `.gz`
//! removed) and returns that path for mapping. The cache is reused while it is newer than the `.gz`;
//! it is written to a temporary name and renamed into place, so an interrupted run never leaves a
//! half-written cache behind that a later run would trust.

use anyhow::{bail, Context, Result};
use flate2::read::MultiGzDecoder;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};

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
pub fn resolve(path: &Path, cache: Option<&Path>) -> Result<PathBuf> {
    if !is_gzip(path).with_context(|| format!("opening {}", path.display()))? {
        return Ok(path.to_path_buf());
    }
    let target = match cache {
        Some(c) => c.to_path_buf(),
        None => default_cache(path),
    };
    if target == path {
        bail!(
            "{}: gzip input and cache path are the same file",
            path.display()
        );
    }
    if is_fresh(&target, path) {
        return Ok(target);
    }
    let tmp = target.with_extension(format!("tmp{}", std::process::id()));
    let result = (|| -> Result<()> {
        let src = File::open(path)?;
        let mut dec = MultiGzDecoder::new(BufReader::with_capacity(1 << 20, src));
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        io::copy(&mut dec, &mut out)
            .with_context(|| format!("decompressing {}", path.display()))?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        fs::rename(&tmp, &target)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing decompressed cache {}", target.display()))?;
    Ok(target)
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
