//! Reading a capture in place: the UDP datagrams of a memory-mapped pcap or pcapng file.
//!
//! Classic pcap records are framed by hand (a 16-byte header; both magics, both byte orders).
//! pcapng blocks are framed here too — each block's length is checked against the file and
//! against its trailer before anything reads inside it, so an error names the block's offset —
//! and their contents are decoded with `pcap-parser`. The timestamp offset (`if_tsoffset`) is
//! read here in the section's byte order. Packet bytes are never copied.

use super::net::{parse_frame, LinkType, NetCounts};
use crate::feed::{MapOptions, MappedFile};
use pcap_parser::pcapng::{parse_block_be, parse_block_le, Block, InterfaceDescriptionBlock};
use pcap_parser::OptionCode;
use std::net::SocketAddrV4;
use std::path::Path;
use thiserror::Error;

const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
const PCAPNG_BOM: u32 = 0x1A2B_3C4D;
const PCAP_HEADER: usize = 24;
const RECORD_HEADER: usize = 16;

/// The file formats read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// Classic pcap.
    Pcap {
        /// Nanosecond timestamps (magic 0xa1b23c4d) rather than microseconds (0xa1b2c3d4).
        nano: bool,
        /// Written big-endian.
        big_endian: bool,
    },
    /// pcapng.
    PcapNg,
}

/// The capture format `bytes` starts with, if any (by its magic number).
pub fn is_capture(bytes: &[u8]) -> Option<FileKind> {
    let m: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    let pcap = |nano, big_endian| Some(FileKind::Pcap { nano, big_endian });
    match u32::from_le_bytes(m) {
        0xa1b2_c3d4 => pcap(false, false),
        0xa1b2_3c4d => pcap(true, false),
        0xd4c3_b2a1 => pcap(false, true),
        0x4d3c_b2a1 => pcap(true, true),
        PCAPNG_SHB => Some(FileKind::PcapNg),
        _ => None,
    }
}

/// The capture is malformed, or could not be opened. Every variant but `Open` names the byte
/// offset of the header, record or block at fault.
#[derive(Debug, Error)]
pub enum CaptureError {
    /// Opening or mapping the file.
    #[error("mapping {path}")]
    Open {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// No pcap or pcapng magic number at the start.
    #[error("at byte offset 0: not a pcap or pcapng capture (no known magic number)")]
    NotACapture,
    /// The file ends inside a header (file or section header, record or block header).
    #[error("at byte offset {offset}: truncated {what}: {need} bytes needed, {have} remain")]
    Truncated {
        /// Offset of the header.
        offset: u64,
        /// Which header.
        what: &'static str,
        /// Bytes the header takes.
        need: usize,
        /// Bytes left in the file.
        have: usize,
    },
    /// A record or block claims more bytes than the file holds.
    #[error("at byte offset {offset}: {what} says {need} bytes but only {have} remain — file cut short, or a bogus length")]
    PastEnd {
        /// Offset of the record or block.
        offset: u64,
        /// "record" or "block".
        what: &'static str,
        /// Bytes claimed (record data, or the whole block).
        need: u64,
        /// Bytes left from the record's data or the block's start.
        have: u64,
    },
    /// A pcapng block length below 12 or not a multiple of 4.
    #[error("at byte offset {offset}: pcapng block length {len} is invalid (at least 12, a multiple of 4)")]
    BlockLength {
        /// Offset of the block.
        offset: u64,
        /// The length read.
        len: u32,
    },
    /// A pcapng block's trailing length disagrees with its leading one.
    #[error(
        "at byte offset {offset}: pcapng block length {len} disagrees with its trailer {trailer}"
    )]
    BlockTrailer {
        /// Offset of the block.
        offset: u64,
        /// Leading length.
        len: u32,
        /// Trailing length.
        trailer: u32,
    },
    /// A pcapng section header with an unknown byte-order magic.
    #[error("at byte offset {offset}: pcapng section header has byte-order magic {bom:#010x}")]
    ByteOrder {
        /// Offset of the section header.
        offset: u64,
        /// The magic read.
        bom: u32,
    },
    /// A pcapng block whose contents do not parse.
    #[error("at byte offset {offset}: malformed pcapng block of type {block_type:#x}")]
    Block {
        /// Offset of the block.
        offset: u64,
        /// Its type.
        block_type: u32,
    },
    /// A packet block names an interface its section did not describe.
    #[error("at byte offset {offset}: packet on interface {interface}, but the section describes {described}")]
    UnknownInterface {
        /// Offset of the packet block.
        offset: u64,
        /// Interface named.
        interface: u32,
        /// Interfaces described so far in the section.
        described: usize,
    },
    /// An interface's `if_tsresol` beyond what 64 bits hold.
    #[error("at byte offset {offset}: if_tsresol {resol:#x} is out of range")]
    TsResol {
        /// Offset of the interface description block.
        offset: u64,
        /// The value.
        resol: u8,
    },
}

