//! One checkpoint file: a header (magic, format version, payload length, CRC-32 of the
//! payload), then the payload, zero runs packed ([`super::pack`]).

use super::CkptError;
use std::io::Write;
use std::path::Path;

/// The checkpoint format this build writes and reads (2: the manifest names its inputs by
/// absolute path, and marking the close keeps its mids and aggressor flow).
pub const FORMAT_VERSION: u32 = 2;
/// The first bytes of every checkpoint file.
pub const MAGIC: [u8; 8] = *b"TWCKPT\0\0";
/// Header bytes: magic, version (u32), length (u64), crc32 (u32), all little-endian.
pub const HEADER: usize = 8 + 4 + 8 + 4;

/// The header for `payload` in format `version`.
pub fn header(payload: &[u8], version: u32) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&version.to_le_bytes());
    h[12..20].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    h[20..24].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    h
}

/// Writes `payload` with its header to `path` and fsyncs it.
///
/// # Errors
/// The file could not be written.
pub fn write_blob(path: &Path, payload: &[u8]) -> Result<(), CkptError> {
    write_versioned(path, payload, FORMAT_VERSION)
}

/// [`write_blob`] in a given format version (tests write other versions).
///
/// # Errors
/// The file could not be written.
pub fn write_versioned(path: &Path, payload: &[u8], version: u32) -> Result<(), CkptError> {
    let io = |e| CkptError::io(path, e);
    let payload = &super::pack::pack(payload);
    let mut f = std::fs::File::create(path).map_err(io)?;
    f.write_all(&header(payload, version)).map_err(io)?;
    f.write_all(payload).map_err(io)?;
    f.sync_all().map_err(io)
}

/// Reads a file written by [`write_blob`]: its payload, once the magic, version, length and
/// CRC check out.
///
/// # Errors
/// The file cannot be read, is corrupt, or is of another format version.
pub fn read_blob(path: &Path) -> Result<Vec<u8>, CkptError> {
    let b = std::fs::read(path).map_err(|e| CkptError::io(path, e))?;
    let corrupt = |why: String| CkptError::Corrupt {
        path: path.display().to_string(),
        why,
    };
    if b.len() < HEADER || b[..8] != MAGIC {
        return Err(corrupt("no checkpoint header".into()));
    }
    let version = u32::from_le_bytes(b[8..12].try_into().unwrap_or_default());
    if version != FORMAT_VERSION {
        return Err(CkptError::Version {
            path: path.display().to_string(),
            found: version,
            expected: FORMAT_VERSION,
        });
    }
    let len = u64::from_le_bytes(b[12..20].try_into().unwrap_or_default());
    let crc = u32::from_le_bytes(b[20..24].try_into().unwrap_or_default());
    if len != (b.len() - HEADER) as u64 {
        return Err(corrupt(format!(
            "{} payload bytes, the header says {len}",
            b.len() - HEADER
        )));
    }
    if crc32fast::hash(&b[HEADER..]) != crc {
        return Err(corrupt("CRC-32 mismatch".into()));
    }
    super::pack::unpack(&b[HEADER..]).ok_or_else(|| corrupt("malformed packed payload".into()))
}
