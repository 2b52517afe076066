//! Checkpoints: snapshots of a run's state at a consistent cut of the feed, and the files that
//! hold them.
//!
//! A checkpoint is a flagged watermark mark: the reader records its position, each worker
//! snapshots its books and detectors when it takes the mark, and the output stage, once its
//! merge has written every record before the cut, records the alerts file's length and CRC and
//! its own state, then makes the checkpoint visible with one rename. See [`dir`] for the layout.

pub mod cap;
pub mod dir;
pub mod file;
pub mod manifest;
pub mod pack;
pub mod scratch;

pub use dir::{CkptDir, Found};
pub use file::{read_blob, write_blob, FORMAT_VERSION};
pub use manifest::{CapturePos, FeedId, Given, Manifest, RunKey};

/// Why a checkpoint could not be written, found or used.
#[derive(Debug, thiserror::Error)]
pub enum CkptError {
    /// A file or directory could not be read or written.
    #[error("checkpoint {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A file's header or checksum is wrong.
    #[error("checkpoint file {path} is corrupt: {why}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// A checkpoint of another format version.
    #[error("checkpoint {path} is format {found}, this build reads {expected}")]
    Version {
        /// The file.
        path: String,
        /// Its version.
        found: u32,
        /// This build's.
        expected: u32,
    },
    /// The checkpoint was made for another feed, rules or configuration.
    #[error("checkpoint {path} does not match this run: {key} was {was}, now {now}")]
    Mismatch {
        /// The checkpoint.
        path: String,
        /// What differs.
        key: String,
        /// Its value in the checkpoint.
        was: String,
        /// Its value now.
        now: String,
    },
    /// No checkpoint to resume from.
    #[error("no usable checkpoint in {0}")]
    None(String),
    /// State could not be encoded or decoded.
    #[error("checkpoint state {path}: {why}")]
    State {
        /// The file.
        path: String,
        /// The codec's message.
        why: String,
    },
}

impl CkptError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> CkptError {
        CkptError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Encodes `v` (bincode).
///
/// # Errors
/// The codec's error (never expected for the run's state types).
pub fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, CkptError> {
    // Into a growing buffer: `bincode::serialize` would walk the state twice (sizing first).
    let mut b = Vec::new();
    bincode::serialize_into(&mut b, v).map_err(|e| CkptError::State {
        path: String::new(),
        why: e.to_string(),
    })?;
    Ok(b)
}

/// Encodes `v` into `b` (cleared first): a buffer kept from the last checkpoint is already
/// faulted in and large enough, so encoding into it is a third of the time a fresh one takes.
///
/// # Errors
/// As [`encode`].
pub fn encode_into<T: serde::Serialize>(b: &mut Vec<u8>, v: &T) -> Result<(), CkptError> {
    b.clear();
    bincode::serialize_into(&mut *b, v).map_err(|e| CkptError::State {
        path: String::new(),
        why: e.to_string(),
    })
}

/// Decodes what [`encode`] made; `path` names it in an error.
///
/// # Errors
/// The bytes do not decode as a `T`.
pub fn decode<T: serde::de::DeserializeOwned>(b: &[u8], path: &str) -> Result<T, CkptError> {
    bincode::deserialize(b).map_err(|e| CkptError::State {
        path: path.into(),
        why: e.to_string(),
    })
}