impl CaptureError {
    /// The byte offset the error names (0 for `Open`).
    pub fn offset(&self) -> u64 {
        use CaptureError::*;
        match *self {
            Open { .. } | NotACapture => 0,
            Truncated { offset, .. }
            | PastEnd { offset, .. }
            | BlockLength { offset, .. }
            | BlockTrailer { offset, .. }
            | ByteOrder { offset, .. }
            | Block { offset, .. }
            | UnknownInterface { offset, .. }
            | TsResol { offset, .. } => offset,
        }
    }
}

/// Maps a capture file read-only (for [`Datagrams::new`] over its bytes).
///
/// # Errors
/// Opening or mapping the file.
pub fn open(path: &Path) -> Result<MappedFile, CaptureError> {
    MappedFile::open(path, MapOptions::default()).map_err(|source| CaptureError::Open {
        path: path.display().to_string(),
        source,
    })
}

/// One UDP datagram of the capture, borrowed from the file's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// Capture time, ns since the Unix epoch (a simple packet block, which has none, takes the
    /// previous packet's).
    pub ts_ns: u64,
    /// Source address and port.
    pub src: SocketAddrV4,
    /// Destination address and port (the multicast group of a feed).
    pub dst: SocketAddrV4,
    /// The UDP payload.
    pub payload: &'a [u8],
    /// Byte offset of the packet's record (pcap) or block (pcapng) in the file.
    pub offset: u64,
    /// Interface of the packet (pcapng; 0 in pcap), counted from the file's first section.
    pub interface: u32,
}

/// One pcapng interface: its link type and clock.
#[derive(Clone, Copy, Debug)]
struct Iface {
    link: Option<LinkType>,
    /// Timestamp units per second.
    per_sec: u64,
    /// Seconds added to every timestamp.
    offset_s: i64,
    /// Index counted across sections.
    global: u32,
}

#[derive(Clone, Debug)]
enum Format {
    Pcap {
        big_endian: bool,
        frac_ns: u64,
        link: Option<LinkType>,
    },
    PcapNg {
        big_endian: bool,
        ifaces: Vec<Iface>,
        described: u32,
    },
}

/// The UDP datagrams of a capture, in file order; stops after the first error. What is not a
/// UDP datagram is counted in [`Datagrams::counts`].
#[derive(Clone, Debug)]
pub struct Datagrams<'a> {
    buf: &'a [u8],
    pos: usize,
    format: Format,
    counts: NetCounts,
    packets: u64,
    last_ts: u64,
    failed: bool,
}

impl<'a> Datagrams<'a> {
    /// Bytes of the capture read so far (the next record or block starts here).
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The datagrams of the capture `buf` (a whole file: offsets count from its first byte).
    ///
    /// # Errors
    /// No known magic, or a truncated pcap file header.
    pub fn new(buf: &'a [u8]) -> Result<Datagrams<'a>, CaptureError> {
        let (format, pos) = match is_capture(buf).ok_or(CaptureError::NotACapture)? {
            FileKind::PcapNg => (
                Format::PcapNg {
                    big_endian: false,
                    ifaces: Vec::new(),
                    described: 0,
                },
                0,
            ),
            FileKind::Pcap { nano, big_endian } => {
                if buf.len() < PCAP_HEADER {
                    return Err(truncated(0, "pcap file header", PCAP_HEADER, buf.len()));
                }
                let link = LinkType::from_linktype(u32_at(buf, 20, big_endian));
                let frac_ns = if nano { 1 } else { 1_000 };
                let f = Format::Pcap {
                    big_endian,
                    frac_ns,
                    link,
                };
                (f, PCAP_HEADER)
            }
        };
        Ok(Datagrams {
            buf,
            pos,
            format,
            counts: NetCounts::default(),
            packets: 0,
            last_ts: 0,
            failed: false,
        })
    }

    /// What the frames held besides the datagrams yielded so far.
    pub fn counts(&self) -> &NetCounts {
        &self.counts
    }

    /// Packets (pcap records, pcapng packet blocks) read so far, datagrams or not.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Byte offset of the next record or block.
    pub fn offset(&self) -> u64 {
        self.pos as u64
    }

    /// The next packet's frame (skipping blocks that hold none), or `None` at the end.
    fn next_frame(&mut self) -> Result<Option<Frame<'a>>, CaptureError> {
        loop {
            if self.pos == self.buf.len() {
                return Ok(None);
            }
            let f = match self.format {
                Format::Pcap { .. } => Some(self.pcap_record()?),
                Format::PcapNg { .. } => self.pcapng_block()?,
            };
            if let Some(f) = f {
                self.packets += 1;
                self.last_ts = f.ts_ns;
                return Ok(Some(f));
            }
        }
    }

