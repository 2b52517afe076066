//! Writing ITCH 5.0 BinaryFILEs: the inverse of the decoder, for the generator and converters.
//!
//! Messages are built as the same [`wire`](super::wire) structs the decoder reads and written with
//! their 2-byte big-endian length prefix, so whatever is encoded is laid out exactly as decoded.

use super::be::{BeU16, BeU32, BeU48};
use super::wire::{Header, StockDirectory};
use bytemuck::Pod;
use std::io::{self, Write};

/// A header for a message of type `T` (pass `T::TYPE`).
pub fn header(msg_type: u8, stock_locate: u16, tracking_number: u16, timestamp_ns: u64) -> Header {
    Header {
        msg_type,
        stock_locate: BeU16::new(stock_locate),
        tracking_number: BeU16::new(tracking_number),
        timestamp: BeU48::new(timestamp_ns),
    }
}

/// A stock directory entry of an ordinary NASDAQ-listed common stock (round lots of 100, normal
/// financial status, LULD tier 1): what the generator lists and hand-made test feeds use.
pub fn common_stock(stock_locate: u16, timestamp_ns: u64, stock: [u8; 8]) -> StockDirectory {
    StockDirectory {
        hdr: header(b'R', stock_locate, 0, timestamp_ns),
        stock,
        market_category: b'Q',
        financial_status: b'N',
        round_lot_size: BeU32::new(100),
        round_lots_only: b'N',
        issue_classification: b'C',
        issue_subtype: *b"Z ",
        authenticity: b'P',
        short_sale_threshold: b'N',
        ipo_flag: b' ',
        luld_tier: b'1',
        etp_flag: b'N',
        etp_leverage_factor: BeU32::new(0),
        inverse_indicator: b'N',
    }
}

/// Appends one framed message to `out`.
pub fn push_frame<M: Pod>(out: &mut Vec<u8>, msg: &M) {
    let bytes = bytemuck::bytes_of(msg);
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Writes framed messages to any `Write`, counting them.
#[derive(Debug)]
pub struct FrameWriter<W: Write> {
    inner: W,
    messages: u64,
    bytes: u64,
}

impl<W: Write> FrameWriter<W> {
    /// Wraps a writer (wrap files in a `BufWriter`).
    pub fn new(inner: W) -> Self {
        FrameWriter {
            inner,
            messages: 0,
            bytes: 0,
        }
    }

    /// Writes one message with its length prefix.
    ///
    /// # Errors
    /// I/O errors of the inner writer.
    pub fn write<M: Pod>(&mut self, msg: &M) -> io::Result<()> {
        let bytes = bytemuck::bytes_of(msg);
        self.inner.write_all(&(bytes.len() as u16).to_be_bytes())?;
        self.inner.write_all(bytes)?;
        self.messages += 1;
        self.bytes += 2 + bytes.len() as u64;
        Ok(())
    }

    /// Messages written.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Bytes written, prefixes included.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Flushes and returns the inner writer.
    ///
    /// # Errors
    /// I/O errors from the flush.
    pub fn finish(mut self) -> io::Result<W> {
        self.inner.flush()?;
        Ok(self.inner)
    }
}
