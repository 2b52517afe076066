//! Opening the feed and the output files the commands share.

use super::args::InputArgs;
use super::feed::{Feed, Source, StreamFeed};
use anyhow::{bail, Context, Result};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use tickwatch::capture::{is_capture, ExtractOptions};
use tickwatch::feed::{gz, MapOptions, MappedFile};
use tickwatch::mold::Session;

/// The feed `input` names, mapped (a `.gz` through its decompressed cache); a packet capture
/// (told by its magic) is left as it is, for its messages to be streamed in place.
pub fn open_feed_streamed(input: &InputArgs, opts: MapOptions) -> Result<Feed> {
    let path = gz::resolve(&input.file, input.cache.as_deref())?;
    let map =
        MappedFile::open(&path, opts).with_context(|| format!("mapping {}", path.display()))?;
    let filtered = !input.channel.is_empty() || input.session.is_some();
    let Some(kind) = is_capture(map.bytes()) else {
        if filtered {
            bail!(
                "--channel/--session select the MoldUDP64 packets of a capture; {} is not a pcap or pcapng capture",
                input.file.display()
            );
        }
        let source = Source::Binary(map);
        return Ok(Feed {
            name: input.file.clone(),
            path,
            source,
        });
    };
    let opts = ExtractOptions {
        channels: input.channel.clone(),
        session: input.session.as_deref().and_then(Session::from_name),
        ..ExtractOptions::default()
    };
    let source = Source::Stream(Box::new(StreamFeed { kind, map, opts }));
    Ok(Feed {
        name: input.file.clone(),
        path,
        source,
    })
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