    fn pcap_record(&mut self) -> Result<Frame<'a>, CaptureError> {
        let Format::Pcap {
            big_endian: be,
            frac_ns,
            link,
        } = self.format
        else {
            unreachable!("pcap_record on a pcap file")
        };
        let (buf, at) = (self.buf, self.pos);
        let rest = buf.len() - at;
        if rest < RECORD_HEADER {
            return Err(truncated(at, "pcap record header", RECORD_HEADER, rest));
        }
        let caplen = u32_at(buf, at + 8, be) as usize;
        let origlen = u32_at(buf, at + 12, be) as usize;
        let have = rest - RECORD_HEADER;
        if caplen > have {
            return Err(CaptureError::PastEnd {
                offset: at as u64,
                what: "pcap record",
                need: caplen as u64,
                have: have as u64,
            });
        }
        let ts_ns = u64::from(u32_at(buf, at, be)) * 1_000_000_000
            + u64::from(u32_at(buf, at + 4, be)) * frac_ns;
        self.pos = at + RECORD_HEADER + caplen;
        Ok(Frame {
            offset: at as u64,
            link,
            data: &buf[at + RECORD_HEADER..self.pos],
            cut: caplen < origlen,
            ts_ns,
            interface: 0,
        })
    }

    /// One pcapng block: a packet's frame, or `None` for any other block.
    fn pcapng_block(&mut self) -> Result<Option<Frame<'a>>, CaptureError> {
        let (buf, at) = (self.buf, self.pos);
        let rest = buf.len() - at;
        if rest < 12 {
            return Err(truncated(at, "pcapng block header", 12, rest));
        }
        let block_type = u32_at(buf, at, false);
        if block_type == PCAPNG_SHB {
            self.section(at)?;
        }
        let Format::PcapNg { big_endian: be, .. } = self.format else {
            unreachable!("pcapng_block on a pcapng file")
        };
        let len = u32_at(buf, at + 4, be);
        if len < 12 || len % 4 != 0 {
            return Err(CaptureError::BlockLength {
                offset: at as u64,
                len,
            });
        }
        if len as usize > rest {
            return Err(CaptureError::PastEnd {
                offset: at as u64,
                what: "pcapng block",
                need: u64::from(len),
                have: rest as u64,
            });
        }
        let trailer = u32_at(buf, at + len as usize - 4, be);
        if trailer != len {
            return Err(CaptureError::BlockTrailer {
                offset: at as u64,
                len,
                trailer,
            });
        }
        let block = &buf[at..at + len as usize];
        self.pos = at + len as usize;
        let parsed = if be {
            parse_block_be(block)
        } else {
            parse_block_le(block)
        };
        let bad = || CaptureError::Block {
            offset: at as u64,
            block_type,
        };
        match parsed.map_err(|_| bad())?.1 {
            Block::InterfaceDescription(idb) => {
                self.interface(at, &idb)?;
                Ok(None)
            }
            Block::EnhancedPacket(p) => {
                let iface = self.iface(at, p.if_id)?;
                let units = u64::from(p.ts_high) << 32 | u64::from(p.ts_low);
                let caplen = (p.caplen as usize).min(p.data.len());
                Ok(Some(Frame {
                    offset: at as u64,
                    link: iface.link,
                    data: &p.data[..caplen],
                    cut: p.caplen < p.origlen,
                    ts_ns: to_ns(units, &iface),
                    interface: iface.global,
                }))
            }
            Block::SimplePacket(p) => {
                let iface = self.iface(at, 0)?;
                let len = (p.origlen as usize).min(p.data.len());
                Ok(Some(Frame {
                    offset: at as u64,
                    link: iface.link,
                    data: &p.data[..len],
                    cut: len < p.origlen as usize,
                    ts_ns: self.last_ts,
                    interface: iface.global,
                }))
            }
            _ => Ok(None),
        }
    }

    /// A section header: its byte order; its interfaces start afresh.
    fn section(&mut self, at: usize) -> Result<(), CaptureError> {
        let bom = u32_at(self.buf, at + 8, false);
        let big_endian = match bom {
            PCAPNG_BOM => false,
            b if b == PCAPNG_BOM.swap_bytes() => true,
            _ => {
                return Err(CaptureError::ByteOrder {
                    offset: at as u64,
                    bom,
                })
            }
        };
        if let Format::PcapNg {
            big_endian: b,
            ifaces,
            ..
        } = &mut self.format
        {
            *b = big_endian;
            ifaces.clear();
        }
        Ok(())
    }

    fn interface(
        &mut self,
        at: usize,
        idb: &InterfaceDescriptionBlock,
    ) -> Result<(), CaptureError> {
        let Format::PcapNg {
            big_endian,
            ifaces,
            described,
        } = &mut self.format
        else {
            return Ok(());
        };
        let resol = idb
            .options
            .iter()
            .find(|o| o.code == OptionCode::IfTsresol)
            .and_then(|o| o.value().first().copied())
            .unwrap_or(6);
        let per_sec = units_per_sec(resol).ok_or(CaptureError::TsResol {
            offset: at as u64,
            resol,
        })?;
        let offset_s = idb
            .options
            .iter()
            .find(|o| o.code == OptionCode::IfTsoffset)
            .and_then(|o| o.value().get(..8)?.try_into().ok())
            .map(|b: [u8; 8]| match *big_endian {
                true => i64::from_be_bytes(b),
                false => i64::from_le_bytes(b),
            })
            .unwrap_or(0);
        ifaces.push(Iface {
            link: u32::try_from(idb.linktype.0)
                .ok()
                .and_then(LinkType::from_linktype),
            per_sec,
            offset_s,
            global: *described,
        });
        *described = described.saturating_add(1);
        Ok(())
    }

    fn iface(&self, at: usize, id: u32) -> Result<Iface, CaptureError> {
        let Format::PcapNg { ifaces, .. } = &self.format else {
            unreachable!("iface on a pcapng file")
        };
        ifaces
            .get(id as usize)
            .copied()
            .ok_or(CaptureError::UnknownInterface {
                offset: at as u64,
                interface: id,
                described: ifaces.len(),
            })
    }
}

