//! A checkpoint's manifest: what it was made from (feed, rules, configuration) and where the
//! run stood (input position, the alerts file's length and checksum).

use super::CkptError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Bytes hashed at each end of the feed for its identity.
const ENDS: usize = 64 << 10;

/// Which feed a checkpoint was made from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedId {
    /// The path it was read from.
    pub path: String,
    /// Its size, bytes.
    pub size: u64,
    /// CRC-32 of its first and last 64 KiB, hex.
    pub ends_crc32: String,
}

impl FeedId {
    /// The identity of the feed `bytes` read from `path`.
    pub fn of(path: &Path, bytes: &[u8]) -> FeedId {
        let mut h = crc32fast::Hasher::new();
        h.update(&bytes[..bytes.len().min(ENDS)]);
        h.update(&bytes[bytes.len().saturating_sub(ENDS)..]);
        FeedId {
            path: path.display().to_string(),
            size: bytes.len() as u64,
            ends_crc32: format!("{:08x}", h.finalize()),
        }
    }
}

/// What changes a run's results, as a checkpoint records it (compared key by key on resume).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunKey {
    /// Shard workers.
    pub workers: usize,
    /// CRC-32 of the rules (their JSON), hex.
    pub rules_crc32: String,
    /// CRC-32 of the participant flow records, hex.
    pub flow_crc32: String,
    /// Messages per surveillance mark.
    pub mark_every: u32,
    /// Known types of a wrong length skipped.
    pub lenient: bool,
    /// The feed stops after this time (ns since midnight).
    pub until: Option<u64>,
}

impl RunKey {
    /// Each differing key: (name, checkpoint's value, this run's).
    pub fn differences(&self, now: &RunKey) -> Vec<(&'static str, String, String)> {
        let mut d = Vec::new();
        let mut cmp = |k: &'static str, a: String, b: String| {
            if a != b {
                d.push((k, a, b));
            }
        };
        cmp("workers", self.workers.to_string(), now.workers.to_string());
        cmp("rules", self.rules_crc32.clone(), now.rules_crc32.clone());
        cmp("flow", self.flow_crc32.clone(), now.flow_crc32.clone());
        cmp(
            "mark_every",
            self.mark_every.to_string(),
            now.mark_every.to_string(),
        );
        cmp("lenient", self.lenient.to_string(), now.lenient.to_string());
        cmp(
            "until",
            format!("{:?}", self.until),
            format!("{:?}", now.until),
        );
        d
    }
}

/// What the run that wrote a checkpoint was given beyond its [`RunKey`]: the files a resume
/// takes when it is not given them again (absolute paths).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Given {
    /// The alerts file.
    pub alerts: String,
    /// The rules file (`None`: the default rules).
    pub rules: Option<String>,
    /// The participant flow file read (`None`: no flow).
    pub flow: Option<String>,
}

/// Where a capture's MoldUDP64 stream stood at a cut. The arbiter's state there (each
/// stream's expected sequence, held messages, gaps so far) is rebuilt on resume by walking the
/// capture's packets again up to `delivered` messages — no book or detector runs on them — and
/// checked against the next message's byte offset and sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapturePos {
    /// Messages the arbiter handed out before the cut (skipped types included).
    pub delivered: u64,
    /// MoldUDP64 sequence number of the next message.
    pub sequence: u64,
    /// Capture byte offset of the next message's packet record or block.
    pub packet: u64,
}

/// The input position of a cut.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputPos {
    /// Messages read before the cut (the next one's index).
    pub message: u64,
    /// Byte offset of the next message in the feed (in a capture: of its bytes in its packet).
    pub byte_offset: u64,
    /// Of a capture: its MoldUDP64 stream's position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<CapturePos>,
}

/// The alerts file at a cut.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputPos {
    /// Bytes written.
    pub len: u64,
    /// CRC-32 of those bytes, hex.
    pub crc32: String,
    /// Alerts written.
    pub count: u64,
}

/// `manifest.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`super::FORMAT_VERSION`] of the build that wrote it.
    pub format: u32,
    /// The checkpoint's number.
    pub checkpoint: u64,
    /// The feed.
    pub feed: FeedId,
    /// What changes results.
    pub run: RunKey,
    /// The files the run was given.
    pub given: Given,
    /// How often the run checkpointed (a resume goes on so unless told otherwise).
    pub every: crate::engine::CkptEvery,
    /// Where the input stood.
    pub input: InputPos,
    /// The alerts file.
    pub alerts: OutputPos,
    /// Each worker's counters at the cut (a resumed run's report goes on from them).
    pub workers: Vec<crate::engine::WorkerCut>,
}

impl Manifest {
    /// Writes it as `dir/manifest.json` (fsync'd).
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write(&self, dir: &Path) -> Result<(), CkptError> {
        let p = dir.join("manifest.json");
        let text = serde_json::to_vec_pretty(self).map_err(|e| CkptError::State {
            path: p.display().to_string(),
            why: e.to_string(),
        })?;
        let io = |e| CkptError::io(&p, e);
        let mut f = std::fs::File::create(&p).map_err(io)?;
        std::io::Write::write_all(&mut f, &text).map_err(io)?;
        f.sync_all().map_err(io)
    }

    /// Reads `dir/manifest.json`.
    ///
    /// # Errors
    /// It cannot be read or parsed, or is of another format version.
    pub fn read(dir: &Path) -> Result<Manifest, CkptError> {
        let p = dir.join("manifest.json");
        let text = std::fs::read(&p).map_err(|e| CkptError::io(&p, e))?;
        let v: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| CkptError::Corrupt {
                path: p.display().to_string(),
                why: e.to_string(),
            })?;
        let format = v.get("format").and_then(|f| f.as_u64()).unwrap_or(0) as u32;
        if format != super::FORMAT_VERSION {
            return Err(CkptError::Version {
                path: p.display().to_string(),
                found: format,
                expected: super::FORMAT_VERSION,
            });
        }
        serde_json::from_value(v).map_err(|e| CkptError::Corrupt {
            path: p.display().to_string(),
            why: e.to_string(),
        })
    }
}
