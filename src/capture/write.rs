//! A BinaryFILE out as a MoldUDP64 capture: messages packed into MoldUDP64 packets as a feed
//! handler packs them (up to a payload size, and never holding a message longer than a time gap),
//! each in UDP/IPv4 and a link layer, written as classic pcap (ns or µs) or pcapng.
//!
//! The pcap and pcapng writers are hand-written (a few fixed little-endian fields per record; a
//! crate would add nothing); the IPv4 and UDP headers are built with `etherparse` (it computes
//! the IPv4 header checksum). The UDP checksum is left 0 ("none"), which IPv4 allows.

use super::net::LinkType;
use crate::feed::{FrameError, Frames, MapOptions, MappedFile};
use etherparse::{IpNumber, Ipv4Header, UdpHeader};
use std::io::{self, BufWriter, Write};
use std::net::SocketAddrV4;
use std::path::Path;
use thiserror::Error;

/// MoldUDP64 header: session (10), sequence number (8), message count (2).
pub const MOLD_HEADER: usize = 20;
/// The message count of an end-of-session packet.
pub const END_OF_SESSION: u16 = 0xFFFF;
const NS_PER_DAY: u64 = 86_400_000_000_000;
const SNAPLEN: u32 = 65_535;

/// Classic pcap or pcapng.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFormat {
    /// libpcap's format: a 24-byte header, then a 16-byte header per record.
    Pcap,
    /// pcapng: a section header, one interface, an enhanced packet block per packet.
    PcapNg,
}

/// Timestamp resolution of the file written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsResolution {
    /// Nanoseconds (pcap magic 0xa1b23c4d; pcapng `if_tsresol` 9).
    Nano,
    /// Microseconds (pcap magic 0xa1b2c3d4; pcapng's default resolution).
    Micro,
}

/// How to write the capture.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// Link layer of every frame.
    pub link: LinkType,
    /// One 802.1Q tag with this VLAN ID (Ethernet only; 0..=4095).
    pub vlan: Option<u16>,
    /// File format.
    pub format: CaptureFormat,
    /// Timestamp resolution.
    pub resolution: TsResolution,
    /// Destination multicast group and port.
    pub group: SocketAddrV4,
    /// Source address and port of the feed.
    pub source: SocketAddrV4,
    /// MoldUDP64 session (at most 10 ASCII bytes; padded with spaces).
    pub session: String,
    /// Most MoldUDP64 bytes per packet (header included), 64..=8972; a message too long for an
    /// empty packet goes alone in one.
    pub max_payload: usize,
    /// A packet holds no message more than this many ns after its first.
    pub max_gap_ns: u64,
    /// Leave out every N-th packet (1-based; the end-of-session packet is always written).
    pub drop_every: Option<u64>,
    /// Midnight of the feed's day, ns since the Unix epoch: ITCH times are added to it.
    pub date_ns: u64,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            link: LinkType::Ethernet,
            vlan: None,
            format: CaptureFormat::Pcap,
            resolution: TsResolution::Nano,
            group: SocketAddrV4::new([233, 54, 12, 111].into(), 26_477),
            source: SocketAddrV4::new([10, 0, 0, 1].into(), 50_000),
            session: "000000001".into(),
            max_payload: 1_400,
            max_gap_ns: 100_000,
            drop_every: None,
            date_ns: days_from_civil(2019, 12, 30) as u64 * NS_PER_DAY,
        }
    }
}

/// What was written.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct WriteReport {
    /// ITCH messages read from the BinaryFILE.
    pub messages: u64,
    /// MoldUDP64 packets holding messages (written and dropped).
    pub packets: u64,
    /// Packets left out by `drop_every`.
    pub dropped_packets: u64,
    /// Messages in the dropped packets.
    pub dropped_messages: u64,
    /// Sequence number of the end-of-session packet (one past the last message).
    pub end_sequence: u64,
    /// Bytes of the capture file.
    pub bytes: u64,
}

