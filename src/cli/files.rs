//! Opening the feed and the output files the commands share.

use super::args::InputArgs;
use super::feed::{Feed, Source, StreamFeed};
use anyhow::{bail, Context, Result};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use tickwatch::capture::{is_capture, ExtractOptions};
use tickwatch::feed::{gz, MapOptions, MappedFile};
use tickwatch::mold::Session;

/// The feed `input` names, mapped (a `.gz` through its decompressed cache); a packet capture
/// (told by its magic) is left as it is, for its messages to be streamed in place.
pub fn open_feed_streamed(input: &InputArgs, opts: MapOptions) -> Result<Feed> {
    open_with(input, |_| opts)
}

/// As [`open_feed_streamed`], a capture mapped without populating it: a read in place faults
/// its pages in as it goes and releases them behind it, so the resident set stays bounded
/// (populated, the whole capture would be resident before the walk starts).
pub fn open_feed_in_place(input: &InputArgs, opts: MapOptions) -> Result<Feed> {
    open_with(input, |capture| match capture {
        true => MapOptions {
            populate: false,
            ..opts
        },
        false => opts,
    })
}

/// The feed mapped with the options `opts` gives for it (a capture, or not).
fn open_with(input: &InputArgs, opts: impl FnOnce(bool) -> MapOptions) -> Result<Feed> {
    let path = gz::resolve(&input.file, input.cache.as_deref())?;
    let opts = opts(is_capture(&head(&path)?).is_some());
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

/// The first bytes of the file at `path` (its magic number), fewer if it is shorter.
fn head(path: &Path) -> Result<Vec<u8>> {
    let mut head = Vec::with_capacity(4);
    std::fs::File::open(path)
        .and_then(|f| f.take(4).read_to_end(&mut head))
        .with_context(|| format!("mapping {}", path.display()))?;
    Ok(head)
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
