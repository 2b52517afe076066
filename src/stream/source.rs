//! Record files as engine sources: fixed-layout binary records read in place, and CSV rows
//! parsed into records. Each routes a record to a shard by its key, so a key's records stay in
//! order on one shard.

use crate::engine::{Record, Route, Source};
use bytemuck::Pod;
use std::path::{Path, PathBuf};

/// Why a record file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The file is not a whole number of records.
    #[error("{path}: {len} bytes is not a whole number of {size}-byte records (the last starts at byte offset {offset})")]
    Partial {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: usize,
        /// Bytes per record.
        size: usize,
        /// Where the partial record starts.
        offset: usize,
    },
    /// The records are not aligned in memory for their type.
    #[error("{path}: records are not aligned to {align} bytes in memory")]
    Misaligned {
        /// The file.
        path: PathBuf,
        /// The alignment the type needs.
        align: usize,
    },
    /// A CSV row could not be read or parsed.
    #[error("{path}: line {line}, byte offset {offset}: {message}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// Its line (1-based).
        line: u64,
        /// Byte offset of the row.
        offset: u64,
        /// What was wrong.
        message: String,
    },
}

/// Which shard a key goes to: a multiplicative hash, so that keys in steps (account ids in
/// runs of 37, say) still spread over the shards.
#[inline(always)]
pub fn shard_of_key(key: u64, shards: usize) -> usize {
    let h = key.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((h >> 32) as usize) % shards.max(1)
}

/// Fixed-layout binary records (`T: Pod`), read in place from a memory map or a slice.
pub struct RecordSource<'a, T, K, Tm> {
    records: &'a [T],
    next: usize,
    key: K,
    time: Tm,
}

impl<T, K, Tm> std::fmt::Debug for RecordSource<'_, T, K, Tm> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordSource")
            .field("records", &self.records.len())
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl<'a, T: Pod, K: Fn(&T) -> u64, Tm: Fn(&T) -> u64> RecordSource<'a, T, K, Tm> {
    /// The records of `bytes` (the contents of `path`), keyed by `key`, stamped by `time`.
    ///
    /// # Errors
    /// `bytes` is not a whole number of records, or not aligned for `T`.
    pub fn from_bytes(bytes: &'a [u8], path: &Path, key: K, time: Tm) -> Result<Self, RecordError> {
        let size = std::mem::size_of::<T>().max(1);
        if bytes.len() % size != 0 {
            return Err(RecordError::Partial {
                path: path.to_path_buf(),
                len: bytes.len(),
                size,
                offset: bytes.len() / size * size,
            });
        }
        let records = bytemuck::try_cast_slice(bytes).map_err(|_| RecordError::Misaligned {
            path: path.to_path_buf(),
            align: std::mem::align_of::<T>(),
        })?;
        Ok(Self::new(records, key, time))
    }

    /// The records of `records`.
    pub fn new(records: &'a [T], key: K, time: Tm) -> Self {
        RecordSource {
            records,
            next: 0,
            key,
            time,
        }
    }

    #[inline(always)]
    fn current(&self) -> &T {
        &self.records[self.next - 1]
    }
}

impl<T, K, Tm> Source for RecordSource<'_, T, K, Tm>
where
    T: Pod + Send + Sync,
    K: Fn(&T) -> u64 + Send,
    Tm: Fn(&T) -> u64 + Send,
{
    type Event = Record<T>;
    type Error = RecordError;

    #[inline]
    fn advance(&mut self) -> Option<Result<(), RecordError>> {
        (self.next < self.records.len()).then(|| {
            self.next += 1;
            Ok(())
        })
    }

    #[inline(always)]
    fn time(&self) -> u64 {
        (self.time)(self.current())
    }

    #[inline(always)]
    fn route(&self, shards: usize) -> Route {
        Route::One(shard_of_key((self.key)(self.current()), shards))
    }

    #[inline(always)]
    fn write(&self, slot: &mut Record<T>) {
        slot.set_value(*self.current());
    }
}

/// CSV rows parsed into records by `parse` (one record per row; a header row is skipped).
pub struct CsvSource<'a, T, K, Tm, P> {
    reader: csv::Reader<&'a [u8]>,
    row: csv::ByteRecord,
    current: T,
    path: PathBuf,
    key: K,
    time: Tm,
    parse: P,
    /// Rows read.
    pub rows: u64,
}

impl<T, K, Tm, P> std::fmt::Debug for CsvSource<'_, T, K, Tm, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvSource")
            .field("path", &self.path)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl<'a, T, K, Tm, P, E> CsvSource<'a, T, K, Tm, P>
where
    T: Pod,
    P: FnMut(&csv::ByteRecord) -> Result<T, E>,
    E: std::fmt::Display,
{
    /// The rows of `bytes` (the contents of `path`; with `header`, the first row is a header).
    pub fn new(bytes: &'a [u8], path: &Path, header: bool, key: K, time: Tm, parse: P) -> Self {
        let reader = csv::ReaderBuilder::new()
            .has_headers(header)
            .from_reader(bytes);
        CsvSource {
            reader,
            row: csv::ByteRecord::new(),
            current: T::zeroed(),
            path: path.to_path_buf(),
            key,
            time,
            parse,
            rows: 0,
        }
    }

    fn error(&self, message: String) -> RecordError {
        let pos = self.row.position().unwrap_or(self.reader.position());
        RecordError::Csv {
            path: self.path.clone(),
            line: pos.line(),
            offset: pos.byte(),
            message,
        }
    }
}

impl<T, K, Tm, P, E> Source for CsvSource<'_, T, K, Tm, P>
where
    T: Pod + Send,
    K: Fn(&T) -> u64 + Send,
    Tm: Fn(&T) -> u64 + Send,
    P: FnMut(&csv::ByteRecord) -> Result<T, E> + Send,
    E: std::fmt::Display,
{
    type Event = Record<T>;
    type Error = RecordError;

    fn advance(&mut self) -> Option<Result<(), RecordError>> {
        match self.reader.read_byte_record(&mut self.row) {
            Ok(false) => None,
            Ok(true) => match (self.parse)(&self.row) {
                Ok(r) => {
                    self.current = r;
                    self.rows += 1;
                    Some(Ok(()))
                }
                Err(e) => Some(Err(self.error(e.to_string()))),
            },
            Err(e) => Some(Err(self.error(e.to_string()))),
        }
    }

    #[inline(always)]
    fn time(&self) -> u64 {
        (self.time)(&self.current)
    }

    #[inline(always)]
    fn route(&self, shards: usize) -> Route {
        Route::One(shard_of_key((self.key)(&self.current), shards))
    }

    #[inline(always)]
    fn write(&self, slot: &mut Record<T>) {
        slot.set_value(self.current);
    }
}