/// Writing a capture failed.
#[derive(Debug, Error)]
pub enum WriteError {
    /// The BinaryFILE's framing is broken.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// An option is out of range.
    #[error("invalid option: {0}")]
    Option(&'static str),
    /// Reading or writing a file.
    #[error("{what} {path}")]
    File {
        /// What was done.
        what: &'static str,
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Writing the capture.
    #[error("writing the capture")]
    Io(#[from] io::Error),
}

/// Days from 1970-01-01 to a civil date (proleptic Gregorian; H. Hinnant's algorithm).
pub const fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Maps `input` (a BinaryFILE) and writes its capture to `output`.
///
/// # Errors
/// Opening, mapping or creating a file, a broken BinaryFILE, or an option out of range.
pub fn convert_file(
    input: &Path,
    output: &Path,
    opts: &WriteOptions,
) -> Result<WriteReport, WriteError> {
    let file = |what, path: &Path| {
        let path = path.display().to_string();
        move |source| WriteError::File { what, path, source }
    };
    let map = MappedFile::open(input, MapOptions::default()).map_err(file("mapping", input))?;
    let out = std::fs::File::create(output).map_err(file("creating", output))?;
    let mut out = BufWriter::with_capacity(1 << 20, out);
    let r = write_capture(map.bytes(), opts, &mut out)?;
    out.flush()?;
    Ok(r)
}

/// Writes the BinaryFILE `itch` as a MoldUDP64 capture to `out`.
///
/// # Errors
/// A broken BinaryFILE (with its offset), an option out of range, or a write failing.
pub fn write_capture<W: Write>(
    itch: &[u8],
    opts: &WriteOptions,
    out: W,
) -> Result<WriteReport, WriteError> {
    check(opts)?;
    let mut w = PacketWriter::new(opts, out)?;
    let mut mold = Mold::new(opts);
    let mut ts = 0;
    for f in Frames::new(itch) {
        let f = f?;
        ts = itch_time(f.body).unwrap_or(ts);
        w.report.messages += 1;
        if !mold.fits(f.body.len(), ts) {
            mold.flush(&mut w)?;
        }
        mold.push(f.body, ts);
    }
    mold.flush(&mut w)?;
    mold.end_of_session(&mut w, ts)?;
    w.report.end_sequence = mold.next_seq;
    w.out.flush()?;
    Ok(w.report)
}

fn check(o: &WriteOptions) -> Result<(), WriteError> {
    if o.session.len() > 10 || !o.session.is_ascii() {
        return Err(WriteError::Option("session: at most 10 ASCII characters"));
    }
    if !(64..=8_972).contains(&o.max_payload) {
        return Err(WriteError::Option("max_payload: 64..=8972 bytes"));
    }
    if o.vlan.is_some_and(|v| v > 4_095) {
        return Err(WriteError::Option("vlan: 0..=4095"));
    }
    if o.vlan.is_some() && o.link != LinkType::Ethernet {
        return Err(WriteError::Option("vlan: only with the Ethernet link type"));
    }
    if o.drop_every == Some(0) {
        return Err(WriteError::Option("drop_every: at least 1"));
    }
    Ok(())
}

/// The 6-byte big-endian ns-since-midnight field every ITCH message has at bytes 5..11.
fn itch_time(body: &[u8]) -> Option<u64> {
    let t = body.get(5..11)?;
    Some(t.iter().fold(0, |a, &b| a << 8 | u64::from(b)))
}

/// The MoldUDP64 packet being filled.
struct Mold {
    buf: Vec<u8>,
    count: u16,
    first_ts: u64,
    last_ts: u64,
    next_seq: u64,
    max_payload: usize,
    max_gap_ns: u64,
}

impl Mold {
    fn new(o: &WriteOptions) -> Mold {
        let mut buf = Vec::with_capacity(o.max_payload.max(MOLD_HEADER + 2 + 65_535));
        let mut session = [b' '; 10];
        session[..o.session.len()].copy_from_slice(o.session.as_bytes());
        buf.extend_from_slice(&session);
        buf.resize(MOLD_HEADER, 0);
        Mold {
            buf,
            count: 0,
            first_ts: 0,
            last_ts: 0,
            next_seq: 1,
            max_payload: o.max_payload,
            max_gap_ns: o.max_gap_ns,
        }
    }

    /// Whether a message of `len` bytes at `ts` joins the packet (an empty packet takes any).
    fn fits(&self, len: usize, ts: u64) -> bool {
        self.count == 0
            || (self.buf.len() + 2 + len <= self.max_payload
                && ts.saturating_sub(self.first_ts) <= self.max_gap_ns
                && self.count < END_OF_SESSION - 1)
    }

    fn push(&mut self, msg: &[u8], ts: u64) {
        if self.count == 0 {
            self.first_ts = ts;
        }
        self.last_ts = ts;
        self.buf
            .extend_from_slice(&(msg.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(msg);
        self.count += 1;
    }

    fn header(&mut self, count: u16) {
        self.buf[10..18].copy_from_slice(&self.next_seq.to_be_bytes());
        self.buf[18..20].copy_from_slice(&count.to_be_bytes());
    }

    /// Writes the packet (unless `drop_every` drops it) and starts the next.
    fn flush<W: Write>(&mut self, w: &mut PacketWriter<W>) -> io::Result<()> {
        if self.count == 0 {
            return Ok(());
        }
        self.header(self.count);
        w.report.packets += 1;
        if w.drop_every.is_some_and(|n| w.report.packets % n == 0) {
            w.report.dropped_packets += 1;
            w.report.dropped_messages += u64::from(self.count);
        } else {
            w.packet(&self.buf, self.last_ts)?;
        }
        self.next_seq += u64::from(self.count);
        self.count = 0;
        self.buf.truncate(MOLD_HEADER);
        Ok(())
    }

    fn end_of_session<W: Write>(&mut self, w: &mut PacketWriter<W>, ts: u64) -> io::Result<()> {
        self.header(END_OF_SESSION);
        w.packet(&self.buf[..MOLD_HEADER], ts)
    }
}

/// Frames UDP payloads (in IPv4 and the link layer of [`WriteOptions`]) and writes them as
/// capture records: the BinaryFILE conversion's writer, and a live recorder's (`net::record`).
#[derive(Debug)]
pub struct PacketWriter<W: Write> {
    out: W,
    frame: Vec<u8>,
    opts: WriteOptions,
    ip_id: u16,
    drop_every: Option<u64>,
    report: WriteReport,
}

impl<W: Write> PacketWriter<W> {
    /// Writes the file header (pcap) or section and interface blocks (pcapng) to `out`.
    ///
    /// # Errors
    /// Writing `out`.
    pub fn new(opts: &WriteOptions, out: W) -> io::Result<Self> {
        let mut w = PacketWriter {
            out,
            frame: Vec::with_capacity(128 + opts.max_payload),
            opts: opts.clone(),
            ip_id: 0,
            drop_every: opts.drop_every,
            report: WriteReport::default(),
        };
        match opts.format {
            CaptureFormat::Pcap => w.pcap_header()?,
            CaptureFormat::PcapNg => w.pcapng_header()?,
        }
        Ok(w)
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.report.bytes += b.len() as u64;
        self.out.write_all(b)
    }

    fn pcap_header(&mut self) -> io::Result<()> {
        let magic: u32 = match self.opts.resolution {
            TsResolution::Nano => 0xa1b2_3c4d,
            TsResolution::Micro => 0xa1b2_c3d4,
        };
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&magic.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&[0; 8]); // thiszone, sigfigs
        h.extend_from_slice(&SNAPLEN.to_le_bytes());
        h.extend_from_slice(&self.opts.link.linktype().to_le_bytes());
        self.put(&h)
    }

    fn pcapng_header(&mut self) -> io::Result<()> {
        let mut shb = Vec::with_capacity(28);
        shb.extend_from_slice(&0x0A0D_0D0Au32.to_le_bytes());
        shb.extend_from_slice(&28u32.to_le_bytes());
        shb.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes()); // section length unknown
        shb.extend_from_slice(&28u32.to_le_bytes());
        self.put(&shb)?;
        // if_tsresol (code 9, one byte, padded to 4) and opt_endofopt; µs is the default.
        let opts: &[u8] = match self.opts.resolution {
            TsResolution::Nano => &[9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0],
            TsResolution::Micro => &[],
        };
        let len = 20 + opts.len() as u32;
        let mut idb = Vec::with_capacity(len as usize);
        idb.extend_from_slice(&1u32.to_le_bytes());
        idb.extend_from_slice(&len.to_le_bytes());
        idb.extend_from_slice(&(self.opts.link.linktype() as u16).to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&SNAPLEN.to_le_bytes());
        idb.extend_from_slice(opts);
        idb.extend_from_slice(&len.to_le_bytes());
        self.put(&idb)
    }

    /// Bytes written so far (headers included).
    pub fn bytes(&self) -> u64 {
        self.report.bytes
    }

    /// Flushes and hands back the writer.
    ///
    /// # Errors
    /// Flushing `out`.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }

    /// One MoldUDP64 payload as a record stamped `date + itch_ts`.
    fn packet(&mut self, payload: &[u8], itch_ts: u64) -> io::Result<()> {
        let (src, dst) = (self.opts.source, self.opts.group);
        self.datagram(src, dst, payload, self.opts.date_ns.saturating_add(itch_ts))
    }

    /// One UDP datagram `src` → `dst` as a record stamped `ns` (since the Unix epoch).
    ///
    /// # Errors
    /// A payload too long for UDP, or writing `out`.
    pub fn datagram(
        &mut self,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        payload: &[u8],
        ns: u64,
    ) -> io::Result<()> {
        self.build_frame(src, dst, payload)?;
        let ts = match self.opts.resolution {
            TsResolution::Nano => ns,
            TsResolution::Micro => ns / 1_000,
        };
        let frame = std::mem::take(&mut self.frame);
        let r = match self.opts.format {
            CaptureFormat::Pcap => self.pcap_record(&frame, ts),
            CaptureFormat::PcapNg => self.epb(&frame, ts),
        };
        self.frame = frame;
        r
    }

    fn pcap_record(&mut self, frame: &[u8], ts: u64) -> io::Result<()> {
        let per_sec = match self.opts.resolution {
            TsResolution::Nano => 1_000_000_000,
            TsResolution::Micro => 1_000_000,
        };
        let len = (frame.len() as u32).to_le_bytes();
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&((ts / per_sec) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&((ts % per_sec) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&len);
        h[12..16].copy_from_slice(&len);
        self.put(&h)?;
        self.put(frame)
    }

    fn epb(&mut self, frame: &[u8], ts: u64) -> io::Result<()> {
        let pad = (4 - frame.len() % 4) % 4;
        let len = (32 + frame.len() + pad) as u32;
        let mut h = [0u8; 28];
        h[0..4].copy_from_slice(&6u32.to_le_bytes());
        h[4..8].copy_from_slice(&len.to_le_bytes());
        // h[8..12]: interface 0
        h[12..16].copy_from_slice(&((ts >> 32) as u32).to_le_bytes());
        h[16..20].copy_from_slice(&(ts as u32).to_le_bytes());
        h[20..24].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        h[24..28].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        self.put(&h)?;
        self.put(frame)?;
        self.put(&[0; 3][..pad])?;
        self.put(&len.to_le_bytes())
    }

    /// Link header, IPv4, UDP and `payload` into `self.frame`.
    fn build_frame(
        &mut self,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        payload: &[u8],
    ) -> io::Result<()> {
        let o = &self.opts;
        let f = &mut self.frame;
        f.clear();
        match o.link {
            LinkType::Ethernet => ethernet(f, dst, o.vlan),
            LinkType::Sll => sll(f),
            LinkType::Sll2 => sll2(f),
            LinkType::RawIpv4 => {}
        }
        let udp_len = u16::try_from(8 + payload.len())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut ip = Ipv4Header::new(
            udp_len,
            32,
            IpNumber::UDP,
            src.ip().octets(),
            dst.ip().octets(),
        )
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        ip.identification = self.ip_id;
        self.ip_id = self.ip_id.wrapping_add(1);
        ip.write(f)?; // computes the header checksum
        let udp = UdpHeader {
            source_port: src.port(),
            destination_port: dst.port(),
            length: udp_len,
            checksum: 0,
        };
        f.extend_from_slice(&udp.to_bytes());
        f.extend_from_slice(payload);
        Ok(())
    }
}

/// Ethernet II to the group's multicast MAC (01:00:5e + its low 23 bits), with an optional tag.
fn ethernet(f: &mut Vec<u8>, group: SocketAddrV4, vlan: Option<u16>) {
    let g = group.ip().octets();
    f.extend_from_slice(&[0x01, 0x00, 0x5e, g[1] & 0x7f, g[2], g[3]]);
    f.extend_from_slice(&[0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);
    if let Some(id) = vlan {
        f.extend_from_slice(&0x8100u16.to_be_bytes());
        f.extend_from_slice(&id.to_be_bytes());
    }
    f.extend_from_slice(&0x0800u16.to_be_bytes());
}

/// Linux cooked v1: packet type 2 (multicast to us), ARPHRD_ETHER, the source MAC, IPv4.
fn sll(f: &mut Vec<u8>) {
    f.extend_from_slice(&[0, 2, 0, 1, 0, 6]);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01, 0, 0]);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
}

/// Linux cooked v2: IPv4, reserved, interface index 1, ARPHRD_ETHER, multicast, the source MAC.
fn sll2(f: &mut Vec<u8>) {
    f.extend_from_slice(&[0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 2, 6]);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01, 0, 0]);
}