impl<'a> Iterator for Datagrams<'a> {
    type Item = Result<Datagram<'a>, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            let f = match self.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => return None,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            };
            let Some(link) = f.link else {
                self.counts.unknown_link += 1;
                continue;
            };
            if let Some(u) = parse_frame(link, f.data, f.cut, &mut self.counts) {
                return Some(Ok(Datagram {
                    ts_ns: f.ts_ns,
                    src: SocketAddrV4::new(u.src, u.src_port),
                    dst: SocketAddrV4::new(u.dst, u.dst_port),
                    payload: u.payload,
                    offset: f.offset,
                    interface: f.interface,
                }));
            }
        }
    }
}

/// A packet's captured bytes and where they came from.
struct Frame<'a> {
    offset: u64,
    link: Option<LinkType>,
    data: &'a [u8],
    cut: bool,
    ts_ns: u64,
    interface: u32,
}

/// `if_tsresol`: 10^n units a second, or 2^n with the top bit set.
fn units_per_sec(resol: u8) -> Option<u64> {
    let n = u32::from(resol & 0x7f);
    if resol & 0x80 == 0 {
        10u64.checked_pow(n)
    } else {
        1u64.checked_shl(n).filter(|_| n < 64)
    }
}

/// Interface time units as ns since the epoch (saturating at the ends of u64).
fn to_ns(units: u64, i: &Iface) -> u64 {
    let ns = u128::from(units) * 1_000_000_000 / u128::from(i.per_sec);
    let ns = ns as i128 + i128::from(i.offset_s) * 1_000_000_000;
    ns.clamp(0, i128::from(u64::MAX)) as u64
}

fn truncated(at: usize, what: &'static str, need: usize, have: usize) -> CaptureError {
    CaptureError::Truncated {
        offset: at as u64,
        what,
        need,
        have,
    }
}

fn u32_at(b: &[u8], at: usize, big_endian: bool) -> u32 {
    let x: [u8; 4] = b[at..at + 4]
        .try_into()
        .expect("4 bytes, bounds checked by the caller");
    match big_endian {
        true => u32::from_be_bytes(x),
        false => u32::from_le_bytes(x),
    }
}
