//! Opening the feed and the output files the commands share.

use super::args::InputArgs;
use anyhow::{Context, Result};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use tickwatch::feed::{gz, MapOptions, MappedFile};

/// The feed `input` names, mapped (a `.gz` through its decompressed cache).
pub fn open_feed(input: &InputArgs, opts: MapOptions) -> Result<MappedFile> {
    let path = gz::resolve(&input.file, input.cache.as_deref())?;
    MappedFile::open(&path, opts).with_context(|| format!("mapping {}", path.display()))
}

/// A buffered writer on `path`, or on standard output.
pub fn output_writer(path: Option<&Path>) -> Result<Box<dyn Write + Send>> {
    Ok(match path {
        Some(p) => Box::new(io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(io::BufWriter::with_capacity(1 << 20, io::stdout())),
    })
}

/// `path` with `.ext` appended (`feed.itch` → `feed.itch.truth.json`).
pub fn sibling(path: &Path, ext: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}
