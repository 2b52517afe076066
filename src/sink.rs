//! Where `run --alerts` writes: standard output (`-`), a device or a pipe (written to: it cannot
//! be mapped), or else a memory-mapped journal file (appending an alert makes no system call).

use std::io;
use std::path::{Path, PathBuf};

use crate::pipeline::alerts::AlertSink;
use crate::pipeline::journal::Journal;

/// An alerts destination that cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A device or a pipe that cannot be opened for writing.
    #[error("opening {}: {source}", path.display())]
    Open {
        /// The path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file that cannot be created or mapped.
    #[error("creating {}: {source}", path.display())]
    Create {
        /// The path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// The sink for alerts going to `path` (`-`: standard output).
///
/// # Errors
/// When the device or pipe cannot be opened, or the file cannot be created and mapped.
pub fn alert_sink(path: &Path) -> Result<AlertSink, SinkError> {
    if path.as_os_str() == "-" {
        return Ok(io::stdout().into());
    }
    let special = std::fs::metadata(path).is_ok_and(|m| !m.is_file());
    if special {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|source| SinkError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        return Ok(f.into());
    }
    Journal::create(path)
        .map(AlertSink::Journal)
        .map_err(|source| SinkError::Create {
            path: path.to_path_buf(),
            source,
        })
}
